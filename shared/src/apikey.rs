//! API keys: how they are made, stored and checked. Every API handler checks the key it is sent with this
//! code, through [`crate::auth`].
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
    /// What the key may do; fixed when it is made. Keys made before scopes existed read only.
    #[serde(default = "read_only")]
    pub scopes: Vec<Scope>,
}

/// What a key may do: each route needs one scope (docs/API.md, "Keys and scopes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// The GET routes.
    #[serde(rename = "calls:read")]
    CallsRead,
    /// PUT, PATCH and DELETE of calls, erasure, recording upload.
    #[serde(rename = "calls:write")]
    CallsWrite,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::CallsRead, Scope::CallsWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CallsRead => "calls:read",
            Scope::CallsWrite => "calls:write",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    /// A comma or space separated list (`calls:read,calls:write`), each scope once, in order.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for part in s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
            let scope = Scope::parse(part)
                .ok_or_else(|| format!("unknown scope {part:?} (one of: calls:read, calls:write)"))?;
            scopes.push(scope);
        }
        if scopes.is_empty() {
            return Err("at least one scope is needed".into());
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    /// The list as the operator tool prints it: space separated.
    pub fn join(scopes: &[Scope]) -> String {
        scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }
}

fn read_only() -> Vec<Scope> {
    vec![Scope::CallsRead]
}

/// Who a valid key speaks for, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    pub scopes: Vec<Scope>,
}

impl Caller {
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
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

pub fn generate(tenant: &TenantId, label: &str, scopes: &[Scope], now: DateTime<Utc>) -> Result<NewKey, RandomError> {
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
        scopes: match scopes {
            [] => read_only(),
            given => {
                let mut scopes = given.to_vec();
                scopes.sort();
                scopes.dedup();
                scopes
            }
        },
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

/// Who `key` acts for, if `record` is its record and it has not been revoked.
pub fn verify(record: &ApiKeyRecord, key: &str) -> Option<Caller> {
    let presented = hash(key);
    let same: bool = presented.as_bytes().ct_eq(record.key_hash.as_bytes()).into();
    if !same || record.revoked_at.is_some() {
        return None;
    }
    let tenant = TenantId::parse(&record.tenant_id).ok()?;
    Some(Caller {
        tenant,
        scopes: record.scopes.clone(),
    })
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
        let new = generate(&tenant(), "ci", &[Scope::CallsRead], now()).unwrap();
        assert_eq!(key_id_of(&new.key), Some(new.record.key_id.as_str()));
        let caller = verify(&new.record, &new.key).unwrap();
        assert_eq!(caller.tenant, tenant());
        assert_eq!(caller.scopes, vec![Scope::CallsRead]);
        let stored = serde_json::to_string(&new.record).unwrap();
        let secret = new.key.splitn(3, '_').nth(2).unwrap(); // crk, key id, secret (which may hold '_')
        assert!(!stored.contains(secret));
    }

    /// Keys made for the entropy test. Enough that each symbol of each position is expected well above zero
    /// times (156 times for a base64url position), so that a lower bound exists and a generator that uses
    /// only part of an alphabet fails. With 1,000 keys a symbol is missing from a position by chance with
    /// probability 1.5e-7, and a bound tight enough to catch that would fail correct generators.
    const ENTROPY_KEYS: usize = 10_000;

    /// `(lo, hi)` with P(X < lo) ≤ `tail` and P(X > hi) ≤ `tail` for X ~ Binomial(n, p), from the exact
    /// distribution (each term from the one before, so nothing overflows).
    fn binomial_bounds(n: usize, p: f64, tail: f64) -> (usize, usize) {
        let mut pmf = Vec::with_capacity(n + 1);
        let mut term = (1.0 - p).powi(n as i32);
        for k in 0..=n {
            pmf.push(term);
            term *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
        }
        assert!(
            (pmf.iter().sum::<f64>() - 1.0).abs() < 1e-9,
            "the distribution sums to 1"
        );
        let (mut lo, mut below) = (0, 0.0);
        while below + pmf[lo] <= tail {
            below += pmf[lo];
            lo += 1;
        }
        let (mut hi, mut above) = (n, 0.0);
        while above + pmf[hi] <= tail {
            above += pmf[hi];
            hi -= 1;
        }
        (lo, hi)
    }

    #[test]
    fn keys_are_distinct_and_high_entropy() {
        let keys: Vec<NewKey> = (0..ENTROPY_KEYS)
            .map(|i| generate(&tenant(), &format!("k{i}"), &[Scope::CallsRead], now()).unwrap())
            .collect();
        let mut ids = Vec::new();
        let mut secrets = Vec::new();
        for k in &keys {
            let id = key_id_of(&k.key).unwrap_or_else(|| panic!("{} is well-formed", k.key));
            assert_eq!(id, k.record.key_id);
            ids.push(id);
            secrets.push(&k.key[PREFIX.len() + KEY_ID_HEX + 1..]);
        }

        // Two equal 256-bit secrets among 10,000 keys: probability below 1e-68.
        let distinct = |v: &[&str]| v.iter().collect::<std::collections::HashSet<_>>().len();
        assert_eq!(distinct(&secrets), ENTROPY_KEYS, "every secret is new");
        let hashes: Vec<&str> = keys.iter().map(|k| k.record.key_hash.as_str()).collect();
        assert_eq!(distinct(&hashes), ENTROPY_KEYS, "every stored hash is new");
        // Key ids are 48 bits: one colliding pair among 10,000 has probability 1.8e-7 (the store refuses the
        // second), two 1.6e-14; so one is allowed. A 16-bit id would collide some 760 times.
        assert!(
            distinct(&ids) >= ENTROPY_KEYS - 1,
            "{} distinct key ids",
            distinct(&ids)
        );

        // Each position's alphabet: hex for the key id; base64url for the secret, whose last character
        // holds the last 256 - 42 × 6 = 4 bits and two zero bits, so one of every fourth symbol.
        let hex: Vec<char> = "0123456789abcdef".chars().collect();
        let b64: Vec<char> = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['-', '_'])
            .collect();
        let spare_bits = SECRET_B64 * 6 - SECRET_BYTES * 8;
        let last: Vec<char> = b64.iter().copied().step_by(1 << spare_bits).collect();
        let mut positions: Vec<(String, &[char], Vec<char>)> = Vec::new();
        for i in 0..KEY_ID_HEX {
            let column = ids.iter().map(|id| id.as_bytes()[i] as char).collect();
            positions.push((format!("key id {i}"), &hex, column));
        }
        for i in 0..SECRET_B64 {
            let column = secrets.iter().map(|s| s.as_bytes()[i] as char).collect();
            let alphabet = if i + 1 == SECRET_B64 { &last } else { &b64 };
            positions.push((format!("secret {i}"), alphabet, column));
        }

        // The bits the secret's length and alphabets can hold, counting only the symbols that turned up at
        // each position. A correct generator shows every symbol everywhere: a missing one is a count of 0,
        // inside the lower tail the frequency bounds below already allow for.
        let secret_bits: f64 = positions
            .iter()
            .filter(|(name, _, _)| name.starts_with("secret"))
            .map(|(_, _, column)| (column.iter().collect::<std::collections::HashSet<_>>().len() as f64).log2())
            .sum();
        assert!(secret_bits >= 128.0, "the secret holds {secret_bits} bits");
        for s in &secrets {
            assert_eq!(
                URL_SAFE_NO_PAD.decode(s).map(|b| b.len()).ok(),
                Some(SECRET_BYTES),
                "{s}"
            );
        }

        // Each symbol's count at each position is Binomial(keys, 1 / alphabet). There are 12 × 16 + 42 × 64
        // + 16 = 2,896 such counts; the bounds leave each of their 5,792 tails 5e-10 / 5,792 of probability,
        // so by the union bound a correct generator fails this part with probability below 5e-10, and the
        // whole test (with the key-id collisions above) below 1e-9. For 10,000 keys the bounds are 74..=256
        // for one of 64 symbols and 455..=811 for one of 16 (hex, and the secret's last character). A
        // constant, a counter, or a generator that leaves some bits of each byte unused puts far more than
        // `hi` (or fewer than `lo`) on some symbol.
        let cells: usize = positions.iter().map(|(_, alphabet, _)| alphabet.len()).sum();
        let tail = 5e-10 / (2 * cells) as f64;
        for (name, alphabet, column) in &positions {
            let (lo, hi) = binomial_bounds(ENTROPY_KEYS, 1.0 / alphabet.len() as f64, tail);
            let mut counts = std::collections::HashMap::new();
            for c in column {
                *counts.entry(*c).or_insert(0usize) += 1;
            }
            for c in counts.keys() {
                assert!(alphabet.contains(c), "{name}: {c:?} is not one of its symbols");
            }
            for c in alphabet.iter() {
                let n = counts.get(c).copied().unwrap_or(0);
                assert!((lo..=hi).contains(&n), "{name}: {c:?} {n} times, not in {lo}..={hi}");
            }
        }
    }

