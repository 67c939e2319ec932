//! Platform webhooks through the webhook function's entry point, against DynamoDB Local and the S3
//! emulator: every fixture of `fixtures/webhooks/<provider>/` delivered signed and compared with the call
//! it should leave; refused deliveries; repeats; every order of a call's events; deliveries at once; audio
//! in the body becoming the call's recording.

use std::collections::BTreeMap;

use callrecords::webhook::endpoint::WebhookEndpoint;
use callrecords::webhook::signature;
use callrecords::webhook::Provider;
use chrono::{DateTime, Duration, Utc};
use integration_tests::*;
use serde_json::Value;

const SECRET: &str = "whsec_integration_test_secret_0001";

/// Fields of a served call that say when or how it was written, or what the recording is: not part of what
/// a delivery leaves (the recording has tests of its own).
const NOT_COMPARED: [&str; 10] = [
    "updatedAt",
    "recordingStatus",
    "recordingFormat",
    "recordingDuration",
    "recordingExpiresAt",
    "recordingFailureReason",
    "recordingUrl",
    "recordingUrlExpiresAt",
    "transcript",
    "messagesCount",
];

struct Fixture {
    name: String,
    body: Vec<u8>,
    expected: Value,
}

struct Provided {
    /// Every event fixture, by name.
    events: Vec<Fixture>,
    /// The call all of `main` leave, in any order.
    call: Value,
}

impl Provided {
    fn load(provider: Provider) -> Provided {
        let dir = format!("{}/../fixtures/webhooks/{provider}", env!("CARGO_MANIFEST_DIR"));
        let mut events = Vec::new();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.ends_with(".expected.json"))
            .collect();
        names.sort();
        for file in names {
            let name = file.trim_end_matches(".json").to_owned();
            let body = std::fs::read(format!("{dir}/{file}")).expect("fixture");
            let expected = read_json(&format!("{dir}/{name}.expected.json"));
            events.push(Fixture { name, body, expected });
        }
        let call = read_json(&format!("{dir}/call.expected.json"));
        assert!(!events.is_empty(), "{dir} has no events");
        Provided { events, call }
    }

    /// The events of the one call the fixtures follow through (the others are calls of their own).
    fn main(&self) -> Vec<&Fixture> {
        self.events
            .iter()
            .filter(|f| f.expected["id"] == self.call["id"])
            .collect()
    }

    /// A moment just after the call, inside every signature window and the recording's retention.
    fn now(&self) -> String {
        just_after(&self.call)
    }

    fn call_id(&self) -> String {
        self.call["id"].as_str().expect("id").to_owned()
    }
}

