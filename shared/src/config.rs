//! The one place that reads configuration from the environment. A deployed function gets its environment
//! from template.yaml alone; local runs get theirs from the dev command or `[workspace.metadata.lambda.env]`.
//! Endpoints of emulators come through the SDK's own `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_S3`.

use std::env;

use crate::cursor::CursorKeys;
use crate::recording::Retention;

pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// How long an API handler keeps a key's record it has read (`API_KEY_CACHE_SECONDS`), by default: the
/// longest a revoked key may still be accepted (docs/API.md, "Keys and scopes").
pub const DEFAULT_KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// The most `API_KEY_CACHE_SECONDS` may say: a revocation never waits longer than an hour.
pub const MAX_KEY_CACHE_SECONDS: u64 = 3600;
/// The variables that name the table and the bucket (the operator tool may take both from a stack instead).
pub const TABLE_VAR: &str = "CALLS_TABLE";
pub const BUCKET_VAR: &str = "RECORDINGS_BUCKET";

#[derive(Debug, Clone)]
pub struct Config {
    /// `CALLS_TABLE`: the one DynamoDB table.
    pub table_name: String,
    /// `RECORDINGS_BUCKET`: the S3 bucket holding `recordings/`.
    pub bucket_name: String,
    /// `RECORDING_RETENTION_DAYS`: fed by the template parameter `RecordingRetentionDays`.
    pub retention: Retention,
    /// `API_KEY_CACHE_SECONDS` (0 to [`MAX_KEY_CACHE_SECONDS`], default 60): how long a handler keeps a key
    /// record it has read ([`crate::auth`]); 0 reads the record on every request.
    pub key_cache_ttl: std::time::Duration,
    /// `S3_FORCE_PATH_STYLE=1`: path-style S3 addressing, which emulators on loopback need.
    pub s3_force_path_style: bool,
    /// `CURSOR_SECRET` (and `CURSOR_SECRET_PREVIOUS` during a roll-over): signs list cursors. Only
    /// list-calls needs it; template.yaml feeds it from a generated Secrets Manager secret.
    pub cursor_keys: Option<CursorKeys>,
    /// Copying providers' recording links into the bucket ([`Capture`]).
    pub capture: Capture,
    /// How far `includeTotal` counts ([`TotalBudget`]).
    pub total_budget: TotalBudget,
}

/// How far GET /api/v1/calls counts for `includeTotal` before it answers with a lower bound
/// (`totalExact: false`). The count stops at whichever runs out first. Both may be 0: no count, only what
/// the page itself shows.
///
/// Why these defaults: list-calls has 10 s (template.yaml's `Timeout`), and the page comes first: its one
/// Query may take up to 5 s with retries (the operation timeout in [`crate::aws`]). Counting after it for
/// at most 2 s leaves 3 s to spare, so the page is always served. In 2 s one DynamoDB partition serves
/// at most about 24,000–48,000 summaries (3,000 read units a second of 8 KB, 1–2 KB a summary), and
/// DynamoDB Local on a busy 2-core machine counted 18,000 (`scripts/bench-list`). 50,000 items (50–100
/// MB, about 6,000–12,000 read units) caps what one request may cost where reads are faster than that.
/// Lists of some 10,000–20,000 calls are counted exactly; a 100,000-call tenant's whole list is a lower
/// bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotalBudget {
    /// `LIST_TOTAL_BUDGET_MS`: the longest the count may take, from its first request (default 2000). When
    /// it is up, requests in flight are dropped and what was counted so far is the answer.
    pub time: std::time::Duration,
    /// `LIST_TOTAL_MAX_ITEMS`: the most index items the count-only Queries may read, over all the slices
    /// counted at once (default 50000).
    pub max_items: u64,
}

impl Default for TotalBudget {
    fn default() -> Self {
        TotalBudget {
            time: std::time::Duration::from_millis(2000),
            max_items: 50_000,
        }
    }
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

