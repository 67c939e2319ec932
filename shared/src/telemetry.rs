//! Logging, and the set-up of [`crate::metrics`]: JSON lines on stdout, which Lambda sends to CloudWatch, every
//! field at the top level of its line. Which lines: [`crate::config::Telemetry::log_filter`]. Each API
//! request leaves one line of its own (see [`crate::http::RequestLog`]).
//!
//! Every line written while an invocation is handled carries that invocation's `requestId` (Lambda's, the one
//! in its `START`/`END`/`REPORT` lines) and `traceId` (the X-Ray trace id), wherever in the code it is
//! written: lambda_runtime runs each invocation inside a span of its own (`Lambda runtime invoke`, with the
//! fields `requestId` and `xrayTraceId`), and [`JsonLines`] copies those two onto each line of an event inside
//! it. Only those two: the fields of other spans (the AWS SDK opens its own) stay off the lines.
//!
//! Each line also has a `timestamp` (RFC 3339, milliseconds, UTC): with the template's JSON log format Lambda
//! keeps a line's own level only when the line has a valid timestamp, and would otherwise file it as INFO.
//!
//! `{"level":"WARN","timestamp":"2026-12-02T17:50:01.123Z","message":"unreadable list row skipped","error":"…","requestId":"8476a536-…","traceId":"1-5759e988-bd862e3fe1be46a994272793"}`

use std::fmt;
use std::io::Write;

use serde::ser::Serializer;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Telemetry;

/// The name of the span lambda_runtime opens around each invocation (`lambda_runtime::layers::trace`).
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";

/// Logs and metrics of a function, both to stdout. Once, first thing in `main`.
pub fn init() {
    init_to(std::io::stdout);
}

/// [`init`] with another writer than stdout (tests capture a function's whole output with it). Once per
/// process: the subscriber and the metrics recorder are the process's.
pub fn init_to<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Clone + Send + Sync + 'static,
{
    let settings = Telemetry::from_env();
    let _ = tracing::subscriber::set_global_default(subscriber_with(&settings, writer.clone()));
    if let Err(e) = crate::metrics::install(&settings.metrics_namespace, writer) {
        tracing::error!(error = %e, "metrics are not recorded");
    }
}

/// The subscriber the functions log through, writing to `writer` (tests capture the lines with it).
pub fn subscriber<W>(writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    subscriber_with(&Telemetry::from_env(), writer)
}

fn subscriber_with<W>(settings: &Telemetry, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry().with(filter).with(JsonLines { writer })
}

/// The ids of the invocation a span is, kept in its extensions.
#[derive(Debug, Clone, Default)]
struct Invocation {
    request_id: Option<String>,
    trace_id: Option<String>,
}

impl Visit for Invocation {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "requestId" => self.request_id = Some(value.to_owned()),
            "xrayTraceId" => self.trace_id = Some(trace_id(value).to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, format!("{value:?}").trim_matches('"'));
    }
}

/// The trace id in an X-Ray trace header (`Root=1-…;Parent=…;Sampled=0`): its `Root`, what X-Ray and
/// CloudWatch search by. The parent segment and the sampling decision are not the trace's id.
fn trace_id(header: &str) -> &str {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .unwrap_or(header)
}

/// Writes each event as one JSON line: `level`, `message`, the event's fields, then the invocation's
/// `requestId` and `traceId` when the event happens inside one.
struct JsonLines<W> {
    writer: W,
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != INVOCATION_SPAN {
            return;
        }
        let mut invocation = Invocation::default();
        attrs.record(&mut invocation);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(invocation);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let invocation = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<Invocation>().cloned())
        });
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut fields = Fields(vec![
            ("level", Value::from(event.metadata().level().as_str())),
            ("timestamp", Value::from(now)),
        ]);
        event.record(&mut fields);
        let mut line = fields.0;
        if let Some(invocation) = invocation {
            // The invocation's ids are the line's; an event field of the same name would make a second key.
            line.retain(|(name, _)| !matches!(*name, "requestId" | "traceId"));
            line.extend(invocation.request_id.map(|id| ("requestId", Value::from(id))));
            line.extend(invocation.trace_id.map(|id| ("traceId", Value::from(id))));
        }
        let mut bytes = Vec::with_capacity(256);
        if serde_json::Serializer::new(&mut bytes).collect_map(line).is_ok() {
            bytes.push(b'\n');
            // One write per line, so that lines of concurrent writers never interleave.
            let _ = self.writer.make_writer().write_all(&bytes);
        }
    }
}

