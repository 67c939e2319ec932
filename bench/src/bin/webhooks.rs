//! Webhook benchmark (figures, not a test), in process against DynamoDB Local and the moto emulator (S3
//! and the capture queue), through the functions' entry points:
//! 1. delivery → stored: p50/p99 and DynamoDB requests of a signed delivery through the webhook function,
//!    for Vapi's end-of-call-report of a new call (its recording queued for capture), the same delivery
//!    again (unchanged), and Retell's three events of one call in order;
//! 2. the capture worker's copy: a WAV served from a loopback HTTP server, fetched, streamed into the
//!    bucket (in 8 MiB parts above that size) through the worker's entry point; MiB/s per size.
//!
//! Run with `scripts/bench-webhooks`. DynamoDB Local and moto on this machine, not AWS: compare cases with
//! each other, not with production.

use std::sync::Arc;
use std::time::Instant;

use callrecords::capture::{CaptureJob, Fetcher};
use callrecords::webhook::endpoint::WebhookEndpoint;
use callrecords::webhook::{signature, Provider};
use callrecords::{App, TenantId};
use clap::Parser;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Args {
    /// Deliveries measured per case.
    #[arg(long, default_value_t = 300)]
    deliveries: usize,
    /// Deliveries before each measured series.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Sizes of the copied recordings, MiB (comma separated).
    #[arg(long, default_value = "1,32,256", value_delimiter = ',')]
    copy_mib: Vec<u64>,
    /// Copies per size.
    #[arg(long, default_value_t = 3)]
    copies: usize,
}

const VAPI_REPORT: &str = include_str!("../../../fixtures/webhooks/vapi/end-of-call-report.json");
const RETELL: [&str; 3] = [
    include_str!("../../../fixtures/webhooks/retell/call_started.json"),
    include_str!("../../../fixtures/webhooks/retell/call_ended.json"),
    include_str!("../../../fixtures/webhooks/retell/call_analyzed.json"),
];
const EVENT: &str = include_str!("../../../events/webhook-vapi.json");
const SECRET: &str = "whsec_benchmark_secret";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A signed delivery of `body` to `endpoint`, as API Gateway hands it to the function.
fn delivery(app: &App, endpoint: &WebhookEndpoint, body: &str) -> lambda_http::Request {
    let (name, value) = signature::sign(endpoint.provider, SECRET.as_bytes(), body.as_bytes(), app.clock.now());
    let mut ev: Value = serde_json::from_str(EVENT).expect("event JSON");
    let path = endpoint.path();
    ev["rawPath"] = Value::from(path.clone());
    ev["requestContext"]["http"]["path"] = Value::from(path);
    ev["pathParameters"] =
        serde_json::json!({"provider": endpoint.provider.as_str(), "endpointId": endpoint.endpoint_id});
    ev["headers"] = serde_json::json!({"content-type": "application/json", name: value});
    ev["body"] = Value::from(body);
    lambda_http::request::from_str(&ev.to_string()).expect("valid event")
}

struct Series {
    case: &'static str,
    ms: Vec<f64>,
    requests: Vec<u64>,
    outcomes: std::collections::BTreeSet<String>,
}

impl Series {
    fn new(case: &'static str) -> Self {
        Series {
            case,
            ms: Vec::new(),
            requests: Vec::new(),
            outcomes: Default::default(),
        }
    }

    fn print(&mut self) {
        self.ms.sort_by(f64::total_cmp);
        self.requests.sort_unstable();
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} |",
            self.case,
            self.ms.len(),
            percentile(&self.ms, 0.5),
            percentile(&self.ms, 0.99),
            self.requests[self.requests.len() / 2],
            self.outcomes.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}

async fn send(
    app: &App,
    counter: &callrecords::store::metrics::RequestCounter,
    req: lambda_http::Request,
    s: Option<&mut Series>,
) {
    let before = counter.snapshot();
    let started = Instant::now();
    let response = webhook::handle(app, req).await.expect("the function answers");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let body: Value = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    assert_eq!(status, 200, "{body}");
    if let Some(s) = s {
        s.ms.push(ms);
        s.requests.push(counter.since(before).requests);
        s.outcomes
            .insert(body["data"]["outcome"].as_str().unwrap_or("?").to_owned());
    }
}

/// `text` with every occurrence of `from` replaced by `to` (a call id made new).
fn with_id(text: &str, from: &str, to: &str) -> String {
    text.replace(from, to)
}

