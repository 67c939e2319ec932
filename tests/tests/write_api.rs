//! The write routes through write-call's entry point (and recording-check's, for uploads), against DynamoDB
//! Local and the S3 emulator: PUT, PATCH, DELETE, erasure, recording upload, scopes and tenants.

use std::collections::BTreeSet;

use callrecords::model::CallRecord;
use callrecords::store::calls::Condition;
use callrecords::{validate, TenantId};
use integration_tests::*;
use serde_json::{json, Value};

const NOW: &str = "2025-01-15T11:00:00Z";

/// Fields the server derives or owns: accepted in a body, never taken from it.
const SERVER_FIELDS: [&str; 10] = [
    "messagesCount",
    "transcript",
    "recordingUrl",
    "recordingUrlExpiresAt",
    "recordingExpiresAt",
    "recordingFailureReason",
    "recordingStatus",
    "recordingFormat",
    "recordingDuration",
    "updatedAt",
];

fn seed_call() -> Value {
    seed_000()["data"].clone()
}

/// `call` without the fields the server derives or owns.
fn written_part(call: &Value) -> Value {
    let mut call = call.clone();
    for field in SERVER_FIELDS {
        call.as_object_mut().unwrap().remove(field);
    }
    call
}

fn etag(reply: &Reply) -> String {
    reply.headers["etag"].to_str().unwrap().to_owned()
}

async fn get(stack: &Stack, tenant: &str, id: &str) -> Reply {
    fetch(stack, tenant, id).await
}

/// A small call of `id` for `number` (outbound: `to` is the customer's number).
fn small_call(id: &str, number: &str, status: &str) -> Value {
    json!({
        "id": id, "direction": "outbound", "from": "+14155550100", "to": number, "status": status,
        "createdAt": "2025-01-15T10:00:00Z", "startTime": "2025-01-15T10:00:05Z",
        "callMetadata": {"crmId": "C-1", "campaign": "renewals"},
        "messages": [{"id": "m1", "role": "assistant", "content": "Hello.", "timestamp": "2025-01-15T10:00:06Z"}]
    })
}

#[tokio::test]
async fn put_then_get_is_the_call_field_for_field_and_the_same_put_again_changes_nothing() {
    let stack = stack(NOW).await;
    let body = seed_call();

    let created = Write::put("call_123", &body).send(&stack.app).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["location"], "/api/v1/calls/call_123");
    let tag = etag(&created);
    assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2, "{tag}");

    let got = get(&stack, "acme", "call_123").await;
    assert_eq!(got.status, 200);
    assert_eq!(etag(&got), tag, "GET carries the same ETag");
    assert_eq!(
        created.body["data"], got.body["data"],
        "PUT answers what GET now returns"
    );
    assert_contains(&written_part(&body), &got.body["data"], "", &[]);
    assert_eq!(got.body["data"]["messagesCount"], 6);
    assert_eq!(
        got.body["data"]["recordingStatus"], "none",
        "a recording comes by upload only"
    );

    let before = stack.counter.snapshot();
    let again = Write::put("call_123", &body).send(&stack.app).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(etag(&again), tag, "nothing changed");
    assert_eq!(again.body["data"], got.body["data"]);
    assert_eq!(
        stack.counter.since(before).requests,
        1,
        "an identical PUT costs one read and writes nothing"
    );
    assert_eq!(get(&stack, "acme", "call_123").await.body, got.body);
}

#[tokio::test]
async fn seed_003_written_in_our_format_round_trips() {
    let stack = stack("2026-12-01T00:00:00Z").await;
    let body: Value = serde_json::from_str(include_str!("../../fixtures/seed-003-call.json")).unwrap();
    let id = body["id"].as_str().unwrap().to_owned();

    let created = Write::put(&id, &body).send(&stack.app).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let got = get(&stack, "acme", &id).await;
    assert_eq!(got.status, 200);
    assert_contains(&written_part(&body), &got.body["data"], "", &[]);
    assert_eq!(
        got.body["data"]["messagesCount"].as_u64().unwrap() as usize,
        body["messages"].as_array().unwrap().len()
    );
}

