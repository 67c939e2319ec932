//! Write-side benchmark: PUT latency and DynamoDB requests per PUT through write-call's entry point (in
//! process, against DynamoDB Local and the S3 emulator) for an ordinary call and a large one, each as a
//! create, a replace with the same content (only `summary` changed), a replace with changed content and an
//! identical PUT ("unchanged"); and, with `--import-file`, where the operator import's time goes (parse and
//! encode CPU, requests per call, the import in process, writes alone, and what DynamoDB Local serves of
//! each request kind). Run with `scripts/bench-writes`, which starts the emulators and also times the
//! release `callrecords import`. Latency is against DynamoDB Local on this machine, not AWS: compare cases
//! with each other, not with production.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, PutRequest, TransactWriteItem, WriteRequest};
use callrecords::model::{CallRecord, CallStatus, Direction};
use callrecords::recording::{self, Retention};
use callrecords::store::codec::encode_call;
use callrecords::store::layout;
use callrecords::store::metrics::RequestCounter;
use callrecords::synth::Generator;
use callrecords::view::CallDetail;
use callrecords::{import, App, TenantId};
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::StreamExt;
use lambda_http::{Body, Request};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// PUTs measured per case (0: no PUT tables).
    #[arg(long, default_value_t = 300)]
    puts: usize,
    /// PUTs of the same kind before each measured series.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Conversation messages of the large call.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// JSON Lines (`callrecords generate --jsonl`) to analyse the import with, in process.
    #[arg(long)]
    import_file: Option<PathBuf>,
    /// Lines of that file the in-process runs use.
    #[arg(long, default_value_t = 10_000)]
    import_sample: usize,
    /// Requests per kind in the DynamoDB Local probe (0: no probe).
    #[arg(long, default_value_t = 3000)]
    probe_requests: usize,
}

const SEED: &str = include_str!("../../../fixtures/seed-000-get-call.json");
const PUT_EVENT: &str = include_str!("../../../events/put-call.json");
use callrecords_bench::TENANT;

/// `events/put-call.json` as `tests/src/lib.rs`'s `Write` turns it into a PUT of `body` for call `id`.
fn put_event(id: &str, body: &str) -> Request {
    let mut ev: Value = serde_json::from_str(PUT_EVENT).expect("event JSON");
    let path = format!("/api/v1/calls/{id}");
    let route = "PUT /api/v1/calls/{callId}";
    ev["routeKey"] = Value::from(route);
    ev["requestContext"]["routeKey"] = Value::from(route);
    ev["rawPath"] = Value::from(path.clone());
    ev["requestContext"]["http"]["path"] = Value::from(path);
    ev["requestContext"]["http"]["method"] = Value::from("PUT");
    ev["headers"]["authorization"] = Value::from(callrecords_bench::authorization());
    ev["pathParameters"] = serde_json::json!({ "callId": id });
    ev["body"] = Value::from(body);
    ev["headers"]["content-type"] = Value::from("application/json");
    lambda_http::request::from_str(&ev.to_string()).expect("valid event")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// CPU seconds (user + system, every thread) process `pid` has used so far ("self" for this one).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// DynamoDB Local's CPU seconds so far, when the script named its process (`DDB_PID`).
fn ddb_cpu() -> Option<f64> {
    cpu_secs(&std::env::var("DDB_PID").ok()?)
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU used between two readings, as "s" text (blank when unknown).
fn used(before: Option<f64>, after: Option<f64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!("{:.1}", a - b),
        _ => "?".into(),
    }
}

async fn connect(name: &str, now: DateTime<Utc>) -> Result<(App, RequestCounter), Box<dyn std::error::Error>> {
    callrecords_bench::fresh_stack(&format!("bench-writes-{name}"), now).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Each PUT a new call id.
    Create,
    /// The same call, `summary` changed each time: a replace with unchanged content.
    ReplaceSummary,
    /// The same call, its first message changed each time: new content parts, the old ones cleaned up.
    ReplaceContent,
    /// The same body again: nothing written.
    Identical,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Create => "create (new id each)",
            Kind::ReplaceSummary => "replace, `summary` changed (same content)",
            Kind::ReplaceContent => "replace, a message changed (new content)",
            Kind::Identical => "identical body (unchanged)",
        }
    }
}

