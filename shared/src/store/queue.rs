//! The capture queue (SQS): the webhook receiver puts a recording to copy on it, the capture worker takes
//! it off (its event source mapping does the receiving; see template.yaml).

use aws_sdk_sqs::error::DisplayErrorContext;

use crate::capture::CaptureJob;
use crate::error::StoreError;

#[derive(Debug, Clone)]
pub struct CaptureQueue {
    client: aws_sdk_sqs::Client,
    url: Option<String>,
}

impl CaptureQueue {
    /// `url`: the queue; `None` where no queue is configured (then nothing is sent).
    pub fn new(client: aws_sdk_sqs::Client, url: Option<String>) -> Self {
        CaptureQueue { client, url }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Queues `job`; `false` when there is no queue.
    pub async fn send(&self, job: &CaptureJob) -> Result<bool, StoreError> {
        let Some(url) = &self.url else {
            return Ok(false);
        };
        let body = serde_json::to_string(job).map_err(|e| StoreError::Failed(format!("encode capture job: {e}")))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("SendMessage: {}", DisplayErrorContext(&e))))?;
        Ok(true)
    }
}
