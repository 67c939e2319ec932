//! Every request leaves one structured log line (request id, route, status, latency, tenant), and no line
//! ever holds an API key or a phone number in clear.

use std::io::Write;
use std::sync::{Arc, Mutex};

use callrecords::model::{CallStatus, Direction};
use callrecords::store::calls::Condition;
use callrecords::synth::Generator;
use callrecords::{apikey, telemetry, TenantId};
use integration_tests::*;
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

const NOW: &str = "2025-03-01T00:00:00Z";

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A request as `cargo lambda watch` delivers it (no authorizer ran), with the key in its header.
fn with_key(mut ev: Value, key: &str) -> Value {
    ev["requestContext"].as_object_mut().unwrap().remove("authorizer");
    ev["headers"]["authorization"] = Value::String(format!("Bearer {key}"));
    ev
}

#[tokio::test]
async fn each_request_logs_one_line_with_route_status_latency_and_tenant_and_never_a_key_or_number() {
    let stack = stack_with(NOW, true).await;
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

    let mut get = with_key(get_call_event(Some("acme"), "call_1"), &key.key);
    get["requestContext"]["requestId"] = Value::String("req-get".into());
    assert_eq!(get_call(&stack.app, request(&get)).await.status, 200);

    let mut listed = with_key(
        list_event("acme", &[("phoneNumber", "+14155550123"), ("limit", "5")]),
        &key.key,
    );
    listed["requestContext"]["requestId"] = Value::String("req-list".into());
    let reply = list_calls(&stack.app, request(&listed)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["data"][0]["from"], "+14155550123");

    let mut missing = with_key(get_call_event(Some("acme"), "call_nope"), &key.key);
    missing["requestContext"]["requestId"] = Value::String("req-missing".into());
    assert_eq!(get_call(&stack.app, request(&missing)).await.status, 404);

    let mut bad_key = with_key(list_event("acme", &[]), &format!("{}x", key.key));
    bad_key["requestContext"]["requestId"] = Value::String("req-unauthorized".into());
    assert_eq!(list_calls(&stack.app, request(&bad_key)).await.status, 401);

    let recording = with_key(get_recording_event("acme", "call_1", &[("format", "json")]), &key.key);
    assert_eq!(get_recording(&stack.app, request(&recording)).await.status, 200);

    let text = captured.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
        .collect();
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
        assert_eq!(line["requestId"], id, "{line}");
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["tenant"].as_str(), tenant, "{line}");
        assert_eq!(line["error"].as_str(), error, "{line}");
        assert!(line["latencyMs"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
        assert_eq!(line["level"], "INFO");
    }
    assert_eq!(requests[4]["route"], "GET /api/v1/calls/{callId}/recording");

    // Neither the key (nor its secret part) nor the customer's number, in any spelling, appears anywhere.
    let secret = key.key.rsplit('_').next().unwrap();
    assert!(!text.contains(&key.key) && !text.contains(secret), "{text}");
    for number in ["4155550123", "415) 555", "555-0123"] {
        assert!(!text.contains(number), "{number} in {text}");
    }
}
