//! Outages: DynamoDB Local or the S3 emulator stopped (or hung) while the functions run. Every route answers
//! 503 `SERVICE_UNAVAILABLE` with `Retry-After` when the table cannot be read, never panics, and serves again
//! with the same clients once the service is back. Each test has emulators of its own (see
//! `integration_tests::emulator`), so stopping them disturbs no other test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callrecords::clock::FixedClock;
use callrecords::config::Config;
use callrecords::cursor::{generate_secret, CursorKeys};
use callrecords::expiry::{self, SweepOptions};
use callrecords::model::{CallStatus, Direction};
use callrecords::recording::Retention;
use callrecords::store::calls::Condition;
use callrecords::store::DynamoStore;
use callrecords::store::S3Recordings;
use callrecords::synth::Generator;
use callrecords::{template, App, TenantId};
use integration_tests::emulator::{Emulator, Kind};
use integration_tests::*;

const NOW: &str = "2025-03-01T00:00:00Z";

/// An App wired exactly as in production (the SDK config with its timeouts and retries), but talking to
/// these emulators.
async fn app_on(dynamodb: &Emulator, s3: &Emulator, now: &str) -> App {
    let sdk = callrecords::aws::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(dynamodb.url())
            .build(),
    );
    let s3_client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .endpoint_url(s3.url())
            .force_path_style(true)
            .build(),
    );
    let config = Config {
        table_name: "calls".into(),
        bucket_name: "recordings".into(),
        retention: Retention::days(30),
        key_cache_ttl: callrecords::config::DEFAULT_KEY_CACHE_TTL,
        s3_force_path_style: true,
        cursor_keys: Some(CursorKeys::new(&generate_secret(), None).unwrap()),
        capture: Default::default(),
        total_budget: Default::default(),
    };
    let store = DynamoStore::new(ddb, &config.table_name);
    let clock: Arc<dyn callrecords::clock::Clock> = Arc::new(FixedClock(at(now)));
    App {
        keys: callrecords::auth::KeyCheck::new(store.clone(), clock.clone(), config.key_cache_ttl),
        store,
        recordings: S3Recordings::new(s3_client, &config.bucket_name, sdk.credentials_provider()),
        clock,
        capture_queue: callrecords::store::queue::CaptureQueue::new(callrecords::aws::sqs(&sdk), None),
        config,
    }
}

/// The table and one call with a recording (the emulators start empty, also after a restart).
async fn load(app: &App) {
    template::create_table(app.store.client(), app.store.table())
        .await
        .unwrap();
    template::create_bucket(app.recordings.client(), app.recordings.bucket(), 30)
        .await
        .unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let call = Generator::new(9).call(
        &acme,
        "call_1",
        CallStatus::Completed,
        Direction::Inbound,
        at("2025-02-28T10:00:00Z"),
        2,
    );
    app.store
        .put_call(&acme, call, &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();
}

/// get-call, list-calls and get-recording for `acme`, their statuses in that order.
async fn every_route(app: &App) -> Vec<Reply> {
    vec![
        get_call(app, request(&get_call_event(Some("acme"), "call_1"))).await,
        list_calls(app, request(&list_event("acme", &[]))).await,
        get_recording(
            app,
            request(&get_recording_event("acme", "call_1", &[("format", "json")])),
        )
        .await,
    ]
}

fn assert_unavailable(replies: &[Reply]) {
    for reply in replies {
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["error"]["code"], "SERVICE_UNAVAILABLE");
        assert!(reply.body["error"]["requestId"].is_string());
        assert_eq!(reply.headers["retry-after"], "1");
        assert_eq!(reply.headers["content-type"], "application/json");
    }
}

fn assert_served(replies: &[Reply]) {
    for reply in replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

#[tokio::test]
async fn dynamodb_stopped_mid_run_gives_503s_and_the_same_clients_serve_once_it_is_back() {
    let mut dynamodb = Emulator::start_new(Kind::DynamoDb);
    let s3 = Emulator::start_new(Kind::S3);
    let app = app_on(&dynamodb, &s3, NOW).await;
    load(&app).await;
    assert_served(&every_route(&app).await);

    dynamodb.stop();
    let started = Instant::now();
    let replies = every_route(&app).await;
    assert_unavailable(&replies);
    // Refused connections fail fast: three attempts with backoff, not the operation timeout.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    dynamodb.start();
    load(&app).await;
    assert_served(&every_route(&app).await);
}

#[tokio::test]
async fn a_hung_dynamodb_times_out_into_503s_within_the_operation_timeout() {
    let dynamodb = Emulator::start_new(Kind::DynamoDb);
    let s3 = Emulator::start_new(Kind::S3);
    let app = app_on(&dynamodb, &s3, NOW).await;
    load(&app).await;

    dynamodb.pause();
    let started = Instant::now();
    let reply = get_call(&app, request(&get_call_event(Some("acme"), "call_1"))).await;
    let waited = started.elapsed();
    assert_unavailable(&[reply]);
    // 2 s per attempt, 5 s per operation (shared/src/aws.rs): the caller hears within seconds, well inside
    // API Gateway's 30 s.
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );

    dynamodb.resume();
    assert_served(&every_route(&app).await);
}

#[tokio::test]
async fn with_s3_stopped_the_api_still_serves_links_and_expiry_leaves_the_work_for_the_next_run() {
    let dynamodb = Emulator::start_new(Kind::DynamoDb);
    let mut s3 = Emulator::start_new(Kind::S3);
    // Two months on: call_1's recording is past retention.
    let later = "2025-05-01T00:00:00Z";
    let app = app_on(&dynamodb, &s3, NOW).await;
    load(&app).await;
    let app = app_on(&dynamodb, &s3, later).await;

    s3.stop();
    // Presigning needs no request to S3: the routes answer as usual (here: the recording has expired).
    let replies = every_route(&app).await;
    assert_eq!(replies[0].status, 200);
    assert_eq!(replies[0].body["data"]["recordingStatus"], "expired");
    assert_eq!(replies[1].status, 200);
    assert_eq!(replies[2].status, 410);
    let options = SweepOptions::until(Instant::now() + Duration::from_secs(60));
    let report = expiry::sweep(&app.store, &app.recordings, app.config.retention, at(later), &options).await;
    assert_eq!(
        (report.found, report.deleted, report.marked, report.failed),
        (1, 0, 0, 1),
        "{report:?}"
    );

    s3.start();
    template::create_bucket(app.recordings.client(), app.recordings.bucket(), 30)
        .await
        .unwrap();
    let report = expiry::sweep(&app.store, &app.recordings, app.config.retention, at(later), &options).await;
    assert_eq!((report.found, report.marked, report.failed), (1, 1, 0), "{report:?}");
}
