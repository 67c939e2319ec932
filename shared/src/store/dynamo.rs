//! The DynamoDB adapter: calls and API keys, in the layout of [`super::layout`].
//!
//! A call's content (messages with word timings, events, latency) is JSON, deflate-compressed and cut into
//! parts of at most [`PART_BYTES`], so a call of any size fits under DynamoDB's 400 KB item limit. Writes are
//! ordered so that a reader never sees half a call: new parts are written under a fresh content version
//! first, then the summary that names that version, then the parts of older versions are deleted. A reader
//! takes only the parts of the version its summary names.

use std::io::Read;

use futures::{StreamExt, TryStreamExt};
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, Select, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use flate2::read::DeflateDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use super::layout::{self, ListIndex};
use crate::apikey::{self, ApiKeyRecord};
use crate::error::StoreError;
use crate::ids::{CallId, TenantId};
use crate::list::{self, Plan};
use crate::model::{CallContent, CallRecord, CallSummary, StoredCall, StoredContent, StoredRecording};
use crate::recording;

/// Largest compressed content part. Leaves room under the 400 KB item limit for the keys.
pub const PART_BYTES: usize = 350 * 1024;

/// BatchWriteItem takes at most 25 requests.
const BATCH: usize = 25;

/// Items counted per request by [`DynamoStore::count`].
const COUNT_PAGE: i32 = 1000;

/// Time slices [`DynamoStore::count`] counts at once.
pub const COUNT_SLICES: u32 = 8;

/// Calls per round of [`DynamoStore::put_calls`].
pub const BULK_CHUNK: usize = 100;

/// A DynamoDB item, as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;

/// The summary item of a call.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryItem {
    pk: String,
    sk: String,
    tenant_id: String,
    #[serde(flatten)]
    summary: CallSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recording: Option<StoredRecording>,
    content_version: String,
    content_parts: u32,
    /// How the parts are encoded: see [`FORMAT_LZ4_JSON`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_format: Option<String>,
    /// Live-recordings index keys (see the layout); absent once the recording is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    #[serde(flatten)]
    list: ListKeys,
}

/// A summary's keys in the list indexes (see the layout); each is absent when the call has no such value.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ListKeys {
    #[serde(rename = "listSk", default, skip_serializing_if = "Option::is_none")]
    list_sk: Option<String>,
    #[serde(rename = "byTimePk", default, skip_serializing_if = "Option::is_none")]
    by_time: Option<String>,
    #[serde(rename = "byDirectionPk", default, skip_serializing_if = "Option::is_none")]
    by_direction: Option<String>,
    #[serde(rename = "byStatusPk", default, skip_serializing_if = "Option::is_none")]
    by_status: Option<String>,
    #[serde(rename = "byNumberPk", default, skip_serializing_if = "Option::is_none")]
    by_number: Option<String>,
    #[serde(rename = "byAssistantPk", default, skip_serializing_if = "Option::is_none")]
    by_assistant: Option<String>,
    #[serde(rename = "byCampaignPk", default, skip_serializing_if = "Option::is_none")]
    by_campaign: Option<String>,
    #[serde(rename = "byCustomerPk", default, skip_serializing_if = "Option::is_none")]
    by_customer: Option<String>,
}

