//! ElevenLabs' post-call webhooks mapped onto the call model. Every body is `{type, event_timestamp, data}`;
//! `data.conversation_id` is the call (ours is `elevenlabs:<conversation_id>`). ElevenLabs posts nothing while a
//! call is live: what it sends is the conversation once it is over, its audio, and a failed outbound dial.
//!
//! ## Events and stages
//!
//! | event (`type`) | stage | carries |
//! |---|---|---|
//! | `post_call_audio` | [`STAGE_AUDIO`] 1 | the whole conversation as base64 MP3 (`data.full_audio`) → [`RecordingSource::Inline`] `mp3`; `assistantId`; fallbacks `status: completed`, `direction: web`, `createdAt` = `event_timestamp` (it may arrive before the transcription, and says nothing else about the call) |
//! | `post_call_transcription` | [`STAGE_TRANSCRIPTION`] 2 | the conversation: status, times, numbers, telephony ids, transcript and tool calls, latency, cost, analysis, dynamic variables, opt-out |
//! | `call_initiation_failure` | [`STAGE_INITIATION_FAILURE`] 3 | an outbound dial that never connected: `status` (`busy`, `no-answer`, else `failed`), `endReason`, `direction: outbound`, `from`/`to`, `assistantId`, `telephony`, dynamic variables when sent; fallback `createdAt` = `event_timestamp` |
//!
//! The failure is the last word on how the call ended, so it outranks a transcription of the same
//! conversation (which can only say `failed`); its `createdAt` is only a fallback, so the conversation's own
//! start wins when a transcription carries one. Any other `type` (`voice_removal_notice`, …) stores nothing.
//!
//! ## `post_call_transcription` field by field
//!
//! | theirs (under `data`) | ours |
//! |---|---|
//! | `status`: `initiated` / `in-progress` / `processing` / `done` / `failed` | `status`: `queued` / `in-progress` / `completed` / `completed` / `failed` |
//! | `agent_id`, `agent_name` | `assistantId`, `assistant {id, name}` (only with a name) |
//! | `metadata.start_time_unix_secs` | `createdAt` and `startTime` |
//! | `metadata.call_duration_secs` | `duration`; `endTime` = start + duration |
//! | `metadata.phone_call.direction` (`inbound` / `outbound`; no `phone_call` → `web`) | `direction` |
//! | `metadata.phone_call.external_number` / `agent_number` | `from` / `to` of an inbound call, `to` / `from` of an outbound one (only numbers in E.164) |
//! | `metadata.phone_call.phone_number_id` (+ `agent_number`) | `phoneNumberId`, `phoneNumber {id, number}` |
//! | `metadata.phone_call.type`, `.call_sid` | `telephony {provider, callSid}` |
//! | `metadata.batch_call.batch_call_id` | `campaignId` |
//! | `metadata.termination_reason` (else `metadata.error.reason`) | `endReason` |
//! | `metadata.features_usage.pii_zrm_agent` / `pii_zrm_workspace` (zero-retention mode) | `optOutSensitiveDataStorage` (true when either is) |
//! | `metadata.cost_fiat` (USD; else `llm_price` + `platform_price`) | `cost`, `currency: USD` |
//! | `metadata.charging.llm_price`, `.platform_price` | `costBreakdown` lines `llm` and `platform` (1 `conversation` each) |
//! | `transcript[]` `role` `agent` / `user`, `message`, `time_in_call_secs`, `interrupted` | `messages[]` `assistant` / `user`, `content`, `timestamp` (start + offset), `startOffset`, `interrupted` |
//! | `transcript[].tool_calls[]` with the `tool_results[]` of the same `request_id` | a `tool` message at the call's turn: `toolInfo {name, arguments: params_as_json, result: result_value}` (JSON text read as JSON when it is an object or array; `{"error": …}` when `is_error`), `content` = the result's text (else the arguments') |
//! | `transcript[].conversation_turn_metrics.metrics.*.elapsed_time` (s) | `latency` (ms, over the turns): `convai_ttf_audio_since_silence` → `e2e`, `convai_llm_service_ttfb` → `llm`, `convai_tts_service_ttfb` → `tts`, `convai_asr_trailing_service_latency` → `asr` |
//! | `analysis.call_successful` (`success` / `failure` / `unknown`) | `isSuccess` (true / false / absent) and `evaluation.outcome` |
//! | `analysis.call_success_score`, else the share of `evaluation_criteria_results` that succeeded (0–1) | `evaluation.score` |
//! | `analysis.transcript_summary` | `summary` |
//! | `conversation_initiation_client_data.dynamic_variables` | `callMetadata` (ElevenLabs' own `system__*` variables left out: they repeat fields mapped above) |
//! | `analysis.data_collection_results.<id>.value` | `callMetadata.data_collection.<id>` (unless a dynamic variable has that name) |
//!
//! Message ids are positional (`msg_0001`, …). Latency figures are min, max and nearest-rank percentiles of
//! the turns' values, in milliseconds to 6 decimal places. A turn whose message is null or empty yields no
//! text message. ElevenLabs has no word timings, no per-turn duration and no lifecycle list, so `words`,
//! `duration`/`endOffset` of a message and `events` are never set; nor is a recording link (its audio comes
//! inline in `post_call_audio`).
//!
//! A call in zero-retention mode keeps no content: no messages, no summary and no data-collection results
//! (extracted from what was said). Its `post_call_audio` cannot say so (it carries nothing but the audio):
//! the recording of a call marked `optOutSensitiveDataStorage` is dropped by the call model itself
//! ([`crate::model::CallRecord::normalised`]), whichever of the two events arrives first.
//!
//! ## Values
//!
//! Money is exact: each amount is read from the JSON number's own text as a decimal, rounded to 10 places
//! and written as a decimal string. `callMetadata` is made storable as the call format requires: entries
//! with an empty key (at any depth) are dropped, a number DynamoDB cannot hold (non-zero below 1e-125 or
//! above 1e125 in magnitude) becomes its text, and entries are kept in key order while the whole stays
//! within 16 KiB (one that would not fit is dropped). Texts longer than the call format allows (`summary`,
//! `endReason`, names, message content) are cut at its bound. Numbers outside what the call format holds
//! (negative, past 10,000,000 seconds or milliseconds, money from 10^12) and values of the wrong type are a
//! 400 naming the field by its path in ElevenLabs' body (`data.transcript[3].time_in_call_secs`); so is an
//! enumeration value ElevenLabs does not document (a role, a status, a direction, an analysis result), except
//! a `failure_reason`, which is a failure whatever it says. Fields ElevenLabs adds are ignored.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, Engine};
use chrono::DateTime;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};

use super::read::{self, clip, embedded, json_number, money_text, timestamp, Node, Rules};
use super::{Delivery, Provider, RecordingSource};
use crate::error::ApiError;
use crate::ids::CallId;
use crate::validate::{MAX_CONTENT_CHARS, MAX_FIGURE, MAX_FIGURE_DECIMALS, MAX_MONEY_DIGITS, MAX_SCORE};

/// `post_call_audio`: only the recording (and fallbacks for the fields the call model requires).
pub const STAGE_AUDIO: u16 = 1;
/// `post_call_transcription`: the conversation, after it ended and was analysed.
pub const STAGE_TRANSCRIPTION: u16 = 2;
/// `call_initiation_failure`: how an outbound dial that never connected ended.
pub const STAGE_INITIATION_FAILURE: u16 = 3;

// Later stages of a call rank higher.
const _: () = assert!(STAGE_AUDIO < STAGE_TRANSCRIPTION && STAGE_TRANSCRIPTION < STAGE_INITIATION_FAILURE);

/// The format of `post_call_audio`'s `full_audio`.
const AUDIO_FORMAT: &str = "mp3";
/// ElevenLabs' ways with numbers: figures and amounts rounded half away from zero, a figure's sign judged as
/// given, a number too small for a decimal read as 0.
static RULES: Rules = Rules {
    rounding: RoundingStrategy::MidpointAwayFromZero,
    sign_after_rounding: false,
    tiny_is_zero: true,
    too_large: "must be below 10^12",
};
const _: () = assert!(MAX_MONEY_DIGITS == 12, "RULES.too_large names the bound");
/// Money amounts must stay below this.
const MONEY_BOUND: u64 = 10u64.pow(MAX_MONEY_DIGITS as u32);
/// Bounds of the call format's texts, in characters.
const MAX_NAME: usize = 256;
const MAX_SHORT: usize = 128;
const MAX_SUMMARY: usize = 10_000;