/// An event's fields in the order they were given, `message` first.
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        self.0.push((field.name(), value));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities are not JSON numbers: null.
        self.push(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// The lines `work` logs, each without its `timestamp` once that is checked to be RFC 3339 and now.
    fn logged(work: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let settings = Telemetry::from_lookup(|_| None);
        let before = chrono::Utc::now() - chrono::Duration::seconds(1);
        tracing::subscriber::with_default(subscriber_with(&settings, lines.clone()), work);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                let mut line: Value = serde_json::from_str(l).unwrap();
                let stamp = line.as_object_mut().unwrap().remove("timestamp").expect("a timestamp");
                let stamp = chrono::DateTime::parse_from_rfc3339(stamp.as_str().unwrap()).unwrap();
                assert!(stamp >= before && stamp <= chrono::Utc::now(), "{l}");
                line
            })
            .collect()
    }

    fn context(request_id: &str, trace: Option<&str>) -> lambda_runtime::Context {
        let mut ctx = lambda_runtime::Context::default();
        ctx.request_id = request_id.to_owned();
        ctx.xray_trace_id = trace.map(str::to_owned);
        ctx
    }

    #[test]
    fn lines_inside_the_runtimes_span_carry_its_ids_at_the_top_level() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let lines = logged(|| {
            tracing::info!("before");
            let span = lambda_runtime::layers::trace::request_span(&context("req-1", Some(header)));
            let _in = span.enter();
            let inner = tracing::info_span!("sdk", rpc = "Query", requestId = "not this one");
            let _deeper = inner.enter();
            tracing::warn!(error = "bad row", count = 2_u64, ok = true, "deep");
        });
        assert_eq!(lines[0], serde_json::json!({"level": "INFO", "message": "before"}));
        assert_eq!(
            lines[1],
            serde_json::json!({"level": "WARN", "message": "deep", "error": "bad row", "count": 2, "ok": true,
                "requestId": "req-1", "traceId": "1-5759e988-bd862e3fe1be46a994272793"})
        );
    }

    #[test]
    fn an_event_field_named_like_an_id_never_makes_a_second_key() {
        let lines = logged(|| {
            let span = lambda_runtime::layers::trace::request_span(&context("req-2", None));
            let _in = span.enter();
            tracing::info!(requestId = "other", "line");
        });
        let text = lines[0].to_string();
        assert_eq!(text.matches("requestId").count(), 1, "{text}");
        assert_eq!(lines[0]["requestId"], "req-2");
        assert!(lines[0].get("traceId").is_none(), "no trace header, no traceId: {text}");
    }

    #[test]
    fn the_invocation_span_is_the_runtimes() {
        let mut seen = None;
        logged(|| {
            let span = lambda_runtime::layers::trace::request_span(&context("r", Some("Root=1-a-b")));
            seen = span
                .metadata()
                .map(|m| (m.name(), m.fields().iter().map(|f| f.name()).collect::<Vec<_>>()));
        });
        let (name, fields) = seen.expect("the span is enabled");
        assert_eq!(name, INVOCATION_SPAN, "lambda_runtime renamed its span");
        assert!(
            fields.contains(&"requestId") && fields.contains(&"xrayTraceId"),
            "{fields:?}"
        );
    }
}
