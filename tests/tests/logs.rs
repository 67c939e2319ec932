//! Every request leaves one structured log line (request id, route, status, latency, tenant), no line ever
//! holds an API key or a phone number in clear, and every line written while an invocation is handled
//! carries that invocation's request id and trace id, under the real Lambda runtime.

use callrecords::model::{CallStatus, Direction};
use callrecords::store::calls::Condition;
use callrecords::synth::Generator;
use callrecords::{apikey, telemetry, TenantId};
use integration_tests::runtime_api::{Answer, Invocation, RuntimeApi};
use integration_tests::*;
use serde_json::Value;

const NOW: &str = "2025-03-01T00:00:00Z";

/// `ev` carrying `key`, a key stored in the table (no test key: the handler reads its record).
fn carrying(ev: Value, key: &str) -> Value {
    with_key(ev, Some(key))
}

#[tokio::test]
async fn each_request_logs_one_line_with_route_status_latency_and_tenant_and_never_a_key_or_number() {
    let stack = stack(NOW).await;
    let acme = TenantId::parse("acme").unwrap();
    let key = apikey::generate(&acme, "logs", &[apikey::Scope::CallsRead], at(NOW)).unwrap();
    stack.app.store.put_key(&key.record).await.unwrap();
    let mut call = Generator::new(3).call(&acme, "call_1", CallStatus::Completed, Direction::Inbound, at(NOW), 2);
    call.summary.from = Some("+1 (415) 555-0123".into());
    stack
        .app
        .store
        .put_call(&acme, call, &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();

    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(captured.clone()));

    let mut get = carrying(get_call_event(Some("acme"), "call_1"), &key.key);
    get["requestContext"]["requestId"] = Value::String("req-get".into());
    assert_eq!(get_call(&stack.app, request(&get)).await.status, 200);

    let mut listed = carrying(
        list_event("acme", &[("phoneNumber", "+14155550123"), ("limit", "5")]),
        &key.key,
    );
    listed["requestContext"]["requestId"] = Value::String("req-list".into());
    let reply = list_calls(&stack.app, request(&listed)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["data"][0]["from"], "+14155550123");

    let mut missing = carrying(get_call_event(Some("acme"), "call_nope"), &key.key);
    missing["requestContext"]["requestId"] = Value::String("req-missing".into());
    assert_eq!(get_call(&stack.app, request(&missing)).await.status, 404);

    let mut bad_key = carrying(list_event("acme", &[]), &format!("{}x", key.key));
    bad_key["requestContext"]["requestId"] = Value::String("req-unauthorized".into());
    assert_eq!(list_calls(&stack.app, request(&bad_key)).await.status, 401);

    let recording = carrying(get_recording_event("acme", "call_1", &[("format", "json")]), &key.key);
    assert_eq!(get_recording(&stack.app, request(&recording)).await.status, 200);

    let text = captured.text();
    let lines = captured.json_lines();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 5, "{text}");
    let expect = [
        ("req-get", "GET /api/v1/calls/{callId}", 200, Some("acme"), None),
        ("req-list", "GET /api/v1/calls", 200, Some("acme"), None),
        (
            "req-missing",
            "GET /api/v1/calls/{callId}",
            404,
            Some("acme"),
            Some("NOT_FOUND"),
        ),
        ("req-unauthorized", "GET /api/v1/calls", 401, None, Some("UNAUTHORIZED")),
    ];
    for (line, (id, route, status, tenant, error)) in requests.iter().zip(expect) {
        assert_eq!(line["apiRequestId"], id, "{line}");
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["tenant"].as_str(), tenant, "{line}");
        assert_eq!(line["error"].as_str(), error, "{line}");
        assert!(line["latencyMs"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
        assert_eq!(line["level"], "INFO");
    }
    assert_eq!(requests[4]["route"], "GET /api/v1/calls/{callId}/recording");

    // Neither the key (nor its secret part) nor the customer's number, in any spelling, appears anywhere.
    let secret = key.key.splitn(3, '_').nth(2).unwrap(); // crk, key id, secret (which may hold '_')
    assert!(!text.contains(&key.key) && !text.contains(secret), "{text}");
    for number in ["4155550123", "415) 555", "555-0123"] {
        assert!(!text.contains(number), "{number} in {text}");
    }
}

