//! List pages and counts: one Query per page on the index a [`Plan`] names (see [`crate::list`] for the
//! planner and the paging rules), and counts within a budget (see [`crate::total`]). A row that cannot be read (written by hand or by an older version) is
//! skipped and logged: it never fails the page or the total for the other calls.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

use super::codec::{self, s, Item};
use super::{classify, layout, DynamoStore};
use crate::config::TotalBudget;
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::list::{self, Plan};
use crate::model::{CallSummary, StoredRecording};
use crate::total::{Budget, Total};

/// Most items one count request reads ([`DynamoStore::count`]).
const COUNT_PAGE: u64 = 1000;

/// Time slices [`DynamoStore::count`] counts at once.
pub const COUNT_SLICES: u32 = 8;

fn list_position(item: &Item) -> Option<String> {
    match item.get(layout::LIST_SK) {
        Some(AttributeValue::S(position)) => Some(position.clone()),
        _ => None,
    }
}

/// The plan's range cut into [`COUNT_SLICES`] ranges of equal time between the list keys of its first and
/// last item. Each range starts where the one before ends, so together they cover the plan's range and no
/// key is in two.
fn slices(plan: &Plan, first: &str, last: &str) -> Vec<Plan> {
    let mut bounds = vec![plan.lower.clone()];
    match (layout::parse_list_sk(first), layout::parse_list_sk(last)) {
        (Some((t0, _)), Some((t1, _))) => {
            let span = (t1 - t0).num_nanoseconds().unwrap_or(i64::MAX);
            let slices = if span < i64::from(COUNT_SLICES) {
                1
            } else {
                COUNT_SLICES
            };
            for k in 1..slices {
                let offset = chrono::Duration::nanoseconds(span / i64::from(slices) * i64::from(k));
                if let Some(at) = t0.checked_add_signed(offset) {
                    bounds.push(Some(layout::list_time(at)));
                }
            }
        }
        // An edge row whose time does not parse (written by hand): one chain counts the whole range.
        _ => tracing::warn!(first = %first, last = %last, "count: an edge of the range is not a list key"),
    }
    bounds.push(plan.upper.clone());
    bounds
        .windows(2)
        .map(|w| Plan {
            lower: w[0].clone(),
            upper: w[1].clone(),
            ..plan.clone()
        })
        .collect()
}

