//! Calls written by the voice platforms themselves: Retell, Vapi and ElevenLabs post each call to an
//! endpoint of ours when something happens to it. This module is the pure part: which provider
//! ([`Provider`]), each one's signature scheme ([`signature`]), each one's events mapped onto the call
//! model ([`retell`], [`vapi`], [`elevenlabs`]) as a [`Delivery`], and how deliveries of one call merge
//! ([`merge`]) whatever their order and however often they repeat.
//!
//! ## Precedence
//! Every event of a call has a *stage*: how far along the call it speaks from (Retell: `call_started` 1,
//! `call_ended` 2, `call_analyzed` 3; each provider's module lists its own). The stored call remembers, for
//! each top-level field, the stage of the delivery that set it ([`Sources`], kept beside the call and never
//! served). A delivery sets a field when its stage is higher than the one that set it, or equal and its
//! value sorts after the stored one (so two different deliveries of one stage settle the same way in either
//! order; a repeat is equal and changes nothing). A field a delivery lacks, or sends as `null`, is never
//! removed: analysis stays when a late `call_ended` arrives. So the stored call is, field by field, the
//! value of the highest-stage delivery that carried it, in any order of arrival.
//!
//! A delivery may also carry *fallbacks* at stage 0: values the call model requires (`direction`,
//! `status`, `createdAt`) for an event that arrives before the one that carries them (ElevenLabs' audio
//! before its transcription). Any real value replaces them.

pub mod elevenlabs;
pub mod endpoint;
mod read;
pub mod retell;
pub mod signature;
pub mod vapi;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A voice platform whose webhooks we receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Retell,
    Vapi,
    #[serde(rename = "elevenlabs")]
    ElevenLabs,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Retell, Provider::Vapi, Provider::ElevenLabs];

    /// The name in routes, call ids and the operator tool.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Retell => "retell",
            Provider::Vapi => "vapi",
            Provider::ElevenLabs => "elevenlabs",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Reads one delivery's body (already authenticated): the call it speaks of, or `None` for an event
    /// that carries nothing we store (answered 200, so the provider does not retry it). A body that is not
    /// the provider's shape is a 400 naming the field by its JSON path.
    pub fn delivery(self, body: &Value) -> Result<Option<Delivery>, ApiError> {
        match self {
            Provider::Retell => retell::delivery(body),
            Provider::Vapi => vapi::delivery(body),
            Provider::ElevenLabs => elevenlabs::delivery(body),
        }
    }

    /// Our id of the provider's call `id`.
    pub fn call_id(self, id: &str) -> String {
        format!("{}:{id}", self.as_str())
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one event says about one call, in the call model's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The provider's own call id; the stored call is [`Provider::call_id`] of it.
    pub call_id: String,
    /// The event as the provider names it (`call_ended`, `end-of-call-report`, `post_call_audio`).
    pub event: String,
    /// How far along the call the event speaks from: higher wins, field by field (module docs).
    pub stage: u16,
    /// The call's top-level fields this event carries, as a PUT body holds them (camelCase, the call
    /// model's types; never `id` nor a field the server derives). Only what the event has.
    pub fields: Map<String, Value>,
    /// Values the call model requires, used only until an event carries real ones (stage 0).
    pub fallbacks: Map<String, Value>,
    /// The event's recording, when it has one.
    pub recording: Option<RecordingSource>,
}

/// Where a delivery's recording is.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordingSource {
    /// A link of the provider's, to be copied into the bucket before it expires.
    Url(String),
    /// The audio itself, in the body (ElevenLabs `post_call_audio`), with its format (`mp3`, `wav`, …).
    Inline { format: String, bytes: Vec<u8> },
}

/// For each top-level field of a webhook-written call, the stage of the delivery that set it.
pub type Sources = BTreeMap<String, u16>;

/// Folds `delivery` into what is stored (`None` for a new call), by the precedence in the module docs.
/// Returns the call's fields and their sources.
pub fn merge(stored: Option<(&Map<String, Value>, &Sources)>, delivery: &Delivery) -> (Map<String, Value>, Sources) {
    let (mut fields, mut sources) = match stored {
        Some((fields, sources)) => (fields.clone(), sources.clone()),
        None => (Map::new(), Sources::new()),
    };
    let layers = [(0, &delivery.fallbacks), (delivery.stage, &delivery.fields)];
    for (stage, values) in layers {
        for (name, value) in values {
            if value.is_null() {
                continue;
            }
            let wins = match (fields.get(name), sources.get(name)) {
                (Some(current), Some(&set_by)) if !current.is_null() => {
                    stage > set_by || (stage == set_by && order_key(value) > order_key(current))
                }
                // Stored by something other than a delivery (or null): any delivery that carries it wins.
                _ => true,
            };
            if wins {
                fields.insert(name.clone(), value.clone());
                sources.insert(name.clone(), stage);
            }
        }
    }
    (fields, sources)
}

