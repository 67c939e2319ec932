//! The JSON get-call serves: a stored call plus what is derived at read time (recording state, a fresh
//! presigned link). Top-level fields are always present, `null` when unknown, so clients see one stable
//! shape. The content (messages, events, latency, transcript) is passed through as the JSON text it was
//! stored as, never rebuilt: see [`crate::store::StoredContent`].

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::{ApiError, StoreError};
use crate::model::{transcript, CallRecord, CallSummary, RecordingStatus};
use crate::recording::{self, RecordingState, Retention};
use crate::store::{Link, S3Recordings, StoredCall};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallDetail {
    #[serde(flatten)]
    pub summary: CallSummary,
    /// `null` when the call opted out of sensitive-data storage: the content was never stored.
    pub messages: Option<RawList>,
    pub transcript: Option<String>,
    pub latency: Option<Box<RawValue>>,
    pub events: RawList,
    pub recording_status: RecordingStatus,
    pub recording_format: Option<String>,
    #[serde(serialize_with = "crate::model::seconds::option")]
    pub recording_duration: Option<f64>,
    pub recording_expires_at: Option<DateTime<Utc>>,
    /// Why the recording is `failed` (the upload's check); `null` otherwise.
    pub recording_failure_reason: Option<String>,
    pub recording_url: Option<String>,
    pub recording_url_expires_at: Option<DateTime<Utc>>,
}

/// A JSON array served as stored; `[]` when nothing was stored.
#[derive(Debug, Clone, Default)]
pub struct RawList(Option<Box<RawValue>>);

impl Serialize for RawList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(s),
            None => s.collect_seq(std::iter::empty::<()>()),
        }
    }
}

impl CallDetail {
    /// From a call as the store returns it: the content's parts are copied as they are.
    pub fn from_stored(call: StoredCall, recording: RecordingState, link: Option<Link>) -> Result<Self, StoreError> {
        let broken = |e: serde_json::Error| StoreError::Failed(format!("call {}: content: {e}", call.summary.id));
        let parts = call.content.parts().map_err(broken)?;
        let (messages, transcript) = if call.summary.opt_out_sensitive_data_storage {
            (None, None)
        } else {
            let text = match parts.transcript {
                Some(text) => text,
                // Content written before transcripts were stored with it.
                None => transcript(&call.content.decode().map_err(broken)?.messages),
            };
            (Some(RawList(parts.messages.map(ToOwned::to_owned))), Some(text))
        };
        let (recording_url, recording_url_expires_at) = match link {
            Some(l) => (Some(l.url), Some(l.expires_at)),
            None => (None, None),
        };
        let latency = parts.latency.map(ToOwned::to_owned);
        let events = RawList(parts.events.map(ToOwned::to_owned));
        Ok(CallDetail {
            summary: call.summary,
            messages,
            transcript,
            latency,
            events,
            recording_status: recording.status,
            recording_format: recording.format,
            recording_duration: recording.duration,
            recording_expires_at: recording.expires_at,
            recording_failure_reason: recording.failure_reason,
            recording_url,
            recording_url_expires_at,
        })
    }

    /// From a call being written (an export of what get-call would serve).
    pub fn new(record: CallRecord, recording: RecordingState, link: Option<Link>) -> Result<Self, StoreError> {
        let call = StoredCall::from_record(record).map_err(|e| StoreError::Failed(format!("encode content: {e}")))?;
        CallDetail::from_stored(call, recording, link)
    }
}

/// What get-call serves for a stored call at `now`: its recording's state under `retention` and, when a link
/// may be served, a fresh one. No store reads: presigning signs locally with the client's credentials.
pub async fn call_detail(
    call: StoredCall,
    retention: Retention,
    now: DateTime<Utc>,
    recordings: &S3Recordings,
) -> Result<CallDetail, ApiError> {
    let state = recording::state(&call.summary, call.recording.as_ref(), retention, now);
    let link = match &state.link {
        Some(grant) => Some(recordings.presign_get(&grant.key, now, grant.ttl).await?),
        None => None,
    };
    Ok(CallDetail::from_stored(call, state, link)?)
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
    pub recording_failure_reason: Option<String>,
}

