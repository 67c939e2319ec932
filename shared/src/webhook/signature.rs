//! Each provider's signature, checked on the raw body before anything reads it. Every comparison of a
//! secret or a MAC is constant-time; every failure is the same `false` (the receiver answers one 401 for
//! all of them, and says why only in its own log, never the secret).
//!
//! | provider   | header                                   | signed                          | window   |
//! |------------|------------------------------------------|---------------------------------|----------|
//! | Retell     | `x-retell-signature: v=<unix ms>,d=<hex>` | HMAC-SHA256(secret, body ‖ ms)  | 5 min    |
//! | ElevenLabs | `elevenlabs-signature: t=<unix s>,v0=<hex>` | HMAC-SHA256(secret, "t.body") | 30 min   |
//! | Vapi       | `x-vapi-secret: <secret>`, or `x-vapi-signature: <hex>` (its HMAC credential) | HMAC-SHA256(secret, body) | none¹ |
//!
//! ¹ Vapi signs no time. A replayed Vapi delivery is the same event again, which changes nothing stored.
//! The window applies both ways (a timestamp too far in the future is as stale as one too old).

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Provider;

/// Why a delivery was refused: for the receiver's log only (the caller always sees the same 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The provider's header is absent or not of its shape.
    MissingHeader,
    /// The signed time is outside the provider's window.
    Stale,
    /// No secret of the endpoint produces the signature.
    Mismatch,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingHeader => "missing or malformed signature header",
            Refusal::Stale => "signed time outside the window",
            Refusal::Mismatch => "signature does not match",
        }
    }
}

/// The request headers a check reads, by lower-case name.
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for lambda_http::http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        lambda_http::http::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
}

pub const RETELL_HEADER: &str = "x-retell-signature";
pub const ELEVENLABS_HEADER: &str = "elevenlabs-signature";
pub const VAPI_SECRET_HEADER: &str = "x-vapi-secret";
pub const VAPI_SIGNATURE_HEADER: &str = "x-vapi-signature";

/// How far a signed time may be from now.
pub fn window(provider: Provider) -> Option<Duration> {
    match provider {
        Provider::Retell => Some(Duration::minutes(5)),
        Provider::ElevenLabs => Some(Duration::minutes(30)),
        Provider::Vapi => None,
    }
}

/// Checks a delivery against every secret the endpoint accepts now (one, or two during a rotation).
pub fn verify<H: Headers + ?Sized>(
    provider: Provider,
    headers: &H,
    body: &[u8],
    secrets: &[&[u8]],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    match provider {
        Provider::Retell => {
            let header = headers.get(RETELL_HEADER).ok_or(Refusal::MissingHeader)?;
            let (millis, mac) = pair(header, "v", "d").ok_or(Refusal::MissingHeader)?;
            let signed_at = millis
                .parse::<i64>()
                .ok()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .ok_or(Refusal::MissingHeader)?;
            fresh(provider, signed_at, now)?;
            let mac = hex::decode(mac).map_err(|_| Refusal::MissingHeader)?;
            any_secret(secrets, |secret| hmac_matches(secret, &[body, millis.as_bytes()], &mac))
        }
        Provider::ElevenLabs => {
            let header = headers.get(ELEVENLABS_HEADER).ok_or(Refusal::MissingHeader)?;
            let (seconds, mac) = pair(header, "t", "v0").ok_or(Refusal::MissingHeader)?;
            let signed_at = seconds
                .parse::<i64>()
                .ok()
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                .ok_or(Refusal::MissingHeader)?;
            fresh(provider, signed_at, now)?;
            let mac = hex::decode(mac).map_err(|_| Refusal::MissingHeader)?;
            any_secret(secrets, |secret| {
                hmac_matches(secret, &[seconds.as_bytes(), b".", body], &mac)
            })
        }
        Provider::Vapi => {
            if let Some(presented) = headers.get(VAPI_SECRET_HEADER) {
                return any_secret(secrets, |secret| presented.as_bytes().ct_eq(secret).into());
            }
            let header = headers.get(VAPI_SIGNATURE_HEADER).ok_or(Refusal::MissingHeader)?;
            let hex_mac = header.strip_prefix("sha256=").unwrap_or(header).trim();
            let mac = hex::decode(hex_mac).map_err(|_| Refusal::MissingHeader)?;
            any_secret(secrets, |secret| hmac_matches(secret, &[body], &mac))
        }
    }
}

/// The header a provider's deliveries are signed in, as a sender would write it: for tests, fixtures and
/// the operator tool's `webhooks test`.
pub fn sign(provider: Provider, secret: &[u8], body: &[u8], at: DateTime<Utc>) -> (&'static str, String) {
    match provider {
        Provider::Retell => {
            let millis = at.timestamp_millis().to_string();
            let mac = hmac_of(secret, &[body, millis.as_bytes()]);
            (RETELL_HEADER, format!("v={millis},d={}", hex::encode(mac)))
        }
        Provider::ElevenLabs => {
            let seconds = at.timestamp().to_string();
            let mac = hmac_of(secret, &[seconds.as_bytes(), b".", body]);
            (ELEVENLABS_HEADER, format!("t={seconds},v0={}", hex::encode(mac)))
        }
        Provider::Vapi => (VAPI_SIGNATURE_HEADER, hex::encode(hmac_of(secret, &[body]))),
    }
}

