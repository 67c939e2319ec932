//! get-call through its Lambda entry point, against DynamoDB Local and the S3 emulator.

use callrecords::model::{CallRecord, CallStatus, Direction};
use callrecords::store::calls::Condition;
use callrecords::synth::Generator;
use callrecords::{validate, TenantId};
use integration_tests::*;
use serde_json::Value;

const SEED_NOW: &str = "2025-01-15T11:00:00Z";

fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}

async fn store_seed_000(stack: &Stack, t: &str) -> CallRecord {
    let record = validate::call(&tenant(t), &seed_000()["data"], None, stack.app.clock.now()).unwrap();
    stack
        .app
        .store
        .put_call(&tenant(t), record.clone(), &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();
    record
}

#[tokio::test]
async fn seed_000_call_round_trips_field_for_field() {
    let stack = stack(SEED_NOW).await;
    store_seed_000(&stack, "user_123").await;

    let reply = fetch(&stack, "user_123", "call_123").await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    let seed = seed_000();
    assert_contains(&seed, &reply.body, "", &[".data.recordingUrl"]);
    assert!(reply.body["data"]["recordingUrl"]
        .as_str()
        .unwrap()
        .contains("/recordings/user_123/2025/01/15/call_123.m4a?"));
}

#[tokio::test]
async fn get_call_adds_the_derived_fields() {
    let stack = stack(SEED_NOW).await;
    store_seed_000(&stack, "user_123").await;

    let data = fetch(&stack, "user_123", "call_123").await.body["data"].clone();

    let transcript = data["transcript"].as_str().unwrap();
    assert!(
        transcript.starts_with("Assistant: Merhaba! Müşteri destek"),
        "{transcript}"
    );
    assert!(
        !transcript.contains("check_order_status"),
        "tool messages are not speech"
    );
    assert_eq!(transcript.lines().count(), 5);
    assert_eq!(data["recordingExpiresAt"], "2025-02-14T10:35:30Z");
    assert_eq!(data["recordingUrlExpiresAt"], "2025-01-15T12:00:00Z");
    for field in [
        "currency",
        "costBreakdown",
        "latency",
        "events",
        "telephony",
        "evaluation",
        "updatedAt",
        "campaign",
    ] {
        assert!(data.get(field).is_some(), "{field} is always present");
    }
}

#[tokio::test]
async fn an_ordinary_get_call_is_one_dynamodb_request() {
    let stack = stack(SEED_NOW).await;
    store_seed_000(&stack, "user_123").await;
    let mut gen = Generator::new(1);
    let t = tenant("user_123");
    let start = at("2025-01-15T09:00:00Z");
    stack
        .app
        .store
        .put_call(
            &t,
            gen.call(
                &t,
                "call_20_turns",
                CallStatus::Completed,
                Direction::Outbound,
                start,
                20,
            ),
            &Condition::Always,
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    for id in ["call_123", "call_20_turns", "no_such_call"] {
        let before = stack.counter.snapshot();
        let reply = fetch(&stack, "user_123", id).await;
        let used = stack.counter.since(before);
        assert_eq!(used.requests, 1, "{id}: one DynamoDB request");
        assert!(
            used.items_read <= 2,
            "{id}: summary and at most one content part, read {}",
            used.items_read
        );
        assert_eq!(reply.status, if id == "no_such_call" { 404 } else { 200 });
    }
}

#[tokio::test]
async fn a_two_hour_call_over_400_kb_round_trips_intact() {
    let stack = stack("2025-03-01T12:00:00Z").await;
    let t = tenant("acme");
    let call = Generator::new(2).call(
        &t,
        "call_2h",
        CallStatus::Completed,
        Direction::Inbound,
        at("2025-03-01T09:00:00Z"),
        1500,
    );
    let content = serde_json::to_vec(&call.content.messages).unwrap();
    assert!(
        content.len() > 1_000_000,
        "the call is far past the 400 KB item limit: {} bytes",
        content.len()
    );
    assert!(call.summary.duration.unwrap() > 3600.0);
    stack
        .app
        .store
        .put_call(&t, call.clone(), &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();

    let reply = fetch(&stack, "acme", "call_2h").await;

    assert_eq!(reply.status, 200);
    let data = &reply.body["data"];
    assert_eq!(data["messagesCount"], call.content.messages.len());
    assert_eq!(data["messages"], serde_json::to_value(&call.content.messages).unwrap());
    assert_eq!(data["events"], serde_json::to_value(&call.content.events).unwrap());
    assert_eq!(data["latency"], serde_json::to_value(&call.content.latency).unwrap());
}

#[tokio::test]
async fn rewriting_a_call_replaces_its_content_and_leaves_no_stale_parts() {
    let stack = stack("2025-03-01T12:00:00Z").await;
    let t = tenant("acme");
    let mut gen = Generator::new(3);
    let start = at("2025-03-01T09:00:00Z");
    stack
        .app
        .store
        .put_call(
            &t,
            gen.call(&t, "c", CallStatus::Completed, Direction::Inbound, start, 1500),
            &Condition::Always,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let short = gen.call(&t, "c", CallStatus::Completed, Direction::Inbound, start, 2);
    stack
        .app
        .store
        .put_call(&t, short.clone(), &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();

    let before = stack.counter.snapshot();
    let reply = fetch(&stack, "acme", "c").await;

    assert_eq!(
        reply.body["data"]["messages"],
        serde_json::to_value(&short.content.messages).unwrap()
    );
    assert_eq!(
        stack.counter.since(before).items_read,
        2,
        "the old version's parts are gone"
    );
}

#[tokio::test]
async fn another_tenants_call_is_a_404_identical_to_a_missing_one() {
    let stack = stack(SEED_NOW).await;
    store_seed_000(&stack, "tenant_a").await;

    let foreign = fetch(&stack, "tenant_b", "call_123").await;
    let missing = fetch(&stack, "tenant_b", "call_999").await;
    let own = fetch(&stack, "tenant_a", "call_123").await;

    assert_eq!(own.status, 200);
    assert_eq!(foreign.status, 404);
    assert_eq!(missing.status, 404);
    assert_eq!(foreign.body["error"]["code"], "NOT_FOUND");
    assert_eq!(foreign.body["error"]["message"], "Call not found");
    assert_eq!(without_request_id(foreign.body), without_request_id(missing.body));
    assert_eq!(foreign.headers, missing.headers);
}

#[tokio::test]
async fn malformed_call_ids_are_a_400_naming_the_field() {
    let stack = stack(SEED_NOW).await;
    let long = "a".repeat(129);
    for bad in ["", long.as_str(), "a b", "a/b", "çağrı", "x;drop", "a#b"] {
        let before = stack.counter.snapshot();
        let reply = fetch(&stack, "acme", bad).await;
        assert_eq!(reply.status, 400, "{bad:?}");
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["error"]["code"], "INVALID_PARAMETER");
        assert_eq!(reply.body["error"]["details"]["field"], "callId");
        assert_eq!(
            stack.counter.since(before).requests,
            0,
            "a bad id costs no database request"
        );
    }
}

#[tokio::test]
async fn the_presigned_url_expires_within_an_hour_and_points_at_the_recording() {
    let stack = stack(SEED_NOW).await;
    let record = store_seed_000(&stack, "user_123").await;
    let key = record.recording.unwrap().key.unwrap();
    let audio: &[u8] = b"not really m4a, but these exact bytes";
    put_object(&stack, &key, audio).await;

    let data = fetch(&stack, "user_123", "call_123").await.body["data"].clone();

    let link = url::Url::parse(data["recordingUrl"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    let ttl: u64 = q["X-Amz-Expires"].parse().unwrap();
    assert!(ttl <= 3600 && ttl > 0, "X-Amz-Expires={ttl}");
    assert_eq!(q["X-Amz-Date"], "20250115T110000Z", "signed at the clock's now");
    assert_eq!(link.path(), format!("/{}/{key}", stack.app.recordings.bucket()));
    assert_eq!(data["recordingUrlExpiresAt"], "2025-01-15T12:00:00Z");
    assert_eq!(http_get(link.as_str()), audio, "the link fetches the call's recording");
}

#[tokio::test]
async fn an_expired_recording_gets_no_url() {
    // Seed 000's call ended 2025-01-15T10:35:30Z; with 30 days' retention its recording expires 30 days on.
    let stack = stack("2025-02-14T10:35:30Z").await;
    store_seed_000(&stack, "user_123").await;

    let data = fetch(&stack, "user_123", "call_123").await.body["data"].clone();

    assert_eq!(data["recordingStatus"], "expired");
    assert_eq!(data["recordingUrl"], Value::Null);
    assert_eq!(data["recordingUrlExpiresAt"], Value::Null);
    assert_eq!(data["recordingExpiresAt"], "2025-02-14T10:35:30Z");
}

#[tokio::test]
async fn a_call_that_opted_out_keeps_no_content_and_says_so() {
    let stack = stack(SEED_NOW).await;
    let mut value = seed_000()["data"].clone();
    value["optOutSensitiveDataStorage"] = Value::Bool(true);
    let t = tenant("user_123");
    stack
        .app
        .store
        .put_call(
            &t,
            validate::call(&t, &value, None, stack.app.clock.now()).unwrap(),
            &Condition::Always,
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    let data = fetch(&stack, "user_123", "call_123").await.body["data"].clone();

    assert_eq!(data["optOutSensitiveDataStorage"], true);
    assert_eq!(data["messages"], Value::Null);
    assert_eq!(data["transcript"], Value::Null);
    assert_eq!(data["messagesCount"], 0);
    assert_eq!(data["recordingStatus"], "none");
    assert_eq!(data["recordingUrl"], Value::Null);
    assert_eq!(data["cost"], "0.45", "the rest of the call is kept");
}
