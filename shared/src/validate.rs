//! The one door into the store: a call in the API's own format (exactly what get-call serves in `data`), read
//! strictly and checked against the contract before anything of it is written. Imports go through here, and
//! so does every write route; nothing else builds a [`CallRecord`] from outside input.
//!
//! Not here: what is derived when a call is read (recording state, links), the lifecycle rules between a
//! stored call and its replacement, and the body-size limit of a route.
//!
//! Every failure is one [`ApiError::InvalidParameter`] whose `field` is the JSON path of the offending
//! value (`startTime`, `messages[3].timestamp`, `costBreakdown[1].amount`; `.` for the call itself; a key
//! that is not a plain name is quoted, `["a b"]`). Only the first failure is reported. Checks run in two
//! passes: reading the document (shape, types, unknown fields and every rule about one value alone) stops at
//! the first failure in reading order, which is document order with an object's keys taken in sorted order
//! (as [`serde_json::Value`] holds them) and an array's elements by index; once it reads cleanly, the rules
//! that compare a value with the clock or with another value are checked, and the failure among them that
//! comes first in that same order is reported. The same body therefore always gives the same error, whatever
//! order its keys were sent in.
//!
//! | field | rule |
//! |---|---|
//! | every object of the format (the call, `assistant`, each message, word, event…) | a JSON object, never an array of its fields |
//! | any key not in the call's format, at any level | refused (`callMetadata`, `toolInfo.arguments`, `toolInfo.result` and `events[].data` are free-form) |
//! | `messagesCount`, `transcript`, `recordingUrl`, `recordingUrlExpiresAt`, `recordingExpiresAt`, `recordingFailureReason`, `updatedAt` | derived by the server: accepted, whatever their value, and ignored; `updatedAt` becomes the moment of writing |
//! | `id` | [`CallId`] rules (1–128 of `A–Z a–z 0–9 _ - . :`); required unless the route names the call, and then equal to it |
//! | `direction`, `status`, `createdAt` | required |
//! | `messages[].id`, `role`, `content`, `timestamp`; `words[].word`, `start`, `end`; `toolInfo.name`; `events[].timestamp`, `type`; `assistant` / `campaign` `{id, name}`; `phoneNumber` `{id, number}`; every `costBreakdown[]` field; every `latency.*` figure | required within their object |
//! | `direction`, `status`, `answeredBy`, `messages[].role`, `recordingStatus` | the API's values; `status` also takes seed 001's `ended`, `ended_by_customer`, `ended_by_assistant` (→ `completed`) and `initiated` (→ `queued`) |
//! | `recordingFormat` | `wav`, `mp3`, `m4a`, `ogg` or `webm` (it becomes part of the recording's object key) |
//! | `from`, `to`, `phoneNumber.number` | E.164 once normalised by [`crate::phone::e164`] (`+1 (415) 555-0100` → `+14155550100`); stored normalised |
//! | `createdAt`, `startTime`, `endTime`, `messages[].timestamp`, `events[].timestamp` | RFC 3339 (any offset; stored in UTC), from 1970-01-01T00:00:00Z to now + 1 day inclusive |
//! | `endTime` | not before `startTime` (when both are given) |
//! | `duration`, `recordingDuration`, `messages[].duration`, `startOffset`, `endOffset`, `words[].start`, `end` | seconds: a JSON number, 0 to 10,000,000, at most 6 decimal places |
//! | `latency.{e2e,llm,tts,asr}.{min,max,p50,p90,p95,p99}` | milliseconds: a JSON number, 0 to 10,000,000, at most 6 decimal places; `num` an integer 0 to 4,294,967,295 |
//! | `evaluation.score` | a JSON number, 0 to 100 (covers 0–1, 0–10 and 0–100 scales), at most 6 decimal places |
//! | `cost`, `costBreakdown[].quantity`, `unitPrice`, `amount` | a decimal string (`"0.45"`: digits, an optional fraction; no sign, exponent or separators), below 10^12, at most 10 decimal places; never a JSON number |
//! | `currency` | an ISO 4217 code (`TRY`, `USD`), upper case; not the codes for metals, units of account, testing or "no currency" (`XAU`, `XDR`, `XTS`, `XXX`…) |
//! | `assistantId`, `campaignId`, `phoneNumberId`, `assistant.id`, `campaign.id`, `phoneNumber.id`, `messages[].id`, `telephony.callSid`, `telephony.conferenceSid` | 1 to 128 characters |
//! | `messages[].content` | at most 100,000 characters |
//! | `summary` | at most 10,000 characters |
//! | `assistant.name`, `campaign.name`, `phoneNumber.name`, `endReason`, `evaluation.outcome`, `toolInfo.name`, `words[].word` | at most 256 characters |
//! | `evaluation.sentiment`, `telephony.provider`, `events[].type`, `costBreakdown[].product` | at most 128 characters |
//! | `costBreakdown[].unit` | at most 32 characters |
//! | `costBreakdown` | at most 100 lines |
//! | `callMetadata` | an object of at most 16 KiB as compact JSON: it lives in the call's small summary item, beside the indexes; as DynamoDB attributes, so no empty key at any depth, and every number 0 or of a magnitude from 1e-125 to 1e125 |
//! | `messages`, `events`, `costBreakdown`, `callMetadata`, and every optional field | may be `null` (as get-call serves an opted-out call's `messages`): absent |
//!
//! Deliberately not required, because the contract does not ask it and real platforms break it: `endTime` ≥
//! `createdAt` (a platform may create its record after dialling), message or word times inside the call,
//! word `end` ≥ `start`, ordered latency percentiles, a breakdown that adds up to `cost`, and a
//! `recordingFormat` beside a `recordingStatus`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::model::{
    AnsweredBy, CallContent, CallEvent, CallRecord, CallStatus, CallSummary, CostItem, Direction, Evaluation, Latency,
    LatencyStats, Message, NamedRef, PhoneNumberRef, RecordingStatus, Role, StoredRecording, Telephony, ToolInfo, Word,
};
use crate::{CallId, TenantId};

/// Longest serialized `callMetadata`, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Most lines in `costBreakdown`.
pub const MAX_COST_LINES: usize = 100;
/// Longest message `content`, in characters.
pub const MAX_CONTENT_CHARS: usize = 100_000;
/// `summary`.
pub const MAX_SUMMARY_CHARS: usize = 10_000;
/// Names, `endReason`, `evaluation.outcome`, `toolInfo.name`, words.
pub const MAX_NAME_CHARS: usize = 256;
/// `evaluation.sentiment`, `telephony.provider`, `events[].type`, `costBreakdown[].product`.
pub const MAX_LABEL_CHARS: usize = 128;
/// Largest duration, offset or word time in seconds (about 115 days), and largest latency figure in ms.
pub const MAX_FIGURE: f64 = 10_000_000.0;
/// Largest `evaluation.score`.
pub const MAX_SCORE: f64 = 100.0;
/// Most decimal places of a duration, offset, latency figure or score.
pub const MAX_FIGURE_DECIMALS: usize = 6;
/// Most digits before the point of a money amount (so every amount is below 10^12).
pub const MAX_MONEY_DIGITS: usize = 12;
/// Most decimal places of a money amount.
pub const MAX_MONEY_SCALE: usize = 10;
/// How far past `now` a timestamp may lie: clocks of the platforms that send calls drift.
pub const MAX_AHEAD: TimeDelta = TimeDelta::days(1);

