//! The recording-expiry job against DynamoDB Local and the S3 emulator: boundaries to the second, S3
//! failures, overlapping runs, runs cut short, and what a run reads.

use std::time::{Duration, Instant};

use aws_sdk_s3::operation::delete_object::DeleteObjectInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use callrecords::expiry::{self, SweepOptions, SweepReport};
use callrecords::model::{CallRecord, RecordingStatus};
use callrecords::store::calls::Condition;
use callrecords::store::layout;
use callrecords::store::S3Recordings;
use callrecords::{validate, CallId, TenantId};
use chrono::Utc;
use integration_tests::*;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

/// Seed 000's call ended (and, its recording time unknown, was recorded) at 2025-01-15T10:35:30Z; with 30
/// days' retention the recording expires at this moment.
const RETENTION_ENDS: &str = "2025-02-14T10:35:30Z";
const ONE_SECOND_BEFORE: &str = "2025-02-14T10:35:29Z";

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

async fn object_exists(stack: &Stack, record: &CallRecord) -> bool {
    let key = record.recording.as_ref().unwrap().key.as_ref().unwrap();
    stack
        .app
        .recordings
        .client()
        .head_object()
        .bucket(stack.app.recordings.bucket())
        .key(key)
        .send()
        .await
        .is_ok()
}

