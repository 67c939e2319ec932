//! Vapi's server messages mapped onto the call model. Vapi posts every message to the server URL as
//! `{"message": {"type": …, "call": {…}, …}}`; two types speak of the call's record, every other one
//! (`conversation-update`, `speech-update`, `transcript`, `tool-calls`, `hang`, `assistant-request`,
//! `function-call`, `model-output`, `user-interrupted`, `transfer-update`, …) is a live or a request message
//! that carries nothing we store, and maps to `None`.
//!
//! ## Stages
//! `status-update` is sent each time `call.status` changes, and each of its statuses is a stage of its own;
//! `end-of-call-report` comes once post-call processing is done and outranks them all.
//!
//! | event | stage | carries |
//! |---|---|---|
//! | `status-update` `scheduled` | [`STAGE_SCHEDULED`] 1 | `status: queued`, and what the `call` object has (below) |
//! | `status-update` `queued` | [`STAGE_QUEUED`] 2 | `status: queued`, the `call` object |
//! | `status-update` `ringing` | [`STAGE_RINGING`] 3 | `status: ringing`, the `call` object |
//! | `status-update` `in-progress` | [`STAGE_IN_PROGRESS`] 4 | `status: in-progress`, `startTime`, the live `artifact` (messages so far) |
//! | `status-update` `forwarding` | [`STAGE_FORWARDING`] 5 | `status: in-progress` (the transfer is under way), the live `artifact` or `messages` |
//! | `status-update` `ended` | [`STAGE_ENDED`] 6 | the final `status` and `endReason`, `endTime`, `duration` |
//! | `end-of-call-report` | [`STAGE_END_OF_CALL_REPORT`] 7 | everything: messages, latency, cost, analysis, the recording |
//!
//! Other statuses (`not-found`, `deletion-failed`: answers about the API, not states of a call) map to `None`.
//! [`Delivery::event`] is the message's type, with the status of a status-update (`status-update:ended`).
//! Every event's `call` object gives `createdAt`, `direction`, the assistant, the phone numbers, telephony
//! ids, `callMetadata` and the opt-out flag, so an event of any stage can arrive first: the only fallback
//! is `createdAt` taken from the call's start when `call.createdAt` is missing.
//!
//! ## Mapping
//! | Vapi | ours |
//! |---|---|
//! | `call.id` | the call id `vapi:<id>` (1–123 of `A–Z a–z 0–9 _ - . :`) |
//! | `call.type` `inboundPhoneCall` / `outboundPhoneCall` / `webCall`, `vapi.websocketCall` | `direction` `inbound` / `outbound` / `web` |
//! | `call.createdAt` | `createdAt` |
//! | `startedAt`, `endedAt` (the report's own, else the call's) | `startTime`, `endTime` |
//! | `durationSeconds`, else `durationMs`, else `endedAt − startedAt` | `duration` (seconds) |
//! | `status` of a status-update; `endedReason` (the message's, else the call's) of `ended` and the report | `status` (table below), `endReason`; `voicemail` also gives `answeredBy: machine` |
//! | `call.assistantId` (else `assistant.id`); `assistant.name` (the message's, else the call's) | `assistantId`, `assistant {id, name}` |
//! | `call.phoneNumberId` (else `phoneNumber.id`); `phoneNumber.number`, `.name` | `phoneNumberId`, `phoneNumber {id, number, name}` |
//! | `customer.number` and `phoneNumber.number` | `from` / `to` by direction (inbound: customer → our number; outbound: the reverse; web: neither); numbers that are not E.164 (SIP) are left out |
//! | `call.campaignId` | `campaignId` |
//! | `call.phoneCallProvider`, `call.phoneCallProviderId` (Twilio's CallSid, Vonage's conversation, Telnyx's call control id) | `telephony {provider, callSid}` |
//! | `compliancePlan.hipaaEnabled` or `.pciEnabled` (or the older `hipaaEnabled`) of `call.assistantOverrides`, the message's `assistant` or `call.assistant` | `optOutSensitiveDataStorage` (true when any says true) |
//! | `call.metadata`, `call.assistantOverrides.metadata`, `call.assistantOverrides.variableValues` (the dynamic variables), `analysis.structuredData` | `callMetadata` (below) |
//! | `cost` (USD; else `costBreakdown.total`) | `cost`, `currency: USD` |
//! | `costs[]` (else the `costBreakdown` object) | `costBreakdown[]` (below) |
//! | `analysis.summary` (else the report's `summary`) | `summary` |
//! | `analysis.successEvaluation` | `evaluation.outcome` (as sent), `evaluation.score` (a number 0–100), `isSuccess` (`true`/`pass`, `false`/`fail`) |
//! | `artifact.messages` (else the message's `messages`) | `messages` (below) |
//! | `artifact.performanceMetrics.turnLatencies[]` `turnLatency`, `modelLatency`, `voiceLatency`, `transcriberLatency` | `latency.e2e`, `.llm`, `.tts`, `.asr` (nearest-rank percentiles, ms) |
//! | `artifact.recordingUrl`, else `artifact.recording.mono.combinedUrl`, the report's `recordingUrl`, then the stereo ones | [`Delivery::recording`] |
//!
//! `endedReason` → `status`: `customer-did-not-answer` → `no-answer`; `customer-busy` → `busy`;
//! `manually-canceled`, `scheduled-call-deleted`, `call-deleted` and a caller who hung up while it rang
//! (`call.ringing.sip-inbound-caller-hungup-before-call-connect`) → `canceled`; every reason naming an
//! error, a failure or a fault, and those of a call that never got going (`assistant-not-found`,
//! `assistant-not-valid`, `assistant-request-returned-no-assistant` / `-invalid-assistant`,
//! `assistant-join-timed-out`, `worker-shutdown`, `twilio-reported-customer-misdialed`, `vonage-rejected`,
//! `customer-did-not-give-microphone-permission`, `phone-call-provider-bypass-enabled-but-no-call-received`)
//! → `failed`; anything else (`customer-ended-call`, `assistant-ended-call`, `assistant-forwarded-call`,
//! `silence-timed-out`, `exceeded-max-duration`, `voicemail`, …, and reasons Vapi adds later) → `completed`.
//! An `ended` without any reason is `completed`.
//!
//! Messages: `bot` → `assistant`, `user`, `system`; a `tool_calls` message becomes one `tool` message per
//! call in its `toolCalls`, with `toolInfo {name, arguments, result}` (arguments and result are JSON text
//! at Vapi, read back into JSON when they are an object or an array), the result found by `toolCallId`
//! among the `tool_call_result` messages (which are then not messages of their own; a result without its
//! call is one). Other roles are skipped. `id` is `msg_0001`… by position; `timestamp` is `time` (Unix ms;
//! else the start plus `secondsFromStart`); `startOffset` is `secondsFromStart`; `duration` is `duration`
//! (ms at Vapi) or `endTime − time`; `endOffset` is their sum (for a tool call: when its result came).
//! Word timings are the user messages' `metadata.wordLevelConfidence[] {word, start, end}`, whose unit is
//! the transcriber's: seconds for `deepgram`, `soniox` and `gladia`, milliseconds for `assembly-ai` and
//! `google`; for any other transcriber (or none named) they are left out, as are the placeholders of a
//! transcriber without timings (every word at 0).
//!
//! Cost lines: one per `costs[]` entry, `product` its type and what it used (`transport:twilio`,
//! `transcriber:deepgram:nova-3`, `model:openai:gpt-4o`, `voice:11labs:eleven_turbo_v2_5`, `vapi:normal`,
//! `analysis:summary`…), `quantity` in `minute`s (transport, transcriber, vapi), `token`s (prompt +
//! completion: model, analysis, knowledge base, voicemail detection) or `character`s (voice), else 1
//! `unit`; `amount` its `cost`; `unitPrice` amount ÷ quantity (0 when the quantity is 0). Without `costs`,
//! the `costBreakdown` object's amounts (`transport`, `stt`, `llm`, `tts`, `vapi`, `chat`, and
//! `analysisCostBreakdown`'s) are the lines, with tokens or characters where it counts them, else 1 `call`.
//! Money is read from the JSON number's own text as a decimal, never through a float; amounts are rounded to
//! 10 decimal places (half to even) and written as decimal strings; at most 100 lines are kept.
//!
//! `callMetadata`: the entries of `call.metadata`, then of the overrides' `metadata`, then of its
//! `variableValues` (on a key the first wins), and `structuredData` (the analysis's extraction) under that
//! key. It must be storable as DynamoDB attributes in the call's summary item, so keys that are empty (at
//! any depth) are dropped, a number that DynamoDB cannot hold (not 0 and outside magnitudes 1e-125 to
//! 1e125) is kept as its text, and entries that would take it past 16 KiB of compact JSON are left out, in
//! key order.
//!
//! A call that opted out of sensitive-data storage gets no `messages` and no recording from any of its
//! events; its summary and analysis are kept (as the call model keeps them).
//!
//! Bounds of the call model: free text is cut to its longest (message content 100,000 characters, `summary`
//! 10,000, names, `endReason` and `evaluation.outcome` 256, products and the telephony provider 128); an id
//! longer than 128 characters, a negative or out-of-range figure or amount, a timestamp before 1970 are a
//! 400 naming the field in Vapi's payload; figures are rounded to 6 decimal places. Only what is read is
//! checked: a field we do not map is never looked at, and an empty string is as good as absent.
//!
//! Not mapped, for want of a home: `events` (Vapi keeps no lifecycle list: each status change is its own
//! delivery), `telephony.conferenceSid`, `evaluation.sentiment`, `interrupted`, the transfer `destination`,
//! squads and workflows, `artifact.structuredOutputs` and `scorecards`, `customer.name`, the live
//! `messagesOpenAIFormatted`, and the performance metrics' averages (only per-turn figures give percentiles).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};

