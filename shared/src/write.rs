//! The write side of the API, behind the write routes: PUT and PATCH of a call, DELETE of one call or of
//! every call of a customer's number, and the start of a recording upload. Every call goes in through
//! [`crate::validate`] and the store's write protocol ([`crate::store::calls`]); the handlers in `functions/`
//! are glue around these.
//!
//! The rules a write keeps (docs/API.md, "Writing calls"):
//! - the stored recording is the server's: an upload and its check, and retention, change it; what a body
//!   says of it (`recordingStatus`, `recordingFormat`, `recordingDuration`) is accepted and ignored;
//! - a call that has ended never goes back to a status that is not final ([`crate::model::lifecycle`]),
//!   checked against what is stored in the same conditional commit that writes;
//! - `If-Match` / `If-None-Match: *` are [`Condition`]s of that commit.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::ids::{CallId, TenantId};
#[cfg(feature = "audio")]
use crate::model::RecordingStatus;
use crate::model::{self, CallRecord, StoredRecording};
use crate::recording;
use crate::store::calls::{Condition, Rules, Saved};
use crate::store::s3::Upload;
use crate::store::{StoredCall, Written};
use crate::validate::{self, UploadRequest};
use crate::view::{self, CallDetail};

/// Times a write is tried again after another write got in between (a PATCH's read and its commit, a
/// delete's read and its transaction).
const ATTEMPTS: usize = 5;

/// Times a PATCH is tried again when other writes of the call committed between its read and its write:
/// each of them made progress, so this bounds only how long one PATCH may wait behind others.
const PATCH_ATTEMPTS: u32 = 12;

/// A jittered pause before try `attempt` (from 1) of a PATCH: 20 ms doubling up to 640 ms, spread so that
/// writers that met do not meet again.
pub(crate) async fn pause(attempt: u32) {
    let base = 20u64 << attempt.min(5);
    let mut jitter = [0u8; 1];
    let _ = getrandom::fill(&mut jitter);
    tokio::time::sleep(Duration::from_millis(base * u64::from(jitter[0]) / 255)).await;
}

/// Calls an erasure request deletes at most.
pub const ERASE_LIMIT: usize = 100;

/// Deletes an erasure runs at once.
const ERASE_CONCURRENCY: usize = 8;

/// How long an upload link lives.
pub const UPLOAD_TTL: Duration = Duration::from_secs(3600);

/// What a PUT or PATCH did: the call as GET now returns it, and its `ETag`.
pub struct WriteOutcome {
    pub created: bool,
    pub etag: String,
    pub call: CallDetail,
}

/// The answer to an erasure request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Erased {
    pub deleted: usize,
    pub has_more: bool,
}

/// The answer to an upload request: where and how to send the bytes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLink {
    pub upload_url: String,
    pub method: &'static str,
    pub headers: serde_json::Map<String, Value>,
    pub expires_at: DateTime<Utc>,
}

/// 503: the write met other writes (or a dependency failed) more times than it tries; a retry is safe.
fn busy() -> ApiError {
    ApiError::ServiceUnavailable {
        retry_after: Duration::from_secs(1),
    }
}

fn api_rules(condition: Condition) -> Rules {
    Rules {
        condition,
        keep_recording: true,
        rule: Some(model::lifecycle),
        webhook_sources: None,
    }
}

impl App {
    /// PUT /api/v1/calls/{callId}: creates or replaces the call with `body` (get-call's `data` format).
    pub async fn put_call(
        &self,
        tenant: &TenantId,
        id: &CallId,
        body: &Value,
        condition: Condition,
    ) -> Result<WriteOutcome, ApiError> {
        let now = self.clock.now();
        let record = validate::call(tenant, body, Some(id), now)?;
        match self.write(tenant, record, api_rules(condition.clone()), now).await? {
            Some(outcome) => Ok(outcome),
            // Another whole write came after this one: what is stored now is that one.
            None => self.current_outcome(tenant, id).await,
        }
    }

