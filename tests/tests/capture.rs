//! Recording capture: a webhook delivery whose recording is a link, through the webhook function, the
//! capture queue on the emulator, the capture worker's entry point and the recording check, against a
//! local server standing in for the provider's storage; and the metrics each batch and each check emit.

use callrecords::webhook::{Provider, RecordingSource};
use integration_tests::*;
use serde_json::Value;

const SECRET: &str = "whsec_capture_test_secret";

/// Vapi's end-of-call-report fixture with its recording link replaced by `link`.
fn report_with_link(link: &str) -> (Vec<u8>, String) {
    let path = format!(
        "{}/../fixtures/webhooks/vapi/end-of-call-report.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture");
    let payload: Value = serde_json::from_str(&text).expect("JSON");
    let delivery = Provider::Vapi.delivery(&payload).expect("a delivery").expect("stored");
    let Some(RecordingSource::Url(original)) = delivery.recording else {
        panic!("the fixture has a recording link");
    };
    let id = Provider::Vapi.call_id(&delivery.call_id);
    (text.replace(&original, link).into_bytes(), id)
}

/// A moment just after the fixture's call.
fn now() -> String {
    let (body, _) = report_with_link("https://x");
    let payload: Value = serde_json::from_slice(&body).expect("JSON");
    let delivery = Provider::Vapi.delivery(&payload).expect("delivery").expect("stored");
    let created = delivery.fields["createdAt"].as_str().expect("createdAt");
    let t: chrono::DateTime<chrono::Utc> = created.parse().expect("time");
    (t + chrono::Duration::hours(1)).to_rfc3339()
}