/// The trace header Lambda sends with invocation `n`, and the trace id in it.
fn trace(n: u32) -> (String, String) {
    let id = format!("1-67a0b1c2-00000000000000000000000{n}");
    (format!("Root={id};Parent=53995c3f42cd8ad{n};Sampled=1"), id)
}

#[tokio::test]
async fn every_line_of_an_invocation_carries_its_request_and_trace_id_even_from_deep_in_the_store() {
    let stack = stack(NOW).await;
    let acme = TenantId::parse("acme").unwrap();
    for i in 0..3 {
        let call = Generator::new(i).call(
            &acme,
            &format!("call_{i}"),
            CallStatus::Completed,
            Direction::Inbound,
            at(NOW),
            2,
        );
        stack
            .app
            .store
            .put_call(&acme, call, &Condition::Always, chrono::Utc::now())
            .await
            .unwrap();
    }
    // A row the list reads and cannot decode: the store logs it and goes on.
    put_unreadable_row(
        &stack,
        "acme",
        "broken",
        "2025-02-28T12:00:00.000000000Z#broken",
        "R#00",
    )
    .await;

    let (header_a, trace_a) = trace(1);
    let (header_b, trace_b) = trace(2);
    let api = RuntimeApi::start(vec![
        Invocation {
            request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
            trace_header: header_a,
            event: list_event("acme", &[("limit", "10")]),
        },
        Invocation {
            request_id: "9a1c2e3f-e9f4-11e8-9739-2dfe598c3fcd".into(),
            trace_header: header_b,
            event: list_event("acme", &[("limit", "10"), ("sort", "asc")]),
        },
    ])
    .await;
    api.lambda_env("list-calls");
    hold_key(&stack.app, "acme", READ);
    let captured = Captured::default();
    telemetry::init_to(captured.clone());

    // What list-calls' main runs.
    let answers = api
        .run(callrecords::http::run(|req| list_calls::handle(&stack.app, req)))
        .await;
    let ids: Vec<&str> = answers.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            "9a1c2e3f-e9f4-11e8-9739-2dfe598c3fcd"
        ]
    );
    for (_, answer) in &answers {
        let Answer::Response(response) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(response["statusCode"], 200, "{response}");
    }

    let text = captured.text();
    let logged: Vec<Value> = captured
        .json_lines()
        .into_iter()
        .filter(|l| l.get("level").is_some())
        .collect();
    let of = |request_id: &str| -> Vec<&Value> { logged.iter().filter(|l| l["requestId"] == request_id).collect() };
    let (a, b) = (of(ids[0]), of(ids[1]));
    assert_eq!(
        a.len() + b.len(),
        logged.len(),
        "every line belongs to one invocation: {text}"
    );
    for (lines, trace) in [(&a, &trace_a), (&b, &trace_b)] {
        let messages: Vec<&str> = lines.iter().map(|l| l["message"].as_str().unwrap()).collect();
        assert_eq!(messages, ["unreadable list row skipped", "request"], "{text}");
        for line in lines {
            assert_eq!(line["traceId"], trace.as_str(), "{line}");
            assert!(
                line.get("span").is_none() && line.get("spans").is_none(),
                "ids at the top level: {line}"
            );
        }
    }
    assert_eq!(a[1]["route"], "GET /api/v1/calls");
    assert!(
        a[1]["apiRequestId"].is_string(),
        "the request line keeps API Gateway's id: {}",
        a[1]
    );
    let position = |l: &Value| {
        text.lines()
            .position(|t| serde_json::from_str::<Value>(t).unwrap() == *l)
            .unwrap()
    };
    assert!(
        position(a[1]) < position(b[0]),
        "the invocations' lines in their order: {text}"
    );
}