    /// As [`Config::from_env`], with the table and the bucket given instead of read from `CALLS_TABLE` and
    /// `RECORDINGS_BUCKET`: the operator tool's `--stack` takes them from the stack's outputs.
    pub fn from_env_with(table: &str, bucket: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| match name {
            TABLE_VAR => Some(table.to_owned()),
            BUCKET_VAR => Some(bucket.to_owned()),
            _ => env::var(name).ok(),
        })
    }

    /// `CALLS_TABLE` and `RECORDINGS_BUCKET` as the environment sets them, each `None` when unset or empty.
    pub fn table_and_bucket_in_env() -> (Option<String>, Option<String>) {
        let var = |name| env::var(name).ok().filter(|v| !v.is_empty());
        (var(TABLE_VAR), var(BUCKET_VAR))
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
        let total_budget = {
            let defaults = TotalBudget::default();
            let whole = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
                match lookup(name).filter(|v| !v.is_empty()) {
                    None => Ok(default),
                    Some(v) => v.parse::<u64>().map_err(|_| ConfigError::Invalid {
                        name,
                        why: format!("{v:?} is not a whole number >= 0"),
                    }),
                }
            };
            let millis = u64::try_from(defaults.time.as_millis()).unwrap_or(u64::MAX);
            TotalBudget {
                time: std::time::Duration::from_millis(whole("LIST_TOTAL_BUDGET_MS", millis)?),
                max_items: whole("LIST_TOTAL_MAX_ITEMS", defaults.max_items)?,
            }
        };
        let key_cache_ttl = match lookup("API_KEY_CACHE_SECONDS").filter(|v| !v.is_empty()) {
            None => DEFAULT_KEY_CACHE_TTL,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= MAX_KEY_CACHE_SECONDS)
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "API_KEY_CACHE_SECONDS",
                    why: format!("{v:?} is not a whole number of seconds from 0 to {MAX_KEY_CACHE_SECONDS}"),
                })?,
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
            total_budget,
            cursor_keys,
            table_name: required(TABLE_VAR)?,
            bucket_name: required(BUCKET_VAR)?,
            retention: Retention::days(days),
            key_cache_ttl,
            s3_force_path_style: flag("S3_FORCE_PATH_STYLE"),
        })
    }
}

/// Logging and metrics, read apart from [`Config`]: every function sets them up first thing in its `main`,
/// before the rest is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    /// Which lines are logged, as `tracing` filter directives: `RUST_LOG` when set (e.g.
    /// `info,callrecords=debug`); else `AWS_LAMBDA_LOG_LEVEL`, which Lambda sets from the template's
    /// `LoggingConfig.ApplicationLogLevel` (`FATAL` logs errors, the highest level there is); else `info`.
    pub log_filter: String,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of the functions' metrics (default
    /// [`DEFAULT_METRICS_NAMESPACE`]).
    pub metrics_namespace: String,
}

pub const DEFAULT_METRICS_NAMESPACE: &str = "callrecords";

/// `CALLRECORDS_RUNTIME`: which tokio runtime a function runs on ([`crate::runtime`]). `current-thread`
/// (the default) or `multi-thread`; anything else is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFlavour {
    CurrentThread,
    MultiThread,
}

impl RuntimeFlavour {
    pub fn from_env() -> Self {
        Self::from_value(env::var("CALLRECORDS_RUNTIME").ok().as_deref())
    }

    pub fn from_value(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some("multi-thread") => RuntimeFlavour::MultiThread,
            _ => RuntimeFlavour::CurrentThread,
        }
    }
}