#[tokio::test]
async fn get_edit_put_round_trips_and_a_stale_etag_is_refused() {
    let stack = stack(NOW).await;
    let first = Write::put("call_123", &seed_call()).send(&stack.app).await;
    let old_tag = etag(&first);

    // What GET serves goes back as it is, derived fields and all.
    let mut edited = get(&stack, "acme", "call_123").await.body["data"].clone();
    edited["summary"] = json!("Order status given.");
    let replaced = Write::put("call_123", &edited)
        .header("if-match", old_tag.clone())
        .send(&stack.app)
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_ne!(etag(&replaced), old_tag);
    assert_eq!(replaced.body["data"]["summary"], "Order status given.");

    let stale = Write::put("call_123", &seed_call())
        .header("if-match", old_tag)
        .send(&stack.app)
        .await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    assert_eq!(stale.body["error"]["code"], "PRECONDITION_FAILED");
    let stale_patch = Write::patch("call_123", &json!({"summary": "x"}))
        .header("if-match", "\"0000\"")
        .send(&stack.app)
        .await;
    assert_eq!(stale_patch.status, 412, "{}", stale_patch.body);
    assert_eq!(
        get(&stack, "acme", "call_123").await.body["data"]["summary"],
        "Order status given.",
        "neither refused write changed the call"
    );

    let exists = Write::put("call_123", &seed_call())
        .header("if-none-match", "*")
        .send(&stack.app)
        .await;
    assert_eq!(exists.status, 412, "{}", exists.body);
    let fresh = Write::put("call_new", &small_call("call_new", "+14155550177", "queued"))
        .header("if-none-match", "*")
        .send(&stack.app)
        .await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
}

#[tokio::test]
async fn an_ended_call_never_goes_back_by_put_or_by_patch() {
    let stack = stack(NOW).await;
    assert_eq!(Write::put("call_123", &seed_call()).send(&stack.app).await.status, 201);
    let mut ringing = seed_call();
    ringing["status"] = json!("ringing");

    let by_put = Write::put("call_123", &ringing).send(&stack.app).await;
    assert_eq!(by_put.status, 409, "{}", by_put.body);
    assert_eq!(by_put.body["error"]["code"], "CONFLICT");
    assert_eq!(by_put.body["error"]["details"]["field"], "status");
    let by_patch = Write::patch("call_123", &json!({"status": "ringing"}))
        .send(&stack.app)
        .await;
    assert_eq!(by_patch.status, 409, "{}", by_patch.body);
    assert_eq!(by_patch.body["error"]["details"]["field"], "status");
    assert_eq!(
        get(&stack, "acme", "call_123").await.body["data"]["status"],
        "completed"
    );

    // A final status may be corrected to another final one; before the end any order goes.
    let failed = Write::patch("call_123", &json!({"status": "failed"}))
        .send(&stack.app)
        .await;
    assert_eq!(failed.status, 200, "{}", failed.body);
    let early = small_call("call_early", "+14155550177", "in-progress");
    assert_eq!(Write::put("call_early", &early).send(&stack.app).await.status, 201);
    let back = Write::patch("call_early", &json!({"status": "queued"}))
        .send(&stack.app)
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
}