/// Reads one call for `tenant` in get-call's `data` format and checks it (see the module documentation for
/// every rule). `expected_id` is the call the route names, if any; `now` bounds the timestamps and becomes
/// the call's `updatedAt`. The record is built as a stored call: phone numbers normalised, the recording
/// object expected at [`crate::recording::object_key`], then [`CallRecord::normalised`].
pub fn call(
    tenant: &TenantId,
    value: &Value,
    expected_id: Option<&CallId>,
    now: DateTime<Utc>,
) -> Result<CallRecord, ApiError> {
    let Object(mut input): Object<CallIn> = serde_path_to_error::deserialize(value).map_err(|e| read_failure(&e))?;
    let latest = now.checked_add_signed(MAX_AHEAD).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let mut faults = time_faults(&input, latest);
    faults.extend(metadata_faults(&input));
    let id = match (input.id.take(), expected_id) {
        (Some(CallIdIn(given)), Some(expected)) if given != *expected => Err(Fault::at(
            vec![key("id")],
            format!("must equal the call id of the request ({expected})"),
        )),
        (Some(CallIdIn(given)), _) => Ok(given),
        (None, Some(expected)) => Ok(expected.clone()),
        (None, None) => Err(Fault::at(vec![key("id")], "is required")),
    };
    match id {
        Ok(id) if faults.is_empty() => Ok(record(tenant, id, input, now)),
        Ok(_) => Err(first(faults, value)),
        Err(fault) => {
            faults.push(fault);
            Err(first(faults, value))
        }
    }
}

/// Largest request body a write takes, in bytes (Lambda's own limit on a request is 6 MB; bigger calls go
/// through the operator import).
pub const MAX_BODY_BYTES: usize = 6_000_000;

/// A request body as JSON: 413 over [`MAX_BODY_BYTES`], 400 naming `body` when it is not JSON.
pub fn body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "is required: a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(
            "body",
            format!("is not JSON (line {}, column {})", e.line(), e.column()),
        )
    })
}

/// `base` (a call as GET serves it) with `patch` applied as RFC 7396 says: objects merge, `null` removes,
/// anything else replaces whole (a patch that is not an object replaces the call, and then fails as one).
pub fn patched(base: &Value, patch: &Value) -> Value {
    let mut doc = base.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

/// Largest recording an upload may announce: 2 GiB (a 2-hour call as 16-bit 48 kHz stereo WAV is 1.4 GB).
pub const MAX_RECORDING_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// POST /api/v1/calls/{callId}/recording: what the upload will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub format: RecordingFormat,
    pub content_length: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UploadIn {
    format: RecordingFormat,
    content_length: u64,
}

/// Reads an upload request: `{"format": "wav"|"mp3"|"m4a"|"ogg"|"webm", "contentLength": 1..=2 GiB}`.
pub fn upload(value: &Value) -> Result<UploadRequest, ApiError> {
    let Object(input): Object<UploadIn> = serde_path_to_error::deserialize(value).map_err(|e| read_failure(&e))?;
    if input.content_length == 0 || input.content_length > MAX_RECORDING_BYTES {
        return Err(ApiError::invalid(
            "contentLength",
            format!("must be a whole number of bytes from 1 to {MAX_RECORDING_BYTES}"),
        ));
    }
    Ok(UploadRequest {
        format: input.format,
        content_length: input.content_length,
    })
}

/// Of several failures, the one that comes first in `value`'s reading order.
fn first(faults: Vec<Fault>, value: &Value) -> ApiError {
    match faults.into_iter().min_by_key(|f| position(value, &f.path)) {
        Some(f) => ApiError::invalid(&render(&f.path), f.reason),
        None => ApiError::Internal,
    }
}

/// A failure found after reading: where, and why.
struct Fault {
    path: Vec<Seg>,
    reason: String,
}

impl Fault {
    fn at(path: Vec<Seg>, reason: impl Into<String>) -> Self {
        Fault {
            path,
            reason: reason.into(),
        }
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

/// `a.b[3].c`; a key that is not a plain name is quoted (`["a b"]`); `.` for the call itself.
fn render(path: &[Seg]) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push('[');
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(']');
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Where `path` lies in `value`'s reading order, for picking the first of several failures. A step that is
/// not there (a missing field) sorts after every present one.
fn position(value: &Value, path: &[Seg]) -> Vec<usize> {
    let mut at = Some(value);
    path.iter()
        .map(|seg| {
            let (index, next) = match (seg, at) {
                (Seg::Key(k), Some(Value::Object(map))) => (map.keys().position(|x| x == k), map.get(k)),
                (Seg::Index(i), Some(Value::Array(items))) => (Some(*i), items.get(*i)),
                _ => (None, None),
            };
            at = next;
            index.unwrap_or(usize::MAX)
        })
        .collect()
}

/// The reading failure as the API reports it: the path serde was at, and why.
fn read_failure(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_path_to_error::Segment;
    let mut path: Vec<Seg> = err
        .path()
        .iter()
        .map(|seg| match seg {
            Segment::Seq { index } => Seg::Index(*index),
            Segment::Map { key } | Segment::Enum { variant: key } => Seg::Key(key.clone()),
            Segment::Unknown => Seg::Key("?".to_owned()),
        })
        .collect();
    let message = err.inner().to_string();
    // serde names a missing field in its message, at the path of the object that lacks it.
    let reason = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        Some(missing) => {
            path.push(key(missing));
            "is required".to_owned()
        }
        None => match message.split_once(", expected one of") {
            Some((unknown, _)) if unknown.starts_with("unknown field") => "is not a field of this object".to_owned(),
            _ => message,
        },
    };
    ApiError::invalid(&render(&path), reason)
}

/// The timestamps out of range, and an `endTime` before `startTime`: for each field the first offender.
/// What DynamoDB cannot store of `callMetadata`, which lives in the summary item as attributes: an empty
/// key at any depth, a number other than 0 outside magnitudes 1e-125 to 1e125. The first, by path.
fn metadata_faults(input: &CallIn) -> Vec<Fault> {
    fn walk(value: &Value, path: &mut Vec<Seg>) -> Option<Fault> {
        match value {
            Value::Object(map) => map.iter().find_map(|(k, v)| {
                path.push(key(k));
                let found = match k.is_empty() {
                    true => Some(Fault::at(path.clone(), "is an empty key, which cannot be stored")),
                    false => walk(v, path),
                };
                path.pop();
                found
            }),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                path.push(Seg::Index(i));
                let found = walk(v, path);
                path.pop();
                found
            }),
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0).abs();
                (x != 0.0 && !(1e-125..=1e125).contains(&x)).then(|| {
                    Fault::at(
                        path.clone(),
                        "is a number that cannot be stored (0, or a magnitude from 1e-125 to 1e125)",
                    )
                })
            }
            _ => None,
        }
    }
    let Some(Metadata(map)) = &input.call_metadata else {
        return Vec::new();
    };
    let mut path = vec![key("callMetadata")];
    let top = Value::Object(map.clone().into_iter().collect());
    walk(&top, &mut path).into_iter().collect()
}

fn time_faults(input: &CallIn, latest: DateTime<Utc>) -> Vec<Fault> {
    let in_range = |t: &Instant| -> Result<(), String> {
        if t.0 < DateTime::UNIX_EPOCH {
            Err("must not be before 1970-01-01T00:00:00Z".to_owned())
        } else if t.0 > latest {
            Err(format!(
                "must not be after {} (now + 1 day)",
                latest.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ))
        } else {
            Ok(())
        }
    };
    let mut faults = Vec::new();
    let mut check = |path: Vec<Seg>, t: &Instant| match in_range(t) {
        Ok(()) => true,
        Err(reason) => {
            faults.push(Fault::at(path, reason));
            false
        }
    };
    check(vec![key("createdAt")], &input.created_at);
    let start_ok = input
        .start_time
        .as_ref()
        .is_none_or(|t| check(vec![key("startTime")], t));
    let end_ok = input.end_time.as_ref().is_none_or(|t| check(vec![key("endTime")], t));
    for (i, m) in input.messages.iter().flatten().enumerate() {
        if !check(vec![key("messages"), Seg::Index(i), key("timestamp")], &m.0.timestamp) {
            break;
        }
    }
    for (i, e) in input.events.iter().flatten().enumerate() {
        if !check(vec![key("events"), Seg::Index(i), key("timestamp")], &e.0.timestamp) {
            break;
        }
    }
    if let (Some(start), Some(end), true, true) = (&input.start_time, &input.end_time, start_ok, end_ok) {
        if end.0 < start.0 {
            faults.push(Fault::at(vec![key("endTime")], "must not be before startTime"));
        }
    }
    faults
}

