//! The webhook receiver's operation: `POST /api/v1/webhooks/{provider}/{endpointId}`. In order, and nothing
//! of a later step runs when an earlier one fails:
//! 1. the body's size ([`MAX_DELIVERY_BYTES`], 413);
//! 2. the endpoint, by the id in the URL, and its provider equal to the one the URL names; then the
//!    provider's signature over the raw bytes ([`crate::webhook::signature`]). Any failure of this step is
//!    the same 401, and nothing is stored;
//! 3. the body read as the provider's event ([`crate::webhook::Provider::delivery`], 400 naming the path in
//!    the provider's payload); an event we keep nothing of is answered 200 and stored nowhere;
//! 4. the delivery merged into the stored call by stage ([`crate::webhook::merge`]), checked by
//!    [`crate::validate`] like any PUT, and written by the store's write protocol on condition that the call
//!    is still the one merged into; another delivery of the same call in between means merging again;
//! 5. a recording carried in the body (ElevenLabs' audio) stored as the call's recording object, which the
//!    bucket's object-created event then checks as it checks an upload; a recording behind a link queued
//!    for the capture worker ([`crate::capture`]), the call's recording `pending` meanwhile.
//!
//! The tenant is the endpoint's, never anything in the body.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::app::App;
use crate::capture::{self, CaptureJob};
use crate::error::ApiError;
use crate::ids::{CallId, TenantId};
use crate::model::{self, CallStatus, RecordingStatus, StoredRecording};
use crate::recording;
use crate::store::calls::{Condition, Rules};
use crate::store::Written;
use crate::validate::{self, RecordingFormat};
use crate::webhook::endpoint::{self, WebhookEndpoint};
use crate::webhook::signature::{self, Headers};
use crate::webhook::{self, Delivery, Provider, RecordingSource, Sources};

/// The largest delivery taken: a Lambda function's synchronous payload limit, which also bounds an
/// ElevenLabs audio delivery (base64 MP3, about 4 minutes at 128 kbit/s).
pub const MAX_DELIVERY_BYTES: usize = 6 * 1024 * 1024;

/// Times a delivery is merged again after another write of its call got in between.
const ATTEMPTS: u32 = 12;

/// Fields of a served call that a merge never carries over: derived, or the recording's (the server's).
const NOT_MERGED: [&str; 11] = [
    "id",
    "messagesCount",
    "transcript",
    "updatedAt",
    "recordingStatus",
    "recordingFormat",
    "recordingDuration",
    "recordingExpiresAt",
    "recordingFailureReason",
    "recordingUrl",
    "recordingUrlExpiresAt",
];

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    /// The call it wrote (`<provider>:<their id>`), or `null` for an event we keep nothing of.
    pub call_id: Option<String>,
    /// `created`, `updated`, `unchanged` or `ignored`.
    pub outcome: &'static str,
}

