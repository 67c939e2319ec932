//! Handler CPU of get-call without I/O (criterion): what one request costs apart from DynamoDB and the
//! network, for a 10-message and a 2,000-message call. The product target is under 5 ms for 2,000 messages.
//!
//! - `decode`: the items of a call's partition, exactly as the store writes them (the summary item and the
//!   compressed content parts), to the stored call: [`decode_call`], what `DynamoStore::get_call` runs on
//!   what its Query returns.
//! - `encode`: the stored call to the response body: [`view::call_detail`] (recording state and a presigned
//!   link, signed locally with static credentials) and the success envelope of [`http::ok`].
//! - `handler`: both, one after the other.
//!
//! `cargo bench -p callrecords-bench --bench codec`; estimates land in
//! `target/criterion/<group>/<N>_messages/new/estimates.json`.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use callrecords::model::{CallRecord, CallStatus, Direction, Role};
use callrecords::recording::Retention;
use callrecords::store::codec::{decode_call, encode_call, token, Commit, Fetched, Item};
use callrecords::store::{S3Recordings, StoredCall};
use callrecords::synth::Generator;
use callrecords::{http, view, CallId, TenantId};
use chrono::{DateTime, Utc};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode};
use lambda_http::{Body, Response};
use tokio::runtime::Runtime;

/// Conversation messages of the calls measured.
const SIZES: [usize; 2] = [10, 2000];

/// A tool call after every fourth exchange, as the generator places its one tool call after the second.
const SPOKEN_PER_TOOL_CALL: usize = 8;

const SEED: u64 = 42;

fn tenant() -> TenantId {
    TenantId::parse("acme").expect("valid tenant")
}

/// A completed inbound call of exactly `messages` conversation messages: the generator's call (assistant and
/// user turns with word timings, latency, costs, events, a completed WAV recording), with a tool call (name,
/// arguments, result) after every fourth exchange. Deterministic.
fn call_with(messages: usize) -> CallRecord {
    let start: DateTime<Utc> = "2025-01-15T10:30:00Z".parse().expect("time");
    let id = format!("call_bench_{messages}");
    // One exchange per two messages, and a spare: more spoken messages than `messages` needs.
    let mut call = Generator::new(SEED).call(
        &tenant(),
        &id,
        CallStatus::Completed,
        Direction::Inbound,
        start,
        messages / 2 + 1,
    );
    let tool = call
        .content
        .messages
        .iter()
        .find(|m| m.role == Role::Tool)
        .cloned()
        .expect("generated calls make a tool call");
    let spoken: Vec<_> = call
        .content
        .messages
        .drain(..)
        .filter(|m| m.role != Role::Tool)
        .collect();
    let mut out = Vec::with_capacity(messages);
    for (n, said) in spoken.into_iter().enumerate() {
        if out.len() == messages {
            break;
        }
        let after = (
            said.timestamp + chrono::Duration::milliseconds((said.duration.unwrap_or(0.0) * 1000.0) as i64),
            said.end_offset,
        );
        out.push(said);
        if (n + 1) % SPOKEN_PER_TOOL_CALL == 4 && out.len() < messages {
            let mut call = tool.clone();
            (call.timestamp, call.start_offset) = after;
            out.push(call);
        }
    }
    assert_eq!(out.len(), messages, "not enough generated turns");
    for (i, m) in out.iter_mut().enumerate() {
        m.id = format!("msg_{:05}", i + 1);
    }
    call.content.messages = out;
    call.normalised()
}

/// The recordings bucket as the app wires it (`callrecords::aws::s3` from an SDK config), with static
/// credentials: presigning signs locally and sends nothing.
fn recordings() -> S3Recordings {
    let credentials = Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "bench",
    );
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    S3Recordings::new(
        callrecords::aws::s3(&sdk, false),
        "callrecords-recordings-123456789012",
        sdk.credentials_provider(),
    )
}

/// One call as the benchmarks see it: the stored call, its items, and the moment of the request.
struct Case {
    name: String,
    id: CallId,
    record: CallRecord,
    /// What `decode` returns for `items`, for the `encode` group.
    stored: Option<StoredCall>,
    items: Vec<Item>,
    /// Ten minutes after the call ended: the recording is live and a one-hour link is made.
    now: DateTime<Utc>,
}

