//! The DynamoDB item layout: key formats, attribute names and index names. Nothing else in the code builds
//! a key. template.yaml declares the same table; a test fails if the two disagree.
//!
//! One table, keys `pk` / `sk` (strings), one global secondary index `gsi1` (`gsi1pk` / `gsi1sk`).
//!
//! | item              | pk                          | sk                      | gsi1pk                 | gsi1sk                  |
//! |-------------------|-----------------------------|-------------------------|------------------------|-------------------------|
//! | call summary      | `T#<tenant>#C#<callId>`     | `A`                     | –                      | –                       |
//! | call content part | `T#<tenant>#C#<callId>`     | `B#<version>#<nnnnn>`   | –                      | –                       |
//! | API key           | `K#<keyId>`                 | `K`                     | `T#<tenant>#KEYS`      | `<createdAt>#<keyId>`   |
//!
//! What each serves:
//! - A call is one item collection: its summary and the compressed parts of its content. get-call reads it
//!   with one Query on `pk` (one request for any call under 1 MB of stored bytes, i.e. every ordinary call;
//!   larger calls page). The tenant is in the partition key, so another tenant's call id is simply not found.
//!   The summary sorts first (`A` < `B#…`), so a reader meets it before the parts.
//! - An API key is found from the key itself (its id is part of it) with one GetItem; `gsi1` lists a tenant's
//!   keys, newest first, for the operator tool.

use crate::ids::{CallId, TenantId};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";

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
    fn call_keys_carry_the_tenant() {
        let a = call_pk(&TenantId::parse("a").unwrap(), &CallId::parse("c").unwrap());
        let b = call_pk(&TenantId::parse("b").unwrap(), &CallId::parse("c").unwrap());
        assert_ne!(a, b);
    }
}