/// An hour after `call` (a call in the API's format) ended, or started.
fn just_after(call: &Value) -> String {
    let at = ["endTime", "startTime", "createdAt"]
        .iter()
        .find_map(|f| call[*f].as_str())
        .expect("the call has a time");
    let t: DateTime<Utc> = at.parse().expect("RFC 3339");
    (t + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A served call without what [`NOT_COMPARED`] names.
fn comparable(served: &Value) -> Value {
    let mut call = served.clone();
    for f in NOT_COMPARED {
        call.as_object_mut().expect("a call").remove(f);
    }
    call
}

/// What GET serves for `tenant`'s call `id`, comparable.
async fn stored(stack: &Stack, tenant: &str, id: &str) -> Value {
    let reply = fetch(stack, tenant, id).await;
    assert_eq!(reply.status, 200, "{id}: {}", reply.body);
    comparable(&reply.body["data"])
}

/// What GET serves after a PUT of `expected` (a call in the API's format) as tenant `reference`: the
/// fixture's expected call, stored the way every call is.
async fn as_stored(stack: &Stack, expected: &Value) -> Value {
    let id = expected["id"].as_str().expect("expected id");
    let reply = Write::put(id, expected).tenant("reference").send(&stack.app).await;
    assert!(
        reply.status == 201 || reply.status == 200,
        "PUT of the expected call: {}",
        reply.body
    );
    stored(stack, "reference", id).await
}

async fn calls_of(stack: &Stack, tenant: &str) -> usize {
    let reply = list(stack, tenant, &[("limit", "100")]).await;
    assert_eq!(reply.status, 200);
    reply.body["data"].as_array().expect("data").len()
}

async fn endpoint(stack: &Stack, tenant: &str, provider: Provider) -> WebhookEndpoint {
    webhook_endpoint(stack, tenant, provider, SECRET).await
}

#[tokio::test]
async fn every_signed_event_stores_its_expected_call() {
    for provider in Provider::ALL {
        let p = Provided::load(provider);
        for (i, f) in p.events.iter().enumerate() {
            // Each fixture at its own time: calls other than the main one are of other days.
            let stack = stack(&just_after(&f.expected)).await;
            let tenant = format!("t{i}");
            let e = endpoint(&stack, &tenant, provider).await;
            let reply = deliver_signed(&stack, &e, SECRET, &f.body).await;
            assert_eq!(reply.status, 200, "{provider} {}: {}", f.name, reply.body);
            let id = f.expected["id"].as_str().expect("id");
            assert_eq!(reply.body["data"]["callId"], id, "{provider} {}", f.name);
            assert_eq!(reply.body["data"]["outcome"], "created");
            assert_eq!(
                stored(&stack, &tenant, id).await,
                as_stored(&stack, &f.expected).await,
                "{provider} {}",
                f.name
            );
        }
    }
}

#[tokio::test]
async fn refused_deliveries_answer_one_401_and_store_nothing() {
    for provider in Provider::ALL {
        let p = Provided::load(provider);
        let stack = stack(&p.now()).await;
        let e = endpoint(&stack, "acme", provider).await;
        let other = endpoint(
            &stack,
            "acme",
            if provider == Provider::Vapi {
                Provider::Retell
            } else {
                Provider::Vapi
            },
        )
        .await;
        let body = p.main()[0].body.clone();
        let now = stack.app.clock.now();
        let signed =
            |secret: &str, body: &[u8], at: DateTime<Utc>| signature::sign(provider, secret.as_bytes(), body, at);
        let mut altered = body.clone();
        let last = altered.iter().rposition(|b| *b == b'}').expect("a JSON object");
        altered.insert(last, b' ');
        let mut cases: Vec<(&str, Value)> = vec![
            (
                "wrong secret",
                webhook_event(
                    provider.as_str(),
                    &e.endpoint_id,
                    &[signed("another secret", &body, now)],
                    &body,
                ),
            ),
            (
                "altered body",
                webhook_event(
                    provider.as_str(),
                    &e.endpoint_id,
                    &[signed(SECRET, &body, now)],
                    &altered,
                ),
            ),
            (
                "missing header",
                webhook_event(provider.as_str(), &e.endpoint_id, &[], &body),
            ),
            (
                "unknown endpoint",
                webhook_event(
                    provider.as_str(),
                    "wh_0123456789abcdef01234567",
                    &[signed(SECRET, &body, now)],
                    &body,
                ),
            ),
            (
                "not an endpoint id",
                webhook_event(provider.as_str(), "..%2F..", &[signed(SECRET, &body, now)], &body),
            ),
            (
                "another provider's endpoint",
                webhook_event(
                    provider.as_str(),
                    &other.endpoint_id,
                    &[signed(SECRET, &body, now)],
                    &body,
                ),
            ),
            (
                "unknown provider",
                webhook_event("twilio", &e.endpoint_id, &[signed(SECRET, &body, now)], &body),
            ),
        ];
        if let Some(window) = signature::window(provider) {
            let stale = now - window - Duration::seconds(1);
            cases.push((
                "stale",
                webhook_event(
                    provider.as_str(),
                    &e.endpoint_id,
                    &[signed(SECRET, &body, stale)],
                    &body,
                ),
            ));
            let ahead = now + window + Duration::seconds(1);
            cases.push((
                "ahead",
                webhook_event(
                    provider.as_str(),
                    &e.endpoint_id,
                    &[signed(SECRET, &body, ahead)],
                    &body,
                ),
            ));
        }
        let mut answers = BTreeMap::new();
        for (why, ev) in &cases {
            let reply = deliver(&stack.app, ev).await;
            assert_eq!(reply.status, 401, "{provider} {why}: {}", reply.body);
            answers.insert(without_request_id(reply.body).to_string(), *why);
        }
        assert_eq!(answers.len(), 1, "{provider}: one body for every refusal: {answers:?}");
        assert_eq!(calls_of(&stack, "acme").await, 0, "{provider}: nothing stored");
        assert_eq!(call_items(&stack, "acme", &p.call_id()).await, 0);
        // The same body correctly signed passes: the cases above failed for their one reason.
        let reply = deliver_signed(&stack, &e, SECRET, &body).await;
        assert_eq!(reply.status, 200, "{provider}: {}", reply.body);
    }
}

#[tokio::test]
async fn the_same_event_twice_changes_nothing() {
    for provider in Provider::ALL {
        let p = Provided::load(provider);
        let stack = stack(&p.now()).await;
        let e = endpoint(&stack, "acme", provider).await;
        let id = p.call_id();
        for f in p.main() {
            let first = deliver_signed(&stack, &e, SECRET, &f.body).await;
            assert_eq!(first.status, 200, "{provider} {}: {}", f.name, first.body);
            let before = fetch(&stack, "acme", &id).await;
            let items = call_items(&stack, "acme", &id).await;
            let again = deliver_signed(&stack, &e, SECRET, &f.body).await;
            assert_eq!(again.status, 200);
            assert_eq!(again.body["data"]["outcome"], "unchanged", "{provider} {}", f.name);
            let after = fetch(&stack, "acme", &id).await;
            assert_eq!(
                after.headers.get("etag"),
                before.headers.get("etag"),
                "{provider} {}",
                f.name
            );
            assert_eq!(after.body["data"], before.body["data"]);
            assert_eq!(call_items(&stack, "acme", &id).await, items);
        }
    }
}

/// Every order of `0..n` when there are few, else each pair both ways and the whole in both directions.
fn orders(n: usize) -> Vec<Vec<usize>> {
    fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
        if items.len() <= 1 {
            return vec![items];
        }
        let mut all = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.clone();
            let first = rest.remove(i);
            for mut tail in permutations(rest) {
                tail.insert(0, first);
                all.push(tail);
            }
        }
        all
    }
    if n <= 4 {
        return permutations((0..n).collect());
    }
    let mut some = vec![(0..n).collect::<Vec<_>>(), (0..n).rev().collect()];
    for a in 0..n {
        for b in 0..n {
            if a != b {
                some.push(
                    [a, b]
                        .into_iter()
                        .chain((0..n).filter(|i| *i != a && *i != b))
                        .collect(),
                );
            }
        }
    }
    some
}

