//! The DynamoDB item layout: key formats, attribute names and index names. Nothing else in the code builds
//! a key. template.yaml declares the same table; a test fails if the two disagree.
//!
//! One table, keys `pk` / `sk` (strings), and three global secondary indexes besides the list indexes below:
//! `gsi1` (`gsi1pk` / `gsi1sk`, all attributes), `gsi2` (`gsi2pk` / `gsi2sk`, keys plus `recording`) and
//! `gsi3` (`gsi3pk` / `gsi3sk`, keys only). The items themselves are [`SummaryItem`] and [`KeyItem`] (their
//! serde names are the attribute names; a test checks them against the constants expressions use) and
//! content parts (`pk`, `sk`, [`PART_DATA`]).
//!
//! | item              | pk                      | sk                    | gsi1pk            | gsi1sk                | gsi2pk        | gsi2sk                            |
//! |-------------------|-------------------------|-----------------------|-------------------|-----------------------|---------------|-----------------------------------|
//! | call summary      | `T#<tenant>#C#<callId>` | `A`                   | –                 | –                     | `R#<shard>`¹  | `<madeAt>#<tenant>#<callId>`¹     |
//! | call content part | `T#<tenant>#C#<callId>` | `B#<version>#<nnnnn>` | –                 | –                     | –             | –                                 |
//! | API key           | `K#<keyId>`             | `K`                   | `T#<tenant>#KEYS` | `<createdAt>#<keyId>` | –             | –                                 |
//! | webhook endpoint  | `W#<endpointId>`        | `W`                   | `T#<tenant>#HOOKS`| `<createdAt>#<endpointId>` | –        | –                                 |
//!
//! ¹ only while the call has a recording that has not been expired (a sparse index). A call summary also
//! carries `gsi3pk` = `J#<shard>` and `gsi3sk` = `<since>#<tenant>#<callId>` while content it replaced may
//! still be stored (see below).
//!
//! What each serves:
//! - A call is one item collection: its summary and the compressed parts of its content. get-call reads it
//!   with one Query on `pk` (one request for any call under 1 MB of stored bytes, i.e. every ordinary call;
//!   larger calls page). The tenant is in the partition key, so another tenant's call id is simply not found.
//!   The summary sorts first (`A` < `B#…`), so a reader meets it before the parts.
//! - An API key is found from the key itself (its id is part of it) with one GetItem; `gsi1` lists a tenant's
//!   keys, newest first, for the operator tool.
//! - A webhook endpoint is found from the id in its URL with one GetItem (the receiver's only read before
//!   the signature is checked); `gsi1` lists a tenant's endpoints for the operator tool.
//! - A call written by webhooks carries [`WEBHOOK_SOURCES`] in its summary: for each top-level field, the
//!   stage of the delivery that set it (see [`crate::webhook`]). Never served; an API write clears it.
//! - `gsi2` holds exactly the live recordings, by the time they were made, in [`RECORDING_SHARDS`] partitions
//!   (a hash of tenant and call id picks one, so no partition takes every write). The expiry job asks each
//!   shard for `gsi2sk` below "now − retention": it reads only recordings that are due, whatever the table
//!   size, and marking one expired removes it from the index. Costs one index write per recording stored
//!   and one per recording expired. `madeAt` is rounded up to the whole second, so a recording can be found
//!   up to a second late but never early (the API enforces the exact moment anyway).
//! - `gsi3` holds exactly the calls whose replaced content may not be deleted yet: a write that replaces a
//!   call's content sets it in the same transaction as the new summary and clears it once the old parts are
//!   gone. If the writer stops in between, the hourly job finds the call here ([`CLEANUP_SHARDS`] shards,
//!   by time) and finishes the clean-up, so replaced content never outlives its replacement for long.
//!
//! ## The list indexes
//!
//! Seven more global secondary indexes serve GET /api/v1/calls. Every one is partitioned inside a tenant and
//! sorted by the same attribute, `listSk` = `<sortTime>#<callId>`, where `sortTime` is the call's `startTime`
//! (its `createdAt` before it starts) as fixed-width UTC with nanoseconds, so strings sort as times do and
//! ties break by id. All project every attribute, so a page is read from the index alone. Only summary
//! items carry these keys; content parts and API keys never appear in them.
//!
//! | index         | partition key attribute | value                          | serves                        |
//! |---------------|-------------------------|--------------------------------|-------------------------------|
//! | `byTime`      | `byTimePk`              | `T#<tenant>`                   | no filter; dates only         |
//! | `byStatus`    | `byStatusPk`            | `T#<tenant>#<status>`          | `status` (one value)          |
//! | `byDirection` | `byDirectionPk`         | `T#<tenant>#<direction>`       | `direction` / `type`          |
//! | `byAssistant` | `byAssistantPk`         | `T#<tenant>#<assistantId>`     | `assistantId`                 |
//! | `byCampaign`  | `byCampaignPk`          | `T#<tenant>#<campaignId>`      | `campaignId` (sparse)         |
//! | `byNumber`    | `byNumberPk`            | `T#<tenant>#<phoneNumberId>`   | `phoneNumberId` (sparse)      |
//! | `byCustomer`  | `byCustomerPk`          | `T#<tenant>#<E.164 number>`    | `phoneNumber` (sparse)        |
//!
//! `dateFrom` / `dateTo` are always a range on `listSk`, in whichever index serves the request. A request
//! with several filters uses the most selective index it names (the order of [`ListIndex::ALL`], last
//! first) and applies the others as a filter on what that index reads, under a read budget: see
//! [`crate::list`] for the planner and the paging rules. Each index costs one index write per summary write
//! (and one more when a key changes, e.g. a status change moves the call between `byStatus` partitions), so
//! a summary write costs up to eight writes where it would cost one; summaries are small (about 1-2 KB).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::apikey::ApiKeyRecord;
use crate::ids::{CallId, TenantId};
use crate::model::{CallSummary, StoredRecording};
use crate::webhook::endpoint::WebhookEndpoint;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const GSI3: &str = "gsi3";
pub const GSI3_PK: &str = "gsi3pk";
pub const GSI3_SK: &str = "gsi3sk";