impl ListKeys {
    fn of(tenant: &TenantId, id: &CallId, summary: &CallSummary) -> ListKeys {
        // Values a filter could never ask for (empty, or longer than a filter value may be) stay out of the
        // indexes; DynamoDB refuses empty key values anyway.
        let key = |index: ListIndex, value: Option<&str>| {
            value
                .filter(|v| !v.is_empty() && v.chars().count() <= crate::list::MAX_VALUE_LEN)
                .map(|v| index.pk(tenant, v))
        };
        ListKeys {
            list_sk: Some(layout::list_sk(summary.list_time(), id)),
            by_time: Some(ListIndex::Time.pk(tenant, "")),
            by_direction: key(ListIndex::Direction, Some(summary.direction.as_str())),
            by_status: key(ListIndex::Status, Some(summary.status.as_str())),
            by_number: key(ListIndex::Number, summary.phone_number_id.as_deref()),
            by_assistant: key(ListIndex::Assistant, summary.assistant_id.as_deref()),
            by_campaign: key(ListIndex::Campaign, summary.campaign_id.as_deref()),
            by_customer: key(ListIndex::Customer, summary.customer_number().as_deref()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    record: ApiKeyRecord,
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
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

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// `contentFormat` of content written as LZ4 blocks (size-prepended) of [`StoredContent::encode`]'s JSON.
/// Summaries without the attribute hold content written before: raw deflate of the content's JSON, which is
/// still read. LZ4 decompresses about eight times faster than deflate (`bench/benches/codec.rs`), at a
/// third more stored bytes, and every ordinary call still fits in one 1 MB Query page.
const FORMAT_LZ4_JSON: &str = "lz4-json";

fn compress(content: &CallContent) -> Result<Vec<u8>, StoreError> {
    let json = StoredContent::encode(content).map_err(|e| StoreError::Failed(format!("encode content: {e}")))?;
    Ok(lz4_flex::block::compress_prepend_size(&json))
}

fn decompress(parts: &[Vec<u8>], format: Option<&str>) -> Result<StoredContent, StoreError> {
    let joined: Vec<u8> = parts.concat();
    let json = match format {
        Some(FORMAT_LZ4_JSON) => lz4_flex::block::decompress_size_prepended(&joined)
            .map_err(|e| StoreError::Failed(format!("decompress content: {e}")))?,
        None => {
            let mut json = Vec::new();
            DeflateDecoder::new(joined.as_slice())
                .read_to_end(&mut json)
                .map_err(|e| StoreError::Failed(format!("decompress content: {e}")))?;
            json
        }
        Some(other) => return Err(StoreError::Failed(format!("unknown content format {other:?}"))),
    };
    let json = String::from_utf8(json).map_err(|e| StoreError::Failed(format!("decode content: {e}")))?;
    Ok(StoredContent::from_json(json))
}

fn is_empty(content: &CallContent) -> bool {
    content.messages.is_empty() && content.events.is_empty() && content.latency.is_none()
}

fn new_version() -> Result<String, StoreError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Failed(format!("random: {e}")))?;
    Ok(hex::encode(bytes))
}

/// How a write names the content version of the parts it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// A new random version on every write ([`DynamoStore::put_call`]): a write never shares parts with
    /// another, so deleting every part that was there before it is always safe.
    Fresh,
    /// The digest of the compressed content ([`DynamoStore::put_calls`]): writing the same call again rewrites
    /// the same items, so bulk writes are idempotent. `0` for a call without content.
    Digest,
}

/// A call as the items the store writes for it (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedCall {
    /// The call's partition key.
    pub pk: String,
    /// The content version the summary names and the parts carry in their sort keys.
    pub version: String,
    /// The content part items, in order: the compressed content cut into pieces of at most [`PART_BYTES`].
    /// Empty for a call without content.
    pub parts: Vec<Item>,
    /// The summary item.
    pub summary: Item,
}

impl EncodedCall {
    /// Every item, in write order: the parts, then the summary.
    pub fn into_items(self) -> Vec<Item> {
        let mut items = self.parts;
        items.push(self.summary);
        items
    }

    /// Bytes of compressed content over all parts.
    pub fn content_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|item| match item.get(layout::PART_DATA) {
                Some(AttributeValue::B(blob)) => blob.as_ref().len(),
                _ => 0,
            })
            .sum()
    }
}

/// The items the store writes for a call, without any I/O: the call normalised, its content compressed and
/// cut into parts, and its summary item with its list and live-recordings index keys. What
/// [`DynamoStore::put_call`] and [`DynamoStore::put_calls`] write.
pub fn encode_call(tenant: &TenantId, record: CallRecord, versioning: Versioning) -> Result<EncodedCall, StoreError> {
    let record = record.normalised();
    let id = CallId::parse(&record.summary.id).map_err(|e| StoreError::Failed(e.to_string()))?;
    let pk = layout::call_pk(tenant, &id);
    let bytes = if is_empty(&record.content) {
        Vec::new()
    } else {
        compress(&record.content)?
    };
    let version = match versioning {
        Versioning::Fresh => new_version()?,
        Versioning::Digest if bytes.is_empty() => "0".to_owned(),
        Versioning::Digest => hex::encode(&Sha256::digest(&bytes)[..8]),
    };
    let parts: Vec<Item> = bytes
        .chunks(PART_BYTES)
        .enumerate()
        .map(|(i, data)| {
            HashMap::from([
                (layout::PK.to_owned(), s(&pk)),
                (layout::SK.to_owned(), s(layout::part_sk(&version, i as u32))),
                (layout::PART_DATA.to_owned(), AttributeValue::B(Blob::new(data))),
            ])
        })
        .collect();
    let summary = summary_item(
        tenant,
        &id,
        record.summary,
        record.recording,
        version.clone(),
        parts.len() as u32,
    )?;
    Ok(EncodedCall {
        pk,
        version,
        parts,
        summary,
    })
}

