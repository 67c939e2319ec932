//! The pure codec: a call to the items the store writes and back, without any I/O.
//!
//! A call's content (messages with word timings, events, latency, and the transcript derived from the
//! messages) is JSON, LZ4-compressed and cut into parts of at most [`PART_BYTES`], so a call of any size
//! fits under DynamoDB's 400 KB item limit. The summary item names the content version its parts carry;
//! a reader takes only the parts of that version, so parts of an older or a newer write beside it are
//! never mixed in (see [`super::calls`] for the write protocol).

use std::collections::HashMap;
use std::io::Read;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use flate2::read::DeflateDecoder;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::layout::{self, ListIndex, SummaryItem};
use crate::error::StoreError;
use crate::ids::{CallId, TenantId};
use crate::model::{
    transcript, CallContent, CallEvent, CallRecord, CallSummary, Latency, Message, RecordingStatus, StoredRecording,
};
use crate::recording;

/// Largest compressed content part. Leaves room under the 400 KB item limit for the keys.
pub const PART_BYTES: usize = 350 * 1024;

/// A DynamoDB item, as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;

/// `contentFormat` of content written as LZ4 blocks (size-prepended) of [`StoredContent::encode`]'s JSON.
/// Summaries without the attribute hold content written before: raw deflate of the content's JSON, which is
/// still read. LZ4 decompresses about eight times faster than deflate (`bench/benches/codec.rs`), at a
/// third more stored bytes, and every ordinary call still fits in one 1 MB Query page.
const FORMAT_LZ4_JSON: &str = "lz4-json";

/// A call's content as the store returns it: the JSON text it was written as, which holds exactly what
/// get-call serves (`messages`, `events`, `latency`, and the `transcript` derived when it was written).
/// Reading a call parses this only as far as finding those parts ([`StoredContent::parts`]), so a call of
/// thousands of messages is served without building them; [`StoredContent::decode`] builds the typed
/// content when something needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredContent {
    json: String,
}

/// The parts of [`StoredContent`], borrowed from its text. Each is absent when the stored JSON has none.
#[derive(Debug, Default, Deserialize)]
pub struct ContentParts<'a> {
    #[serde(borrow, default)]
    pub messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub events: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub latency: Option<&'a RawValue>,
    /// Absent in content written before the transcript was stored with it.
    #[serde(default)]
    pub transcript: Option<String>,
}

/// How content is written: [`CallContent`]'s fields, and the transcript derived from its messages.
#[derive(Serialize)]
struct ContentOut<'a> {
    messages: &'a [Message],
    events: &'a [CallEvent],
    latency: &'a Option<Latency>,
    transcript: String,
}

impl StoredContent {
    /// Content as stored (the text [`StoredContent::encode`] wrote); empty text is a call without content.
    pub fn from_json(json: String) -> Self {
        StoredContent { json }
    }

    /// The text to store for `content`.
    pub fn encode(content: &CallContent) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&ContentOut {
            messages: &content.messages,
            events: &content.events,
            latency: &content.latency,
            transcript: transcript(&content.messages),
        })
    }

    pub fn parts(&self) -> Result<ContentParts<'_>, serde_json::Error> {
        if self.json.is_empty() {
            return Ok(ContentParts::default());
        }
        serde_json::from_str(&self.json)
    }

    pub fn decode(&self) -> Result<CallContent, serde_json::Error> {
        if self.json.is_empty() {
            return Ok(CallContent::default());
        }
        serde_json::from_str(&self.json)
    }
}

/// A whole call as the store returns it: see [`StoredContent`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    pub summary: CallSummary,
    pub recording: Option<StoredRecording>,
    pub content: StoredContent,
    /// The committed write this is (see [`layout::REVISION`]), its `ETag`; for a call written before
    /// revisions, its content version (what a conditional write compares then). `None` only for a call
    /// that has not been written.
    pub revision: Option<String>,
    /// Which webhook delivery set each field, for a call webhooks wrote ([`crate::webhook::Sources`]).
    pub webhook_sources: Option<crate::webhook::Sources>,
}

