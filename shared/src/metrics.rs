//! CloudWatch metrics in the embedded metric format (EMF): what an invocation recorded is written, when it
//! ends, as JSON lines of their own on stdout, which CloudWatch Logs turns into metrics (no API call, no
//! agent). Recorded through the `metrics` facade into `metrics_cloudwatch_embedded`'s recorder, installed
//! once per process by [`crate::telemetry::init`] in the namespace `METRICS_NAMESPACE`
//! ([`crate::config::Telemetry`]).
//!
//! Every metric is a sample per request (HTTP functions) or per invocation (the others), and carries the
//! dimension `Function`: the function's crate name (`get-call`, …), a constant of its code, the same in every
//! stack. The names are a contract: the template's alarms name them. All of them, in [`ALL`]:
//!
//! | metric | unit | dimensions | function | one sample per | value |
//! |---|---|---|---|---|---|
//! | `Requests` | Count | Function, Route | get-call, list-calls, get-recording, write-call, webhook | request | 1 |
//! | `Latency` | Milliseconds | Function, Route | the same | request | handler start to response |
//! | `Errors4xx` | Count | Function, Route | the same | request | 1 if the status is 4xx, else 0 |
//! | `Errors5xx` | Count | Function, Route | the same | request | 1 if the status is 5xx, else 0 |
//! | `ExpiryFound` | Count | Function | recording-expiry | sweep | due recordings met (`SweepReport::found`) |
//! | `ExpiryDeleted` | Count | Function | recording-expiry | sweep | objects deleted or found gone (`deleted`) |
//! | `ExpiryFailed` | Count | Function | recording-expiry | sweep | recordings left due after a failed step (`failed`) |
//! | `ExpiryComplete` | Count | Function | recording-expiry | invocation | 1 if the sweep got through everything due (`complete`), else 0 |
//! | `CapturesStored` | Count | Function | recording-capture | batch | recordings copied into the bucket |
//! | `CapturesRetried` | Count | Function | recording-capture | batch | messages handed back to the queue for another try |
//! | `CapturesFailed` | Count | Function | recording-capture | batch | recordings marked `failed` (last try, or a link that can never work) |
//! | `RecordingsCompleted` | Count | Function | recording-check | checked upload | 1 if the recording became `completed`, else 0 |
//! | `RecordingsFailed` | Count | Function | recording-check | checked upload | 1 if it became `failed` (format, duration), else 0 |
//!
//! `Route` is the route as API Gateway names it (`GET /api/v1/calls/{callId}`): the request context's
//! `routeKey`, else the handler's method and path template, never a raw path (ids would make a metric per
//! call). Because each metric is a sample, `Sum` counts (requests, errors), `Average` of an `Errors…` metric
//! is the error rate, and a dimension set that saw no request has no sample rather than a zero.
//!
//! Not emitted: a dry run of the expiry job (it deletes nothing, and its `ExpiryComplete` must not stand for
//! a real sweep); what Lambda already reports (invocation errors, throttles, duration of the whole
//! invocation) is in the `AWS/Lambda` namespace.
//!
//! Values are kept as `metrics` histograms (each sample recorded is emitted, nothing is carried from one
//! invocation to the next) and written by [`flush`], once per invocation: [`flushed`] wraps each function's
//! handler in production (the HTTP functions' through [`crate::http::run`]), whatever the handler's result.

use std::future::Future;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::Unit;
use metrics_cloudwatch_embedded::Collector;
use tracing_subscriber::fmt::MakeWriter;

use crate::expiry::SweepReport;
use crate::write::Checked;

/// Dimension: the function's crate name.
pub const FUNCTION: &str = "Function";
/// Dimension: the API Gateway route key of an HTTP function's request.
pub const ROUTE: &str = "Route";