/// What the items of a call's partition hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// No summary: the tenant has no such call.
    Missing,
    Whole(Box<StoredCall>),
    /// The summary names parts that are not (yet) all visible: a read racing a rewrite.
    Torn,
}

/// A call from the items of its partition (what the Query of [`DynamoStore::get_call`] returns, in any
/// order), without any I/O: the summary, and the content decompressed from the parts of the version the
/// summary names; parts of other versions are ignored.
pub fn decode_call(id: &CallId, items: Vec<Item>) -> Result<Fetched, StoreError> {
    let mut summary: Option<SummaryItem> = None;
    let mut parts: Vec<(String, u32, Vec<u8>)> = Vec::new();
    for mut item in items {
        let sk = match item.get(layout::SK) {
            Some(AttributeValue::S(sk)) => sk.clone(),
            _ => return Err(StoreError::Failed(format!("call {id}: item without sort key"))),
        };
        if sk == layout::SUMMARY_SK {
            summary = Some(
                serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("call {id}: summary: {e}")))?,
            );
        } else if let Some((version, index)) = layout::parse_part_sk(&sk) {
            let data = match item.remove(layout::PART_DATA) {
                Some(AttributeValue::B(blob)) => blob.into_inner(),
                _ => return Err(StoreError::Failed(format!("call {id}: part {sk} without data"))),
            };
            parts.push((version.to_owned(), index, data));
        }
    }
    let Some(summary) = summary else {
        return Ok(Fetched::Missing);
    };
    let mut mine: Vec<(u32, Vec<u8>)> = parts
        .into_iter()
        .filter(|(v, _, _)| *v == summary.content_version)
        .map(|(_, i, d)| (i, d))
        .collect();
    mine.sort_by_key(|(i, _)| *i);
    let complete =
        mine.len() == summary.content_parts as usize && mine.iter().enumerate().all(|(n, (i, _))| *i as usize == n);
    if !complete {
        return Ok(Fetched::Torn);
    }
    let content = if mine.is_empty() {
        StoredContent::default()
    } else {
        decompress(
            &mine.into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
            summary.content_format.as_deref(),
        )?
    };
    Ok(Fetched::Whole(Box::new(StoredCall {
        summary: summary.summary,
        recording: summary.recording,
        content,
    })))
}

fn put_request(item: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(item)).build().expect("item set"))
        .build()
}