impl StoredCall {
    /// A call being written, as the store would return it.
    pub fn from_record(record: CallRecord) -> Result<Self, serde_json::Error> {
        let json = StoredContent::encode(&record.content)?;
        Ok(StoredCall {
            summary: record.summary,
            recording: record.recording,
            content: StoredContent::from_json(String::from_utf8(json).map_err(serde::ser::Error::custom)?),
            revision: None,
            webhook_sources: None,
        })
    }

    /// The call with its content built.
    pub fn into_record(self) -> Result<CallRecord, serde_json::Error> {
        Ok(CallRecord {
            content: self.content.decode()?,
            summary: self.summary,
            recording: self.recording,
        })
    }
}

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

/// A random token: content versions and revisions.
pub fn token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Failed(format!("random: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A call encoded for the store, before a write picks its content version and revision.
#[derive(Debug, Clone)]
pub struct EncodedCall {
    pub id: CallId,
    /// The call's partition key.
    pub pk: String,
    /// Digest of the compressed content; `0` for a call without content.
    pub digest: String,
    /// The compressed content cut into pieces of at most [`PART_BYTES`]; empty for a call without content.
    pub chunks: Vec<Vec<u8>>,
    summary: SummaryItem,
}

/// What a committed write names in the summary item.
#[derive(Debug, Clone)]
pub struct Commit {
    pub version: String,
    pub revision: String,
    /// The clean-up index keys, when the write replaces content that still has to be deleted.
    pub cleanup: Option<(String, String)>,
}

impl EncodedCall {
    /// The content part items of `version`, in order.
    pub fn part_items(&self, version: &str) -> Vec<Item> {
        self.chunks
            .iter()
            .enumerate()
            .map(|(i, data)| {
                HashMap::from([
                    (layout::PK.to_owned(), s(&self.pk)),
                    (layout::SK.to_owned(), s(layout::part_sk(version, i as u32))),
                    (layout::PART_DATA.to_owned(), AttributeValue::B(Blob::new(data.clone()))),
                ])
            })
            .collect()
    }

    /// The summary item as `commit` writes it, with its list index keys.
    pub fn summary_item(&self, commit: &Commit) -> Result<Item, StoreError> {
        let mut item = self.summary.clone();
        item.content_version = commit.version.clone();
        item.revision = Some(commit.revision.clone());
        item.body_revision = Some(commit.revision.clone());
        (item.gsi3pk, item.gsi3sk) = match &commit.cleanup {
            Some((p, s)) => (Some(p.clone()), Some(s.clone())),
            None => (None, None),
        };
        let mut map: Item =
            serde_dynamo::to_item(&item).map_err(|e| StoreError::Failed(format!("encode summary: {e}")))?;
        map.extend(list_keys(&self.summary.tenant_id, &self.id, &self.summary.summary));
        Ok(map)
    }

    /// Every item of one write, parts first: what benchmarks and tests decode.
    pub fn items(&self, commit: &Commit) -> Result<Vec<Item>, StoreError> {
        let mut items = self.part_items(&commit.version);
        items.push(self.summary_item(commit)?);
        Ok(items)
    }

    /// Bytes of compressed content over all parts.
    pub fn content_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    /// The call's summary as it will be stored.
    pub fn summary(&self) -> &CallSummary {
        &self.summary.summary
    }

    /// The recording as it will be stored.
    pub fn recording(&self) -> Option<&StoredRecording> {
        self.summary.recording.as_ref()
    }

    /// Replaces the recording the call will be stored with (and its place in the live-recordings index).
    pub fn set_recording(&mut self, rec: Option<StoredRecording>) {
        let tenant = TenantId::parse(&self.summary.tenant_id);
        (self.summary.gsi2pk, self.summary.gsi2sk) = match (rec.as_ref(), tenant) {
            (Some(r), Ok(tenant)) if recording::is_live(r) => {
                let (p, s) =
                    layout::recording_index_keys(&tenant, &self.id, recording::made_at(&self.summary.summary, r));
                (Some(p), Some(s))
            }
            _ => (None, None),
        };
        self.summary.recording = rec;
    }

    /// What the call stores of the webhook deliveries that made it ([`crate::webhook::Sources`]); `None`
    /// for a call written otherwise.
    pub fn set_webhook_sources(&mut self, sources: Option<crate::webhook::Sources>) {
        self.summary.webhook_sources = sources;
    }

    /// Keeps a recording that the expiry job marked expired expired: a write that names the same object
    /// never makes it live again (the job may be deleting it; see [`crate::expiry`]).
    pub fn keep_expired(&mut self, stored: &SummaryItem) {
        let Some(old) = stored
            .recording
            .as_ref()
            .filter(|r| r.status == RecordingStatus::Expired)
        else {
            return;
        };
        if let Some(new) = self
            .summary
            .recording
            .as_mut()
            .filter(|r| r.key.is_some() && r.key == old.key)
        {
            new.status = RecordingStatus::Expired;
            self.summary.gsi2pk = None;
            self.summary.gsi2sk = None;
        }
    }

    /// Whether `stored` already holds exactly this call (revision, version and clean-up keys aside), so
    /// writing it again would change nothing.
    pub fn same_as(&self, stored: &SummaryItem) -> bool {
        let mut mine = self.summary.clone();
        mine.content_version.clone_from(&stored.content_version);
        mine.revision.clone_from(&stored.revision);
        mine.body_revision.clone_from(&stored.body_revision);
        mine.gsi3pk.clone_from(&stored.gsi3pk);
        mine.gsi3sk.clone_from(&stored.gsi3sk);
        mine.summary.updated_at = stored.summary.updated_at;
        stored.content_digest.as_deref() == Some(self.digest.as_str())
            && serde_json::to_value(&mine).ok() == serde_json::to_value(stored).ok()
    }
}

/// The items the store writes for a call, without any I/O: the call normalised, its content compressed and
/// cut into parts, and its summary with its live-recordings index keys.
pub fn encode_call(tenant: &TenantId, record: CallRecord) -> Result<EncodedCall, StoreError> {
    let record = record.normalised();
    let id = CallId::parse(&record.summary.id).map_err(|e| StoreError::Failed(e.to_string()))?;
    let pk = layout::call_pk(tenant, &id);
    let bytes = if is_empty(&record.content) {
        Vec::new()
    } else {
        compress(&record.content)?
    };
    let digest = if bytes.is_empty() {
        "0".to_owned()
    } else {
        hex::encode(&Sha256::digest(&bytes)[..8])
    };
    let chunks: Vec<Vec<u8>> = bytes.chunks(PART_BYTES).map(<[u8]>::to_vec).collect();
    let live = record.recording.as_ref().filter(|r| recording::is_live(r));
    let (gsi2pk, gsi2sk) = match live {
        Some(rec) => {
            let (p, s) = layout::recording_index_keys(tenant, &id, recording::made_at(&record.summary, rec));
            (Some(p), Some(s))
        }
        None => (None, None),
    };
    let summary = SummaryItem {
        pk: pk.clone(),
        sk: layout::SUMMARY_SK.to_owned(),
        tenant_id: tenant.as_str().to_owned(),
        summary: record.summary,
        recording: record.recording,
        content_version: String::new(),
        content_parts: chunks.len() as u32,
        content_format: (!chunks.is_empty()).then(|| FORMAT_LZ4_JSON.to_owned()),
        content_digest: Some(digest.clone()),
        revision: None,
        body_revision: None,
        gsi2pk,
        gsi2sk,
        gsi3pk: None,
        gsi3sk: None,
        webhook_sources: None,
    };
    Ok(EncodedCall {
        id,
        pk,
        digest,
        chunks,
        summary,
    })
}

/// A summary's keys in the list indexes (see the layout); each is absent when the call has no such value.
fn list_keys(tenant: &str, id: &CallId, summary: &CallSummary) -> Vec<(String, AttributeValue)> {
    let Ok(tenant) = TenantId::parse(tenant) else {
        return Vec::new();
    };
    // Values a filter could never ask for (empty, or longer than a filter value may be) stay out of the
    // indexes; DynamoDB refuses empty key values anyway.
    let values = [
        (ListIndex::Time, Some(String::new())),
        (ListIndex::Direction, Some(summary.direction.as_str().to_owned())),
        (ListIndex::Status, Some(summary.status.as_str().to_owned())),
        (ListIndex::Number, summary.phone_number_id.clone()),
        (ListIndex::Assistant, summary.assistant_id.clone()),
        (ListIndex::Campaign, summary.campaign_id.clone()),
        (ListIndex::Customer, summary.customer_number()),
    ];
    let mut keys = vec![(layout::LIST_SK.to_owned(), s(layout::list_sk(summary.list_time(), id)))];
    for (index, value) in values {
        let usable = value
            .filter(|v| index == ListIndex::Time || (!v.is_empty() && v.chars().count() <= crate::list::MAX_VALUE_LEN));
        if let Some(v) = usable {
            keys.push((index.pk_attr().to_owned(), s(index.pk(&tenant, &v))));
        }
    }
    keys
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

/// The summary item of a row, or why it cannot be read.
pub fn summary_of(item: Item) -> Result<SummaryItem, StoreError> {
    let pk = match item.get(layout::PK) {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => String::from("?"),
    };
    serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("{pk}: unreadable summary: {e}")))
}

/// A call from the items of its partition (what the Query of a get-call returns, in any order): the
/// summary, and the content decompressed from the parts of the version the summary names; parts of other
/// versions are ignored.
pub fn decode_call(id: &CallId, items: Vec<Item>) -> Result<Fetched, StoreError> {
    let mut summary: Option<SummaryItem> = None;
    let mut parts: Vec<(String, u32, Vec<u8>)> = Vec::new();
    for mut item in items {
        let sk = match item.get(layout::SK) {
            Some(AttributeValue::S(sk)) => sk.clone(),
            _ => return Err(StoreError::Failed(format!("call {id}: item without sort key"))),
        };
        if sk == layout::SUMMARY_SK {
            summary = Some(summary_of(item)?);
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
        revision: summary.revision.or(Some(summary.content_version)),
        webhook_sources: summary.webhook_sources,
    })))
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn commit(version: &str) -> Commit {
        Commit {
            version: version.into(),
            revision: format!("r-{version}"),
            cleanup: None,
        }
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
        crate::validate::call(&tenant(), &value, None, "2025-02-01T00:00:00Z".parse().unwrap()).unwrap()
    }

    #[test]
    fn encoded_items_decode_to_the_same_call_in_any_order() {
        let call = small_call();
        let id = CallId::parse(&call.summary.id).unwrap();
        let encoded = encode_call(&tenant(), call.clone()).unwrap();
        assert_eq!(encoded.chunks.len(), 1);
        assert!(encoded.content_bytes() > 0);
        let items = encoded.items(&commit("v1")).unwrap();
        assert_eq!(whole(decode_call(&id, items.clone()).unwrap()), call);
        let reversed: Vec<Item> = items.into_iter().rev().collect();
        assert_eq!(whole(decode_call(&id, reversed).unwrap()), call);
    }

    #[test]
    fn the_same_call_encodes_to_the_same_digest_and_is_seen_as_unchanged() {
        let call = small_call();
        let a = encode_call(&tenant(), call.clone()).unwrap();
        let b = encode_call(&tenant(), call.clone()).unwrap();
        assert_eq!(a.digest, b.digest);
        let stored = summary_of(a.summary_item(&commit("v1")).unwrap()).unwrap();
        assert!(b.same_as(&stored));
        let mut changed = call.clone();
        changed.summary.end_reason = Some("customer-ended-call".into());
        assert!(!encode_call(&tenant(), changed).unwrap().same_as(&stored));
        let mut empty = call;
        empty.content = CallContent::default();
        let encoded = encode_call(&tenant(), empty).unwrap();
        assert_eq!((encoded.digest.as_str(), encoded.chunks.len()), ("0", 0));
        assert!(!encoded.same_as(&stored));
    }

    #[test]
    fn decode_tells_a_missing_call_from_a_torn_one() {
        let call = small_call();
        let id = CallId::parse(&call.summary.id).unwrap();
        let encoded = encode_call(&tenant(), call.clone()).unwrap();
        let a = encoded.items(&commit("a")).unwrap();
        let b_parts = encoded.part_items("b");
        assert_eq!(decode_call(&id, Vec::new()).unwrap(), Fetched::Missing);
        assert_eq!(decode_call(&id, encoded.part_items("a")).unwrap(), Fetched::Missing);
        // The summary of one write with only the parts of another: torn, never a mixture.
        let torn = [vec![a.last().unwrap().clone()], b_parts.clone()].concat();
        assert_eq!(decode_call(&id, torn).unwrap(), Fetched::Torn);
        // Parts of another version beside a whole call are ignored.
        let both = [a, b_parts].concat();
        assert_eq!(whole(decode_call(&id, both).unwrap()), call);
    }

    #[test]
    fn content_written_as_deflate_before_lz4_is_still_read() {
        use flate2::write::DeflateEncoder;
        use std::io::Write;
        let call = small_call();
        let id = CallId::parse(&call.summary.id).unwrap();
        let mut items = encode_call(&tenant(), call.clone())
            .unwrap()
            .items(&commit("v"))
            .unwrap();
        let mut old = DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        old.write_all(&serde_json::to_vec(&call.content).unwrap()).unwrap();
        let old = old.finish().unwrap();
        for item in &mut items {
            assert!(item.remove(layout::CONTENT_FORMAT).is_some() || item.contains_key(layout::PART_DATA));
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
        let mut items = encode_call(&tenant(), call).unwrap().items(&commit("v")).unwrap();
        for item in &mut items {
            if item.contains_key(layout::CONTENT_FORMAT) {
                item.insert(layout::CONTENT_FORMAT.to_owned(), s("zstd-json"));
            }
        }
        assert!(decode_call(&id, items).is_err());
    }

    #[test]
    fn list_keys_leave_out_values_no_filter_can_ask_for() {
        let mut call = small_call();
        call.summary.assistant_id = Some(String::new());
        call.summary.campaign_id = Some("c".repeat(crate::list::MAX_VALUE_LEN + 1));
        call.summary.phone_number_id = Some("pn_1".into());
        let item = encode_call(&tenant(), call)
            .unwrap()
            .summary_item(&commit("v"))
            .unwrap();
        assert!(!item.contains_key(ListIndex::Assistant.pk_attr()));
        assert!(!item.contains_key(ListIndex::Campaign.pk_attr()));
        assert_eq!(item[ListIndex::Number.pk_attr()], s("T#acme#pn_1"));
        assert_eq!(item[ListIndex::Time.pk_attr()], s("T#acme"));
        assert_eq!(item[ListIndex::Customer.pk_attr()], s("T#acme#+14155550123"));
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
            let encoded = encode_call(&tenant(), call.clone()).unwrap();
            assert_eq!(encoded.chunks.len() > 1, several, "{turns} turns");
            assert_eq!(
                whole(decode_call(&id, encoded.items(&commit("v")).unwrap()).unwrap()),
                call,
                "{turns} turns"
            );
        }
    }
}
