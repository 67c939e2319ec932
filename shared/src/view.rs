//! The JSON get-call serves: a stored call plus what is derived at read time (transcript, recording state,
//! a fresh presigned link). Top-level fields are always present, `null` when unknown, so clients see one
//! stable shape.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::ApiError;
use crate::model::{transcript, CallEvent, CallRecord, CallSummary, Latency, Message, RecordingStatus};
use crate::recording::{self, Link, RecordingState, Retention, S3Recordings};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallDetail {
    #[serde(flatten)]
    pub summary: CallSummary,
    /// `null` when the call opted out of sensitive-data storage: the content was never stored.
    pub messages: Option<Vec<Message>>,
    pub transcript: Option<String>,
    pub latency: Option<Latency>,
    pub events: Vec<CallEvent>,
    pub recording_status: RecordingStatus,
    pub recording_format: Option<String>,
    #[serde(serialize_with = "crate::model::seconds::option")]
    pub recording_duration: Option<f64>,
    pub recording_expires_at: Option<DateTime<Utc>>,
    pub recording_url: Option<String>,
    pub recording_url_expires_at: Option<DateTime<Utc>>,
}

impl CallDetail {
    pub fn new(record: CallRecord, recording: RecordingState, link: Option<Link>) -> Self {
        let opted_out = record.summary.opt_out_sensitive_data_storage;
        let (messages, transcript) = if opted_out {
            (None, None)
        } else {
            let text = transcript(&record.content.messages);
            (Some(record.content.messages), Some(text))
        };
        let (recording_url, recording_url_expires_at) = match link {
            Some(l) => (Some(l.url), Some(l.expires_at)),
            None => (None, None),
        };
        CallDetail {
            summary: record.summary,
            messages,
            transcript,
            latency: record.content.latency,
            events: record.content.events,
            recording_status: recording.status,
            recording_format: recording.format,
            recording_duration: recording.duration,
            recording_expires_at: recording.expires_at,
            recording_url,
            recording_url_expires_at,
        }
    }
}

/// What get-call serves for a stored call at `now`: its recording's state under `retention` and, when a link
/// may be served, a fresh one. No store reads: presigning signs locally with the client's credentials.
pub async fn call_detail(
    record: CallRecord,
    retention: Retention,
    now: DateTime<Utc>,
    recordings: &S3Recordings,
) -> Result<CallDetail, ApiError> {
    let state = recording::state(&record.summary, record.recording.as_ref(), retention, now);
    let link = match &state.link {
        Some(grant) => Some(recordings.presign_get(&grant.key, now, grant.ttl).await?),
        None => None,
    };
    Ok(CallDetail::new(record, state, link))
}

/// One call in a list: the summary and its recording's state, without the content (messages, events,
/// latency, transcript) and without a link (GET /api/v1/calls/{callId}/recording makes one).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallListItem {
    #[serde(flatten)]
    pub summary: CallSummary,
    pub recording_status: RecordingStatus,
    pub recording_format: Option<String>,
    #[serde(serialize_with = "crate::model::seconds::option")]
    pub recording_duration: Option<f64>,
    pub recording_expires_at: Option<DateTime<Utc>>,
}

impl CallListItem {
    pub fn new(summary: CallSummary, recording: RecordingState) -> Self {
        CallListItem {
            summary,
            recording_status: recording.status,
            recording_format: recording.format,
            recording_duration: recording.duration,
            recording_expires_at: recording.expires_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub limit: u32,
    pub has_more: bool,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
    /// Only when `includeTotal=true`: how many calls match, over all pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// A page of GET /api/v1/calls.
#[derive(Debug, Clone)]
pub struct CallPage {
    pub data: Vec<CallListItem>,
    pub pagination: Pagination,
}