    #[test]
    fn a_wrong_or_revoked_key_does_not_verify() {
        let new = generate(&tenant(), "ci", &[Scope::CallsRead], now()).unwrap();
        let other = generate(&tenant(), "other", &[Scope::CallsRead], now()).unwrap();
        assert_eq!(verify(&new.record, &other.key), None);
        let mut revoked = new.record.clone();
        revoked.revoked_at = Some(now());
        assert_eq!(verify(&revoked, &new.key), None);
    }

    #[test]
    fn scopes_are_fixed_at_creation_and_old_keys_read_only() {
        let both = generate(&tenant(), "rw", &[Scope::CallsRead, Scope::CallsWrite], now()).unwrap();
        let caller = verify(&both.record, &both.key).unwrap();
        assert!(caller.may(Scope::CallsRead) && caller.may(Scope::CallsWrite));
        // A record stored before scopes existed has no `scopes` attribute.
        let mut old = serde_json::to_value(&both.record).unwrap();
        old.as_object_mut().unwrap().remove("scopes");
        let old: ApiKeyRecord = serde_json::from_value(old).unwrap();
        let caller = verify(&old, &both.key).unwrap();
        assert!(caller.may(Scope::CallsRead) && !caller.may(Scope::CallsWrite));
        assert_eq!(
            serde_json::to_value(&both.record).unwrap()["scopes"],
            serde_json::json!(["calls:read", "calls:write"])
        );
    }

    #[test]
    fn scope_lists_parse_strictly() {
        assert_eq!(
            Scope::parse_list("calls:write, calls:read,calls:write").unwrap(),
            vec![Scope::CallsRead, Scope::CallsWrite]
        );
        assert_eq!(Scope::parse_list("calls:write").unwrap(), vec![Scope::CallsWrite]);
        for bad in ["", " , ", "calls:admin", "calls:read,write"] {
            assert!(Scope::parse_list(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Scope::join(&[Scope::CallsRead, Scope::CallsWrite]),
            "calls:read calls:write"
        );
    }

    #[test]
    fn malformed_keys_have_no_key_id() {
        let new = generate(&tenant(), "ci", &[Scope::CallsRead], now()).unwrap();
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