#[tokio::test]
async fn every_order_of_a_calls_events_ends_in_the_same_call() {
    for provider in Provider::ALL {
        let p = Provided::load(provider);
        let stack = stack(&p.now()).await;
        let main = p.main();
        let expected = as_stored(&stack, &p.call).await;
        let id = p.call_id();
        let all = orders(main.len());
        if main.len() <= 4 {
            assert_eq!(all.len(), (1..=main.len()).product::<usize>());
        }
        let mut first: Option<Value> = None;
        for (n, order) in all.iter().enumerate() {
            let tenant = format!("order{n}");
            let e = endpoint(&stack, &tenant, provider).await;
            for &i in order {
                let reply = deliver_signed(&stack, &e, SECRET, &main[i].body).await;
                assert_eq!(reply.status, 200, "{provider} {}: {}", main[i].name, reply.body);
            }
            let names: Vec<&str> = order.iter().map(|&i| main[i].name.as_str()).collect();
            assert_eq!(
                stored(&stack, &tenant, &id).await,
                expected,
                "{provider} in the order {names:?}"
            );
            // And the whole of what GET serves, recording state included, but the moment of writing.
            let mut whole = fetch(&stack, &tenant, &id).await.body["data"].clone();
            whole.as_object_mut().expect("a call").remove("updatedAt");
            match &first {
                None => first = Some(whole),
                Some(first) => assert_eq!(&whole, first, "{provider} in the order {names:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_calls_events_delivered_at_once_and_repeated_end_in_the_expected_call() {
    for provider in Provider::ALL {
        let p = Provided::load(provider);
        let stack = stack(&p.now()).await;
        let e = endpoint(&stack, "acme", provider).await;
        let main = p.main();
        let deliveries = main
            .iter()
            .chain(main.iter())
            .chain(main.iter())
            .map(|f| deliver_signed(&stack, &e, SECRET, &f.body));
        for reply in futures::future::join_all(deliveries).await {
            assert_eq!(reply.status, 200, "{provider}: {}", reply.body);
        }
        let id = p.call_id();
        assert_eq!(
            stored(&stack, "acme", &id).await,
            as_stored(&stack, &p.call).await,
            "{provider}"
        );
        // One summary and its content: nothing of the losing writes is left behind.
        assert_eq!(
            call_items(&stack, "acme", &id).await,
            call_items(&stack, "reference", &id).await,
            "{provider}"
        );
    }
}

#[tokio::test]
async fn a_rotation_accepts_the_old_secret_for_its_overlap_only() {
    let p = Provided::load(Provider::Retell);
    let stack = stack(&p.now()).await;
    let mut e = endpoint(&stack, "acme", Provider::Retell).await;
    let now = stack.app.clock.now();
    e.rotate("the new secret".into(), now, Duration::hours(1));
    assert!(stack.app.store.save_endpoint(&e).await.expect("save"));
    let body = &p.main()[0].body;
    assert_eq!(deliver_signed(&stack, &e, SECRET, body).await.status, 200);
    assert_eq!(deliver_signed(&stack, &e, "the new secret", body).await.status, 200);
    e.rotate("a third secret".into(), now, Duration::zero());
    assert!(stack.app.store.save_endpoint(&e).await.expect("save"));
    assert_eq!(deliver_signed(&stack, &e, SECRET, body).await.status, 401);
    assert_eq!(deliver_signed(&stack, &e, "the new secret", body).await.status, 401);
    assert_eq!(deliver_signed(&stack, &e, "a third secret", body).await.status, 200);
    // A deleted endpoint refuses everything.
    assert!(stack.app.store.delete_endpoint(&e.endpoint_id).await.expect("delete"));
    assert_eq!(deliver_signed(&stack, &e, "a third secret", body).await.status, 401);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_stores_nothing() {
    let p = Provided::load(Provider::Vapi);
    let stack = stack(&p.now()).await;
    let e = endpoint(&stack, "acme", Provider::Vapi).await;
    let mut body = p.main()[0].body.clone();
    body.resize(callrecords::receive::MAX_DELIVERY_BYTES + 1, b' ');
    let reply = deliver_signed(&stack, &e, SECRET, &body).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(calls_of(&stack, "acme").await, 0);
}

#[tokio::test]
async fn elevenlabs_audio_in_the_body_becomes_the_calls_recording() {
    use base64::Engine;
    let p = Provided::load(Provider::ElevenLabs);
    let stack = stack(&p.now()).await;
    let e = endpoint(&stack, "acme", Provider::ElevenLabs).await;
    let audio = p
        .main()
        .into_iter()
        .find(|f| f.name.contains("audio"))
        .expect("an audio fixture");
    // The fixture's audio, replaced by a real MP3 of 1.5 s.
    let mut payload: Value = serde_json::from_slice(&audio.body).expect("JSON");
    let mp3 = std::fs::read(format!("{}/../fixtures/audio/tone.mp3", env!("CARGO_MANIFEST_DIR"))).expect("mp3");
    payload["data"]["full_audio"] = Value::String(base64::engine::general_purpose::STANDARD.encode(&mp3));
    let body = serde_json::to_vec(&payload).expect("JSON");
    let reply = deliver_signed(&stack, &e, SECRET, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = p.call_id();
    let call = fetch(&stack, "acme", &id).await.body["data"].clone();
    assert_eq!(call["recordingStatus"], "pending", "{call}");
    let keys = objects(&stack).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    // What the bucket's object-created event does next.
    let checked = check_recording(&stack.app, &keys[0], mp3.len() as u64)
        .await
        .expect("check");
    assert_eq!(checked["status"], "completed", "{checked}");
    let call = fetch(&stack, "acme", &id).await.body["data"].clone();
    assert_eq!(call["recordingStatus"], "completed", "{call}");
    assert_eq!(call["recordingFormat"], "mp3");
    let duration = call["recordingDuration"].as_f64().expect("duration");
    assert!((duration - 1.5).abs() < 0.1, "{duration}");
    // The same delivery again keeps the recording as it is; the transcription after it keeps it too.
    assert_eq!(deliver_signed(&stack, &e, SECRET, &body).await.status, 200);
    for f in p.main().into_iter().filter(|f| !f.name.contains("audio")) {
        assert_eq!(deliver_signed(&stack, &e, SECRET, &f.body).await.status, 200);
    }
    let after = fetch(&stack, "acme", &id).await.body["data"].clone();
    assert_eq!(after["recordingStatus"], "completed", "{after}");
    assert_eq!(objects(&stack).await, keys);
    assert_eq!(comparable(&after), as_stored(&stack, &p.call).await);
}

#[tokio::test]
async fn an_opted_out_call_keeps_no_audio_whichever_event_comes_first() {
    use base64::Engine;
    let dir = format!("{}/../fixtures/webhooks/elevenlabs", env!("CARGO_MANIFEST_DIR"));
    let transcription = std::fs::read(format!("{dir}/opted_out_post_call_transcription.json")).expect("fixture");
    let expected = read_json(&format!("{dir}/opted_out_post_call_transcription.expected.json"));
    let t: Value = serde_json::from_slice(&transcription).expect("JSON");
    // The same conversation's audio, a real MP3.
    let mut audio: Value = read_json(&format!("{dir}/post_call_audio.json"));
    audio["data"]["conversation_id"] = t["data"]["conversation_id"].clone();
    audio["data"]["agent_id"] = t["data"]["agent_id"].clone();
    audio["event_timestamp"] = t["event_timestamp"].clone();
    let mp3 = std::fs::read(format!("{}/../fixtures/audio/tone.mp3", env!("CARGO_MANIFEST_DIR"))).expect("mp3");
    audio["data"]["full_audio"] = Value::String(base64::engine::general_purpose::STANDARD.encode(&mp3));
    let audio = serde_json::to_vec(&audio).expect("JSON");
    let id = expected["id"].as_str().expect("id");
    let stack = stack(&just_after(&expected)).await;
    for (tenant, order) in [
        ("audio-first", [&audio, &transcription]),
        ("audio-last", [&transcription, &audio]),
    ] {
        let e = endpoint(&stack, tenant, Provider::ElevenLabs).await;
        for body in order {
            let reply = deliver_signed(&stack, &e, SECRET, body).await;
            assert_eq!(reply.status, 200, "{tenant}: {}", reply.body);
        }
        let call = fetch(&stack, tenant, id).await.body["data"].clone();
        assert_eq!(call["optOutSensitiveDataStorage"], true, "{tenant}");
        assert_eq!(call["recordingStatus"], "none", "{tenant}: {call}");
        assert_eq!(call["messages"], Value::Null, "{tenant}");
        assert!(
            objects(&stack)
                .await
                .iter()
                .all(|k| !k.contains(&format!("/{tenant}/"))),
            "{tenant}: no audio object is kept"
        );
    }
}