#[tokio::test]
async fn patch_merges_objects_removes_with_null_and_replaces_arrays() {
    let stack = stack(NOW).await;
    let call = small_call("call_p", "+14155550177", "in-progress");
    assert_eq!(Write::put("call_p", &call).send(&stack.app).await.status, 201);

    let patch = json!({
        "callMetadata": {"campaign": null, "outcome": "renewed"},
        "status": "completed", "endTime": "2025-01-15T10:05:00Z",
        "messages": [{"id": "m9", "role": "user", "content": "Bye.", "timestamp": "2025-01-15T10:04:59Z"}]
    });
    let patched = Write::patch("call_p", &patch).send(&stack.app).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let data = &get(&stack, "acme", "call_p").await.body["data"];
    assert_eq!(data["callMetadata"], json!({"crmId": "C-1", "outcome": "renewed"}));
    assert_eq!(data["status"], "completed");
    assert_eq!(data["to"], "+14155550177", "untouched fields stay");
    assert_eq!(data["messages"].as_array().unwrap().len(), 1);
    assert_eq!(data["messages"][0]["id"], "m9");

    let bad = Write::patch("call_p", &json!({"messages": [{"id": "m1", "role": "bot"}]}))
        .send(&stack.app)
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.body["error"]["details"]["field"], "messages[0].role");
    let missing = Write::patch("call_none", &json!({"summary": "x"}))
        .send(&stack.app)
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let mut wrong_type = Write::patch("call_p", &json!({"summary": "x"}));
    wrong_type.content_type = "application/json";
    let wrong_type = wrong_type.send(&stack.app).await;
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.body);
    assert_eq!(wrong_type.body["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn patches_at_once_each_keep_their_change() {
    let stack = stack(NOW).await;
    let call = small_call("call_c", "+14155550177", "in-progress");
    assert_eq!(Write::put("call_c", &call).send(&stack.app).await.status, 201);

    let writers: Vec<_> = (0..8)
        .map(|i| {
            let patch = json!({"callMetadata": {format!("k{i}"): i}});
            let app = &stack.app;
            async move { Write::patch("call_c", &patch).send(app).await.status }
        })
        .collect();
    let statuses = futures_join(writers).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let metadata = get(&stack, "acme", "call_c").await.body["data"]["callMetadata"].clone();
    let keys: BTreeSet<&str> = metadata.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want: BTreeSet<String> = (0..8).map(|i| format!("k{i}")).collect();
    want.insert("crmId".into());
    want.insert("campaign".into());
    assert_eq!(
        keys,
        want.iter().map(String::as_str).collect(),
        "no PATCH lost another's change"
    );
    assert_eq!(
        call_items(&stack, "acme", "call_c").await,
        2,
        "one summary, one content part"
    );
}

async fn futures_join<F: std::future::Future<Output = u16>>(all: Vec<F>) -> Vec<u16> {
    let mut set = Vec::new();
    for f in all {
        set.push(f);
    }
    let mut out = Vec::new();
    let joined = futures::future::join_all(set).await;
    out.extend(joined);
    out
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let stack = stack(NOW).await;
    let mut bad_time = seed_call();
    bad_time["messages"][3]["timestamp"] = json!("yesterday");
    let mut other_id = seed_call();
    other_id["id"] = json!("call_999");
    let mut unknown = seed_call();
    unknown["colour"] = json!("blue");
    for (body, field) in [
        (bad_time, "messages[3].timestamp"),
        (other_id, "id"),
        (unknown, "colour"),
        (json!([1, 2]), ""),
    ] {
        let reply = Write::put("call_123", &body).send(&stack.app).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.body["error"]["code"], "INVALID_PARAMETER");
        if !field.is_empty() {
            assert_eq!(reply.body["error"]["details"]["field"], field);
        }
    }
    let mut not_json = Write::put("call_123", &seed_call());
    not_json.body = Some("{\"id\": ".into());
    let reply = not_json.send(&stack.app).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["details"]["field"], "body");
    let mut huge = Write::put("call_123", &seed_call());
    huge.body = Some(" ".repeat(validate::MAX_BODY_BYTES + 1));
    assert_eq!(huge.send(&stack.app).await.status, 413);
    let mut no_type = Write::put("call_123", &seed_call());
    no_type.content_type = "text/plain";
    assert_eq!(no_type.send(&stack.app).await.status, 415);
    let weak = Write::put("call_123", &seed_call())
        .header("if-match", "W/\"x\"")
        .send(&stack.app)
        .await;
    assert_eq!(weak.status, 400);
    assert_eq!(weak.body["error"]["details"]["field"], "If-Match");
    assert_eq!(get(&stack, "acme", "call_123").await.status, 404, "nothing was written");
}