/// Attributes of the summary item that expressions name (serde names of [`SummaryItem`]'s fields).
pub const CONTENT_VERSION: &str = "contentVersion";
pub const CONTENT_PARTS: &str = "contentParts";
pub const CONTENT_FORMAT: &str = "contentFormat";
/// Digest of the stored content bytes: a write of the same content keeps the parts it has.
pub const CONTENT_DIGEST: &str = "contentDigest";
/// Random per committed write: what a conditional write compares, and a call's version as clients see it.
pub const REVISION: &str = "revision";
/// The revision of the last write of the whole call (PUT, PATCH, import); a change of the recording alone
/// (upload, its check) makes a new [`REVISION`] and keeps this one. A writer whose commit failed reads it to
/// tell a call replaced whole from one whose recording moved.
pub const BODY_REVISION: &str = "bodyRevision";
pub const RECORDING: &str = "recording";
/// Which webhook delivery stage set each field of a call (see [`crate::webhook::Sources`]).
pub const WEBHOOK_SOURCES: &str = "webhookSources";
/// The status inside [`RECORDING`].
pub const RECORDING_STATUS: &str = "status";
/// When an API key was revoked ([`ApiKeyRecord`]'s serde name).
pub const REVOKED_AT: &str = "revokedAt";

/// A call's summary item: the call's bounded part as plain attributes, where its content is, and its keys in
/// the live-recordings and clean-up indexes. The list index keys ([`LIST_SK`] and each
/// [`ListIndex::pk_attr`]) are added beside these by the codec.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryItem {
    pub pk: String,
    pub sk: String,
    pub tenant_id: String,
    #[serde(flatten)]
    pub summary: CallSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<StoredRecording>,
    pub content_version: String,
    pub content_parts: u32,
    /// How the parts are encoded; absent for content written as raw deflate before formats were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// Absent on items written before conditional writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_sources: Option<crate::webhook::Sources>,
}

/// An API key's item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(flatten)]
    pub record: ApiKeyRecord,
}

