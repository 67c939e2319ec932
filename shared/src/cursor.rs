//! The list cursor: where the next page starts, signed so that it cannot be forged, altered or carried over.
//!
//! A cursor is `base64url(version ‖ position ‖ tag)`, where the position is the list sort key of the last
//! call a page covered and the tag is the first 16 bytes of HMAC-SHA256 over the tenant, the request's
//! filters and sort (in canonical form) and the position. The filters are not carried: the tag is checked
//! against the request that presents the cursor, so a cursor made for another tenant, other filters or the
//! other sort fails like a forged one. The key comes from configuration (`CURSOR_SECRET`, and
//! `CURSOR_SECRET_PREVIOUS` while a new key rolls out), never from the code.
//!
//! Not secret: the position (a time and a call id of the caller's own) can be read by decoding the cursor;
//! it cannot be changed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;
use crate::ids::TenantId;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longest cursor accepted before any decoding (a position is at most ~170 bytes).
pub const MAX_CURSOR_LEN: usize = 512;
/// Shortest secret accepted: 32 bytes, the size of the HMAC-SHA256 block's useful key.
pub const MIN_SECRET_LEN: usize = 32;

/// The signing keys: the first signs, any verifies.
#[derive(Clone)]
pub struct CursorKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for CursorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CursorKeys({} keys)", self.0.len())
    }
}

impl CursorKeys {
    /// `current` signs; `previous` (during a key roll-over) still verifies. Each must be at least
    /// [`MIN_SECRET_LEN`] bytes.
    pub fn new(current: &str, previous: Option<&str>) -> Result<Self, String> {
        let mut keys = vec![current.as_bytes().to_vec()];
        keys.extend(previous.map(|p| p.as_bytes().to_vec()));
        if keys.iter().any(|k| k.len() < MIN_SECRET_LEN) {
            return Err(format!("must be at least {MIN_SECRET_LEN} bytes"));
        }
        Ok(CursorKeys(keys))
    }

    fn mac(key: &[u8], tenant: &TenantId, binding: &str, position: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        for part in [tenant.as_str(), binding, position] {
            // Length-prefixed, so no two different triples feed the same bytes.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// A cursor for `position` in the list that `tenant` asked for with `binding` (canonical filters and sort).
    pub fn sign(&self, tenant: &TenantId, binding: &str, position: &str) -> String {
        let tag = Self::mac(&self.0[0], tenant, binding, position).finalize().into_bytes();
        let mut bytes = Vec::with_capacity(1 + position.len() + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(position.as_bytes());
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a cursor holds, if it was made by one of these keys for this tenant and this binding.
    pub fn open(&self, tenant: &TenantId, binding: &str, cursor: &str) -> Result<String, ApiError> {
        let invalid = |why: &str| ApiError::InvalidCursor(why.to_owned());
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid("too long"));
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid("not a cursor"))?;
        if bytes.len() < 1 + TAG_LEN || bytes[0] != VERSION {
            return Err(invalid("not a cursor"));
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let position = std::str::from_utf8(&body[1..]).map_err(|_| invalid("not a cursor"))?;
        let genuine = self.0.iter().any(|key| {
            Self::mac(key, tenant, binding, position)
                .verify_truncated_left(tag)
                .is_ok()
        });
        if genuine {
            Ok(position.to_owned())
        } else {
            Err(invalid(
                "does not belong to this list: it was altered, or made for other filters or sort",
            ))
        }
    }
}

/// A fresh random secret (256 bits, hex) for `CURSOR_SECRET`, as the local stack and tests use.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> CursorKeys {
        CursorKeys::new("0123456789abcdef0123456789abcdef", None).unwrap()
    }

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn a_cursor_opens_for_the_list_it_was_made_for() {
        let c = keys().sign(&acme(), "f", "2025-01-15T10:30:00.000000000Z#call_1");
        assert_eq!(
            keys().open(&acme(), "f", &c).unwrap(),
            "2025-01-15T10:30:00.000000000Z#call_1"
        );
    }

    #[test]
    fn other_tenant_filters_or_key_are_refused() {
        let c = keys().sign(&acme(), "f", "p");
        assert!(matches!(
            keys().open(&TenantId::parse("globex").unwrap(), "f", &c),
            Err(ApiError::InvalidCursor(_))
        ));
        assert!(matches!(keys().open(&acme(), "g", &c), Err(ApiError::InvalidCursor(_))));
        let other = CursorKeys::new("another secret of thirty-two bytes!!", None).unwrap();
        assert!(matches!(other.open(&acme(), "f", &c), Err(ApiError::InvalidCursor(_))));
    }

    #[test]
    fn every_altered_byte_is_noticed() {
        let c = keys().sign(&acme(), "f", "2025-01-15T10:30:00.000000000Z#call_1");
        let bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&b);
            assert!(keys().open(&acme(), "f", &forged).is_err(), "byte {i}");
        }
        for junk in ["", "x", "!!!", &"A".repeat(600), "AQ"] {
            assert!(keys().open(&acme(), "f", junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn the_previous_key_still_opens_during_a_roll_over() {
        let old = CursorKeys::new("the old secret, thirty-two bytes long", None).unwrap();
        let c = old.sign(&acme(), "f", "p");
        let rolled = CursorKeys::new(
            "the new secret, thirty-two bytes long",
            Some("the old secret, thirty-two bytes long"),
        )
        .unwrap();
        assert_eq!(rolled.open(&acme(), "f", &c).unwrap(), "p");
        assert!(CursorKeys::new("short", None).is_err());
    }
}