#[tokio::test]
async fn a_read_only_key_is_refused_on_every_write_route() {
    let stack = stack(NOW).await;
    let body = seed_call();
    assert_eq!(Write::put("call_123", &body).send(&stack.app).await.status, 201);
    let mut routes = vec![
        ("PUT /api/v1/calls/{callId}", Write::put("call_123", &body)),
        (
            "PATCH /api/v1/calls/{callId}",
            Write::patch("call_123", &json!({"summary": "x"})),
        ),
        ("DELETE /api/v1/calls/{callId}", Write::new("DELETE", Some("call_123"))),
    ];
    let mut erase = Write::new("DELETE", None);
    erase.query = vec![("phoneNumber", "+905551234567")];
    routes.push(("DELETE /api/v1/calls", erase));
    let mut upload = Write::new("POST", Some("call_123")).body(&json!({"format": "wav", "contentLength": 100}));
    upload.recording = true;
    routes.push(("POST /api/v1/calls/{callId}/recording", upload));
    for (route, mut write) in routes {
        write.scopes = "calls:read";
        let reply = write.send(&stack.app).await;
        assert_eq!(reply.status, 403, "{route}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "FORBIDDEN");
        assert_eq!(
            reply.body["error"]["details"],
            json!({"route": route, "scope": "calls:write"})
        );
    }
    let data = get(&stack, "acme", "call_123").await.body["data"].clone();
    assert_eq!(data["summary"], Value::Null, "nothing changed");
    assert_eq!(call_items(&stack, "acme", "call_123").await, 2);
}

#[tokio::test]
async fn a_write_under_another_tenant_touches_only_that_tenants_call() {
    let stack = stack(NOW).await;
    let a = small_call("call_shared", "+14155550177", "completed");
    assert_eq!(Write::put("call_shared", &a).send(&stack.app).await.status, 201);

    let mut b = a.clone();
    b["summary"] = json!("globex's own");
    let by_b = Write::put("call_shared", &b).tenant("globex").send(&stack.app).await;
    assert_eq!(by_b.status, 201, "a new call for globex: {}", by_b.body);
    let patched = Write::patch("call_shared", &json!({"summary": "globex again"}))
        .tenant("globex")
        .send(&stack.app)
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(
        get(&stack, "acme", "call_shared").await.body["data"]["summary"],
        Value::Null
    );
    assert_eq!(
        get(&stack, "globex", "call_shared").await.body["data"]["summary"],
        "globex again"
    );

    let deleted = Write::new("DELETE", Some("call_shared"))
        .tenant("globex")
        .send(&stack.app)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        get(&stack, "acme", "call_shared").await.status,
        200,
        "acme's call stays"
    );
    let none = Write::new("DELETE", Some("call_other"))
        .tenant("globex")
        .send(&stack.app)
        .await;
    assert_eq!(none.status, 404);
}