impl KeyItem {
    pub fn new(tenant: &TenantId, record: ApiKeyRecord) -> Self {
        KeyItem {
            pk: key_pk(&record.key_id),
            sk: KEY_SK.to_owned(),
            gsi1pk: tenant_keys_gsi1pk(tenant),
            gsi1sk: format!(
                "{}#{}",
                record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                record.key_id
            ),
            record,
        }
    }
}

/// Sort key of every list index.
pub const LIST_SK: &str = "listSk";

/// The indexes that serve GET /api/v1/calls (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListIndex {
    Time,
    Direction,
    Status,
    Number,
    Assistant,
    Campaign,
    Customer,
}

impl ListIndex {
    /// Every list index, from the least selective to the most: a request uses the last one it names.
    pub const ALL: [ListIndex; 7] = [
        ListIndex::Time,
        ListIndex::Direction,
        ListIndex::Status,
        ListIndex::Number,
        ListIndex::Assistant,
        ListIndex::Campaign,
        ListIndex::Customer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ListIndex::Time => "byTime",
            ListIndex::Direction => "byDirection",
            ListIndex::Status => "byStatus",
            ListIndex::Number => "byNumber",
            ListIndex::Assistant => "byAssistant",
            ListIndex::Campaign => "byCampaign",
            ListIndex::Customer => "byCustomer",
        }
    }

    /// The partition key attribute of this index.
    pub fn pk_attr(self) -> &'static str {
        match self {
            ListIndex::Time => "byTimePk",
            ListIndex::Direction => "byDirectionPk",
            ListIndex::Status => "byStatusPk",
            ListIndex::Number => "byNumberPk",
            ListIndex::Assistant => "byAssistantPk",
            ListIndex::Campaign => "byCampaignPk",
            ListIndex::Customer => "byCustomerPk",
        }
    }

    /// The partition key value for `value` (ignored for [`ListIndex::Time`]) within `tenant`.
    pub fn pk(self, tenant: &TenantId, value: &str) -> String {
        match self {
            ListIndex::Time => format!("T#{tenant}"),
            _ => format!("T#{tenant}#{value}"),
        }
    }
}

/// Fixed-width UTC with nanoseconds: strings sort as the times do (years 0000-9999; the write boundary
/// accepts 1970 to tomorrow, so a row outside that range was written by hand and is read as it is).
pub fn list_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// The list sort key of a call placed at `time`.
pub fn list_sk(time: DateTime<Utc>, call: &CallId) -> String {
    format!("{}#{call}", list_time(time))
}

/// The time and call id of a list sort key.
pub fn parse_list_sk(sk: &str) -> Option<(DateTime<Utc>, CallId)> {
    let (time, id) = sk.split_once('#')?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let id = CallId::parse(id).ok()?;
    (list_sk(time, &id) == sk).then_some((time, id))
}

/// The call id of a list sort key, whatever its time part says: enough to resume a page after it, even
/// after a row whose time does not parse.
pub fn list_sk_call(sk: &str) -> Option<CallId> {
    let (_, id) = sk.split_once('#')?;
    CallId::parse(id).ok()
}

/// Partitions of the live-recordings index.
pub const RECORDING_SHARDS: u32 = 16;

/// Attribute holding a content part's compressed bytes.
pub const PART_DATA: &str = "data";

/// Sort key of a call's summary item.
pub const SUMMARY_SK: &str = "A";
const PART_PREFIX: &str = "B#";
const KEY_SK: &str = "K";

pub fn call_pk(tenant: &TenantId, call: &CallId) -> String {
    format!("T#{tenant}#C#{call}")
}

/// Sort key of content part `index` of content version `version`; zero-padded so parts sort in order.
pub fn part_sk(version: &str, index: u32) -> String {
    format!("{PART_PREFIX}{version}#{index:05}")
}

/// What every sort key of a content version's parts starts with.
pub fn part_prefix(version: &str) -> String {
    format!("{PART_PREFIX}{version}#")
}

/// The version and index of a content part's sort key.
pub fn parse_part_sk(sk: &str) -> Option<(&str, u32)> {
    let rest = sk.strip_prefix(PART_PREFIX)?;
    let (version, index) = rest.split_once('#')?;
    Some((version, index.parse().ok()?))
}

