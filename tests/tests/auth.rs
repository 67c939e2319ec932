//! API keys: the check each handler runs first (401 in the API's envelope, 403 naming the scope), what it
//! costs in DynamoDB requests cold and warm, how long a revoked key may still work (the time a record is
//! kept), and the key lifecycle.

use std::time::Duration;

use callrecords::apikey::Scope;
use callrecords::auth::{KeyCheck, CAPACITY};
use callrecords::store::calls::Condition;
use callrecords::{apikey, validate, TenantId};
use integration_tests::*;
use serde_json::Value;

const NOW: &str = "2025-01-15T11:00:00Z";

async fn new_key(stack: &Stack, t: &str) -> apikey::NewKey {
    new_key_with(stack, t, &[Scope::CallsRead]).await
}

async fn new_key_with(stack: &Stack, t: &str, scopes: &[Scope]) -> apikey::NewKey {
    let key = apikey::generate(&TenantId::parse(t).unwrap(), "test", scopes, at(NOW)).unwrap();
    stack.app.store.put_key(&key.record).await.unwrap();
    key
}

/// A stack holding seed 000's call for acme.
async fn stack_with_call() -> Stack {
    let stack = stack(NOW).await;
    let t = TenantId::parse("acme").unwrap();
    let record = validate::call(&t, &seed_000()["data"], None, at(NOW)).unwrap();
    stack
        .app
        .store
        .put_call(&t, record, &Condition::Always, at(NOW))
        .await
        .unwrap();
    stack
}

/// A get-call request for call_123 with this `Authorization` header (or none).
fn get_with(authorization: Option<&str>) -> lambda_http::Request {
    let mut ev = get_call_event(None, "call_123");
    if let Some(h) = authorization {
        ev["headers"]["authorization"] = Value::String(h.to_owned());
    }
    request(&ev)
}

/// get-call's answer to `req` and the DynamoDB requests it made.
async fn counted(stack: &Stack, req: lambda_http::Request) -> (Reply, u64) {
    let before = stack.counter.snapshot();
    let reply = get_call(&stack.app, req).await;
    (reply, stack.counter.since(before).requests)
}

fn bearer(key: &apikey::NewKey) -> String {
    format!("Bearer {}", key.key)
}

#[tokio::test]
async fn a_key_without_the_routes_scope_gets_403_naming_it() {
    let stack = stack_with_call().await;
    let read = new_key_with(&stack, "acme", &[Scope::CallsRead]).await;
    let write = new_key_with(&stack, "acme", &[Scope::CallsWrite]).await;

    let mut put = with_key(Write::put("call_123", &seed_000()["data"]).event(), None);
    put["headers"]["authorization"] = Value::String(bearer(&read));
    let reply = Write::put("call_123", &Value::Null).send_event(&stack.app, &put).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.body["error"]["details"]["scope"], "calls:write");

    let reply = get_call(&stack.app, get_with(Some(&bearer(&write)))).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(
        reply.body["error"]["details"],
        serde_json::json!({"route": "GET /api/v1/calls/{callId}", "scope": "calls:read"})
    );
    assert_eq!(get_call(&stack.app, get_with(Some(&bearer(&read)))).await.status, 200);
}

#[tokio::test]
async fn no_valid_key_is_a_401_in_the_envelope_and_a_malformed_one_costs_no_request() {
    let stack = stack_with_call().await;
    let key = new_key(&stack, "acme").await;
    let unknown = apikey::generate(
        &TenantId::parse("acme").unwrap(),
        "never stored",
        &[Scope::CallsRead],
        at(NOW),
    )
    .unwrap();
    let tampered = format!("{}x", &key.key[..key.key.len() - 1]);
    assert_ne!(tampered, key.key);

    let (reply, requests) = counted(&stack, get_with(Some(&bearer(&key)))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(requests, 2, "the key's record, then the call");

    for (what, header, requests_expected) in [
        ("missing", None, 0),
        ("not bearer", Some(format!("Basic {}", key.key)), 0),
        ("no scheme", Some(key.key.clone()), 0),
        ("malformed", Some("Bearer hello".to_owned()), 0),
        ("empty", Some("Bearer ".to_owned()), 0),
        ("unknown", Some(bearer(&unknown)), 1),
        // The record is held: the wrong secret is refused against it, with no request.
        ("wrong secret", Some(format!("Bearer {tampered}")), 0),
    ] {
        let (reply, requests) = counted(&stack, get_with(header.as_deref())).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.body["success"], false, "{what}");
        assert_eq!(reply.body["error"]["code"], "UNAUTHORIZED", "{what}");
        assert!(!reply.body["error"]["requestId"].as_str().unwrap().is_empty(), "{what}");
        assert_eq!(requests, requests_expected, "{what}: DynamoDB requests");
    }
    assert_eq!(stack.app.keys.held(), 1, "only the record found is held");

    // A key made after its id was refused works at once: a missing record is not kept.
    stack.app.store.put_key(&unknown.record).await.unwrap();
    let (reply, requests) = counted(&stack, get_with(Some(&bearer(&unknown)))).await;
    assert_eq!((reply.status, requests), (200, 2));
}