/// Stores seed 000's call with its recording object, as the operator import does.
async fn call_with_recording(stack: &Stack) -> String {
    let tenant = TenantId::parse("acme").unwrap();
    let record: CallRecord = validate::call(&tenant, &seed_call(), None, stack.app.clock.now()).unwrap();
    let key = record.recording.as_ref().unwrap().key.clone().unwrap();
    put_object(stack, &key, b"m4a bytes").await;
    stack
        .app
        .store
        .put_call(&tenant, record, &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn delete_leaves_no_item_and_no_object_and_a_second_delete_is_404() {
    let stack = stack(NOW).await;
    let key = call_with_recording(&stack).await;
    assert_eq!(objects(&stack).await, vec![key.clone()]);
    assert!(call_items(&stack, "acme", "call_123").await >= 2);
    let other = small_call("call_keep", "+14155550177", "completed");
    assert_eq!(Write::put("call_keep", &other).send(&stack.app).await.status, 201);

    let deleted = Write::new("DELETE", Some("call_123")).send(&stack.app).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null, "no body");
    assert_eq!(call_items(&stack, "acme", "call_123").await, 0);
    assert!(objects(&stack).await.is_empty());
    assert_eq!(get(&stack, "acme", "call_123").await.status, 404);
    let listed = list_calls(&stack.app, request(&list_event("acme", &[("includeTotal", "true")]))).await;
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["call_keep"]);
    assert_eq!(listed.body["pagination"]["total"], 1);

    let again = Write::new("DELETE", Some("call_123")).send(&stack.app).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.body["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn when_the_recording_cannot_be_deleted_nothing_is() {
    let stack = stack(NOW).await;
    call_with_recording(&stack).await;
    let items = call_items(&stack, "acme", "call_123").await;
    // The same table, with a bucket that does not exist: S3 refuses every delete.
    let mut config = stack.app.config.clone();
    config.bucket_name = format!("{}-missing", config.bucket_name);
    let broken = callrecords::App::connect(config, stack.app.clock.clone(), None).await;

    let reply = Write::new("DELETE", Some("call_123")).send(&broken).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert!(reply.headers.contains_key("retry-after"));
    assert_eq!(
        call_items(&stack, "acme", "call_123").await,
        items,
        "the call is intact"
    );
    assert_eq!(get(&stack, "acme", "call_123").await.status, 200);
    assert_eq!(objects(&stack).await.len(), 1);

    assert_eq!(
        Write::new("DELETE", Some("call_123")).send(&stack.app).await.status,
        204,
        "a retry works"
    );
}

#[tokio::test]
async fn erasure_of_a_number_with_250_calls_takes_3_requests_and_leaves_every_other_call() {
    let stack = stack(NOW).await;
    let tenant = TenantId::parse("acme").unwrap();
    let now = stack.app.clock.now();
    let mut records = Vec::new();
    for i in 0..250 {
        let call = small_call(&format!("call_e{i:03}"), "+14155550177", "completed");
        records.push(validate::call(&tenant, &call, None, now).unwrap());
    }
    for i in 0..20 {
        let call = small_call(&format!("call_o{i:03}"), "+14155550188", "completed");
        records.push(validate::call(&tenant, &call, None, now).unwrap());
    }
    stack
        .app
        .store
        .put_calls(&tenant, records, 4, chrono::Utc::now())
        .await
        .unwrap();
    let globex = small_call("call_e000", "+14155550177", "completed");
    assert_eq!(
        Write::put("call_e000", &globex)
            .tenant("globex")
            .send(&stack.app)
            .await
            .status,
        201
    );

    let mut answers = Vec::new();
    loop {
        let mut erase = Write::new("DELETE", None);
        erase.query = vec![("phoneNumber", "+1 (415) 555-0177")];
        let reply = erase.send(&stack.app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        answers.push(reply.body["data"].clone());
        if reply.body["data"]["hasMore"] == false || answers.len() > 5 {
            break;
        }
    }
    assert_eq!(
        answers,
        vec![
            json!({"deleted": 100, "hasMore": true}),
            json!({"deleted": 100, "hasMore": true}),
            json!({"deleted": 50, "hasMore": false}),
        ]
    );
    let left = |number: &'static str| {
        let app = &stack.app;
        async move {
            let reply = list_calls(
                app,
                request(&list_event(
                    "acme",
                    &[("phoneNumber", number), ("includeTotal", "true")],
                )),
            )
            .await;
            reply.body["pagination"]["total"].as_u64().unwrap()
        }
    };
    assert_eq!(left("+14155550177").await, 0);
    assert_eq!(left("+14155550188").await, 20, "every other call intact");
    assert_eq!(
        get(&stack, "globex", "call_e000").await.status,
        200,
        "another tenant's call stays"
    );

    let mut bad = Write::new("DELETE", None);
    bad.query = vec![("phoneNumber", "+14155550177"), ("status", "completed")];
    let reply = bad.send(&stack.app).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["details"]["field"], "status");
    let none = Write::new("DELETE", None).send(&stack.app).await;
    assert_eq!(none.status, 400);
    assert_eq!(none.body["error"]["details"]["field"], "phoneNumber");
}

/// Starts an upload of `bytes` as `format` for `call_id`, sends the bytes to the link as a client would,
/// and runs the check the bucket's event starts.
async fn upload(stack: &Stack, call_id: &str, format: &str, bytes: Vec<u8>) -> (Reply, Value) {
    let mut start = Write::new("POST", Some(call_id)).body(&json!({"format": format, "contentLength": bytes.len()}));
    start.recording = true;
    let started = start.send(&stack.app).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let data = &started.body["data"];
    assert_eq!(data["method"], "PUT");
    let mut put = ureq::put(data["uploadUrl"].as_str().unwrap());
    for (name, value) in data["headers"].as_object().unwrap() {
        if name != "content-length" {
            put = put.header(name.as_str(), value.as_str().unwrap());
        }
    }
    let sent = put.send(&bytes[..]).expect("the presigned PUT is accepted");
    assert_eq!(sent.status(), 200);
    let status = get(stack, "acme", call_id).await.body["data"]["recordingStatus"].clone();
    assert_eq!(status, "pending", "pending until the check has run");
    let key = format!("recordings/acme/2025/01/15/{call_id}.{format}");
    let checked = check_recording(&stack.app, &key, bytes.len() as u64)
        .await
        .expect("checked");
    (started, checked)
}

