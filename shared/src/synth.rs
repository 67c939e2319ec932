//! Realistic synthetic calls: assistants, campaigns and numbers of a small platform, every status and
//! direction, conversations with word timings and tool calls, latency, costs, events. Deterministic for a
//! given seed, so demo data, tests and benchmarks are repeatable. Operator tool and tests only (feature
//! `admin`).

use std::collections::BTreeMap;

use crate::model::*;
use crate::recording::object_key;
use crate::{CallId, TenantId};
use chrono::{DateTime, Duration, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::json;

const ASSISTANTS: [(&str, &str); 4] = [
    ("asst_support", "Customer Support"),
    ("asst_sales", "Sales Assistant"),
    ("asst_booking", "Appointment Booking"),
    ("asst_collections", "Payment Reminders"),
];
const CAMPAIGNS: [(&str, &str); 3] = [
    ("camp_q4", "Q4 Outreach"),
    ("camp_reminders", "Appointment Reminders"),
    ("camp_winback", "Win-back"),
];
const NUMBERS: [(&str, &str, &str); 3] = [
    ("phone_main", "+905551234567", "Main line"),
    ("phone_sales", "+14155550100", "Sales line"),
    ("phone_eu", "+442071838750", "London line"),
];

const LINES: [(&str, &str); 4] = [
    (
        "Hello! Thanks for calling. How can I help you today?",
        "Hi, I would like to check the status of my order.",
    ),
    (
        "Of course. Could you give me your order number?",
        "Yes, it is ORD 12345.",
    ),
    (
        "Your order has shipped and should arrive tomorrow.",
        "Great, thank you very much.",
    ),
    (
        "Is there anything else I can help you with?",
        "No, that is all. Goodbye.",
    ),
];

pub struct Generator {
    rng: SmallRng,
}

fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 4)
}

