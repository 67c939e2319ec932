//! Whole calls: read, written, replaced. A call is one item collection (its summary and its content
//! parts; see [`super::codec`]).
//!
//! ## The write protocol
//! Any number of writers of one call at once leave it readable, whole, and equal to one of the versions
//! written; replaced content is removed, even when a writer stops between steps:
//! 1. Encode the call, then read its summary with a consistent GetItem: its revision, content version and
//!    digest. An identical call is not written again.
//! 2. Write the new content parts under a fresh random version (BatchWriteItem), unless the stored content
//!    is the same (same digest): then the stored parts are kept. A fresh version belongs to its writer
//!    alone, so a writer whose write did not commit may delete its own parts.
//! 3. Commit with one TransactWriteItems: the summary, put only if the call still has the revision read in
//!    step 1 (or no summary), and a check that each new part still exists. When the write replaces other
//!    content, the summary enters the clean-up index in the same transaction.
//! 4. Clean up: delete every part of another version, each batch in a transaction that checks the summary
//!    still names the version that is kept; then leave the clean-up index. A writer that stops before this
//!    leaves the call in the index, where the hourly job finds it and does the same.
//!
//! A commit that fails because the summary changed means another write committed after this one read: an
//! unconditional write is then ordered just before that one, which replaced it whole ([`Written::Superseded`]);
//! a conditional one (`If-Match`) fails its precondition. A commit that fails because a part is gone (a
//! clean-up of another write removed it) is written again. Nothing is ever left half-visible: a reader sees
//! the summary of one committed write and that write's parts, or retries.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::batch::{all_pages, back_off, delete_request, key, put_request};
use super::codec::{self, s, Commit, EncodedCall, Fetched, Item, StoredCall};
use super::layout::{self, SummaryItem};
use super::{classify, DynamoStore};
use crate::error::StoreError;
use crate::ids::{CallId, TenantId};
use crate::model::{CallRecord, CallSummary, StoredRecording};

/// TransactWriteItems takes at most 100 actions: the summary and 99 part checks, or a check and 99 deletes.
const TRANSACTION: usize = 100;

/// Calls a bulk write commits together (each a summary and, when new, a check of its part: 64 of the 100
/// actions one transaction holds for ordinary calls; a call with more parts goes with fewer others).
const BULK_GROUP: usize = 32;

/// What a write must find to go ahead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Condition {
    /// Nothing: the last writer wins, whole.
    #[default]
    Always,
    /// The call exists with this revision (`If-Match: "<etag>"`).
    Revision(String),
    /// The call exists, whatever its revision (`If-Match: *`).
    Present,
    /// The call does not exist (`If-None-Match: *`).
    Absent,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Created(Saved),
    Replaced(Saved),
    /// The call was stored exactly so already; nothing was written.
    Unchanged(Saved),
    /// Another write committed while this one was under way and replaced it whole.
    Superseded,
    /// The [`Condition`] did not hold; nothing was written.
    PreconditionFailed,
    /// The write's [`Rule`] refused it against the stored call; nothing was written.
    Refused {
        field: String,
        reason: String,
    },
}

/// The call's summary part as the store now holds it, and its revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub revision: String,
    pub summary: CallSummary,
    pub recording: Option<StoredRecording>,
    /// The object of a recording this write let go (the call now opts out of sensitive-data storage):
    /// the writer deletes it.
    pub dropped_recording: Option<String>,
}

/// A rule between the stored call and the one about to replace it: `Err((field, reason))` refuses the write.
pub type Rule = fn(stored: &CallSummary, new: &CallSummary) -> Result<(), (String, String)>;

/// How a write treats what is stored.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub condition: Condition,
    /// The stored recording is kept whatever the new call says (the API's writes: a recording's state is
    /// the upload's and retention's to change); a new call starts without one.
    pub keep_recording: bool,
    /// Checked against the stored call, when there is one that can be read.
    pub rule: Option<Rule>,
    /// Stored beside the call: which webhook delivery set each field ([`crate::webhook::Sources`]).
    /// `None` for every other write, which so clears it.
    pub webhook_sources: Option<crate::webhook::Sources>,
}