use super::read::{self, clip, embedded, first_instant, first_text, json_number, money_text, timestamp, Node, Rules};
use super::{Delivery, RecordingSource};
use crate::error::ApiError;
use crate::ids::MAX_ID_LEN;
use crate::validate::{self, MAX_CONTENT_CHARS, MAX_COST_LINES, MAX_FIGURE_DECIMALS, MAX_MONEY_DIGITS};

/// `status-update` with status `scheduled`.
pub const STAGE_SCHEDULED: u16 = 1;
/// `status-update` with status `queued`.
pub const STAGE_QUEUED: u16 = 2;
/// `status-update` with status `ringing`.
pub const STAGE_RINGING: u16 = 3;
/// `status-update` with status `in-progress`.
pub const STAGE_IN_PROGRESS: u16 = 4;
/// `status-update` with status `forwarding`.
pub const STAGE_FORWARDING: u16 = 5;
/// `status-update` with status `ended`.
pub const STAGE_ENDED: u16 = 6;
/// `end-of-call-report`.
pub const STAGE_END_OF_CALL_REPORT: u16 = 7;

/// Every Vapi cost is in US dollars.
const CURRENCY: &str = "USD";
/// What our call id adds before Vapi's: `vapi:`.
const PREFIX_LEN: usize = 5;
/// Longest `summary`, in characters.
const MAX_SUMMARY_CHARS: usize = validate::MAX_SUMMARY_CHARS;
/// Longest name, `endReason`, `evaluation.outcome`, `toolInfo.name`, `words[].word`.
const MAX_NAME_CHARS: usize = validate::MAX_NAME_CHARS;
/// Longest `costBreakdown[].product` and `telephony.provider`.
const MAX_LABEL_CHARS: usize = validate::MAX_LABEL_CHARS;
/// Largest figure (seconds, milliseconds).
const MAX_FIGURE: i64 = validate::MAX_FIGURE as i64;
/// How Vapi's figures and amounts are read: rounded half to even, a figure below 0 by any amount refused, and
/// a number too small for a decimal 0.
static RULES: Rules = Rules {
    rounding: RoundingStrategy::MidpointNearestEven,
    sign_after_rounding: false,
    tiny_is_zero: true,
    too_large: "must be below 10^12",
};
const _: () = assert!(MAX_MONEY_DIGITS == 12, "RULES.too_large names the bound");

