//! The CloudWatch metrics (embedded metric format) the functions write, read back as CloudWatch would:
//! names, units, dimension sets and values, one flush per invocation under the real Lambda runtime, the
//! failed invocations' too. Each test installs the process's metrics recorder (nextest runs each test in a
//! process of its own).

use callrecords::metrics::{self, ALL};
use callrecords::telemetry;
use integration_tests::emf::{self, EmittedMetric};
use integration_tests::runtime_api::{Answer, Invocation, RuntimeApi};
use integration_tests::*;
use serde_json::Value;

const NOW: &str = "2025-03-01T00:00:00Z";
const NAMESPACE: &str = "callrecords/test-stack";

/// The function's whole output (log lines and metrics), set up as its `main` does, in the namespace the
/// template gives the stack's functions.
fn output_of(api: &RuntimeApi, function: &str) -> Captured {
    std::env::set_var("METRICS_NAMESPACE", NAMESPACE);
    api.lambda_env(function);
    let captured = Captured::default();
    telemetry::init_to(captured.clone());
    captured
}

fn invocation(request_id: &str, event: Value) -> Invocation {
    Invocation {
        request_id: request_id.to_owned(),
        trace_header: "Root=1-67a0b1c2-5d6e7f8091a2b3c4d5e6f708;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        event,
    }
}

/// The value of metric `name` in `emitted`, which must hold it exactly once.
fn value_of(emitted: &[&EmittedMetric], name: &str) -> f64 {
    let found: Vec<_> = emitted.iter().filter(|m| m.name == name).collect();
    assert_eq!(found.len(), 1, "{name} once: {emitted:#?}");
    found[0].value
}

/// Asserts that every emitted metric is one of [`ALL`], with its unit and dimension set, from one of the
/// functions it lists, in the stack's namespace.
fn assert_declared(emitted: &[EmittedMetric]) {
    for m in emitted {
        assert_eq!(m.namespace, NAMESPACE, "{m:?}");
        let declared = ALL
            .iter()
            .find(|d| d.name == m.name && d.dimensions == m.dimensions.as_slice())
            .unwrap_or_else(|| panic!("not in metrics::ALL: {m:?}"));
        assert_eq!(m.unit.as_deref(), Some(declared.unit), "{m:?}");
        let function = m.dimension(metrics::FUNCTION).unwrap_or_default();
        assert!(declared.functions.contains(&function), "{m:?}");
    }
}

#[tokio::test]
async fn each_api_request_emits_requests_latency_and_errors_by_function_and_route_once_per_invocation() {
    let stack = stack(NOW).await;
    seed_call_with_recording(&stack, "call_123", 0).await;
    put_unreadable_row(
        &stack,
        "acme",
        "broken",
        "2025-02-28T12:00:00.000000000Z#broken",
        "R#00",
    )
    .await;
    let api = RuntimeApi::start(vec![
        invocation("inv-200", get_call_event(Some("acme"), "call_123")),
        invocation("inv-404", get_call_event(Some("acme"), "call_missing")),
        invocation(
            "inv-400",
            with_key(event("get-call-bad-id.json"), Some(&test_key("acme", READ))),
        ),
        invocation("inv-500", get_call_event(Some("acme"), "broken")),
    ])
    .await;
    let output = output_of(&api, "get-call");
    hold_key(&stack.app, "acme", READ);

    // What get-call's main runs.
    let answers = api
        .run(callrecords::http::run(|req| get_call::handle(&stack.app, req)))
        .await;
    let statuses: Vec<i64> = answers
        .iter()
        .map(|(_, a)| match a {
            Answer::Response(r) => r["statusCode"].as_i64().unwrap(),
            Answer::Error(e) => panic!("{e}"),
        })
        .collect();
    assert_eq!(statuses, [200, 404, 400, 500]);

    let text = output.text();
    let lines: Vec<&str> = text.lines().collect();
    let documents: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains("\"_aws\"")).collect();
    assert_eq!(documents.len(), 4, "one EMF line per invocation: {text}");
    let requests: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("\"message\":\"request\""))
        .collect();
    for (n, (&doc, &request)) in documents.iter().zip(&requests).enumerate() {
        assert!(
            request < doc,
            "invocation {n}'s metrics follow its request line: {text}"
        );
        if let Some(&next) = requests.get(n + 1) {
            assert!(
                doc < next,
                "invocation {n}'s metrics are written before the next invocation: {text}"
            );
        }
    }

    let emitted = emf::parse(lines.iter().copied());
    assert_declared(&emitted);
    for (n, (status, errors_4xx, errors_5xx)) in [(200, 0.0, 0.0), (404, 1.0, 0.0), (400, 1.0, 0.0), (500, 0.0, 1.0)]
        .into_iter()
        .enumerate()
    {
        let of_invocation = emf::parse([lines[documents[n]]]);
        let of: Vec<&EmittedMetric> = of_invocation.iter().collect();
        let mut names: Vec<&str> = of.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["Errors4xx", "Errors5xx", "Latency", "Requests"], "{status}");
        for m in &of {
            assert_eq!(m.dimensions, ["Function", "Route"], "{status}: {m:?}");
            assert_eq!(m.dimension("Function"), Some("get-call"));
            assert_eq!(
                m.dimension("Route"),
                Some("GET /api/v1/calls/{callId}"),
                "the route key, never the path"
            );
        }
        assert_eq!(value_of(&of, "Requests"), 1.0, "{status}");
        assert_eq!(value_of(&of, "Errors4xx"), errors_4xx, "{status}");
        assert_eq!(value_of(&of, "Errors5xx"), errors_5xx, "{status}");
        let latency = of.iter().find(|m| m.name == "Latency").unwrap();
        assert_eq!(latency.unit.as_deref(), Some("Milliseconds"));
        assert!(latency.value > 0.0 && latency.value < 30_000.0, "{status}: {latency:?}");
    }
}