impl CallListItem {
    pub fn new(summary: CallSummary, recording: RecordingState) -> Self {
        CallListItem {
            summary,
            recording_status: recording.status,
            recording_format: recording.format,
            recording_duration: recording.duration,
            recording_expires_at: recording.expires_at,
            recording_failure_reason: recording.failure_reason,
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
    /// Only when `includeTotal=true`: how many calls match, over all pages; with `total_exact` false, at
    /// least this many (what was counted before the budget ran out, or the page's own calls if more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whenever `total` is there: whether it is the exact count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_exact: Option<bool>,
}

/// A page of GET /api/v1/calls.
#[derive(Debug, Clone)]
pub struct CallPage {
    pub data: Vec<CallListItem>,
    pub pagination: Pagination,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn record() -> CallRecord {
        let value = serde_json::json!({
            "id": "call_123", "direction": "inbound", "status": "completed",
            "createdAt": "2025-01-15T10:30:00Z", "startTime": "2025-01-15T10:30:02Z", "endTime": "2025-01-15T10:35:30Z",
            "messages": [
                {"id": "m1", "role": "assistant", "content": "Hello \"there\"", "timestamp": "2025-01-15T10:30:03Z",
                 "words": [{"word": "Hello", "start": 0.5, "end": 0.9}]},
                {"id": "m2", "role": "tool", "content": "lookup called", "timestamp": "2025-01-15T10:30:05Z",
                 "toolInfo": {"name": "lookup", "arguments": {"q": 1}, "result": {"ok": true}}},
                {"id": "m3", "role": "user", "content": "Hi", "timestamp": "2025-01-15T10:30:06Z"}
            ],
            "events": [{"timestamp": "2025-01-15T10:30:00Z", "type": "call.created", "data": {}}],
            "latency": {"e2e": {"min": 400, "max": 1500, "p50": 780, "p90": 1100, "p95": 1200, "p99": 1450, "num": 12}}
        });
        let written = "2025-01-16T00:00:00Z".parse().unwrap();
        crate::validate::call(&TenantId::parse("acme").unwrap(), &value, None, written).unwrap()
    }

    fn served(record: CallRecord) -> serde_json::Value {
        let state = recording::state(&record.summary, None, Retention::days(30), Utc::now());
        serde_json::to_value(CallDetail::new(record, state, None).unwrap()).unwrap()
    }

    #[test]
    fn stored_content_is_served_as_the_typed_content_would_be() {
        let call = record();
        assert!(call.content.latency.is_some());
        let body = served(call.clone());
        assert_eq!(body["messages"], serde_json::to_value(&call.content.messages).unwrap());
        assert_eq!(body["events"], serde_json::to_value(&call.content.events).unwrap());
        assert_eq!(body["latency"], serde_json::to_value(&call.content.latency).unwrap());
        assert_eq!(body["transcript"], "Assistant: Hello \"there\"\nUser: Hi");
    }

    #[test]
    fn empty_content_is_served_as_empty_lists_and_null_latency() {
        let mut call = record();
        call.content = Default::default();
        let body = served(call);
        assert_eq!(body["messages"], serde_json::json!([]));
        assert_eq!(body["events"], serde_json::json!([]));
        assert_eq!(body["latency"], serde_json::Value::Null);
        assert_eq!(body["transcript"], "");
    }

    #[test]
    fn an_opted_out_call_serves_no_messages_and_no_transcript() {
        let mut call = record();
        call.summary.opt_out_sensitive_data_storage = true;
        let body = served(call);
        assert_eq!(body["messages"], serde_json::Value::Null);
        assert_eq!(body["transcript"], serde_json::Value::Null);
    }
}
