//! Recording-expiry sweep benchmark: loads a tenant with N calls of which M have recordings past retention
//! (the rest: recordings still inside retention, or none), then runs one sweep and prints its throughput
//! and what it read. Run with `scripts/bench-expiry`, which starts the emulators.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use callrecords::expiry::{self, SweepOptions};
use callrecords::model::{CallRecord, RecordingStatus, StoredRecording};
use callrecords::recording::object_key;
use callrecords::{validate, CallId, TenantId};
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::StreamExt;

#[derive(Parser)]
struct Args {
    /// Table sizes to run, each a fresh table (calls in one tenant).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    calls: Vec<usize>,
    /// Recordings past retention in each.
    #[arg(long, default_value_t = 1000)]
    expiring: usize,
}

const SEED: &str = include_str!("../../../fixtures/seed-000-get-call.json");

fn call(tenant: &TenantId, base: &CallRecord, i: usize, made: DateTime<Utc>, recording: bool) -> CallRecord {
    let mut c = base.clone();
    let id = format!("call_{i:07}");
    c.summary.id = id.clone();
    c.summary.created_at = made;
    c.summary.start_time = Some(made);
    c.summary.end_time = Some(made);
    c.content = Default::default();
    c.recording = recording.then(|| StoredRecording {
        status: RecordingStatus::Completed,
        format: Some("m4a".into()),
        duration: Some(330.0),
        key: Some(object_key(tenant, &CallId::parse(&id).expect("valid id"), made, "m4a")),
        recorded_at: Some(made),
        failure_reason: None,
    });
    c
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let now: DateTime<Utc> = "2025-06-01T00:00:00Z".parse()?;
    let tenant = TenantId::parse("bench")?;
    let seed: serde_json::Value = serde_json::from_str(SEED)?;
    let base = validate::call(&tenant, &seed["data"], None, now)?;
    println!(
        "| calls in table | due | load s | sweep s | found | deleted | marked | failed | requests | items read | recordings expired/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (run, &total) in args.calls.iter().enumerate() {
        let (app, counter) = callrecords_bench::fresh_stack(&format!("bench-expiry-{run}"), now).await?;

        let load = Instant::now();
        let due = args.expiring.min(total);
        let mut records = Vec::with_capacity(total);
        for i in 0..total {
            let record = if i < due {
                call(
                    &tenant,
                    &base,
                    i,
                    now - chrono::Duration::days(31 + (i % 20) as i64),
                    true,
                )
            } else if i % 2 == 0 {
                call(&tenant, &base, i, now - chrono::Duration::days((i % 29) as i64), true)
            } else {
                call(&tenant, &base, i, now - chrono::Duration::days((i % 200) as i64), false)
            };
            records.push(record);
        }
        let keys: Vec<String> = records[..due]
            .iter()
            .filter_map(|r| r.recording.as_ref()?.key.clone())
            .collect();
        let uploads = futures::stream::iter(keys)
            .map(|key| {
                app.recordings
                    .client()
                    .put_object()
                    .bucket(app.recordings.bucket())
                    .key(key)
                    .body(ByteStream::from_static(b"audio"))
                    .send()
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        for u in uploads {
            u?;
        }
        app.store.put_calls(&tenant, records, 8, app.clock.now()).await?;
        let load_secs = load.elapsed().as_secs_f64();

        let before = counter.snapshot();
        let start = Instant::now();
        let options = SweepOptions::until(Instant::now() + Duration::from_secs(3600));
        let report = expiry::sweep(&app.store, &app.recordings, app.config.retention, now, &options).await;
        let secs = start.elapsed().as_secs_f64();
        let used = counter.since(before);
        println!(
            "| {total} | {due} | {load_secs:.1} | {secs:.2} | {} | {} | {} | {} | {} | {} | {:.0} |",
            report.found,
            report.deleted,
            report.marked,
            report.failed,
            used.requests,
            used.items_read,
            report.marked as f64 / secs
        );
    }
    Ok(())
}