struct Row {
    call: String,
    case: &'static str,
    bytes: usize,
    statuses: BTreeSet<u16>,
    ms: Vec<f64>,
    requests: Vec<u64>,
    items: Vec<u64>,
}

/// One PUT: status, ETag, milliseconds in the handler, DynamoDB requests and items read.
async fn put(app: &App, counter: &RequestCounter, id: &str, body: &str) -> (u16, String, f64, u64, u64, String) {
    // Building the request is the runtime's work before the handler: outside the clock.
    let request = put_event(id, body);
    let before = counter.snapshot();
    let start = Instant::now();
    let response = write_call::handle(app, request).await.expect("an answer");
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let spent = counter.since(before);
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = match response.into_body() {
        Body::Text(t) => t,
        _ => String::new(),
    };
    (status, etag, ms, spent.requests, spent.items_read, text)
}

async fn series(
    app: &App,
    counter: &RequestCounter,
    call: &str,
    base: &Value,
    kind: Kind,
    args: &Args,
    prefix: &str,
) -> Row {
    let mut body = base.clone();
    let fixed = format!("{prefix}_{}", kind as u8);
    let mut etag = String::new();
    if kind != Kind::Create {
        body["id"] = Value::from(fixed.clone());
        let (status, tag, ..) = put(app, counter, &fixed, &body.to_string()).await;
        assert_eq!(status, 201, "{call}: first PUT of {fixed}");
        etag = tag;
    }
    let mut row = Row {
        call: call.to_owned(),
        case: kind.name(),
        bytes: 0,
        statuses: BTreeSet::new(),
        ms: Vec::new(),
        requests: Vec::new(),
        items: Vec::new(),
    };
    for i in 0..args.warmup + args.puts {
        let id = match kind {
            Kind::Create => format!("{prefix}_c{i:05}"),
            _ => fixed.clone(),
        };
        match kind {
            Kind::Create => body["id"] = Value::from(id.clone()),
            Kind::ReplaceSummary => body["summary"] = Value::from(format!("The customer asked again (revision {i}).")),
            Kind::ReplaceContent => {
                body["messages"][0]["content"] = Value::from(format!("Hello, this is revision {i} of the greeting."))
            }
            Kind::Identical => {}
        }
        let text = body.to_string();
        let (status, tag, ms, requests, items, answer) = put(app, counter, &id, &text).await;
        let want = if kind == Kind::Create { 201 } else { 200 };
        assert_eq!(
            status,
            want,
            "{call}, {}: {}",
            kind.name(),
            &answer[..answer.len().min(500)]
        );
        match kind {
            Kind::Identical => assert_eq!(tag, etag, "an identical PUT keeps the ETag"),
            Kind::ReplaceSummary | Kind::ReplaceContent => assert_ne!(tag, etag, "a replace makes a new ETag"),
            Kind::Create => {}
        }
        etag = tag;
        if i >= args.warmup {
            row.bytes = row.bytes.max(text.len());
            row.statuses.insert(status);
            row.ms.push(ms);
            row.requests.push(requests);
            row.items.push(items);
        }
    }
    row
}

/// A completed inbound call of exactly `messages` conversation messages from the generator (assistant and
/// user turns with word timings, one tool call, latency, costs, events), as get-call's `data`.
fn large_call(tenant: &TenantId, messages: usize, now: DateTime<Utc>) -> Result<Value, Box<dyn std::error::Error>> {
    let start: DateTime<Utc> = "2025-05-01T10:00:00Z".parse()?;
    let mut record = Generator::new(42).call(
        tenant,
        "call_large",
        CallStatus::Completed,
        Direction::Inbound,
        start,
        messages / 2 + 1,
    );
    record.content.messages.truncate(messages);
    assert_eq!(record.content.messages.len(), messages, "not enough generated turns");
    let words: usize = record
        .content
        .messages
        .iter()
        .map(|m| m.words.as_ref().map_or(0, Vec::len))
        .sum();
    let encoded = encode_call(tenant, record.clone())?;
    eprintln!(
        "large call: {messages} messages, {:.1} words each with timings, content compressed to {} B in {} part(s)",
        words as f64 / messages as f64,
        encoded.content_bytes(),
        encoded.chunks.len()
    );
    let state = recording::state(&record.summary, record.recording.as_ref(), Retention::days(30), now);
    Ok(serde_json::to_value(CallDetail::new(record, state, None)?)?)
}