/// The checked input as a stored call.
fn record(tenant: &TenantId, id: CallId, input: CallIn, now: DateTime<Utc>) -> CallRecord {
    let format = input.recording_format.map(|f| f.as_str().to_owned());
    let status = input.recording_status.unwrap_or(if format.is_some() {
        RecordingStatus::Completed
    } else {
        RecordingStatus::None
    });
    let created_at = input.created_at.0;
    let recording = (status != RecordingStatus::None).then(|| StoredRecording {
        status,
        key: format
            .as_deref()
            .map(|f| crate::recording::object_key(tenant, &id, created_at, f)),
        format,
        duration: input.recording_duration.map(|d| d.0),
        recorded_at: None,
        failure_reason: None,
    });
    let named = |Object(n): Object<NamedIn>| NamedRef {
        id: n.id.0,
        name: n.name.0,
    };
    let summary = CallSummary {
        id: id.as_str().to_owned(),
        assistant_id: input.assistant_id.map(|x| x.0),
        assistant: input.assistant.map(named),
        phone_number_id: input.phone_number_id.map(|x| x.0),
        phone_number: input.phone_number.map(|Object(p)| PhoneNumberRef {
            id: p.id.0,
            number: p.number.0,
            name: p.name.map(|x| x.0),
        }),
        campaign_id: input.campaign_id.map(|x| x.0),
        campaign: input.campaign.map(named),
        direction: input.direction,
        from: input.from.map(|x| x.0),
        to: input.to.map(|x| x.0),
        status: input.status,
        end_reason: input.end_reason.map(|x| x.0),
        answered_by: input.answered_by,
        is_success: input.is_success,
        evaluation: input.evaluation.map(|Object(e)| Evaluation {
            sentiment: e.sentiment.map(|x| x.0),
            outcome: e.outcome.map(|x| x.0),
            score: e.score.map(|x| x.0),
        }),
        summary: input.summary.map(|x| x.0),
        start_time: input.start_time.map(|x| x.0),
        end_time: input.end_time.map(|x| x.0),
        duration: input.duration.map(|x| x.0),
        created_at,
        updated_at: Some(now),
        cost: input.cost.map(|x| x.0),
        currency: input.currency.map(|x| x.0),
        cost_breakdown: input
            .cost_breakdown
            .map(|b| b.0)
            .unwrap_or_default()
            .into_iter()
            .map(|Object(c)| CostItem {
                product: c.product.0,
                quantity: c.quantity.0,
                unit: c.unit.0,
                unit_price: c.unit_price.0,
                amount: c.amount.0,
            })
            .collect(),
        call_metadata: input.call_metadata.map(|m| m.0).unwrap_or_default(),
        messages_count: 0,
        telephony: input.telephony.map(|Object(t)| Telephony {
            provider: t.provider.map(|x| x.0),
            call_sid: t.call_sid.map(|x| x.0),
            conference_sid: t.conference_sid.map(|x| x.0),
        }),
        opt_out_sensitive_data_storage: input.opt_out_sensitive_data_storage.unwrap_or(false),
    };
    let stats = |Object(s): Object<StatsIn>| LatencyStats {
        min: s.min.0,
        max: s.max.0,
        p50: s.p50.0,
        p90: s.p90.0,
        p95: s.p95.0,
        p99: s.p99.0,
        num: s.num,
    };
    let content = CallContent {
        messages: input
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|Object(m)| Message {
                id: m.id.0,
                role: m.role,
                content: m.content.0,
                timestamp: m.timestamp.0,
                duration: m.duration.map(|x| x.0),
                interrupted: m.interrupted,
                start_offset: m.start_offset.map(|x| x.0),
                end_offset: m.end_offset.map(|x| x.0),
                words: m.words.map(|words| {
                    words
                        .into_iter()
                        .map(|Object(w)| Word {
                            word: w.word.0,
                            start: w.start.0,
                            end: w.end.0,
                        })
                        .collect()
                }),
                tool_info: m.tool_info.map(|Object(t)| ToolInfo {
                    name: t.name.0,
                    arguments: t.arguments,
                    result: t.result,
                }),
            })
            .collect(),
        events: input
            .events
            .unwrap_or_default()
            .into_iter()
            .map(|Object(e)| CallEvent {
                timestamp: e.timestamp.0,
                kind: e.kind.0,
                data: e.data,
            })
            .collect(),
        latency: input.latency.map(|Object(l)| Latency {
            e2e: l.e2e.map(stats),
            llm: l.llm.map(stats),
            tts: l.tts.map(stats),
            asr: l.asr.map(stats),
        }),
    };
    CallRecord {
        summary,
        recording,
        content,
    }
    .normalised()
}

// ---------------------------------------------------------------------------------------------------------
// The input format: one struct per object of get-call's `data`, each refusing keys it does not know, and one
// type per kind of value, each checking its own rule as it is read (so its failure carries its path).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CallIn {
    id: Option<CallIdIn>,
    assistant_id: Option<Id>,
    assistant: Option<Object<NamedIn>>,
    phone_number_id: Option<Id>,
    phone_number: Option<Object<PhoneNumberIn>>,
    campaign_id: Option<Id>,
    campaign: Option<Object<NamedIn>>,
    direction: Direction,
    from: Option<Phone>,
    to: Option<Phone>,
    status: CallStatus,
    end_reason: Option<Text<MAX_NAME_CHARS>>,
    answered_by: Option<AnsweredBy>,
    is_success: Option<bool>,
    evaluation: Option<Object<EvaluationIn>>,
    summary: Option<Text<MAX_SUMMARY_CHARS>>,
    start_time: Option<Instant>,
    end_time: Option<Instant>,
    duration: Option<Seconds>,
    created_at: Instant,
    cost: Option<Money>,
    currency: Option<Currency>,
    cost_breakdown: Option<Breakdown>,
    call_metadata: Option<Metadata>,
    telephony: Option<Object<TelephonyIn>>,
    opt_out_sensitive_data_storage: Option<bool>,
    messages: Option<Vec<Object<MessageIn>>>,
    latency: Option<Object<LatencyIn>>,
    events: Option<Vec<Object<EventIn>>>,
    recording_status: Option<RecordingStatus>,
    recording_format: Option<RecordingFormat>,
    recording_duration: Option<Seconds>,
    // Derived by the server; accepted so that what GET serves can be sent back, and ignored.
    #[serde(rename = "updatedAt")]
    _updated_at: Option<IgnoredAny>,
    #[serde(rename = "messagesCount")]
    _messages_count: Option<IgnoredAny>,
    #[serde(rename = "transcript")]
    _transcript: Option<IgnoredAny>,
    #[serde(rename = "recordingUrl")]
    _recording_url: Option<IgnoredAny>,
    #[serde(rename = "recordingUrlExpiresAt")]
    _recording_url_expires_at: Option<IgnoredAny>,
    #[serde(rename = "recordingExpiresAt")]
    _recording_expires_at: Option<IgnoredAny>,
    #[serde(rename = "recordingFailureReason")]
    _recording_failure_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedIn {
    id: Id,
    name: Text<MAX_NAME_CHARS>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneNumberIn {
    id: Id,
    number: Phone,
    name: Option<Text<MAX_NAME_CHARS>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationIn {
    sentiment: Option<Text<MAX_LABEL_CHARS>>,
    outcome: Option<Text<MAX_NAME_CHARS>>,
    score: Option<Score>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CostItemIn {
    product: Text<MAX_LABEL_CHARS>,
    quantity: Money,
    unit: Text<32>,
    unit_price: Money,
    amount: Money,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TelephonyIn {
    provider: Option<Text<MAX_LABEL_CHARS>>,
    call_sid: Option<Id>,
    conference_sid: Option<Id>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MessageIn {
    id: Id,
    role: Role,
    content: Text<MAX_CONTENT_CHARS>,
    timestamp: Instant,
    duration: Option<Seconds>,
    interrupted: Option<bool>,
    start_offset: Option<Seconds>,
    end_offset: Option<Seconds>,
    words: Option<Vec<Object<WordIn>>>,
    tool_info: Option<Object<ToolInfoIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WordIn {
    word: Text<MAX_NAME_CHARS>,
    start: Seconds,
    end: Seconds,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolInfoIn {
    name: Text<MAX_NAME_CHARS>,
    #[serde(default)]
    arguments: Value,
    #[serde(default)]
    result: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    timestamp: Instant,
    #[serde(rename = "type")]
    kind: Text<MAX_LABEL_CHARS>,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyIn {
    e2e: Option<Object<StatsIn>>,
    llm: Option<Object<StatsIn>>,
    tts: Option<Object<StatsIn>>,
    asr: Option<Object<StatsIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsIn {
    min: Millis,
    max: Millis,
    p50: Millis,
    p90: Millis,
    p95: Millis,
    p99: Millis,
    num: u32,
}

/// One object of the format. Only a JSON object: serde would also read a struct from an array of its fields
/// in order, which this format does not allow.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

/// A JSON string, read through `check`, which turns it into the value or says what is wrong with it.
fn checked_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(String) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Str(&'static str);
    impl Visitor<'_> for Str {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
    }
    let s = d.deserialize_string(Str(expecting))?;
    check(s).map_err(de::Error::custom)
}

/// The call's own id, by [`CallId`]'s rules.
struct CallIdIn(CallId);

impl<'de> Deserialize<'de> for CallIdIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a call id (a string)", |s| {
            CallId::parse(&s).map(CallIdIn).map_err(|e| match e {
                ApiError::InvalidParameter { reason, .. } => reason,
                other => other.to_string(),
            })
        })
    }
}

/// The id of something a call refers to: 1 to 128 characters.
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an id (a string)", |s| {
            if s.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                bounded(&s, crate::ids::MAX_ID_LEN).map(|()| Id(s))
            }
        })
    }
}

