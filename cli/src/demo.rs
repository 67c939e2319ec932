//! Demo data for the local stack: two tenants, calls of every status and direction, three months of
//! history, seed 000's call, a two-hour call with word timings, an opted-out call, expired and pending
//! recordings, a repeat customer, recording objects in S3, and a demo key for the first tenant.

use aws_sdk_s3::primitives::ByteStream;
use callrecords::apikey::{self, Scope};
use callrecords::model::{CallRecord, CallStatus, Direction, RecordingStatus};
use callrecords::recording::object_key;
use callrecords::store::calls::Condition;
use callrecords::webhook::endpoint::{EndpointSecret, WebhookEndpoint};
use callrecords::webhook::Provider;
use callrecords::{validate, App, CallId, TenantId};
use chrono::Duration;
use serde_json::Value;

use callrecords::synth::Generator;

pub const DEMO_TENANT: &str = "acme";
pub const OTHER_TENANT: &str = "globex";
/// The demo's Vapi webhook endpoint and its secret (the one events/webhook-vapi.json sends).
pub const DEMO_WEBHOOK: &str = "wh_0000000000000000000000d1";
const DEMO_WEBHOOK_SECRET: &str = "demo-vapi-secret";

const SEED_000: &str = include_str!("../../fixtures/seed-000-get-call.json");

/// Moves every timestamp of a call by `by`.
fn shift(call: &mut CallRecord, by: Duration) {
    let s = &mut call.summary;
    s.created_at += by;
    for t in [&mut s.start_time, &mut s.end_time, &mut s.updated_at]
        .into_iter()
        .flatten()
    {
        *t += by;
    }
    for m in &mut call.content.messages {
        m.timestamp += by;
    }
    for e in &mut call.content.events {
        e.timestamp += by;
    }
    if let Some(r) = &mut call.recording {
        r.recorded_at = r.recorded_at.map(|t| t + by);
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn seed_000_call(tenant: &TenantId, now: chrono::DateTime<chrono::Utc>) -> Result<CallRecord> {
    let seed: Value = serde_json::from_str(SEED_000)?;
    let mut call = validate::call(tenant, &seed["data"], None, now)?;
    let start = call.summary.start_time.ok_or("seed 000 has a start time")?;
    shift(&mut call, (now - Duration::hours(2)) - start);
    // Written now, whenever the call took place.
    call.summary.updated_at = Some(now);
    call.summary.currency = Some("TRY".into());
    // The demo serves a real, playable file; seed 000's m4a becomes a WAV.
    if let Some(r) = &mut call.recording {
        r.format = Some("wav".into());
        r.key = Some(object_key(
            tenant,
            &CallId::parse(&call.summary.id)?,
            call.summary.created_at,
            "wav",
        ));
    }
    Ok(call)
}

/// Loads the demo data and returns a new demo key for [`DEMO_TENANT`].
pub async fn load(app: &App) -> Result<String> {
    let now = chrono::DateTime::from_timestamp(app.clock.now().timestamp(), 0).ok_or("clock out of range")?;
    let acme = TenantId::parse(DEMO_TENANT)?;
    let globex = TenantId::parse(OTHER_TENANT)?;
    let mut gen = Generator::new(7);
    let mut calls: Vec<(TenantId, CallRecord)> = vec![(acme.clone(), seed_000_call(&acme, now)?)];

    let directions = [Direction::Inbound, Direction::Outbound, Direction::Web];
    for (i, status) in CallStatus::ALL.into_iter().enumerate() {
        for (j, direction) in directions.into_iter().enumerate() {
            let id = format!("call_{}_{}", status.as_str().replace('-', "_"), j + 1);
            let start = now - Duration::hours((i * 3 + j) as i64 + 3);
            let mut call = gen.call(&acme, &id, status, direction, start, 4);
            // A repeat customer, written the way platforms send numbers: the API files both under E.164.
            match id.as_str() {
                "call_completed_1" => call.summary.from = Some("+1 (415) 555-0123".into()),
                "call_completed_2" => call.summary.to = Some("001 415 555 0123".into()),
                _ => {}
            }
            calls.push((acme.clone(), call));
        }
    }
    // Three months of history, so that lists have pages to turn.
    for i in 1..=60 {
        calls.push((acme.clone(), gen.history_call(&acme, i, now, Duration::days(90))));
    }
    // Two hours of conversation with word timings: far past DynamoDB's 400 KB item limit.
    calls.push((
        acme.clone(),
        gen.call(
            &acme,
            "call_long_2h",
            CallStatus::Completed,
            Direction::Inbound,
            now - Duration::hours(5),
            1200,
        ),
    ));
    let mut private = gen.call(
        &acme,
        "call_opted_out",
        CallStatus::Completed,
        Direction::Inbound,
        now - Duration::hours(6),
        4,
    );
    private.summary.opt_out_sensitive_data_storage = true;
    calls.push((acme.clone(), private));
    calls.push((
        acme.clone(),
        gen.call(
            &acme,
            "call_old_recording",
            CallStatus::Completed,
            Direction::Outbound,
            now - Duration::days(45),
            4,
        ),
    ));
    let mut pending = gen.call(
        &acme,
        "call_recording_pending",
        CallStatus::Completed,
        Direction::Inbound,
        now - Duration::minutes(10),
        3,
    );
    if let Some(r) = &mut pending.recording {
        r.status = RecordingStatus::Pending;
    }
    calls.push((acme.clone(), pending));

    // The other tenant has a call with the same id as the demo's seed call: it must never show through.
    calls.push((
        globex.clone(),
        gen.call(
            &globex,
            "call_123",
            CallStatus::Completed,
            Direction::Outbound,
            now - Duration::hours(1),
            3,
        ),
    ));
    calls.push((
        globex.clone(),
        gen.call(
            &globex,
            "call_globex_1",
            CallStatus::Failed,
            Direction::Outbound,
            now - Duration::hours(2),
            0,
        ),
    ));

    // One second of a tone: a real, playable recording.
    let wav = callrecords::synth::wav(8000);
    for (tenant, call) in calls {
        let upload = call
            .recording
            .as_ref()
            .filter(|r| r.status == RecordingStatus::Completed)
            .and_then(|r| r.key.clone());
        if let Some(key) = upload {
            app.recordings
                .client()
                .put_object()
                .bucket(app.recordings.bucket())
                .key(key)
                .content_type("audio/wav")
                .body(ByteStream::from(wav.clone()))
                .send()
                .await
                .map_err(|e| format!("upload recording: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        }
        app.store
            .put_call(&tenant, call, &Condition::Always, app.clock.now())
            .await?;
    }

    // A Vapi webhook endpoint with a known id and secret, for events/webhook-vapi.json (local stacks only).
    let endpoint = WebhookEndpoint {
        endpoint_id: DEMO_WEBHOOK.to_owned(),
        tenant_id: acme.as_str().to_owned(),
        provider: Provider::Vapi,
        created_at: now,
        secrets: vec![EndpointSecret {
            secret: DEMO_WEBHOOK_SECRET.to_owned(),
            added_at: now,
            retires_at: None,
        }],
    };
    if app.store.get_endpoint(DEMO_WEBHOOK).await?.is_none() {
        app.store.put_endpoint(&endpoint).await?;
    }

    let key = apikey::generate(&acme, "demo", &[Scope::CallsRead, Scope::CallsWrite], now)?;
    app.store.put_key(&key.record).await?;
    Ok(key.key)
}
