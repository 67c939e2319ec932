//! Persistence: one DynamoDB table and one S3 bucket, behind adapters that speak the domain's words.
//!
//! One file per job, in the order a request meets them:
//! - [`layout`]: the one place that formats a key or names a stored attribute or index, and says what each
//!   index serves.
//! - [`codec`]: a call to its items and back (summary, compressed content parts), pure.
//! - [`calls`]: reading, writing and replacing calls, safe under concurrent writers (the write protocol).
//! - [`lists`]: list pages and counts on the list indexes.
//! - [`keys`]: API keys; [`webhooks`]: webhook endpoints.
//! - [`recordings`]: the expiry job's queries and marks, and the clean-up of replaced content.
//! - [`batch`]: batch requests with back-off, and Query paging.
//! - [`s3`]: every S3 call (presigned GET and PUT, head, delete, parts).
//! - [`queue`]: the capture queue (SQS).
//! - [`metrics`]: a request counter for tests and benchmarks.

pub mod batch;
pub mod calls;
pub mod codec;
pub mod keys;
pub mod layout;
pub mod lists;
pub mod metrics;
pub mod queue;
pub mod recordings;
pub mod s3;
pub mod webhooks;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;

pub use calls::Written;
pub use codec::{StoredCall, StoredContent};
pub use recordings::{DuePage, DueRecording, PageToken, StaleContent};
pub use s3::{Link, S3Recordings};

use crate::error::StoreError;

/// The DynamoDB adapter: calls, lists, keys and recording marks, in the layout of [`layout`].
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// The client, for set-up (creating the table) and tests.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Puts an item whose key must be unused (keys and endpoints have fresh ids): an existing item is never
    /// overwritten.
    pub(crate) async fn put_new(&self, item: codec::Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", layout::PK)
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }
}

/// Maps an SDK error to what a caller can do about it: throttling, timeouts and connection failures are
/// worth a retry later (503); anything else is a failure (500).
pub(crate) fn classify<E, R>(op: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable_codes = [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
        "TransactionInProgressException",
    ];
    let unavailable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| retryable_codes.contains(&c)),
        _ => false,
    };
    let text = format!("{op}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
    if unavailable {
        StoreError::Unavailable(text)
    } else {
        StoreError::Failed(text)
    }
}

/// A conditional write's outcome: `true` when it was made, `false` when its condition did not hold, any
/// other failure classified as [`classify`] does.
pub(crate) fn condition_held<T, E, R>(op: &str, result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if e.err().code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(classify(op, e)),
    }
}