/// A call's summary part read for a change of its recording alone.
#[derive(Debug, Clone)]
pub struct ForUpdate {
    pub summary: CallSummary,
    pub recording: Option<StoredRecording>,
    /// What a conditional update compares; `None` for a row written before revisions.
    pub revision: Option<String>,
    pub version: String,
}

impl ForUpdate {
    /// The call's version as clients see it (`ETag`).
    pub fn etag(&self) -> &str {
        self.revision.as_deref().unwrap_or(&self.version)
    }
}

impl Current {
    /// The summary item as the write protocol reads it.
    fn of(item: Item) -> Current {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let revision = text(layout::REVISION);
        let body_revision = text(layout::BODY_REVISION);
        let version = text(layout::CONTENT_VERSION).unwrap_or_default();
        let summary = codec::summary_of(item).ok();
        Current {
            revision,
            body_revision,
            version,
            summary,
        }
    }

    fn etag(&self) -> &str {
        self.revision.as_deref().unwrap_or(&self.version)
    }
}

/// The summary a write replaces, as far as the write protocol needs it.
struct Current {
    revision: Option<String>,
    body_revision: Option<String>,
    version: String,
    /// `None` when the stored summary cannot be read (written by hand or by an older version).
    summary: Option<SummaryItem>,
}

enum CommitError {
    /// The summary is not the one read.
    SummaryChanged,
    /// A new part is gone.
    PartsMissing,
    /// Another transaction on the same items was under way (or DynamoDB throttled it).
    Conflict,
}