/// Reads one Vapi server message (see the module docs).
pub fn delivery(body: &Value) -> Result<Option<Delivery>, ApiError> {
    let message = Node::root(body, &RULES).get("message");
    if message.object()?.is_none() {
        return Err(message.fail("is required: Vapi posts {\"message\": {\"type\": …}}"));
    }
    let kind = message.get("type");
    let (event, stage) = match kind.required_text()? {
        "end-of-call-report" => ("end-of-call-report".to_owned(), STAGE_END_OF_CALL_REPORT),
        "status-update" => {
            let status = message.get("status").required_text()?;
            match status_stage(status) {
                Some(stage) => (format!("status-update:{status}"), stage),
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    map(&message, event, stage).map(Some)
}

/// The stage of a status-update's status; `None` for one that is no state of a call.
fn status_stage(status: &str) -> Option<u16> {
    match status {
        "scheduled" => Some(STAGE_SCHEDULED),
        "queued" => Some(STAGE_QUEUED),
        "ringing" => Some(STAGE_RINGING),
        "in-progress" => Some(STAGE_IN_PROGRESS),
        "forwarding" => Some(STAGE_FORWARDING),
        "ended" => Some(STAGE_ENDED),
        _ => None,
    }
}

/// The call's status after it ended for `reason` (module docs).
pub fn final_status(reason: &str) -> &'static str {
    const FAILED: [&str; 10] = [
        "assistant-not-found",
        "assistant-not-valid",
        "assistant-request-returned-no-assistant",
        "assistant-request-returned-invalid-assistant",
        "assistant-join-timed-out",
        "worker-shutdown",
        "twilio-reported-customer-misdialed",
        "vonage-rejected",
        "customer-did-not-give-microphone-permission",
        "phone-call-provider-bypass-enabled-but-no-call-received",
    ];
    match reason {
        "customer-did-not-answer" => "no-answer",
        "customer-busy" => "busy",
        "manually-canceled"
        | "scheduled-call-deleted"
        | "call-deleted"
        | "call.ringing.sip-inbound-caller-hungup-before-call-connect" => "canceled",
        r if r.contains("error") || r.contains("failed") || r.contains("fault") || FAILED.contains(&r) => "failed",
        _ => "completed",
    }
}

/// One event of a call, as a [`Delivery`].
fn map(msg: &Node, event: String, stage: u16) -> Result<Delivery, ApiError> {
    let call = msg.child("call")?;
    if call.value().is_none() {
        return Err(call.fail("is required: the call the message speaks of"));
    }
    let call_id = call_id(&call.get("id"))?;
    let mut fields = Map::new();
    let mut fallbacks = Map::new();

    let direction = direction(&call.get("type"))?;
    fields.insert("direction".into(), json!(direction));

    // Time.
    let (started, started_at) = first_instant(&[msg.get("startedAt"), call.get("startedAt")])?;
    let (ended, ended_at) = first_instant(&[msg.get("endedAt"), call.get("endedAt")])?;
    if let (Some(start), Some(end), Some(node)) = (started, ended, &ended_at) {
        if end < start {
            let from = started_at.map(|n| n.path().to_owned()).unwrap_or_default();
            return Err(node.fail(format!("must not be before {from}")));
        }
    }
    let created = call.get("createdAt");
    match (created.instant()?, started) {
        (Some(t), _) => {
            fields.insert("createdAt".into(), timestamp(t));
        }
        (None, Some(start)) => {
            fallbacks.insert("createdAt".into(), timestamp(start));
        }
        (None, None) => return Err(created.fail("is required: when the call was created")),
    }
    if let Some(t) = started {
        fields.insert("startTime".into(), timestamp(t));
    }
    if let Some(t) = ended {
        fields.insert("endTime".into(), timestamp(t));
    }
    if let Some(seconds) = duration(msg, started, ended)? {
        fields.insert("duration".into(), seconds);
    }

    // Outcome.
    let reason = if stage >= STAGE_ENDED {
        first_text(&[msg.get("endedReason"), call.get("endedReason")])?
    } else {
        None
    };
    let status = match stage {
        STAGE_SCHEDULED | STAGE_QUEUED => "queued",
        STAGE_RINGING => "ringing",
        STAGE_IN_PROGRESS | STAGE_FORWARDING => "in-progress",
        _ => reason.map_or("completed", final_status),
    };
    fields.insert("status".into(), json!(status));
    if let Some(reason) = reason {
        fields.insert("endReason".into(), json!(clip(reason, MAX_NAME_CHARS)));
        if reason == "voicemail" {
            fields.insert("answeredBy".into(), json!("machine"));
        }
    }

    // Routing.
    let assistant = msg.child("assistant")?;
    let call_assistant = call.child("assistant")?;
    let overrides = call.child("assistantOverrides")?;
    let assistant_id = match call.get("assistantId").id()? {
        Some(id) => Some(id),
        None => assistant.get("id").id()?,
    };
    if let Some(id) = assistant_id {
        fields.insert("assistantId".into(), json!(id));
        if let Some(name) = first_text(&[assistant.get("name"), call_assistant.get("name")])? {
            fields.insert(
                "assistant".into(),
                json!({"id": id, "name": clip(name, MAX_NAME_CHARS)}),
            );
        }
    }
    let phone = msg.child("phoneNumber")?;
    let call_phone = call.child("phoneNumber")?;
    let phone_id = match call.get("phoneNumberId").id()? {
        Some(id) => Some(id),
        None => phone.get("id").id()?,
    };
    let our_number = first_text(&[phone.get("number"), call_phone.get("number")])?.and_then(crate::phone::e164);
    if let Some(id) = &phone_id {
        fields.insert("phoneNumberId".into(), json!(id));
        if let Some(number) = &our_number {
            let mut object = Map::new();
            object.insert("id".into(), json!(id));
            object.insert("number".into(), json!(number));
            if let Some(name) = first_text(&[phone.get("name"), call_phone.get("name")])? {
                object.insert("name".into(), json!(clip(name, MAX_NAME_CHARS)));
            }
            fields.insert("phoneNumber".into(), Value::Object(object));
        }
    }
    let customer_number = first_text(&[
        msg.child("customer")?.get("number"),
        call.child("customer")?.get("number"),
    ])?
    .and_then(crate::phone::e164);
    let (from, to) = match direction {
        "inbound" => (customer_number, our_number),
        "outbound" => (our_number, customer_number),
        _ => (None, None),
    };
    if let Some(from) = from {
        fields.insert("from".into(), json!(from));
    }
    if let Some(to) = to {
        fields.insert("to".into(), json!(to));
    }
    if let Some(id) = call.get("campaignId").id()? {
        fields.insert("campaignId".into(), json!(id));
    }
    let provider = call.get("phoneCallProvider").text()?;
    let call_sid = call.get("phoneCallProviderId").id()?;
    if provider.is_some() || call_sid.is_some() {
        let mut telephony = Map::new();
        if let Some(p) = provider {
            telephony.insert("provider".into(), json!(clip(p, MAX_LABEL_CHARS)));
        }
        if let Some(sid) = call_sid {
            telephony.insert("callSid".into(), json!(sid));
        }
        fields.insert("telephony".into(), Value::Object(telephony));
    }

    let assistants = [overrides.clone(), assistant.clone(), call_assistant.clone()];
    let opted_out = opt_out(&assistants)?;
    if let Some(flag) = opted_out {
        fields.insert("optOutSensitiveDataStorage".into(), json!(flag));
    }
    let opted_out = opted_out.unwrap_or(false);

    // Analysis.
    let analysis = if msg.get("analysis").present().is_some() {
        msg.child("analysis")?
    } else {
        call.child("analysis")?
    };
    if let Some(summary) = first_text(&[analysis.get("summary"), msg.get("summary")])? {
        fields.insert("summary".into(), json!(clip(summary, MAX_SUMMARY_CHARS)));
    }
    evaluation(&analysis.get("successEvaluation"), &mut fields)?;

    let metadata = call_metadata(&call, &overrides, &analysis)?;
    if !metadata.is_empty() {
        fields.insert("callMetadata".into(), Value::Object(metadata));
    }

    // Money.
    cost(msg, &call, &mut fields)?;

    // Content.
    let artifact = msg.child("artifact")?;
    if !opted_out {
        let list = if artifact.get("messages").present().is_some() {
            artifact.get("messages")
        } else {
            msg.get("messages")
        };
        let unit = word_unit(&assistants)?;
        if let Some(messages) = messages(&list, started, unit)? {
            fields.insert("messages".into(), Value::Array(messages));
        }
    }
    if let Some(latency) = latency(&artifact.child("performanceMetrics")?)? {
        fields.insert("latency".into(), latency);
    }
    let recording = if opted_out {
        None
    } else {
        recording_url(msg, &artifact)?.map(RecordingSource::Url)
    };

    Ok(Delivery {
        call_id,
        event,
        stage,
        fields,
        fallbacks,
        recording,
    })
}

// ---------------------------------------------------------------------------------------------------------
// The parts of the call.

/// Vapi's call id, which must make one of ours.
fn call_id(node: &Node) -> Result<String, ApiError> {
    let id = node.required_text()?;
    let max = MAX_ID_LEN - PREFIX_LEN;
    if id.len() > max {
        return Err(node.fail(format!("must be at most {max} characters")));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    {
        return Err(node.fail("may contain only letters, digits, '_', '-', '.' and ':'"));
    }
    Ok(id.to_owned())
}

fn direction(node: &Node) -> Result<&'static str, ApiError> {
    match node.text()? {
        Some("inboundPhoneCall") => Ok("inbound"),
        Some("outboundPhoneCall") => Ok("outbound"),
        Some("webCall" | "vapi.websocketCall") => Ok("web"),
        Some(_) => Err(node.fail("must be inboundPhoneCall, outboundPhoneCall, webCall or vapi.websocketCall")),
        None => Err(node.fail("is required: the call's type, which gives its direction")),
    }
}

/// The report's `durationSeconds` or `durationMs`, else the time between start and end.
fn duration(
    msg: &Node,
    started: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
) -> Result<Option<Value>, ApiError> {
    let seconds = msg.get("durationSeconds");
    if let Some(d) = seconds.decimal()? {
        return seconds.figure(d, None).map(|d| Some(json_number(d)));
    }
    let ms = msg.get("durationMs");
    if let Some(d) = ms.decimal()? {
        return ms.figure(d / Decimal::from(1000), None).map(|d| Some(json_number(d)));
    }
    match (started, ended) {
        (Some(start), Some(end)) => Ok(between(start, end)
            .map(|d| d.round_dp(MAX_FIGURE_DECIMALS as u32).normalize())
            .filter(|d| *d <= Decimal::from(MAX_FIGURE))
            .map(json_number)),
        _ => Ok(None),
    }
}

/// Seconds from `start` to `end` (never negative: the caller checked their order).
fn between(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Decimal> {
    let nanos = (end - start).num_nanoseconds()?;
    (nanos >= 0).then(|| Decimal::from_i128_with_scale(i128::from(nanos), 9))
}

/// The opt-out flag: true when any of the assistant's settings says HIPAA or PCI; false when they say so.
fn opt_out(assistants: &[Node]) -> Result<Option<bool>, ApiError> {
    let mut seen = None;
    for assistant in assistants {
        let plan = assistant.child("compliancePlan")?;
        for flag in [
            plan.get("hipaaEnabled"),
            plan.get("pciEnabled"),
            assistant.get("hipaaEnabled"),
        ] {
            match flag.boolean()? {
                Some(true) => return Ok(Some(true)),
                Some(false) => seen = Some(false),
                None => {}
            }
        }
    }
    Ok(seen)
}

/// `successEvaluation`, whatever rubric made it: outcome as sent, a score when it is a number, success when
/// it says pass or fail.
fn evaluation(node: &Node, fields: &mut Map<String, Value>) -> Result<(), ApiError> {
    let (outcome, success, score) = match node.present() {
        None => return Ok(()),
        Some(Value::Bool(b)) => (b.to_string(), Some(*b), None),
        Some(Value::Number(n)) => (n.to_string(), None, RULES.exact(n)),
        Some(Value::String(s)) => {
            let text = s.trim();
            if text.is_empty() {
                return Ok(());
            }
            let success = match text.to_ascii_lowercase().as_str() {
                "true" | "pass" | "passed" | "yes" => Some(true),
                "false" | "fail" | "failed" | "no" => Some(false),
                _ => None,
            };
            let figure = text.strip_suffix('%').unwrap_or(text).trim();
            let score = figure
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
                .then(|| Decimal::from_str(figure).ok())
                .flatten();
            (text.to_owned(), success, score)
        }
        Some(_) => return Err(node.fail("must be a string, a number or true or false")),
    };
    let mut evaluation = Map::new();
    evaluation.insert("outcome".into(), json!(clip(&outcome, MAX_NAME_CHARS)));
    let score = score
        .filter(|d| !d.is_sign_negative() && *d <= Decimal::from(100))
        .map(|d| d.round_dp(MAX_FIGURE_DECIMALS as u32).normalize());
    if let Some(score) = score {
        evaluation.insert("score".into(), json_number(score));
    }
    fields.insert("evaluation".into(), Value::Object(evaluation));
    if let Some(success) = success {
        fields.insert("isSuccess".into(), json!(success));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// callMetadata

fn call_metadata(call: &Node, overrides: &Node, analysis: &Node) -> Result<Map<String, Value>, ApiError> {
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for source in [
        call.get("metadata"),
        overrides.get("metadata"),
        overrides.get("variableValues"),
    ] {
        if let Some(map) = source.object()? {
            for (key, value) in map {
                entries.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    let structured = analysis.get("structuredData");
    if let Some(map) = structured.object()? {
        if !map.is_empty() {
            entries.insert("structuredData".into(), Value::Object(map.clone()));
        }
    }
    // What DynamoDB cannot hold is dropped or kept as text, then entries are taken in key order while they fit.
    Ok(read::metadata(entries))
}

// ---------------------------------------------------------------------------------------------------------
// Money

fn cost(msg: &Node, call: &Node, fields: &mut Map<String, Value>) -> Result<(), ApiError> {
    let breakdown = if msg.get("costBreakdown").present().is_some() {
        msg.child("costBreakdown")?
    } else {
        call.child("costBreakdown")?
    };
    let mut total = None;
    for node in [msg.get("cost"), call.get("cost"), breakdown.get("total")] {
        if let Some(d) = node.decimal()? {
            total = Some(node.money(d)?);
            break;
        }
    }
    let costs = if msg.get("costs").present().is_some() {
        msg.get("costs")
    } else {
        call.get("costs")
    };
    let mut lines = match costs.array()? {
        Some(items) if !items.is_empty() => cost_lines(&costs, items.len())?,
        _ => breakdown_lines(&breakdown)?,
    };
    lines.truncate(MAX_COST_LINES);
    if total.is_none() && lines.is_empty() {
        return Ok(());
    }
    if let Some(total) = total {
        fields.insert("cost".into(), money_text(total));
    }
    fields.insert("currency".into(), json!(CURRENCY));
    if !lines.is_empty() {
        fields.insert("costBreakdown".into(), Value::Array(lines));
    }
    Ok(())
}

/// One line of `costBreakdown`.
struct Line {
    product: String,
    quantity: Decimal,
    unit: &'static str,
}

fn line(line: Line, amount_node: &Node) -> Result<Value, ApiError> {
    let amount = amount_node.decimal()?.ok_or_else(|| amount_node.fail("is required"))?;
    let amount = amount_node.money(amount)?;
    let unit_price = if line.quantity.is_zero() {
        Decimal::ZERO
    } else {
        let price = amount
            .checked_div(line.quantity)
            .ok_or_else(|| amount_node.fail("gives a unit price out of range"))?;
        amount_node.money(price)?
    };
    Ok(json!({
        "product": clip(&line.product, MAX_LABEL_CHARS),
        "quantity": money_text(line.quantity),
        "unit": line.unit,
        "unitPrice": money_text(unit_price),
        "amount": money_text(amount),
    }))
}

/// The sum of the counts at `keys` of `node` (each a non-negative number), or `None` when it has none.
fn count(node: &Node, keys: &[&str]) -> Result<Option<Decimal>, ApiError> {
    let mut sum: Option<Decimal> = None;
    for key in keys {
        let part = node.get(key);
        if let Some(d) = part.decimal()? {
            let d = part.money(d)?;
            let total = sum.unwrap_or(Decimal::ZERO).checked_add(d);
            sum = Some(part.money(total.ok_or_else(|| part.fail("is out of range"))?)?);
        }
    }
    Ok(sum)
}

fn cost_lines(costs: &Node, len: usize) -> Result<Vec<Value>, ApiError> {
    const TOKENS: [&str; 2] = ["promptTokens", "completionTokens"];
    let mut lines = Vec::with_capacity(len.min(MAX_COST_LINES));
    for i in 0..len.min(MAX_COST_LINES) {
        let item = costs.at(i);
        if item.object()?.is_none() {
            return Err(item.fail("must be an object"));
        }
        let kind = item.get("type").required_text()?;
        let label = |parts: &[Option<&str>]| -> String {
            std::iter::once(kind)
                .chain(parts.iter().flatten().copied())
                .collect::<Vec<_>>()
                .join(":")
        };
        let used = |key: &str| -> Result<(Option<&str>, Option<&str>), ApiError> {
            let part = item.child(key)?;
            Ok((part.get("provider").text()?, part.get("model").text()?))
        };
        let (product, counted, unit) = match kind {
            "transport" => (
                label(&[item.get("provider").text()?]),
                count(&item, &["minutes"])?,
                "minute",
            ),
            "transcriber" => {
                let (provider, model) = used("transcriber")?;
                (label(&[provider, model]), count(&item, &["minutes"])?, "minute")
            }
            "model" => {
                let (provider, model) = used("model")?;
                (label(&[provider, model]), count(&item, &TOKENS)?, "token")
            }
            "voice" => {
                let (provider, model) = used("voice")?;
                (label(&[provider, model]), count(&item, &["characters"])?, "character")
            }
            "vapi" => (
                label(&[item.get("subType").text()?]),
                count(&item, &["minutes"])?,
                "minute",
            ),
            "analysis" => (
                label(&[item.get("analysisType").text()?]),
                count(&item, &TOKENS)?,
                "token",
            ),
            "knowledge-base" => (label(&[]), count(&item, &TOKENS)?, "token"),
            "voicemail-detection" => (
                label(&[item.get("provider").text()?]),
                count(
                    &item,
                    &[
                        "promptTextTokens",
                        "promptAudioTokens",
                        "completionTextTokens",
                        "completionAudioTokens",
                    ],
                )?,
                "token",
            ),
            _ => match count(&item, &["minutes"])? {
                Some(minutes) => (label(&[]), Some(minutes), "minute"),
                None => (label(&[]), None, "unit"),
            },
        };
        let (quantity, unit) = match counted {
            Some(q) => (q, unit),
            None => (Decimal::ONE, "unit"),
        };
        lines.push(line(
            Line {
                product,
                quantity,
                unit,
            },
            &item.get("cost"),
        )?);
    }
    Ok(lines)
}

/// The `costBreakdown` object's amounts as lines, for a payload without `costs`.
fn breakdown_lines(breakdown: &Node) -> Result<Vec<Value>, ApiError> {
    let mut lines = Vec::new();
    if breakdown.value().is_none() {
        return Ok(lines);
    }
    let parts: [(&str, &[&str], &'static str); 6] = [
        ("transport", &[], "call"),
        ("stt", &[], "call"),
        ("llm", &["llmPromptTokens", "llmCompletionTokens"], "token"),
        ("tts", &["ttsCharacters"], "character"),
        ("vapi", &[], "call"),
        ("chat", &[], "call"),
    ];
    for (key, counts, unit) in parts {
        let amount = breakdown.get(key);
        if amount.present().is_some() {
            lines.push(counted_line(key.to_owned(), breakdown, counts, unit, &amount)?);
        }
    }
    let analysis = breakdown.child("analysisCostBreakdown")?;
    for key in ["summary", "structuredData", "successEvaluation", "structuredOutput"] {
        let amount = analysis.get(key);
        if amount.present().is_some() {
            let prompt = format!("{key}PromptTokens");
            let completion = format!("{key}CompletionTokens");
            let counts = [prompt.as_str(), completion.as_str()];
            lines.push(counted_line(
                format!("analysis:{key}"),
                &analysis,
                &counts,
                "token",
                &amount,
            )?);
        }
    }
    Ok(lines)
}

fn counted_line(
    product: String,
    node: &Node,
    counts: &[&str],
    unit: &'static str,
    amount: &Node,
) -> Result<Value, ApiError> {
    let (quantity, unit) = match count(node, counts)? {
        Some(q) => (q, unit),
        None => (Decimal::ONE, "call"),
    };
    line(
        Line {
            product,
            quantity,
            unit,
        },
        amount,
    )
}

// ---------------------------------------------------------------------------------------------------------
// Messages

/// The unit of word times, by the transcriber that made them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordUnit {
    Seconds,
    Millis,
}

fn word_unit(assistants: &[Node]) -> Result<Option<WordUnit>, ApiError> {
    for assistant in assistants {
        if let Some(provider) = assistant.child("transcriber")?.get("provider").text()? {
            return Ok(match provider {
                "deepgram" | "soniox" | "gladia" => Some(WordUnit::Seconds),
                "assembly-ai" | "google" => Some(WordUnit::Millis),
                _ => None,
            });
        }
    }
    Ok(None)
}

fn messages(
    list: &Node,
    started: Option<DateTime<Utc>>,
    unit: Option<WordUnit>,
) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(items) = list.array()? else {
        return Ok(None);
    };
    // Which calls have results, and where those results are.
    let mut call_ids = BTreeSet::new();
    let mut results: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, value) in items.iter().enumerate() {
        let item = list.at(i);
        if !value.is_object() {
            return Err(item.fail("must be an object"));
        }
        match item.get("role").required_text()? {
            "tool_calls" => {
                let calls = item.get("toolCalls");
                for j in 0..calls.array()?.map_or(0, <[Value]>::len) {
                    if let Some(id) = calls.at(j).get("id").text()? {
                        call_ids.insert(id);
                    }
                }
            }
            "tool_call_result" => {
                if let Some(id) = item.get("toolCallId").text()? {
                    results.entry(id).or_insert(i);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for i in 0..items.len() {
        let item = list.at(i);
        match item.get("role").required_text()? {
            role @ ("system" | "bot" | "assistant" | "user") => {
                let ours = if role == "bot" { "assistant" } else { role };
                let words = if ours == "user" { unit } else { None };
                let message = spoken(&item, ours, out.len() + 1, started, words)?;
                out.push(message);
            }
            "tool_calls" => {
                let calls = item.get("toolCalls");
                let len = calls.array()?.map_or(0, <[Value]>::len);
                for j in 0..len {
                    let tool = calls.at(j);
                    let result = tool
                        .get("id")
                        .text()?
                        .and_then(|id| results.get(id))
                        .map(|&k| list.at(k));
                    let message = tool_call(&item, &tool, result.as_ref(), out.len() + 1, started)?;
                    out.push(message);
                }
            }
            "tool_call_result" => {
                let matched = item.get("toolCallId").text()?.is_some_and(|id| call_ids.contains(id));
                if !matched {
                    let message = tool_result(&item, out.len() + 1, started)?;
                    out.push(message);
                }
            }
            _ => {}
        }
    }
    Ok(Some(out))
}

fn message_id(n: usize) -> Value {
    json!(format!("msg_{n:04}"))
}

/// When a message was: its `time`, else the call's start plus `secondsFromStart`.
fn when(item: &Node, offset: Option<Decimal>, started: Option<DateTime<Utc>>) -> Result<Value, ApiError> {
    let time = item.get("time");
    if let Some(t) = time.unix_ms()? {
        return Ok(timestamp(t));
    }
    let computed = offset.zip(started).and_then(|(offset, start)| {
        let nanos = i64::try_from((offset * Decimal::from(1_000_000_000)).round()).ok()?;
        start.checked_add_signed(chrono::TimeDelta::nanoseconds(nanos))
    });
    computed
        .map(timestamp)
        .ok_or_else(|| time.fail("is required (or secondsFromStart and the call's startedAt)"))
}

/// `secondsFromStart` as a figure.
fn offset(item: &Node) -> Result<Option<Decimal>, ApiError> {
    let node = item.get("secondsFromStart");
    node.decimal()?.map(|d| node.figure(d, None)).transpose()
}

fn spoken(
    item: &Node,
    role: &str,
    n: usize,
    started: Option<DateTime<Utc>>,
    unit: Option<WordUnit>,
) -> Result<Value, ApiError> {
    let content = item.get("message").string()?.unwrap_or_default();
    let start = offset(item)?;
    let mut message = Map::new();
    message.insert("id".into(), message_id(n));
    message.insert("role".into(), json!(role));
    message.insert("content".into(), json!(clip(content, MAX_CONTENT_CHARS)));
    message.insert("timestamp".into(), when(item, start, started)?);
    let length = item.get("duration");
    let duration = match length.decimal()? {
        Some(ms) => Some(length.figure(ms / Decimal::from(1000), None)?),
        None => {
            let end = item.get("endTime");
            match (item.get("time").unix_ms()?, end.unix_ms()?) {
                (Some(from), Some(to)) if to >= from => between(from, to).map(|d| end.figure(d, None)).transpose()?,
                _ => None,
            }
        }
    };
    if let Some(start) = start {
        message.insert("startOffset".into(), json_number(start));
        if let Some(d) = duration {
            message.insert(
                "endOffset".into(),
                json_number(item.get("secondsFromStart").figure(start + d, None)?),
            );
        }
    }
    if let Some(d) = duration {
        message.insert("duration".into(), json_number(d));
    }
    if let Some(unit) = unit {
        if let Some(words) = words(&item.child("metadata")?.get("wordLevelConfidence"), unit)? {
            message.insert("words".into(), Value::Array(words));
        }
    }
    Ok(Value::Object(message))
}

fn words(list: &Node, unit: WordUnit) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(items) = list.array()? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(items.len());
    let mut timed = false;
    for i in 0..items.len() {
        let item = list.at(i);
        if item.object()?.is_none() {
            return Err(item.fail("must be an object"));
        }
        let word = item
            .get("word")
            .string()?
            .ok_or_else(|| item.get("word").fail("is required"))?;
        let mut time = |key: &str| -> Result<Decimal, ApiError> {
            let node = item.get(key);
            let raw = node.decimal()?.ok_or_else(|| node.fail("is required"))?;
            let seconds = match unit {
                WordUnit::Seconds => raw,
                WordUnit::Millis => raw / Decimal::from(1000),
            };
            let seconds = node.figure(seconds, None)?;
            timed |= !seconds.is_zero();
            Ok(seconds)
        };
        let start = time("start")?;
        let end = time("end")?;
        out.push(json!({"word": clip(word, MAX_NAME_CHARS), "start": json_number(start), "end": json_number(end)}));
    }
    Ok((timed && !out.is_empty()).then_some(out))
}

fn tool_call(
    item: &Node,
    tool: &Node,
    result: Option<&Node>,
    n: usize,
    started: Option<DateTime<Utc>>,
) -> Result<Value, ApiError> {
    if tool.object()?.is_none() {
        return Err(tool.fail("must be an object"));
    }
    let function = tool.child("function")?;
    let name = function.get("name").required_text()?;
    let start = offset(item)?;
    let mut info = Map::new();
    info.insert("name".into(), json!(clip(name, MAX_NAME_CHARS)));
    if let Some(arguments) = function.get("arguments").present() {
        info.insert("arguments".into(), embedded(arguments));
    }
    let mut end = None;
    if let Some(result) = result {
        if let Some(value) = result.get("result").present() {
            info.insert("result".into(), embedded(value));
        }
        end = offset(result)?;
    }
    let mut message = Map::new();
    message.insert("id".into(), message_id(n));
    message.insert("role".into(), json!("tool"));
    message.insert("content".into(), json!(clip(name, MAX_NAME_CHARS)));
    message.insert("timestamp".into(), when(item, start, started)?);
    read::offsets(&mut message, start, end);
    message.insert("toolInfo".into(), Value::Object(info));
    Ok(Value::Object(message))
}

/// A result whose call is not among the messages.
fn tool_result(item: &Node, n: usize, started: Option<DateTime<Utc>>) -> Result<Value, ApiError> {
    let name = item.get("name").required_text()?;
    let start = offset(item)?;
    let mut info = Map::new();
    info.insert("name".into(), json!(clip(name, MAX_NAME_CHARS)));
    if let Some(value) = item.get("result").present() {
        info.insert("result".into(), embedded(value));
    }
    let mut message = Map::new();
    message.insert("id".into(), message_id(n));
    message.insert("role".into(), json!("tool"));
    message.insert("content".into(), json!(clip(name, MAX_NAME_CHARS)));
    message.insert("timestamp".into(), when(item, start, started)?);
    read::offsets(&mut message, start, None);
    message.insert("toolInfo".into(), Value::Object(info));
    Ok(Value::Object(message))
}

// ---------------------------------------------------------------------------------------------------------
// Latency and the recording

fn latency(metrics: &Node) -> Result<Option<Value>, ApiError> {
    let turns = metrics.get("turnLatencies");
    let Some(items) = turns.array()? else {
        return Ok(None);
    };
    let groups = [
        ("e2e", "turnLatency"),
        ("llm", "modelLatency"),
        ("tts", "voiceLatency"),
        ("asr", "transcriberLatency"),
    ];
    let mut latency = Map::new();
    for (ours, theirs) in groups {
        let mut figures = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            let turn = turns.at(i);
            if turn.object()?.is_none() {
                return Err(turn.fail("must be an object"));
            }
            let node = turn.get(theirs);
            if let Some(d) = node.decimal()? {
                figures.push(node.figure(d, None)?);
            }
        }
        if let Some(stats) = stats(figures) {
            latency.insert(ours.into(), stats);
        }
    }
    Ok((!latency.is_empty()).then_some(Value::Object(latency)))
}

/// min, max, nearest-rank percentiles and count of `figures`; `None` when there are none.
fn stats(mut figures: Vec<Decimal>) -> Option<Value> {
    figures.sort();
    let n = figures.len();
    let min = *figures.first()?;
    let max = *figures.last()?;
    let pick = |p: usize| {
        let rank = (p * n).div_ceil(100).clamp(1, n);
        json_number(figures.get(rank - 1).copied().unwrap_or(max))
    };
    Some(json!({
        "min": json_number(min),
        "max": json_number(max),
        "p50": pick(50),
        "p90": pick(90),
        "p95": pick(95),
        "p99": pick(99),
        "num": u32::try_from(n).unwrap_or(u32::MAX),
    }))
}

/// The combined recording's link, else the stereo one.
fn recording_url(msg: &Node, artifact: &Node) -> Result<Option<String>, ApiError> {
    let recording = artifact.child("recording")?;
    let candidates = [
        artifact.get("recordingUrl"),
        recording.child("mono")?.get("combinedUrl"),
        msg.get("recordingUrl"),
        artifact.get("stereoRecordingUrl"),
        recording.get("stereoUrl"),
        msg.get("stereoRecordingUrl"),
    ];
    Ok(first_text(&candidates)?.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::MAX_METADATA_BYTES;
    use crate::webhook::merge;
    use crate::webhook::tests::every_order_agrees;
    use crate::{validate, CallId, TenantId};

    const QUEUED: &str = include_str!("../../../fixtures/webhooks/vapi/status-update-queued.json");
    const RINGING: &str = include_str!("../../../fixtures/webhooks/vapi/status-update-ringing.json");
    const IN_PROGRESS: &str = include_str!("../../../fixtures/webhooks/vapi/status-update-in-progress.json");
    const ENDED: &str = include_str!("../../../fixtures/webhooks/vapi/status-update-ended.json");
    const REPORT: &str = include_str!("../../../fixtures/webhooks/vapi/end-of-call-report.json");
    const OPTED_OUT: &str = include_str!("../../../fixtures/webhooks/vapi/end-of-call-report-opted-out.json");

    /// Every fixture of the one call, with what it alone stores.
    const CALL: [(&str, &str); 5] = [
        (
            QUEUED,
            include_str!("../../../fixtures/webhooks/vapi/status-update-queued.expected.json"),
        ),
        (
            RINGING,
            include_str!("../../../fixtures/webhooks/vapi/status-update-ringing.expected.json"),
        ),
        (
            IN_PROGRESS,
            include_str!("../../../fixtures/webhooks/vapi/status-update-in-progress.expected.json"),
        ),
        (
            ENDED,
            include_str!("../../../fixtures/webhooks/vapi/status-update-ended.expected.json"),
        ),
        (
            REPORT,
            include_str!("../../../fixtures/webhooks/vapi/end-of-call-report.expected.json"),
        ),
    ];
    const CALL_EXPECTED: &str = include_str!("../../../fixtures/webhooks/vapi/call.expected.json");
    const OPTED_OUT_EXPECTED: &str =
        include_str!("../../../fixtures/webhooks/vapi/end-of-call-report-opted-out.expected.json");

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    fn map_text(text: &str) -> Delivery {
        delivery(&parse(text)).expect("mapped").expect("stored")
    }

    /// What one delivery stores on a new call, with our id: the shape of an `.expected.json`.
    fn stored(d: &Delivery) -> Value {
        let (mut fields, _) = merge(None, d);
        fields.insert("id".into(), json!(format!("vapi:{}", d.call_id)));
        Value::Object(fields)
    }

    /// The merged call checked as any PUT is, at a fixed moment after the fixtures.
    fn accepted(call: &Value) {
        let id = CallId::parse(call["id"].as_str().expect("an id")).expect("a call id");
        let now = "2026-01-01T00:00:00Z".parse().expect("instant");
        let tenant = TenantId::parse("t1").expect("tenant");
        if let Err(e) = validate::call(&tenant, call, Some(&id), now) {
            panic!("refused: {e}");
        }
    }

    fn refused(body: &Value) -> (String, String) {
        match delivery(body) {
            Err(ApiError::InvalidParameter { field, reason }) => (field, reason),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    /// The report with `value` at the JSON pointer `at`.
    fn report_with(at: &str, value: Value) -> Value {
        let mut body = parse(REPORT);
        *body.pointer_mut(at).unwrap_or_else(|| panic!("{at} is in the fixture")) = value;
        body
    }

    fn report_without(at: &str) -> Value {
        let mut body = parse(REPORT);
        let (parent, key) = at.rsplit_once('/').expect("a pointer");
        body.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove(key))
            .unwrap_or_else(|| panic!("{at} is in the fixture"));
        body
    }

    #[test]
    fn every_fixture_maps_to_what_it_alone_stores() {
        for (body, expected) in CALL.iter().chain([(OPTED_OUT, OPTED_OUT_EXPECTED)].iter()) {
            let d = map_text(body);
            assert_eq!(stored(&d), parse(expected), "{}", d.event);
            accepted(&stored(&d));
        }
    }

    #[test]
    fn the_call_is_the_same_after_its_events_in_any_order_and_passes_validation() {
        let deliveries: Vec<Delivery> = CALL.iter().map(|(body, _)| map_text(body)).collect();
        let merged = every_order_agrees(&deliveries);
        let mut expected = parse(CALL_EXPECTED);
        let id = expected.as_object_mut().and_then(|o| o.remove("id")).expect("an id");
        assert_eq!(Value::Object(merged.clone()), expected);
        let mut call = merged;
        call.insert("id".into(), id);
        accepted(&Value::Object(call));
    }

    #[test]
    fn stages_rise_with_the_call_and_the_report_outranks_every_status() {
        let stages: Vec<(String, u16)> = CALL
            .iter()
            .map(|(body, _)| map_text(body))
            .map(|d| (d.event, d.stage))
            .collect();
        assert_eq!(
            stages,
            [
                ("status-update:queued".to_owned(), STAGE_QUEUED),
                ("status-update:ringing".to_owned(), STAGE_RINGING),
                ("status-update:in-progress".to_owned(), STAGE_IN_PROGRESS),
                ("status-update:ended".to_owned(), STAGE_ENDED),
                ("end-of-call-report".to_owned(), STAGE_END_OF_CALL_REPORT),
            ]
        );
        let order = [
            STAGE_SCHEDULED,
            STAGE_QUEUED,
            STAGE_RINGING,
            STAGE_IN_PROGRESS,
            STAGE_FORWARDING,
            STAGE_ENDED,
            STAGE_END_OF_CALL_REPORT,
        ];
        assert!(
            order.windows(2).all(|w| w[0] < w[1]) && order[0] > 0,
            "fallbacks alone are stage 0"
        );
        for d in CALL.iter().map(|(body, _)| map_text(body)) {
            assert!(d.fallbacks.is_empty(), "{}: every event carries createdAt", d.event);
            assert!(
                d.fields.values().all(|v| !v.is_null()),
                "{}: no null placeholders",
                d.event
            );
        }
    }

    #[test]
    fn the_recording_is_the_reports_combined_link_and_never_an_opted_out_calls() {
        let report = map_text(REPORT);
        let mono = parse(REPORT)["message"]["artifact"]["recordingUrl"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(report.recording, mono.clone().map(RecordingSource::Url));
        assert!(mono.is_some_and(|m| m.starts_with("https://storage.vapi.ai/") && m.ends_with("-mono.wav")));
        assert!(!report.fields.keys().any(|k| k.starts_with("recording")));
        for body in [QUEUED, RINGING, IN_PROGRESS, ENDED] {
            assert_eq!(map_text(body).recording, None);
        }
        // Without the combined link: the mono object's, then the stereo one.
        let body = report_without("/message/artifact/recordingUrl");
        let d = delivery(&body).unwrap().unwrap();
        let combined = body["message"]["artifact"]["recording"]["mono"]["combinedUrl"].as_str();
        assert_eq!(d.recording, combined.map(|u| RecordingSource::Url(u.to_owned())));
        let mut only_stereo = parse(REPORT);
        let message = only_stereo["message"].as_object_mut().unwrap();
        message.remove("recordingUrl");
        let artifact = message["artifact"].as_object_mut().unwrap();
        artifact.remove("recordingUrl");
        artifact.remove("recording");
        let stereo = artifact["stereoRecordingUrl"].as_str().unwrap().to_owned();
        assert_eq!(
            delivery(&only_stereo).unwrap().unwrap().recording,
            Some(RecordingSource::Url(stereo))
        );

        let opted = map_text(OPTED_OUT);
        assert_eq!(opted.recording, None);
        assert_eq!(opted.fields["optOutSensitiveDataStorage"], json!(true));
        assert!(!opted.fields.contains_key("messages"));
        assert!(
            parse(OPTED_OUT)["message"]["artifact"]["messages"].is_array(),
            "the payload had them"
        );
    }

    #[test]
    fn hipaa_on_the_call_overrides_opts_out_too() {
        let mut body = parse(REPORT);
        body["message"]["call"]["assistantOverrides"]["compliancePlan"] = json!({"hipaaEnabled": true});
        let d = delivery(&body).unwrap().unwrap();
        assert_eq!(d.fields["optOutSensitiveDataStorage"], json!(true));
        assert!(!d.fields.contains_key("messages"));
        assert_eq!(d.recording, None);
        assert!(
            d.fields.contains_key("summary"),
            "the summary is kept, as the call model keeps it"
        );
    }

    #[test]
    fn messages_other_than_the_two_about_the_record_are_ignored() {
        for kind in [
            "conversation-update",
            "speech-update",
            "transcript",
            "tool-calls",
            "hang",
            "assistant-request",
            "function-call",
            "model-output",
            "user-interrupted",
            "transfer-update",
            "a-type-vapi-adds-next-year",
        ] {
            let body = json!({"message": {"type": kind, "call": {"id": "x"}}});
            assert_eq!(delivery(&body).unwrap(), None, "{kind}");
        }
        for status in ["not-found", "deletion-failed"] {
            let mut body = parse(QUEUED);
            body["message"]["status"] = json!(status);
            assert_eq!(delivery(&body).unwrap(), None, "{status}");
        }
    }

    #[test]
    fn each_status_has_its_stage_and_status() {
        for (status, stage, ours) in [
            ("scheduled", STAGE_SCHEDULED, "queued"),
            ("queued", STAGE_QUEUED, "queued"),
            ("ringing", STAGE_RINGING, "ringing"),
            ("in-progress", STAGE_IN_PROGRESS, "in-progress"),
            ("forwarding", STAGE_FORWARDING, "in-progress"),
            ("ended", STAGE_ENDED, "completed"),
        ] {
            let mut body = parse(RINGING);
            body["message"]["status"] = json!(status);
            let d = delivery(&body).unwrap().unwrap();
            assert_eq!((d.stage, d.fields["status"].as_str()), (stage, Some(ours)), "{status}");
            assert!(!d.fields.contains_key("endReason"), "{status}: no reason given");
        }
        // Forwarding sends the conversation so far as `messages`.
        let mut body = parse(RINGING);
        body["message"]["status"] = json!("forwarding");
        body["message"]["messages"] = parse(IN_PROGRESS)["message"]["artifact"]["messages"].clone();
        let d = delivery(&body).unwrap().unwrap();
        assert_eq!(d.fields["messages"][0]["role"], json!("system"));
    }

    #[test]
    fn the_ended_reason_gives_the_final_status() {
        for (reason, status) in [
            ("customer-ended-call", "completed"),
            ("assistant-ended-call", "completed"),
            ("assistant-said-end-call-phrase", "completed"),
            ("assistant-forwarded-call", "completed"),
            ("silence-timed-out", "completed"),
            ("exceeded-max-duration", "completed"),
            ("voicemail", "completed"),
            ("call.in-progress.twilio-completed-call", "completed"),
            ("call.forwarding.operator-busy", "completed"),
            ("customer-did-not-answer", "no-answer"),
            ("customer-busy", "busy"),
            ("manually-canceled", "canceled"),
            ("call.ringing.sip-inbound-caller-hungup-before-call-connect", "canceled"),
            ("pipeline-error-openai-llm-failed", "failed"),
            ("call.in-progress.error-sip-outbound-call-failed-to-connect", "failed"),
            ("call.start.error-subscription-frozen", "failed"),
            ("assistant-request-failed", "failed"),
            ("assistant-not-found", "failed"),
            ("twilio-reported-customer-misdialed", "failed"),
            ("worker-shutdown", "failed"),
            ("a-reason-vapi-adds-next-year", "completed"),
        ] {
            assert_eq!(final_status(reason), status, "{reason}");
            let d = delivery(&report_with("/message/endedReason", json!(reason)))
                .unwrap()
                .unwrap();
            assert_eq!(d.fields["status"], json!(status), "{reason}");
            assert_eq!(d.fields["endReason"], json!(reason));
            assert_eq!(
                d.fields.get("answeredBy"),
                (reason == "voicemail").then_some(&json!("machine"))
            );
        }
        // The report's own reason first, else the call's.
        let d = delivery(&report_without("/message/endedReason")).unwrap().unwrap();
        assert_eq!(d.fields["endReason"], json!("customer-ended-call"));
    }

    #[test]
    fn directions_and_numbers_follow_the_call_type() {
        let d = map_text(REPORT);
        assert_eq!(
            (&d.fields["from"], &d.fields["to"]),
            (&json!("+19715550182"), &json!("+15035550147"))
        );
        let d = delivery(&report_with("/message/call/type", json!("outboundPhoneCall")))
            .unwrap()
            .unwrap();
        assert_eq!(
            (&d.fields["from"], &d.fields["to"]),
            (&json!("+15035550147"), &json!("+19715550182"))
        );
        for web in ["webCall", "vapi.websocketCall"] {
            let d = delivery(&report_with("/message/call/type", json!(web)))
                .unwrap()
                .unwrap();
            assert_eq!(d.fields["direction"], json!("web"));
            assert!(!d.fields.contains_key("from") && !d.fields.contains_key("to"));
        }
        // A SIP customer has no E.164 number: left out, not refused.
        let mut body = parse(REPORT);
        body["message"]["customer"]["number"] = json!("sip:front-desk@pbx.example");
        body["message"]["call"]["customer"]["number"] = json!("sip:front-desk@pbx.example");
        let d = delivery(&body).unwrap().unwrap();
        assert!(!d.fields.contains_key("from"));
        assert_eq!(d.fields["to"], json!("+15035550147"));
    }

    #[test]
    fn created_at_falls_back_to_the_start_only_when_the_call_lacks_it() {
        let mut body = parse(IN_PROGRESS);
        body["message"]["call"].as_object_mut().unwrap().remove("createdAt");
        let d = delivery(&body).unwrap().unwrap();
        assert!(!d.fields.contains_key("createdAt"));
        assert_eq!(d.fallbacks["createdAt"], json!("2025-11-04T16:20:05.948Z"));
        // The real one wins in either order.
        let merged = every_order_agrees(&[d, map_text(QUEUED)]);
        assert_eq!(merged["createdAt"], json!("2025-11-04T16:20:03.512Z"));
        // Neither: the event cannot be stored.
        let mut body = parse(QUEUED);
        body["message"]["call"].as_object_mut().unwrap().remove("createdAt");
        assert_eq!(refused(&body).0, "message.call.createdAt");
    }

    #[test]
    fn money_is_exact_whatever_a_float_would_make_of_it() {
        let mut body = parse(REPORT);
        let message = &mut body["message"];
        message["cost"] = serde_json::from_str("0.30000000000000004").unwrap();
        message["costs"] = json!([
            {"type": "transport", "provider": "twilio", "minutes": 3, "cost": 0.1},
            {"type": "vapi", "subType": "normal", "minutes": 3, "cost": 0.2},
            {"type": "voice", "voice": {"provider": "11labs"}, "characters": 7, "cost": 1e-7},
            {"type": "model", "model": {"provider": "openai", "model": "gpt-4o"}, "promptTokens": 0,
             "completionTokens": 0, "cost": 0.07},
            {"type": "something-new", "cost": 0.123456789012345}
        ]);
        let d = delivery(&body).unwrap().unwrap();
        assert_eq!(d.fields["cost"], json!("0.3"), "rounded to 10 places from its own text");
        assert_eq!(d.fields["currency"], json!("USD"));
        let lines = d.fields["costBreakdown"].as_array().unwrap();
        let line = |i: usize| {
            let l = &lines[i];
            (
                l["product"].as_str().unwrap(),
                l["quantity"].as_str().unwrap(),
                l["unit"].as_str().unwrap(),
                l["unitPrice"].as_str().unwrap(),
                l["amount"].as_str().unwrap(),
            )
        };
        assert_eq!(line(0), ("transport:twilio", "3", "minute", "0.0333333333", "0.1"));
        assert_eq!(line(1), ("vapi:normal", "3", "minute", "0.0666666667", "0.2"));
        assert_eq!(line(2), ("voice:11labs", "7", "character", "0.0000000143", "0.0000001"));
        assert_eq!(line(3), ("model:openai:gpt-4o", "0", "token", "0", "0.07"));
        assert_eq!(line(4), ("something-new", "1", "unit", "0.123456789", "0.123456789"));
        let mut call = stored(&d);
        call["id"] = json!(format!("vapi:{}", d.call_id));
        accepted(&call);
    }

    #[test]
    fn without_costs_the_breakdown_object_gives_the_lines_and_the_total() {
        let mut body = report_without("/message/costs");
        body["message"].as_object_mut().unwrap().remove("cost");
        let d = delivery(&body).unwrap().unwrap();
        assert_eq!(d.fields["cost"], json!("0.2497725"), "costBreakdown.total");
        let products: Vec<&str> = d.fields["costBreakdown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["product"].as_str().unwrap())
            .collect();
        assert_eq!(
            products,
            [
                "transport",
                "stt",
                "llm",
                "tts",
                "vapi",
                "chat",
                "analysis:summary",
                "analysis:structuredData",
                "analysis:successEvaluation"
            ]
        );
        let llm = &d.fields["costBreakdown"][2];
        assert_eq!((&llm["quantity"], &llm["unit"]), (&json!("19064"), &json!("token")));
        let transport = &d.fields["costBreakdown"][0];
        assert_eq!(
            (&transport["quantity"], &transport["unit"]),
            (&json!("1"), &json!("call"))
        );
        assert_eq!(d.fields["costBreakdown"][5]["amount"], json!("0"));
    }

    #[test]
    fn the_success_evaluation_of_any_rubric() {
        for (sent, outcome, score, success) in [
            (json!("true"), "true", None, Some(true)),
            (json!("false"), "false", None, Some(false)),
            (json!(true), "true", None, Some(true)),
            (json!("8"), "8", Some(json!(8)), None),
            (json!("85%"), "85%", Some(json!(85)), None),
            (json!(7.5), "7.5", Some(json!(7.5)), None),
            (json!("B"), "B", None, None),
            (json!("Excellent"), "Excellent", None, None),
            (json!("250"), "250", None, None),
        ] {
            let d = delivery(&report_with("/message/analysis/successEvaluation", sent.clone()))
                .unwrap()
                .unwrap();
            assert_eq!(d.fields["evaluation"]["outcome"], json!(outcome), "{sent}");
            assert_eq!(d.fields["evaluation"].get("score"), score.as_ref(), "{sent}");
            assert_eq!(d.fields.get("isSuccess"), success.map(Value::Bool).as_ref(), "{sent}");
        }
        let d = delivery(&report_without("/message/analysis/successEvaluation"))
            .unwrap()
            .unwrap();
        assert!(!d.fields.contains_key("evaluation") && !d.fields.contains_key("isSuccess"));
    }

    #[test]
    fn metadata_keeps_only_what_dynamodb_can_store() {
        let mut body = parse(REPORT);
        body["message"]["call"]["metadata"] = json!({
            "": "no key",
            "nested": {"": 1, "kept": [{"": 2, "x": 1e-200}], "fine": 1e100},
            "huge": 1e300,
            "zero": 0,
            "patientFirstName": "first wins",
        });
        let d = delivery(&body).unwrap().unwrap();
        let meta = &d.fields["callMetadata"];
        assert!(meta.get("").is_none());
        assert_eq!(meta["nested"], json!({"kept": [{"x": "1e-200"}], "fine": 1e100}));
        assert_eq!(meta["huge"], json!("1e+300"), "the number's own text");
        assert_eq!(meta["zero"], json!(0));
        assert_eq!(
            meta["patientFirstName"],
            json!("first wins"),
            "call.metadata before the variables"
        );
        assert_eq!(meta["clinicLocation"], json!("Harbor Street"));
        assert_eq!(meta["structuredData"]["patientName"], json!("Imani Okafor"));
        accepted(&stored(&d));

        // Past 16 KiB, entries that do not fit are left out, in key order.
        let mut body = parse(REPORT);
        let big = "x".repeat(MAX_METADATA_BYTES / 2);
        body["message"]["call"]["metadata"] = json!({"a": big, "b": big, "c": "small"});
        let d = delivery(&body).unwrap().unwrap();
        let meta = d.fields["callMetadata"].as_object().unwrap();
        assert!(meta.contains_key("a") && !meta.contains_key("b") && meta.contains_key("c"));
        assert!(Value::Object(meta.clone()).to_string().len() <= MAX_METADATA_BYTES);
        accepted(&stored(&d));
    }

    #[test]
    fn word_times_follow_the_transcribers_unit() {
        let words = |d: &Delivery| d.fields["messages"][2]["words"].clone();
        let report = map_text(REPORT);
        assert_eq!(words(&report)[0], json!({"word": "hi", "start": 6.98, "end": 7.16}));
        for (provider, expected) in [
            (
                "assembly-ai",
                Some(json!({"word": "hi", "start": 0.00698, "end": 0.00716})),
            ),
            ("google", Some(json!({"word": "hi", "start": 0.00698, "end": 0.00716}))),
            ("11labs", None),
            ("custom-transcriber", None),
        ] {
            let mut body = parse(REPORT);
            body["message"]["call"]["assistantOverrides"]["transcriber"] = json!({"provider": provider});
            let d = delivery(&body).unwrap().unwrap();
            assert_eq!(words(&d).get(0).cloned(), expected, "{provider}");
        }
        // A transcriber without timings sends zeros: no words.
        let mut body = parse(REPORT);
        let spoken = &mut body["message"]["artifact"]["messages"][2]["metadata"]["wordLevelConfidence"];
        for w in spoken.as_array_mut().unwrap() {
            w["start"] = json!(0);
            w["end"] = json!(0);
        }
        assert_eq!(words(&delivery(&body).unwrap().unwrap()), Value::Null);
    }

    #[test]
    fn a_tool_result_without_its_call_is_a_message_of_its_own() {
        let mut body = parse(REPORT);
        let messages = body["message"]["artifact"]["messages"].as_array_mut().unwrap();
        let call = messages.iter().position(|m| m["role"] == "tool_calls").unwrap();
        messages.remove(call);
        let d = delivery(&body).unwrap().unwrap();
        let tool = d.fields["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "tool")
            .unwrap()
            .clone();
        assert_eq!(tool["toolInfo"]["name"], json!("lookup_patient"));
        assert_eq!(tool["toolInfo"]["result"]["patientId"], json!("pt_20931"));
        assert!(tool["toolInfo"].get("arguments").is_none());
        accepted(&stored(&d));
    }

    #[test]
    fn bad_shapes_are_a_400_naming_the_path_in_vapis_payload() {
        let at = |pointer: &str, value: Value| refused(&report_with(pointer, value)).0;
        assert_eq!(refused(&json!({})).0, "message");
        assert_eq!(refused(&json!([1])).0, "message");
        assert_eq!(refused(&json!({"message": "end-of-call-report"})).0, "message");
        assert_eq!(refused(&json!({"message": {}})).0, "message.type");
        assert_eq!(refused(&json!({"message": {"type": 7}})).0, "message.type");
        assert_eq!(
            refused(&json!({"message": {"type": "status-update"}})).0,
            "message.status"
        );
        assert_eq!(refused(&report_without("/message/call")).0, "message.call");
        assert_eq!(
            refused(&report_without("/message/call/id")),
            ("message.call.id".into(), "is required".into())
        );
        assert_eq!(refused(&report_without("/message/call/type")).0, "message.call.type");
        assert_eq!(at("/message/call/id", json!("a b")), "message.call.id");
        assert_eq!(at("/message/call/id", json!("a".repeat(124))), "message.call.id");
        assert_eq!(at("/message/call/id", json!(42)), "message.call.id");
        assert_eq!(at("/message/call/type", json!("carrierPigeon")), "message.call.type");
        assert_eq!(at("/message/call", json!([])), "message.call");
        assert_eq!(
            at("/message/call/createdAt", json!("yesterday")),
            "message.call.createdAt"
        );
        assert_eq!(
            at("/message/startedAt", json!("1969-12-31T23:59:59Z")),
            "message.startedAt"
        );
        assert_eq!(at("/message/endedAt", json!("2025-11-04T16:20:00Z")), "message.endedAt");
        assert_eq!(
            at("/message/call/assistantId", json!("a".repeat(129))),
            "message.call.assistantId"
        );
        assert_eq!(
            at("/message/artifact/messages/3/time", json!("soon")),
            "message.artifact.messages[3].time"
        );
        assert_eq!(
            at("/message/artifact/messages/3/time", json!(-5)),
            "message.artifact.messages[3].time"
        );
        assert_eq!(
            at("/message/artifact/messages/3/time", json!(u64::MAX)),
            "message.artifact.messages[3].time"
        );
        assert_eq!(
            at("/message/artifact/messages/3", json!("hello")),
            "message.artifact.messages[3]"
        );
        assert_eq!(
            at("/message/artifact/messages/3/role", json!(null)),
            "message.artifact.messages[3].role"
        );
        assert_eq!(
            at(
                "/message/artifact/messages/2/metadata/wordLevelConfidence/1/start",
                json!(-0.5)
            ),
            "message.artifact.messages[2].metadata.wordLevelConfidence[1].start"
        );
        assert_eq!(
            at("/message/artifact/messages/2/secondsFromStart", json!(1e9)),
            "message.artifact.messages[2].secondsFromStart"
        );
        assert_eq!(
            at(
                "/message/artifact/messages/5/toolCalls/0/function",
                json!({"arguments": "{}"})
            ),
            "message.artifact.messages[5].toolCalls[0].function.name"
        );
        assert_eq!(at("/message/costs/1/cost", json!(-0.01)), "message.costs[1].cost");
        assert_eq!(at("/message/costs/1/cost", json!("0.01")), "message.costs[1].cost");
        assert_eq!(
            at("/message/costs/2/promptTokens", json!(-3)),
            "message.costs[2].promptTokens"
        );
        assert_eq!(at("/message/costs", json!({"transport": 1})), "message.costs");
        assert_eq!(at("/message/cost", json!(1e12)), "message.cost");
        assert_eq!(at("/message/durationSeconds", json!(-1)), "message.durationSeconds");
        assert_eq!(
            at("/message/analysis/successEvaluation", json!({})),
            "message.analysis.successEvaluation"
        );
        assert_eq!(
            at("/message/analysis/summary", json!(["a"])),
            "message.analysis.summary"
        );
        assert_eq!(
            at("/message/assistant/compliancePlan/pciEnabled", json!("no")),
            "message.assistant.compliancePlan.pciEnabled"
        );
        assert_eq!(
            at("/message/call/assistantOverrides/metadata", json!("x")),
            "message.call.assistantOverrides.metadata"
        );
        assert_eq!(
            at(
                "/message/artifact/performanceMetrics/turnLatencies/4/modelLatency",
                json!(-1)
            ),
            "message.artifact.performanceMetrics.turnLatencies[4].modelLatency"
        );
        let (_, reason) = refused(&report_with("/message/endedAt", json!("2025-11-04T16:20:00Z")));
        assert_eq!(reason, "must not be before message.startedAt");
    }

    #[test]
    fn unknown_fields_are_ignored_and_the_same_payload_maps_the_same() {
        let mut body = parse(REPORT);
        body["message"]["somethingNew"] = json!({"a": 1});
        body["message"]["call"]["anotherNewThing"] = json!([1, 2]);
        body["message"]["artifact"]["messages"][1]["newFlag"] = json!(true);
        assert_eq!(delivery(&body).unwrap(), delivery(&parse(REPORT)).unwrap());
        assert_eq!(delivery(&parse(REPORT)).unwrap(), delivery(&parse(REPORT)).unwrap());
    }

    /// Every node of `value` as a JSON pointer.
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    pointers(v, p, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    out.push(p.clone());
                    pointers(v, p, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn no_input_panics_and_whatever_maps_is_a_valid_call() {
        // A smaller report (the first messages, without the copies the report repeats) keeps this quick.
        let mut base = parse(REPORT);
        let message = base["message"].as_object_mut().unwrap();
        for copy in ["messages", "transcript", "summary"] {
            message.remove(copy);
        }
        let artifact = message["artifact"].as_object_mut().unwrap();
        artifact.remove("messagesOpenAIFormatted");
        artifact["messages"].as_array_mut().unwrap().truncate(9);
        message["assistant"]["model"]
            .as_object_mut()
            .unwrap()
            .remove("messages");
        let oddities = [
            Value::Null,
            json!(true),
            json!(-1),
            json!(0.1234567),
            json!(1e308),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(""),
            json!("a".repeat(300)),
            json!("2262-04-11T23:47:16.854775808Z"),
            json!("+14155550100"),
            json!([]),
            json!({}),
            json!([{}]),
            json!({"": [1e200]}),
        ];
        let mut all = Vec::new();
        pointers(&base, String::new(), &mut all);
        let (mut mapped, mut refusals) = (0, 0);
        for pointer in &all {
            for odd in &oddities {
                let mut body = base.clone();
                if let Some(slot) = body.pointer_mut(pointer) {
                    *slot = odd.clone();
                }
                match delivery(&body) {
                    Ok(Some(d)) => {
                        mapped += 1;
                        let call = stored(&d);
                        let id = CallId::parse(call["id"].as_str().unwrap()).unwrap();
                        let now = "2026-01-01T00:00:00Z".parse().unwrap();
                        if let Err(e) = validate::call(&TenantId::parse("t1").unwrap(), &call, Some(&id), now) {
                            // The clock is the one bound a payload alone cannot settle.
                            assert!(e.to_string().contains("now + 1 day"), "{pointer} = {odd}: {e}");
                        }
                    }
                    Ok(None) => {}
                    Err(ApiError::InvalidParameter { field, .. }) => {
                        refusals += 1;
                        assert!(field.starts_with("message"), "{pointer} = {odd}: {field}");
                    }
                    Err(other) => panic!("{pointer} = {odd}: {other}"),
                }
            }
        }
        assert!(
            mapped > all.len() * 5 && refusals > all.len(),
            "{mapped} mapped, {refusals} refused"
        );
    }
}