fn words(text: &str, start: f64, rng: &mut SmallRng) -> Vec<Word> {
    let mut t = start;
    text.split_whitespace()
        .map(|w| {
            let len = 0.15 + rng.random_range(0.0..0.3);
            let word = Word {
                word: w.to_owned(),
                start: round(t),
                end: round(t + len),
            };
            t += len + 0.05;
            word
        })
        .collect()
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn stats(rng: &mut SmallRng, base: f64) -> LatencyStats {
    let min = round(base * rng.random_range(0.5..0.8));
    let p50 = round(base);
    let p90 = round(base * 1.4);
    let p95 = round(base * 1.6);
    let p99 = round(base * 1.9);
    LatencyStats {
        min,
        max: round(p99 * 1.05),
        p50,
        p90,
        p95,
        p99,
        num: rng.random_range(4..40),
    }
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Call number `index` of a platform's history: ids `gen_0000001`…, a status and direction drawn as a
    /// busy platform sees them (most calls complete; every status occurs), a start spread evenly over the
    /// `span` before `now`, two to eight exchanges, and customers who call more than once. The same seed
    /// and index always give the same call, so generating again rewrites the same calls.
    pub fn history_call(&mut self, tenant: &TenantId, index: u64, now: DateTime<Utc>, span: Duration) -> CallRecord {
        let status = match self.rng.random_range(0..100) {
            0..62 => CallStatus::Completed,
            62..72 => CallStatus::NoAnswer,
            72..78 => CallStatus::Busy,
            78..84 => CallStatus::Failed,
            84..89 => CallStatus::Canceled,
            89..93 => CallStatus::InProgress,
            93..96 => CallStatus::Ringing,
            _ => CallStatus::Queued,
        };
        let direction = match self.rng.random_range(0..10) {
            0..4 => Direction::Inbound,
            4..9 => Direction::Outbound,
            _ => Direction::Web,
        };
        let back = self.rng.random_range(0..span.num_milliseconds().max(1));
        let start = now - Duration::milliseconds(back);
        let turns = self.rng.random_range(2..=8);
        let customers = 1 + index / 4;
        let customer = format!("+1415{:07}", self.rng.random_range(0..customers.min(10_000_000)));
        let mut call = self.call(tenant, &format!("gen_{index:07}"), status, direction, start, turns);
        match direction {
            Direction::Inbound => call.summary.from = Some(customer),
            Direction::Outbound => call.summary.to = Some(customer),
            Direction::Web => {}
        }
        call
    }

    /// A call with `turns` exchanges (each an assistant and a user message, with word timings), and every
    /// other part filled in as a real platform would.
    pub fn call(
        &mut self,
        tenant: &TenantId,
        id: &str,
        status: CallStatus,
        direction: Direction,
        start: DateTime<Utc>,
        turns: usize,
    ) -> CallRecord {
        let rng = &mut self.rng;
        let (assistant_id, assistant_name) = ASSISTANTS[rng.random_range(0..ASSISTANTS.len())];
        let (number_id, number, number_name) = NUMBERS[rng.random_range(0..NUMBERS.len())];
        let campaign = (direction == Direction::Outbound).then(|| CAMPAIGNS[rng.random_range(0..CAMPAIGNS.len())]);
        let customer = format!("+1415555{:04}", rng.random_range(0..10000));
        let (from, to) = match direction {
            Direction::Inbound => (Some(customer), Some(number.to_owned())),
            Direction::Outbound => (Some(number.to_owned()), Some(customer)),
            Direction::Web => (None, None),
        };
        let talked = matches!(status, CallStatus::Completed | CallStatus::InProgress);
        let turns = if talked { turns } else { 0 };

        let mut messages = Vec::with_capacity(turns * 2 + 1);
        let mut offset = 0.5;
        for turn in 0..turns {
            let (said, heard) = LINES[turn % LINES.len()];
            for (role, text) in [(Role::Assistant, said), (Role::User, heard)] {
                let w = words(text, offset, rng);
                let end = w.last().map(|x| x.end).unwrap_or(offset);
                messages.push(Message {
                    id: format!("msg_{:05}", messages.len() + 1),
                    role,
                    content: text.to_owned(),
                    timestamp: start + Duration::milliseconds((offset * 1000.0) as i64),
                    duration: Some(round(end - offset)),
                    interrupted: Some(rng.random_bool(0.05)),
                    start_offset: Some(round(offset)),
                    end_offset: Some(end),
                    words: Some(w),
                    tool_info: None,
                });
                offset = end + rng.random_range(0.3..1.2);
            }
            if turn == 1 {
                messages.push(Message {
                    id: format!("msg_{:05}", messages.len() + 1),
                    role: Role::Tool,
                    content: "check_order_status called".into(),
                    timestamp: start + Duration::milliseconds((offset * 1000.0) as i64),
                    duration: None,
                    interrupted: None,
                    start_offset: Some(round(offset)),
                    end_offset: None,
                    words: None,
                    tool_info: Some(ToolInfo {
                        name: "check_order_status".into(),
                        arguments: json!({ "orderId": "ORD-12345" }),
                        result: json!({ "status": "shipped", "trackingNumber": "TRK-67890" }),
                    }),
                });
            }
        }
        let duration = if talked { round(offset.max(5.0)) } else { 0.0 };
        let ended = !matches!(
            status,
            CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress
        );
        let end_time = ended.then(|| start + Duration::milliseconds((duration * 1000.0) as i64));
        let minutes = (duration / 60.0).ceil() as i64;
        let breakdown = if talked {
            vec![
                CostItem {
                    product: format!(
                        "{}_call",
                        if direction == Direction::Inbound {
                            "inbound"
                        } else {
                            "outbound"
                        }
                    ),
                    quantity: Decimal::from(minutes),
                    unit: "minute".into(),
                    unit_price: money(200),
                    amount: money(200 * minutes),
                },
                CostItem {
                    product: "llm_usage".into(),
                    quantity: Decimal::from(turns as i64 * 350),
                    unit: "token".into(),
                    unit_price: money(1),
                    amount: money(turns as i64 * 350),
                },
            ]
        } else {
            Vec::new()
        };
        let cost: Decimal = breakdown.iter().map(|c| c.amount).sum();
        let events = vec![
            CallEvent {
                timestamp: start,
                kind: "call.created".into(),
                data: json!({}),
            },
            CallEvent {
                timestamp: start,
                kind: format!("call.{}", status.as_str()),
                data: json!({ "direction": direction }),
            },
        ];
        let recording = (talked && ended).then(|| StoredRecording {
            status: RecordingStatus::Completed,
            format: Some("wav".into()),
            duration: Some(duration),
            key: Some(object_key(
                tenant,
                &CallId::parse(id).expect("generated ids are valid"),
                start,
                "wav",
            )),
            recorded_at: end_time,
            failure_reason: None,
        });
        let summary = CallSummary {
            id: id.to_owned(),
            assistant_id: Some(assistant_id.into()),
            assistant: Some(NamedRef {
                id: assistant_id.into(),
                name: assistant_name.into(),
            }),
            phone_number_id: Some(number_id.into()),
            phone_number: Some(PhoneNumberRef {
                id: number_id.into(),
                number: number.into(),
                name: Some(number_name.into()),
            }),
            campaign_id: campaign.map(|c| c.0.into()),
            campaign: campaign.map(|(id, name)| NamedRef {
                id: id.into(),
                name: name.into(),
            }),
            direction,
            from,
            to,
            status,
            end_reason: ended.then(|| {
                match status {
                    CallStatus::Completed => "customer_hangup",
                    CallStatus::Busy => "busy",
                    CallStatus::NoAnswer => "no_answer",
                    CallStatus::Canceled => "canceled",
                    _ => "error",
                }
                .to_owned()
            }),
            answered_by: talked.then_some(AnsweredBy::Human),
            is_success: ended.then_some(status == CallStatus::Completed),
            evaluation: talked.then(|| Evaluation {
                sentiment: Some("positive".into()),
                outcome: Some("resolved".into()),
                score: Some(f64::from(rng.random_range(60..100u8)) / 10.0),
            }),
            summary: talked.then(|| "Customer asked about an order; the assistant gave the shipping status.".into()),
            start_time: (status != CallStatus::Queued).then_some(start),
            end_time,
            duration: ended.then_some(duration),
            created_at: start - Duration::seconds(2),
            updated_at: Some(end_time.unwrap_or(start)),
            cost: Some(cost),
            currency: Some("USD".into()),
            cost_breakdown: breakdown,
            call_metadata: BTreeMap::from([(
                "customerId".to_owned(),
                json!(format!("cust_{}", rng.random_range(100..999))),
            )]),
            messages_count: 0,
            telephony: (direction != Direction::Web).then(|| Telephony {
                provider: Some("twilio".into()),
                call_sid: Some(format!("CA{:032x}", rng.random::<u128>())),
                conference_sid: None,
            }),
            opt_out_sensitive_data_storage: false,
        };
        let latency = talked.then(|| Latency {
            e2e: Some(stats(rng, 800.0)),
            llm: Some(stats(rng, 350.0)),
            tts: Some(stats(rng, 180.0)),
            asr: Some(stats(rng, 120.0)),
        });
        CallRecord {
            summary,
            recording,
            content: CallContent {
                messages,
                events,
                latency,
            },
        }
        .normalised()
    }
}

/// A PCM WAV file: 8 kHz, mono, 16-bit, `frames` samples of a 440 Hz tone (`frames / 8000` seconds): a
/// real, playable recording for demo data and tests.
pub fn wav(frames: u32) -> Vec<u8> {
    let data_len = frames * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..frames {
        let sample = ((f64::from(i) * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16;
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}
