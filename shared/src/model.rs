//! The call as the API speaks of it: what is stored, what is imported, and what get-call returns.
//!
//! Field names follow seed 000 (wespoke.ai): camelCase, `cost` as a decimal string, `callMetadata`.
//! The other platforms' fields are carried over in the same style (see `docs/API.md`).
//!
//! A call has two parts with different lives:
//! - [`CallSummary`]: identity, routing, outcome, time, money, recording. Small and bounded; stored as plain
//!   DynamoDB attributes so that indexes and filters can see them; what a list page returns.
//! - [`CallContent`]: messages (with word timings and tool calls), events, latency. Unbounded (a two-hour
//!   call with word timings runs to megabytes); stored compressed in chunks; only get-call reads it.
//!
//! How a call is stored is the store's business ([`crate::store::codec`]); calls enter it only through the
//! validated boundary ([`crate::validate`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Seconds as JSON numbers: a whole number of seconds is written as an integer (`330`, as seed 000 sends
/// it, so strictly typed clients keep working), anything else as a decimal (`4.2`).
pub mod seconds {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            s.serialize_i64(*value as i64)
        } else {
            s.serialize_f64(*value)
        }
    }

    pub fn option<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serialize(v, s),
            None => s.serialize_none(),
        }
    }
}

/// Lifecycle state of a call. Seed 001's `ended_by_customer` / `ended_by_assistant` / `ended` are accepted on
/// import and become `completed` (with the end reason kept in `endReason`); `initiated` becomes `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    #[serde(alias = "initiated")]
    Queued,
    Ringing,
    InProgress,
    #[serde(alias = "ended", alias = "ended_by_customer", alias = "ended_by_assistant")]
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    pub const ALL: [CallStatus; 8] = [
        CallStatus::Queued,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    /// Whether the call has ended: `completed`, `busy`, `no-answer`, `failed` or `canceled`.
    pub fn is_final(self) -> bool {
        !matches!(self, CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
    Web,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::Inbound, Direction::Outbound, Direction::Web];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Web => "web",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnsweredBy {
    Human,
    Machine,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    Tool,
    System,
}

/// A named thing a call refers to: its assistant or its campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

/// The platform's own number the call used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneNumberRef {
    pub id: String,
    pub number: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    #[serde(default)]
    pub sentiment: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub score: Option<f64>,
}

/// One line of the cost breakdown. Every amount is an exact decimal string, never a float.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostItem {
    pub product: String,
    pub quantity: Decimal,
    pub unit: String,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Telephony {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
    #[serde(default)]
    pub conference_sid: Option<String>,
}

/// Stored state of a call's recording. `expired` is also what the API reports once retention has passed,
/// whatever is stored (see [`crate::recording`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    None,
    Pending,
    Completed,
    Failed,
    Expired,
}

/// What the store knows about a call's recording. The object key is internal and never served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRecording {
    pub status: RecordingStatus,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default, serialize_with = "seconds::option")]
    pub duration: Option<f64>,
    /// S3 key under `recordings/`.
    #[serde(default)]
    pub key: Option<String>,
    /// When the recording was made; retention counts from here (the call's end when unknown).
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// Why the recording is `failed`: what the check of an upload found (shown as `recordingFailureReason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

impl StoredRecording {
    /// Waiting for its object: at `key`, in `format`, once they are known (an upload, a copy under way), or
    /// neither yet (a link queued for capture).
    pub fn pending(format: Option<&str>, key: Option<String>) -> Self {
        StoredRecording {
            status: RecordingStatus::Pending,
            format: format.map(str::to_owned),
            duration: None,
            key,
            recorded_at: None,
            failure_reason: None,
        }
    }

    /// Failed for `reason`; it holds no object.
    pub fn failed(reason: impl Into<String>) -> Self {
        StoredRecording {
            status: RecordingStatus::Failed,
            format: None,
            duration: None,
            key: None,
            recorded_at: None,
            failure_reason: Some(reason.into()),
        }
    }
}