fn delete_request(pk: &str, sk: String) -> WriteRequest {
    let key = HashMap::from([(layout::PK.to_owned(), s(pk)), (layout::SK.to_owned(), s(sk))]);
    WriteRequest::builder()
        .delete_request(DeleteRequest::builder().set_key(Some(key)).build().expect("key set"))
        .build()
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads a whole call: one Query on the call's partition (more pages only for calls over 1 MB stored).
    /// `None` when the tenant has no such call.
    pub async fn get_call(&self, tenant: &TenantId, id: &CallId) -> Result<Option<StoredCall>, StoreError> {
        // A read racing a rewrite of the same call may see a summary whose parts were not yet visible; read
        // again rather than serve a mixture.
        for _ in 0..3 {
            match self.read_call(tenant, id).await? {
                Fetched::Missing => return Ok(None),
                Fetched::Whole(record) => return Ok(Some(*record)),
                Fetched::Torn => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Err(StoreError::Failed(format!(
            "call {id}: content parts missing after retries"
        )))
    }

    async fn read_call(&self, tenant: &TenantId, id: &CallId) -> Result<Fetched, StoreError> {
        let items = self.query_partition(&layout::call_pk(tenant, id), None).await?;
        decode_call(id, items)
    }

    /// All items of a partition, following pages; `projection` limits the attributes returned.
    async fn query_partition(&self, pk: &str, projection: Option<&str>) -> Result<Vec<Item>, StoreError> {
        all_pages(
            self.query_key(None, layout::PK, pk, None)
                .set_projection_expression(projection.map(str::to_owned)),
        )
        .await
    }

    /// A Query on `pk_attr = pk` (a key of the table, or of `index`), and `sort` on the sort key when given
    /// (written with `#s`, named by the caller).
    fn query_key(&self, index: Option<&str>, pk_attr: &str, pk: &str, sort: Option<&str>) -> QueryFluentBuilder {
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

    /// Writes a whole call (creating or replacing it). See the module docs for the write order.
    pub async fn put_call(&self, tenant: &TenantId, record: CallRecord) -> Result<(), StoreError> {
        let call = encode_call(tenant, record, Versioning::Fresh)?;
        let old_parts: Vec<String> = self
            .query_partition(&call.pk, Some(layout::SK))
            .await?
            .into_iter()
            .filter_map(|item| match item.get(layout::SK) {
                Some(AttributeValue::S(sk)) if layout::parse_part_sk(sk).is_some() => Some(sk.clone()),
                _ => None,
            })
            .collect();

        self.batch_write(call.parts.into_iter().map(put_request).collect())
            .await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(call.summary))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;

        let deletes = old_parts.into_iter().map(|sk| delete_request(&call.pk, sk));
        self.batch_write(deletes.collect()).await
    }

    /// Writes many calls (creating or replacing them) with batch requests, `concurrency` rounds of up to
    /// [`BULK_CHUNK`] calls at a time: what imports and generated data use. Idempotent: a content version is
    /// the digest of the content, so writing the same call again rewrites the same items, and a call whose
    /// content changed loses its old parts once its new summary is in. Within a round the order of
    /// [`Self::put_call`] holds (parts, then summaries, then stale parts deleted). A call id given twice in
    /// one round is written once, with its last version.
    pub async fn put_calls(
        &self,
        tenant: &TenantId,
        records: Vec<CallRecord>,
        concurrency: usize,
    ) -> Result<(), StoreError> {
        let mut rounds = Vec::new();
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            rounds.push(records.by_ref().take(BULK_CHUNK).collect::<Vec<_>>());
        }
        futures::stream::iter(rounds)
            .map(|round| self.put_round(tenant, round))
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn put_round(&self, tenant: &TenantId, records: Vec<CallRecord>) -> Result<(), StoreError> {
        let mut calls: Vec<EncodedCall> = Vec::with_capacity(records.len());
        for record in records {
            let call = encode_call(tenant, record, Versioning::Digest)?;
            calls.retain(|c| c.pk != call.pk);
            calls.push(call);
        }

        let before = self.content_versions(calls.iter().map(|c| c.pk.as_str())).await?;
        let mut parts = Vec::new();
        let mut summaries = Vec::new();
        let mut stale = Vec::new();
        for call in calls {
            parts.extend(call.parts.into_iter().map(put_request));
            summaries.push(put_request(call.summary));
            if let Some((old_version, old_parts)) = before.get(&call.pk) {
                if *old_version != call.version {
                    stale.extend((0..*old_parts).map(|i| delete_request(&call.pk, layout::part_sk(old_version, i))));
                }
            }
        }
        self.batch_write(parts).await?;
        self.batch_write(summaries).await?;
        self.batch_write(stale).await
    }

    /// The content version and part count of each of these calls that exists: one BatchGetItem per 100.
    async fn content_versions<'a>(
        &self,
        pks: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, (String, u32)>, StoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            pk: String,
            content_version: String,
            content_parts: u32,
        }
        let keys: Vec<Item> = pks
            .map(|pk| {
                HashMap::from([
                    (layout::PK.to_owned(), s(pk)),
                    (layout::SK.to_owned(), s(layout::SUMMARY_SK)),
                ])
            })
            .collect();
        let mut found = HashMap::new();
        for group in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(group.to_vec()))
                    .projection_expression("#pk, contentVersion, contentParts")
                    .expression_attribute_names("#pk", layout::PK)
                    .build()
                    .map_err(|e| StoreError::Failed(format!("BatchGetItem: {e}")))?,
            );
            let mut attempt = 0u32;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| classify("BatchGetItem", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let v: Version =
                        serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("summary: {e}")))?;
                    found.insert(v.pk, (v.content_version, v.content_parts));
                }
                pending = out.unprocessed_keys.and_then(|mut m| m.remove(&self.table));
                if pending.is_some() {
                    back_off("BatchGetItem", &mut attempt).await?;
                }
            }
        }
        Ok(found)
    }

    /// BatchWriteItem in groups of 25, retrying unprocessed items with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for group in requests.chunks(BATCH) {
            let mut pending = group.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    back_off("BatchWriteItem", &mut attempt).await?;
                }
            }
        }
        Ok(())
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
            .key(layout::PK, s(layout::call_pk(tenant, id)))
            .key(layout::SK, s(layout::SUMMARY_SK))
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        let Some(item) = out.item else { return Ok(None) };
        let item: SummaryItem =
            serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("call {id}: summary: {e}")))?;
        Ok(Some((item.summary, item.recording)))
    }

    /// One page of the live recordings in `shard` made before `made_before` (a `gsi2sk` bound), oldest first.
    pub async fn due_recordings(
        &self,
        shard: u32,
        made_before: &str,
        start: Option<Item>,
        limit: i32,
    ) -> Result<DuePage, StoreError> {
        let out = self
            .query_key(
                Some(layout::GSI2),
                layout::GSI2_PK,
                &layout::recording_shard_pk(shard),
                Some("#s < :before"),
            )
            .expression_attribute_names("#s", layout::GSI2_SK)
            .expression_attribute_values(":before", s(made_before))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let mut due = Vec::new();
        for item in out.items.unwrap_or_default() {
            let row: DueItem =
                serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("due recording: {e}")))?;
            let made_at = layout::parse_recording_time(&row.gsi2sk)
                .ok_or_else(|| StoreError::Failed(format!("bad gsi2sk {}", row.gsi2sk)))?;
            due.push(DueRecording {
                pk: row.pk,
                index_sk: row.gsi2sk,
                made_at,
                object_key: row.recording.and_then(|r| r.key),
            });
        }
        Ok(DuePage {
            due,
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// Marks a due recording expired, touching nothing of the call but its recording status and its place in
    /// the live-recordings index. Conditional on the call still holding that same recording: `false` when it
    /// does not (another run marked it first, or the call was rewritten since).
    pub async fn mark_recording_expired(&self, due: &DueRecording) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(layout::PK, s(&due.pk))
            .key(layout::SK, s(layout::SUMMARY_SK))
            .update_expression("SET #rec.#status = :expired REMOVE #gp, #gs")
            .condition_expression("#gs = :sk")
            .expression_attribute_names("#rec", "recording")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#gp", layout::GSI2_PK)
            .expression_attribute_names("#gs", layout::GSI2_SK)
            .expression_attribute_values(":expired", s("expired"))
            .expression_attribute_values(":sk", s(&due.index_sk))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

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
                let (_, id) = layout::parse_list_sk(position)
                    .ok_or_else(|| StoreError::Failed(format!("list position {position:?} is not a list key")))?;
                Some(HashMap::from([
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
        for item in out.items.unwrap_or_default() {
            let row: SummaryItem =
                serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("list item: {e}")))?;
            let position = row
                .list
                .list_sk
                .ok_or_else(|| StoreError::Failed(format!("list item {} without {}", row.pk, layout::LIST_SK)))?;
            items.push((position, (row.summary, row.recording)));
        }
        let last_read = match out.last_evaluated_key {
            Some(key) if !key.is_empty() => match key.get(layout::LIST_SK) {
                Some(AttributeValue::S(position)) => Some(position.clone()),
                _ => return Err(StoreError::Failed("list page ended without a list key".into())),
            },
            _ => None,
        };
        Ok(list::Read { items, last_read })
    }

    /// How many calls match a plan over all pages. Reads every matching index item (asked for, never by
    /// default), so it is spread: the first and last item of the range are found (two one-item Queries), the
    /// time between them is cut into [`COUNT_SLICES`] slices, and each slice is counted by its own chain of
    /// count-only Queries, all slices at once. A tenant's 100,000 calls are about 120 requests, in about a
    /// sixth of the time one chain would take.
    pub async fn count(&self, plan: &Plan) -> Result<u64, StoreError> {
        let (Some(first), Some(last)) = (self.edge(plan, true).await?, self.edge(plan, false).await?) else {
            return Ok(0);
        };
        let (Some((t0, _)), Some((t1, _))) = (layout::parse_list_sk(&first), layout::parse_list_sk(&last)) else {
            return Err(StoreError::Failed(format!("list keys {first:?} / {last:?}")));
        };
        let span = (t1 - t0).num_nanoseconds().unwrap_or(i64::MAX);
        let slices = if span < i64::from(COUNT_SLICES) {
            1
        } else {
            COUNT_SLICES
        };
        let mut bounds = vec![plan.lower.clone()];
        for k in 1..slices {
            let at = t0 + chrono::Duration::nanoseconds(span / i64::from(slices) * i64::from(k));
            bounds.push(Some(layout::list_time(at)));
        }
        bounds.push(plan.upper.clone());
        let ranges = bounds.windows(2).map(|w| Plan {
            lower: w[0].clone(),
            upper: w[1].clone(),
            ..plan.clone()
        });
        let counts = futures::future::try_join_all(
            ranges
                .into_iter()
                .map(|range| async move { self.count_range(&range).await }),
        )
        .await?;
        Ok(counts.into_iter().sum())
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
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|mut item| match item.remove(layout::LIST_SK) {
                Some(AttributeValue::S(sk)) => Some(sk),
                _ => None,
            }))
    }

    /// Count-only Queries over one key range, following pages.
    async fn count_range(&self, plan: &Plan) -> Result<u64, StoreError> {
        // At most COUNT_PAGE items per request: on DynamoDB about what its 1 MB page holds anyway (summaries
        // are 1-2 KB), and it keeps each request short. DynamoDB Local, left unbounded, builds a whole
        // partition's count in memory and fails with an internal error at 100,000 calls.
        let query = self.list_query(plan).select(Select::Count).limit(COUNT_PAGE);
        let mut total = 0u64;
        each_page(query, |out| total += u64::try_from(out.count).unwrap_or(0)).await?;
        Ok(total)
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

    pub async fn put_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let tenant = TenantId::parse(&record.tenant_id).map_err(|e| StoreError::Failed(e.to_string()))?;
        let item = KeyItem {
            pk: layout::key_pk(&record.key_id),
            sk: layout::key_sk().to_owned(),
            gsi1pk: layout::tenant_keys_gsi1pk(&tenant),
            gsi1sk: format!(
                "{}#{}",
                record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                record.key_id
            ),
            record: record.clone(),
        };
        let item: Item = serde_dynamo::to_item(&item).map_err(|e| StoreError::Failed(format!("encode key: {e}")))?;
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

    /// A key's record, read consistently so that a revocation takes effect at once.
    pub async fn get_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(layout::PK, s(layout::key_pk(key_id)))
            .key(layout::SK, s(layout::key_sk()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let item: KeyItem =
            serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("decode key: {e}")))?;
        Ok(Some(item.record))
    }

    /// The tenant a presented key acts for, or `None` for a malformed, unknown or revoked key.
    pub async fn authenticate(&self, key: &str) -> Result<Option<TenantId>, StoreError> {
        let Some(key_id) = apikey::key_id_of(key) else {
            return Ok(None);
        };
        Ok(self
            .get_key(key_id)
            .await?
            .and_then(|record| apikey::verify(&record, key)))
    }

    /// Marks a key revoked; `false` when there is no such key. Revoking twice keeps the first time.
    pub async fn revoke_key(&self, key_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(layout::PK, s(layout::key_pk(key_id)))
            .key(layout::SK, s(layout::key_sk()))
            .update_expression("SET revokedAt = if_not_exists(revokedAt, :now)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", layout::PK)
            .expression_attribute_values(":now", s(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    /// A tenant's keys, newest first.
    pub async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let query = self
            .query_key(
                Some(layout::GSI1),
                layout::GSI1_PK,
                &layout::tenant_keys_gsi1pk(tenant),
                None,
            )
            .scan_index_forward(false);
        all_pages(query)
            .await?
            .into_iter()
            .map(|item| {
                let item: KeyItem =
                    serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("decode key: {e}")))?;
                Ok(item.record)
            })
            .collect()
    }
}