impl Telemetry {
    pub fn from_env() -> Self {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the settings through `lookup`; an unset or empty variable takes the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let lambda_level = |level: String| {
            match level.to_ascii_uppercase().as_str() {
                "TRACE" => "trace",
                "DEBUG" => "debug",
                "WARN" => "warn",
                "ERROR" | "FATAL" => "error",
                _ => "info",
            }
            .to_owned()
        };
        Telemetry {
            log_filter: set("RUST_LOG")
                .or_else(|| set("AWS_LAMBDA_LOG_LEVEL").map(lambda_level))
                .unwrap_or_else(|| "info".to_owned()),
            metrics_namespace: set("METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned()),
        }
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
    fn retention_defaults_to_thirty_days_and_keys_are_kept_a_minute() {
        let cfg = Config::from_lookup(lookup(&[("CALLS_TABLE", "t"), ("RECORDINGS_BUCKET", "b")])).unwrap();
        assert_eq!(cfg.retention, Retention::days(30));
        assert_eq!(cfg.key_cache_ttl, std::time::Duration::from_secs(60));
    }

    #[test]
    fn the_runtime_is_current_thread_unless_multi_thread_is_asked_for() {
        assert_eq!(RuntimeFlavour::from_value(None), RuntimeFlavour::CurrentThread);
        assert_eq!(
            RuntimeFlavour::from_value(Some("multi-thread")),
            RuntimeFlavour::MultiThread
        );
        assert_eq!(
            RuntimeFlavour::from_value(Some("current-thread")),
            RuntimeFlavour::CurrentThread
        );
        assert_eq!(RuntimeFlavour::from_value(Some("fast")), RuntimeFlavour::CurrentThread);
    }

    #[test]
    fn the_key_cache_takes_zero_to_an_hour_and_refuses_the_rest() {
        let with = |v: &str| {
            Config::from_lookup(lookup(&[
                ("CALLS_TABLE", "t"),
                ("RECORDINGS_BUCKET", "b"),
                ("API_KEY_CACHE_SECONDS", v),
            ]))
        };
        assert_eq!(with("0").unwrap().key_cache_ttl, std::time::Duration::ZERO);
        assert_eq!(
            with("3600").unwrap().key_cache_ttl,
            std::time::Duration::from_secs(3600)
        );
        for bad in ["3601", "-1", "1.5", "a minute"] {
            let err = with(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        name: "API_KEY_CACHE_SECONDS",
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
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
    fn the_total_budget_defaults_to_two_seconds_and_fifty_thousand_items_and_may_be_zero() {
        let base = [("CALLS_TABLE", "t"), ("RECORDINGS_BUCKET", "b")];
        let cfg = Config::from_lookup(lookup(&base)).unwrap();
        assert_eq!(cfg.total_budget.time, std::time::Duration::from_millis(2000));
        assert_eq!(cfg.total_budget.max_items, 50_000);
        let set = [
            base[0],
            base[1],
            ("LIST_TOTAL_BUDGET_MS", "0"),
            ("LIST_TOTAL_MAX_ITEMS", "300"),
        ];
        let cfg = Config::from_lookup(lookup(&set)).unwrap();
        assert_eq!(cfg.total_budget.time, std::time::Duration::ZERO);
        assert_eq!(cfg.total_budget.max_items, 300);
        for (name, bad) in [
            ("LIST_TOTAL_BUDGET_MS", "-1"),
            ("LIST_TOTAL_MAX_ITEMS", "lots"),
            ("LIST_TOTAL_MAX_ITEMS", "1e5"),
        ] {
            let err = Config::from_lookup(lookup(&[base[0], base[1], (name, bad)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { name: n, .. } if n == name),
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn missing_table_is_named() {
        let err = Config::from_lookup(lookup(&[("RECORDINGS_BUCKET", "b")])).unwrap_err();
        assert!(err.to_string().contains("CALLS_TABLE"));
    }

    #[test]
    fn the_log_level_comes_from_rust_log_then_lambda_then_info() {
        let filter = |pairs: &[(&str, &str)]| Telemetry::from_lookup(lookup(pairs)).log_filter;
        assert_eq!(filter(&[]), "info");
        assert_eq!(
            filter(&[
                ("RUST_LOG", "info,callrecords=debug"),
                ("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            ]),
            "info,callrecords=debug"
        );
        for (lambda, want) in [
            ("TRACE", "trace"),
            ("DEBUG", "debug"),
            ("INFO", "info"),
            ("WARN", "warn"),
            ("ERROR", "error"),
            ("FATAL", "error"),
            ("warn", "warn"),
        ] {
            assert_eq!(filter(&[("AWS_LAMBDA_LOG_LEVEL", lambda)]), want, "{lambda}");
            assert_eq!(
                filter(&[("RUST_LOG", ""), ("AWS_LAMBDA_LOG_LEVEL", lambda)]),
                want,
                "an empty RUST_LOG is unset"
            );
        }
    }

    #[test]
    fn the_metrics_namespace_defaults_to_callrecords() {
        assert_eq!(Telemetry::from_lookup(lookup(&[])).metrics_namespace, "callrecords");
        let set = Telemetry::from_lookup(lookup(&[("METRICS_NAMESPACE", "callrecords/prod")]));
        assert_eq!(set.metrics_namespace, "callrecords/prod");
    }
}