async fn stored(stack: &Stack, id: &str) -> CallRecord {
    stack
        .app
        .store
        .get_call(&acme(), &CallId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap()
        .into_record()
        .unwrap()
}

fn options() -> SweepOptions {
    SweepOptions::until(Instant::now() + Duration::from_secs(60))
}

async fn sweep_at(stack: &Stack, recordings: &S3Recordings, now: &str, opts: &SweepOptions) -> SweepReport {
    expiry::sweep(&stack.app.store, recordings, stack.app.config.retention, at(now), opts).await
}

/// The job through its Lambda entry point, with the scheduler's event from events/.
async fn scheduled_run(stack: &Stack) -> SweepReport {
    let mut ctx = Context::default();
    ctx.deadline = (Utc::now().timestamp_millis() + 60_000) as u64;
    recording_expiry::handle(&stack.app, LambdaEvent::new(event("recording-expiry.json"), ctx))
        .await
        .unwrap()
}

#[tokio::test]
async fn at_retention_minus_one_second_a_recording_is_served_and_kept() {
    let stack = stack(ONE_SECOND_BEFORE).await;
    let call = seed_call_with_recording(&stack, "c1", 0).await;

    let report = scheduled_run(&stack).await;

    assert_eq!((report.found, report.deleted, report.marked), (0, 0, 0));
    assert!(report.complete);
    assert!(object_exists(&stack, &call).await);
    let data = fetch(&stack, "acme", "c1").await.body["data"].clone();
    assert_eq!(data["recordingStatus"], "completed");
    assert_eq!(
        data["recordingUrlExpiresAt"], RETENTION_ENDS,
        "the link lives exactly the last second"
    );
}

#[tokio::test]
async fn at_retention_a_recording_is_expired_in_the_api_and_removed_by_the_job() {
    let stack = stack(RETENTION_ENDS).await;
    let call = seed_call_with_recording(&stack, "c1", 0).await;
    let data = fetch(&stack, "acme", "c1").await.body["data"].clone();
    assert_eq!(
        data["recordingStatus"], "expired",
        "the API says so before the job has run"
    );
    assert_eq!(data["recordingUrl"], Value::Null);

    let report = scheduled_run(&stack).await;

    assert_eq!(
        (report.found, report.deleted, report.marked, report.failed),
        (1, 1, 1, 0)
    );
    assert!(!object_exists(&stack, &call).await);
    let after = stored(&stack, "c1").await;
    assert_eq!(after.recording.as_ref().unwrap().status, RecordingStatus::Expired);
    let mut expected = call.clone();
    expected.recording.as_mut().unwrap().status = RecordingStatus::Expired;
    assert_eq!(after, expected, "nothing of the call changed but its recording status");
}

#[tokio::test]
async fn young_recordings_and_calls_without_one_are_never_touched() {
    let stack = stack(RETENTION_ENDS).await;
    let due = seed_call_with_recording(&stack, "due", 0).await;
    let mut young = Vec::new();
    for (i, days) in [1, 10, 29].into_iter().enumerate() {
        young.push(seed_call_with_recording(&stack, &format!("young{i}"), days).await);
    }
    let mut plain = seed_000()["data"].clone();
    plain["id"] = Value::String("no_recording".into());
    plain["recordingStatus"] = Value::String("none".into());
    stack
        .app
        .store
        .put_call(
            &acme(),
            validate::call(&acme(), &plain, None, stack.app.clock.now()).unwrap(),
            &Condition::Always,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    // The call without a recording as it stands before the run: the call, its items, what the API serves.
    let plain_before = stored(&stack, "no_recording").await;
    assert_eq!(plain_before.recording, None);
    assert_eq!(plain["status"], plain_before.summary.status.as_str());
    let items_before = partition_items(&stack, "acme", "no_recording").await;
    assert!(
        items_before.len() >= 2,
        "a summary and content parts: {}",
        items_before.len()
    );
    let served_before = fetch(&stack, "acme", "no_recording").await;
    assert_eq!(served_before.status, 200);
    assert_eq!(served_before.body["data"]["recordingStatus"], "none");

    let report = sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &options()).await;

    // The run found the due recording and nothing else.
    assert_eq!(
        (report.found, report.deleted, report.marked, report.failed),
        (1, 1, 1, 0)
    );
    assert!(report.complete);
    assert!(!object_exists(&stack, &due).await);
    assert_eq!(
        stored(&stack, "due").await.recording.unwrap().status,
        RecordingStatus::Expired
    );
    for call in &young {
        let id = &call.summary.id;
        assert!(object_exists(&stack, call).await, "{id}: object kept");
        assert_eq!(&stored(&stack, id).await, call, "{id} unchanged");
        let served = fetch(&stack, "acme", id).await.body["data"].clone();
        assert_eq!(served["recordingStatus"], "completed", "{id}: not expired");
    }
    assert_eq!(
        stored(&stack, "no_recording").await,
        plain_before,
        "no_recording: unchanged"
    );
    let items_after = partition_items(&stack, "acme", "no_recording").await;
    assert_eq!(items_after.len(), items_before.len(), "no_recording: item count");
    assert_eq!(items_after, items_before, "no_recording: no item written by the run");
    assert_eq!(
        fetch(&stack, "acme", "no_recording").await.body,
        served_before.body,
        "no_recording: served as before"
    );
}

#[tokio::test]
async fn a_dry_run_counts_and_changes_nothing() {
    let stack = stack(RETENTION_ENDS).await;
    let calls = [
        seed_call_with_recording(&stack, "a", 0).await,
        seed_call_with_recording(&stack, "b", -3).await,
    ];

    let mut ctx = Context::default();
    ctx.deadline = (Utc::now().timestamp_millis() + 60_000) as u64;
    let report = recording_expiry::handle(
        &stack.app,
        LambdaEvent::new(event("recording-expiry-dry-run.json"), ctx),
    )
    .await
    .unwrap();

    assert!(report.dry_run);
    assert_eq!((report.found, report.deleted, report.marked), (2, 0, 0));
    for call in &calls {
        assert!(object_exists(&stack, call).await);
        assert_eq!(&stored(&stack, &call.summary.id).await, call);
    }
}

/// Fails every DeleteObject whose key contains "fail", as an S3 outage for those objects would.
#[derive(Debug)]
struct FailSomeDeletes;

impl Intercept for FailSomeDeletes {
    fn name(&self) -> &'static str {
        "FailSomeDeletes"
    }

    fn read_before_execution(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match ctx.input().downcast_ref::<DeleteObjectInput>() {
            Some(input) if input.key().is_some_and(|k| k.contains("fail")) => Err("injected S3 failure".into()),
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn failed_deletes_leave_calls_marked_and_due_and_the_next_run_finishes_them() {
    let stack = stack(RETENTION_ENDS).await;
    let mut calls = Vec::new();
    for id in ["ok1", "fail1", "ok2", "fail2", "ok3"] {
        calls.push(seed_call_with_recording(&stack, id, -1).await);
    }
    let s3 = stack.app.recordings.client();
    let failing_client = aws_sdk_s3::Client::from_conf(s3.config().to_builder().interceptor(FailSomeDeletes).build());
    let failing = S3Recordings::new(failing_client, stack.app.recordings.bucket(), None);

    let first = sweep_at(&stack, &failing, RETENTION_ENDS, &options()).await;

    assert_eq!((first.found, first.deleted, first.marked, first.failed), (5, 3, 3, 2));
    assert!(!first.complete);
    for call in &calls {
        let id = &call.summary.id;
        let failed = id.starts_with("fail");
        assert_eq!(object_exists(&stack, call).await, failed, "{id}: object");
        // Marked first, so the API and the store agree it is expired; still due for the next run.
        let status = stored(&stack, id).await.recording.unwrap().status;
        assert_eq!(status, RecordingStatus::Expired, "{id}: marked before its delete");
        assert_eq!(
            fetch(&stack, "acme", id).await.body["data"]["recordingUrl"],
            Value::Null,
            "{id}: never served"
        );
    }

    let second = sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &options()).await;

    assert_eq!((second.found, second.marked, second.failed), (2, 2, 0));
    assert!(second.complete);
    for call in &calls {
        assert!(!object_exists(&stack, call).await);
        assert_eq!(
            stored(&stack, &call.summary.id).await.recording.unwrap().status,
            RecordingStatus::Expired
        );
    }
}

#[tokio::test]
async fn two_runs_at_once_reach_the_same_final_state_without_errors() {
    let stack = stack(RETENTION_ENDS).await;
    let mut calls = Vec::new();
    for i in 0..40 {
        calls.push(seed_call_with_recording(&stack, &format!("c{i:02}"), -(i % 5)).await);
    }

    let (opts_a, opts_b) = (options(), options());
    let (a, b) = tokio::join!(
        sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &opts_a),
        sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &opts_b),
    );

    assert_eq!((a.failed, b.failed, a.query_errors, b.query_errors), (0, 0, 0, 0));
    assert_eq!(a.marked + b.marked, 40, "each call marked exactly once: {a:?} {b:?}");
    for call in &calls {
        assert!(!object_exists(&stack, call).await);
        assert_eq!(
            stored(&stack, &call.summary.id).await.recording.unwrap().status,
            RecordingStatus::Expired
        );
    }
    let again = sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &options()).await;
    assert_eq!((again.found, again.complete), (0, true));
}

