//! The write protocol against DynamoDB Local and the S3 emulator: concurrent writers of one call, a writer
//! that stops between its steps, the expiry job racing a rewrite, rows that cannot be read, and bulk writes
//! that name one call twice.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use callrecords::expiry::{self, Expired, SweepOptions};
use callrecords::model::CallRecord;
use callrecords::store::calls::{Condition, Written};
use callrecords::store::{layout, DynamoStore};
use callrecords::{validate, CallId, TenantId};
use chrono::{DateTime, Utc};
use integration_tests::*;
use serde_json::{json, Value};

const NOW: &str = "2025-03-01T00:00:00Z";

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// Seed 000's call as `id`, through the validated boundary, with `change` applied to its JSON first.
fn seed_call(id: &str, now: DateTime<Utc>, change: impl FnOnce(&mut Value)) -> CallRecord {
    let mut value = seed_000()["data"].clone();
    value["id"] = Value::String(id.into());
    change(&mut value);
    validate::call(&acme(), &value, None, now).expect("a valid call")
}

/// Text that LZ4 cannot shrink much: `n` bytes of pseudo-random letters.
fn noise(seed: u64, n: usize) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (b'a' + ((x >> 33) % 26) as u8) as char
        })
        .collect()
}

/// Writer `w`'s version of the race call in round `r`: one content part, or (when `big`) several.
fn version(r: u32, w: u32, big: bool) -> CallRecord {
    seed_call("race", at(NOW), |v| {
        v["callMetadata"] = json!({"round": r, "writer": w});
        if big {
            let messages: Vec<Value> = (0..15)
                .map(|i| {
                    json!({"id": format!("m{i}"), "role": if i % 2 == 0 { "assistant" } else { "user" },
                       "content": noise(u64::from(r * 100 + w) * 1000 + i, 12_500),
                       "timestamp": "2025-01-15T10:31:00Z"})
                })
                .collect();
            v["messages"] = Value::Array(messages);
        }
    })
}