async fn call(stack: &Stack, tenant: &str, id: &str) -> Value {
    let reply = fetch(stack, tenant, id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"].clone()
}

#[tokio::test]
async fn a_recording_link_is_copied_checked_and_completed() {
    let mut stack = stack(&now()).await;
    // Room for the 20 MiB copy on a busy machine (the 2 s of the tests' settings is for the hanging link).
    stack.app.config.capture.timeout = std::time::Duration::from_secs(120);
    // 1 s and 1,310 s of 8 kHz 16-bit WAV: one PutObject, and a 20 MiB file copied in three parts.
    let short = wav(8_000);
    let long = wav(8_000 * 1_310);
    let server = RecordingServer::start(vec![
        ("/short.wav", Served::Bytes(short.clone())),
        ("/long.wav", Served::Bytes(long.clone())),
    ])
    .await;
    for (tenant, path, bytes, seconds) in [
        ("short", "/short.wav", &short, 1.0),
        ("long", "/long.wav", &long, 1310.0),
    ] {
        let e = webhook_endpoint(&stack, tenant, Provider::Vapi, SECRET).await;
        let (body, id) = report_with_link(&server.url(path));
        let reply = deliver_signed(&stack, &e, SECRET, &body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(call(&stack, tenant, &id).await["recordingStatus"], "pending");
        let queued = queued_captures(&stack).await;
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert!(run_capture(&stack, &queued, 1).await.is_empty());
        let key = objects(&stack)
            .await
            .into_iter()
            .find(|k| k.contains(tenant))
            .expect("the copied object");
        assert!(key.ends_with(".wav"), "{key}");
        let checked = check_recording(&stack.app, &key, bytes.len() as u64)
            .await
            .expect("check");
        assert_eq!(checked["status"], "completed", "{checked}");
        let stored = call(&stack, tenant, &id).await;
        assert_eq!(stored["recordingStatus"], "completed", "{stored}");
        assert_eq!(stored["recordingDuration"].as_f64(), Some(seconds));
        // The same delivery again queues nothing: the recording is there.
        assert_eq!(deliver_signed(&stack, &e, SECRET, &body).await.status, 200);
        assert!(queued_captures(&stack).await.is_empty());
    }
    assert_eq!(server.hits(), ["/short.wav", "/long.wav"]);
}

#[tokio::test]
async fn a_link_that_answers_404_or_hangs_is_retried_then_failed() {
    let stack = stack(&now()).await;
    let server = RecordingServer::start(vec![("/gone.wav", Served::Status(404)), ("/hang.wav", Served::Hang)]).await;
    for (tenant, path, reason) in [
        ("gone", "/gone.wav", "answered 404"),
        ("hang", "/hang.wav", "timed out"),
    ] {
        let e = webhook_endpoint(&stack, tenant, Provider::Vapi, SECRET).await;
        let (body, id) = report_with_link(&server.url(path));
        assert_eq!(deliver_signed(&stack, &e, SECRET, &body).await.status, 200);
        let queued = queued_captures(&stack).await;
        assert_eq!(queued.len(), 1);
        let message = queued[0]["messageId"].as_str().expect("id").to_owned();
        let attempts = stack.app.config.capture.attempts;
        for attempt in 1..attempts {
            assert_eq!(
                run_capture(&stack, &queued, attempt).await,
                vec![message.clone()],
                "{tenant} try {attempt}"
            );
            assert_eq!(call(&stack, tenant, &id).await["recordingStatus"], "pending");
        }
        // The last try marks the recording failed and lets the message go.
        assert!(run_capture(&stack, &queued, attempts).await.is_empty());
        let stored = call(&stack, tenant, &id).await;
        assert_eq!(stored["recordingStatus"], "failed", "{stored}");
        let why = stored["recordingFailureReason"].as_str().expect("a reason");
        assert!(
            why.contains(reason) && why.contains(&format!("after {attempts} tries")),
            "{why}"
        );
        assert!(!why.contains(path), "the link is not in the reason: {why}");
    }
    let hits = server.hits();
    assert_eq!(hits.iter().filter(|p| *p == "/gone.wav").count(), 3);
    assert_eq!(hits.iter().filter(|p| *p == "/hang.wav").count(), 3);
    assert!(objects(&stack).await.is_empty());
}

#[tokio::test]
async fn links_off_the_allow_list_or_not_https_are_never_fetched() {
    let stack = stack(&now()).await;
    let server = RecordingServer::start(vec![("/r.wav", Served::Bytes(wav(8_000)))]).await;
    // The tests allow 127.0.0.1 over plain HTTP; `localhost` is not on the list, and nothing else is
    // allowed plain HTTP.
    let port = server.base.rsplit(':').next().expect("port").to_owned();
    let links = [
        format!("http://localhost:{port}/r.wav"),
        "https://recordings.example.com/r.wav".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "file:///etc/passwd".to_owned(),
    ];
    for (i, link) in links.iter().enumerate() {
        let tenant = format!("t{i}");
        let e = webhook_endpoint(&stack, &tenant, Provider::Vapi, SECRET).await;
        let (body, id) = report_with_link(link);
        assert_eq!(deliver_signed(&stack, &e, SECRET, &body).await.status, 200, "{link}");
        let stored = call(&stack, &tenant, &id).await;
        assert_eq!(stored["recordingStatus"], "failed", "{link}: {stored}");
        assert!(stored["recordingFailureReason"].as_str().is_some());
    }
    assert!(queued_captures(&stack).await.is_empty());
    assert!(server.hits().is_empty());
}

#[tokio::test]
async fn bytes_that_are_not_audio_or_too_large_fail_without_retry() {
    let mut stack = stack(&now()).await;
    stack.app.config.capture.max_bytes = 100_000;
    let server = RecordingServer::start(vec![
        (
            "/page.wav",
            Served::Bytes(b"<html><body>sign in</body></html>".repeat(4)),
        ),
        ("/big.wav", Served::Bytes(wav(80_000))),
    ])
    .await;
    for (tenant, path, reason) in [
        ("page", "/page.wav", "not a wav"),
        ("big", "/big.wav", "larger than 100000 bytes"),
    ] {
        let e = webhook_endpoint(&stack, tenant, Provider::Vapi, SECRET).await;
        let (body, id) = report_with_link(&server.url(path));
        assert_eq!(deliver_signed(&stack, &e, SECRET, &body).await.status, 200);
        let queued = queued_captures(&stack).await;
        assert!(run_capture(&stack, &queued, 1).await.is_empty(), "{tenant}: no retry");
        let stored = call(&stack, tenant, &id).await;
        assert_eq!(stored["recordingStatus"], "failed", "{stored}");
        let why = stored["recordingFailureReason"].as_str().expect("reason");
        assert!(why.contains(reason), "{why}");
    }
    assert!(objects(&stack).await.is_empty());
}

/// What `work` alone made the process's metrics recorder (installed into `output`) write at its flush: metric
/// name and value, in the order written (what was recorded before it, such as a webhook delivery's, is
/// flushed first and dropped).
async fn emitted(output: &Captured, work: impl std::future::Future) -> Vec<(String, f64)> {
    callrecords::metrics::flush();
    output.clear();
    callrecords::metrics::flushed(work).await;
    emf::parse(output.text().lines())
        .into_iter()
        .map(|m| {
            assert_eq!(m.dimensions, ["Function"], "{m:?}");
            (m.name, m.value)
        })
        .collect()
}

#[tokio::test]
async fn each_capture_batch_and_each_checked_upload_emit_what_they_came_to() {
    let output = Captured::default();
    callrecords::metrics::install("callrecords", output.clone()).expect("the process's recorder");
    let stack = stack(&now()).await;
    let short = wav(8_000);
    let server = RecordingServer::start(vec![
        ("/short.wav", Served::Bytes(short.clone())),
        ("/gone.wav", Served::Status(404)),
    ])
    .await;
    let of = |pairs: &[(&str, f64)]| pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect::<Vec<_>>();

    let e = webhook_endpoint(&stack, "short", Provider::Vapi, SECRET).await;
    let (body, _) = report_with_link(&server.url("/short.wav"));
    assert_eq!(deliver_signed(&stack, &e, SECRET, &body).await.status, 200);
    let queued = queued_captures(&stack).await;
    let stored = emitted(&output, run_capture(&stack, &queued, 1)).await;
    assert_eq!(
        stored,
        of(&[
            ("CapturesFailed", 0.0),
            ("CapturesRetried", 0.0),
            ("CapturesStored", 1.0)
        ])
    );
    let key = objects(&stack).await.into_iter().next().expect("the copied object");
    let checked = emitted(&output, async {
        let answer = check_recording(&stack.app, &key, short.len() as u64)
            .await
            .expect("check");
        assert_eq!(answer["status"], "completed", "{answer}");
    })
    .await;
    assert_eq!(checked, of(&[("RecordingsCompleted", 1.0), ("RecordingsFailed", 0.0)]));

    let e = webhook_endpoint(&stack, "gone", Provider::Vapi, SECRET).await;
    let (body, _) = report_with_link(&server.url("/gone.wav"));
    assert_eq!(deliver_signed(&stack, &e, SECRET, &body).await.status, 200);
    let queued = queued_captures(&stack).await;
    let retried = emitted(&output, run_capture(&stack, &queued, 1)).await;
    assert_eq!(
        retried,
        of(&[
            ("CapturesFailed", 0.0),
            ("CapturesRetried", 1.0),
            ("CapturesStored", 0.0)
        ])
    );
    let attempts = stack.app.config.capture.attempts;
    let failed = emitted(&output, run_capture(&stack, &queued, attempts)).await;
    assert_eq!(
        failed,
        of(&[
            ("CapturesFailed", 1.0),
            ("CapturesRetried", 0.0),
            ("CapturesStored", 0.0)
        ])
    );
}