/// The bounded part of a call: everything a list page shows, stored as plain attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSummary {
    pub id: String,
    #[serde(default)]
    pub assistant_id: Option<String>,
    #[serde(default)]
    pub assistant: Option<NamedRef>,
    #[serde(default)]
    pub phone_number_id: Option<String>,
    #[serde(default)]
    pub phone_number: Option<PhoneNumberRef>,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub campaign: Option<NamedRef>,
    pub direction: Direction,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    pub status: CallStatus,
    #[serde(default)]
    pub end_reason: Option<String>,
    #[serde(default)]
    pub answered_by: Option<AnsweredBy>,
    #[serde(default)]
    pub is_success: Option<bool>,
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// Seconds.
    #[serde(default, serialize_with = "seconds::option")]
    pub duration: Option<f64>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cost: Option<Decimal>,
    /// ISO 4217 code of `cost` and of every breakdown amount.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub cost_breakdown: Vec<CostItem>,
    #[serde(default)]
    pub call_metadata: BTreeMap<String, Value>,
    #[serde(default)]
    pub messages_count: u32,
    #[serde(default)]
    pub telephony: Option<Telephony>,
    #[serde(default)]
    pub opt_out_sensitive_data_storage: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub word: String,
    /// Seconds from the start of the call.
    #[serde(serialize_with = "seconds::serialize")]
    pub start: f64,
    #[serde(serialize_with = "seconds::serialize")]
    pub end: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
    #[serde(default)]
    pub result: Value,
}

/// One turn of the conversation. Optional parts are left out of the JSON when absent (a tool message has no
/// duration, a text-only platform has no word timings), as in seed 000.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub role: Role,
    pub content: String,
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "seconds::option")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<bool>,
    /// Seconds from the start of the call.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "seconds::option")]
    pub start_offset: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "seconds::option")]
    pub end_offset: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<Word>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_info: Option<ToolInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Value,
}

/// Distribution of one latency measure, in milliseconds (whole figures written as integers, as the
/// platforms send them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    #[serde(serialize_with = "seconds::serialize")]
    pub min: f64,
    #[serde(serialize_with = "seconds::serialize")]
    pub max: f64,
    #[serde(serialize_with = "seconds::serialize")]
    pub p50: f64,
    #[serde(serialize_with = "seconds::serialize")]
    pub p90: f64,
    #[serde(serialize_with = "seconds::serialize")]
    pub p95: f64,
    #[serde(serialize_with = "seconds::serialize")]
    pub p99: f64,
    pub num: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    #[serde(default)]
    pub e2e: Option<LatencyStats>,
    #[serde(default)]
    pub llm: Option<LatencyStats>,
    #[serde(default)]
    pub tts: Option<LatencyStats>,
    #[serde(default)]
    pub asr: Option<LatencyStats>,
}

/// The unbounded part of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallContent {
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub events: Vec<CallEvent>,
    #[serde(default)]
    pub latency: Option<Latency>,
}

/// A whole call as it is written to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub summary: CallSummary,
    pub recording: Option<StoredRecording>,
    pub content: CallContent,
}

impl CallRecord {
    /// Applies the rules that hold for every stored call, whatever its source: the message count is derived
    /// from the messages, and a call that opted out of sensitive-data storage keeps no content and no
    /// recording at all.
    pub fn normalised(mut self) -> Self {
        if self.summary.opt_out_sensitive_data_storage {
            self.content.messages.clear();
            self.recording = None;
        }
        self.summary.messages_count = u32::try_from(self.content.messages.len()).unwrap_or(u32::MAX);
        let s = &mut self.summary;
        normalise_number(&mut s.from);
        normalise_number(&mut s.to);
        if let Some(p) = &mut s.phone_number {
            if let Some(n) = crate::phone::e164(&p.number) {
                p.number = n;
            }
        }
        self
    }
}

/// Numbers are stored in E.164 when they can be; anything else is kept as given.
fn normalise_number(number: &mut Option<String>) {
    if let Some(n) = number.as_deref().and_then(crate::phone::e164) {
        *number = Some(n);
    }
}

/// The lifecycle rule between a stored call and the one that would replace it: `queued → ringing →
/// in-progress → a final status`, and an ended call never goes back to a status that is not final (a late,
/// out-of-order update must not undo it). A final status may be corrected to another final one; before the
/// end, any order is taken (platforms skip and repeat states). `Err((field, reason))` refuses.
pub fn lifecycle(stored: &CallSummary, new: &CallSummary) -> Result<(), (String, String)> {
    if stored.status.is_final() && !new.status.is_final() {
        return Err((
            "status".to_owned(),
            format!(
                "the call has ended ({}); it cannot go back to {}",
                stored.status.as_str(),
                new.status.as_str()
            ),
        ));
    }
    Ok(())
}