#[tokio::test]
async fn an_uploaded_wav_becomes_completed_with_its_duration() {
    let stack = stack(NOW).await;
    let mut call = small_call("call_u", "+14155550177", "completed");
    call["endTime"] = json!("2025-01-15T10:05:00Z");
    assert_eq!(Write::put("call_u", &call).send(&stack.app).await.status, 201);

    let (_, checked) = upload(&stack, "call_u", "wav", wav(20_000)).await;
    assert_eq!(checked, json!({"status": "completed", "duration": 2.5}));
    let data = get(&stack, "acme", "call_u").await.body["data"].clone();
    assert_eq!(data["recordingStatus"], "completed");
    assert_eq!(data["recordingFormat"], "wav");
    assert_eq!(data["recordingDuration"], 2.5);
    assert_eq!(
        data["recordingExpiresAt"], "2025-02-14T10:05:00Z",
        "retention counts from the call's end"
    );
    let link = data["recordingUrl"].as_str().unwrap();
    assert_eq!(http_get(link), wav(20_000), "the link serves the bytes uploaded");

    // A PUT of the call keeps the recording, whatever its body says of it.
    let mut replaced = data.clone();
    replaced["recordingStatus"] = json!("none");
    replaced["summary"] = json!("renewed");
    let reply = Write::put("call_u", &replaced).send(&stack.app).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["recordingStatus"], "completed");
    assert_eq!(reply.body["data"]["recordingDuration"], 2.5);
}

#[tokio::test]
async fn bytes_that_are_not_the_claimed_format_fail_and_are_not_kept() {
    let stack = stack(NOW).await;
    let call = small_call("call_f", "+14155550177", "completed");
    assert_eq!(Write::put("call_f", &call).send(&stack.app).await.status, 201);

    let (_, checked) = upload(&stack, "call_f", "mp3", wav(8_000)).await;
    assert_eq!(checked["status"], "failed", "{checked}");
    let data = get(&stack, "acme", "call_f").await.body["data"].clone();
    assert_eq!(data["recordingStatus"], "failed");
    assert_eq!(data["recordingFailureReason"], checked["reason"]);
    assert!(data["recordingUrl"].is_null());
    assert!(objects(&stack).await.is_empty(), "a failed upload is deleted");

    // The same event again (deliveries repeat) changes nothing.
    let key = "recordings/acme/2025/01/15/call_f.mp3";
    let again = check_recording(&stack.app, key, 16_044).await.unwrap();
    assert_eq!(again, json!({"status": "deleted"}));
    assert_eq!(get(&stack, "acme", "call_f").await.body["data"], data);
}

#[tokio::test]
async fn uploads_are_refused_for_opted_out_calls_and_missing_calls() {
    let stack = stack(NOW).await;
    let mut call = small_call("call_o", "+14155550177", "completed");
    call["optOutSensitiveDataStorage"] = json!(true);
    assert_eq!(Write::put("call_o", &call).send(&stack.app).await.status, 201);
    let mut start = Write::new("POST", Some("call_o")).body(&json!({"format": "wav", "contentLength": 10}));
    start.recording = true;
    let reply = start.send(&stack.app).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.body["error"]["details"]["field"], "optOutSensitiveDataStorage");

    start.call_id = Some("call_missing");
    assert_eq!(start.send(&stack.app).await.status, 404);
    start.call_id = Some("call_o");
    start.body = Some(json!({"format": "flac", "contentLength": 10}).to_string());
    let reply = start.send(&stack.app).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["details"]["field"], "format");
    start.body = Some(json!({"format": "wav", "contentLength": 0}).to_string());
    assert_eq!(
        start.send(&stack.app).await.body["error"]["details"]["field"],
        "contentLength"
    );
}

