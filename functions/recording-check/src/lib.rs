//! Checks a recording once its upload lands: EventBridge's S3 "Object Created" event for an object under
//! `recordings/` (the bucket sends its events to EventBridge, so the bucket names no function and the
//! template has no circular dependency). The bytes are checked against the announced format, the duration
//! is read from the file, and the call's recording becomes `completed` or `failed` with a reason. See
//! `callrecords::write::App::check_recording`.
//!
//! A failure that may pass (S3 or DynamoDB unavailable) is returned as an error, so that Lambda's
//! asynchronous retries run the check again; the check is idempotent.

use callrecords::metrics;
use callrecords::write::Checked;
use callrecords::App;
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// The parts of the event the check reads.
#[derive(Debug, Deserialize)]
struct ObjectCreated {
    #[serde(rename = "detail-type")]
    detail_type: String,
    time: DateTime<Utc>,
    detail: Detail,
}

#[derive(Debug, Deserialize)]
struct Detail {
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Object {
    /// As stored. (S3's own notifications URL-encode keys and EventBridge's do not; our keys hold no `%`,
    /// `+` or space, so percent-decoding is exact for either.)
    key: String,
    size: u64,
}

pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let created: ObjectCreated =
        serde_json::from_value(event.payload).map_err(|e| format!("not an S3 Object Created event: {e}"))?;
    if created.detail_type != "Object Created" {
        return Err(format!("not an S3 Object Created event: {}", created.detail_type).into());
    }
    let key = percent_encoding::percent_decode_str(&created.detail.object.key)
        .decode_utf8()
        .map_err(|e| format!("object key: {e}"))?
        .into_owned();
    let checked = app
        .check_recording(&key, created.detail.object.size, created.time)
        .await?;
    metrics::recording_checked(FUNCTION, &checked);
    let answer = match &checked {
        Checked::Completed { duration } => json!({"status": "completed", "duration": duration}),
        Checked::Failed { reason } => json!({"status": "failed", "reason": reason}),
        Checked::Deleted => json!({"status": "deleted"}),
    };
    tracing::info!(
        status = answer["status"].as_str(),
        bytes = created.detail.object.size,
        "recording checked"
    );
    Ok(answer)
}
