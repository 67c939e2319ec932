//! Recording retention and access.
//!
//! A recording expires `retention` after it was made (the call's end when that is unknown). S3's lifecycle
//! rule deletes the object some time after that (it rounds to the next midnight UTC and runs
//! asynchronously), so the API enforces the moment itself: from `expiresAt` on, the status is `expired` and
//! no link is made, whatever S3 still holds. A link lasts at most one hour and never past `expiresAt`.

use std::time::{Duration, SystemTime};

use std::sync::Arc;

use aws_sdk_s3::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::presigning::PresigningConfig;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::error::StoreError;
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

/// When retention of a recording ends.
pub fn expires_at(summary: &CallSummary, rec: &StoredRecording, retention: Retention) -> DateTime<Utc> {
    made_at(summary, rec) + retention.as_chrono()
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
        };
    };
    let expires = expires_at(summary, rec, retention);
    let expired = rec.status == RecordingStatus::Expired || now >= expires;
    let status = if expired { RecordingStatus::Expired } else { rec.status };
    let link = match (&rec.key, status) {
        (Some(key), RecordingStatus::Completed) => {
            let left = (expires - now).to_std().unwrap_or(Duration::ZERO);
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
    }
}

/// A presigned GET link and the real moment it stops working.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Presigns with the S3 client's own credentials. Signing is local: no request leaves the process.
#[derive(Debug, Clone)]
pub struct S3Recordings {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// The provider the client signs with, to learn when its credentials expire.
    credentials: Option<SharedCredentialsProvider>,
    cached: Arc<Mutex<Option<Credentials>>>,
}

/// Credentials this close to their expiry are fetched anew.
const CREDENTIALS_REFRESH: Duration = Duration::from_secs(300);

impl S3Recordings {
    /// `credentials`: the provider `client` signs with (from the `SdkConfig` it was built from).
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        S3Recordings {
            client,
            bucket: bucket.into(),
            credentials,
            cached: Arc::default(),
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl S3Recordings {
    /// How long the signing credentials remain valid, when the SDK knows (a Lambda role's session
    /// credentials expire; a link signed with them dies with them). Whole seconds.
    async fn credentials_left(&self) -> Result<Duration, StoreError> {
        let Some(provider) = &self.credentials else {
            return Ok(Duration::MAX);
        };
        let mut cached = self.cached.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|c| c.expiry().is_none_or(|e| e > SystemTime::now() + CREDENTIALS_REFRESH));
        if !fresh {
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| StoreError::Unavailable(format!("signing credentials: {e}")))?;
            *cached = Some(credentials);
        }
        Ok(match cached.as_ref().and_then(|c| c.expiry()) {
            Some(expiry) => Duration::from_secs(expiry.duration_since(SystemTime::now()).unwrap_or_default().as_secs()),
            None => Duration::MAX,
        })
    }

    /// A presigned GET link to `key`, valid from `now` for `ttl`.
    pub async fn presign_get(&self, key: &str, now: DateTime<Utc>, ttl: Duration) -> Result<Link, StoreError> {
        let ttl = ttl.min(self.credentials_left().await?);
        if ttl < Duration::from_secs(1) {
            return Err(StoreError::Unavailable(
                "signing credentials are about to expire".into(),
            ));
        }
        // The signature starts at the injected clock's now, so the link's lifetime and `expiresAt` agree.
        let start = SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                u64::try_from(now.timestamp()).map_err(|_| StoreError::Failed("time before 1970".into()))?,
            );
        let config = PresigningConfig::builder()
            .start_time(start)
            .expires_in(ttl)
            .build()
            .map_err(|e| StoreError::Failed(format!("presigning config: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StoreError::Failed(format!("presign: {e}")))?;
        let whole_seconds = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(Link {
            url: request.uri().to_owned(),
            expires_at: whole_seconds + ttl,
        })
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