impl App {
    /// One delivery, as the module docs describe.
    pub async fn receive_webhook<H: Headers + ?Sized>(
        &self,
        provider: &str,
        endpoint_id: &str,
        headers: &H,
        body: &[u8],
    ) -> Result<Received, ApiError> {
        if body.len() > MAX_DELIVERY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_DELIVERY_BYTES,
            });
        }
        let endpoint = self.authenticate_delivery(provider, endpoint_id, headers, body).await?;
        let tenant = TenantId::parse(&endpoint.tenant_id).map_err(|_| ApiError::Internal)?;
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", format!("is not JSON: {e}")))?;
        let Some(delivery) = endpoint.provider.delivery(&value)? else {
            return Ok(Received {
                call_id: None,
                outcome: "ignored",
            });
        };
        let id = CallId::parse(&endpoint.provider.call_id(&delivery.call_id))
            .map_err(|e| ApiError::invalid("call id", e.to_string()))?;
        let outcome = self.merge_delivery(&tenant, &id, &delivery).await?;
        match &delivery.recording {
            Some(RecordingSource::Inline { format, bytes }) => {
                self.store_inline_recording(&tenant, &id, format, bytes).await?
            }
            Some(RecordingSource::Url(url)) => self.queue_capture(&tenant, &id, endpoint.provider, url).await?,
            None => {}
        }
        Ok(Received {
            call_id: Some(id.as_str().to_owned()),
            outcome,
        })
    }

    /// Step 2: the endpoint the URL names, if the body is signed by one of its secrets.
    async fn authenticate_delivery<H: Headers + ?Sized>(
        &self,
        provider: &str,
        endpoint_id: &str,
        headers: &H,
        body: &[u8],
    ) -> Result<WebhookEndpoint, ApiError> {
        let refuse = |why: &str| {
            tracing::info!(
                provider,
                endpoint = endpoint_id,
                reason = why,
                "webhook delivery refused"
            );
            ApiError::BadSignature
        };
        let Some(provider) = Provider::parse(provider) else {
            return Err(refuse("unknown provider"));
        };
        if !endpoint::is_endpoint_id(endpoint_id) {
            return Err(refuse("not an endpoint id"));
        }
        let Some(endpoint) = self.store.get_endpoint(endpoint_id).await? else {
            return Err(refuse("unknown endpoint"));
        };
        if endpoint.provider != provider {
            return Err(refuse("endpoint of another provider"));
        }
        let now = self.clock.now();
        signature::verify(provider, headers, body, &endpoint.accepted(now), now).map_err(|r| refuse(r.as_str()))?;
        Ok(endpoint)
    }

    /// Step 4: merge, check, write; again from a fresh read when another write got in between.
    async fn merge_delivery(
        &self,
        tenant: &TenantId,
        id: &CallId,
        delivery: &Delivery,
    ) -> Result<&'static str, ApiError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                crate::write::pause(attempt).await;
            }
            let now = self.clock.now();
            let stored = self.store.get_call(tenant, id).await?;
            let (fields, sources, condition, stored_status) = match stored {
                Some(call) => {
                    let revision = call.revision.clone().ok_or(ApiError::Internal)?;
                    let sources = call.webhook_sources.clone().unwrap_or_default();
                    let status = call.summary.status;
                    let Value::Object(mut fields) = self.as_served(call, now)? else {
                        return Err(ApiError::Internal);
                    };
                    for name in NOT_MERGED {
                        fields.remove(name);
                    }
                    (fields, sources, Condition::Revision(revision), Some(status))
                }
                None => (Map::new(), Sources::new(), Condition::Absent, None),
            };
            let (mut merged, mut sources) = webhook::merge(Some((&fields, &sources)), delivery);
            keep_final_status(&mut merged, &mut sources, stored_status, &fields);
            merged.insert("id".into(), Value::String(id.as_str().to_owned()));
            let record = validate::call(tenant, &Value::Object(merged), Some(id), now)?;
            let rules = Rules {
                condition,
                keep_recording: true,
                rule: Some(model::lifecycle),
                webhook_sources: Some(sources),
            };
            match self.store.write_call(tenant, record, &rules, now).await? {
                Written::Created(_) => return Ok("created"),
                Written::Replaced(saved) => {
                    self.drop_recording(saved.dropped_recording).await;
                    return Ok("updated");
                }
                Written::Unchanged(_) => return Ok("unchanged"),
                Written::Superseded | Written::PreconditionFailed => continue,
                Written::Refused { field, reason } => return Err(ApiError::Conflict { field, reason }),
            }
        }
        Err(ApiError::ServiceUnavailable {
            retry_after: std::time::Duration::from_secs(1),
        })
    }

    /// Step 5: the audio a delivery carried, stored as the call's recording object. The call's recording is
    /// `pending` at that key first, so the object-created check finds a call waiting for it. A repeat of
    /// the delivery finds the recording already there and does nothing.
    async fn store_inline_recording(
        &self,
        tenant: &TenantId,
        id: &CallId,
        format: &str,
        bytes: &[u8],
    ) -> Result<(), ApiError> {
        let Ok(format) = serde_json::from_value::<RecordingFormat>(Value::String(format.to_owned())) else {
            tracing::warn!(call = %id, format, "webhook audio of a format we do not store; dropped");
            return Ok(());
        };
        let now = self.clock.now();
        for _ in 0..ATTEMPTS {
            let read = self
                .store
                .read_for_update(tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            if read.summary.opt_out_sensitive_data_storage {
                return Ok(());
            }
            let key = recording::object_key(tenant, id, read.summary.created_at, format.as_str());
            let already = read.recording.as_ref().is_some_and(|r| {
                r.key.as_deref() == Some(key.as_str())
                    && matches!(
                        r.status,
                        RecordingStatus::Pending | RecordingStatus::Completed | RecordingStatus::Expired
                    )
            });
            if already {
                return Ok(());
            }
            let pending = StoredRecording::pending(Some(format.as_str()), Some(key.clone()));
            if recording::expires_at(&read.summary, &pending, self.config.retention) <= now {
                return Ok(());
            }
            if self
                .store
                .update_recording(tenant, id, &read, &pending)
                .await?
                .is_none()
            {
                continue;
            }
            self.recordings.put(&key, bytes.to_vec(), format.content_type()).await?;
            return Ok(());
        }
        Err(ApiError::ServiceUnavailable {
            retry_after: std::time::Duration::from_secs(1),
        })
    }
}