const RETENTION: Retention = Retention::days(30);

fn decode(case: &Case, items: Vec<Item>) -> StoredCall {
    match decode_call(&case.id, items).expect("decode") {
        Fetched::Whole(stored) => *stored,
        _ => panic!("{}: not a whole call", case.name),
    }
}

async fn encode(call: StoredCall, now: DateTime<Utc>, recordings: &S3Recordings) -> Response<Body> {
    let detail = view::call_detail(call, RETENTION, now, recordings)
        .await
        .expect("call detail");
    http::ok(&detail)
}

fn body_len(response: &Response<Body>) -> usize {
    match response.body() {
        Body::Text(text) => text.len(),
        Body::Binary(bytes) => bytes.len(),
        _ => 0,
    }
}

fn cases(rt: &Runtime, recordings: &S3Recordings) -> Vec<Case> {
    SIZES
        .iter()
        .map(|&messages| {
            let record = call_with(messages);
            let id = CallId::parse(&record.summary.id).expect("call id");
            let encoded = encode_call(&tenant(), record.clone()).expect("encode");
            let (content_bytes, parts) = (encoded.content_bytes(), encoded.chunks.len());
            let commit = Commit {
                version: token().expect("random"),
                revision: token().expect("random"),
                cleanup: None,
            };
            let items = encoded.items(&commit).expect("items");
            let now = record.summary.end_time.expect("ended") + chrono::Duration::minutes(10);
            let mut case = Case {
                name: format!("{messages}_messages"),
                id,
                record,
                stored: None,
                items,
                now,
            };
            // The measured paths do what they should: the call comes back whole and the link is there.
            let stored = decode(&case, case.items.clone());
            assert_eq!(
                stored.clone().into_record().expect("content"),
                case.record,
                "round trip"
            );
            case.stored = Some(stored.clone());
            let response = rt.block_on(encode(stored, now, recordings));
            let body: serde_json::Value = match response.body() {
                Body::Text(text) => serde_json::from_str(text).expect("JSON body"),
                _ => panic!("text body expected"),
            };
            assert!(body["data"]["recordingUrl"]
                .as_str()
                .is_some_and(|u| u.contains("X-Amz-Signature=")));
            let content_json = serde_json::to_vec(&case.record.content).expect("content JSON").len();
            let tools = case
                .record
                .content
                .messages
                .iter()
                .filter(|m| m.role == Role::Tool)
                .count();
            println!(
                "{}: {tools} tool calls; content JSON {content_json} B, compressed {content_bytes} B in {parts} part \
                 item(s); response body {} B",
                case.name,
                body_len(&response)
            );
            case
        })
        .collect()
}

/// Flat sampling for the milliseconds-long cases: the same iterations in every sample, so 50 samples fit in
/// the measurement time (linear sampling would need 1,275 iterations).
fn sampling(group: &mut BenchmarkGroup<'_, WallTime>, case: &Case) {
    let long = case.record.content.messages.len() >= 1000;
    group.sampling_mode(if long { SamplingMode::Flat } else { SamplingMode::Auto });
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let recordings = recordings();
    let cases = cases(&rt, &recordings);

    let mut group = c.benchmark_group("decode");
    for case in &cases {
        sampling(&mut group, case);
        group.bench_function(&case.name, |b| {
            b.iter_batched(
                || case.items.clone(),
                |items| decode(case, items),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("encode");
    for case in &cases {
        sampling(&mut group, case);
        group.bench_function(&case.name, |b| {
            b.to_async(&rt).iter_batched(
                || case.stored.clone().expect("decoded in set-up"),
                |stored| encode(stored, case.now, &recordings),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("handler");
    for case in &cases {
        sampling(&mut group, case);
        group.bench_function(&case.name, |b| {
            b.to_async(&rt).iter_batched(
                || case.items.clone(),
                |items| encode(decode(case, items), case.now, &recordings),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = codec;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(codec);