impl DynamoStore {
    /// Reads a whole call: one Query on the call's partition (more pages only for calls over 1 MB stored).
    /// `None` when the tenant has no such call.
    pub async fn get_call(&self, tenant: &TenantId, id: &CallId) -> Result<Option<StoredCall>, StoreError> {
        // A read racing a rewrite of the same call may see a summary whose parts were not yet visible, or
        // were just replaced; read again rather than serve a mixture.
        for _ in 0..3 {
            let items = all_pages(self.query_key(None, layout::PK, &layout::call_pk(tenant, id), None)).await?;
            match codec::decode_call(id, items)? {
                Fetched::Missing => return Ok(None),
                Fetched::Whole(record) => return Ok(Some(*record)),
                Fetched::Torn => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Err(StoreError::Failed(format!(
            "call {id}: content parts missing after retries"
        )))
    }

    /// A call's summary and recording without its content: one GetItem.
    pub async fn get_summary(
        &self,
        tenant: &TenantId,
        id: &CallId,
    ) -> Result<Option<(CallSummary, Option<StoredRecording>)>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&layout::call_pk(tenant, id), layout::SUMMARY_SK)))
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        let Some(item) = out.item else { return Ok(None) };
        let item = codec::summary_of(item)?;
        Ok(Some((item.summary, item.recording)))
    }

    /// Writes a whole call, creating or replacing it, by the protocol in the module docs. `now` dates the
    /// clean-up of content it replaces.
    pub async fn put_call(
        &self,
        tenant: &TenantId,
        record: CallRecord,
        condition: &Condition,
        now: DateTime<Utc>,
    ) -> Result<Written, StoreError> {
        let rules = Rules {
            condition: condition.clone(),
            ..Rules::default()
        };
        self.write_call(tenant, record, &rules, now).await
    }

    /// [`Self::put_call`] under `rules`: what the API's PUT and PATCH use.
    pub async fn write_call(
        &self,
        tenant: &TenantId,
        record: CallRecord,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Result<Written, StoreError> {
        let mut call = encode(tenant, record)?;
        call.set_webhook_sources(rules.webhook_sources.clone());
        let mut attempt = 0u32;
        loop {
            let current = self.current(&call.pk).await?;
            let plan = match plan(tenant, &mut call, rules, current.as_ref(), now)? {
                Step::Done(written) => return Ok(*written),
                Step::Commit(plan) => plan,
            };
            if plan.new_parts > 0 {
                let puts = call.part_items(&plan.commit.version).into_iter().map(put_request);
                self.batch_write(puts.collect::<Result<_, _>>()?).await?;
            }
            let actions = self.commit_actions(&call, &plan, current.as_ref())?;
            match self.transact(actions).await?.map_err(|reasons| commit_error(&reasons)) {
                Ok(()) => return Ok(self.committed(&call, plan, current.is_some()).await),
                Err(CommitError::SummaryChanged) => {
                    if plan.new_parts > 0 {
                        self.delete_own_parts(&call, &plan.commit.version).await;
                    }
                    if !matches!(rules.condition, Condition::Always | Condition::Present) {
                        return Ok(Written::PreconditionFailed);
                    }
                    // Replaced whole meanwhile: this write is ordered just before that one. Only its
                    // recording moved: write again over what is there now.
                    let read = current.as_ref().and_then(|c| c.body_revision.clone());
                    let now_there = self.current(&call.pk).await?;
                    let same_body = match (&read, &now_there) {
                        (Some(read), Some(found)) => found.body_revision.as_ref() == Some(read),
                        _ => false,
                    };
                    if !same_body {
                        return Ok(Written::Superseded);
                    }
                    back_off("TransactWriteItems", &mut attempt).await?;
                }
                Err(CommitError::PartsMissing) | Err(CommitError::Conflict) => {
                    if plan.new_parts > 0 {
                        self.delete_own_parts(&call, &plan.commit.version).await;
                    }
                    back_off("TransactWriteItems", &mut attempt).await?;
                }
            }
        }
    }

    /// After a commit: the clean-up of the content it replaced (finished by the hourly job if it fails
    /// now), and what the write did.
    async fn committed(&self, call: &EncodedCall, plan: Plan, existed: bool) -> Written {
        if let Some((_, marker)) = &plan.commit.cleanup {
            if let Err(e) = self.clean_up(&call.pk, marker).await {
                tracing::warn!(call = %call.id, error = %e, "replaced content left for the clean-up job");
            }
        }
        let saved = Saved {
            revision: plan.commit.revision,
            summary: call.summary().clone(),
            recording: call.recording().cloned(),
            dropped_recording: plan.dropped_recording,
        };
        match existed {
            false => Written::Created(saved),
            true => Written::Replaced(saved),
        }
    }

    /// Writes many calls (creating or replacing them), each by the protocol of [`Self::put_call`], several
    /// at a time: what imports and generated data use. A call id given more than once is written once,
    /// with its last version, so no call is ever written by two of these writes at once.
    pub async fn put_calls(
        &self,
        tenant: &TenantId,
        records: Vec<CallRecord>,
        concurrency: usize,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write_calls(tenant, records, &Rules::default(), concurrency, now)
            .await
            .map(|_| ())
    }

    /// [`Self::put_calls`] under `rules`: the calls that a rule refused, with the field and the reason, in
    /// no particular order (the others are written).
    pub async fn write_calls(
        &self,
        tenant: &TenantId,
        records: Vec<CallRecord>,
        rules: &Rules,
        concurrency: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            last.insert(record.summary.id.clone(), i);
        }
        let unique: Vec<CallRecord> = records
            .into_iter()
            .enumerate()
            .filter(|(i, r)| last.get(&r.summary.id) == Some(i))
            .map(|(_, r)| r)
            .collect();
        let mut groups = Vec::new();
        let mut rest = unique.into_iter().peekable();
        while rest.peek().is_some() {
            groups.push(rest.by_ref().take(BULK_GROUP).collect::<Vec<_>>());
        }
        let mut writes = futures::stream::iter(groups)
            .map(|group| self.write_group(tenant, group, rules, now))
            .buffer_unordered(concurrency.max(1));
        let mut refused = Vec::new();
        while let Some(written) = writes.next().await {
            for (id, written) in written? {
                if let Written::Refused { field, reason } = written {
                    refused.push((id, field, reason));
                }
            }
        }
        Ok(refused)
    }

    /// Writes a group of calls by the protocol of [`Self::write_call`], sharing its requests: one
    /// BatchGetItem reads every summary (consistently), the new parts of all go in shared batches, and one
    /// TransactWriteItems commits every summary with its part checks — each summary on its own condition,
    /// as a single write would. When that transaction is cancelled (a call met another write, a part is
    /// gone), nothing of it is committed: each call's new parts are deleted and each call is written on its
    /// own, as [`Self::write_call`] writes it. A bulk load of new calls costs four requests per 32 calls
    /// instead of three per call.
    async fn write_group(
        &self,
        tenant: &TenantId,
        records: Vec<CallRecord>,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Written)>, StoreError> {
        let mut calls = Vec::with_capacity(records.len());
        for record in &records {
            let mut call = encode(tenant, record.clone())?;
            call.set_webhook_sources(rules.webhook_sources.clone());
            calls.push(call);
        }
        let pks: Vec<&str> = calls.iter().map(|c| c.pk.as_str()).collect();
        let mut current = self.current_many(&pks).await?;
        let mut done = Vec::new();
        let mut planned = Vec::new();
        let mut actions = Vec::new();
        let mut alone = Vec::new();
        for (mut call, record) in calls.into_iter().zip(records) {
            let found = current.remove(&call.pk);
            let id = record.summary.id.clone();
            match plan(tenant, &mut call, rules, found.as_ref(), now)? {
                Step::Done(written) => done.push((id, *written)),
                Step::Commit(plan) => {
                    let mine = self.commit_actions(&call, &plan, found.as_ref())?;
                    if actions.len() + mine.len() > TRANSACTION {
                        alone.push(record);
                        continue;
                    }
                    actions.extend(mine);
                    planned.push((call, plan, found.is_some(), record));
                }
            }
        }
        let puts: Vec<_> = planned
            .iter()
            .filter(|(_, plan, _, _)| plan.new_parts > 0)
            .flat_map(|(call, plan, _, _)| call.part_items(&plan.commit.version))
            .map(put_request)
            .collect::<Result<_, _>>()?;
        self.batch_write(puts).await?;
        let committed = match actions.is_empty() {
            true => true,
            false => self.transact(actions).await?.is_ok(),
        };
        for (call, plan, existed, record) in planned {
            if committed {
                done.push((record.summary.id.clone(), self.committed(&call, plan, existed).await));
            } else {
                if plan.new_parts > 0 {
                    self.delete_own_parts(&call, &plan.commit.version).await;
                }
                alone.push(record);
            }
        }
        for record in alone {
            let id = record.summary.id.clone();
            done.push((id, self.write_call(tenant, record, rules, now).await?));
        }
        Ok(done)
    }

    /// The summaries of `pks` as they stand, read consistently with BatchGetItem (keys it leaves
    /// unprocessed are asked again, with back-off); a call without a summary is absent from the map.
    async fn current_many(&self, pks: &[&str]) -> Result<HashMap<String, Current>, StoreError> {
        let mut found = HashMap::new();
        let mut pending: Vec<Item> = pks.iter().map(|pk| key(pk, layout::SUMMARY_SK)).collect();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Failed(format!("KeysAndAttributes: {e}")))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(|e| classify("BatchGetItem", e))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .unwrap_or_default()
            {
                if let Some(AttributeValue::S(pk)) = item.get(layout::PK) {
                    found.insert(pk.clone(), Current::of(item));
                }
            }
            if let Some(left) = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                pending = left.keys;
                if !pending.is_empty() {
                    back_off("BatchGetItem", &mut attempt).await?;
                }
            }
        }
        Ok(found)
    }

    /// A call's summary part read consistently, for a change of its recording ([`Self::update_recording`])
    /// or a delete ([`Self::delete_call`]). `None` when the tenant has no such call.
    pub async fn read_for_update(&self, tenant: &TenantId, id: &CallId) -> Result<Option<ForUpdate>, StoreError> {
        let Some(current) = self.current(&layout::call_pk(tenant, id)).await? else {
            return Ok(None);
        };
        let item = current
            .summary
            .ok_or_else(|| StoreError::Failed(format!("call {id}: summary does not decode")))?;
        Ok(Some(ForUpdate {
            summary: item.summary,
            recording: item.recording,
            revision: current.revision,
            version: current.version,
        }))
    }

    /// Sets a call's recording (and its place in the live-recordings index) if the call is still as `read`
    /// found it: the new revision, or `None` when another write came first. The whole call's revision
    /// ([`layout::BODY_REVISION`]) stays, so that a PUT racing this writes again rather than give way.
    pub async fn update_recording(
        &self,
        tenant: &TenantId,
        id: &CallId,
        read: &ForUpdate,
        recording: &StoredRecording,
    ) -> Result<Option<String>, StoreError> {
        let revision = codec::token()?;
        let value = serde_dynamo::to_attribute_value(recording)
            .map_err(|e| StoreError::Failed(format!("encode recording: {e}")))?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&layout::call_pk(tenant, id), layout::SUMMARY_SK)))
            .expression_attribute_names("#rec", layout::RECORDING)
            .expression_attribute_names("#rev", layout::REVISION)
            .expression_attribute_names("#gp", layout::GSI2_PK)
            .expression_attribute_names("#gs", layout::GSI2_SK)
            .expression_attribute_values(":rec", value)
            .expression_attribute_values(":new", s(&revision));
        update = if crate::recording::is_live(recording) {
            let made = crate::recording::made_at(&read.summary, recording);
            let (p, k) = layout::recording_index_keys(tenant, id, made);
            update
                .update_expression("SET #rec = :rec, #rev = :new, #gp = :gp, #gs = :gs")
                .expression_attribute_values(":gp", s(p))
                .expression_attribute_values(":gs", s(k))
        } else {
            update.update_expression("SET #rec = :rec, #rev = :new REMOVE #gp, #gs")
        };
        update = match &read.revision {
            Some(rev) => update
                .condition_expression("#rev = :rev")
                .expression_attribute_values(":rev", s(rev)),
            None => update
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#rev) AND #ver = :ver")
                .expression_attribute_names("#pk", layout::PK)
                .expression_attribute_names("#ver", layout::CONTENT_VERSION)
                .expression_attribute_values(":ver", s(&read.version)),
        };
        match update.send().await {
            Ok(_) => Ok(Some(revision)),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(None),
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    /// Deletes every item of a call (its summary, with its index entries, and its content parts) if the
    /// call is still as `read` found it: `false` when another write came first (read again and retry). The
    /// summary and the parts it names go in one transaction, so a reader never meets a summary without its
    /// content; parts of other versions (a clean-up still to run) go first, while the summary that keeps
    /// them out of sight still stands.
    pub async fn delete_call(&self, tenant: &TenantId, id: &CallId, read: &ForUpdate) -> Result<bool, StoreError> {
        let pk = layout::call_pk(tenant, id);
        let items = all_pages(self.partition_keys(&pk)).await?;
        let parts: Vec<(String, bool)> = items
            .iter()
            .filter_map(|item| match item.get(layout::SK) {
                Some(AttributeValue::S(sk)) => layout::parse_part_sk(sk).map(|(v, _)| (sk.clone(), v == read.version)),
                _ => None,
            })
            .collect();
        if parts.iter().any(|(_, mine)| !mine) {
            self.clean_up(&pk, "").await?;
        }
        let mut summary = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&pk, layout::SUMMARY_SK)));
        summary = match &read.revision {
            Some(rev) => summary
                .condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", layout::REVISION)
                .expression_attribute_values(":rev", s(rev)),
            None => summary
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#rev) AND #ver = :ver")
                .expression_attribute_names("#pk", layout::PK)
                .expression_attribute_names("#rev", layout::REVISION)
                .expression_attribute_names("#ver", layout::CONTENT_VERSION)
                .expression_attribute_values(":ver", s(&read.version)),
        };
        let summary = summary
            .build()
            .map_err(|e| StoreError::Failed(format!("Delete: {e}")))?;
        let mut actions = vec![TransactWriteItem::builder().delete(summary).build()];
        for (sk, _) in parts.iter().filter(|(_, mine)| *mine).take(TRANSACTION - 1) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(&pk, sk)))
                .build()
                .map_err(|e| StoreError::Failed(format!("Delete: {e}")))?;
            actions.push(TransactWriteItem::builder().delete(delete).build());
        }
        Ok(self.transact(actions).await?.is_ok())
    }

    /// Up to `limit` of the tenant's calls whose customer number is `number` (the `byCustomer` index, as
    /// the list filter reads it), and whether there are more.
    pub async fn customer_calls(
        &self,
        tenant: &TenantId,
        number: &str,
        limit: usize,
    ) -> Result<(Vec<CallId>, bool), StoreError> {
        let index = layout::ListIndex::Customer;
        let out = self
            .query_key(Some(index.name()), index.pk_attr(), &index.pk(tenant, number), None)
            .projection_expression("#sk")
            .expression_attribute_names("#sk", layout::LIST_SK)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let mut ids: Vec<CallId> = out
            .items()
            .iter()
            .filter_map(|item| match item.get(layout::LIST_SK) {
                Some(AttributeValue::S(sk)) => layout::list_sk_call(sk),
                _ => None,
            })
            .collect();
        let more = out.items().len() > limit;
        ids.truncate(limit);
        Ok((ids, more))
    }

    /// The summary as it stands, read consistently; `None` when the call does not exist.
    async fn current(&self, pk: &str) -> Result<Option<Current>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, layout::SUMMARY_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        Ok(out.item.map(Current::of))
    }

    /// Step 3 of the protocol, as transaction actions: the summary, put on condition that the call is as
    /// `current` found it, then a check that each new part exists.
    fn commit_actions(
        &self,
        call: &EncodedCall,
        plan: &Plan,
        current: Option<&Current>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let commit = &plan.commit;
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(call.summary_item(commit)?));
        put = match current {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", layout::PK),
            Some(Current {
                revision: Some(revision),
                ..
            }) => put
                .condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", layout::REVISION)
                .expression_attribute_values(":rev", s(revision)),
            // Written before revisions: the content version is what the summary is known by.
            Some(found) => put
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#rev) AND #ver = :ver")
                .expression_attribute_names("#pk", layout::PK)
                .expression_attribute_names("#rev", layout::REVISION)
                .expression_attribute_names("#ver", layout::CONTENT_VERSION)
                .expression_attribute_values(":ver", s(&found.version)),
        };
        let put = put.build().map_err(|e| StoreError::Failed(format!("Put: {e}")))?;
        let mut actions = vec![TransactWriteItem::builder().put(put).build()];
        for i in 0..plan.new_parts {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(&call.pk, &layout::part_sk(&commit.version, i as u32))))
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", layout::PK)
                .build()
                .map_err(|e| StoreError::Failed(format!("ConditionCheck: {e}")))?;
            actions.push(TransactWriteItem::builder().condition_check(check).build());
        }
        Ok(actions)
    }

    /// Sends one TransactWriteItems: `Ok(Err(reasons))` when DynamoDB cancelled it (a condition failed or
    /// another transaction held an item), with the reason code of each action in order.
    async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<Result<(), Vec<String>>, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => match cancelled(&e) {
                Some(reasons) => Ok(Err(reasons)),
                None => Err(classify("TransactWriteItems", e)),
            },
        }
    }

    /// Deletes the parts of a version that never committed. Best effort: what is left, the next clean-up
    /// of the call removes.
    async fn delete_own_parts(&self, call: &EncodedCall, version: &str) {
        let deletes: Result<Vec<_>, _> = (0..call.chunks.len())
            .map(|i| delete_request(&call.pk, &layout::part_sk(version, i as u32)))
            .collect();
        if let Err(e) = async { self.batch_write(deletes?).await }.await {
            tracing::warn!(call = %call.id, error = %e, "parts of an uncommitted write left for the next clean-up");
        }
    }

    /// Step 4 of the protocol, also what the clean-up job runs: deletes every content part of the
    /// partition that the summary does not name (all of them when there is no summary), each batch in a
    /// transaction that checks the summary still names what it named, then takes the call out of the
    /// clean-up index if `marker` is still its key there. Returns the parts deleted.
    pub(super) async fn clean_up(&self, pk: &str, marker: &str) -> Result<u64, StoreError> {
        let mut attempt = 0u32;
        let mut deleted = 0u64;
        'again: loop {
            let items = all_pages(self.partition_keys(pk)).await?;
            let current =
                items
                    .iter()
                    .find_map(|item| match (item.get(layout::SK), item.get(layout::CONTENT_VERSION)) {
                        (Some(AttributeValue::S(sk)), Some(AttributeValue::S(v))) if sk == layout::SUMMARY_SK => {
                            Some(v.clone())
                        }
                        _ => None,
                    });
            let has_summary = items
                .iter()
                .any(|item| matches!(item.get(layout::SK), Some(AttributeValue::S(sk)) if sk == layout::SUMMARY_SK));
            let stale: Vec<String> = items
                .iter()
                .filter_map(|item| match item.get(layout::SK) {
                    Some(AttributeValue::S(sk)) => layout::parse_part_sk(sk)
                        .filter(|(v, _)| current.as_deref() != Some(*v))
                        .map(|_| sk.clone()),
                    _ => None,
                })
                .collect();
            for group in stale.chunks(TRANSACTION - 1) {
                let mut check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, layout::SUMMARY_SK)));
                check = match (&current, has_summary) {
                    (Some(v), _) => check
                        .condition_expression("#ver = :ver")
                        .expression_attribute_names("#ver", layout::CONTENT_VERSION)
                        .expression_attribute_values(":ver", s(v)),
                    (None, true) => check
                        .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#ver)")
                        .expression_attribute_names("#pk", layout::PK)
                        .expression_attribute_names("#ver", layout::CONTENT_VERSION),
                    (None, false) => check
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", layout::PK),
                };
                let check = check
                    .build()
                    .map_err(|e| StoreError::Failed(format!("ConditionCheck: {e}")))?;
                let mut actions = vec![TransactWriteItem::builder().condition_check(check).build()];
                for sk in group {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .build()
                        .map_err(|e| StoreError::Failed(format!("Delete: {e}")))?;
                    actions.push(TransactWriteItem::builder().delete(delete).build());
                }
                if self.transact(actions).await?.is_err() {
                    // Another write committed (or is committing) meanwhile: read the partition again.
                    back_off("clean-up", &mut attempt).await?;
                    continue 'again;
                }
                deleted += group.len() as u64;
            }
            break;
        }
        self.leave_cleanup_index(pk, marker).await?;
        Ok(deleted)
    }

    /// Takes a call out of the clean-up index, if `marker` is still its key there.
    async fn leave_cleanup_index(&self, pk: &str, marker: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, layout::SUMMARY_SK)))
            .update_expression("REMOVE #jp, #js")
            .condition_expression("#js = :marker")
            .expression_attribute_names("#jp", layout::GSI3_PK)
            .expression_attribute_names("#js", layout::GSI3_SK)
            .expression_attribute_values(":marker", s(marker))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    /// A consistent Query of a partition's keys (and the summary's content version).
    fn partition_keys(&self, pk: &str) -> QueryFluentBuilder {
        self.query_key(None, layout::PK, pk, None)
            .consistent_read(true)
            .projection_expression("#sk, #ver")
            .expression_attribute_names("#sk", layout::SK)
            .expression_attribute_names("#ver", layout::CONTENT_VERSION)
    }

    /// A Query on `pk_attr = pk` (a key of the table, or of `index`), and `sort` on the sort key when given
    /// (written with `#s`, named by the caller).
    pub(super) fn query_key(
        &self,
        index: Option<&str>,
        pk_attr: &str,
        pk: &str,
        sort: Option<&str>,
    ) -> QueryFluentBuilder {
        let condition = match sort {
            Some(sort) => format!("#p = :p AND {sort}"),
            None => "#p = :p".to_owned(),
        };
        self.client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(condition)
            .expression_attribute_names("#p", pk_attr)
            .expression_attribute_values(":p", s(pk))
    }
}