impl App {
    /// Step 5 for a link: the recording `pending` and a [`CaptureJob`] queued, unless the recording is
    /// already stored (or on its way: pending at its object's key). A repeat while the job waits queues it
    /// again; the worker finds the recording there and does nothing. A link that could never be fetched
    /// (not https, a host off the provider's list) marks the recording `failed` at once.
    async fn queue_capture(
        &self,
        tenant: &TenantId,
        id: &CallId,
        provider: Provider,
        url: &str,
    ) -> Result<(), ApiError> {
        if self.capture_queue.url().is_none() {
            tracing::warn!(call = %id, "no capture queue configured: the recording link is not followed");
            return Ok(());
        }
        for _ in 0..ATTEMPTS {
            let read = self
                .store
                .read_for_update(tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            if read.summary.opt_out_sensitive_data_storage {
                return Ok(());
            }
            let current = read.recording.as_ref();
            let settled = current.is_some_and(|r| match r.status {
                RecordingStatus::Completed | RecordingStatus::Expired => true,
                RecordingStatus::Pending => r.key.is_some(),
                _ => false,
            });
            if settled {
                return Ok(());
            }
            let next = match capture::refused(url, provider, &self.config.capture) {
                Some(reason) => StoredRecording::failed(reason),
                None => StoredRecording::pending(None, None),
            };
            if current != Some(&next) && self.store.update_recording(tenant, id, &read, &next).await?.is_none() {
                continue;
            }
            if next.status == RecordingStatus::Pending {
                let job = CaptureJob {
                    tenant: tenant.as_str().to_owned(),
                    call_id: id.as_str().to_owned(),
                    provider,
                    url: url.to_owned(),
                };
                self.capture_queue.send(&job).await?;
            }
            return Ok(());
        }
        Err(ApiError::ServiceUnavailable {
            retry_after: std::time::Duration::from_secs(1),
        })
    }
}

/// A call whose stored status is final keeps it against a delivery that says otherwise (a call written by
/// the API first, then a late `call_started`): the lifecycle rule, applied without refusing the delivery.
fn keep_final_status(
    merged: &mut Map<String, Value>,
    sources: &mut Sources,
    stored: Option<CallStatus>,
    stored_fields: &Map<String, Value>,
) {
    if !stored.is_some_and(CallStatus::is_final) {
        return;
    };
    let incoming: Option<CallStatus> = merged
        .get("status")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    if incoming.is_some_and(|s| !s.is_final()) {
        if let Some(v) = stored_fields.get("status") {
            merged.insert("status".into(), v.clone());
        }
        sources.remove("status");
    }
}