/// A string of at most `MAX` characters.
struct Text<const MAX: usize>(String);

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a string", |s| bounded(&s, MAX).map(|()| Text(s)))
    }
}

fn bounded(s: &str, max: usize) -> Result<(), String> {
    // A character is at most 4 bytes, so most strings are known short without counting.
    if s.len() > max && s.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

/// A phone number, stored in its E.164 form.
struct Phone(String);

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an E.164 phone number (a string)", |s| {
            crate::phone::e164(&s)
                .map(Phone)
                .ok_or_else(|| "must be an E.164 number: + and 7 to 15 digits, e.g. +14155550100".to_owned())
        })
    }
}

/// An RFC 3339 instant. Its range depends on the clock, so it is checked after reading ([`time_faults`]).
struct Instant(DateTime<Utc>);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an RFC 3339 timestamp (a string)", |s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| Instant(t.with_timezone(&Utc)))
                .map_err(|_| "must be an RFC 3339 timestamp, e.g. 2025-01-15T10:30:00Z".to_owned())
        })
    }
}

/// An exact, non-negative money amount, sent as a decimal string.
struct Money(Decimal);

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a decimal string such as \"0.45\"", |s| {
            if s.starts_with('-') {
                return Err("must not be negative".to_owned());
            }
            let (whole, fraction) = match s.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (s.as_str(), None),
            };
            let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            if !digits(whole) || !fraction.is_none_or(digits) {
                return Err("must be a decimal string of digits with an optional fraction, e.g. \"0.45\"".to_owned());
            }
            if whole.len() > MAX_MONEY_DIGITS {
                return Err(format!("must be below 10^{MAX_MONEY_DIGITS}"));
            }
            if fraction.is_some_and(|f| f.len() > MAX_MONEY_SCALE) {
                return Err(format!("must have at most {MAX_MONEY_SCALE} decimal places"));
            }
            // At most 22 digits: always within Decimal's 28.
            Decimal::from_str(&s).map(Money).map_err(|e| e.to_string())
        })
    }
}

/// An ISO 4217 currency code.
struct Currency(String);

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(
            d,
            "an ISO 4217 currency code (a string)",
            |s| match iso_currency::Currency::from_code(&s) {
                Some(c) if !c.is_special() => Ok(Currency(s)),
                Some(_) => {
                    Err("must be the currency of a payment, not a metal, unit of account or test code".to_owned())
                }
                None => Err("must be an ISO 4217 currency code, e.g. USD".to_owned()),
            },
        )
    }
}

/// One of the recording formats the API stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFormat {
    Wav,
    Mp3,
    M4a,
    Ogg,
    Webm,
}

impl RecordingFormat {
    /// The media type an upload of this format is sent with (and bound to).
    pub fn content_type(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "audio/wav",
            RecordingFormat::Mp3 => "audio/mpeg",
            RecordingFormat::M4a => "audio/mp4",
            RecordingFormat::Ogg => "audio/ogg",
            RecordingFormat::Webm => "audio/webm",
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RecordingFormat::Wav => "wav",
            RecordingFormat::Mp3 => "mp3",
            RecordingFormat::M4a => "m4a",
            RecordingFormat::Ogg => "ogg",
            RecordingFormat::Webm => "webm",
        }
    }
}

/// `costBreakdown`: at most [`MAX_COST_LINES`] lines, since it is stored in the summary item.
struct Breakdown(Vec<Object<CostItemIn>>);

impl<'de> Deserialize<'de> for Breakdown {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<Object<CostItemIn>>::deserialize(d)?;
        if lines.len() > MAX_COST_LINES {
            return Err(de::Error::custom(format!("must have at most {MAX_COST_LINES} lines")));
        }
        Ok(Breakdown(lines))
    }
}

/// `callMetadata`: free-form, but at most [`MAX_METADATA_BYTES`] as compact JSON, and storable as DynamoDB
/// attributes ([`metadata_faults`]).
struct Metadata(BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Value>::deserialize(d)?;
        let size = serde_json::to_vec(&map).map_err(de::Error::custom)?.len();
        if size > MAX_METADATA_BYTES {
            return Err(de::Error::custom(format!(
                "must be at most {MAX_METADATA_BYTES} bytes as JSON (is {size})"
            )));
        }
        Ok(Metadata(map))
    }
}

/// A non-negative JSON number of at most `max` and [`MAX_FIGURE_DECIMALS`] decimal places.
fn figure<'de, D: Deserializer<'de>>(d: D, max: f64, expecting: &'static str) -> Result<f64, D::Error> {
    struct Figure {
        max: f64,
        expecting: &'static str,
    }
    impl Figure {
        fn check<E: de::Error>(&self, v: f64) -> Result<f64, E> {
            if !v.is_finite() {
                return Err(E::custom("must be a finite number"));
            }
            if v < 0.0 {
                return Err(E::custom("must not be negative"));
            }
            if v > self.max {
                return Err(E::custom(format!("must be at most {}", self.max)));
            }
            // Rust prints the shortest text that reads back as `v`, never in exponent form.
            let decimals = v.to_string().split_once('.').map_or(0, |(_, f)| f.len());
            if decimals > MAX_FIGURE_DECIMALS {
                return Err(E::custom(format!(
                    "must have at most {MAX_FIGURE_DECIMALS} decimal places"
                )));
            }
            // -0 becomes 0.
            Ok(v + 0.0)
        }
    }
    impl Visitor<'_> for Figure {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            self.check(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            self.check(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            self.check(v)
        }
    }
    d.deserialize_f64(Figure { max, expecting })
}

/// Seconds: a duration, an offset from the start of the call, a word's time.
struct Seconds(f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        figure(d, MAX_FIGURE, "a number of seconds").map(Seconds)
    }
}

/// Milliseconds of a latency figure.
struct Millis(f64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        figure(d, MAX_FIGURE, "a number of milliseconds").map(Millis)
    }
}

