//! Copies recordings behind providers' links into the bucket: the capture queue's messages (SQS), one
//! [`CaptureJob`] each, through `callrecords::capture`. A message whose try failed in a way that may pass
//! is reported back (`batchItemFailures`), so the queue offers it again after its visibility timeout; on
//! the last try the recording is marked `failed` instead and the message is done. A message that is not a
//! job is logged and dropped: retrying it cannot help.

use callrecords::capture::{CaptureJob, Captured, Fetcher};
use callrecords::metrics::{self, Captures};
use callrecords::App;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[derive(Debug, Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records")]
    records: Vec<SqsMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsMessage {
    message_id: String,
    body: String,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Debug, Default, Deserialize)]
struct Attributes {
    #[serde(rename = "ApproximateReceiveCount", default)]
    receive_count: Option<String>,
}

pub async fn handle(app: &App, fetcher: &Fetcher, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let batch: SqsEvent = serde_json::from_value(event.payload).map_err(|e| format!("not an SQS event: {e}"))?;
    let mut failures = Vec::new();
    let mut counted = Captures::default();
    for message in batch.records {
        let Ok(job) = serde_json::from_str::<CaptureJob>(&message.body) else {
            tracing::error!(message = %message.message_id, "not a capture job; dropped");
            continue;
        };
        let count = message
            .attributes
            .receive_count
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(1);
        let outcome = match app.capture(fetcher, &job, count).await {
            Ok(Captured::Stored { bytes, .. }) => {
                counted.stored += 1;
                json!({"status": "stored", "bytes": bytes})
            }
            Ok(Captured::Skipped(why)) => json!({"status": "skipped", "reason": why}),
            Ok(Captured::Failed(why)) => {
                counted.failed += 1;
                json!({"status": "failed", "reason": why})
            }
            Err(e) => {
                tracing::warn!(message = %message.message_id, call = %job.call_id, error = %e, "capture to be retried");
                failures.push(json!({"itemIdentifier": message.message_id}));
                counted.retried += 1;
                continue;
            }
        };
        tracing::info!(
            call = %job.call_id,
            status = outcome["status"].as_str(),
            "recording capture"
        );
    }
    metrics::captures(FUNCTION, counted);
    Ok(json!({ "batchItemFailures": failures }))
}