async fn deliveries(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let now = chrono::Utc::now();
    let (mut app, counter) = callrecords_bench::fresh_stack("bench-hooks", now).await?;
    let queue = app
        .capture_queue
        .client()
        .create_queue()
        .queue_name(format!("bench-capture-{}", std::process::id()))
        .send()
        .await?
        .queue_url
        .ok_or("no queue url")?;
    app.config.capture.queue_url = Some(queue.clone());
    app.config.capture.hosts = [
        vec!["dxc03zgurdly9.cloudfront.net".into()],
        vec!["storage.vapi.ai".into()],
        vec![],
    ];
    app.capture_queue = callrecords::store::queue::CaptureQueue::new(app.capture_queue.client().clone(), Some(queue));
    let tenant = TenantId::parse("bench")?;
    let vapi = WebhookEndpoint::new(&tenant, Provider::Vapi, SECRET.into(), now)?;
    let retell = WebhookEndpoint::new(&tenant, Provider::Retell, SECRET.into(), now)?;
    app.store.put_endpoint(&vapi).await?;
    app.store.put_endpoint(&retell).await?;

    let report: Value = serde_json::from_str(VAPI_REPORT)?;
    let vapi_id = report["message"]["call"]["id"].as_str().ok_or("vapi id")?.to_owned();
    let started: Value = serde_json::from_str(RETELL[0])?;
    let retell_id = started["call"]["call_id"].as_str().ok_or("retell id")?.to_owned();

    let mut created = Series::new("Vapi end-of-call-report, a new call (recording queued)");
    let mut again = Series::new("the same delivery again (unchanged)");
    let mut stages = [
        Series::new("Retell call_started (new call)"),
        Series::new("Retell call_ended (after call_started)"),
        Series::new("Retell call_analyzed (after call_ended)"),
    ];
    for i in 0..(args.warmup + args.deliveries) {
        let measured = i >= args.warmup;
        let body = with_id(VAPI_REPORT, &vapi_id, &format!("{vapi_id}-{i}"));
        send(
            &app,
            &counter,
            delivery(&app, &vapi, &body),
            measured.then_some(&mut created),
        )
        .await;
        send(
            &app,
            &counter,
            delivery(&app, &vapi, &body),
            measured.then_some(&mut again),
        )
        .await;
        for (stage, text) in stages.iter_mut().zip(RETELL) {
            let body = with_id(text, &retell_id, &format!("{retell_id}{i}"));
            send(
                &app,
                &counter,
                delivery(&app, &retell, &body),
                measured.then_some(stage),
            )
            .await;
        }
    }
    println!("\n### Delivery → stored (webhook function's entry point)\n");
    println!("| case | deliveries | p50 ms | p99 ms | DynamoDB requests (median) | outcome |");
    println!("|---|---|---|---|---|---|");
    created.print();
    again.print();
    for s in &mut stages {
        s.print();
    }
    Ok(())
}

/// Serves `bytes` to every GET on 127.0.0.1, in 64 KiB writes; answers the port.
async fn serve(bytes: Arc<Vec<u8>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    bytes.len()
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for chunk in bytes.chunks(64 * 1024) {
                    if socket.write_all(chunk).await.is_err() {
                        return;
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

async fn copies(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let report: Value = serde_json::from_str(VAPI_REPORT)?;
    // An hour after the fixture's call, so its recording is well inside retention.
    let made: chrono::DateTime<chrono::Utc> = report["message"]["call"]["createdAt"]
        .as_str()
        .ok_or("createdAt")?
        .parse()?;
    let now = made + chrono::Duration::hours(1);
    let (mut app, _) = callrecords_bench::fresh_stack("bench-copy", now).await?;
    app.config.capture.allow_loopback_http = true;
    app.config.capture.hosts = [vec![], vec!["127.0.0.1".into()], vec![]];
    app.config.capture.max_bytes = 2 * 1024 * 1024 * 1024;
    app.config.capture.timeout = std::time::Duration::from_secs(600);
    let fetcher = Fetcher::new(&app.config.capture)?;
    let tenant = TenantId::parse("bench")?;
    let vapi = WebhookEndpoint::new(&tenant, Provider::Vapi, SECRET.into(), now)?;
    app.store.put_endpoint(&vapi).await?;
    let vapi_id = report["message"]["call"]["id"].as_str().ok_or("vapi id")?.to_owned();
    println!("\n### The capture worker's copy (loopback HTTP → moto S3)\n");
    println!("| size MiB | copies | seconds (median) | MiB/s (median) |");
    println!("|---|---|---|---|");
    for (n, mib) in args.copy_mib.iter().enumerate() {
        // 8 kHz 16-bit mono: 16,000 bytes a second.
        let frames = u32::try_from(mib * 1024 * 1024 / 2).map_err(|_| "too large")?;
        let wav = Arc::new(callrecords::synth::wav(frames));
        let port = serve(wav.clone()).await;
        let mut secs = Vec::new();
        for c in 0..args.copies {
            let id = format!("{vapi_id}-copy-{n}-{c}");
            // The call first, as a delivery leaves it (recording pending), then the worker's job.
            let body = with_id(VAPI_REPORT, &vapi_id, &id);
            let response = webhook::handle(&app, delivery(&app, &vapi, &body))
                .await
                .expect("answer");
            assert_eq!(response.status().as_u16(), 200);
            let job = CaptureJob {
                tenant: tenant.as_str().to_owned(),
                call_id: format!("vapi:{id}"),
                provider: Provider::Vapi,
                url: format!("http://127.0.0.1:{port}/r.wav"),
            };
            let started = Instant::now();
            let done = app.capture(&fetcher, &job, 1).await?;
            secs.push(started.elapsed().as_secs_f64());
            assert!(
                matches!(done, callrecords::capture::Captured::Stored { .. }),
                "{done:?}"
            );
        }
        secs.sort_by(f64::total_cmp);
        let median = secs[secs.len() / 2];
        println!("| {mib} | {} | {median:.2} | {:.0} |", secs.len(), *mib as f64 / median);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    deliveries(&args).await?;
    copies(&args).await?;
    Ok(())
}