/// Reads one ElevenLabs delivery (see the module documentation).
pub fn delivery(body: &Value) -> Result<Option<Delivery>, ApiError> {
    let root = Node::root(body, &RULES);
    root.obj()?;
    match root.req("type")?.str()? {
        "post_call_transcription" => transcription(&root).map(Some),
        "post_call_audio" => audio(&root),
        "call_initiation_failure" => initiation_failure(&root).map(Some),
        _ => Ok(None),
    }
}

fn transcription(root: &Node) -> Result<Delivery, ApiError> {
    let data = root.req("data")?;
    let call_id = call_id(&data)?;
    let metadata = data.req("metadata")?;
    let mut fields = Map::new();

    let start_node = metadata.req("start_time_unix_secs")?;
    let start = start_node.number()?;
    let started = instant(&start_node, start)?;
    fields.insert("createdAt".into(), json!(started));
    fields.insert("startTime".into(), json!(started));
    if let Some(node) = metadata.opt("call_duration_secs")? {
        let duration = seconds(&node)?;
        fields.insert("duration".into(), figure(duration));
        let end = start
            .checked_add(duration)
            .ok_or_else(|| node.fail("is out of range"))?;
        fields.insert("endTime".into(), json!(instant(&node, end)?));
    }

    let status_node = data.req("status")?;
    let status = match status_node.str()? {
        "initiated" => "queued",
        "in-progress" => "in-progress",
        "processing" | "done" => "completed",
        "failed" => "failed",
        _ => {
            return Err(
                status_node.fail("is not a status of ElevenLabs (initiated, in-progress, processing, done, failed)")
            )
        }
    };
    fields.insert("status".into(), json!(status));

    if let Some(agent) = opt_id(&data, "agent_id")? {
        if let Some(name) = opt_text(&data, "agent_name", MAX_NAME)? {
            fields.insert("assistant".into(), json!({"id": agent, "name": name}));
        }
        fields.insert("assistantId".into(), json!(agent));
    }

    phone_call(&metadata, &mut fields)?;
    if let Some(batch) = metadata.opt("batch_call")? {
        if let Some(id) = opt_id(&batch, "batch_call_id")? {
            fields.insert("campaignId".into(), json!(id));
        }
    }
    let reason = match opt_text(&metadata, "termination_reason", MAX_NAME)? {
        Some(reason) => Some(reason),
        None => match metadata.opt("error")? {
            Some(error) => opt_text(&error, "reason", MAX_NAME)?,
            None => None,
        },
    };
    if let Some(reason) = reason {
        fields.insert("endReason".into(), json!(reason));
    }

    let opted_out = opted_out(&metadata)?;
    if let Some(flag) = opted_out {
        fields.insert("optOutSensitiveDataStorage".into(), json!(flag));
    }
    let private = opted_out == Some(true);

    let (cost, lines) = money(&metadata)?;
    if let Some(cost) = cost {
        fields.insert("cost".into(), json!(cost));
        fields.insert("currency".into(), json!("USD"));
    }
    if !lines.is_empty() {
        fields.insert("costBreakdown".into(), Value::Array(lines));
    }

    let mut collected = Map::new();
    if let Some(analysis) = data.opt("analysis")? {
        analysis_fields(&analysis, private, &mut fields, &mut collected)?;
    }

    let (messages, latency) = conversation(&data, start)?;
    if !private && !messages.is_empty() {
        fields.insert("messages".into(), Value::Array(messages));
    }
    if let Some(latency) = latency {
        fields.insert("latency".into(), latency);
    }

    if let Some(metadata) = call_metadata(&data, collected)? {
        fields.insert("callMetadata".into(), metadata);
    }

    Ok(Delivery {
        call_id,
        event: "post_call_transcription".into(),
        stage: STAGE_TRANSCRIPTION,
        fields,
        fallbacks: Map::new(),
        recording: None,
    })
}

fn audio(root: &Node) -> Result<Option<Delivery>, ApiError> {
    let data = root.req("data")?;
    let call_id = call_id(&data)?;
    let audio = data.req("full_audio")?;
    let text = audio.str()?;
    if text.is_empty() {
        return Ok(None);
    }
    let engine = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        engine.decode(compact)
    } else {
        engine.decode(text)
    };
    let bytes = decoded.map_err(|_| audio.fail("is not base64"))?;
    let stamp = root.req("event_timestamp")?;
    let at = instant(&stamp, stamp.number()?)?;

    let mut fields = Map::new();
    if let Some(agent) = opt_id(&data, "agent_id")? {
        fields.insert("assistantId".into(), json!(agent));
    }
    let mut fallbacks = Map::new();
    fallbacks.insert("status".into(), json!("completed"));
    fallbacks.insert("direction".into(), json!("web"));
    fallbacks.insert("createdAt".into(), json!(at));
    Ok(Some(Delivery {
        call_id,
        event: "post_call_audio".into(),
        stage: STAGE_AUDIO,
        fields,
        fallbacks,
        recording: Some(RecordingSource::Inline {
            format: AUDIO_FORMAT.into(),
            bytes,
        }),
    }))
}

fn initiation_failure(root: &Node) -> Result<Delivery, ApiError> {
    let data = root.req("data")?;
    let call_id = call_id(&data)?;
    let stamp = root.req("event_timestamp")?;
    let at = instant(&stamp, stamp.number()?)?;
    let reason_node = data.req("failure_reason")?;
    let reason = reason_node.str()?;

    let mut fields = Map::new();
    fields.insert("direction".into(), json!("outbound"));
    if let Some(agent) = opt_id(&data, "agent_id")? {
        fields.insert("assistantId".into(), json!(agent));
    }
    let mut status = match reason {
        "busy" => Some("busy"),
        "no-answer" => Some("no-answer"),
        _ => None,
    };
    let mut telephony = Map::new();
    if let Some(metadata) = data.opt("metadata")? {
        let kind = opt_text(&metadata, "type", MAX_SHORT)?;
        if let Some(body) = metadata.opt("body")? {
            body.obj()?;
            let (from, to, sid) = match kind.as_deref() {
                Some("twilio") => ("From", "To", "CallSid"),
                _ => ("from_number", "to_number", "call_sid"),
            };
            for (theirs, ours) in [(from, "from"), (to, "to")] {
                if let Some(number) = body.opt(theirs)? {
                    if let Some(e164) = crate::phone::e164(&phone_text(&number)?) {
                        fields.insert(ours.into(), json!(e164));
                    }
                }
            }
            if let Some(sid) = opt_id(&body, sid)? {
                telephony.insert("callSid".into(), json!(sid));
            }
            if status.is_none() && kind.as_deref() == Some("twilio") {
                if let Some(twilio) = opt_text(&body, "CallStatus", MAX_SHORT)? {
                    status = match twilio.as_str() {
                        "busy" => Some("busy"),
                        "no-answer" => Some("no-answer"),
                        "canceled" => Some("canceled"),
                        _ => None,
                    };
                }
            }
        }
        if let Some(kind) = kind {
            telephony.insert("provider".into(), json!(kind));
        }
    }
    fields.insert("status".into(), json!(status.unwrap_or("failed")));
    if !reason.is_empty() {
        fields.insert("endReason".into(), json!(clip(reason, MAX_NAME)));
    }
    if !telephony.is_empty() {
        fields.insert("telephony".into(), Value::Object(telephony));
    }
    if let Some(metadata) = call_metadata(&data, Map::new())? {
        fields.insert("callMetadata".into(), metadata);
    }
    let mut fallbacks = Map::new();
    fallbacks.insert("createdAt".into(), json!(at));
    Ok(Delivery {
        call_id,
        event: "call_initiation_failure".into(),
        stage: STAGE_INITIATION_FAILURE,
        fields,
        fallbacks,
        recording: None,
    })
}

/// The provider's conversation id, checked to make one of our call ids.
fn call_id(data: &Node) -> Result<String, ApiError> {
    let node = data.req("conversation_id")?;
    let id = node.str()?;
    match CallId::parse(&Provider::ElevenLabs.call_id(id)) {
        Ok(_) if !id.is_empty() => Ok(id.to_owned()),
        Ok(_) => Err(node.fail("must not be empty")),
        Err(ApiError::InvalidParameter { reason, .. }) => Err(node.fail(format!("{reason} (as elevenlabs:<id>)"))),
        Err(other) => Err(other),
    }
}