fn min_max(values: &[u64]) -> String {
    let (min, max) = (
        values.iter().min().copied().unwrap_or(0),
        values.iter().max().copied().unwrap_or(0),
    );
    if min == max {
        min.to_string()
    } else {
        format!("{min}–{max}")
    }
}

async fn puts(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let now: DateTime<Utc> = "2025-06-01T00:00:00Z".parse()?;
    let tenant = TenantId::parse(TENANT)?;
    let seed: Value = serde_json::from_str(SEED)?;
    let ordinary = seed["data"].clone();
    let large = large_call(&tenant, args.messages, now)?;
    let large_bytes = large.to_string().len();
    assert!(
        large_bytes < 6_000_000,
        "the large call's body is {large_bytes} B, over the 6,000,000 B limit"
    );
    let (app, counter) = connect("puts", now).await?;
    let ordinary_name = format!(
        "seed 000 ({} messages)",
        ordinary["messages"].as_array().map_or(0, Vec::len)
    );
    let large_name = format!("generated ({} messages)", args.messages);
    let mut rows = Vec::new();
    for (name, base, prefix) in [(&ordinary_name, &ordinary, "call_w"), (&large_name, &large, "call_big")] {
        for kind in [
            Kind::Create,
            Kind::ReplaceSummary,
            Kind::ReplaceContent,
            Kind::Identical,
        ] {
            let started = Instant::now();
            let row = series(&app, &counter, name, base, kind, args, prefix).await;
            eprintln!(
                "{name}, {}: {} PUTs in {:.1} s",
                kind.name(),
                args.warmup + args.puts,
                started.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
    }

    println!(
        "PUT latency through write-call's entry point, in process: {} sequential PUTs per case after {} warm-up \
         (ms from the handler's call to its response; building the request is outside)",
        args.puts, args.warmup
    );
    println!();
    println!("| call | case | body bytes | PUTs | status | ms p50 | ms p99 | ms mean |");
    println!("|---|---|---|---|---|---|---|---|");
    for row in &mut rows {
        row.ms.sort_by(f64::total_cmp);
        let statuses: Vec<String> = row.statuses.iter().map(u16::to_string).collect();
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            row.call,
            row.case,
            row.bytes,
            row.ms.len(),
            statuses.join(","),
            percentile(&row.ms, 0.5),
            percentile(&row.ms, 0.99),
            row.ms.iter().sum::<f64>() / row.ms.len() as f64,
        );
    }
    println!();
    println!("DynamoDB requests per PUT (every attempt the SDK sent, retries included; RequestCounter)");
    println!();
    println!("| call | case | PUTs | requests/PUT | requests/PUT (mean) | items read/PUT |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {} |",
            row.call,
            row.case,
            row.requests.len(),
            min_max(&row.requests),
            row.requests.iter().sum::<u64>() as f64 / row.requests.len() as f64,
            min_max(&row.items),
        );
    }
    println!();
    Ok(())
}

/// One line of the import analysis table.
#[allow(clippy::too_many_arguments)]
fn analysis_row(
    step: &str,
    calls: usize,
    secs: f64,
    requests: Option<u64>,
    client: (Option<f64>, Option<f64>),
    ddb: (Option<f64>, Option<f64>),
) {
    let requests = requests.map_or("–".to_owned(), |r| format!("{:.2}", r as f64 / calls as f64));
    let ddb_cores = match ddb {
        (Some(b), Some(a)) => format!("{:.2}", (a - b) / secs),
        _ => "–".into(),
    };
    let client_cores = match client {
        (Some(b), Some(a)) => format!("{:.2}", (a - b) / secs),
        _ => "?".into(),
    };
    println!(
        "| {step} | {calls} | {secs:.2} | {:.0} | {:.3} | {requests} | {} | {client_cores} | {} | {ddb_cores} | {} |",
        calls as f64 / secs,
        secs * 1000.0 / calls as f64,
        used(client.0, client.1),
        used(ddb.0, ddb.1),
        load_avg(),
    );
}