/// Every item of a call's partition as (sort key, content version of the summary), read consistently.
async fn partition(store: &DynamoStore, id: &str) -> Vec<(String, Option<String>)> {
    let out = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("#p = :p")
        .expression_attribute_names("#p", layout::PK)
        .expression_attribute_values(
            ":p",
            AttributeValue::S(layout::call_pk(&acme(), &CallId::parse(id).unwrap())),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(
        out.last_evaluated_key().is_none(),
        "one page holds a partition's items here"
    );
    out.items()
        .iter()
        .map(|item| {
            (
                item[layout::SK].as_s().unwrap().clone(),
                item.get(layout::CONTENT_VERSION).map(|v| v.as_s().unwrap().clone()),
            )
        })
        .collect()
}

/// Asserts that a partition holds the summary and exactly the parts of the version it names; returns that
/// part count.
async fn only_current_parts(store: &DynamoStore, id: &str) -> usize {
    let items = partition(store, id).await;
    let version = items
        .iter()
        .find(|(sk, _)| sk == layout::SUMMARY_SK)
        .and_then(|(_, v)| v.clone())
        .expect("a summary with a content version");
    let parts: Vec<_> = items.iter().filter(|(sk, _)| sk != layout::SUMMARY_SK).collect();
    for (sk, _) in &parts {
        assert_eq!(
            layout::parse_part_sk(sk).map(|(v, _)| v),
            Some(version.as_str()),
            "{sk}: a part of another version is left"
        );
    }
    parts.len()
}

/// Whether writer `w` writes a multi-part version in round `r`: every writer in even rounds, every other
/// writer in odd ones (so a multi-part version is replaced by a one-part one and the other way round, and
/// writers of both sizes race each other).
fn big(r: u32, w: u32) -> bool {
    r.is_multiple_of(2) || w.is_multiple_of(2)
}

#[tokio::test]
async fn eight_concurrent_writers_always_leave_one_whole_version_and_no_other_parts() {
    let stack = Arc::new(stack(NOW).await);
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    let mut part_counts = std::collections::BTreeSet::new();
    for round in 0..50u32 {
        let writers: Vec<_> = (0..8u32)
            .map(|w| {
                let stack = Arc::clone(&stack);
                tokio::spawn(async move {
                    let record = version(round, w, big(round, w));
                    stack
                        .app
                        .store
                        .put_call(&acme(), record, &Condition::Always, at(NOW))
                        .await
                })
            })
            .collect();
        for writer in writers {
            let name = match writer.await.unwrap().expect("every write ends") {
                Written::Created { .. } => "created",
                Written::Replaced { .. } => "replaced",
                Written::Superseded => "superseded",
                Written::Unchanged { .. } => "unchanged",
                Written::PreconditionFailed => "precondition failed",
                Written::Refused { .. } => "refused",
            };
            *outcomes.entry(name).or_default() += 1;
        }

        let reply = fetch(&stack, "acme", "race").await;
        assert_eq!(reply.status, 200, "round {round}: {}", reply.body);
        let data = &reply.body["data"];
        assert_eq!(
            data["callMetadata"]["round"], round,
            "round {round}: a version of this round"
        );
        let w = data["callMetadata"]["writer"].as_u64().expect("a writer") as u32;
        let expected = version(round, w, big(round, w));
        let served = &data["messages"];
        assert_eq!(
            served,
            &serde_json::to_value(&expected.content.messages).unwrap(),
            "round {round}: the content of writer {w}'s version, whole"
        );
        let parts = only_current_parts(&stack.app.store, "race").await;
        assert_eq!(
            parts > 1,
            big(round, w),
            "round {round}: part count {parts} of writer {w}"
        );
        part_counts.insert(parts);
    }
    println!("outcomes over 400 writes: {outcomes:?}; part counts seen: {part_counts:?}");
    assert_eq!(outcomes.values().sum::<u32>(), 400);
    assert!(
        part_counts.contains(&1) && part_counts.iter().any(|&n| n > 1),
        "{part_counts:?}"
    );
    assert!(!outcomes.contains_key("precondition failed"));
}

/// Fails every TransactWriteItems after the first `allowed` while armed: a writer that stops after its
/// commit, before its clean-up.
#[derive(Debug, Clone)]
struct StopAfterCommit {
    armed: Arc<AtomicBool>,
    seen: Arc<AtomicU32>,
    allowed: u32,
}

impl Intercept for StopAfterCommit {
    fn name(&self) -> &'static str {
        "StopAfterCommit"
    }

    fn read_before_execution(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.armed.load(Ordering::SeqCst) || ctx.input().downcast_ref::<TransactWriteItemsInput>().is_none() {
            return Ok(());
        }
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.allowed {
            Ok(())
        } else {
            Err("the writer stopped here".into())
        }
    }
}

#[tokio::test]
async fn content_replaced_by_a_writer_that_stopped_before_its_clean_up_is_removed_by_the_hourly_job() {
    let stack = stack(NOW).await;
    let t = acme();
    put(&stack, version(0, 0, true), at(NOW)).await;
    let old_parts = only_current_parts(&stack.app.store, "race").await;
    assert!(old_parts > 1);

    let stop = StopAfterCommit {
        armed: Arc::new(AtomicBool::new(true)),
        seen: Arc::new(AtomicU32::new(0)),
        allowed: 1,
    };
    let client = stack.app.store.client();
    let stopping = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().interceptor(stop.clone()).build()),
        stack.app.store.table(),
    );
    let written = stopping
        .put_call(&t, version(1, 0, false), &Condition::Always, at(NOW))
        .await
        .unwrap();
    assert!(matches!(written, Written::Replaced { .. }), "{written:?}");
    assert!(
        stop.seen.load(Ordering::SeqCst) >= 2,
        "the clean-up was attempted and stopped"
    );

    let items = partition(&stack.app.store, "race").await;
    assert_eq!(
        items.len(),
        1 + 1 + old_parts,
        "the new part and every old one: {items:?}"
    );
    let data = fetch(&stack, "acme", "race").await.body["data"].clone();
    assert_eq!(data["callMetadata"]["round"], 1, "readers see the new version already");

    let early = sweep(&stack, at(NOW)).await;
    assert_eq!(early.stale_calls, 0, "a writer may still be finishing: {early:?}");

    let later = at(NOW) + expiry::CLEANUP_AFTER + chrono::Duration::seconds(1);
    let report = sweep(&stack, later).await;
    assert_eq!(
        (report.stale_calls, report.stale_parts),
        (1, old_parts as u64),
        "{report:?}"
    );
    assert_eq!(only_current_parts(&stack.app.store, "race").await, 1);
    assert_eq!(partition(&stack.app.store, "race").await.len(), 2);
    let again = sweep(&stack, later).await;
    assert_eq!(again.stale_calls, 0, "the call left the clean-up index");
    assert_eq!(
        fetch(&stack, "acme", "race").await.body["data"]["callMetadata"]["round"],
        1
    );
}