/// `direction`, `from`, `to`, `phoneNumberId`, `phoneNumber` and `telephony` from `metadata.phone_call`.
fn phone_call(metadata: &Node, fields: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Some(call) = metadata.opt("phone_call")? else {
        fields.insert("direction".into(), json!("web"));
        return Ok(());
    };
    let direction_node = call.req("direction")?;
    let inbound = match direction_node.str()? {
        "inbound" => true,
        "outbound" => false,
        _ => return Err(direction_node.fail("is not a direction of ElevenLabs (inbound, outbound)")),
    };
    fields.insert("direction".into(), json!(if inbound { "inbound" } else { "outbound" }));
    let number = |key: &str| -> Result<Option<String>, ApiError> {
        Ok(match call.opt(key)? {
            Some(node) => crate::phone::e164(&phone_text(&node)?),
            None => None,
        })
    };
    let agent = number("agent_number")?;
    let external = number("external_number")?;
    let (from, to) = if inbound {
        (&external, &agent)
    } else {
        (&agent, &external)
    };
    if let Some(from) = from {
        fields.insert("from".into(), json!(from));
    }
    if let Some(to) = to {
        fields.insert("to".into(), json!(to));
    }
    if let Some(id) = opt_id(&call, "phone_number_id")? {
        if let Some(agent) = &agent {
            fields.insert("phoneNumber".into(), json!({"id": id, "number": agent}));
        }
        fields.insert("phoneNumberId".into(), json!(id));
    }
    let mut telephony = Map::new();
    if let Some(kind) = opt_text(&call, "type", MAX_SHORT)? {
        telephony.insert("provider".into(), json!(kind));
    }
    if let Some(sid) = opt_id(&call, "call_sid")? {
        telephony.insert("callSid".into(), json!(sid));
    }
    if !telephony.is_empty() {
        fields.insert("telephony".into(), Value::Object(telephony));
    }
    Ok(())
}

/// A phone number given as text, or (as ElevenLabs documents SIP numbers) as a JSON number.
fn phone_text(node: &Node) -> Result<String, ApiError> {
    match node.present() {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(node.fail("must be a phone number (a string)")),
    }
}

/// Whether the call ran in zero-retention mode, when the payload says.
fn opted_out(metadata: &Node) -> Result<Option<bool>, ApiError> {
    let Some(usage) = metadata.opt("features_usage")? else {
        return Ok(None);
    };
    let agent = usage.opt("pii_zrm_agent")?.map(|n| n.bool()).transpose()?;
    let workspace = usage.opt("pii_zrm_workspace")?.map(|n| n.bool()).transpose()?;
    Ok(match (agent, workspace) {
        (None, None) => None,
        _ => Some(agent == Some(true) || workspace == Some(true)),
    })
}

/// The call's cost in USD and its lines, exact.
fn money(metadata: &Node) -> Result<(Option<Value>, Vec<Value>), ApiError> {
    let mut lines = Vec::new();
    let mut parts: Option<Decimal> = None;
    if let Some(charging) = metadata.opt("charging")? {
        charging.obj()?;
        for (key, product) in [("llm_price", "llm"), ("platform_price", "platform")] {
            if let Some(node) = charging.opt(key)? {
                let amount = node.money(node.number()?)?;
                let text = money_text(amount);
                lines.push(json!({
                    "product": product, "quantity": "1", "unit": "conversation", "unitPrice": text, "amount": text
                }));
                let sum = parts.unwrap_or(Decimal::ZERO).checked_add(amount);
                parts = Some(
                    sum.filter(|s| *s < Decimal::from(MONEY_BOUND))
                        .ok_or_else(|| charging.fail("adds up to 10^12 or more"))?,
                );
            }
        }
    }
    let total = match metadata.opt("cost_fiat")? {
        Some(node) => Some(node.money(node.number()?)?),
        None => parts,
    };
    Ok((total.map(|total| money_text(total.normalize())), lines))
}

/// `isSuccess`, `evaluation` and `summary`, and the data-collection values for `callMetadata`.
fn analysis_fields(
    analysis: &Node,
    private: bool,
    fields: &mut Map<String, Value>,
    collected: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    analysis.obj()?;
    let mut evaluation = Map::new();
    if let Some(node) = analysis.opt("call_successful")? {
        let outcome = node.str()?;
        match outcome {
            "success" => {
                fields.insert("isSuccess".into(), json!(true));
            }
            "failure" => {
                fields.insert("isSuccess".into(), json!(false));
            }
            "unknown" => {}
            _ => return Err(node.fail("is not a result of ElevenLabs (success, failure, unknown)")),
        }
        evaluation.insert("outcome".into(), json!(outcome));
    }
    let score = match analysis.opt("call_success_score")? {
        Some(node) => {
            let score = node.number()?;
            if score > Decimal::from(MAX_SCORE as i64) {
                return Err(node.fail("must be at most 100"));
            }
            Some(score)
        }
        None => criteria_score(analysis)?,
    };
    if let Some(score) = score {
        evaluation.insert("score".into(), figure(score));
    }
    if !evaluation.is_empty() {
        fields.insert("evaluation".into(), Value::Object(evaluation));
    }
    if private {
        return Ok(());
    }
    if let Some(summary) = opt_text(analysis, "transcript_summary", MAX_SUMMARY)? {
        fields.insert("summary".into(), json!(summary));
    }
    if let Some(results) = analysis.opt("data_collection_results")? {
        for (id, result) in results.fields()? {
            if let Some(value) = result.opt("value")?.and_then(|node| node.present()) {
                collected.insert(id.to_owned(), value.clone());
            }
        }
    }
    Ok(())
}

/// The share of evaluation criteria that succeeded, of those decided (0–1), when any was.
fn criteria_score(analysis: &Node) -> Result<Option<Decimal>, ApiError> {
    let criteria = match analysis.opt("evaluation_criteria_results")? {
        Some(map) => map.fields()?.into_iter().map(|(_, c)| c).collect(),
        None => match analysis.opt("evaluation_criteria_results_list")? {
            Some(list) => list.list()?,
            None => Vec::new(),
        },
    };
    let (mut passed, mut decided) = (0u32, 0u32);
    for criterion in criteria {
        let Some(result) = criterion.opt("result")? else {
            continue;
        };
        match result.str()? {
            "success" => {
                passed += 1;
                decided += 1;
            }
            "failure" => decided += 1,
            "unknown" => {}
            _ => return Err(result.fail("is not a result of ElevenLabs (success, failure, unknown)")),
        }
    }
    if decided == 0 {
        return Ok(None);
    }
    let share = Decimal::from(passed)
        .checked_div(Decimal::from(decided))
        .unwrap_or(Decimal::ZERO)
        .round_dp_with_strategy(MAX_FIGURE_DECIMALS as u32, RoundingStrategy::MidpointAwayFromZero);
    Ok(Some(share))
}

/// `callMetadata`: the dynamic variables the conversation was started with (without ElevenLabs' own
/// `system__*` ones) and `collected`, made storable.
fn call_metadata(data: &Node, collected: Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let mut entries = BTreeMap::new();
    if let Some(client) = data.opt("conversation_initiation_client_data")? {
        if let Some(variables) = client.opt("dynamic_variables")? {
            for (name, value) in variables.obj()? {
                if !name.starts_with("system__") {
                    entries.insert(name.clone(), value.clone());
                }
            }
        }
    }
    if !collected.is_empty() {
        entries
            .entry("data_collection".to_owned())
            .or_insert(Value::Object(collected));
    }
    let kept = read::metadata(entries);
    Ok((!kept.is_empty()).then_some(Value::Object(kept)))
}

/// Which latency figure each of ElevenLabs' turn metrics is.
const METRICS: [(&str, &str); 4] = [
    ("convai_ttf_audio_since_silence", "e2e"),
    ("convai_llm_service_ttfb", "llm"),
    ("convai_tts_service_ttfb", "tts"),
    ("convai_asr_trailing_service_latency", "asr"),
];

