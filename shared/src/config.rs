//! The one place that reads configuration from the environment. A deployed function gets its environment
//! from template.yaml alone; local runs get theirs from the dev command or `[workspace.metadata.lambda.env]`.
//! Endpoints of emulators come through the SDK's own `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_S3`.

use std::env;

use crate::cursor::CursorKeys;
use crate::recording::Retention;

pub const DEFAULT_RETENTION_DAYS: u32 = 30;

#[derive(Debug, Clone)]
pub struct Config {
    /// `CALLS_TABLE`: the one DynamoDB table.
    pub table_name: String,
    /// `RECORDINGS_BUCKET`: the S3 bucket holding `recordings/`.
    pub bucket_name: String,
    /// `RECORDING_RETENTION_DAYS`: fed by the template parameter `RecordingRetentionDays`.
    pub retention: Retention,
    /// `CALLRECORDS_LOCAL_AUTH=1`: the handler checks the Bearer key itself, because `cargo lambda watch` runs
    /// no authorizer. Never set by template.yaml.
    pub local_auth: bool,
    /// `S3_FORCE_PATH_STYLE=1`: path-style S3 addressing, which emulators on loopback need.
    pub s3_force_path_style: bool,
    /// `CURSOR_SECRET` (and `CURSOR_SECRET_PREVIOUS` during a roll-over): signs list cursors. Only
    /// list-calls needs it; template.yaml feeds it from a generated Secrets Manager secret.
    pub cursor_keys: Option<CursorKeys>,
    /// Copying providers' recording links into the bucket ([`Capture`]).
    pub capture: Capture,
}

/// How recordings behind a provider's link are copied into the bucket (the webhook receiver queues them,
/// the capture worker fetches them).
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// `CAPTURE_QUEUE_URL`: the SQS queue of recordings to copy. Unset: links are not followed (logged).
    pub queue_url: Option<String>,
    /// `CAPTURE_HOSTS_RETELL`, `CAPTURE_HOSTS_VAPI`, `CAPTURE_HOSTS_ELEVENLABS`: the hosts each provider's
    /// links may point at, comma separated; `*.example.com` also matches any subdomain. Nothing else is
    /// fetched.
    pub hosts: [Vec<String>; 3],
    /// `CAPTURE_ALLOW_LOOPBACK_HTTP=1`: plain `http://` to 127.0.0.1 is allowed (tests only; the template
    /// never sets it). Otherwise only `https://` is fetched.
    pub allow_loopback_http: bool,
    /// `CAPTURE_MAX_BYTES`: the largest recording copied (default 512 MiB).
    pub max_bytes: u64,
    /// `CAPTURE_TIMEOUT_SECONDS`: the longest one fetch may take, first byte to last (default 120).
    pub timeout: std::time::Duration,
    /// `CAPTURE_ATTEMPTS`: tries of one recording; the queue's `maxReceiveCount` is the same number.
    /// After the last the recording is `failed` (default 5).
    pub attempts: u32,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            queue_url: None,
            hosts: [Vec::new(), Vec::new(), Vec::new()],
            allow_loopback_http: false,
            max_bytes: 512 * 1024 * 1024,
            timeout: std::time::Duration::from_secs(120),
            attempts: 5,
        }
    }
}