/// A row of the live-recordings index, as projected (keys plus `recording`).
#[derive(Debug, Deserialize)]
struct DueItem {
    pk: String,
    gsi2sk: String,
    #[serde(default)]
    recording: Option<StoredRecording>,
}

/// A recording whose retention has ended, as the expiry job sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueRecording {
    /// The call's partition key.
    pub pk: String,
    /// Its live-recordings index sort key, which also pins the recording for the conditional update.
    pub index_sk: String,
    /// When the recording was made (rounded up to the second).
    pub made_at: DateTime<Utc>,
    pub object_key: Option<String>,
}

pub struct DuePage {
    pub due: Vec<DueRecording>,
    /// Where the next page starts; `None` at the end of the shard.
    pub next: Option<HashMap<String, AttributeValue>>,
}

/// Waits before another try at a batch's unprocessed part, longer each time (50 ms doubling up to 1.6 s);
/// after 8 tries the service counts as unavailable.
async fn back_off(op: &str, attempt: &mut u32) -> Result<(), StoreError> {
    *attempt += 1;
    if *attempt > 8 {
        return Err(StoreError::Unavailable(format!(
            "{op}: unprocessed items after retries"
        )));
    }
    tokio::time::sleep(Duration::from_millis(25 << (*attempt).min(6))).await;
    Ok(())
}