#[tokio::test]
async fn a_put_and_the_recording_check_at_once_lose_neither() {
    let stack = stack(NOW).await;
    let mut call = small_call("call_r", "+14155550177", "completed");
    call["endTime"] = json!("2025-01-15T10:05:00Z");
    assert_eq!(Write::put("call_r", &call).send(&stack.app).await.status, 201);
    let key = "recordings/acme/2025/01/15/call_r.wav";
    let bytes = wav(8_000);
    for round in 0..20 {
        let mut start =
            Write::new("POST", Some("call_r")).body(&json!({"format": "wav", "contentLength": bytes.len()}));
        start.recording = true;
        assert_eq!(start.send(&stack.app).await.status, 201);
        put_object(&stack, key, bytes.clone()).await;
        let mut body = call.clone();
        body["summary"] = json!(format!("round {round}"));
        let put = Write::put("call_r", &body);
        let (written, checked) = tokio::join!(
            put.send(&stack.app),
            check_recording(&stack.app, key, bytes.len() as u64)
        );
        assert_eq!(written.status, 200, "{}", written.body);
        assert_eq!(checked.unwrap(), json!({"status": "completed", "duration": 1.0}));
        let data = get(&stack, "acme", "call_r").await.body["data"].clone();
        assert_eq!(
            data["summary"],
            format!("round {round}"),
            "round {round}: the PUT stands"
        );
        assert_eq!(data["recordingStatus"], "completed", "round {round}: the check stands");
    }
}

#[tokio::test]
async fn puts_meeting_recording_changes_are_written_again_never_lost() {
    use callrecords::model::{RecordingStatus, StoredRecording};
    let stack = stack(NOW).await;
    let call = small_call("call_m", "+14155550177", "completed");
    assert_eq!(Write::put("call_m", &call).send(&stack.app).await.status, 201);
    let tenant = TenantId::parse("acme").unwrap();
    let id = callrecords::CallId::parse("call_m").unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);

    // One writer of the call whole, one of its recording alone, as fast as they go.
    let puts = async {
        let mut answers = Vec::new();
        for n in 0..40 {
            let mut body = call.clone();
            body["summary"] = json!(format!("v{n}"));
            let reply = Write::put("call_m", &body).send(&stack.app).await;
            answers.push((n, reply.status, reply.body["data"]["summary"].clone()));
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        answers
    };
    let recordings = async {
        let mut changes = 0u32;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let read = stack.app.store.read_for_update(&tenant, &id).await.unwrap().unwrap();
            let recording = StoredRecording {
                status: RecordingStatus::Pending,
                format: Some("wav".into()),
                duration: Some(f64::from(changes)),
                key: Some("recordings/acme/2025/01/15/call_m.wav".into()),
                recorded_at: None,
                failure_reason: None,
            };
            if stack
                .app
                .store
                .update_recording(&tenant, &id, &read, &recording)
                .await
                .unwrap()
                .is_some()
            {
                changes += 1;
            }
        }
        changes
    };
    let (answers, changes) = tokio::join!(puts, recordings);
    assert!(changes > 40, "the recording changed {changes} times meanwhile");
    for (n, status, summary) in answers {
        assert_eq!(status, 200);
        assert_eq!(summary, format!("v{n}"), "PUT {n} answered with what it wrote");
    }
    let data = get(&stack, "acme", "call_m").await.body["data"].clone();
    assert_eq!(data["summary"], "v39", "the last PUT stands");
    assert_eq!(data["recordingStatus"], "pending", "and so does the recording");
}

#[tokio::test]
async fn a_call_that_opts_out_later_loses_its_recording_and_its_object() {
    let stack = stack(NOW).await;
    let mut call = small_call("call_oo", "+14155550177", "completed");
    call["endTime"] = json!("2025-01-15T10:05:00Z");
    assert_eq!(Write::put("call_oo", &call).send(&stack.app).await.status, 201);
    let (_, checked) = upload(&stack, "call_oo", "wav", wav(8_000)).await;
    assert_eq!(checked["status"], "completed");
    assert_eq!(objects(&stack).await.len(), 1);
    let patch = json!({"optOutSensitiveDataStorage": true});
    let reply = Write::patch("call_oo", &patch).send(&stack.app).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = get(&stack, "acme", "call_oo").await.body["data"].clone();
    assert_eq!(data["recordingStatus"], "none", "{data}");
    assert_eq!(data["recordingUrl"], Value::Null);
    assert_eq!(data["messages"], Value::Null);
    assert!(objects(&stack).await.is_empty(), "the recording's object is deleted");
}
