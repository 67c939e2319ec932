//! Importing JSON Lines in the API's own format into DynamoDB Local: what comes back through get-call is
//! what went in, and importing again changes nothing.

use callrecords::import::{self, ImportError};
use callrecords::synth::Generator;
use callrecords::view::CallDetail;
use callrecords::{recording, TenantId};
use chrono::Duration;
use integration_tests::*;
use serde_json::Value;

const NOW: &str = "2025-03-01T00:00:00Z";

fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}

/// `n` generated calls as JSON Lines, each as get-call would serve it (without a link).
fn jsonl(stack: &Stack, n: u64) -> (String, Vec<Value>) {
    let mut generator = Generator::new(5);
    let mut text = String::new();
    let mut calls = Vec::new();
    for i in 1..=n {
        let call = generator.history_call(&tenant("acme"), i, at(NOW), Duration::days(20));
        let state = recording::state(
            &call.summary,
            call.recording.as_ref(),
            stack.app.config.retention,
            at(NOW),
        );
        let value = serde_json::to_value(CallDetail::new(call, state, None).unwrap()).unwrap();
        text.push_str(&value.to_string());
        text.push('\n');
        calls.push(value);
    }
    (text, calls)
}

/// Every item of the table, as (pk, sk), sorted. A Scan: fine in a test, never in the product.
async fn items(stack: &Stack) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = stack
            .app
            .store
            .client()
            .scan()
            .table_name(stack.app.store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let s = |k: &str| item[k].as_s().unwrap().clone();
            out.push((s("pk"), s("sk")));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn imported_calls_come_back_through_get_call_and_a_second_import_changes_nothing() {
    let stack = stack(NOW).await;
    let (text, calls) = jsonl(&stack, 40);
    let mut seen = Vec::new();
    let report = import::jsonl(&stack.app.store, &tenant("acme"), text.as_bytes(), 4, |n| seen.push(n))
        .await
        .unwrap();
    assert_eq!(report.calls, 40);
    assert_eq!(seen.last(), Some(&40));

    for call in &calls {
        let id = call["id"].as_str().unwrap();
        let reply = fetch(&stack, "acme", id).await;
        assert_eq!(reply.status, 200, "{id}");
        let mut served = reply.body["data"].clone();
        // The link is made fresh on every read; everything else must be what was imported.
        served["recordingUrl"] = Value::Null;
        served["recordingUrlExpiresAt"] = Value::Null;
        assert_eq!(&served, call, "{id}");
    }

    let before = items(&stack).await;
    let again = import::jsonl(&stack.app.store, &tenant("acme"), text.as_bytes(), 4, |_| {})
        .await
        .unwrap();
    assert_eq!(again.calls, 40);
    assert_eq!(items(&stack).await, before, "the same items, no more");
}

#[tokio::test]
async fn a_changed_call_replaces_its_content_and_leaves_no_old_parts() {
    let stack = stack(NOW).await;
    let (text, calls) = jsonl(&stack, 5);
    import::jsonl(&stack.app.store, &tenant("acme"), text.as_bytes(), 2, |_| {})
        .await
        .unwrap();
    let before = items(&stack).await;

    // The same call, now with one message only (and envelope-wrapped, as get-call sends it).
    let mut changed = calls[2].clone();
    let first = changed["messages"][0].clone();
    changed["messages"] = Value::Array(vec![first]);
    let line = serde_json::json!({"success": true, "data": changed}).to_string();
    import::jsonl(&stack.app.store, &tenant("acme"), line.as_bytes(), 1, |_| {})
        .await
        .unwrap();

    let id = changed["id"].as_str().unwrap();
    let served = fetch(&stack, "acme", id).await.body["data"].clone();
    assert_eq!(served["messagesCount"], 1);
    assert_eq!(served["messages"].as_array().unwrap().len(), 1);
    let after = items(&stack).await;
    assert_eq!(after.len(), before.len(), "one content part replaced by one");
    let pk = format!("T#acme#C#{id}");
    let old: Vec<_> = before.iter().filter(|(p, s)| *p == pk && s != "A").collect();
    let new: Vec<_> = after.iter().filter(|(p, s)| *p == pk && s != "A").collect();
    assert_eq!(old.len(), 1);
    assert_eq!(new.len(), 1);
    assert_ne!(old, new, "a new content version");
}

#[tokio::test]
async fn a_bad_line_is_named_and_the_calls_before_it_are_kept() {
    let stack = stack(NOW).await;
    let (text, calls) = jsonl(&stack, 3);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(1, "");
    lines.insert(3, r#"{"id": "no_status", "direction": "inbound"}"#);
    let input = lines.join("\n");

    let err = import::jsonl(&stack.app.store, &tenant("acme"), input.as_bytes(), 2, |_| {})
        .await
        .unwrap_err();
    match err {
        ImportError::BadLine { line, why } => {
            assert_eq!(line, 4);
            assert!(why.contains("not a call"), "{why}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        fetch(&stack, "acme", calls[0]["id"].as_str().unwrap()).await.status,
        200
    );
    assert_eq!(
        fetch(&stack, "acme", calls[1]["id"].as_str().unwrap()).await.status,
        200
    );
    assert_eq!(
        fetch(&stack, "acme", calls[2]["id"].as_str().unwrap()).await.status,
        404
    );
}