pub const REQUESTS: &str = "Requests";
pub const LATENCY: &str = "Latency";
pub const ERRORS_4XX: &str = "Errors4xx";
pub const ERRORS_5XX: &str = "Errors5xx";
pub const EXPIRY_FOUND: &str = "ExpiryFound";
pub const EXPIRY_DELETED: &str = "ExpiryDeleted";
pub const EXPIRY_FAILED: &str = "ExpiryFailed";
pub const EXPIRY_COMPLETE: &str = "ExpiryComplete";
pub const CAPTURES_STORED: &str = "CapturesStored";
pub const CAPTURES_RETRIED: &str = "CapturesRetried";
pub const CAPTURES_FAILED: &str = "CapturesFailed";
pub const RECORDINGS_COMPLETED: &str = "RecordingsCompleted";
pub const RECORDINGS_FAILED: &str = "RecordingsFailed";

/// One metric the functions emit: its name, unit (as CloudWatch spells it), dimension set, and the
/// functions that emit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub dimensions: &'static [&'static str],
    pub functions: &'static [&'static str],
}

const HTTP_FUNCTIONS: &[&str] = &["get-call", "list-calls", "get-recording", "write-call", "webhook"];
const BY_ROUTE: &[&str] = &[FUNCTION, ROUTE];
const BY_FUNCTION: &[&str] = &[FUNCTION];

const fn metric(
    name: &'static str,
    unit: &'static str,
    dimensions: &'static [&'static str],
    functions: &'static [&'static str],
) -> Metric {
    Metric {
        name,
        unit,
        dimensions,
        functions,
    }
}

/// Every metric the functions emit (the table above): what an alarm may name.
pub const ALL: &[Metric] = &[
    metric(REQUESTS, "Count", BY_ROUTE, HTTP_FUNCTIONS),
    metric(LATENCY, "Milliseconds", BY_ROUTE, HTTP_FUNCTIONS),
    metric(ERRORS_4XX, "Count", BY_ROUTE, HTTP_FUNCTIONS),
    metric(ERRORS_5XX, "Count", BY_ROUTE, HTTP_FUNCTIONS),
    metric(EXPIRY_FOUND, "Count", BY_FUNCTION, &["recording-expiry"]),
    metric(EXPIRY_DELETED, "Count", BY_FUNCTION, &["recording-expiry"]),
    metric(EXPIRY_FAILED, "Count", BY_FUNCTION, &["recording-expiry"]),
    metric(EXPIRY_COMPLETE, "Count", BY_FUNCTION, &["recording-expiry"]),
    metric(CAPTURES_STORED, "Count", BY_FUNCTION, &["recording-capture"]),
    metric(CAPTURES_RETRIED, "Count", BY_FUNCTION, &["recording-capture"]),
    metric(CAPTURES_FAILED, "Count", BY_FUNCTION, &["recording-capture"]),
    metric(RECORDINGS_COMPLETED, "Count", BY_FUNCTION, &["recording-check"]),
    metric(RECORDINGS_FAILED, "Count", BY_FUNCTION, &["recording-check"]),
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics are already installed in this process")]
    AlreadyInstalled,
    #[error("metrics recorder: {0}")]
    Recorder(String),
}

/// Where [`flush`] writes.
trait Target: Send + Sync {
    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()>;
}

struct Writer<W>(W);

impl<W> Target for Writer<W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync,
{
    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut writer = self.0.make_writer();
        writer.write_all(bytes)?;
        writer.flush()
    }
}

struct Installed {
    collector: &'static Collector,
    target: Box<dyn Target>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the process's recorder: metrics in `namespace`, written by [`flush`] to `writer` (stdout in a
/// function; tests pass one that captures). Once per process: the `metrics` recorder is global.
pub fn install<W>(namespace: &str, writer: W) -> Result<(), MetricsError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    if INSTALLED.get().is_some() {
        return Err(MetricsError::AlreadyInstalled);
    }
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace.to_owned())
        .init()
        .map_err(|e| MetricsError::Recorder(e.to_string()))?;
    for metric in ALL {
        let unit = if metric.unit == "Milliseconds" {
            Unit::Milliseconds
        } else {
            Unit::Count
        };
        ::metrics::describe_histogram!(metric.name, unit, "");
    }
    INSTALLED
        .set(Installed {
            collector,
            target: Box::new(Writer(writer)),
        })
        .map_err(|_| MetricsError::AlreadyInstalled)
}