/// One transcript turn, read.
struct Turn<'a> {
    role: &'static str,
    text: Option<&'a str>,
    offset: Decimal,
    offset_node: Node<'a>,
    interrupted: Option<bool>,
    calls: Vec<ToolCall<'a>>,
    results: Vec<ToolResult<'a>>,
}

struct ToolCall<'a> {
    name: String,
    request_id: Option<&'a str>,
    params: Option<&'a str>,
}

struct ToolResult<'a> {
    name: String,
    request_id: Option<&'a str>,
    text: Option<&'a str>,
    is_error: bool,
}

/// The transcript as messages, and the latency of its turns.
fn conversation(data: &Node, start: Decimal) -> Result<(Vec<Value>, Option<Value>), ApiError> {
    let Some(transcript) = data.opt("transcript")? else {
        return Ok((Vec::new(), None));
    };
    let mut turns = Vec::new();
    let mut figures: BTreeMap<&str, Vec<Decimal>> = BTreeMap::new();
    for node in transcript.list()? {
        turns.push(turn(&node, &mut figures)?);
    }

    let called: BTreeSet<&str> = turns
        .iter()
        .flat_map(|t| t.calls.iter().filter_map(|c| c.request_id))
        .collect();
    let mut answers: BTreeMap<&str, &ToolResult> = BTreeMap::new();
    for result in turns.iter().flat_map(|t| t.results.iter()) {
        if let Some(id) = result.request_id {
            answers.entry(id).or_insert(result);
        }
    }

    let mut messages = Vec::new();
    for turn in &turns {
        let at = start
            .checked_add(turn.offset)
            .ok_or_else(|| turn.offset_node.fail("is out of range"))?;
        let timestamp = instant(&turn.offset_node, at)?;
        let mut message = |role: &str, content: &str, extra: Map<String, Value>| {
            let mut m = Map::new();
            m.insert("id".into(), json!(format!("msg_{:04}", messages.len() + 1)));
            m.insert("role".into(), json!(role));
            m.insert("content".into(), json!(clip(content, MAX_CONTENT_CHARS)));
            m.insert("timestamp".into(), json!(timestamp));
            m.insert("startOffset".into(), figure(turn.offset));
            m.extend(extra);
            messages.push(Value::Object(m));
        };
        if let Some(text) = turn.text.filter(|t| !t.is_empty()) {
            let mut extra = Map::new();
            if let Some(flag) = turn.interrupted {
                extra.insert("interrupted".into(), json!(flag));
            }
            message(turn.role, text, extra);
        }
        for call in &turn.calls {
            let answer = call.request_id.and_then(|id| answers.get(id));
            let mut info = Map::new();
            info.insert("name".into(), json!(call.name));
            if let Some(params) = call.params {
                info.insert("arguments".into(), embedded(&Value::from(params)));
            }
            if let Some(result) = answer.and_then(|a| result_value(a)) {
                info.insert("result".into(), result);
            }
            let content = answer.and_then(|a| a.text).or(call.params).unwrap_or("");
            message("tool", content, tool_info(info));
        }
        for result in &turn.results {
            if result.request_id.is_some_and(|id| called.contains(id)) {
                continue;
            }
            let mut info = Map::new();
            info.insert("name".into(), json!(result.name));
            if let Some(value) = result_value(result) {
                info.insert("result".into(), value);
            }
            message("tool", result.text.unwrap_or(""), tool_info(info));
        }
    }

    let mut latency = Map::new();
    for (name, ours) in METRICS {
        if let Some(values) = figures.get_mut(name) {
            latency.insert(ours.into(), stats(values));
        }
    }
    Ok((messages, (!latency.is_empty()).then_some(Value::Object(latency))))
}

fn tool_info(info: Map<String, Value>) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("toolInfo".into(), Value::Object(info));
    extra
}

/// A tool's result as `toolInfo.result`: its text (as JSON when it is an object or array), wrapped in
/// `{"error": …}` when the tool failed; none when it has neither.
fn result_value(result: &ToolResult) -> Option<Value> {
    match (result.text.map(|text| embedded(&Value::from(text))), result.is_error) {
        (value, true) => Some(json!({"error": value.unwrap_or(Value::Null)})),
        (value, false) => value,
    }
}

/// Reads one turn, adding its metrics (in milliseconds) to `figures`.
fn turn<'a>(node: &Node<'a>, figures: &mut BTreeMap<&'static str, Vec<Decimal>>) -> Result<Turn<'a>, ApiError> {
    node.obj()?;
    let role_node = node.req("role")?;
    let role = match role_node.str()? {
        "agent" => "assistant",
        "user" => "user",
        _ => return Err(role_node.fail("is not a role of ElevenLabs' transcript (agent, user)")),
    };
    let text = node.opt("message")?.map(|n| n.str()).transpose()?;
    let offset_node = node.req("time_in_call_secs")?;
    let offset = seconds(&offset_node)?;
    let interrupted = node.opt("interrupted")?.map(|n| n.bool()).transpose()?;

    let mut calls = Vec::new();
    if let Some(list) = node.opt("tool_calls")? {
        for call in list.list()? {
            call.obj()?;
            calls.push(ToolCall {
                name: clip(call.req("tool_name")?.str()?, MAX_NAME).to_owned(),
                request_id: call.opt("request_id")?.map(|n| n.str()).transpose()?,
                params: call.opt("params_as_json")?.map(|n| n.str()).transpose()?,
            });
        }
    }
    let mut results = Vec::new();
    if let Some(list) = node.opt("tool_results")? {
        for result in list.list()? {
            result.obj()?;
            results.push(ToolResult {
                name: clip(result.req("tool_name")?.str()?, MAX_NAME).to_owned(),
                request_id: result.opt("request_id")?.map(|n| n.str()).transpose()?,
                text: result.opt("result_value")?.map(|n| n.str()).transpose()?,
                is_error: result.opt("is_error")?.map(|n| n.bool()).transpose()?.unwrap_or(false),
            });
        }
    }

    if let Some(metrics) = node.opt("conversation_turn_metrics")? {
        // Current payloads nest the figures under `metrics`; older ones had them at the top.
        let metrics = metrics.opt("metrics")?.unwrap_or(metrics);
        for (name, _) in METRICS {
            let Some(metric) = metrics.opt(name)? else {
                continue;
            };
            let elapsed = metric.req("elapsed_time")?;
            let ms = elapsed
                .number()?
                .checked_mul(Decimal::from(1000))
                .filter(|ms| *ms <= Decimal::from(MAX_FIGURE as i64))
                .ok_or_else(|| elapsed.fail("must be at most 10000 seconds"))?;
            figures.entry(name).or_default().push(ms);
        }
    }

    Ok(Turn {
        role,
        text,
        offset,
        offset_node,
        interrupted,
        calls,
        results,
    })
}

/// min, max, nearest-rank percentiles and count of `values` (not empty).
fn stats(values: &mut [Decimal]) -> Value {
    values.sort();
    let n = values.len();
    let rank = |p: usize| -> Value {
        // Nearest rank: the smallest value with at least p% of the values at or below it.
        let r = (p * n).div_ceil(100).clamp(1, n);
        figure(values[r - 1])
    };
    json!({
        "min": figure(values[0]),
        "max": figure(values[n - 1]),
        "p50": rank(50),
        "p90": rank(90),
        "p95": rank(95),
        "p99": rank(99),
        "num": u32::try_from(n).unwrap_or(u32::MAX),
    })
}

/// A figure of the call format (seconds, milliseconds, a score): at most 6 decimal places, as a JSON number
/// (an integer when it is whole).
fn figure(value: Decimal) -> Value {
    json_number(value.round_dp_with_strategy(MAX_FIGURE_DECIMALS as u32, RULES.rounding))
}

/// Seconds of the call format: 0 to 10,000,000 as given, rounded to 6 places.
fn seconds(node: &Node) -> Result<Decimal, ApiError> {
    let value = node.number()?;
    if value > Decimal::from(MAX_FIGURE as i64) {
        return Err(node.fail("must be at most 10000000 seconds"));
    }
    node.figure(value, Some("seconds"))
}

/// The [`timestamp`] `secs` after the Unix epoch; `node` is named when it cannot be one.
fn instant(node: &Node, secs: Decimal) -> Result<Value, ApiError> {
    let whole = secs.trunc();
    let nanos = secs
        .checked_sub(whole)
        .and_then(|f| f.checked_mul(Decimal::from(1_000_000_000)))
        .and_then(|n| n.round().to_u32());
    whole
        .to_i64()
        .zip(nanos)
        .and_then(|(s, n)| DateTime::from_timestamp(s, n.min(999_999_999)))
        .map(timestamp)
        .ok_or_else(|| node.fail("is not a time in Unix seconds"))
}

