//! What a request handler needs, built once per process: configuration, the store, the recordings bucket
//! and a clock. The operations here are the domain side of each route; handlers are glue around them.

use std::sync::Arc;

use crate::auth::KeyCheck;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::ids::{CallId, TenantId};
use crate::list::{self, ListQuery};
use crate::model::RecordingStatus;
use crate::recording;
use crate::store::layout;
use crate::store::metrics::RequestCounter;
use crate::store::queue::CaptureQueue;
use crate::store::{DynamoStore, Link, S3Recordings};
use crate::total::Total;
use crate::view::{self, CallDetail, CallListItem, CallPage, Pagination};

pub struct App {
    pub config: Config,
    pub store: DynamoStore,
    pub recordings: S3Recordings,
    /// Recordings behind a provider's link, waiting to be copied (the webhook receiver sends to it).
    pub capture_queue: CaptureQueue,
    /// Who a request's key acts for ([`crate::auth`]): every API route checks it first.
    pub keys: KeyCheck,
    pub clock: Arc<dyn Clock>,
}

impl App {
    /// Production wiring: configuration from the environment, clients from the default credential chain.
    pub async fn from_env() -> Result<App, ConfigError> {
        let config = Config::from_env()?;
        Ok(App::connect(config, Arc::new(SystemClock), None).await)
    }

    /// Wiring with a chosen clock and, for tests and benchmarks, a DynamoDB request counter.
    pub async fn connect(config: Config, clock: Arc<dyn Clock>, counter: Option<RequestCounter>) -> App {
        let sdk = crate::aws::sdk_config().await;
        let store = DynamoStore::new(crate::aws::dynamodb(&sdk, counter), &config.table_name);
        let recordings = S3Recordings::new(
            crate::aws::s3(&sdk, config.s3_force_path_style),
            &config.bucket_name,
            sdk.credentials_provider(),
        );
        let capture_queue = CaptureQueue::new(crate::aws::sqs(&sdk), config.capture.queue_url.clone());
        let keys = KeyCheck::new(store.clone(), clock.clone(), config.key_cache_ttl);
        App {
            keys,
            config,
            store,
            recordings,
            capture_queue,
            clock,
        }
    }

    /// GET /api/v1/calls/{callId}: the whole call, with a fresh recording link when one may be served, and
    /// its `ETag` (the revision a conditional write names).
    pub async fn get_call(&self, tenant: &TenantId, id: &CallId) -> Result<(CallDetail, String), ApiError> {
        let record = self.store.get_call(tenant, id).await?.ok_or(ApiError::NotFound)?;
        let etag = record.revision.clone().unwrap_or_default();
        let detail = view::call_detail(record, self.config.retention, self.clock.now(), &self.recordings).await?;
        Ok((detail, etag))
    }

    /// GET /api/v1/calls: one page of the tenant's calls (one Query; see [`crate::list`] for the rules), and
    /// the total when asked for, counted within the configured budget ([`crate::total`]).
    pub async fn list_calls(&self, tenant: &TenantId, query: &ListQuery) -> Result<CallPage, ApiError> {
        let Some(keys) = &self.config.cursor_keys else {
            tracing::error!("CURSOR_SECRET is not configured");
            return Err(ApiError::Internal);
        };
        let binding = query.binding();
        let after = match &query.cursor {
            Some(cursor) => {
                let position = keys.open(tenant, &binding, cursor)?;
                if layout::parse_list_sk(&position).is_none() {
                    return Err(ApiError::InvalidCursor("not a cursor".into()));
                }
                Some(position)
            }
            None => None,
        };
        let plan = query.plan(tenant);
        let read = self
            .store
            .list_page(tenant, &plan, after.as_deref(), plan.read_budget(query.limit))
            .await?;
        let unreadable = read.unreadable;
        let (calls, next) = list::cut(read, query.limit as usize);
        let total = match (query.include_total, &after, &next) {
            (false, _, _) => None,
            // A first page that is also the last read the whole list: it is its own exact total (of index
            // entries, as a count is: rows that cannot be read are counted).
            (true, None, None) => Some(Total::whole(calls.len() + unreadable)),
            (true, _, _) => Some(
                self.store
                    .count(&plan, self.config.total_budget)
                    .await?
                    .at_least(calls.len()),
            ),
        };
        let now = self.clock.now();
        let data = calls
            .into_iter()
            .map(|(summary, rec)| {
                let state = recording::state(&summary, rec.as_ref(), self.config.retention, now);
                CallListItem::new(summary, state)
            })
            .collect();
        Ok(CallPage {
            data,
            pagination: Pagination {
                limit: query.limit,
                has_more: next.is_some(),
                next_cursor: next.map(|position| keys.sign(tenant, &binding, &position)),
                total: total.map(|t| t.count),
                total_exact: total.map(|t| t.exact),
            },
        })
    }

    /// GET /api/v1/calls/{callId}/recording: a fresh link to the recording (one GetItem, no content read).
    pub async fn recording_link(&self, tenant: &TenantId, id: &CallId) -> Result<Link, ApiError> {
        let (summary, rec) = self.store.get_summary(tenant, id).await?.ok_or(ApiError::NotFound)?;
        let now = self.clock.now();
        let state = recording::state(&summary, rec.as_ref(), self.config.retention, now);
        match (state.status, state.link) {
            (RecordingStatus::Expired, _) => Err(ApiError::RecordingExpired),
            (_, Some(grant)) => Ok(self.recordings.presign_get(&grant.key, now, grant.ttl).await?),
            (_, None) => Err(ApiError::RecordingNotFound),
        }
    }
}