/// The live-recordings index keys of a call whose recording was made at `made_at`.
pub fn recording_index_keys(tenant: &TenantId, call: &CallId, made_at: DateTime<Utc>) -> (String, String) {
    let shard = shard_of(tenant, call) % RECORDING_SHARDS;
    (
        recording_shard_pk(shard),
        format!("{}#{tenant}#{call}", recording_time(ceil_second(made_at))),
    )
}

pub fn recording_shard_pk(shard: u32) -> String {
    format!("R#{shard:02}")
}

/// Partitions of the clean-up index.
pub const CLEANUP_SHARDS: u32 = 4;

/// The clean-up index keys of a call whose replaced content may still be stored since `since`.
pub fn cleanup_index_keys(tenant: &TenantId, call: &CallId, since: DateTime<Utc>) -> (String, String) {
    (
        cleanup_shard_pk(shard_of(tenant, call) % CLEANUP_SHARDS),
        format!("{}#{tenant}#{call}", recording_time(since)),
    )
}

pub fn cleanup_shard_pk(shard: u32) -> String {
    format!("J#{shard:02}")
}

fn shard_of(tenant: &TenantId, call: &CallId) -> u32 {
    let digest = Sha256::digest(format!("{tenant}#{call}").as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Fixed-width UTC seconds, so that strings sort as times do.
pub fn recording_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The time a `gsi2sk` (or `gsi3sk`) starts with.
pub fn parse_recording_time(gsi2sk: &str) -> Option<DateTime<Utc>> {
    let (time, _) = gsi2sk.split_once('#')?;
    DateTime::parse_from_rfc3339(time).ok().map(|t| t.with_timezone(&Utc))
}

fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    if floor == t {
        t
    } else {
        floor.checked_add_signed(chrono::Duration::seconds(1)).unwrap_or(floor)
    }
}

pub fn key_pk(key_id: &str) -> String {
    format!("K#{key_id}")
}

pub fn key_sk() -> &'static str {
    KEY_SK
}

pub fn tenant_keys_gsi1pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#KEYS")
}

const ENDPOINT_SK: &str = "W";

/// A webhook endpoint's item: the endpoint and its `gsi1` keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
}

impl EndpointItem {
    pub fn new(tenant: &TenantId, endpoint: WebhookEndpoint) -> Self {
        EndpointItem {
            pk: endpoint_pk(&endpoint.endpoint_id),
            sk: ENDPOINT_SK.to_owned(),
            gsi1pk: tenant_endpoints_gsi1pk(tenant),
            gsi1sk: format!(
                "{}#{}",
                endpoint.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                endpoint.endpoint_id
            ),
            endpoint,
        }
    }
}

pub fn endpoint_pk(endpoint_id: &str) -> String {
    format!("W#{endpoint_id}")
}

pub fn endpoint_sk() -> &'static str {
    ENDPOINT_SK
}