/// An evaluation score.
struct Score(f64);

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        figure(d, MAX_SCORE, "a number").map(Score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{self as rec, Retention};
    use crate::view::CallDetail;
    use serde_json::json;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The clock of these tests: the morning after seed 000's call.
    fn now() -> DateTime<Utc> {
        at("2025-01-16T00:00:00Z")
    }

    /// Seed 000's example `data`, shortened to three messages (one of each kind it has).
    fn seed() -> Value {
        json!({
            "id": "call_123", "assistantId": "asst_456", "phoneNumberId": "phone_789",
            "direction": "inbound", "status": "completed",
            "startTime": "2025-01-15T10:30:00Z", "endTime": "2025-01-15T10:35:30Z", "duration": 330,
            "endReason": "user_hangup", "cost": "0.45", "from": "+905559876543", "to": "+905551234567",
            "messagesCount": 6,
            "recordingUrl": "https://bucket.example/recordings/2025/01/15/user_123/call_123.m4a?X-Amz-Algorithm=AWS4",
            "recordingStatus": "completed", "recordingDuration": 330, "recordingFormat": "m4a",
            "isSuccess": true, "createdAt": "2025-01-15T10:30:00Z",
            "callMetadata": {"customerName": "Ahmet Yılmaz", "ticketId": "TKT-001"},
            "assistant": {"id": "asst_456", "name": "Müşteri Destek Asistanı"},
            "phoneNumber": {"id": "phone_789", "number": "+905551234567", "name": "Ana Hat"},
            "messages": [
                {"id": "msg_001", "role": "assistant", "content": "Merhaba! Size nasıl yardımcı olabilirim?",
                 "timestamp": "2025-01-15T10:30:05Z", "duration": 4.2, "interrupted": false},
                {"id": "msg_002", "role": "user", "content": "Sipariş durumumu öğrenmek istiyorum.",
                 "timestamp": "2025-01-15T10:30:10Z", "duration": 3.8, "interrupted": false},
                {"id": "msg_003", "role": "tool", "content": "check_order_status fonksiyonu çağrıldı",
                 "timestamp": "2025-01-15T10:30:15Z",
                 "toolInfo": {"name": "check_order_status", "arguments": {"customerId": "cust_789"},
                              "result": {"orderId": "ORD-12345", "status": "shipped"}}}
            ]
        })
    }

    /// Seed 000's call with every other field of get-call filled in.
    fn full() -> Value {
        let mut v = seed();
        let extra = json!({
            "campaignId": "camp_q4", "campaign": {"id": "camp_q4", "name": "Q4 Outreach"},
            "answeredBy": "human", "evaluation": {"sentiment": "positive", "outcome": "resolved", "score": 8.5},
            "summary": "The customer asked about an order.", "updatedAt": "2025-01-15T10:36:00Z",
            "currency": "TRY",
            "costBreakdown": [
                {"product": "inbound_call", "quantity": "6", "unit": "minute", "unitPrice": "0.05", "amount": "0.30"},
                {"product": "llm_usage", "quantity": "1500", "unit": "token", "unitPrice": "0.0001", "amount": "0.15"}
            ],
            "telephony": {"provider": "twilio", "callSid": "CA0123", "conferenceSid": null},
            "optOutSensitiveDataStorage": false,
            "latency": {
                "e2e": {"min": 400, "max": 1500, "p50": 780.5, "p90": 1100, "p95": 1200, "p99": 1450, "num": 12},
                "llm": null, "tts": null,
                "asr": {"min": 80, "max": 200, "p50": 120, "p90": 150, "p95": 170, "p99": 190, "num": 12}
            },
            "events": [
                {"timestamp": "2025-01-15T10:30:00Z", "type": "call.created", "data": {}},
                {"timestamp": "2025-01-15T10:35:30Z", "type": "call.ended", "data": {"by": "user"}}
            ],
            "transcript": "Assistant: Merhaba!", "recordingExpiresAt": "2025-02-14T10:35:30Z",
            "recordingUrlExpiresAt": "2025-01-15T12:00:00Z"
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v["messages"][0]["startOffset"] = json!(5.0);
        v["messages"][0]["endOffset"] = json!(9.2);
        v["messages"][0]["words"] = json!([
            {"word": "Merhaba!", "start": 5.0, "end": 5.6},
            {"word": "Size", "start": 5.7, "end": 5.95}
        ]);
        v
    }

    fn read(value: &Value) -> Result<CallRecord, ApiError> {
        call(&acme(), value, None, now())
    }

    /// `value` with the value at JSON pointer `at` set to `to` (a missing last key is added).
    fn with(value: &Value, at: &str, to: Value) -> Value {
        let mut v = value.clone();
        let (parent, last) = at.rsplit_once('/').unwrap();
        match v.pointer_mut(parent).unwrap() {
            Value::Object(map) => {
                map.insert(last.to_owned(), to);
            }
            Value::Array(items) => items[last.parse::<usize>().unwrap()] = to,
            other => panic!("{parent} is {other}"),
        }
        v
    }

    /// `value` without the key at JSON pointer `at`.
    fn without(value: &Value, at: &str) -> Value {
        let mut v = value.clone();
        let (parent, last) = at.rsplit_once('/').unwrap();
        v.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(last)
            .unwrap();
        v
    }

    /// The field and reason of the failure `value` is refused with.
    fn refused(value: &Value) -> (String, String) {
        match read(value) {
            Err(ApiError::InvalidParameter { field, reason }) => (field, reason),
            Err(other) => panic!("not a bad parameter: {other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    /// Asserts that setting each pointer of `cases` to its value is refused naming `field`.
    fn assert_refused_at(cases: &[(&str, Value, &str)]) {
        for (pointer, to, field) in cases {
            let (got, reason) = refused(&with(&full(), pointer, to.clone()));
            assert_eq!(&got, field, "{pointer} = {to}: {reason}");
        }
    }

    fn assert_accepted(cases: &[(&str, Value)]) {
        for (pointer, to) in cases {
            if let Err(e) = read(&with(&full(), pointer, to.clone())) {
                panic!("{pointer} = {to}: {e}");
            }
        }
    }

    #[test]
    fn a_seed_000_call_reads_as_its_fields_say_and_is_stamped_with_now() {
        let new = read(&seed()).unwrap();
        assert_eq!(new.summary.updated_at, Some(now()));
        let mut summary: crate::model::CallSummary = serde_json::from_value(seed()).unwrap();
        summary.updated_at = Some(now());
        summary.messages_count = new.summary.messages_count;
        assert_eq!(new.summary, summary, "every summary field as sent");
        let content: crate::model::CallContent = serde_json::from_value(seed()).unwrap();
        assert_eq!(new.content, content, "every content field as sent");
        let recording = new.recording.unwrap();
        assert_eq!(recording.status, crate::model::RecordingStatus::Completed);
        assert_eq!(
            recording.key.as_deref(),
            Some("recordings/acme/2025/01/15/call_123.m4a")
        );
        assert_eq!(new.summary.messages_count, 3, "derived, not the 6 sent");
    }

    #[test]
    fn what_get_call_serves_reads_back_to_the_same_call() {
        let first = read(&full()).unwrap();
        let state = rec::state(&first.summary, first.recording.as_ref(), Retention::days(30), now());
        let served = serde_json::to_value(CallDetail::new(first.clone(), state, None).unwrap()).unwrap();
        assert!(served["transcript"].is_string() && served["recordingExpiresAt"].is_string());
        assert_eq!(read(&served).unwrap(), first);

        // An opted-out call is served with `messages: null`; that reads back too.
        let opted = read(&with(&full(), "/optOutSensitiveDataStorage", json!(true))).unwrap();
        let state = rec::state(&opted.summary, opted.recording.as_ref(), Retention::days(30), now());
        let served = serde_json::to_value(CallDetail::new(opted.clone(), state, None).unwrap()).unwrap();
        assert_eq!(served["messages"], Value::Null);
        assert_eq!(read(&served).unwrap(), opted);
    }

    #[test]
    fn derived_fields_are_accepted_whatever_they_hold_and_ignored() {
        let mut v = full();
        v["messagesCount"] = json!(999);
        v["transcript"] = json!(["not", "text"]);
        v["recordingUrl"] = json!(5);
        v["recordingUrlExpiresAt"] = json!("whenever");
        v["recordingExpiresAt"] = json!({});
        v["updatedAt"] = json!("+10000-01-01T00:00:00Z");
        let call = read(&v).unwrap();
        assert_eq!(call.summary.messages_count, 3);
        assert_eq!(call.summary.updated_at, Some(now()));
        assert_eq!(call, read(&full()).unwrap());
    }

    #[test]
    fn unknown_fields_are_refused_at_any_level_and_free_form_ones_take_anything() {
        assert_refused_at(&[
            ("/colour", json!(1), "colour"),
            ("/a b", json!(1), "[\"a b\"]"),
            ("/assistant/colour", json!(1), "assistant.colour"),
            ("/campaign/colour", json!(1), "campaign.colour"),
            ("/phoneNumber/colour", json!(1), "phoneNumber.colour"),
            ("/evaluation/colour", json!(1), "evaluation.colour"),
            ("/costBreakdown/1/colour", json!(1), "costBreakdown[1].colour"),
            ("/telephony/colour", json!(1), "telephony.colour"),
            ("/messages/1/colour", json!(1), "messages[1].colour"),
            ("/messages/0/words/1/colour", json!(1), "messages[0].words[1].colour"),
            ("/messages/2/toolInfo/colour", json!(1), "messages[2].toolInfo.colour"),
            ("/latency/colour", json!(1), "latency.colour"),
            ("/latency/e2e/colour", json!(1), "latency.e2e.colour"),
            ("/events/1/colour", json!(1), "events[1].colour"),
            // Seed 001's name for the call's metadata is not an alias here: one name per field.
            ("/variables", json!({}), "variables"),
        ]);
        assert_eq!(
            refused(&with(&full(), "/colour", json!(1))).1,
            "is not a field of this object"
        );
        assert_accepted(&[
            ("/callMetadata/colour", json!({"any": ["thing", 1, null]})),
            ("/messages/2/toolInfo/arguments/colour", json!([1, 2])),
            ("/messages/2/toolInfo/result", json!("just text")),
            ("/events/0/data/colour", json!(null)),
        ]);
    }

    #[test]
    fn objects_are_json_objects_never_arrays_of_their_fields() {
        assert_refused_at(&[
            ("/assistant", json!(["asst_456", "Support"]), "assistant"),
            (
                "/messages/0",
                json!(["m1", "user", "Hi", "2025-01-15T10:30:05Z"]),
                "messages[0]",
            ),
            ("/messages/0/words/0", json!(["Hi", 0.5, 0.9]), "messages[0].words[0]"),
            ("/latency/e2e", json!([1, 2, 3, 4, 5, 6, 7]), "latency.e2e"),
            ("/costBreakdown/0", json!(3), "costBreakdown[0]"),
        ]);
        let positional = json!(["c1", null, null, null, null, null, null, "web", null, null, "queued"]);
        assert_eq!(
            refused(&positional),
            (".".to_owned(), "invalid type: sequence, expected an object".to_owned())
        );
    }

    #[test]
    fn the_call_id_follows_the_id_rules_and_the_route() {
        let id = CallId::parse("call_123").unwrap();
        let other = CallId::parse("call_999").unwrap();
        let no_id = without(&full(), "/id");
        let field = |r: Result<CallRecord, ApiError>| r.unwrap_err().field().map(str::to_owned);

        assert_eq!(refused(&no_id), ("id".to_owned(), "is required".to_owned()));
        let named = call(&acme(), &no_id, Some(&id), now()).unwrap();
        assert_eq!(named.summary.id, "call_123");
        assert_eq!(named, read(&full()).unwrap());
        assert!(call(&acme(), &full(), Some(&id), now()).is_ok());
        assert_eq!(
            field(call(&acme(), &full(), Some(&other), now())).as_deref(),
            Some("id")
        );
        assert_refused_at(&[
            ("/id", json!(""), "id"),
            ("/id", json!("a/b"), "id"),
            ("/id", json!("a".repeat(129)), "id"),
            ("/id", json!(123), "id"),
            ("/id", json!(null), "id"),
        ]);
        assert_accepted(&[("/id", json!("a".repeat(128))), ("/id", json!("retell:abc-1.2"))]);
    }

    #[test]
    fn required_fields_are_named_where_they_are_missing() {
        for (pointer, field) in [
            ("/direction", "direction"),
            ("/status", "status"),
            ("/createdAt", "createdAt"),
            ("/messages/1/role", "messages[1].role"),
            ("/messages/2/timestamp", "messages[2].timestamp"),
            ("/messages/0/words/1/end", "messages[0].words[1].end"),
            ("/messages/2/toolInfo/name", "messages[2].toolInfo.name"),
            ("/costBreakdown/0/amount", "costBreakdown[0].amount"),
            ("/latency/e2e/num", "latency.e2e.num"),
            ("/events/1/type", "events[1].type"),
            ("/phoneNumber/number", "phoneNumber.number"),
            ("/assistant/name", "assistant.name"),
        ] {
            assert_eq!(
                refused(&without(&full(), pointer)),
                (field.to_owned(), "is required".to_owned())
            );
        }
        // Everything else may be left out, or be null.
        let minimal = json!({"id": "c1", "direction": "web", "status": "queued", "createdAt": "2025-01-15T10:30:00Z"});
        let call = read(&minimal).unwrap();
        assert!(call.recording.is_none() && call.content.messages.is_empty());
        let mut nulls = minimal.clone();
        for k in [
            "messages",
            "events",
            "costBreakdown",
            "callMetadata",
            "latency",
            "cost",
            "from",
            "recordingStatus",
        ] {
            nulls[k] = Value::Null;
        }
        assert_eq!(read(&nulls).unwrap(), call);
    }

    #[test]
    fn enums_take_the_api_values_and_seed_001_statuses() {
        for (sent, status) in [
            ("ended_by_customer", CallStatus::Completed),
            ("ended", CallStatus::Completed),
            ("initiated", CallStatus::Queued),
            ("no-answer", CallStatus::NoAnswer),
        ] {
            assert_eq!(
                read(&with(&full(), "/status", json!(sent))).unwrap().summary.status,
                status
            );
        }
        assert_refused_at(&[
            ("/status", json!("done"), "status"),
            ("/status", json!("Completed"), "status"),
            ("/direction", json!("sideways"), "direction"),
            ("/answeredBy", json!("robot"), "answeredBy"),
            ("/messages/1/role", json!("bot"), "messages[1].role"),
            ("/recordingStatus", json!("lost"), "recordingStatus"),
            ("/recordingFormat", json!("flac"), "recordingFormat"),
            ("/recordingFormat", json!("WAV"), "recordingFormat"),
            ("/recordingFormat", json!("../../x"), "recordingFormat"),
        ]);
        for format in ["wav", "mp3", "m4a", "ogg", "webm"] {
            let call = read(&with(&full(), "/recordingFormat", json!(format))).unwrap();
            let key = call.recording.unwrap().key.unwrap();
            assert_eq!(key, format!("recordings/acme/2025/01/15/call_123.{format}"));
        }
    }

    #[test]
    fn phone_numbers_are_stored_in_e164_and_anything_else_is_refused() {
        let mut v = full();
        v["from"] = json!("+1 (415) 555-0100");
        v["to"] = json!("0014155550101");
        v["phoneNumber"]["number"] = json!("tel:+90 555 123 45 67");
        let s = read(&v).unwrap().summary;
        assert_eq!(s.from.as_deref(), Some("+14155550100"));
        assert_eq!(s.to.as_deref(), Some("+14155550101"));
        assert_eq!(s.phone_number.unwrap().number, "+905551234567");
        assert_refused_at(&[
            ("/from", json!("4155550100"), "from"),
            ("/to", json!("call me"), "to"),
            ("/to", json!(""), "to"),
            ("/phoneNumber/number", json!("+12"), "phoneNumber.number"),
            ("/from", json!(14155550100u64), "from"),
        ]);
    }

    #[test]
    fn timestamps_run_from_1970_to_a_day_from_now_to_the_second() {
        let limit = "2025-01-17T00:00:00Z";
        let past = "2025-01-17T00:00:01Z";
        let mut at_limit = full();
        at_limit["createdAt"] = json!(limit);
        at_limit["endTime"] = json!(limit);
        at_limit["messages"][1]["timestamp"] = json!(limit);
        at_limit["events"][1]["timestamp"] = json!(limit);
        assert!(read(&at_limit).is_ok());
        assert_accepted(&[
            ("/createdAt", json!("1970-01-01T00:00:00Z")),
            ("/events/0/timestamp", json!("1970-01-01T00:00:00Z")),
            ("/endTime", json!("2025-01-16T23:00:00-01:00")),
        ]);
        assert_refused_at(&[
            ("/createdAt", json!(past), "createdAt"),
            ("/startTime", json!(past), "startTime"),
            ("/endTime", json!(past), "endTime"),
            ("/messages/1/timestamp", json!(past), "messages[1].timestamp"),
            ("/events/1/timestamp", json!(past), "events[1].timestamp"),
            ("/createdAt", json!("1969-12-31T23:59:59Z"), "createdAt"),
            ("/createdAt", json!("+10000-01-01T00:00:00Z"), "createdAt"),
            ("/startTime", json!("-0001-01-01T00:00:00Z"), "startTime"),
            ("/startTime", json!("9999-12-31T23:59:59Z"), "startTime"),
            ("/endTime", json!("2025-02-30T00:00:00Z"), "endTime"),
            ("/endTime", json!("2025-01-15"), "endTime"),
            ("/messages/0/timestamp", json!(1736937000), "messages[0].timestamp"),
            ("/messages/0/timestamp", json!("1736937000"), "messages[0].timestamp"),
            (
                "/events/0/timestamp",
                json!("2025-01-15T10:30:00+99:00"),
                "events[0].timestamp",
            ),
        ]);
        let stored = read(&with(&full(), "/endTime", json!("2025-01-15T13:35:30+03:00"))).unwrap();
        assert_eq!(stored.summary.end_time, Some(at("2025-01-15T10:35:30Z")));
        let (_, reason) = refused(&with(&full(), "/createdAt", json!(past)));
        assert_eq!(reason, "must not be after 2025-01-17T00:00:00Z (now + 1 day)");
    }

    #[test]
    fn any_clock_is_safe_even_at_the_ends_of_time() {
        for now in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC, DateTime::UNIX_EPOCH] {
            let result = call(&acme(), &full(), None, now);
            assert_eq!(result.is_ok(), now == DateTime::<Utc>::MAX_UTC, "{now}");
        }
    }

    #[test]
    fn end_time_may_not_precede_start_time_but_may_precede_created_at() {
        assert_refused_at(&[("/endTime", json!("2025-01-15T10:29:59Z"), "endTime")]);
        assert_eq!(
            refused(&with(&full(), "/endTime", json!("2025-01-15T10:29:59Z"))).1,
            "must not be before startTime"
        );
        let mut v = full();
        v["createdAt"] = json!("2025-01-15T11:00:00Z");
        v["endTime"] = json!("2025-01-15T10:30:00Z");
        assert!(read(&v).is_ok(), "a platform may create its record after the call");
    }

    #[test]
    fn figures_are_finite_non_negative_bounded_and_of_bounded_precision() {
        assert_refused_at(&[
            ("/duration", json!(-1), "duration"),
            ("/duration", json!(-0.5), "duration"),
            ("/duration", json!(10_000_000.5), "duration"),
            ("/duration", json!(1e308), "duration"),
            ("/duration", json!(u64::MAX), "duration"),
            ("/duration", json!(i64::MIN), "duration"),
            ("/duration", json!(0.1234567), "duration"),
            ("/duration", json!("330"), "duration"),
            ("/recordingDuration", json!(-1), "recordingDuration"),
            ("/messages/1/duration", json!(-3.8), "messages[1].duration"),
            ("/messages/0/startOffset", json!(-1), "messages[0].startOffset"),
            ("/messages/0/endOffset", json!(true), "messages[0].endOffset"),
            ("/messages/0/words/1/end", json!(-0.25), "messages[0].words[1].end"),
            ("/messages/0/words/0/start", json!(1e-7), "messages[0].words[0].start"),
            ("/latency/e2e/p99", json!(10_000_001), "latency.e2e.p99"),
            ("/latency/asr/min", json!(-1), "latency.asr.min"),
            ("/latency/e2e/num", json!(-1), "latency.e2e.num"),
            ("/latency/e2e/num", json!(4_294_967_296u64), "latency.e2e.num"),
            ("/latency/e2e/num", json!(1.5), "latency.e2e.num"),
            ("/evaluation/score", json!(100.5), "evaluation.score"),
            ("/evaluation/score", json!(-0.1), "evaluation.score"),
        ]);
        assert_accepted(&[
            ("/duration", json!(10_000_000)),
            ("/duration", json!(0.123456)),
            ("/duration", json!(0)),
            ("/evaluation/score", json!(100)),
            ("/latency/e2e/num", json!(u32::MAX)),
        ]);
        let zero = read(&with(&full(), "/duration", json!(-0.0))).unwrap();
        assert!(zero.summary.duration.unwrap().is_sign_positive(), "-0 is stored as 0");
    }

    #[test]
    fn money_is_an_exact_non_negative_decimal_string_of_bounded_scale() {
        let cost = |s: &str| read(&with(&full(), "/cost", json!(s))).map(|c| c.summary.cost.unwrap());
        assert_eq!(cost("0.45").unwrap().to_string(), "0.45");
        assert_eq!(
            cost("0.4500000000").unwrap().to_string(),
            "0.4500000000",
            "the scale is kept"
        );
        assert_eq!(
            cost("999999999999.9999999999").unwrap().to_string(),
            "999999999999.9999999999"
        );
        assert_refused_at(&[
            ("/cost", json!(0.45), "cost"),
            ("/cost", json!(1), "cost"),
            ("/cost", json!("-0.45"), "cost"),
            ("/cost", json!("+0.45"), "cost"),
            ("/cost", json!("1e3"), "cost"),
            ("/cost", json!("1_000"), "cost"),
            ("/cost", json!("1,5"), "cost"),
            ("/cost", json!(" 1"), "cost"),
            ("/cost", json!("1."), "cost"),
            ("/cost", json!(".5"), "cost"),
            ("/cost", json!(""), "cost"),
            ("/cost", json!("NaN"), "cost"),
            ("/cost", json!("0.12345678901"), "cost"),
            ("/cost", json!("1000000000000"), "cost"),
            ("/costBreakdown/1/amount", json!("-0.15"), "costBreakdown[1].amount"),
            ("/costBreakdown/0/quantity", json!(6), "costBreakdown[0].quantity"),
            (
                "/costBreakdown/1/unitPrice",
                json!("0.00000000001"),
                "costBreakdown[1].unitPrice",
            ),
        ]);
    }

    #[test]
    fn currency_is_an_iso_4217_code_of_money() {
        assert_accepted(&[
            ("/currency", json!("USD")),
            ("/currency", json!("EUR")),
            ("/currency", json!(null)),
        ]);
        assert_refused_at(&[
            ("/currency", json!("try"), "currency"),
            ("/currency", json!("TL"), "currency"),
            ("/currency", json!("ZZZ"), "currency"),
            ("/currency", json!("XXX"), "currency"),
            ("/currency", json!("XAU"), "currency"),
            ("/currency", json!(""), "currency"),
            ("/currency", json!(949), "currency"),
        ]);
    }

    #[test]
    fn strings_are_bounded_in_characters() {
        let long = |n: usize| json!("a".repeat(n));
        assert_accepted(&[
            ("/assistantId", long(128)),
            ("/messages/0/content", long(MAX_CONTENT_CHARS)),
            // Two bytes a character: the bound is in characters, not bytes.
            ("/messages/0/content", json!("ş".repeat(MAX_CONTENT_CHARS))),
            ("/summary", long(10_000)),
            ("/messages/0/content", json!("")),
        ]);
        assert_refused_at(&[
            ("/assistantId", long(129), "assistantId"),
            ("/assistantId", json!(""), "assistantId"),
            ("/phoneNumberId", long(129), "phoneNumberId"),
            ("/campaignId", long(129), "campaignId"),
            ("/assistant/id", long(129), "assistant.id"),
            ("/campaign/id", long(129), "campaign.id"),
            ("/phoneNumber/id", long(129), "phoneNumber.id"),
            ("/messages/1/id", long(129), "messages[1].id"),
            ("/telephony/callSid", long(129), "telephony.callSid"),
            ("/telephony/conferenceSid", long(129), "telephony.conferenceSid"),
            (
                "/messages/0/content",
                long(MAX_CONTENT_CHARS + 1),
                "messages[0].content",
            ),
            (
                "/messages/0/content",
                json!("ş".repeat(MAX_CONTENT_CHARS + 1)),
                "messages[0].content",
            ),
            ("/summary", long(10_001), "summary"),
            ("/endReason", long(257), "endReason"),
            ("/assistant/name", long(257), "assistant.name"),
            ("/phoneNumber/name", long(257), "phoneNumber.name"),
            ("/evaluation/outcome", long(257), "evaluation.outcome"),
            ("/evaluation/sentiment", long(129), "evaluation.sentiment"),
            ("/telephony/provider", long(129), "telephony.provider"),
            ("/messages/0/words/0/word", long(257), "messages[0].words[0].word"),
            ("/messages/2/toolInfo/name", long(257), "messages[2].toolInfo.name"),
            ("/events/0/type", long(129), "events[0].type"),
            ("/costBreakdown/0/product", long(129), "costBreakdown[0].product"),
            ("/costBreakdown/0/unit", long(33), "costBreakdown[0].unit"),
            ("/endReason", json!(42), "endReason"),
        ]);
        let (_, reason) = refused(&with(&full(), "/messages/0/content", long(MAX_CONTENT_CHARS + 1)));
        assert_eq!(reason, "must be at most 100000 characters");
    }

    #[test]
    fn call_metadata_is_an_object_of_at_most_16_kib() {
        // `{"k":"…"}` is 8 bytes around the text.
        let sized = |n: usize| json!({"k": "x".repeat(n - 8)});
        assert_accepted(&[("/callMetadata", sized(MAX_METADATA_BYTES))]);
        assert_refused_at(&[
            ("/callMetadata", sized(MAX_METADATA_BYTES + 1), "callMetadata"),
            ("/callMetadata", json!(["a"]), "callMetadata"),
            ("/callMetadata", json!("text"), "callMetadata"),
            ("/callMetadata", json!({"": 1}), "callMetadata[\"\"]"),
            (
                "/callMetadata",
                json!({"a": [{"b": {"": true}}]}),
                "callMetadata.a[0].b[\"\"]",
            ),
            ("/callMetadata", json!({"a": 1e126}), "callMetadata.a"),
            ("/callMetadata", json!({"a": [0, 1e-130]}), "callMetadata.a[1]"),
        ]);
        assert_accepted(&[(
            "/callMetadata",
            json!({"a": [0, -1798, 1e-30, 7.38e73, u64::MAX], "b": {"c": ""}}),
        )]);
    }

    #[test]
    fn the_cost_breakdown_has_at_most_100_lines() {
        let line = full()["costBreakdown"][0].clone();
        assert_accepted(&[("/costBreakdown", Value::Array(vec![line.clone(); MAX_COST_LINES]))]);
        assert_refused_at(&[(
            "/costBreakdown",
            Value::Array(vec![line; MAX_COST_LINES + 1]),
            "costBreakdown",
        )]);
    }

    #[test]
    fn the_first_failure_in_reading_order_is_the_one_reported() {
        // Keys are read in sorted order: `messages` before `startTime`, `events` before `messages`.
        let mut v = full();
        v["startTime"] = json!("yesterday");
        v["messages"][1]["timestamp"] = json!("today");
        v["messages"][2]["role"] = json!("bot");
        assert_eq!(refused(&v).0, "messages[1].timestamp");

        let mut clock = full();
        clock["messages"][2]["timestamp"] = json!("2030-01-01T00:00:00Z");
        clock["messages"][1]["timestamp"] = json!("2030-01-01T00:00:00Z");
        assert_eq!(refused(&clock).0, "messages[1].timestamp");
        clock["events"][1]["timestamp"] = json!("2030-01-01T00:00:00Z");
        assert_eq!(refused(&clock).0, "events[1].timestamp");
        clock["createdAt"] = json!("2030-01-01T00:00:00Z");
        assert_eq!(refused(&clock).0, "createdAt");

        // Rules about one value are checked as the call is read, before those about the clock or other fields.
        clock["summary"] = json!(1);
        assert_eq!(refused(&clock).0, "summary");

        // The same body in any key order gives the same error.
        let text = r#"{"status": "done", "id": "c", "direction": "up", "createdAt": "x"}"#;
        let reordered = r#"{"createdAt": "x", "direction": "up", "id": "c", "status": "done"}"#;
        let a = refused(&serde_json::from_str(text).unwrap());
        assert_eq!(a, refused(&serde_json::from_str(reordered).unwrap()));
        assert_eq!(a.0, "createdAt");
    }

    /// Every node of `value` as (JSON pointer, path as the API names it).
    fn nodes(value: &Value, pointer: String, path: Vec<Seg>, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let mut p = path.clone();
                    p.push(key(k));
                    out.push((format!("{pointer}/{k}"), render(&p)));
                    nodes(v, format!("{pointer}/{k}"), p, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(Seg::Index(i));
                    out.push((format!("{pointer}/{i}"), render(&p)));
                    nodes(v, format!("{pointer}/{i}"), p, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn nothing_panics_and_a_bad_value_anywhere_is_named_at_its_own_path() {
        let base = full();
        let mut all = Vec::new();
        nodes(&base, String::new(), Vec::new(), &mut all);
        let oddities = [
            Value::Null,
            json!(true),
            json!(-1),
            json!(1e308),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.1234567),
            json!(""),
            json!("a".repeat(300)),
            json!("+10000-01-01T00:00:00Z"),
            json!("-0001-12-31T23:59:59Z"),
            json!("2262-04-11T23:47:16.854775808Z"),
            json!([]),
            json!({}),
            json!([{}]),
            json!({"k": [1]}),
        ];
        let mut refusals = 0;
        for (pointer, path) in &all {
            for odd in &oddities {
                let v = with(&base, pointer, odd.clone());
                match read(&v) {
                    Ok(_) => {}
                    Err(ApiError::InvalidParameter { field, reason }) => {
                        refusals += 1;
                        let inside = field
                            .strip_prefix(path.as_str())
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['));
                        assert!(inside, "{pointer} = {odd}: refused at {field} ({reason})");
                        assert_eq!(read(&v).unwrap_err().field(), Some(field.as_str()), "deterministic");
                    }
                    Err(other) => panic!("{pointer} = {odd}: {other}"),
                }
            }
        }
        assert!(refusals > all.len() * 4, "{refusals} refusals over {} nodes", all.len());
    }

    #[test]
    fn seed_003_written_in_our_format_is_accepted_whole() {
        let value: Value = serde_json::from_str(include_str!("../../fixtures/seed-003-call.json")).unwrap();
        let now = at("2026-12-01T00:00:00Z");
        let call = call(&TenantId::parse("acme").unwrap(), &value, None, now).expect("seed 003 is accepted");
        assert_eq!(call.summary.id, "call-456");
        assert_eq!(
            call.summary.status,
            CallStatus::InProgress,
            "seed 003's call is ONGOING"
        );
        assert_eq!(call.summary.cost.map(|c| c.to_string()).as_deref(), Some("0.15"));
        assert_eq!(call.summary.currency.as_deref(), Some("USD"));
        assert_eq!(call.summary.cost_breakdown.len(), 2);
        assert!(call.summary.telephony.as_ref().is_some_and(|t| t.call_sid.is_some()));
        let messages = &call.content.messages;
        assert!(!messages.is_empty());
        let words = messages
            .iter()
            .find_map(|m| m.words.as_ref())
            .expect("word timings carried over");
        assert_eq!(
            (words[0].start, words[0].end),
            (35.0, 35.5),
            "seconds from the start of the call"
        );
        // Seed 003's transcript_with_tool_calls is empty: there is no tool turn to carry over.
        assert!(!messages.iter().any(|m| m.role == Role::Tool || m.tool_info.is_some()));
        let latency = call.content.latency.as_ref().expect("latency carried over");
        assert_eq!(latency.e2e.as_ref().map(|s| s.num), Some(15));
        assert_eq!(latency.llm.as_ref().map(|s| s.num), Some(8));
        assert_eq!(call.content.events.len(), 2);
    }
}