    /// PATCH /api/v1/calls/{callId}: `patch` (RFC 7396) applied to the call as GET returns it, then written
    /// as a PUT of the result would be, on condition that the call is still the one patched.
    pub async fn patch_call(
        &self,
        tenant: &TenantId,
        id: &CallId,
        patch: &Value,
        condition: Condition,
    ) -> Result<WriteOutcome, ApiError> {
        if condition == Condition::Absent {
            return Err(ApiError::invalid("If-None-Match", "a PATCH changes a call that exists"));
        }
        for attempt in 0..PATCH_ATTEMPTS {
            if attempt > 0 {
                pause(attempt).await;
            }
            let now = self.clock.now();
            let stored = self.store.get_call(tenant, id).await?.ok_or(ApiError::NotFound)?;
            let revision = stored.revision.clone().ok_or(ApiError::Internal)?;
            if let Condition::Revision(want) = &condition {
                if *want != revision {
                    return Err(ApiError::PreconditionFailed("the call has changed since that ETag"));
                }
            }
            let doc = validate::patched(&self.as_served(stored, now)?, patch);
            let record = validate::call(tenant, &doc, Some(id), now)?;
            match self
                .write(tenant, record, api_rules(Condition::Revision(revision)), now)
                .await
            {
                Ok(Some(outcome)) => return Ok(outcome),
                // Changed between the read and the write: patch what is there now, unless the client
                // named the version it patches.
                Ok(None) | Err(ApiError::PreconditionFailed(_)) if !matches!(condition, Condition::Revision(_)) => {
                    continue
                }
                Ok(None) => return Err(ApiError::PreconditionFailed("the call has changed since that ETag")),
                Err(e) => return Err(e),
            }
        }
        Err(busy())
    }

    /// One write under `rules`; `None` when another write replaced it whole.
    async fn write(
        &self,
        tenant: &TenantId,
        record: CallRecord,
        rules: Rules,
        now: DateTime<Utc>,
    ) -> Result<Option<WriteOutcome>, ApiError> {
        let content = record.content.clone();
        let written = self.store.write_call(tenant, record, &rules, now).await?;
        let (created, saved) = match written {
            Written::Created(saved) => (true, saved),
            Written::Replaced(saved) | Written::Unchanged(saved) => (false, saved),
            Written::Superseded => return Ok(None),
            Written::PreconditionFailed => {
                return Err(ApiError::PreconditionFailed(match rules.condition {
                    Condition::Absent => "the call exists",
                    Condition::Present => "the call does not exist",
                    _ => "the call has changed since that ETag",
                }))
            }
            Written::Refused { field, reason } => return Err(ApiError::Conflict { field, reason }),
        };
        let Saved {
            revision,
            summary,
            recording,
            dropped_recording,
        } = saved;
        self.drop_recording(dropped_recording).await;
        let record = CallRecord {
            summary,
            recording,
            content,
        };
        let state = recording::state(&record.summary, record.recording.as_ref(), self.config.retention, now);
        let link = match &state.link {
            Some(grant) => Some(self.recordings.presign_get(&grant.key, now, grant.ttl).await?),
            None => None,
        };
        Ok(Some(WriteOutcome {
            created,
            etag: revision,
            call: CallDetail::new(record, state, link)?,
        }))
    }

    /// Deletes the object of a recording a write let go (the call opted out of sensitive-data storage). The
    /// call no longer names it, so nothing can serve it; a failure leaves it to the bucket's lifecycle rule.
    pub(crate) async fn drop_recording(&self, key: Option<String>) {
        if let Some(key) = key {
            if let Err(e) = self.recordings.delete(&key).await {
                tracing::warn!(key, error = %e, "the recording of an opted-out call is left to the lifecycle rule");
            }
        }
    }