#[tokio::test]
async fn an_expiry_sweep_emits_what_it_found_deleted_and_failed_and_a_failed_run_emits_incomplete() {
    let stack = stack(NOW).await;
    for i in 0..3 {
        seed_call_with_recording(&stack, &format!("due{i}"), -i).await;
    }
    seed_call_with_recording(&stack, "young", 40).await;
    let api = RuntimeApi::start(vec![
        invocation("inv-sweep", event("recording-expiry.json")),
        invocation("inv-refused", serde_json::json!({"limit": 0})),
        invocation("inv-dry", event("recording-expiry-dry-run.json")),
    ])
    .await;
    let output = output_of(&api, "recording-expiry");

    // What recording-expiry's main runs.
    let handler = |event| metrics::flushed(recording_expiry::handle(&stack.app, event));
    let answers = api.run(lambda_runtime::run(lambda_runtime::service_fn(handler))).await;
    let Answer::Response(report) = &answers[0].1 else {
        panic!("{answers:?}")
    };
    assert_eq!(
        (report["found"].as_u64(), report["complete"].as_bool()),
        (Some(3), Some(true)),
        "{report}"
    );
    assert!(matches!(answers[1].1, Answer::Error(_)), "{answers:?}");
    assert!(matches!(answers[2].1, Answer::Response(_)), "{answers:?}");

    let text = output.text();
    let documents: Vec<&str> = text.lines().filter(|l| l.contains("\"_aws\"")).collect();
    assert_eq!(
        documents.len(),
        2,
        "the sweep's and the refused run's; a dry run emits none: {text}"
    );
    assert_declared(&emf::parse(documents.iter().copied()));

    let sweep = emf::parse([documents[0]]);
    let of: Vec<&EmittedMetric> = sweep.iter().collect();
    for m in &of {
        assert_eq!(m.dimensions, ["Function"], "{m:?}");
        assert_eq!(m.dimension("Function"), Some("recording-expiry"));
        assert_eq!(m.unit.as_deref(), Some("Count"));
    }
    assert_eq!(of.len(), 4, "{of:#?}");
    assert_eq!(value_of(&of, "ExpiryFound"), 3.0);
    assert_eq!(value_of(&of, "ExpiryDeleted"), 3.0);
    assert_eq!(value_of(&of, "ExpiryFailed"), 0.0);
    assert_eq!(value_of(&of, "ExpiryComplete"), 1.0);

    let refused = emf::parse([documents[1]]);
    let of: Vec<&EmittedMetric> = refused.iter().collect();
    assert_eq!(of.len(), 1, "{of:#?}");
    assert_eq!(value_of(&of, "ExpiryComplete"), 0.0);
}

/// The template's alarms on the functions' own namespace read metrics that the code emits, under the
/// dimensions it emits them with: a sweep runs under the real runtime, its EMF lines are read back, and each
/// alarmed metric must be among them, in the namespace the template gives the functions.
#[tokio::test]
async fn every_alarm_on_the_functions_own_metrics_names_a_metric_and_dimensions_the_code_emits() {
    let template = callrecords::template::deployed().unwrap();
    let namespace = template.function_env.get("METRICS_NAMESPACE").expect("set in Globals");
    assert_eq!(namespace.replace("${AWS::StackName}", "test-stack"), NAMESPACE);
    let alarmed = callrecords::template::alarmed_metrics(callrecords::template::TEMPLATE_YAML).unwrap();
    assert!(!alarmed.is_empty(), "the expiry alarm reads the sweep's summary");

    let stack = stack(NOW).await;
    seed_call_with_recording(&stack, "due", 0).await;
    let api = RuntimeApi::start(vec![invocation("inv-sweep", event("recording-expiry.json"))]).await;
    let output = output_of(&api, "recording-expiry");
    let handler = |event| metrics::flushed(recording_expiry::handle(&stack.app, event));
    let answers = api.run(lambda_runtime::run(lambda_runtime::service_fn(handler))).await;
    assert!(matches!(answers[0].1, Answer::Response(_)), "{answers:?}");
    let text = output.text();
    let emitted = emf::parse(text.lines());
    assert_declared(&emitted);

    for wanted in &alarmed {
        assert!(
            emitted
                .iter()
                .any(|m| m.name == wanted.name && m.dimension_pairs() == wanted.dimensions),
            "{} reads {} {:?}, which no function emits: {emitted:#?}",
            wanted.alarm,
            wanted.name,
            wanted.dimensions
        );
    }
}