/// `a=<x>,b=<y>` (in either order, spaces allowed) → `(x, y)`.
fn pair<'h>(header: &'h str, first: &str, second: &str) -> Option<(&'h str, &'h str)> {
    let mut a = None;
    let mut b = None;
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        if name == first && a.is_none() {
            a = Some(value);
        } else if name == second && b.is_none() {
            b = Some(value);
        }
    }
    Some((a?, b?))
}

fn fresh(provider: Provider, signed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    match window(provider) {
        Some(w) if (now - signed_at).abs() > w => Err(Refusal::Stale),
        _ => Ok(()),
    }
}

/// Tries every secret (all of them, so the time taken does not say which one matched).
fn any_secret(secrets: &[&[u8]], matches: impl Fn(&[u8]) -> bool) -> Result<(), Refusal> {
    let mut any = false;
    for secret in secrets {
        any |= matches(secret);
    }
    if any {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

fn hmac_of(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `verify_slice` compares in constant time.
fn hmac_matches(secret: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_only_secret";
    const BODY: &[u8] = br#"{"event":"call_ended","call":{"call_id":"abc"}}"#;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_736_937_000, 0).expect("2025")
    }

    fn check(provider: Provider, header: (&str, String), body: &[u8], at: DateTime<Utc>) -> Result<(), Refusal> {
        let headers = [(header.0, header.1.as_str())];
        verify(provider, &headers[..], body, &[SECRET], at)
    }

    #[test]
    fn a_signed_delivery_passes_for_every_provider() {
        for p in Provider::ALL {
            assert_eq!(check(p, sign(p, SECRET, BODY, now()), BODY, now()), Ok(()), "{p}");
        }
    }

    #[test]
    fn an_altered_body_or_another_secret_is_a_mismatch() {
        for p in Provider::ALL {
            let header = sign(p, SECRET, BODY, now());
            assert_eq!(check(p, header.clone(), b"{}", now()), Err(Refusal::Mismatch), "{p}");
            let other = sign(p, b"another secret", BODY, now());
            assert_eq!(check(p, other, BODY, now()), Err(Refusal::Mismatch), "{p}");
        }
    }

    #[test]
    fn signed_times_outside_the_window_are_stale_both_ways() {
        for (p, w) in [(Provider::Retell, 5), (Provider::ElevenLabs, 30)] {
            let inside = now() - Duration::minutes(w) + Duration::seconds(1);
            assert_eq!(check(p, sign(p, SECRET, BODY, inside), BODY, now()), Ok(()));
            for outside in [now() - Duration::minutes(w + 1), now() + Duration::minutes(w + 1)] {
                assert_eq!(
                    check(p, sign(p, SECRET, BODY, outside), BODY, now()),
                    Err(Refusal::Stale),
                    "{p}"
                );
            }
        }
        // Vapi signs no time: an old signature of the same body still matches.
        let old = now() - Duration::days(3);
        assert_eq!(
            check(Provider::Vapi, sign(Provider::Vapi, SECRET, BODY, old), BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        for p in Provider::ALL {
            let none: [(&str, &str); 0] = [];
            assert_eq!(
                verify(p, &none[..], BODY, &[SECRET], now()),
                Err(Refusal::MissingHeader)
            );
        }
        for bad in ["", "v=abc,d=00", "v=1736937000000", "d=00", "v=1736937000000,d=zz"] {
            assert_eq!(
                check(Provider::Retell, (RETELL_HEADER, bad.to_owned()), BODY, now()),
                Err(Refusal::MissingHeader),
                "{bad}"
            );
        }
        // A header of another provider is not this one's.
        let retell = sign(Provider::Retell, SECRET, BODY, now());
        assert_eq!(
            check(Provider::ElevenLabs, retell, BODY, now()),
            Err(Refusal::MissingHeader)
        );
    }

    #[test]
    fn vapi_takes_its_plain_secret_header_too() {
        let secret = String::from_utf8(SECRET.to_vec()).expect("utf-8");
        assert_eq!(check(Provider::Vapi, (VAPI_SECRET_HEADER, secret), BODY, now()), Ok(()));
        assert_eq!(
            check(
                Provider::Vapi,
                (VAPI_SECRET_HEADER, "whsec_test_only_secreT".into()),
                BODY,
                now()
            ),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn during_a_rotation_either_secret_passes() {
        let old: &[u8] = b"old secret";
        for p in Provider::ALL {
            let (name, value) = sign(p, old, BODY, now());
            let headers = [(name, value.as_str())];
            assert_eq!(verify(p, &headers[..], BODY, &[SECRET, old], now()), Ok(()));
            assert_eq!(verify(p, &headers[..], BODY, &[SECRET], now()), Err(Refusal::Mismatch));
        }
    }
}