/// An id of the call format (1–128 characters) at `key` of `parent`: absent when null or empty.
fn opt_id(parent: &Node, key: &str) -> Result<Option<String>, ApiError> {
    Ok(match parent.opt(key)? {
        Some(node) => node.id()?.map(str::to_owned),
        None => None,
    })
}

/// A text at `key` of `parent`, cut to `max` characters: absent when null or blank.
fn opt_text(parent: &Node, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    let text = parent.opt(key)?.map(|node| node.str()).transpose()?;
    Ok(text.filter(|t| !t.trim().is_empty()).map(|t| clip(t, max).to_owned()))
}

/// ElevenLabs' body as this module reads it: a member is looked up only in an object (anything else there is
/// refused, naming its path), and a value that is there must be of the type asked for.
trait Strict<'a> {
    /// An object, which must be there.
    fn obj(&self) -> Result<&'a Map<String, Value>, ApiError>;
    /// The member `key`, unless it is absent or null.
    fn opt(&self, key: &str) -> Result<Option<Node<'a>>, ApiError>;
    /// The member `key`, which must be there and not be null.
    fn req(&self, key: &str) -> Result<Node<'a>, ApiError>;
    /// Every member of an object whose value is an object, by key.
    fn fields(&self) -> Result<Vec<(&'a str, Node<'a>)>, ApiError>;
    /// The elements of an array, which must be there.
    fn list(&self) -> Result<Vec<Node<'a>>, ApiError>;
    /// A string, which may be empty.
    fn str(&self) -> Result<&'a str, ApiError>;
    /// `true` or `false`.
    fn bool(&self) -> Result<bool, ApiError>;
    /// A non-negative number, exactly as its text says (`0` for any zero).
    fn number(&self) -> Result<Decimal, ApiError>;
}