/// Writes what was recorded since the last flush, one EMF line per dimension set, and forgets it. Nothing
/// when nothing was recorded or no recorder is installed.
pub fn flush() {
    let Some(installed) = INSTALLED.get() else { return };
    // Into memory first, then one write: another thread's log line never lands inside a document.
    let mut bytes = Vec::new();
    let written = installed.collector.flush(&mut bytes).and_then(|()| {
        if bytes.is_empty() {
            Ok(())
        } else {
            installed.target.write_all(&bytes)
        }
    });
    if let Err(e) = written {
        tracing::error!(error = %e, "metrics not written");
    }
}

/// `work`, then [`flush`], whatever `work`'s result: one invocation of a function.
pub async fn flushed<F: Future>(work: F) -> F::Output {
    let output = work.await;
    flush();
    output
}

fn sample(name: &'static str, function: &'static str, value: f64) {
    ::metrics::histogram!(name, FUNCTION => function).record(value);
}

fn flag(yes: bool) -> f64 {
    if yes {
        1.0
    } else {
        0.0
    }
}

/// One API request answered with `status` after `latency`, on `route` (an API Gateway route key).
pub fn request(function: &'static str, route: &str, status: u16, latency: Duration) {
    let labels = [(FUNCTION, function.to_owned()), (ROUTE, route.to_owned())];
    ::metrics::histogram!(REQUESTS, &labels).record(1.0);
    ::metrics::histogram!(LATENCY, &labels).record(latency.as_secs_f64() * 1000.0);
    ::metrics::histogram!(ERRORS_4XX, &labels).record(flag((400..500).contains(&status)));
    ::metrics::histogram!(ERRORS_5XX, &labels).record(flag(status >= 500));
}

/// One run of the expiry job: its sweep's report, or `None` when no sweep could start (the invocation
/// fails: `ExpiryComplete` 0 alone). A dry run records nothing.
pub fn sweep(function: &'static str, report: Option<&SweepReport>) {
    match report {
        Some(report) if report.dry_run => {}
        Some(report) => {
            sample(EXPIRY_FOUND, function, report.found as f64);
            sample(EXPIRY_DELETED, function, report.deleted as f64);
            sample(EXPIRY_FAILED, function, report.failed as f64);
            sample(EXPIRY_COMPLETE, function, flag(report.complete));
        }
        None => sample(EXPIRY_COMPLETE, function, 0.0),
    }
}

/// What one batch of the capture queue came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Captures {
    pub stored: u64,
    pub retried: u64,
    pub failed: u64,
}

/// One batch of the capture worker.
pub fn captures(function: &'static str, batch: Captures) {
    sample(CAPTURES_STORED, function, batch.stored as f64);
    sample(CAPTURES_RETRIED, function, batch.retried as f64);
    sample(CAPTURES_FAILED, function, batch.failed as f64);
}

/// One uploaded recording checked. An object no call waits for (`Checked::Deleted`) counts 0 in both.
pub fn recording_checked(function: &'static str, checked: &Checked) {
    sample(
        RECORDINGS_COMPLETED,
        function,
        flag(matches!(checked, Checked::Completed { .. })),
    );
    sample(
        RECORDINGS_FAILED,
        function,
        flag(matches!(checked, Checked::Failed { .. })),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_listed_once_per_dimension_set() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert((m.name, m.dimensions)), "{} twice", m.name);
            assert!(m.dimensions.first() == Some(&FUNCTION), "{}: Function first", m.name);
            assert!(matches!(m.unit, "Count" | "Milliseconds"), "{}", m.unit);
        }
    }
}
