//! A webhook endpoint: the URL one provider posts one tenant's calls to, and the signing secrets it accepts.
//!
//! - The id is random (`wh_` and 24 hex digits) and is the only thing the URL names; it is not a secret
//!   (the provider's signature is what authenticates), but it is unguessable, so a stranger's deliveries
//!   meet the same 401 as a wrong signature.
//! - The secret is the provider's: Retell signs with the account's API key, ElevenLabs with the secret its
//!   dashboard shows for the webhook; both are given to the operator tool on stdin. Vapi sends a secret
//!   that we choose: the operator tool generates one. The secret is stored in the table (the receiver needs
//!   it to check a MAC; the table is encrypted at rest), never logged, never printed but once, when it was
//!   generated. [`EndpointSecret`]'s `Debug` hides it.
//! - A rotation adds a new secret and keeps the old ones only for a stated overlap, so deliveries signed
//!   while the provider's dashboard is being changed still pass.

use std::fmt;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Provider;
use crate::error::StoreError;
use crate::ids::TenantId;

/// Longest secret accepted (bytes).
pub const MAX_SECRET_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub endpoint_id: String,
    pub tenant_id: String,
    pub provider: Provider,
    pub created_at: DateTime<Utc>,
    pub secrets: Vec<EndpointSecret>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecret {
    pub secret: String,
    pub added_at: DateTime<Utc>,
    /// From then on the secret is no longer accepted (set by a rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointSecret")
            .field("secret", &"<redacted>")
            .field("added_at", &self.added_at)
            .field("retires_at", &self.retires_at)
            .finish()
    }
}

/// Why a secret given to the operator tool was refused.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    if secret.len() > MAX_SECRET_BYTES {
        return Err(format!("the secret is longer than {MAX_SECRET_BYTES} bytes"));
    }
    if secret.chars().any(char::is_control) {
        return Err("the secret holds a control character".into());
    }
    Ok(())
}

/// A fresh secret for a provider that lets us choose one (Vapi): 32 random bytes.
pub fn generate_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Failed(format!("random: {e}")))?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A fresh endpoint id.
pub fn generate_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Failed(format!("random: {e}")))?;
    Ok(format!("wh_{}", hex::encode(bytes)))
}

/// Whether `id` has the shape of an endpoint id (checked before any read).
pub fn is_endpoint_id(id: &str) -> bool {
    id.len() == 27
        && id.starts_with("wh_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl WebhookEndpoint {
    pub fn new(tenant: &TenantId, provider: Provider, secret: String, now: DateTime<Utc>) -> Result<Self, StoreError> {
        Ok(WebhookEndpoint {
            endpoint_id: generate_id()?,
            tenant_id: tenant.as_str().to_owned(),
            provider,
            created_at: now,
            secrets: vec![EndpointSecret {
                secret,
                added_at: now,
                retires_at: None,
            }],
        })
    }

    /// The secrets a delivery may be signed with at `now`.
    pub fn accepted(&self, now: DateTime<Utc>) -> Vec<&[u8]> {
        self.secrets
            .iter()
            .filter(|s| s.retires_at.is_none_or(|t| now < t))
            .map(|s| s.secret.as_bytes())
            .collect()
    }

    /// Adds `secret`; every secret accepted now stays accepted until `now + overlap` (or its own earlier
    /// end), and secrets already retired are dropped.
    pub fn rotate(&mut self, secret: String, now: DateTime<Utc>, overlap: Duration) {
        let until = now + overlap;
        self.secrets.retain(|s| s.retires_at.is_none_or(|t| now < t));
        for s in &mut self.secrets {
            s.retires_at = Some(s.retires_at.map_or(until, |t| t.min(until)));
        }
        self.secrets.push(EndpointSecret {
            secret,
            added_at: now,
            retires_at: None,
        });
    }

    /// The URL path the provider posts to (the stack's API URL goes before it).
    pub fn path(&self) -> String {
        format!("/api/v1/webhooks/{}/{}", self.provider, self.endpoint_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_736_937_000 + s, 0).expect("2025")
    }

    fn endpoint() -> WebhookEndpoint {
        WebhookEndpoint::new(
            &TenantId::parse("acme").expect("tenant"),
            Provider::Vapi,
            "one".into(),
            at(0),
        )
        .expect("endpoint")
    }

    #[test]
    fn a_rotation_accepts_both_secrets_for_the_overlap_then_only_the_new_one() {
        let mut e = endpoint();
        e.rotate("two".into(), at(100), Duration::seconds(60));
        assert_eq!(e.accepted(at(159)), vec![b"one".as_slice(), b"two".as_slice()]);
        assert_eq!(e.accepted(at(160)), vec![b"two".as_slice()]);
        // A second rotation inside the overlap never extends the first secret's life, and drops nothing
        // still accepted.
        e.rotate("three".into(), at(120), Duration::hours(1));
        assert_eq!(e.accepted(at(130)).len(), 3);
        assert_eq!(e.accepted(at(200)), vec![b"two".as_slice(), b"three".as_slice()]);
        // Secrets already retired are gone from the item.
        e.rotate("four".into(), at(10_000), Duration::zero());
        assert_eq!(e.secrets.len(), 2);
        assert_eq!(e.accepted(at(10_000)), vec![b"four".as_slice()]);
    }

    #[test]
    fn ids_and_secrets_are_random_and_of_their_shape() {
        let (a, b) = (generate_id().expect("id"), generate_id().expect("id"));
        assert_ne!(a, b);
        assert!(is_endpoint_id(&a), "{a}");
        assert!(!is_endpoint_id("wh_ABC"));
        assert!(!is_endpoint_id("../../etc/passwd"));
        let s = generate_secret().expect("secret");
        assert!(s.starts_with("whsec_") && s.len() > 40);
        assert!(check_secret(&s).is_ok());
        assert!(check_secret("").is_err());
        assert!(check_secret("a\nb").is_err());
        assert!(check_secret(&"x".repeat(MAX_SECRET_BYTES + 1)).is_err());
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let e = endpoint();
        let shown = format!("{e:?}");
        assert!(!shown.contains("\"one\""), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
