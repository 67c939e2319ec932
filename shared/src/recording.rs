//! Recording retention and access.
//!
//! A recording expires `retention` after it was made (the call's end when that is unknown). S3's lifecycle
//! rule deletes the object some time after that (it rounds to the next midnight UTC and runs
//! asynchronously), so the API enforces the moment itself: from `expiresAt` on, the status is `expired` and
//! no link is made, whatever S3 still holds. A link lasts at most one hour and never past `expiresAt`.
//!
//! Pure rules only: the links themselves are made by the S3 adapter ([`crate::store::s3`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ids::{CallId, TenantId};
use crate::model::{CallSummary, RecordingStatus, StoredRecording};

/// Prefix of every recording object; the lifecycle rule in template.yaml applies to it.
pub const RECORDINGS_PREFIX: &str = "recordings/";

/// Longest life of a presigned link.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(3600);

/// How long recordings are kept. One template parameter (`RecordingRetentionDays`) feeds both the S3
/// lifecycle rule and this value in every function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    pub const fn days(days: u32) -> Self {
        Retention { days }
    }

    pub fn in_days(self) -> u32 {
        self.days
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.days))
    }
}

/// The S3 key of a call's recording: `recordings/<tenant>/<yyyy>/<mm>/<dd>/<callId>.<format>`, dated by the
/// call's creation, so keys are stable and an operator can find a day's recordings of a tenant.
pub fn object_key(tenant: &TenantId, call: &CallId, created: DateTime<Utc>, format: &str) -> String {
    format!(
        "{RECORDINGS_PREFIX}{tenant}/{}/{call}.{format}",
        created.format("%Y/%m/%d")
    )
}

/// The tenant, call and format an object key of [`object_key`] names; `None` for any other key.
pub fn parse_object_key(key: &str) -> Option<(TenantId, CallId, String)> {
    let rest = key.strip_prefix(RECORDINGS_PREFIX)?;
    let mut parts = rest.split('/');
    let (tenant, y, m, d, file) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() {
        return None;
    }
    let date_ok = [(y, 4), (m, 2), (d, 2)]
        .iter()
        .all(|(p, n)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit()));
    let (call, format) = file.rsplit_once('.')?;
    let tenant = TenantId::parse(tenant).ok()?;
    let call = CallId::parse(call).ok()?;
    (date_ok && !format.is_empty()).then(|| (tenant, call, format.to_owned()))
}

/// What the API says about a call's recording at a given moment.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingState {
    pub status: RecordingStatus,
    pub format: Option<String>,
    pub duration: Option<f64>,
    /// When retention ends; `None` when there is no recording.
    pub expires_at: Option<DateTime<Utc>>,
    /// Present only when a link may be made now: the object and how long the link may live.
    pub link: Option<LinkGrant>,
    /// Why a `failed` recording failed, when known.
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LinkGrant {
    pub key: String,
    pub ttl: Duration,
}

/// When a recording was made: its own time, or when that is unknown the call's end, start or creation.
pub fn made_at(summary: &CallSummary, rec: &StoredRecording) -> DateTime<Utc> {
    rec.recorded_at
        .or(summary.end_time)
        .or(summary.start_time)
        .unwrap_or(summary.created_at)
}

/// When retention of a recording ends. Near the end of the date type (only a row written by hand gets
/// there) it ends at once rather than overflow: a recording whose end cannot be told is never served.
pub fn expires_at(summary: &CallSummary, rec: &StoredRecording, retention: Retention) -> DateTime<Utc> {
    let made = made_at(summary, rec);
    made.checked_add_signed(retention.as_chrono()).unwrap_or(made)
}

/// Whether a stored recording still has an object that retention will have to delete.
pub fn is_live(rec: &StoredRecording) -> bool {
    rec.key.is_some() && !matches!(rec.status, RecordingStatus::None | RecordingStatus::Expired)
}