impl CallSummary {
    /// Where the call sits in a list, and what `dateFrom` / `dateTo` compare: its start, or its creation
    /// before it has started.
    pub fn list_time(&self) -> DateTime<Utc> {
        self.start_time.unwrap_or(self.created_at)
    }

    /// The customer's number (what the `phoneNumber` filter matches): `from` of an inbound call, `to` of an
    /// outbound one; web calls have none. `None` also when it is not an E.164 number.
    pub fn customer_number(&self) -> Option<String> {
        let raw = match self.direction {
            Direction::Inbound => self.from.as_deref(),
            Direction::Outbound => self.to.as_deref(),
            Direction::Web => None,
        };
        raw.and_then(crate::phone::e164)
    }
}

/// The plain transcript, derived from the messages when a call is written (and stored with its content):
/// one line per spoken turn, `Role: text`, tool and system messages left out.
pub fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        let speaker = match m.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::Tool | Role::System => continue,
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(speaker);
        out.push_str(": ");
        out.push_str(&m.content);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, content: &str) -> Message {
        Message {
            id: "m".into(),
            role,
            content: content.into(),
            timestamp: "2025-01-15T10:30:05Z".parse().unwrap(),
            duration: None,
            interrupted: None,
            start_offset: None,
            end_offset: None,
            words: None,
            tool_info: None,
        }
    }

    #[test]
    fn transcript_keeps_spoken_turns_in_order_and_drops_tool_messages() {
        let messages = vec![
            msg(Role::Assistant, "Hello"),
            msg(Role::Tool, "lookup called"),
            msg(Role::User, "Hi there"),
        ];
        assert_eq!(transcript(&messages), "Assistant: Hello\nUser: Hi there");
    }

    #[test]
    fn seed_001_end_states_become_completed() {
        for s in ["ended_by_customer", "ended_by_assistant", "ended", "completed"] {
            let parsed: CallStatus = serde_json::from_value(Value::String(s.into())).unwrap();
            assert_eq!(parsed, CallStatus::Completed, "{s}");
        }
        let parsed: CallStatus = serde_json::from_value(Value::String("initiated".into())).unwrap();
        assert_eq!(parsed, CallStatus::Queued);
    }

    #[test]
    fn whole_seconds_are_integers_and_fractions_stay_decimals() {
        #[derive(Serialize)]
        struct D(#[serde(serialize_with = "seconds::option")] Option<f64>);
        assert_eq!(serde_json::to_string(&D(Some(330.0))).unwrap(), "330");
        assert_eq!(serde_json::to_string(&D(Some(4.2))).unwrap(), "4.2");
        assert_eq!(serde_json::to_string(&D(None)).unwrap(), "null");
    }

    #[test]
    fn status_names_round_trip() {
        for s in CallStatus::ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, Value::String(s.as_str().into()));
        }
    }

    #[test]
    fn an_ended_call_never_goes_back_and_before_the_end_any_order_goes() {
        let at = |status: CallStatus| {
            let mut summary: CallSummary = serde_json::from_value(serde_json::json!({
                "id": "c", "direction": "outbound", "status": "queued", "createdAt": "2025-01-15T10:00:00Z"
            }))
            .unwrap();
            summary.status = status;
            summary
        };
        for stored in CallStatus::ALL {
            for new in CallStatus::ALL {
                let verdict = lifecycle(&at(stored), &at(new));
                let refused = stored.is_final() && !new.is_final();
                assert_eq!(verdict.is_err(), refused, "{} -> {}", stored.as_str(), new.as_str());
                if let Err((field, reason)) = verdict {
                    assert_eq!(field, "status");
                    assert!(
                        reason.contains(stored.as_str()) && reason.contains(new.as_str()),
                        "{reason}"
                    );
                }
            }
        }
        let finals: Vec<_> = CallStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .map(CallStatus::as_str)
            .collect();
        assert_eq!(finals, ["completed", "busy", "no-answer", "failed", "canceled"]);
    }
}