impl Capture {
    /// The hosts `provider`'s links may point at.
    pub fn hosts_of(&self, provider: crate::webhook::Provider) -> &[String] {
        let i = crate::webhook::Provider::ALL
            .iter()
            .position(|p| *p == provider)
            .unwrap_or_default();
        &self.hosts[i]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| lookup(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
        let flag = |name: &str| matches!(lookup(name).as_deref(), Some("1" | "true" | "yes"));
        let days = match lookup("RECORDING_RETENTION_DAYS") {
            None => DEFAULT_RETENTION_DAYS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| *d >= 1)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "RECORDING_RETENTION_DAYS",
                    why: format!("{v:?} is not a whole number of days >= 1"),
                })?,
        };
        let cursor_keys = match lookup("CURSOR_SECRET").filter(|v| !v.is_empty()) {
            None => None,
            Some(current) => {
                let previous = lookup("CURSOR_SECRET_PREVIOUS").filter(|v| !v.is_empty());
                Some(
                    CursorKeys::new(&current, previous.as_deref()).map_err(|why| ConfigError::Invalid {
                        name: "CURSOR_SECRET",
                        why,
                    })?,
                )
            }
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ConfigError::Invalid {
                        name,
                        why: format!("{v:?} is not a whole number >= 1"),
                    }),
            }
        };
        let hosts = |name: &str| -> Vec<String> {
            lookup(name)
                .unwrap_or_default()
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        };
        let defaults = Capture::default();
        let capture = Capture {
            queue_url: lookup("CAPTURE_QUEUE_URL").filter(|v| !v.is_empty()),
            hosts: [
                hosts("CAPTURE_HOSTS_RETELL"),
                hosts("CAPTURE_HOSTS_VAPI"),
                hosts("CAPTURE_HOSTS_ELEVENLABS"),
            ],
            allow_loopback_http: flag("CAPTURE_ALLOW_LOOPBACK_HTTP"),
            max_bytes: number("CAPTURE_MAX_BYTES", defaults.max_bytes)?,
            timeout: std::time::Duration::from_secs(number("CAPTURE_TIMEOUT_SECONDS", defaults.timeout.as_secs())?),
            attempts: u32::try_from(number("CAPTURE_ATTEMPTS", u64::from(defaults.attempts))?).map_err(|_| {
                ConfigError::Invalid {
                    name: "CAPTURE_ATTEMPTS",
                    why: "too large".into(),
                }
            })?,
        };
        Ok(Config {
            capture,
            cursor_keys,
            table_name: required("CALLS_TABLE")?,
            bucket_name: required("RECORDINGS_BUCKET")?,
            retention: Retention::days(days),
            local_auth: flag("CALLRECORDS_LOCAL_AUTH"),
            s3_force_path_style: flag("S3_FORCE_PATH_STYLE"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn retention_defaults_to_thirty_days_and_local_auth_is_off() {
        let cfg = Config::from_lookup(lookup(&[("CALLS_TABLE", "t"), ("RECORDINGS_BUCKET", "b")])).unwrap();
        assert_eq!(cfg.retention, Retention::days(30));
        assert!(!cfg.local_auth);
    }

    #[test]
    fn a_bad_retention_is_an_error_not_a_default() {
        for bad in ["0", "-1", "thirty", ""] {
            let err = Config::from_lookup(lookup(&[
                ("CALLS_TABLE", "t"),
                ("RECORDINGS_BUCKET", "b"),
                ("RECORDING_RETENTION_DAYS", bad),
            ]));
            assert!(matches!(err, Err(ConfigError::Invalid { .. })), "{bad:?}");
        }
    }

    #[test]
    fn a_short_cursor_secret_is_refused_and_none_is_allowed() {
        let base = [("CALLS_TABLE", "t"), ("RECORDINGS_BUCKET", "b")];
        assert!(Config::from_lookup(lookup(&base)).unwrap().cursor_keys.is_none());
        let short = [base[0], base[1], ("CURSOR_SECRET", "too short")];
        assert!(matches!(
            Config::from_lookup(lookup(&short)),
            Err(ConfigError::Invalid {
                name: "CURSOR_SECRET",
                ..
            })
        ));
        let good = [base[0], base[1], ("CURSOR_SECRET", "0123456789abcdef0123456789abcdef")];
        assert!(Config::from_lookup(lookup(&good)).unwrap().cursor_keys.is_some());
    }

    #[test]
    fn missing_table_is_named() {
        let err = Config::from_lookup(lookup(&[("RECORDINGS_BUCKET", "b")])).unwrap_err();
        assert!(err.to_string().contains("CALLS_TABLE"));
    }
}
