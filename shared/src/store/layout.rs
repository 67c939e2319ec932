//! The DynamoDB item layout: key formats, attribute names and index names. Nothing else in the code builds
//! a key. template.yaml declares the same table; a test fails if the two disagree.
//!
//! One table, keys `pk` / `sk` (strings), and two global secondary indexes: `gsi1` (`gsi1pk` / `gsi1sk`,
//! all attributes) and `gsi2` (`gsi2pk` / `gsi2sk`, keys plus `recording`).
//!
//! | item              | pk                      | sk                    | gsi1pk            | gsi1sk                | gsi2pk        | gsi2sk                            |
//! |-------------------|-------------------------|-----------------------|-------------------|-----------------------|---------------|-----------------------------------|
//! | call summary      | `T#<tenant>#C#<callId>` | `A`                   | –                 | –                     | `R#<shard>`¹  | `<madeAt>#<tenant>#<callId>`¹     |
//! | call content part | `T#<tenant>#C#<callId>` | `B#<version>#<nnnnn>` | –                 | –                     | –             | –                                 |
//! | API key           | `K#<keyId>`             | `K`                   | `T#<tenant>#KEYS` | `<createdAt>#<keyId>` | –             | –                                 |
//!
//! ¹ only while the call has a recording that has not been expired (a sparse index).
//!
//! What each serves:
//! - A call is one item collection: its summary and the compressed parts of its content. get-call reads it
//!   with one Query on `pk` (one request for any call under 1 MB of stored bytes, i.e. every ordinary call;
//!   larger calls page). The tenant is in the partition key, so another tenant's call id is simply not found.
//!   The summary sorts first (`A` < `B#…`), so a reader meets it before the parts.
//! - An API key is found from the key itself (its id is part of it) with one GetItem; `gsi1` lists a tenant's
//!   keys, newest first, for the operator tool.
//! - `gsi2` holds exactly the live recordings, by the time they were made, in [`RECORDING_SHARDS`] partitions
//!   (a hash of tenant and call id picks one, so no partition takes every write). The expiry job asks each
//!   shard for `gsi2sk` below "now − retention": it reads only recordings that are due, whatever the table
//!   size, and marking one expired removes it from the index. Costs one index write per recording stored
//!   and one per recording expired. `madeAt` is rounded up to the whole second, so a recording can be found
//!   up to a second late but never early (the API enforces the exact moment anyway).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::ids::{CallId, TenantId};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";

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

/// The version and index of a content part's sort key.
pub fn parse_part_sk(sk: &str) -> Option<(&str, u32)> {
    let rest = sk.strip_prefix(PART_PREFIX)?;
    let (version, index) = rest.split_once('#')?;
    Some((version, index.parse().ok()?))
}

/// The live-recordings index keys of a call whose recording was made at `made_at`.
pub fn recording_index_keys(tenant: &TenantId, call: &CallId, made_at: DateTime<Utc>) -> (String, String) {
    let digest = Sha256::digest(format!("{tenant}#{call}").as_bytes());
    let shard = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % RECORDING_SHARDS;
    (
        recording_shard_pk(shard),
        format!("{}#{tenant}#{call}", recording_time(ceil_second(made_at))),
    )
}

pub fn recording_shard_pk(shard: u32) -> String {
    format!("R#{shard:02}")
}

/// Fixed-width UTC seconds, so that strings sort as times do.
pub fn recording_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The time a `gsi2sk` starts with.
pub fn parse_recording_time(gsi2sk: &str) -> Option<DateTime<Utc>> {
    let (time, _) = gsi2sk.split_once('#')?;
    DateTime::parse_from_rfc3339(time).ok().map(|t| t.with_timezone(&Utc))
}

fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    if floor == t {
        t
    } else {
        floor + chrono::Duration::seconds(1)
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
    fn call_keys_carry_the_tenant() {
        let a = call_pk(&TenantId::parse("a").unwrap(), &CallId::parse("c").unwrap());
        let b = call_pk(&TenantId::parse("b").unwrap(), &CallId::parse("c").unwrap());
        assert_ne!(a, b);
    }
}