async fn import_analysis(args: &Args, file: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let tenant = TenantId::parse(TENANT)?;
    let text = std::fs::read_to_string(file)?;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(args.import_sample)
        .collect();
    let n = lines.len();
    let sample: String = lines.iter().flat_map(|l| [*l, "\n"]).collect();
    let mean_bytes = sample.len() / n.max(1);

    println!(
        "Where the import's time goes, in process: the first {n} lines of {} (mean {mean_bytes} B a line); \
         client CPU is this process's, DynamoDB Local's is its JVM's (user + system)",
        file.display()
    );
    println!();
    println!(
        "| step | calls | wall s | calls/s | ms/call | requests/call | client CPU s | client cores | DynamoDB Local CPU s | DynamoDB Local cores | load avg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");

    // Client CPU alone: what import::jsonl does to every line before and inside the writes.
    let (c0, start) = (cpu_secs("self"), Instant::now());
    let records: Vec<CallRecord> = lines
        .iter()
        .map(|l| import::parse_line(&tenant, l, now).map_err(|f| format!("{:?}: {}", f.field, f.why)))
        .collect::<Result<_, _>>()?;
    analysis_row(
        "parse + validate a line (one thread, no I/O)",
        n,
        start.elapsed().as_secs_f64(),
        None,
        (c0, cpu_secs("self")),
        (None, None),
    );
    let (c0, start) = (cpu_secs("self"), Instant::now());
    let mut parts = 0usize;
    let mut empty = 0usize;
    for r in records.iter().cloned() {
        let encoded = encode_call(&tenant, r)?;
        parts += encoded.chunks.len();
        empty += usize::from(encoded.chunks.is_empty());
    }
    analysis_row(
        "encode a call: compress, cut into parts (one thread, no I/O)",
        n,
        start.elapsed().as_secs_f64(),
        None,
        (c0, cpu_secs("self")),
        (None, None),
    );

    for concurrency in [8usize, 32] {
        let (app, counter) = connect(&format!("import-{concurrency}"), now).await?;
        let before = counter.snapshot();
        let (c0, d0, start) = (cpu_secs("self"), ddb_cpu(), Instant::now());
        let report = import::jsonl(&app.store, &tenant, sample.as_bytes(), now, concurrency, |_| {}).await?;
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(report.calls as usize, n, "every line imported");
        analysis_row(
            &format!("import::jsonl (what `callrecords import` runs), concurrency {concurrency}"),
            n,
            secs,
            Some(counter.since(before).requests),
            (c0, cpu_secs("self")),
            (d0, ddb_cpu()),
        );
    }
    for concurrency in [8usize, 32] {
        let (app, counter) = connect(&format!("writes-{concurrency}"), now).await?;
        let batch = records.clone();
        let before = counter.snapshot();
        let (c0, d0, start) = (cpu_secs("self"), ddb_cpu(), Instant::now());
        app.store.put_calls(&tenant, batch, concurrency, now).await?;
        analysis_row(
            &format!("writes alone (parsed calls, one batch), concurrency {concurrency}"),
            n,
            start.elapsed().as_secs_f64(),
            Some(counter.since(before).requests),
            (c0, cpu_secs("self")),
            (d0, ddb_cpu()),
        );
    }
    println!();
    println!(
        "{} of {n} calls have no content (no BatchWriteItem for them); {:.2} content parts per call",
        empty,
        parts as f64 / n as f64
    );
    println!();
    if args.probe_requests > 0 {
        probe(args.probe_requests, now).await?;
    }
    Ok(())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn item(pk: String, sk: &str, bytes: usize) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (layout::PK.to_owned(), s(pk)),
        (layout::SK.to_owned(), s(sk)),
        (
            "d".to_owned(),
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![7u8; bytes])),
        ),
    ])
}

