//! GET /api/v1/calls/{callId}/recording through its Lambda entry point.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use callrecords::store::calls::Condition;
use callrecords::store::S3Recordings;
use callrecords::{validate, TenantId};
use integration_tests::*;
use serde_json::Value;

const NOW: &str = "2025-01-15T11:00:00Z";

async fn seed_call(stack: &Stack, id: &str, with_recording: bool) -> Option<String> {
    let t = TenantId::parse("acme").unwrap();
    let mut value = seed_000()["data"].clone();
    value["id"] = Value::String(id.into());
    if !with_recording {
        value["recordingStatus"] = Value::String("none".into());
    }
    let record = validate::call(&t, &value, None, stack.app.clock.now()).unwrap();
    let key = record.recording.as_ref().and_then(|r| r.key.clone());
    if let Some(key) = &key {
        put_object(stack, key, b"the recording").await;
    }
    stack
        .app
        .store
        .put_call(&t, record, &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn by_default_it_redirects_to_a_fresh_link_that_fetches_the_recording() {
    let stack = stack(NOW).await;
    seed_call(&stack, "call_123", true).await;

    let mut ev = get_recording_event("acme", "call_123", &[]);
    ev["headers"]["accept"] = Value::String("*/*".into());
    let before = stack.counter.snapshot();
    let reply = get_recording(&stack.app, request(&ev)).await;

    assert_eq!(stack.counter.since(before).requests, 1, "one GetItem, no content read");
    assert_eq!(reply.status, 302);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let location = reply.headers["location"].to_str().unwrap();
    assert_eq!(reply.body["data"]["url"], location);
    assert_eq!(reply.body["data"]["expiresAt"], "2025-01-15T12:00:00Z");
    assert_eq!(http_get(location), b"the recording");
}

#[tokio::test]
async fn json_is_served_when_asked_by_parameter_or_accept_header() {
    let stack = stack(NOW).await;
    seed_call(&stack, "call_123", true).await;

    let by_param = get_recording(
        &stack.app,
        request(&get_recording_event("acme", "call_123", &[("format", "json")])),
    )
    .await;
    let mut ev = get_recording_event("acme", "call_123", &[]);
    ev["headers"]["accept"] = Value::String("application/json".into());
    let by_header = get_recording(&stack.app, request(&ev)).await;

    for reply in [by_param, by_header] {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["success"], true);
        assert!(reply.body["data"]["url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Expires=3600"));
        assert_eq!(reply.body["data"]["expiresAt"], "2025-01-15T12:00:00Z");
    }
}

#[tokio::test]
async fn no_recording_is_404_and_another_tenants_call_is_the_usual_404() {
    let stack = stack(NOW).await;
    seed_call(&stack, "silent", false).await;
    seed_call(&stack, "call_123", true).await;

    let none = get_recording(&stack.app, request(&get_recording_event("acme", "silent", &[]))).await;
    assert_eq!(none.status, 404);
    assert_eq!(none.body["error"]["code"], "NOT_FOUND");
    assert_eq!(none.body["error"]["message"], "Recording not found");

    let foreign = get_recording(&stack.app, request(&get_recording_event("globex", "call_123", &[]))).await;
    let missing = get_recording(&stack.app, request(&get_recording_event("globex", "call_999", &[]))).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body["error"]["message"], "Call not found");
    assert_eq!(without_request_id(foreign.body), without_request_id(missing.body));
}

#[tokio::test]
async fn an_expired_recording_is_410_gone() {
    let stack = stack("2025-02-14T10:35:30Z").await;
    seed_call(&stack, "call_123", true).await;

    let reply = get_recording(&stack.app, request(&get_recording_event("acme", "call_123", &[]))).await;

    assert_eq!(reply.status, 410);
    assert_eq!(reply.body["error"]["code"], "RECORDING_EXPIRED");
}

#[tokio::test]
async fn near_the_end_of_retention_the_link_ends_with_it() {
    let stack = stack("2025-02-14T10:25:30Z").await;
    seed_call(&stack, "call_123", true).await;

    let reply = get_recording(
        &stack.app,
        request(&get_recording_event("acme", "call_123", &[("format", "json")])),
    )
    .await;

    assert_eq!(reply.body["data"]["expiresAt"], "2025-02-14T10:35:30Z");
    assert!(reply.body["data"]["url"]
        .as_str()
        .unwrap()
        .contains("X-Amz-Expires=600"));
}

#[tokio::test]
async fn the_link_never_outlives_the_signing_credentials() {
    let mut stack = stack(NOW).await;
    seed_call(&stack, "call_123", true).await;
    let expiring = Credentials::new(
        "local",
        "local",
        None,
        Some(SystemTime::now() + Duration::from_secs(1200)),
        "test",
    );
    let client = aws_sdk_s3::Client::from_conf(
        stack
            .app
            .recordings
            .client()
            .config()
            .to_builder()
            .credentials_provider(expiring.clone())
            .build(),
    );
    let bucket = stack.app.recordings.bucket().to_owned();
    stack.app.recordings = S3Recordings::new(client, bucket, Some(SharedCredentialsProvider::new(expiring)));

    let reply = get_recording(
        &stack.app,
        request(&get_recording_event("acme", "call_123", &[("format", "json")])),
    )
    .await;

    let url = reply.body["data"]["url"].as_str().unwrap();
    let ttl: u64 = url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-Expires")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    assert!(
        (1190..=1200).contains(&ttl),
        "X-Amz-Expires={ttl}, credentials end in 1200 s"
    );
    let expires_at = reply.body["data"]["expiresAt"].as_str().unwrap();
    assert_eq!(at(expires_at), at(NOW) + chrono::Duration::seconds(ttl as i64));
}

#[tokio::test]
async fn unknown_parameters_and_bad_formats_are_400_naming_them() {
    let stack = stack(NOW).await;
    seed_call(&stack, "call_123", true).await;
    for (query, field) in [
        (&[("format", "xml")][..], "format"),
        (&[("download", "1")][..], "download"),
    ] {
        let reply = get_recording(&stack.app, request(&get_recording_event("acme", "call_123", query))).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body["error"]["code"], "INVALID_PARAMETER");
        assert_eq!(reply.body["error"]["details"]["field"], field);
    }
}