/// One run of the hourly job at `now`.
async fn sweep(stack: &Stack, now: DateTime<Utc>) -> expiry::SweepReport {
    let options = SweepOptions::until(Instant::now() + Duration::from_secs(60));
    expiry::sweep(
        &stack.app.store,
        &stack.app.recordings,
        stack.app.config.retention,
        now,
        &options,
    )
    .await
}

/// Writes `record` for acme, whatever is stored, dating any clean-up at `now`.
async fn put(stack: &Stack, record: CallRecord, now: DateTime<Utc>) -> Written {
    stack
        .app
        .store
        .put_call(&acme(), record, &Condition::Always, now)
        .await
        .expect("written")
}

/// Seed 000's call ended at 2025-01-15T10:35:30Z; with 30 days' retention its recording is due from here.
const DUE: &str = "2025-02-14T10:35:30Z";

async fn due_recording(stack: &Stack, now: &str) -> callrecords::store::DueRecording {
    let mut found = Vec::new();
    for shard in 0..layout::RECORDING_SHARDS {
        let page = stack
            .app
            .store
            .due_recordings(
                shard,
                at(now) - stack.app.config.retention.as_chrono() + chrono::Duration::seconds(1),
                None,
                100,
            )
            .await
            .unwrap();
        found.extend(page.due);
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

async fn recorded_call(stack: &Stack) -> String {
    let record = seed_call("rec", at(DUE), |_| {});
    let key = record.recording.as_ref().unwrap().key.clone().unwrap();
    put_object(stack, &key, b"audio").await;
    put(stack, record, at(DUE)).await;
    key
}

#[tokio::test]
async fn a_rewrite_racing_the_sweep_that_found_its_recording_keeps_the_recording() {
    let stack = stack(DUE).await;
    let key = recorded_call(&stack).await;
    let due = due_recording(&stack, DUE).await;

    // Between the sweep's Query and its mark, the call is rewritten: it ended ten days later, so its
    // recording is inside retention again.
    let later = seed_call("rec", at(DUE), |v| {
        v["startTime"] = json!("2025-01-25T10:30:00Z");
        v["endTime"] = json!("2025-01-25T10:35:30Z");
    });
    put(&stack, later, at(DUE)).await;

    assert_eq!(
        expiry::expire(&stack.app.store, &stack.app.recordings, &due).await,
        Expired::Skipped
    );
    assert_eq!(
        stack.app.recordings.head(&key).await.unwrap(),
        Some(5),
        "the object is still there"
    );
    let data = fetch(&stack, "acme", "rec").await.body["data"].clone();
    assert_eq!(data["recordingStatus"], "completed");
    assert!(data["recordingUrl"].is_string());
    let report = sweep(&stack, at(DUE)).await;
    assert_eq!((report.found, report.deleted), (0, 0), "{report:?}");
}

#[tokio::test]
async fn a_rewrite_after_the_mark_never_makes_the_expired_recording_live_again() {
    let stack = stack(DUE).await;
    let key = recorded_call(&stack).await;
    let due = due_recording(&stack, DUE).await;
    assert!(stack.app.store.mark_recording_expired(&due).await.unwrap());

    let later = seed_call("rec", at(DUE), |v| {
        v["endTime"] = json!("2025-01-25T10:35:30Z");
    });
    put(&stack, later, at(DUE)).await;

    assert_eq!(
        expiry::expire(&stack.app.store, &stack.app.recordings, &due).await,
        Expired::Skipped
    );
    let data = fetch(&stack, "acme", "rec").await.body["data"].clone();
    assert_eq!(data["recordingStatus"], "expired", "the object it names may be gone");
    assert_eq!(data["recordingUrl"], Value::Null);
    // The rewrite took the call out of the live-recordings index; the object is S3's lifecycle rule's.
    assert!(stack.app.recordings.head(&key).await.unwrap().is_some());
}

#[tokio::test]
async fn unreadable_rows_never_break_the_tenants_pages_total_or_sweep() {
    let stack = stack(DUE).await;
    let mut good = Vec::new();
    for i in 0..5 {
        let id = format!("good{i}");
        let record = seed_call(&id, at(DUE), |v| {
            v["startTime"] = json!(format!("2025-01-1{i}T10:30:00Z"));
        });
        put(&stack, record, at(DUE)).await;
        good.push(id);
    }
    put_unreadable_row(
        &stack,
        "acme",
        "broken",
        "2025-01-12T12:00:00.000000000Z#broken",
        "R#00",
    )
    .await;
    put_unreadable_row(
        &stack,
        "acme",
        "future",
        "+10000-01-01T00:00:00.000000000Z#future",
        "R#01",
    )
    .await;

    for sort in ["desc", "asc"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let mut query = vec![("limit", "2"), ("sort", sort)];
            if let Some(c) = &cursor {
                query.push(("cursor", c));
            }
            let reply = list(&stack, "acme", &query).await;
            assert_eq!(reply.status, 200, "{sort}: {}", reply.body);
            for call in reply.body["data"].as_array().unwrap() {
                seen.push(call["id"].as_str().unwrap().to_owned());
            }
            cursor = reply.body["pagination"]["nextCursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        let mut expected = good.clone();
        if sort == "desc" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{sort}: every readable call once, in order");
    }
    let reply = list(&stack, "acme", &[("includeTotal", "true")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["pagination"]["total"], 7,
        "the total counts index entries, the two bad rows too"
    );
    assert_eq!(fetch(&stack, "acme", "good3").await.status, 200);
    assert_eq!(
        fetch(&stack, "acme", "broken").await.status,
        500,
        "only the bad row's own read fails"
    );

    let report = sweep(&stack, at(DUE)).await;
    assert_eq!(report.unreadable, 2, "{report:?}");
    assert_eq!(report.marked, 5, "every readable due recording expired: {report:?}");
    assert!(report.complete, "{report:?}");
}

#[tokio::test]
async fn a_bulk_write_that_names_one_call_twice_writes_its_last_version_once() {
    let stack = stack(NOW).await;
    let records = vec![version(0, 0, true), version(0, 1, false), version(0, 2, true)];
    let other = seed_call("other", at(NOW), |_| {});
    let mut batch = records;
    batch.insert(1, other);
    stack.app.store.put_calls(&acme(), batch, 4, at(NOW)).await.unwrap();

    let data = fetch(&stack, "acme", "race").await.body["data"].clone();
    assert_eq!(data["callMetadata"]["writer"], 2, "the last version given");
    assert!(only_current_parts(&stack.app.store, "race").await > 1);
    assert_eq!(fetch(&stack, "acme", "other").await.status, 200);

    // Writing the same calls again changes nothing: not even the revision.
    let before = partition(&stack.app.store, "race").await;
    let written = put(&stack, version(0, 2, true), at(NOW)).await;
    assert!(matches!(written, Written::Unchanged { .. }), "{written:?}");
    assert_eq!(partition(&stack.app.store, "race").await, before);
}

#[tokio::test]
async fn what_a_write_costs_in_dynamodb_requests() {
    let stack = stack(NOW).await;
    let requests = |before| stack.counter.since(before).requests;

    let before = stack.counter.snapshot();
    assert!(matches!(
        put(&stack, version(0, 0, false), at(NOW)).await,
        Written::Created { .. }
    ));
    assert_eq!(
        requests(before),
        3,
        "a new call: GetItem, BatchWriteItem (parts), TransactWriteItems"
    );

    let before = stack.counter.snapshot();
    assert!(matches!(
        put(&stack, version(0, 0, false), at(NOW)).await,
        Written::Unchanged { .. }
    ));
    assert_eq!(
        requests(before),
        1,
        "the same call again: one consistent GetItem, nothing written"
    );

    let before = stack.counter.snapshot();
    let mut status_only = version(0, 0, false);
    status_only.summary.end_reason = Some("voicemail".into());
    assert!(matches!(
        put(&stack, status_only, at(NOW)).await,
        Written::Replaced { .. }
    ));
    assert_eq!(
        requests(before),
        2,
        "a summary change keeps the parts: GetItem, TransactWriteItems"
    );

    let before = stack.counter.snapshot();
    assert!(matches!(
        put(&stack, version(1, 0, true), at(NOW)).await,
        Written::Replaced { .. }
    ));
    assert_eq!(
        requests(before),
        6,
        "new content: GetItem, BatchWriteItem, TransactWriteItems, then the clean-up's Query, \
         TransactWriteItems and UpdateItem"
    );
    assert_eq!(only_current_parts(&stack.app.store, "race").await, 2);
}

#[tokio::test]
async fn a_bulk_write_shares_its_requests_and_two_at_once_over_the_same_calls_leave_each_whole() {
    let stack = stack(NOW).await;
    let group = |writer: u32, ids: std::ops::Range<u32>| -> Vec<CallRecord> {
        ids.map(|i| {
            seed_call(&format!("bulk_{i:03}"), at(NOW), |v| {
                v["callMetadata"] = json!({"writer": writer});
                if writer == 2 && i % 2 == 0 {
                    v["messages"][0]["content"] = json!(noise(u64::from(i), 4_000));
                }
            })
        })
        .collect()
    };

    // 64 new calls: two groups, each one BatchGetItem, two BatchWriteItems (32 parts) and one transaction.
    let before = stack.counter.snapshot();
    stack
        .app
        .store
        .put_calls(&acme(), group(1, 0..64), 2, at(NOW))
        .await
        .unwrap();
    assert_eq!(stack.counter.since(before).requests, 8);
    let before = stack.counter.snapshot();
    stack
        .app
        .store
        .put_calls(&acme(), group(1, 0..64), 2, at(NOW))
        .await
        .unwrap();
    assert_eq!(
        stack.counter.since(before).requests,
        2,
        "unchanged: one read per group, nothing written"
    );

    // Two bulk writers over the same 64 calls at once, with other content for half of them: whatever
    // commits first, every call ends whole, as one writer wrote it, with only its own parts.
    let tenant = acme();
    let (a, b) = tokio::join!(
        stack.app.store.put_calls(&tenant, group(2, 0..64), 2, at(NOW)),
        stack.app.store.put_calls(&tenant, group(3, 0..64), 2, at(NOW)),
    );
    a.unwrap();
    b.unwrap();
    for i in 0..64 {
        let id = format!("bulk_{i:03}");
        let reply = fetch(&stack, "acme", &id).await;
        assert_eq!(reply.status, 200, "{id}");
        let writer = reply.body["data"]["callMetadata"]["writer"].as_u64().unwrap();
        assert!(writer == 2 || writer == 3, "{id}: writer {writer}");
        let long = reply.body["data"]["messages"][0]["content"].as_str().unwrap().len() == 4_000;
        assert_eq!(
            long,
            writer == 2 && i % 2 == 0,
            "{id}: content and summary of the same writer"
        );
        assert_eq!(only_current_parts(&stack.app.store, &id).await, 1, "{id}");
    }
}
