//! Building the AWS clients, once per process, with timeouts and retries chosen on purpose.
//!
//! - Retries: the SDK's standard mode, 3 attempts, with its jittered backoff: enough to ride out a throttled
//!   request, few enough that an API call under API Gateway's 30 s limit fails fast with a 503.
//! - Timeouts: 1 s to connect, 2 s per attempt, 5 s per operation. DynamoDB and S3 answer in milliseconds
//!   from inside the region; a request that takes seconds is a sick connection, and a fresh attempt on a
//!   new one does better than waiting.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::store::metrics::RequestCounter;

pub async fn sdk_config() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// A DynamoDB client; with a counter, every request it sends is counted.
pub fn dynamodb(sdk: &SdkConfig, counter: Option<RequestCounter>) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(counter) = counter {
        builder = builder.interceptor(counter);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

pub fn s3(sdk: &SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub fn sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}
