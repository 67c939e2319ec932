//! The hourly job: recordings past retention, and content that writes replaced.
//!
//! Recordings. The job finds recordings whose retention has ended through the live-recordings index (no
//! Scan: the work follows the number of due recordings, not the table size). For each, in this order:
//! 1. mark the call's recording `expired`, on condition that the call still holds that recording (its
//!    index key unchanged);
//! 2. delete the object (a delete of an object that is already gone succeeds);
//! 3. take the call out of the index, on the same condition.
//!
//! Why this order: the mark comes first so that a call rewritten after it was found (a new recording, a
//! later end that moves retention) fails the condition and nothing is deleted; a write never turns an
//! expired recording back into a live one under the same object key (the store keeps it expired), so
//! once marked, the object can only be the expired one. A failed delete leaves the call in the index,
//! marked, for the next run; an overlapping run repeats each step harmlessly and counts what the other did
//! as `alreadyExpired`. Never early: the index bound selects recordings made at least `retention` ago, and
//! each is checked again against the time in its own index key first. Safe to cut off: it stops taking new
//! work before the deadline; whatever is left stays in the index.
//!
//! Replaced content. A write that replaces a call's content deletes the old parts itself; if it stopped
//! before that, the call sits in the clean-up index, and the job finishes the clean-up for calls that
//! entered it more than [`CLEANUP_AFTER`] ago (longer than any write takes), under the same conditions
//! the writer uses (see [`crate::store::calls`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::recording::Retention;
use crate::store::{layout, DueRecording, DynamoStore, S3Recordings};

/// Index rows asked for per Query.
const PAGE: i32 = 100;

/// How long a call sits in the clean-up index before the job cleans it up instead of its writer.
pub const CLEANUP_AFTER: chrono::Duration = chrono::Duration::minutes(15);

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
    /// Calls another run had already taken care of, or that were rewritten since they were found (left as
    /// they are).
    pub already_expired: u64,
    /// Recordings whose mark, delete or index removal failed; they stay due for the next run.
    pub failed: u64,
    /// Index pages that could not be read.
    pub query_errors: u64,
    /// Index rows that could not be read (written by hand or by an older version), skipped.
    pub unreadable: u64,
    /// Calls whose replaced content this run removed, and the parts it deleted.
    pub stale_calls: u64,
    pub stale_parts: u64,
    pub dry_run: bool,
    /// False when the run stopped early (deadline, limit, query errors): the next run goes on.
    pub complete: bool,
}

#[derive(Default)]
struct Counts {
    found: AtomicU64,
    marked: AtomicU64,
    already: AtomicU64,
    failed: AtomicU64,
}

/// What happened to one due recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Marked, object deleted, out of the index.
    Done,
    /// The call no longer holds this recording, or another run finished it: nothing deleted.
    Skipped,
    /// A step failed; the call stays due.
    Failed,
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
    let cutoff = now
        .checked_sub_signed(retention.as_chrono())
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let bound = floor_second(cutoff)
        .checked_add_signed(chrono::Duration::seconds(1))
        .unwrap_or(cutoff);
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
            let page = match store.due_recordings(shard, bound, start.take(), PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(shard, error = %e, "recording-expiry: index page unreadable");
                    report.query_errors += 1;
                    report.complete = false;
                    continue 'shards;
                }
            };
            report.unreadable += page.unreadable;
            let due = page.due.into_iter().filter(|d| {
                // The index bound already says so; check the recording's own time once more before deleting.
                let ripe = d
                    .made_at
                    .checked_add_signed(retention.as_chrono())
                    .is_some_and(|end| end <= now);
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
                        let counter = match expire(store, recordings, &d).await {
                            Expired::Done => &counts.marked,
                            Expired::Skipped => &counts.already,
                            Expired::Failed => &counts.failed,
                        };
                        counter.fetch_add(1, Ordering::SeqCst);
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
    // A recording is counted as deleted once all three steps are done.
    report.marked = counts.marked.into_inner();
    report.deleted = report.marked;
    report.already_expired = counts.already.into_inner();
    report.failed = counts.failed.into_inner();
    if !options.dry_run && !out_of_time() {
        clean_up(store, now, options, &mut report).await;
    }
    if report.failed > 0 {
        report.complete = false;
    }
    report
}

/// Expires one due recording, in the order of the module docs.
pub async fn expire(store: &DynamoStore, recordings: &S3Recordings, due: &DueRecording) -> Expired {
    match store.mark_recording_expired(due).await {
        Ok(true) => {}
        Ok(false) => return Expired::Skipped,
        Err(e) => {
            tracing::warn!(pk = %due.pk, error = %e, "recording-expiry: mark failed");
            return Expired::Failed;
        }
    }
    if let Some(key) = &due.object_key {
        if let Err(e) = recordings.delete(key).await {
            tracing::warn!(pk = %due.pk, error = %e, "recording-expiry: delete failed");
            return Expired::Failed;
        }
    }
    match store.leave_recording_index(due).await {
        Ok(true) => Expired::Done,
        // An overlapping run took it out first: its work, counted there.
        Ok(false) => Expired::Skipped,
        Err(e) => {
            tracing::warn!(pk = %due.pk, error = %e, "recording-expiry: index removal failed");
            Expired::Failed
        }
    }
}

/// Finishes the clean-ups writers left: every call that entered the clean-up index before
/// `now − CLEANUP_AFTER`.
async fn clean_up(store: &DynamoStore, now: DateTime<Utc>, options: &SweepOptions, report: &mut SweepReport) {
    let before = now.checked_sub_signed(CLEANUP_AFTER).unwrap_or(now);
    for shard in 0..layout::CLEANUP_SHARDS {
        let mut start = None;
        loop {
            if Instant::now() >= options.stop_at {
                report.complete = false;
                return;
            }
            let page = match store.stale_content(shard, before, start.take(), PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(shard, error = %e, "clean-up: index page unreadable");
                    report.query_errors += 1;
                    report.complete = false;
                    break;
                }
            };
            for stale in &page.stale {
                match store.remove_stale_content(stale).await {
                    Ok(parts) => {
                        report.stale_calls += 1;
                        report.stale_parts += parts;
                    }
                    Err(e) => {
                        tracing::warn!(pk = %stale.pk, error = %e, "clean-up: failed");
                        report.failed += 1;
                    }
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
}

/// How long before the Lambda deadline a run stops taking new work: enough for the recordings in flight.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
