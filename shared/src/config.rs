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
        Ok(Config {
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