/// A call encoded for writing; refused when its content needs more parts than one commit can check.
fn encode(tenant: &TenantId, record: CallRecord) -> Result<EncodedCall, StoreError> {
    let call = codec::encode_call(tenant, record)?;
    if call.chunks.len() >= TRANSACTION {
        return Err(StoreError::Failed(format!(
            "call {}: {} content parts, at most {} fit one commit",
            call.id,
            call.chunks.len(),
            TRANSACTION - 1
        )));
    }
    Ok(call)
}

/// What a write does next, given the summary it read.
enum Step {
    /// Nothing to write: the answer.
    Done(Box<Written>),
    Commit(Plan),
}

/// A commit to make: its version and revision, and how many new parts it writes and checks (none when the
/// stored parts are kept).
struct Plan {
    commit: Commit,
    new_parts: usize,
    /// See [`Saved::dropped_recording`].
    dropped_recording: Option<String>,
}

/// Steps 1 and 2 of the protocol without I/O: whether `rules` let the write go ahead over `current`, whether
/// anything would change, and which content version the commit names.
fn plan(
    tenant: &TenantId,
    call: &mut EncodedCall,
    rules: &Rules,
    current: Option<&Current>,
    now: DateTime<Utc>,
) -> Result<Step, StoreError> {
    let holds = match (&rules.condition, current) {
        (Condition::Always, _) => true,
        (Condition::Absent, found) => found.is_none(),
        (Condition::Present, found) => found.is_some(),
        (Condition::Revision(want), Some(found)) => found.etag() == want,
        (Condition::Revision(_), None) => false,
    };
    if !holds {
        return Ok(Step::Done(Box::new(Written::PreconditionFailed)));
    }
    let stored = current.and_then(|c| c.summary.as_ref());
    let mut dropped_recording = None;
    if rules.keep_recording {
        let kept = stored.and_then(|s| s.recording.clone());
        if call.summary().opt_out_sensitive_data_storage {
            // A call that opts out keeps no recording, whatever was stored before.
            dropped_recording = kept.and_then(|r| r.key);
            call.set_recording(None);
        } else {
            call.set_recording(kept);
        }
    }
    if let (Some(rule), Some(stored)) = (rules.rule, stored) {
        if let Err((field, reason)) = rule(&stored.summary, call.summary()) {
            return Ok(Step::Done(Box::new(Written::Refused { field, reason })));
        }
    }
    if let Some(stored) = stored {
        call.keep_expired(stored);
    }
    if let (Some(summary), Some(revision)) = (stored, current.and_then(|c| c.revision.as_ref())) {
        if call.same_as(summary) {
            return Ok(Step::Done(Box::new(Written::Unchanged(Saved {
                revision: revision.clone(),
                summary: summary.summary.clone(),
                recording: summary.recording.clone(),
                dropped_recording: None,
            }))));
        }
    }
    let kept = stored
        .filter(|s| s.content_digest.as_deref() == Some(call.digest.as_str()))
        .filter(|s| s.content_parts as usize == call.chunks.len())
        .map(|s| s.content_version.clone());
    let new_parts = if kept.is_none() { call.chunks.len() } else { 0 };
    let version = match kept {
        Some(v) => v,
        None => codec::token()?,
    };
    let replaces = current.is_some_and(|c| c.version != version);
    Ok(Step::Commit(Plan {
        commit: Commit {
            version,
            revision: codec::token()?,
            cleanup: replaces.then(|| layout::cleanup_index_keys(tenant, &call.id, now)),
        },
        new_parts,
        dropped_recording,
    }))
}

/// Why a commit was cancelled, from the reasons of its actions (the summary's put, then its part checks).
fn commit_error(reasons: &[String]) -> CommitError {
    let failed = |r: &String| r == "ConditionalCheckFailed";
    if reasons.first().is_some_and(failed) {
        CommitError::SummaryChanged
    } else if reasons.iter().any(failed) {
        CommitError::PartsMissing
    } else {
        CommitError::Conflict
    }
}

/// The cancellation reason codes of a cancelled transaction, in the order of its actions.
fn cancelled<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err {
        SdkError::ServiceError(e) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(t) => Some(
                t.cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}