impl<'a> Strict<'a> for Node<'a> {
    fn obj(&self) -> Result<&'a Map<String, Value>, ApiError> {
        self.object()?.ok_or_else(|| self.fail("must be an object"))
    }

    fn opt(&self, key: &str) -> Result<Option<Node<'a>>, ApiError> {
        self.obj()?;
        let node = self.get(key);
        Ok(node.present().is_some().then_some(node))
    }

    fn req(&self, key: &str) -> Result<Node<'a>, ApiError> {
        self.obj()?;
        let node = self.get(key);
        match node.present() {
            Some(_) => Ok(node),
            None => Err(node.fail("is required")),
        }
    }

    fn fields(&self) -> Result<Vec<(&'a str, Node<'a>)>, ApiError> {
        self.obj()?;
        let members = self.members();
        for (_, node) in &members {
            node.obj()?;
        }
        Ok(members)
    }

    fn list(&self) -> Result<Vec<Node<'a>>, ApiError> {
        self.array()?.ok_or_else(|| self.fail("must be an array"))?;
        self.items()
    }

    fn str(&self) -> Result<&'a str, ApiError> {
        self.string()?.ok_or_else(|| self.fail("must be a string"))
    }

    fn bool(&self) -> Result<bool, ApiError> {
        self.boolean()?.ok_or_else(|| self.fail("must be true or false"))
    }

    fn number(&self) -> Result<Decimal, ApiError> {
        let Some(Value::Number(n)) = self.present() else {
            return Err(self.fail("must be a number"));
        };
        let value = RULES.exact(n).ok_or_else(|| self.fail("is out of range"))?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(self.fail("must not be negative"));
        }
        Ok(if value.is_zero() { Decimal::ZERO } else { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::MAX_METADATA_BYTES;
    use crate::webhook::tests::every_order_agrees;
    use crate::webhook::{merge, Sources};
    use crate::{validate, TenantId};
    use chrono::Utc;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../fixtures/webhooks/elevenlabs/", $name))
        };
    }

    const TRANSCRIPTION: &str = fixture!("post_call_transcription.json");
    const AUDIO: &str = fixture!("post_call_audio.json");
    const FAILURE: &str = fixture!("call_initiation_failure.json");
    const OPTED_OUT: &str = fixture!("opted_out_post_call_transcription.json");
    const CALL: &str = fixture!("call.expected.json");

    /// Each event's body and what it alone stores.
    const FIXTURES: [(&str, &str, &str); 4] = [
        (
            "post_call_transcription",
            TRANSCRIPTION,
            fixture!("post_call_transcription.expected.json"),
        ),
        ("post_call_audio", AUDIO, fixture!("post_call_audio.expected.json")),
        (
            "call_initiation_failure",
            FAILURE,
            fixture!("call_initiation_failure.expected.json"),
        ),
        (
            "opted_out_post_call_transcription",
            OPTED_OUT,
            fixture!("opted_out_post_call_transcription.expected.json"),
        ),
    ];

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("a fixture is JSON")
    }

    fn map(body: &Value) -> Delivery {
        delivery(body).expect("accepted").expect("stored")
    }

    /// What `delivery` alone stores, with its `id`, as a PUT body.
    fn stored(delivery: &Delivery) -> Value {
        let (mut fields, _) = merge(None, delivery);
        with_id(&mut fields, delivery);
        Value::Object(fields)
    }

    fn with_id(fields: &mut Map<String, Value>, delivery: &Delivery) {
        fields.insert("id".into(), json!(Provider::ElevenLabs.call_id(&delivery.call_id)));
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().expect("a time")
    }

    fn check(body: &Value, now: DateTime<Utc>) -> Result<crate::model::CallRecord, ApiError> {
        let id = CallId::parse(body["id"].as_str().expect("an id")).expect("a call id");
        validate::call(&TenantId::parse("t1").expect("a tenant"), body, Some(&id), now)
    }

    /// `body` with the value at `pointer` replaced (or removed, for `None`).
    fn with(body: &Value, pointer: &str, value: Option<Value>) -> Value {
        let mut out = body.clone();
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        match (out.pointer_mut(parent).expect("the parent exists"), value) {
            (Value::Object(map), Some(v)) => {
                map.insert(key.to_owned(), v);
            }
            (Value::Object(map), None) => {
                map.remove(key);
            }
            (Value::Array(items), Some(v)) => items[key.parse::<usize>().expect("an index")] = v,
            (Value::Array(items), None) => {
                items.remove(key.parse::<usize>().expect("an index"));
            }
            _ => panic!("{pointer} is not in a container"),
        }
        out
    }

    fn refusal(body: &Value) -> (String, String) {
        match delivery(body) {
            Err(ApiError::InvalidParameter { field, reason }) => (field, reason),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn every_fixture_maps_to_its_expected_call_and_that_call_is_valid() {
        for (name, body, expected) in FIXTURES {
            let delivery = map(&parse(body));
            let got = stored(&delivery);
            assert_eq!(got, parse(expected), "{name}");
            check(&got, now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_call_after_all_its_events_is_the_same_in_every_order_and_valid() {
        let events = [map(&parse(TRANSCRIPTION)), map(&parse(AUDIO))];
        assert_eq!(events[0].call_id, events[1].call_id, "the fixtures describe one call");
        let mut merged = every_order_agrees(&events);
        let mut expected = parse(CALL);
        let expected_id = expected.as_object_mut().and_then(|m| m.remove("id"));
        assert_eq!(Value::Object(merged.clone()), expected);
        with_id(&mut merged, &events[0]);
        assert_eq!(merged.get("id"), expected_id.as_ref());
        let call = check(&Value::Object(merged), now()).expect("the merged call is valid");
        assert_eq!(call.summary.status.as_str(), "completed");
        assert_eq!(call.content.messages.len(), 20);
        assert_eq!(call.summary.cost.map(|c| c.to_string()).as_deref(), Some("0.2174"));
    }

    #[test]
    fn stages_rise_through_the_call() {
        let stage = |body: &str| map(&parse(body)).stage;
        assert_eq!(stage(AUDIO), STAGE_AUDIO);
        assert_eq!(stage(TRANSCRIPTION), STAGE_TRANSCRIPTION);
        assert_eq!(stage(FAILURE), STAGE_INITIATION_FAILURE);
        // Only the audio and the failure need fallbacks: the transcription has every required field.
        assert!(map(&parse(TRANSCRIPTION)).fallbacks.is_empty());
    }

    #[test]
    fn the_audio_is_the_recording_inline_and_nothing_else_has_one() {
        let audio = map(&parse(AUDIO));
        let Some(RecordingSource::Inline { format, bytes }) = &audio.recording else {
            panic!("inline audio expected, got {:?}", audio.recording);
        };
        assert_eq!(format, "mp3");
        assert!(bytes.starts_with(b"ID3\x04"), "an ID3v2.4 tag");
        assert_eq!(&bytes[10..12], &[0xff, 0xfb], "then an MPEG audio frame");
        assert_eq!(bytes.len(), 42);
        for fields in [&audio.fields, &audio.fallbacks] {
            assert!(!fields.keys().any(|k| k.starts_with("recording")), "{fields:?}");
        }
        for body in [TRANSCRIPTION, FAILURE, OPTED_OUT] {
            let d = map(&parse(body));
            assert_eq!(d.recording, None);
            assert!(!d.fields.keys().any(|k| k.starts_with("recording")));
        }
        // Unpadded and line-wrapped base64 read the same.
        let text = parse(AUDIO)["data"]["full_audio"].as_str().unwrap().to_owned();
        for variant in [
            text.trim_end_matches('=').to_owned(),
            format!("{}\n{}", &text[..20], &text[20..]),
        ] {
            let body = with(&parse(AUDIO), "/data/full_audio", Some(json!(variant)));
            assert_eq!(map(&body).recording, audio.recording);
        }
    }

    #[test]
    fn the_same_payload_always_maps_to_the_same_delivery() {
        for (name, body, _) in FIXTURES {
            assert_eq!(map(&parse(body)), map(&parse(body)), "{name}");
        }
    }

    #[test]
    fn events_that_carry_nothing_we_store_are_none() {
        let removal =
            json!({"type": "voice_removal_notice", "event_timestamp": 1763487727, "data": {"voice_id": "v1"}});
        assert_eq!(delivery(&removal), Ok(None));
        assert_eq!(delivery(&json!({"type": "post_call_transcription_v9"})), Ok(None));
        let silent = with(&parse(AUDIO), "/data/full_audio", Some(json!("")));
        assert_eq!(delivery(&silent), Ok(None));
    }

    #[test]
    fn a_body_not_of_elevenlabs_shape_is_a_400_naming_its_path() {
        let t = parse(TRANSCRIPTION);
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "."),
            (json!({"data": {}}), "type"),
            (json!({"type": 7}), "type"),
            (with(&t, "/data", None), "data"),
            (with(&t, "/data", Some(json!("x"))), "data"),
            (with(&t, "/data/conversation_id", None), "data.conversation_id"),
            (
                with(&t, "/data/conversation_id", Some(json!(42))),
                "data.conversation_id",
            ),
            (
                with(&t, "/data/conversation_id", Some(json!(""))),
                "data.conversation_id",
            ),
            (
                with(&t, "/data/conversation_id", Some(json!("conv 1"))),
                "data.conversation_id",
            ),
            (
                with(&t, "/data/conversation_id", Some(json!("c".repeat(118)))),
                "data.conversation_id",
            ),
            (with(&t, "/data/status", Some(json!("paused"))), "data.status"),
            (with(&t, "/data/status", None), "data.status"),
            (with(&t, "/data/agent_id", Some(json!(["a"]))), "data.agent_id"),
            (with(&t, "/data/metadata", None), "data.metadata"),
            (
                with(&t, "/data/metadata/start_time_unix_secs", None),
                "data.metadata.start_time_unix_secs",
            ),
            (
                with(&t, "/data/metadata/start_time_unix_secs", Some(json!("1763487727"))),
                "data.metadata.start_time_unix_secs",
            ),
            (
                with(&t, "/data/metadata/start_time_unix_secs", Some(json!(-5))),
                "data.metadata.start_time_unix_secs",
            ),
            (
                with(&t, "/data/metadata/start_time_unix_secs", Some(json!(1e300))),
                "data.metadata.start_time_unix_secs",
            ),
            (
                with(&t, "/data/metadata/call_duration_secs", Some(json!(20_000_000))),
                "data.metadata.call_duration_secs",
            ),
            (
                with(&t, "/data/metadata/cost_fiat", Some(json!(-0.2))),
                "data.metadata.cost_fiat",
            ),
            (
                with(&t, "/data/metadata/cost_fiat", Some(json!(1e13))),
                "data.metadata.cost_fiat",
            ),
            (
                with(&t, "/data/metadata/charging/llm_price", Some(json!("0.03"))),
                "data.metadata.charging.llm_price",
            ),
            (
                with(&t, "/data/metadata/phone_call/direction", Some(json!("sideways"))),
                "data.metadata.phone_call.direction",
            ),
            (
                with(&t, "/data/metadata/phone_call/call_sid", Some(json!("C".repeat(129)))),
                "data.metadata.phone_call.call_sid",
            ),
            (
                with(&t, "/data/metadata/features_usage/pii_zrm_agent", Some(json!("yes"))),
                "data.metadata.features_usage.pii_zrm_agent",
            ),
            (with(&t, "/data/transcript", Some(json!({}))), "data.transcript"),
            (
                with(&t, "/data/transcript/2", Some(json!("hello"))),
                "data.transcript[2]",
            ),
            (
                with(&t, "/data/transcript/2/role", Some(json!("narrator"))),
                "data.transcript[2].role",
            ),
            (
                with(&t, "/data/transcript/2/message", Some(json!(3))),
                "data.transcript[2].message",
            ),
            (
                with(&t, "/data/transcript/3/time_in_call_secs", None),
                "data.transcript[3].time_in_call_secs",
            ),
            (
                with(&t, "/data/transcript/3/time_in_call_secs", Some(json!(-1))),
                "data.transcript[3].time_in_call_secs",
            ),
            (
                with(&t, "/data/transcript/4/tool_calls/0/tool_name", None),
                "data.transcript[4].tool_calls[0].tool_name",
            ),
            (
                with(
                    &t,
                    "/data/transcript/4/tool_calls/0/params_as_json",
                    Some(json!({"a": 1})),
                ),
                "data.transcript[4].tool_calls[0].params_as_json",
            ),
            (
                with(&t, "/data/transcript/5/tool_results/0/is_error", Some(json!("no"))),
                "data.transcript[5].tool_results[0].is_error",
            ),
            (
                with(
                    &t,
                    "/data/transcript/2/conversation_turn_metrics/metrics/convai_llm_service_ttfb/elapsed_time",
                    Some(json!("fast")),
                ),
                "data.transcript[2].conversation_turn_metrics.metrics.convai_llm_service_ttfb.elapsed_time",
            ),
            (
                with(
                    &t,
                    "/data/transcript/2/conversation_turn_metrics/metrics/convai_tts_service_ttfb/elapsed_time",
                    Some(json!(10_001)),
                ),
                "data.transcript[2].conversation_turn_metrics.metrics.convai_tts_service_ttfb.elapsed_time",
            ),
            (
                with(&t, "/data/analysis/call_successful", Some(json!("maybe"))),
                "data.analysis.call_successful",
            ),
            (
                with(&t, "/data/analysis/call_success_score", Some(json!(101))),
                "data.analysis.call_success_score",
            ),
            (
                with(
                    &t,
                    "/data/analysis/evaluation_criteria_results/identity_verified/result",
                    Some(json!(true)),
                ),
                "data.analysis.evaluation_criteria_results.identity_verified.result",
            ),
            (
                with(
                    &t,
                    "/data/analysis/data_collection_results/insurance_changed",
                    Some(json!(true)),
                ),
                "data.analysis.data_collection_results.insurance_changed",
            ),
            (
                with(
                    &t,
                    "/data/conversation_initiation_client_data/dynamic_variables",
                    Some(json!([1])),
                ),
                "data.conversation_initiation_client_data.dynamic_variables",
            ),
            (with(&parse(AUDIO), "/data/full_audio", None), "data.full_audio"),
            (
                with(&parse(AUDIO), "/data/full_audio", Some(json!("not*base64!"))),
                "data.full_audio",
            ),
            (with(&parse(AUDIO), "/event_timestamp", None), "event_timestamp"),
            (
                with(&parse(AUDIO), "/data/conversation_id", None),
                "data.conversation_id",
            ),
            (
                with(&parse(FAILURE), "/data/failure_reason", None),
                "data.failure_reason",
            ),
            (
                with(&parse(FAILURE), "/data/metadata/body", Some(json!("busy"))),
                "data.metadata.body",
            ),
            (
                with(&parse(FAILURE), "/data/metadata/body/From", Some(json!(true))),
                "data.metadata.body.From",
            ),
            (
                with(&parse(FAILURE), "/event_timestamp", Some(json!("now"))),
                "event_timestamp",
            ),
        ];
        for (body, path) in cases {
            let (field, reason) = refusal(&body);
            assert_eq!(field, path, "{reason}");
            assert_eq!(delivery(&body).unwrap_err().status(), 400);
        }
        // A key that is not a plain name is quoted in the path.
        let odd = with(
            &t,
            "/data/analysis/data_collection_results",
            Some(json!({"new date": "2025-11-24"})),
        );
        assert_eq!(refusal(&odd).0, "data.analysis.data_collection_results[\"new date\"]");
    }

    #[test]
    fn fields_elevenlabs_adds_are_ignored() {
        let mut body = parse(TRANSCRIPTION);
        body["data"]["sentiment_v2"] = json!({"score": 0.9});
        body["data"]["transcript"][0]["speaker_embedding"] = json!([0.1, 0.2]);
        body["data"]["metadata"]["phone_call"]["carrier"] = json!("acme");
        body["extra"] = json!(true);
        assert_eq!(map(&body), map(&parse(TRANSCRIPTION)));
    }

    #[test]
    fn money_is_exact_whatever_the_float() {
        let t = parse(TRANSCRIPTION);
        let cost = |body: &Value| map(body).fields.get("cost").cloned();
        // 0.1 + 0.2 as floats is 0.30000000000000004; as the numbers' own text it is 0.3.
        let parts = with(&t, "/data/metadata/cost_fiat", None);
        let parts = with(&parts, "/data/metadata/charging/llm_price", Some(json!(0.1)));
        let parts = with(&parts, "/data/metadata/charging/platform_price", Some(json!(0.2)));
        assert_eq!(cost(&parts), Some(json!("0.3")));
        let lines = map(&parts).fields["costBreakdown"].clone();
        assert_eq!(lines[0]["amount"], json!("0.1"));
        assert_eq!(lines[1]["unitPrice"], json!("0.2"));
        for (given, written) in [
            (json!(0.30000000000000004), "0.3"),
            (json!(0.1234567890123), "0.1234567890"),
            (json!(1e-7), "0.0000001"),
            (json!(1e-30), "0"),
            (json!(12.5), "12.5"),
            (json!(7), "7"),
            (json!(0), "0"),
            (json!(999_999_999_999.99), "999999999999.99"),
        ] {
            let body = with(&t, "/data/metadata/cost_fiat", Some(given.clone()));
            let written = written.trim_end_matches('0');
            let written = written.strip_suffix('.').unwrap_or(written);
            let written = if written.is_empty() { "0" } else { written };
            assert_eq!(cost(&body), Some(json!(written)), "{given}");
            check(&stored(&map(&body)), now()).unwrap_or_else(|e| panic!("{given}: {e}"));
        }
        // No money at all: no cost, no currency.
        let mut none = with(&t, "/data/metadata/cost_fiat", None);
        none = with(&none, "/data/metadata/charging", None);
        let d = map(&none);
        assert!(!d.fields.contains_key("cost") && !d.fields.contains_key("currency"));
        assert!(!d.fields.contains_key("costBreakdown"));
    }

    #[test]
    fn an_opted_out_call_keeps_no_content() {
        let d = map(&parse(OPTED_OUT));
        assert_eq!(d.fields["optOutSensitiveDataStorage"], json!(true));
        for content in ["messages", "summary"] {
            assert!(!d.fields.contains_key(content), "{content}");
        }
        assert!(!d.fields["callMetadata"]
            .as_object()
            .unwrap()
            .contains_key("data_collection"));
        assert!(d.fields.contains_key("latency"), "timings are not content");
        // The workspace's zero-retention mode counts as the agent's does.
        let mut body = parse(OPTED_OUT);
        body["data"]["metadata"]["features_usage"] = json!({"pii_zrm_workspace": true});
        assert_eq!(map(&body).fields["optOutSensitiveDataStorage"], json!(true));
        body["data"]["metadata"]["features_usage"] = json!({});
        assert!(!map(&body).fields.contains_key("optOutSensitiveDataStorage"));
        assert!(map(&body).fields.contains_key("messages"));
    }

    #[test]
    fn a_failed_conversation_is_failed_and_says_why() {
        let mut body = parse(TRANSCRIPTION);
        body["data"]["status"] = json!("failed");
        body["data"]["metadata"]["termination_reason"] = json!("");
        body["data"]["metadata"]["error"] = json!({"code": 1011, "reason": "Twilio media stream closed"});
        let d = map(&body);
        assert_eq!(d.fields["status"], json!("failed"));
        assert_eq!(d.fields["endReason"], json!("Twilio media stream closed"));
        for (theirs, ours) in [
            ("initiated", "queued"),
            ("in-progress", "in-progress"),
            ("processing", "completed"),
        ] {
            body["data"]["status"] = json!(theirs);
            assert_eq!(map(&body).fields["status"], json!(ours), "{theirs}");
        }
    }

    #[test]
    fn an_initiation_failure_says_how_the_dial_ended_and_outranks_a_transcription() {
        let failure = parse(FAILURE);
        let status = |body: &Value| map(body).fields["status"].clone();
        assert_eq!(status(&failure), json!("no-answer"));
        assert_eq!(
            status(&with(&failure, "/data/failure_reason", Some(json!("busy")))),
            json!("busy")
        );
        let unknown = with(&failure, "/data/failure_reason", Some(json!("unknown")));
        assert_eq!(status(&unknown), json!("no-answer"), "Twilio's CallStatus says more");
        let unknown = with(&unknown, "/data/metadata/body/CallStatus", Some(json!("failed")));
        assert_eq!(status(&unknown), json!("failed"));

        // SIP trunking, as documented: snake_case body, numbers possibly as JSON numbers.
        let sip = json!({
            "type": "call_initiation_failure",
            "event_timestamp": 1763546452,
            "data": {
                "agent_id": "agent_2301k7vd4m8rjq5a0c9xz6e2bt",
                "conversation_id": "conv_0901kb4e2m6tq8xr3c5vz7hn1d",
                "failure_reason": "busy",
                "metadata": {"type": "sip", "body": {
                    "from_number": "+14155550142", "to_number": 13105550164u64, "sip_status_code": 486,
                    "error_reason": "INVITE failed: sip status: 486: Busy here (SIP 486)",
                    "call_sid": "0f3a9c2e-7b14-4d68-a5e1-c93b8d2f6a07", "sip_status": "Busy here"
                }},
                "conversation_initiation_client_data": {"dynamic_variables": {"appointment_id": "apt_21190"}}
            }
        });
        let d = map(&sip);
        assert_eq!(d.fields["status"], json!("busy"));
        assert_eq!(d.fields["from"], json!("+14155550142"));
        assert!(
            !d.fields.contains_key("to"),
            "a number without its country code is not guessed at"
        );
        assert_eq!(
            d.fields["telephony"],
            json!({"provider": "sip", "callSid": "0f3a9c2e-7b14-4d68-a5e1-c93b8d2f6a07"})
        );
        assert_eq!(d.fields["callMetadata"], json!({"appointment_id": "apt_21190"}));

        // A transcription of the same conversation can only say `failed`; the failure's status stands, and
        // the conversation's own start replaces the failure's delivery time as `createdAt`.
        let mut transcription = parse(TRANSCRIPTION);
        transcription["data"]["conversation_id"] = failure["data"]["conversation_id"].clone();
        transcription["data"]["status"] = json!("failed");
        transcription["data"]["metadata"]["phone_call"]["direction"] = json!("outbound");
        let events = [map(&failure), map(&transcription)];
        let merged = every_order_agrees(&events);
        assert_eq!(merged["status"], json!("no-answer"));
        assert_eq!(merged["createdAt"], json!("2025-11-18T17:42:07Z"));
        assert_eq!(merged["endReason"], json!("no-answer"));
        let mut body = merged.clone();
        with_id(&mut body, &events[0]);
        check(&Value::Object(body), now()).expect("valid");
    }

    #[test]
    fn tool_results_pair_with_their_calls_and_errors_are_marked() {
        let mut body = parse(TRANSCRIPTION);
        let result = &mut body["data"]["transcript"][5]["tool_results"][0];
        result["is_error"] = json!(true);
        result["result_value"] = json!("upstream timed out");
        // A result whose call is not in the transcript stands on its own.
        body["data"]["transcript"][13]["tool_results"][0]["request_id"] = json!("get_insurance_unmatched");
        let d = map(&body);
        let messages = d.fields["messages"].as_array().unwrap();
        let lookup = &messages[4];
        assert_eq!(lookup["role"], json!("tool"));
        assert_eq!(lookup["content"], json!("upstream timed out"));
        assert_eq!(lookup["toolInfo"]["result"], json!({"error": "upstream timed out"}));
        let call = messages
            .iter()
            .find(|m| m["toolInfo"]["name"] == json!("get_insurance"))
            .unwrap();
        assert_eq!(
            call["content"],
            json!("{\"patient_id\": \"pt_5512\"}"),
            "no result: the arguments"
        );
        assert!(call["toolInfo"].get("result").is_none());
        let orphan = messages
            .iter()
            .filter(|m| m["toolInfo"]["name"] == json!("get_insurance"))
            .nth(1)
            .unwrap();
        assert_eq!(orphan["startOffset"], json!(63));
        assert_eq!(orphan["toolInfo"]["result"]["carrier"], json!("Aetna"));
        assert!(orphan["toolInfo"].get("arguments").is_none());
        // Ids stay positional.
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m["id"], json!(format!("msg_{:04}", i + 1)));
        }
    }

    #[test]
    fn older_flat_turn_metrics_count_too() {
        let mut body = parse(OPTED_OUT);
        body["data"]["transcript"][2]["conversation_turn_metrics"] =
            json!({"convai_llm_service_ttfb": {"elapsed_time": 0.3704247010173276}});
        let latency = map(&body).fields["latency"].clone();
        assert_eq!(latency["llm"]["p50"], json!(370.424701));
        assert!(latency.get("e2e").is_none());
    }

    #[test]
    fn call_metadata_is_made_storable() {
        let mut body = parse(TRANSCRIPTION);
        body["data"]["conversation_initiation_client_data"]["dynamic_variables"] = json!({
            "": "no name",
            "huge_number": 1e130,
            "tiny_number": 1e-130,
            "nested": {"": 1, "kept": [0, {"": 2, "x": 1e200}]},
            "big_text": "x".repeat(MAX_METADATA_BYTES),
            "system__caller_id": "+16505550187",
            "zeta": "last"
        });
        let metadata = map(&body).fields["callMetadata"].clone();
        assert_eq!(metadata.get(""), None);
        assert_eq!(metadata["huge_number"], json!("1e+130"));
        assert_eq!(metadata["tiny_number"], json!("1e-130"));
        assert_eq!(metadata["nested"], json!({"kept": [0, {"x": "1e+200"}]}));
        assert_eq!(metadata.get("big_text"), None, "too big to fit: left out");
        assert_eq!(metadata.get("system__caller_id"), None);
        assert_eq!(metadata["zeta"], json!("last"), "later entries still kept");
        assert!(metadata["data_collection"].is_object());
        check(&stored(&map(&body)), now()).expect("storable");
        // A dynamic variable named `data_collection` keeps its name and value.
        body["data"]["conversation_initiation_client_data"]["dynamic_variables"] = json!({"data_collection": "crm"});
        assert_eq!(map(&body).fields["callMetadata"], json!({"data_collection": "crm"}));
    }

    #[test]
    fn long_texts_are_cut_to_the_call_formats_bounds() {
        let mut body = parse(TRANSCRIPTION);
        body["data"]["agent_name"] = json!("ş".repeat(300));
        body["data"]["metadata"]["termination_reason"] = json!("r".repeat(300));
        body["data"]["analysis"]["transcript_summary"] = json!("s".repeat(10_050));
        body["data"]["transcript"][0]["message"] = json!("m".repeat(MAX_CONTENT_CHARS + 5));
        let d = map(&body);
        assert_eq!(d.fields["assistant"]["name"].as_str().unwrap().chars().count(), 256);
        assert_eq!(d.fields["endReason"].as_str().unwrap().len(), 256);
        assert_eq!(d.fields["summary"].as_str().unwrap().len(), 10_000);
        assert_eq!(
            d.fields["messages"][0]["content"].as_str().unwrap().len(),
            MAX_CONTENT_CHARS
        );
        check(&stored(&d), now()).expect("valid");
    }

    #[test]
    fn a_web_conversation_has_no_numbers() {
        let mut body = parse(TRANSCRIPTION);
        body["data"]["metadata"]["phone_call"] = Value::Null;
        let d = map(&body);
        assert_eq!(d.fields["direction"], json!("web"));
        for absent in ["from", "to", "phoneNumber", "phoneNumberId", "telephony"] {
            assert!(!d.fields.contains_key(absent), "{absent}");
        }
        // A fractional offset gives a fractional timestamp.
        body["data"]["transcript"][1]["time_in_call_secs"] = json!(5.25);
        let d = map(&body);
        assert_eq!(d.fields["messages"][1]["timestamp"], json!("2025-11-18T17:42:12.250Z"));
        assert_eq!(d.fields["messages"][1]["startOffset"], json!(5.25));
    }

    /// Every node of `value`, as a JSON pointer.
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
                .collect(),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
            _ => return,
        };
        for (key, child) in children {
            let pointer = format!("{at}/{key}");
            out.push(pointer.clone());
            pointers(child, pointer, out);
        }
    }

    #[test]
    fn nothing_panics_and_whatever_is_accepted_is_a_valid_call() {
        let oddities = [
            Value::Null,
            json!(true),
            json!(-1),
            json!(0.1234567891),
            json!(1e308),
            json!(u64::MAX),
            json!(""),
            json!("a".repeat(300)),
            json!([]),
            json!({}),
            json!([{}]),
            json!({"": [1e-300]}),
        ];
        let end_of_time = DateTime::<Utc>::MAX_UTC;
        let (mut accepted, mut refused) = (0, 0);
        // The transcription's first turns hold every kind of turn (text, metrics, a tool call, its result):
        // the rest only repeat them, and would make this test slow.
        let mut short = parse(TRANSCRIPTION);
        short["data"]["transcript"].as_array_mut().expect("turns").truncate(7);
        for base in [short, parse(AUDIO), parse(FAILURE), parse(OPTED_OUT)] {
            let mut all = Vec::new();
            pointers(&base, String::new(), &mut all);
            for pointer in &all {
                for odd in &oddities {
                    let body = with_pointer(&base, pointer, odd.clone());
                    match delivery(&body) {
                        Ok(Some(d)) => {
                            accepted += 1;
                            check(&stored(&d), end_of_time)
                                .unwrap_or_else(|e| panic!("{pointer} = {odd}: mapped to an invalid call: {e}"));
                        }
                        Ok(None) => {}
                        Err(ApiError::InvalidParameter { .. }) => refused += 1,
                        Err(other) => panic!("{pointer} = {odd}: {other}"),
                    }
                }
            }
        }
        assert!(
            accepted > 1000 && refused > 200,
            "{accepted} accepted, {refused} refused"
        );
    }

    fn with_pointer(base: &Value, pointer: &str, value: Value) -> Value {
        let mut out = base.clone();
        if let Some(slot) = out.pointer_mut(pointer) {
            *slot = value;
        }
        out
    }

    #[test]
    fn merged_sources_follow_the_stages() {
        let audio = map(&parse(AUDIO));
        let transcription = map(&parse(TRANSCRIPTION));
        let (fields, sources) = merge(None, &audio);
        let (_, sources) = merge(Some((&fields, &sources)), &transcription);
        let expect: Sources = [
            ("createdAt", STAGE_TRANSCRIPTION),
            ("direction", STAGE_TRANSCRIPTION),
            ("status", STAGE_TRANSCRIPTION),
            ("assistantId", STAGE_TRANSCRIPTION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in expect {
            assert_eq!(sources.get(&k), Some(&v), "{k}");
        }
    }
}