pub fn tenant_endpoints_gsi1pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#HOOKS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_keys_round_trip_and_sort_after_the_summary() {
        let sk = part_sk("v1", 7);
        assert_eq!(parse_part_sk(&sk), Some(("v1", 7)));
        assert!(SUMMARY_SK < sk.as_str());
        assert!(part_sk("v1", 9) < part_sk("v1", 10));
        assert_eq!(parse_part_sk(SUMMARY_SK), None);
    }

    #[test]
    fn recording_index_keys_sort_by_time_and_never_round_down() {
        let t = TenantId::parse("acme").unwrap();
        let c = CallId::parse("c1").unwrap();
        let (pk, sk) = recording_index_keys(&t, &c, "2025-01-15T10:35:30Z".parse().unwrap());
        assert!(pk.starts_with("R#") && pk.len() == 4);
        assert_eq!(sk, "2025-01-15T10:35:30Z#acme#c1");
        let (_, sk) = recording_index_keys(&t, &c, "2025-01-15T10:35:30.2Z".parse().unwrap());
        assert_eq!(sk, "2025-01-15T10:35:31Z#acme#c1");
        assert_eq!(parse_recording_time(&sk), Some("2025-01-15T10:35:31Z".parse().unwrap()));
        assert!(
            recording_time("2025-01-15T09:59:59Z".parse().unwrap())
                < recording_time("2025-01-15T10:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn recordings_spread_over_every_shard() {
        let t = TenantId::parse("acme").unwrap();
        let made = "2025-01-15T10:35:30Z".parse().unwrap();
        let shards: std::collections::BTreeSet<String> = (0..400)
            .map(|i| recording_index_keys(&t, &CallId::parse(&format!("c{i}")).unwrap(), made).0)
            .collect();
        assert_eq!(shards.len(), RECORDING_SHARDS as usize);
    }

    #[test]
    fn list_sort_keys_sort_by_time_then_id_and_round_trip() {
        let a = CallId::parse("a").unwrap();
        let b = CallId::parse("b").unwrap();
        let t1: DateTime<Utc> = "2025-01-15T10:30:00Z".parse().unwrap();
        let t2: DateTime<Utc> = "2025-01-15T10:30:00.000000001Z".parse().unwrap();
        assert!(list_sk(t1, &b) < list_sk(t2, &a));
        assert!(list_sk(t1, &a) < list_sk(t1, &b));
        // A time that is a prefix of another's sorts first whatever the id.
        assert!(list_sk(t1, &CallId::parse("zzz").unwrap()) < list_sk(t1 + chrono::Duration::seconds(1), &a));
        assert_eq!(parse_list_sk(&list_sk(t2, &a)), Some((t2, a)));
        assert_eq!(parse_list_sk("2025-01-15T10:30:00Z#a"), None);
        assert_eq!(parse_list_sk("nonsense"), None);
    }

    #[test]
    fn list_partitions_carry_the_tenant_and_differ_per_index_value() {
        let acme = TenantId::parse("acme").unwrap();
        let other = TenantId::parse("other").unwrap();
        assert_eq!(ListIndex::Time.pk(&acme, "ignored"), "T#acme");
        assert_eq!(ListIndex::Status.pk(&acme, "failed"), "T#acme#failed");
        assert_ne!(
            ListIndex::Status.pk(&acme, "failed"),
            ListIndex::Status.pk(&other, "failed")
        );
        let names: std::collections::BTreeSet<_> = ListIndex::ALL.iter().map(|i| i.name()).collect();
        assert_eq!(names.len(), ListIndex::ALL.len());
    }

    #[test]
    fn the_names_expressions_use_are_the_items_own() {
        let summary: CallSummary = serde_json::from_value(serde_json::json!({
            "id": "c", "direction": "inbound", "status": "completed", "createdAt": "2025-01-15T10:30:00Z"
        }))
        .unwrap();
        let item = SummaryItem {
            pk: "p".into(),
            sk: SUMMARY_SK.into(),
            tenant_id: "t".into(),
            summary,
            recording: Some(StoredRecording {
                status: crate::model::RecordingStatus::Completed,
                format: None,
                duration: None,
                key: None,
                recorded_at: None,
                failure_reason: None,
            }),
            content_version: "v".into(),
            content_parts: 1,
            content_format: Some("f".into()),
            content_digest: Some("d".into()),
            revision: Some("r".into()),
            body_revision: Some("r".into()),
            gsi2pk: Some("x".into()),
            gsi2sk: Some("x".into()),
            gsi3pk: Some("x".into()),
            gsi3sk: Some("x".into()),
            webhook_sources: Some([("status".to_owned(), 2)].into()),
        };
        let value = serde_json::to_value(&item).unwrap();
        for name in [
            PK,
            SK,
            CONTENT_VERSION,
            CONTENT_PARTS,
            CONTENT_FORMAT,
            CONTENT_DIGEST,
            REVISION,
            BODY_REVISION,
            RECORDING,
            GSI2_PK,
            GSI2_SK,
            GSI3_PK,
            GSI3_SK,
            WEBHOOK_SOURCES,
        ] {
            assert!(value.get(name).is_some(), "{name}");
        }
        assert!(value[RECORDING].get(RECORDING_STATUS).is_some());
    }

    #[test]
    fn call_keys_carry_the_tenant() {
        let a = call_pk(&TenantId::parse("a").unwrap(), &CallId::parse("c").unwrap());
        let b = call_pk(&TenantId::parse("b").unwrap(), &CallId::parse("c").unwrap());
        assert_ne!(a, b);
    }
}