    /// The stored call as a write's answer.
    async fn current_outcome(&self, tenant: &TenantId, id: &CallId) -> Result<WriteOutcome, ApiError> {
        let stored = self.store.get_call(tenant, id).await?.ok_or(ApiError::NotFound)?;
        let etag = stored.revision.clone().ok_or(ApiError::Internal)?;
        let call = view::call_detail(stored, self.config.retention, self.clock.now(), &self.recordings).await?;
        Ok(WriteOutcome {
            created: false,
            etag,
            call,
        })
    }

    /// A stored call as GET serves it (without a link), as JSON: what a PATCH applies to.
    pub(crate) fn as_served(&self, stored: StoredCall, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let state = recording::state(&stored.summary, stored.recording.as_ref(), self.config.retention, now);
        let detail = CallDetail::from_stored(stored, state, None)?;
        serde_json::to_value(&detail).map_err(|e| {
            tracing::error!(error = %e, "encoding a stored call failed");
            ApiError::Internal
        })
    }

    /// DELETE /api/v1/calls/{callId}: the recording object, then every item of the call. When the object
    /// cannot be deleted, nothing is (503; a retry is safe).
    pub async fn delete_call(&self, tenant: &TenantId, id: &CallId) -> Result<(), ApiError> {
        for _ in 0..ATTEMPTS {
            let read = self
                .store
                .read_for_update(tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            if let Some(key) = read.recording.as_ref().and_then(|r| r.key.as_deref()) {
                self.recordings.delete(key).await.map_err(|e| {
                    tracing::warn!(call = %id, error = %e, "recording object not deleted; the call is kept");
                    busy()
                })?;
            }
            if self.store.delete_call(tenant, id, &read).await? {
                return Ok(());
            }
        }
        Err(busy())
    }

    /// DELETE /api/v1/calls?phoneNumber=…: up to [`ERASE_LIMIT`] of the tenant's calls whose customer
    /// number is `number` (E.164), recordings included, each as [`Self::delete_call`] deletes one.
    pub async fn erase(&self, tenant: &TenantId, number: &str) -> Result<Erased, ApiError> {
        let (ids, has_more) = self.store.customer_calls(tenant, number, ERASE_LIMIT).await?;
        let mut deletes = futures::stream::iter(ids)
            .map(|id| async move { self.delete_call(tenant, &id).await })
            .buffer_unordered(ERASE_CONCURRENCY);
        let mut deleted = 0;
        let mut failure = None;
        while let Some(result) = deletes.next().await {
            match result {
                Ok(()) => deleted += 1,
                // Deleted meanwhile (the index lags the table by a moment).
                Err(ApiError::NotFound) => {}
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(Erased { deleted, has_more }),
        }
    }

    /// POST /api/v1/calls/{callId}/recording: the call's recording becomes `pending` at its object key,
    /// and a presigned PUT of that object, bound to the announced type and length, is handed out.
    pub async fn start_upload(
        &self,
        tenant: &TenantId,
        id: &CallId,
        upload: &UploadRequest,
    ) -> Result<UploadLink, ApiError> {
        let now = self.clock.now();
        for _ in 0..ATTEMPTS {
            let read = self
                .store
                .read_for_update(tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            if read.summary.opt_out_sensitive_data_storage {
                return Err(ApiError::Conflict {
                    field: "optOutSensitiveDataStorage".into(),
                    reason: "the call opted out of sensitive-data storage: no recording is kept".into(),
                });
            }
            let key = recording::object_key(tenant, id, read.summary.created_at, upload.format.as_str());
            let pending = StoredRecording::pending(Some(upload.format.as_str()), Some(key.clone()));
            if recording::expires_at(&read.summary, &pending, self.config.retention) <= now {
                return Err(ApiError::Conflict {
                    field: "endTime".into(),
                    reason: "the call ended longer ago than recordings are kept".into(),
                });
            }
            if self
                .store
                .update_recording(tenant, id, &read, &pending)
                .await?
                .is_none()
            {
                continue;
            }
            let length = i64::try_from(upload.content_length).map_err(|_| ApiError::Internal)?;
            let Upload {
                url,
                headers,
                expires_at,
            } = self
                .recordings
                .presign_put(&key, upload.format.content_type(), length, now, UPLOAD_TTL)
                .await?;
            return Ok(UploadLink {
                upload_url: url,
                method: "PUT",
                // What the upload must send; a tracing header the runtime adds is not the client's.
                headers: headers
                    .into_iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("x-amzn-trace-id"))
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
                expires_at,
            });
        }
        Err(busy())
    }
}

/// What the check of a landed recording did.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// The call's recording is `completed`, with this duration in seconds.
    Completed { duration: f64 },
    /// The call's recording is `failed` for this reason, and the object is deleted.
    Failed { reason: String },
    /// No call waits for this object (deleted meanwhile, another upload replaced it, retention has
    /// ended): the object is deleted, never served.
    Deleted,
}

#[cfg(feature = "audio")]
impl App {
    /// An object landed in the bucket (S3 object-created, through EventBridge): check its bytes against
    /// the format its call announced, read its duration from the file, and mark the call's recording
    /// `completed` or `failed`. Retention counts from the call's end, else from `landed_at`.
    pub async fn check_recording(
        &self,
        key: &str,
        size: u64,
        landed_at: DateTime<Utc>,
    ) -> Result<Checked, crate::error::StoreError> {
        use crate::error::StoreError;
        let Some((tenant, id, format)) = recording::parse_object_key(key) else {
            tracing::warn!(key, "an object outside the recordings layout; left alone");
            return Ok(Checked::Deleted);
        };
        let verdict = if size == 0 {
            Err(crate::audio::Rejected("empty file".into()))
        } else {
            let reader = self.recordings.range_reader(key, size);
            let format = format.clone();
            tokio::task::spawn_blocking(move || crate::audio::inspect(&format, Box::new(reader), size))
                .await
                .map_err(|e| StoreError::Failed(format!("recording check: {e}")))?
        };
        for _ in 0..ATTEMPTS {
            let Some(read) = self.store.read_for_update(&tenant, &id).await? else {
                self.recordings.delete(key).await?;
                return Ok(Checked::Deleted);
            };
            let waiting = read
                .recording
                .as_ref()
                .filter(|r| r.key.as_deref() == Some(key) && r.status != RecordingStatus::Expired);
            let Some(current) = waiting else {
                self.recordings.delete(key).await?;
                return Ok(Checked::Deleted);
            };
            let (next, checked) = match &verdict {
                Ok(audio) => (
                    StoredRecording {
                        status: RecordingStatus::Completed,
                        format: Some(format.clone()),
                        duration: Some(audio.duration),
                        key: Some(key.to_owned()),
                        recorded_at: Some(read.summary.end_time.unwrap_or(landed_at)),
                        failure_reason: None,
                    },
                    Checked::Completed {
                        duration: audio.duration,
                    },
                ),
                Err(rejected) => (
                    StoredRecording {
                        format: Some(format.clone()),
                        ..StoredRecording::failed(rejected.0.clone())
                    },
                    Checked::Failed {
                        reason: rejected.0.clone(),
                    },
                ),
            };
            if next.status == RecordingStatus::Completed
                && recording::expires_at(&read.summary, &next, self.config.retention) <= self.clock.now()
            {
                self.recordings.delete(key).await?;
                return Ok(Checked::Deleted);
            }
            if current == &next {
                return Ok(checked);
            }
            if self.store.update_recording(&tenant, &id, &read, &next).await?.is_some() {
                if next.status == RecordingStatus::Failed {
                    self.recordings.delete(key).await?;
                }
                return Ok(checked);
            }
        }
        Err(StoreError::Unavailable(format!(
            "call {id}: recording not marked after {ATTEMPTS} tries"
        )))
    }
}