#[tokio::test]
async fn a_warm_get_call_is_one_request_and_the_key_is_read_again_after_the_time_kept() {
    let stack = stack_with_call().await;
    let key = new_key(&stack, "acme").await;
    let other = new_key(&stack, "globex").await;
    assert_eq!(stack.app.keys.ttl(), Duration::from_secs(60));

    assert_eq!(counted(&stack, get_with(Some(&bearer(&key)))).await.1, 2);
    for _ in 0..3 {
        let (reply, requests) = counted(&stack, get_with(Some(&bearer(&key)))).await;
        assert_eq!((reply.status, requests), (200, 1), "the call alone");
    }
    let (reply, requests) = counted(&stack, get_with(Some(&bearer(&other)))).await;
    assert_eq!(
        (reply.status, requests),
        (404, 2),
        "another tenant's key: its own record, then the same 404"
    );

    stack.clock.set(at("2025-01-15T11:00:59Z"));
    assert_eq!(
        counted(&stack, get_with(Some(&bearer(&key)))).await.1,
        1,
        "59 s: still held"
    );
    stack.clock.set(at("2025-01-15T11:01:00Z"));
    assert_eq!(
        counted(&stack, get_with(Some(&bearer(&key)))).await.1,
        2,
        "60 s: read again"
    );
}

#[tokio::test]
async fn a_revoked_key_works_until_its_record_is_a_minute_old_then_never() {
    let stack = stack_with_call().await;
    let key = new_key(&stack, "acme").await;
    assert_eq!(get_call(&stack.app, get_with(Some(&bearer(&key)))).await.status, 200);
    assert!(stack.app.store.revoke_key(&key.record.key_id, at(NOW)).await.unwrap());

    stack.clock.set(at("2025-01-15T11:00:59Z"));
    let reply = get_call(&stack.app, get_with(Some(&bearer(&key)))).await;
    assert_eq!(reply.status, 200, "the record read at 11:00:00 is held for 60 s");
    for now in ["2025-01-15T11:01:00Z", "2025-01-15T11:01:01Z", "2025-01-15T12:00:00Z"] {
        stack.clock.set(at(now));
        let (reply, requests) = counted(&stack, get_with(Some(&bearer(&key)))).await;
        assert_eq!(reply.status, 401, "{now}");
        assert_eq!(reply.body["error"]["code"], "UNAUTHORIZED");
        // Read at 11:01:00, the revoked record is held and refuses with no request until 11:02:00.
        let expected = if now == "2025-01-15T11:01:01Z" { 0 } else { 1 };
        assert_eq!(requests, expected, "{now}");
    }
}

#[tokio::test]
async fn with_no_time_kept_a_revocation_is_at_once_and_every_request_reads_the_key() {
    let mut stack = stack_with_call().await;
    stack.app.keys = KeyCheck::new(stack.app.store.clone(), stack.clock.clone(), Duration::ZERO);
    let key = new_key(&stack, "acme").await;
    for _ in 0..2 {
        let (reply, requests) = counted(&stack, get_with(Some(&bearer(&key)))).await;
        assert_eq!((reply.status, requests), (200, 2));
    }
    assert_eq!(stack.app.keys.held(), 0);
    stack.app.store.revoke_key(&key.record.key_id, at(NOW)).await.unwrap();
    assert_eq!(get_call(&stack.app, get_with(Some(&bearer(&key)))).await.status, 401);
}

#[tokio::test]
async fn a_clock_that_goes_back_reads_the_key_again_and_the_held_records_are_bounded() {
    let stack = stack_with_call().await;
    let key = new_key(&stack, "acme").await;
    assert_eq!(counted(&stack, get_with(Some(&bearer(&key)))).await.1, 2);
    stack.clock.set(at("2025-01-15T10:59:59Z"));
    assert_eq!(
        counted(&stack, get_with(Some(&bearer(&key)))).await.1,
        2,
        "a record read in the future is not trusted"
    );

    let held = KeyCheck::new(stack.app.store.clone(), stack.clock.clone(), Duration::from_secs(60));
    for n in 0..(CAPACITY + 5) {
        let mut record = key.record.clone();
        record.key_id = format!("{n:012x}");
        held.remember(&record);
        assert!(held.held() <= CAPACITY, "{n}: {}", held.held());
    }
    assert!(held.held() >= 1);
}

#[tokio::test]
async fn keys_are_listed_per_tenant_newest_first_and_revocation_is_recorded() {
    let stack = stack(NOW).await;
    let first = new_key(&stack, "acme").await;
    let mut second = apikey::generate(
        &TenantId::parse("acme").unwrap(),
        "second",
        &[Scope::CallsRead],
        at("2025-01-15T12:00:00Z"),
    )
    .unwrap();
    second.record.label = "second".into();
    stack.app.store.put_key(&second.record).await.unwrap();
    new_key(&stack, "globex").await;

    assert!(stack
        .app
        .store
        .revoke_key(&first.record.key_id, at("2025-01-16T00:00:00Z"))
        .await
        .unwrap());
    assert!(
        !stack.app.store.revoke_key("000000000000", at(NOW)).await.unwrap(),
        "no such key"
    );

    let keys = stack
        .app
        .store
        .list_keys(&TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(
        keys.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
        [&second.record.key_id, &first.record.key_id]
    );
    assert_eq!(keys[1].revoked_at, Some(at("2025-01-16T00:00:00Z")));
    assert_eq!(keys[0].revoked_at, None);
    assert!(keys.iter().all(|k| !k.key_hash.is_empty() && k.tenant_id == "acme"));
}

#[test]
fn test_keys_are_well_formed_and_the_same_each_time() {
    let key = test_key("acme", READ);
    assert_eq!(key, test_key("acme", READ));
    assert_ne!(key, test_key("acme", READ_WRITE));
    let id = apikey::key_id_of(&key).expect("well formed");
    let record = test_key_record(&key).unwrap();
    assert_eq!(record.key_id, id);
    assert!(apikey::verify(&record, &key).is_some());
}