pub fn state(
    summary: &CallSummary,
    rec: Option<&StoredRecording>,
    retention: Retention,
    now: DateTime<Utc>,
) -> RecordingState {
    let Some(rec) = rec.filter(|r| r.status != RecordingStatus::None) else {
        return RecordingState {
            status: RecordingStatus::None,
            format: None,
            duration: None,
            expires_at: None,
            link: None,
            failure_reason: None,
        };
    };
    let expires = expires_at(summary, rec, retention);
    let expired = rec.status == RecordingStatus::Expired || now >= expires;
    let status = if expired { RecordingStatus::Expired } else { rec.status };
    let link = match (&rec.key, status) {
        (Some(key), RecordingStatus::Completed) => {
            let left = expires.signed_duration_since(now).to_std().unwrap_or(Duration::ZERO);
            let ttl = left.min(MAX_LINK_TTL);
            // A link must live at least a second to be worth handing out; S3 also refuses zero.
            (ttl >= Duration::from_secs(1)).then(|| LinkGrant {
                key: key.clone(),
                ttl: Duration::from_secs(ttl.as_secs()),
            })
        }
        _ => None,
    };
    let status = if link.is_none() && status == RecordingStatus::Completed && rec.key.is_some() {
        RecordingStatus::Expired
    } else {
        status
    };
    RecordingState {
        status,
        format: rec.format.clone(),
        duration: rec.duration,
        expires_at: Some(expires),
        link,
        failure_reason: rec.failure_reason.clone().filter(|_| status == RecordingStatus::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallStatus, Direction};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn summary() -> CallSummary {
        serde_json::from_value(serde_json::json!({
            "id": "c1", "direction": "inbound", "status": "completed",
            "createdAt": "2025-01-15T10:30:00Z", "startTime": "2025-01-15T10:30:00Z", "endTime": "2025-01-15T10:35:30Z"
        }))
        .unwrap()
    }

    fn recording(status: RecordingStatus) -> StoredRecording {
        StoredRecording {
            status,
            format: Some("m4a".into()),
            duration: Some(330.0),
            key: Some("recordings/t/2025/01/15/c1.m4a".into()),
            recorded_at: None,
            failure_reason: None,
        }
    }

    #[test]
    fn object_keys_parse_back_to_their_tenant_call_and_format() {
        let tenant = TenantId::parse("acme").unwrap();
        let call = CallId::parse("retell:abc.1").unwrap();
        let created = "2025-01-15T10:00:00Z".parse().unwrap();
        let key = object_key(&tenant, &call, created, "wav");
        assert_eq!(parse_object_key(&key), Some((tenant, call, "wav".to_owned())));
        for bad in [
            "recordings/acme/2025/01/15/c1",
            "recordings/acme/2025/1/15/c1.wav",
            "recordings/acme/2025/01/15/x/c1.wav",
            "other/acme/2025/01/15/c1.wav",
            "recordings/a b/2025/01/15/c1.wav",
        ] {
            assert_eq!(parse_object_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn retention_counts_from_the_end_of_the_call_when_the_recording_time_is_unknown() {
        let s = summary();
        assert_eq!(s.status, CallStatus::Completed);
        assert_eq!(s.direction, Direction::Inbound);
        let st = state(
            &s,
            Some(&recording(RecordingStatus::Completed)),
            Retention::days(30),
            at("2025-01-15T11:00:00Z"),
        );
        assert_eq!(st.expires_at, Some(at("2025-02-14T10:35:30Z")));
        assert_eq!(st.status, RecordingStatus::Completed);
        assert_eq!(st.link.unwrap().ttl, MAX_LINK_TTL);
    }

    #[test]
    fn one_second_before_retention_ends_the_link_lives_one_second() {
        let st = state(
            &summary(),
            Some(&recording(RecordingStatus::Completed)),
            Retention::days(30),
            at("2025-02-14T10:35:29Z"),
        );
        assert_eq!(st.status, RecordingStatus::Completed);
        assert_eq!(st.link.unwrap().ttl, Duration::from_secs(1));
    }

    #[test]
    fn expired_recording_is_never_presigned() {
        for now in ["2025-02-14T10:35:30Z", "2025-03-01T00:00:00Z"] {
            let st = state(
                &summary(),
                Some(&recording(RecordingStatus::Completed)),
                Retention::days(30),
                at(now),
            );
            assert_eq!(st.status, RecordingStatus::Expired, "{now}");
            assert_eq!(st.link, None, "{now}");
        }
    }

    #[test]
    fn a_recording_marked_expired_stays_expired_inside_retention() {
        let st = state(
            &summary(),
            Some(&recording(RecordingStatus::Expired)),
            Retention::days(30),
            at("2025-01-16T00:00:00Z"),
        );
        assert_eq!(st.status, RecordingStatus::Expired);
        assert_eq!(st.link, None);
    }

    #[test]
    fn pending_and_failed_recordings_get_no_link() {
        for status in [RecordingStatus::Pending, RecordingStatus::Failed] {
            let st = state(
                &summary(),
                Some(&recording(status)),
                Retention::days(30),
                at("2025-01-15T11:00:00Z"),
            );
            assert_eq!(st.status, status);
            assert_eq!(st.link, None);
        }
    }

    #[test]
    fn no_recording_is_status_none() {
        let st = state(&summary(), None, Retention::days(30), at("2025-01-15T11:00:00Z"));
        assert_eq!(st.status, RecordingStatus::None);
        assert_eq!(st.expires_at, None);
    }

    #[test]
    fn object_keys_are_dated_and_tenant_scoped() {
        let key = object_key(
            &TenantId::parse("user_123").unwrap(),
            &CallId::parse("call_123").unwrap(),
            at("2025-01-15T10:30:00Z"),
            "m4a",
        );
        assert_eq!(key, "recordings/user_123/2025/01/15/call_123.m4a");
    }
}