impl DynamoStore {
    /// One page of a list: a single Query of at most `budget` items on the plan's index, resuming strictly
    /// after `after` (a list sort key from an earlier page of the same plan).
    pub async fn list_page(
        &self,
        tenant: &TenantId,
        plan: &Plan,
        after: Option<&str>,
        budget: u32,
    ) -> Result<list::Read<(CallSummary, Option<StoredRecording>)>, StoreError> {
        let start = match after {
            None => None,
            Some(position) => {
                let id = layout::list_sk_call(position)
                    .ok_or_else(|| StoreError::Failed(format!("list position {position:?} is not a list key")))?;
                Some(Item::from([
                    (layout::PK.to_owned(), s(layout::call_pk(tenant, &id))),
                    (layout::SK.to_owned(), s(layout::SUMMARY_SK)),
                    (plan.index.pk_attr().to_owned(), s(&plan.partition)),
                    (layout::LIST_SK.to_owned(), s(position)),
                ]))
            }
        };
        let out = self
            .list_query(plan)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(budget).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let mut items = Vec::new();
        let mut unreadable = 0;
        for item in out.items.unwrap_or_default() {
            let Some(position) = list_position(&item) else {
                tracing::warn!("list item without {}: skipped", layout::LIST_SK);
                unreadable += 1;
                continue;
            };
            match codec::summary_of(item) {
                Ok(row) => items.push((position, (row.summary, row.recording))),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable list row skipped");
                    unreadable += 1;
                }
            }
        }
        let last_read = match out.last_evaluated_key {
            Some(key) if !key.is_empty() => Some(
                list_position(&key).ok_or_else(|| StoreError::Failed("list page ended without a list key".into()))?,
            ),
            _ => None,
        };
        Ok(list::Read {
            items,
            unreadable,
            last_read,
        })
    }

    /// How many calls match a plan over all pages, within `limits`: a count of index entries (a row that
    /// cannot be read is counted, and never fails the count). It reads every matching index item, so it is
    /// spread: the first and last item of the range are found (two one-item Queries at once), the time
    /// between them is cut into [`COUNT_SLICES`] slices, and each slice is counted by its own chain of
    /// count-only Queries, all slices at once, sharing one [`Budget`]. When the budget's time is up the
    /// requests in flight are dropped; when its items are spent no slice sends another. Either way the
    /// answer is what was counted, marked not exact.
    pub async fn count(&self, plan: &Plan, limits: TotalBudget) -> Result<Total, StoreError> {
        let budget = Budget::start(limits);
        let counted = AtomicU64::new(0);
        if budget.exhausted() {
            return Ok(Total { count: 0, exact: false });
        }
        let counting = async {
            let (first, last) = futures::future::try_join(self.edge(plan, true), self.edge(plan, false)).await?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(true);
            };
            let complete = futures::future::try_join_all(
                slices(plan, &first, &last)
                    .iter()
                    .map(|range| self.count_range(range, &budget, &counted)),
            )
            .await?;
            Ok::<bool, StoreError>(complete.into_iter().all(|done| done))
        };
        let exact = match tokio::time::timeout_at(budget.deadline(), counting).await {
            Ok(done) => done?,
            Err(_) => false,
        };
        let total = Total {
            count: counted.load(Ordering::SeqCst),
            exact,
        };
        if !exact {
            tracing::info!(counted = total.count, "includeTotal: the count's budget ran out");
        }
        Ok(total)
    }

    /// The list key of the first (or last) item in the plan's key range, filters aside.
    async fn edge(&self, plan: &Plan, first: bool) -> Result<Option<String>, StoreError> {
        let keys_only = Plan {
            conditions: Vec::new(),
            ascending: first,
            ..plan.clone()
        };
        let out = self
            .list_query(&keys_only)
            .projection_expression("#s")
            .expression_attribute_names("#s", layout::LIST_SK)
            .limit(1)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        Ok(out.items.unwrap_or_default().first().and_then(list_position))
    }

    /// Count-only Queries over one key range, following pages while the budget grants items; adds each
    /// page's count to `counted` as it comes. `true` when the range was counted to its end.
    async fn count_range(&self, plan: &Plan, budget: &Budget, counted: &AtomicU64) -> Result<bool, StoreError> {
        let mut start = None;
        loop {
            // At most COUNT_PAGE items per request: on DynamoDB about what its 1 MB page holds anyway
            // (summaries are 1-2 KB), and it keeps each request short. DynamoDB Local, left unbounded,
            // builds a whole partition's count in memory and fails with an internal error at 100,000 calls.
            let Some(granted) = budget.take(COUNT_PAGE).await else {
                return Ok(false);
            };
            let out = self
                .list_query(plan)
                .select(Select::Count)
                .limit(i32::try_from(granted).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            budget.settle(granted, u64::try_from(out.scanned_count).unwrap_or(0));
            counted.fetch_add(u64::try_from(out.count).unwrap_or(0), Ordering::SeqCst);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(true),
            }
        }
    }

    /// The Query a plan describes: its index and partition, the date range on the list sort key, the
    /// filters the index cannot apply, and the direction.
    fn list_query(&self, plan: &Plan) -> QueryFluentBuilder {
        let range = match (&plan.lower, &plan.upper) {
            (Some(_), Some(_)) => Some("#s BETWEEN :lo AND :hi"),
            (Some(_), None) => Some("#s >= :lo"),
            (None, Some(_)) => Some("#s < :hi"),
            (None, None) => None,
        };
        let mut query = self
            .query_key(Some(plan.index.name()), plan.index.pk_attr(), &plan.partition, range)
            .scan_index_forward(plan.ascending);
        if range.is_some() {
            query = query.expression_attribute_names("#s", layout::LIST_SK);
        }
        if let Some(lo) = &plan.lower {
            query = query.expression_attribute_values(":lo", s(lo));
        }
        if let Some(hi) = &plan.upper {
            query = query.expression_attribute_values(":hi", s(hi));
        }
        let mut filters = Vec::new();
        for (i, condition) in plan.conditions.iter().enumerate() {
            let name = format!("#c{i}");
            query = query.expression_attribute_names(&name, condition.attribute);
            let values: Vec<String> = (0..condition.values.len()).map(|j| format!(":c{i}v{j}")).collect();
            for (placeholder, value) in values.iter().zip(&condition.values) {
                query = query.expression_attribute_values(placeholder, s(value));
            }
            filters.push(match values.as_slice() {
                [one] => format!("{name} = {one}"),
                many => format!("{name} IN ({})", many.join(", ")),
            });
        }
        if !filters.is_empty() {
            query = query.filter_expression(filters.join(" AND "));
        }
        query
    }
}
