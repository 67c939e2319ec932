//! Identifiers that come from outside (a path, a key's record) are checked once, here, and then
//! carried as types: a [`CallId`] or [`TenantId`] that exists is well formed.

use std::fmt;

use crate::error::ApiError;

/// Longest id accepted. Ids end up in DynamoDB keys (2 KB partition-key limit) and S3 keys.
pub const MAX_ID_LEN: usize = 128;

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

fn check(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > MAX_ID_LEN {
        return Err("must be at most 128 characters");
    }
    if !value.chars().all(is_id_char) {
        return Err("may contain only letters, digits, '_', '-', '.' and ':'");
    }
    Ok(())
}

/// A call's id, unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(String);

impl CallId {
    /// Parses an id given by a caller; the error names the `callId` parameter.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        check(value).map_err(|why| ApiError::invalid("callId", why))?;
        Ok(CallId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenant a request acts for. Only the key check ([`crate::auth`]) makes one for an API request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, InvalidTenant> {
        check(value).map_err(|why| InvalidTenant(why.to_owned()))?;
        if value.contains('#') {
            return Err(InvalidTenant("must not contain '#'".into()));
        }
        Ok(TenantId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid tenant id: {0}")]
pub struct InvalidTenant(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_of_the_seeds_are_accepted() {
        for id in ["call_123", "7f3d8e00-a1b2-4c3d-9e4f-567890abcdef", "call-456"] {
            assert_eq!(CallId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn empty_long_and_odd_call_ids_are_rejected_naming_the_field() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        for bad in ["", long.as_str(), "a b", "a/b", "a#b", "çağrı", "a%20b", "<x>"] {
            let err = CallId::parse(bad).unwrap_err();
            assert_eq!(err.field(), Some("callId"), "{bad:?}");
        }
        assert!(CallId::parse(&"a".repeat(MAX_ID_LEN)).is_ok());
    }
}