/// A total order on JSON values for ties between deliveries of one stage: their compact text. serde_json
/// keeps object keys sorted (no `preserve_order`), so equal values give equal text.
fn order_key(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn delivery(stage: u16, fields: Value) -> Delivery {
        Delivery {
            call_id: "c1".into(),
            event: format!("stage{stage}"),
            stage,
            fields: fields.as_object().expect("an object").clone(),
            fallbacks: Map::new(),
            recording: None,
        }
    }

    fn fold(order: &[&Delivery]) -> (Map<String, Value>, Sources) {
        let mut state: Option<(Map<String, Value>, Sources)> = None;
        for d in order {
            let next = merge(state.as_ref().map(|(f, s)| (f, s)), d);
            state = Some(next);
        }
        state.expect("at least one delivery")
    }

    /// Every order of `events` (by Heap's algorithm), each folded, must give one result.
    pub(crate) fn every_order_agrees(events: &[Delivery]) -> Map<String, Value> {
        let mut order: Vec<&Delivery> = events.iter().collect();
        let first = fold(&order);
        let n = order.len();
        let mut c = vec![0usize; n];
        let mut i = 0;
        let mut orders = 1;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    order.swap(0, i);
                } else {
                    order.swap(c[i], i);
                }
                assert_eq!(
                    fold(&order),
                    first,
                    "order {:?}",
                    order.iter().map(|d| &d.event).collect::<Vec<_>>()
                );
                // Every delivery twice, in this order, changes nothing either.
                let twice: Vec<&Delivery> = order.iter().chain(order.iter()).copied().collect();
                assert_eq!(fold(&twice), first);
                orders += 1;
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        assert_eq!(orders, (1..=n).product::<usize>());
        first.0
    }

    #[test]
    fn a_later_stage_wins_and_nothing_is_erased() {
        let started = delivery(1, json!({"status": "in-progress", "startTime": "2025-01-15T10:30:00Z"}));
        let ended = delivery(
            2,
            json!({"status": "completed", "endTime": "2025-01-15T10:35:00Z", "summary": null}),
        );
        let analyzed = delivery(3, json!({"summary": "Booked.", "isSuccess": true}));
        let merged = every_order_agrees(&[started, ended, analyzed]);
        assert_eq!(
            Value::Object(merged),
            json!({
                "status": "completed", "startTime": "2025-01-15T10:30:00Z", "endTime": "2025-01-15T10:35:00Z",
                "summary": "Booked.", "isSuccess": true
            })
        );
    }

    #[test]
    fn a_field_only_a_middle_stage_carries_survives_a_higher_stage_without_it() {
        // The lowest and the middle stage carry `cost`; the highest does not. The middle one's must win in
        // every order, including low after high.
        let low = delivery(1, json!({"cost": "0.10"}));
        let middle = delivery(2, json!({"cost": "0.20"}));
        let high = delivery(3, json!({"summary": "x"}));
        let merged = every_order_agrees(&[low, middle, high]);
        assert_eq!(merged["cost"], json!("0.20"));
    }

    #[test]
    fn ties_of_one_stage_settle_the_same_in_either_order() {
        let a = delivery(2, json!({"endReason": "customer-ended-call"}));
        let b = delivery(2, json!({"endReason": "assistant-ended-call"}));
        let merged = every_order_agrees(&[a, b]);
        assert_eq!(merged["endReason"], json!("customer-ended-call"));
    }

    #[test]
    fn fallbacks_hold_only_until_a_real_value_arrives() {
        let mut audio = delivery(1, json!({}));
        audio.fallbacks = json!({"status": "completed", "direction": "web", "createdAt": "2025-01-15T10:40:00Z"})
            .as_object()
            .cloned()
            .expect("object");
        let transcription = delivery(2, json!({"status": "failed", "createdAt": "2025-01-15T10:30:00Z"}));
        let merged = every_order_agrees(&[audio, transcription]);
        assert_eq!(
            Value::Object(merged),
            json!({"status": "failed", "direction": "web", "createdAt": "2025-01-15T10:30:00Z"})
        );
    }

    #[test]
    fn a_field_stored_without_a_source_is_taken_by_any_delivery() {
        let stored = json!({"summary": "typed by hand"})
            .as_object()
            .cloned()
            .expect("object");
        let (fields, sources) = merge(Some((&stored, &Sources::new())), &delivery(1, json!({"summary": "x"})));
        assert_eq!(fields["summary"], json!("x"));
        assert_eq!(sources["summary"], 1);
    }

    #[test]
    fn providers_round_trip_their_names() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).expect("json"), json!(p.as_str()));
        }
        assert_eq!(Provider::parse("twilio"), None);
        assert_eq!(Provider::Retell.call_id("abc"), "retell:abc");
    }
}