/// What DynamoDB Local serves of each request kind an import sends, on its own, `concurrency` in flight:
/// requests/s and its CPU per request. Items about the size of a generated call's summary and content part.
async fn probe(requests: usize, now: DateTime<Utc>) -> Result<(), Box<dyn std::error::Error>> {
    println!("DynamoDB Local alone: {requests} requests of each kind, items of 2 KB (summary) and 3 KB (content part)");
    println!();
    println!("| request | in flight | requests/s | ms/request (mean) | DynamoDB Local CPU ms/request | DynamoDB Local cores | client cores |");
    println!("|---|---|---|---|---|---|---|");
    let (app, _) = connect("probe", now).await?;
    let client = app.store.client().clone();
    let table = app.store.table().to_owned();
    for concurrency in [1usize, 8, 32] {
        for kind in [
            "GetItem (consistent)",
            "BatchWriteItem (1 item)",
            "PutItem (conditional, no transaction)",
            "TransactWriteItems (Put + ConditionCheck)",
        ] {
            let (c0, d0, start) = (cpu_secs("self"), ddb_cpu(), Instant::now());
            let latencies: Vec<f64> = futures::stream::iter(0..requests)
                .map(|i| {
                    let (client, table) = (client.clone(), table.clone());
                    async move {
                        let pk = format!("probe#{concurrency}#{i}");
                        let t = Instant::now();
                        match kind {
                            "GetItem (consistent)" => {
                                client
                                    .get_item()
                                    .table_name(&table)
                                    .set_key(Some(HashMap::from([
                                        (layout::PK.to_owned(), s(pk)),
                                        (layout::SK.to_owned(), s("A")),
                                    ])))
                                    .consistent_read(true)
                                    .send()
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| format!("{e:?}"))?;
                            }
                            "BatchWriteItem (1 item)" => {
                                let put = PutRequest::builder().set_item(Some(item(pk, "P#v#0", 3000))).build()?;
                                client
                                    .batch_write_item()
                                    .request_items(&table, vec![WriteRequest::builder().put_request(put).build()])
                                    .send()
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| format!("{e:?}"))?;
                            }
                            "PutItem (conditional, no transaction)" => {
                                client
                                    .put_item()
                                    .table_name(&table)
                                    .set_item(Some(item(pk, "B", 2000)))
                                    .condition_expression("attribute_not_exists(#pk)")
                                    .expression_attribute_names("#pk", layout::PK)
                                    .send()
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| format!("{e:?}"))?;
                            }
                            _ => {
                                // The content part the BatchWriteItem run wrote, checked as a commit checks it.
                                let part = format!("probe#{concurrency}#{i}");
                                let put = Put::builder()
                                    .table_name(&table)
                                    .set_item(Some(item(pk, "A", 2000)))
                                    .condition_expression("attribute_not_exists(#pk)")
                                    .expression_attribute_names("#pk", layout::PK)
                                    .build()?;
                                let check = ConditionCheck::builder()
                                    .table_name(&table)
                                    .set_key(Some(HashMap::from([
                                        (layout::PK.to_owned(), s(part)),
                                        (layout::SK.to_owned(), s("P#v#0")),
                                    ])))
                                    .condition_expression("attribute_exists(#pk)")
                                    .expression_attribute_names("#pk", layout::PK)
                                    .build()?;
                                client
                                    .transact_write_items()
                                    .transact_items(TransactWriteItem::builder().put(put).build())
                                    .transact_items(TransactWriteItem::builder().condition_check(check).build())
                                    .send()
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| format!("{e:?}"))?;
                            }
                        }
                        Ok::<f64, Box<dyn std::error::Error>>(t.elapsed().as_secs_f64() * 1000.0)
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            let secs = start.elapsed().as_secs_f64();
            let (c1, d1) = (cpu_secs("self"), ddb_cpu());
            let ddb = match (d0, d1) {
                (Some(b), Some(a)) => (
                    format!("{:.2}", (a - b) * 1000.0 / requests as f64),
                    format!("{:.2}", (a - b) / secs),
                ),
                _ => ("–".into(), "–".into()),
            };
            let client_cores = match (c0, c1) {
                (Some(b), Some(a)) => format!("{:.2}", (a - b) / secs),
                _ => "?".into(),
            };
            println!(
                "| {kind} | {concurrency} | {:.0} | {:.2} | {} | {} | {client_cores} |",
                requests as f64 / secs,
                latencies.iter().sum::<f64>() / latencies.len() as f64,
                ddb.0,
                ddb.1,
            );
        }
    }
    println!();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.puts > 0 {
        puts(&args).await?;
    }
    if let Some(file) = &args.import_file {
        import_analysis(&args, file).await?;
    }
    Ok(())
}