#[tokio::test]
async fn a_run_cut_short_leaves_the_rest_to_the_next_run() {
    let stack = stack(RETENTION_ENDS).await;
    for i in 0..30 {
        seed_call_with_recording(&stack, &format!("c{i:02}"), -1).await;
    }

    let past_deadline = SweepOptions::until(Instant::now());
    let none = sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &past_deadline).await;
    assert_eq!(
        (none.found, none.complete),
        (0, false),
        "no work is started past the deadline"
    );

    let some = sweep_at(
        &stack,
        &stack.app.recordings,
        RETENTION_ENDS,
        &SweepOptions {
            limit: Some(12),
            ..options()
        },
    )
    .await;
    assert_eq!((some.found, some.marked, some.complete), (12, 12, false));

    let rest = sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &options()).await;
    assert_eq!((rest.found, rest.marked, rest.failed, rest.complete), (18, 18, 0, true));

    let after = sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &options()).await;
    assert_eq!(
        (after.found, after.complete),
        (0, true),
        "a run after a full run finds nothing"
    );
}

#[tokio::test]
async fn a_run_reads_only_the_due_recordings() {
    let stack = stack(RETENTION_ENDS).await;
    for i in 0..5 {
        seed_call_with_recording(&stack, &format!("due{i}"), -2).await;
    }
    for i in 0..40 {
        seed_call_with_recording(&stack, &format!("young{i}"), 5).await;
    }

    let before = stack.counter.snapshot();
    let report = sweep_at(&stack, &stack.app.recordings, RETENTION_ENDS, &options()).await;
    let used = stack.counter.since(before);

    assert_eq!(report.marked, 5);
    assert_eq!(used.items_read, 5, "index reads: the due recordings only");
    assert_eq!(
        used.requests,
        u64::from(layout::RECORDING_SHARDS) + u64::from(layout::CLEANUP_SHARDS) + 2 * 5,
        "one Query per shard of both indexes, two UpdateItems per call (mark, leave the index)"
    );
}

#[tokio::test]
async fn a_recording_made_at_a_fraction_of_a_second_is_never_removed_early() {
    let stack = stack(RETENTION_ENDS).await;
    let mut call = seed_call_with_recording(&stack, "frac", 0).await;
    call.recording.as_mut().unwrap().recorded_at = Some(at("2025-01-15T10:35:30.500Z"));
    stack
        .app
        .store
        .put_call(&acme(), call.clone(), &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();

    // Retention ends at 10:35:30.5; at 10:35:30.2 a job that rounded the recording time down would take it.
    let early = sweep_at(&stack, &stack.app.recordings, "2025-02-14T10:35:30.200Z", &options()).await;
    assert_eq!(early.found, 0);
    assert!(object_exists(&stack, &call).await);
    let on_time = sweep_at(&stack, &stack.app.recordings, "2025-02-14T10:35:31Z", &options()).await;
    assert_eq!(on_time.marked, 1);
}

#[tokio::test]
async fn an_invocation_already_at_its_deadline_takes_no_work() {
    let stack = stack(RETENTION_ENDS).await;
    let call = seed_call_with_recording(&stack, "c1", -1).await;
    let mut ctx = Context::default();
    ctx.deadline = Utc::now().timestamp_millis() as u64;

    let report = recording_expiry::handle(&stack.app, LambdaEvent::new(event("recording-expiry.json"), ctx))
        .await
        .unwrap();

    assert_eq!((report.found, report.complete), (0, false));
    assert!(object_exists(&stack, &call).await, "left for the next run");
    assert_eq!(scheduled_run(&stack).await.marked, 1);
}

#[tokio::test]
async fn a_run_that_cannot_read_the_index_fails_so_the_schedule_retries_it() {
    let mut stack = stack(RETENTION_ENDS).await;
    stack.app.store = callrecords::store::DynamoStore::new(stack.app.store.client().clone(), "no-such-table");
    let mut ctx = Context::default();
    ctx.deadline = (Utc::now().timestamp_millis() + 60_000) as u64;

    let result = recording_expiry::handle(&stack.app, LambdaEvent::new(event("recording-expiry.json"), ctx)).await;

    assert!(result.is_err());
}
