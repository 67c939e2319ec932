//! API keys: how they are made, stored and checked. The authorizer and, in local mode, the handlers use this
//! same code.
//!
//! A key reads `crk_<keyId>_<secret>`: `keyId` is 12 hex characters (public, names the key in listings and
//! revocation, and finds its record with one GetItem); `secret` is 32 random bytes from the OS, base64url.
//! Only the SHA-256 of the whole key is stored. A plain fast hash is right here: the key carries 256 bits of
//! entropy, so there is nothing for a slow password hash to protect against.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::TenantId;

const PREFIX: &str = "crk_";
const KEY_ID_HEX: usize = 12;
const SECRET_BYTES: usize = 32;
const SECRET_B64: usize = 43;

/// A stored key: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub tenant_id: String,
    pub label: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    pub created_at: DateTime<Utc>,
    /// Left out of the item until set, so that revocation can keep the first time (`if_not_exists`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A freshly made key: the secret is shown once, to whoever made it, and then only its hash exists.
#[derive(Debug)]
pub struct NewKey {
    pub key: String,
    pub record: ApiKeyRecord,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

pub fn generate(tenant: &TenantId, label: &str, now: DateTime<Utc>) -> Result<NewKey, RandomError> {
    let mut id = [0u8; KEY_ID_HEX / 2];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).map_err(|e| RandomError(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| RandomError(e.to_string()))?;
    let key_id = hex::encode(id);
    let key = format!("{PREFIX}{key_id}_{}", URL_SAFE_NO_PAD.encode(secret));
    let record = ApiKeyRecord {
        key_id,
        tenant_id: tenant.as_str().to_owned(),
        label: label.to_owned(),
        key_hash: hash(&key),
        created_at: now,
        revoked_at: None,
    };
    Ok(NewKey { key, record })
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key id of a well-formed key; `None` for anything else, which then costs no database request.
pub fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == KEY_ID_HEX && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == SECRET_B64
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(id)
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The tenant `key` acts for, if `record` is its record and it has not been revoked.
pub fn verify(record: &ApiKeyRecord, key: &str) -> Option<TenantId> {
    let presented = hash(key);
    let same: bool = presented.as_bytes().ct_eq(record.key_hash.as_bytes()).into();
    if !same || record.revoked_at.is_some() {
        return None;
    }
    TenantId::parse(&record.tenant_id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2025-01-15T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_generated_key_verifies_and_its_record_holds_no_secret() {
        let new = generate(&tenant(), "ci", now()).unwrap();
        assert_eq!(key_id_of(&new.key), Some(new.record.key_id.as_str()));
        assert_eq!(verify(&new.record, &new.key), Some(tenant()));
        let stored = serde_json::to_string(&new.record).unwrap();
        let secret = new.key.rsplit('_').next().unwrap();
        assert!(!stored.contains(secret));
    }

    #[test]
    fn keys_are_distinct_and_high_entropy() {
        let a = generate(&tenant(), "a", now()).unwrap();
        let b = generate(&tenant(), "b", now()).unwrap();
        assert_ne!(a.key, b.key);
        assert_ne!(a.record.key_id, b.record.key_id);
        assert_eq!(a.key.len(), PREFIX.len() + KEY_ID_HEX + 1 + SECRET_B64);
    }

    #[test]
    fn a_wrong_or_revoked_key_does_not_verify() {
        let new = generate(&tenant(), "ci", now()).unwrap();
        let other = generate(&tenant(), "other", now()).unwrap();
        assert_eq!(verify(&new.record, &other.key), None);
        let mut revoked = new.record.clone();
        revoked.revoked_at = Some(now());
        assert_eq!(verify(&revoked, &new.key), None);
    }

    #[test]
    fn malformed_keys_have_no_key_id() {
        let new = generate(&tenant(), "ci", now()).unwrap();
        let truncated = &new.key[..new.key.len() - 1];
        for bad in [
            "",
            "crk_",
            "Bearer x",
            truncated,
            "crk_ABCDEF012345_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert_eq!(key_id_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bearer_takes_the_token_of_the_bearer_scheme_only() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
