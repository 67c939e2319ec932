//! The recording-expiry sweep: finds recordings whose retention has ended through the live-recordings index
//! (no Scan: the work follows the number of due recordings, not the table size), deletes each object, then
//! marks the call's recording expired.
//!
//! Safe by construction:
//! - Never early: the index bound selects recordings made at least `retention` ago, and each one is checked
//!   again against the time in its own index key before anything is deleted.
//! - Never half-done: a call is marked expired only after its object's delete succeeded (a delete of an
//!   object that is already gone succeeds), and the mark is conditional on the call still holding that
//!   recording. A failed delete leaves the call as it was, still in the index, for the next run.
//! - Safe to overlap: two runs may both delete (idempotent); one of them marks, the other's conditional
//!   update finds it done and counts it as `alreadyExpired`, not as a failure.
//! - Safe to cut off: it stops taking new work before the deadline; whatever is left stays in the index.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::recording::{Retention, S3Recordings};
use crate::store::dynamo::DueRecording;
use crate::store::{layout, DynamoStore};

/// Due recordings asked for per Query.
const PAGE: i32 = 100;

#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Count what is due, change nothing.
    pub dry_run: bool,
    /// Stop after this many due recordings (all when `None`).
    pub limit: Option<u64>,
    /// Take no new work after this instant.
    pub stop_at: Instant,
    /// Recordings handled at once.
    pub concurrency: usize,
}

impl SweepOptions {
    pub fn until(stop_at: Instant) -> Self {
        SweepOptions {
            dry_run: false,
            limit: None,
            stop_at,
            concurrency: 8,
        }
    }
}

/// What one run did; logged as one structured line and returned to the invoker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Due recordings met.
    pub found: u64,
    /// Objects deleted (or found already gone).
    pub deleted: u64,
    /// Calls marked expired by this run.
    pub marked: u64,
    /// Calls another run (or a rewrite) had already taken care of.
    pub already_expired: u64,
    /// Recordings whose delete or mark failed; they stay due for the next run.
    pub failed: u64,
    /// Index pages that could not be read.
    pub query_errors: u64,
    pub dry_run: bool,
    /// False when the run stopped early (deadline, limit, query errors): the next run goes on.
    pub complete: bool,
}

#[derive(Default)]
struct Counts {
    found: AtomicU64,
    deleted: AtomicU64,
    marked: AtomicU64,
    already: AtomicU64,
    failed: AtomicU64,
}

/// Whole seconds of `t`, rounded down.
fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

pub async fn sweep(
    store: &DynamoStore,
    recordings: &S3Recordings,
    retention: Retention,
    now: DateTime<Utc>,
    options: &SweepOptions,
) -> SweepReport {
    // Index times are rounded up to the second, so "made ≤ cutoff" is "gsi2sk < cutoff (rounded down) + 1 s".
    let cutoff = now - retention.as_chrono();
    let bound = layout::recording_time(floor_second(cutoff) + chrono::Duration::seconds(1));
    let counts = Counts::default();
    let mut report = SweepReport {
        dry_run: options.dry_run,
        complete: true,
        ..SweepReport::default()
    };
    let out_of_time = || Instant::now() >= options.stop_at;
    let limit_reached = || options.limit.is_some_and(|l| counts.found.load(Ordering::SeqCst) >= l);

    'shards: for shard in 0..layout::RECORDING_SHARDS {
        let mut start = None;
        loop {
            if out_of_time() || limit_reached() {
                report.complete = false;
                break 'shards;
            }
            let page = match store.due_recordings(shard, &bound, start.take(), PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(shard, error = %e, "recording-expiry: index page unreadable");
                    report.query_errors += 1;
                    report.complete = false;
                    continue 'shards;
                }
            };
            let due = page.due.into_iter().filter(|d| {
                // The index bound already says so; check the recording's own time once more before deleting.
                let ripe = d.made_at + retention.as_chrono() <= now;
                if !ripe {
                    tracing::error!(pk = %d.pk, "recording-expiry: index returned a recording inside retention");
                }
                ripe
            });
            let counts = &counts;
            stream::iter(due)
                .for_each_concurrent(options.concurrency.max(1), move |d| async move {
                    if out_of_time() || limit_reached() {
                        return;
                    }
                    counts.found.fetch_add(1, Ordering::SeqCst);
                    if !options.dry_run {
                        expire_one(store, recordings, &d, counts).await;
                    }
                })
                .await;
            match page.next {
                // In a dry run nothing leaves the index, so paging on is the only way forward; otherwise
                // handled items have left it and the next page starts after the last key read.
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    report.found = counts.found.into_inner();
    report.deleted = counts.deleted.into_inner();
    report.marked = counts.marked.into_inner();
    report.already_expired = counts.already.into_inner();
    report.failed = counts.failed.into_inner();
    if report.failed > 0 {
        report.complete = false;
    }
    report
}

async fn expire_one(store: &DynamoStore, recordings: &S3Recordings, due: &DueRecording, counts: &Counts) {
    if let Some(key) = &due.object_key {
        // S3 answers a delete of a missing object with success: "already gone" needs no special case.
        if let Err(e) = recordings
            .client()
            .delete_object()
            .bucket(recordings.bucket())
            .key(key)
            .send()
            .await
        {
            counts.failed.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(pk = %due.pk, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "recording-expiry: delete failed");
            return;
        }
    }
    counts.deleted.fetch_add(1, Ordering::SeqCst);
    match store.mark_recording_expired(due).await {
        Ok(true) => {
            counts.marked.fetch_add(1, Ordering::SeqCst);
        }
        Ok(false) => {
            counts.already.fetch_add(1, Ordering::SeqCst);
        }
        Err(e) => {
            counts.failed.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(pk = %due.pk, error = %e, "recording-expiry: mark failed");
        }
    }
}

/// How long before the Lambda deadline a run stops taking new work: enough for the recordings in flight.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