/// Sends a Query and each page after it, handing every response to `on_page`.
async fn each_page(query: QueryFluentBuilder, mut on_page: impl FnMut(QueryOutput)) -> Result<(), StoreError> {
    let mut start: Option<Item> = None;
    loop {
        let mut out = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        let next = out.last_evaluated_key.take().filter(|k| !k.is_empty());
        on_page(out);
        match next {
            Some(k) => start = Some(k),
            None => return Ok(()),
        }
    }
}

/// Every item a Query returns, following its pages.
async fn all_pages(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    each_page(query, |out| items.extend(out.items.unwrap_or_default())).await?;
    Ok(items)
}

/// The summary item of a call, with its live-recordings index keys when its recording is live.
fn summary_item(
    tenant: &TenantId,
    id: &CallId,
    summary: CallSummary,
    recording: Option<StoredRecording>,
    content_version: String,
    content_parts: u32,
) -> Result<Item, StoreError> {
    let (gsi2pk, gsi2sk) = match recording.as_ref().filter(|r| recording::is_live(r)) {
        Some(rec) => {
            let (p, s) = layout::recording_index_keys(tenant, id, recording::made_at(&summary, rec));
            (Some(p), Some(s))
        }
        None => (None, None),
    };
    let list = ListKeys::of(tenant, id, &summary);
    let item = SummaryItem {
        pk: layout::call_pk(tenant, id),
        sk: layout::SUMMARY_SK.to_owned(),
        tenant_id: tenant.as_str().to_owned(),
        summary,
        recording,
        content_version,
        content_parts,
        content_format: (content_parts > 0).then(|| FORMAT_LZ4_JSON.to_owned()),
        gsi2pk,
        gsi2sk,
        list,
    };
    serde_dynamo::to_item(&item).map_err(|e| StoreError::Failed(format!("encode summary: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn whole(fetched: Fetched) -> CallRecord {
        match fetched {
            Fetched::Whole(stored) => stored.into_record().unwrap(),
            other => panic!("expected a whole call, got {other:?}"),
        }
    }

    /// A small call in the API's format, without the synthetic generator (feature `admin`).
    fn small_call() -> CallRecord {
        let value = serde_json::json!({
            "id": "call_123", "direction": "inbound", "status": "completed",
            "from": "+14155550123", "to": "+14155550100",
            "createdAt": "2025-01-15T10:30:00Z", "startTime": "2025-01-15T10:30:02Z", "endTime": "2025-01-15T10:35:30Z",
            "recordingFormat": "wav", "recordingDuration": 328,
            "messages": [
                {"id": "m1", "role": "assistant", "content": "Hello!", "timestamp": "2025-01-15T10:30:03Z",
                 "words": [{"word": "Hello!", "start": 0.5, "end": 0.9}]},
                {"id": "m2", "role": "tool", "content": "lookup called", "timestamp": "2025-01-15T10:30:05Z",
                 "toolInfo": {"name": "lookup", "arguments": {"q": 1}, "result": {"ok": true}}}
            ],
            "events": [{"timestamp": "2025-01-15T10:30:00Z", "type": "call.created", "data": {}}]
        });
        CallRecord::from_api_json(&tenant(), &value).unwrap()
    }

    #[test]
    fn encoded_items_decode_to_the_same_call_in_any_order() {
        let call = small_call();
        let id = CallId::parse(&call.summary.id).unwrap();
        let encoded = encode_call(&tenant(), call.clone(), Versioning::Digest).unwrap();
        assert_eq!(encoded.parts.len(), 1);
        assert!(encoded.content_bytes() > 0);
        let items = encoded.into_items();
        assert_eq!(whole(decode_call(&id, items.clone()).unwrap()), call);
        let reversed: Vec<Item> = items.into_iter().rev().collect();
        assert_eq!(whole(decode_call(&id, reversed).unwrap()), call);
    }

    #[test]
    fn digest_versions_repeat_and_fresh_versions_do_not() {
        let call = small_call();
        let digest = |c: CallRecord| encode_call(&tenant(), c, Versioning::Digest).unwrap();
        let fresh = |c: CallRecord| encode_call(&tenant(), c, Versioning::Fresh).unwrap();
        assert_eq!(digest(call.clone()), digest(call.clone()));
        assert_ne!(fresh(call.clone()).version, fresh(call.clone()).version);
        let mut empty = call;
        empty.content = CallContent::default();
        let encoded = digest(empty);
        assert_eq!((encoded.version.as_str(), encoded.parts.len()), ("0", 0));
    }

    #[test]
    fn decode_tells_a_missing_call_from_a_torn_one() {
        let call = small_call();
        let id = CallId::parse(&call.summary.id).unwrap();
        let a = encode_call(&tenant(), call.clone(), Versioning::Fresh).unwrap();
        let b = encode_call(&tenant(), call.clone(), Versioning::Fresh).unwrap();
        assert_eq!(decode_call(&id, Vec::new()).unwrap(), Fetched::Missing);
        assert_eq!(decode_call(&id, a.parts.clone()).unwrap(), Fetched::Missing);
        // The summary of one write with only the parts of another: torn, never a mixture.
        let torn = [vec![a.summary.clone()], b.parts.clone()].concat();
        assert_eq!(decode_call(&id, torn).unwrap(), Fetched::Torn);
        // Parts of another version beside a whole call are ignored.
        let both = [a.clone().into_items(), b.parts].concat();
        assert_eq!(whole(decode_call(&id, both).unwrap()), call);
    }

    #[test]
    fn content_written_as_deflate_before_lz4_is_still_read() {
        use flate2::write::DeflateEncoder;
        use std::io::Write;
        let call = small_call();
        let id = CallId::parse(&call.summary.id).unwrap();
        let mut items = encode_call(&tenant(), call.clone(), Versioning::Digest)
            .unwrap()
            .into_items();
        let mut old = DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        old.write_all(&serde_json::to_vec(&call.content).unwrap()).unwrap();
        let old = old.finish().unwrap();
        for item in &mut items {
            assert!(item.remove("contentFormat").is_some() || item.contains_key(layout::PART_DATA));
            if item.contains_key(layout::PART_DATA) {
                item.insert(layout::PART_DATA.to_owned(), AttributeValue::B(Blob::new(old.clone())));
            }
        }
        let Fetched::Whole(stored) = decode_call(&id, items).unwrap() else {
            panic!("a whole call")
        };
        assert_eq!(stored.content.parts().unwrap().transcript, None);
        assert_eq!(stored.into_record().unwrap(), call);
    }

    #[test]
    fn an_unknown_content_format_is_an_error_not_a_guess() {
        let call = small_call();
        let id = CallId::parse(&call.summary.id).unwrap();
        let mut items = encode_call(&tenant(), call, Versioning::Digest).unwrap().into_items();
        for item in &mut items {
            if item.contains_key("contentFormat") {
                item.insert("contentFormat".to_owned(), s("zstd-json"));
            }
        }
        assert!(decode_call(&id, items).is_err());
    }

    #[cfg(feature = "admin")]
    #[test]
    fn encode_then_decode_round_trips_synth_calls_of_one_and_several_parts() {
        use crate::model::{CallStatus, Direction};
        let start = "2025-01-15T10:30:00Z".parse().unwrap();
        for (turns, several) in [(5, false), (2000, true)] {
            let call = crate::synth::Generator::new(7).call(
                &tenant(),
                "call_synth",
                CallStatus::Completed,
                Direction::Outbound,
                start,
                turns,
            );
            assert!(call.recording.is_some() && call.content.latency.is_some());
            let id = CallId::parse(&call.summary.id).unwrap();
            let encoded = encode_call(&tenant(), call.clone(), Versioning::Fresh).unwrap();
            assert_eq!(encoded.parts.len() > 1, several, "{turns} turns");
            assert_eq!(
                whole(decode_call(&id, encoded.into_items()).unwrap()),
                call,
                "{turns} turns"
            );
        }
    }
}
