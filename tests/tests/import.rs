//! Importing JSON Lines in the API's own format into DynamoDB Local: what comes back through get-call is
//! what went in, importing again changes nothing, and a line that breaks a rule of the format is refused,
//! named by line and field, with nothing of it written.

use callrecords::import::{self, ImportError};
use callrecords::model::{CallStatus, Direction};
use callrecords::synth::Generator;
use callrecords::view::CallDetail;
use callrecords::{recording, TenantId};
use chrono::Duration;
use integration_tests::*;
use serde_json::{json, Value};

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
    let report = import::jsonl(&stack.app.store, &tenant("acme"), text.as_bytes(), at(NOW), 4, |n| {
        seen.push(n)
    })
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
        // `updatedAt` is when the call was written: by the import.
        assert_eq!(served["updatedAt"], NOW, "{id}");
        served["updatedAt"] = call["updatedAt"].clone();
        assert_eq!(&served, call, "{id}");
    }

    let before = items(&stack).await;
    let again = import::jsonl(&stack.app.store, &tenant("acme"), text.as_bytes(), at(NOW), 4, |_| {})
        .await
        .unwrap();
    assert_eq!(again.calls, 40);
    assert_eq!(items(&stack).await, before, "the same items, no more");
}

#[tokio::test]
async fn a_changed_call_replaces_its_content_and_leaves_no_old_parts() {
    let stack = stack(NOW).await;
    let (text, calls) = jsonl(&stack, 5);
    import::jsonl(&stack.app.store, &tenant("acme"), text.as_bytes(), at(NOW), 2, |_| {})
        .await
        .unwrap();
    let before = items(&stack).await;

    // The same call, now with one message only (and envelope-wrapped, as get-call sends it).
    let mut changed = calls[2].clone();
    let first = changed["messages"][0].clone();
    changed["messages"] = Value::Array(vec![first]);
    let line = serde_json::json!({"success": true, "data": changed}).to_string();
    import::jsonl(&stack.app.store, &tenant("acme"), line.as_bytes(), at(NOW), 1, |_| {})
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

    let err = import::jsonl(&stack.app.store, &tenant("acme"), input.as_bytes(), at(NOW), 2, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "line 4: status: is required");
    match err {
        ImportError::BadLine { line, field, why } => {
            assert_eq!(line, 4);
            assert_eq!(field.as_deref(), Some("status"));
            assert_eq!(why, "is required");
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

#[tokio::test]
async fn seed_000_imports_as_its_envelope_and_is_served_field_for_field() {
    let stack = stack("2025-01-15T11:00:00Z").await;
    let line = seed_000().to_string();
    import::jsonl(
        &stack.app.store,
        &tenant("user_123"),
        line.as_bytes(),
        stack.app.clock.now(),
        1,
        |_| {},
    )
    .await
    .unwrap();

    let reply = fetch(&stack, "user_123", "call_123").await;
    assert_eq!(reply.status, 200);
    assert_contains(&seed_000(), &reply.body, "", &[".data.recordingUrl"]);
    assert_eq!(reply.body["data"]["updatedAt"], "2025-01-15T11:00:00Z");
}

/// A call of every part (messages with word timings, a tool call, costs, latency, events) as get-call serves
/// it: the line each invalid case below breaks in one place.
fn rich_line(stack: &Stack) -> Value {
    let call = Generator::new(3).call(
        &tenant("acme"),
        "rich",
        CallStatus::Completed,
        Direction::Inbound,
        at("2025-02-28T10:00:00Z"),
        3,
    );
    let state = recording::state(
        &call.summary,
        call.recording.as_ref(),
        stack.app.config.retention,
        at(NOW),
    );
    serde_json::to_value(CallDetail::new(call, state, None).unwrap()).unwrap()
}

#[tokio::test]
async fn each_kind_of_invalid_field_is_refused_by_line_and_path_and_nothing_of_its_line_is_written() {
    let stack = stack(NOW).await;
    let rich = rich_line(&stack);
    assert!(rich["messages"][0]["words"].is_array() && rich["costBreakdown"][1].is_object());
    // The line before each bad one: written again by every import, which changes nothing.
    let (good, _) = jsonl(&stack, 1);
    import::jsonl(&stack.app.store, &tenant("acme"), good.as_bytes(), at(NOW), 1, |_| {})
        .await
        .unwrap();
    let before = items(&stack).await;

    let one_second_before_start = {
        let start = at(rich["startTime"].as_str().unwrap());
        (start - Duration::seconds(1)).to_rfc3339()
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/colour", json!("blue"), "colour"),
        (
            "/messages/0/words/1/confidence",
            json!(0.9),
            "messages[0].words[1].confidence",
        ),
        ("/status", json!("done"), "status"),
        ("/messages/1/role", json!("bot"), "messages[1].role"),
        ("/recordingFormat", json!("exe"), "recordingFormat"),
        ("/from", json!("4155550100"), "from"),
        ("/phoneNumber/number", json!("+12"), "phoneNumber.number"),
        ("/startTime", json!("+10000-01-01T00:00:00Z"), "startTime"),
        ("/createdAt", json!("-0001-01-01T00:00:00Z"), "createdAt"),
        (
            "/messages/1/timestamp",
            json!("2025-03-02T00:00:01Z"),
            "messages[1].timestamp",
        ),
        (
            "/events/0/timestamp",
            json!("1969-12-31T23:59:59Z"),
            "events[0].timestamp",
        ),
        ("/endTime", json!(one_second_before_start), "endTime"),
        ("/duration", json!(-1), "duration"),
        ("/messages/0/words/1/end", json!(-0.25), "messages[0].words[1].end"),
        ("/latency/e2e/p50", json!(1.0000001), "latency.e2e.p50"),
        ("/evaluation/score", json!(1e300), "evaluation.score"),
        ("/cost", json!(0.45), "cost"),
        ("/costBreakdown/1/amount", json!("-0.15"), "costBreakdown[1].amount"),
        (
            "/costBreakdown/0/unitPrice",
            json!("0.00000000001"),
            "costBreakdown[0].unitPrice",
        ),
        ("/currency", json!("usd"), "currency"),
        ("/currency", json!("XXX"), "currency"),
        ("/assistantId", json!("a".repeat(129)), "assistantId"),
        ("/telephony/callSid", json!("C".repeat(129)), "telephony.callSid"),
        ("/messages/0/content", json!("a".repeat(100_001)), "messages[0].content"),
        ("/callMetadata", json!({"blob": "x".repeat(17_000)}), "callMetadata"),
        ("/id", json!(42), "id"),
        ("/id", json!("a/b"), "id"),
    ];
    for (i, (pointer, bad, path)) in cases.into_iter().enumerate() {
        let mut call = rich.clone();
        call["id"] = json!(format!("bad_{i}"));
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        call.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.to_owned(), bad);
        // `good` ends with its newline.
        let input = format!("{good}{call}\n");
        let err = import::jsonl(&stack.app.store, &tenant("acme"), input.as_bytes(), at(NOW), 1, |_| {})
            .await
            .unwrap_err();
        match err {
            ImportError::BadLine { line, field, why } => {
                assert_eq!((line, field.as_deref()), (2, Some(path)), "{pointer}: {why}");
            }
            other => panic!("{pointer}: {other}"),
        }
        assert_eq!(items(&stack).await, before, "{pointer}: nothing of line 2 written");
    }

    // In an envelope the path starts at `data`; a line that is not JSON names no field.
    let mut call = rich.clone();
    call["status"] = json!("done");
    let envelope = json!({"success": true, "data": call}).to_string();
    for (line, field, starts) in [
        (envelope.as_str(), Some("data.status"), "unknown variant"),
        ("{oops", None, "not JSON"),
    ] {
        let err = import::jsonl(&stack.app.store, &tenant("acme"), line.as_bytes(), at(NOW), 1, |_| {})
            .await
            .unwrap_err();
        match err {
            ImportError::BadLine { line: 1, field: f, why } => {
                assert_eq!(f.as_deref(), field);
                assert!(why.starts_with(starts), "{why}");
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(items(&stack).await, before);
}
