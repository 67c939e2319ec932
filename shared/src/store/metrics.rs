//! Counts what a client does against DynamoDB: requests sent (every attempt, retries included) and items
//! read. Attached to a client as an SDK interceptor, so tests and benchmarks count real traffic through the
//! production code path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    items_read: AtomicU64,
}

/// A shared counter; clone it into a client config and read it from the test.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Counts>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: u64,
    pub items_read: u64,
}

impl RequestCounter {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.0.requests.load(Ordering::SeqCst),
            items_read: self.0.items_read.load(Ordering::SeqCst),
        }
    }

    /// What happened since `before`.
    pub fn since(&self, before: Snapshot) -> Snapshot {
        let now = self.snapshot();
        Snapshot {
            requests: now.requests - before.requests,
            items_read: now.items_read - before.items_read,
        }
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_attempt(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.requests.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn read_after_execution(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = ctx.output_or_error() else {
            return Ok(());
        };
        let items = if let Some(q) = output.downcast_ref::<QueryOutput>() {
            u64::try_from(q.scanned_count()).unwrap_or(0)
        } else if let Some(g) = output.downcast_ref::<GetItemOutput>() {
            u64::from(g.item().is_some())
        } else if let Some(b) = output.downcast_ref::<BatchGetItemOutput>() {
            b.responses()
                .map(|r| r.values().map(|v| v.len() as u64).sum())
                .unwrap_or(0)
        } else {
            0
        };
        self.0.items_read.fetch_add(items, Ordering::SeqCst);
        Ok(())
    }
}
