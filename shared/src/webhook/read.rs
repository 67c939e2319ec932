//! Reading a provider's webhook body onto the call model, shared by the providers' modules.
//!
//! A [`Node`] is a place in the body: the value there (if any) and its JSON path as the provider wrote it
//! (`call.transcript_object[2].words[0].start`; `.` for the body itself). Its typed readers take a value that
//! is absent and one that is `null` alike as nothing, and answer a value of the wrong type or out of range with
//! a 400 naming that path ([`ApiError::invalid`]). Only what a module reads is ever looked at, so fields a
//! provider adds change nothing.
//!
//! Beside it are the conversions every mapping makes: exact decimals from a JSON number's own text (never
//! through a float), decimals back to JSON numbers and money strings, text clipped to its bound, timestamps,
//! JSON sent as text, and `callMetadata` as DynamoDB can store it.
//!
//! Where the modules settled a rule each its own way (how figures and amounts round, what a number too small
//! for a decimal is, how an amount too large is refused), each one's [`Rules`] says it, so that every
//! provider's calls are stored as they always were.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;
use crate::ids::MAX_ID_LEN;
use crate::validate::{MAX_FIGURE, MAX_FIGURE_DECIMALS, MAX_METADATA_BYTES, MAX_MONEY_DIGITS, MAX_MONEY_SCALE};

/// The last instant written, 9999-12-31T23:59:59.999Z, in milliseconds since the epoch.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// A provider module's own ways with numbers, where the modules differ.
#[derive(Debug)]
pub(crate) struct Rules {
    /// How figures and amounts are rounded to the call model's places.
    pub(crate) rounding: RoundingStrategy,
    /// Whether a figure's sign is judged once it is rounded (so a hair below 0 is 0) rather than before
    /// (so it is refused).
    pub(crate) sign_after_rounding: bool,
    /// Whether a number too small for a decimal (below 1e-20) reads as 0 rather than as out of range.
    pub(crate) tiny_is_zero: bool,
    /// Why an amount of 10^[`MAX_MONEY_DIGITS`] or more is refused.
    pub(crate) too_large: &'static str,
}

impl Rules {
    /// The exact decimal `n` spells, by these rules; `None` when it is out of range.
    pub(crate) fn exact(&self, n: &Number) -> Option<Decimal> {
        exact(n).or_else(|| (self.tiny_is_zero && n.as_f64().is_some_and(|x| x.abs() < 1e-20)).then_some(Decimal::ZERO))
    }
}

/// A place in a provider's body: the value there, if any, and its JSON path.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    value: Option<&'a Value>,
    path: String,
    rules: &'static Rules,
}

impl<'a> Node<'a> {
    /// The body itself, read by `rules`.
    pub(crate) fn root(body: &'a Value, rules: &'static Rules) -> Self {
        Node {
            value: Some(body),
            path: String::new(),
            rules,
        }
    }

    /// `key` of this object (nothing when this is not an object).
    pub(crate) fn get(&self, key: &str) -> Node<'a> {
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        Node {
            value: self.value.and_then(|v| v.as_object()).and_then(|m| m.get(key)),
            path,
            rules: self.rules,
        }
    }

    /// Element `index` of this array (nothing when this is not an array).
    pub(crate) fn at(&self, index: usize) -> Node<'a> {
        Node {
            value: self.value.and_then(|v| v.as_array()).and_then(|a| a.get(index)),
            path: format!("{}[{index}]", self.path),
            rules: self.rules,
        }
    }

    /// The places of this object's members, with their keys (none when this is not an object). A key that is
    /// not a plain name (letters, digits, `_`) is quoted in the path: `results["new date"]`.
    pub(crate) fn members(&self) -> Vec<(&'a str, Node<'a>)> {
        let Some(map) = self.value.and_then(Value::as_object) else {
            return Vec::new();
        };
        map.iter()
            .map(|(key, value)| {
                let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                let node = if plain {
                    self.get(key)
                } else {
                    Node {
                        value: Some(value),
                        path: format!("{}[{}]", self.path, Value::String(key.clone())),
                        rules: self.rules,
                    }
                };
                (key.as_str(), node)
            })
            .collect()
    }

    /// `key` of this object, which must be an object itself when it is there.
    pub(crate) fn child(&self, key: &str) -> Result<Node<'a>, ApiError> {
        let node = self.get(key);
        node.object()?;
        Ok(node)
    }

    /// The path as errors name it.
    pub(crate) fn path(&self) -> &str {
        if self.path.is_empty() {
            "."
        } else {
            &self.path
        }
    }

    /// A 400 naming this place.
    pub(crate) fn fail(&self, reason: impl Into<String>) -> ApiError {
        ApiError::invalid(self.path(), reason)
    }

    /// The value, `null` included; `None` when the body has nothing here.
    pub(crate) fn value(&self) -> Option<&'a Value> {
        self.value
    }

    /// The value unless it is absent or `null`.
    pub(crate) fn present(&self) -> Option<&'a Value> {
        self.value.filter(|v| !v.is_null())
    }

    /// An object.
    pub(crate) fn object(&self) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.present() {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(self.fail("must be an object")),
        }
    }

    /// An array.
    pub(crate) fn array(&self) -> Result<Option<&'a [Value]>, ApiError> {
        match self.present() {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(self.fail("must be an array")),
        }
    }

    /// The places of an array's elements (none when it is absent).
    pub(crate) fn items(&self) -> Result<Vec<Node<'a>>, ApiError> {
        let len = self.array()?.map_or(0, <[Value]>::len);
        Ok((0..len).map(|i| self.at(i)).collect())
    }

    /// A string, which may be empty.
    pub(crate) fn string(&self) -> Result<Option<&'a str>, ApiError> {
        match self.present() {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.fail("must be a string")),
        }
    }

    /// A string; an empty one counts as absent.
    pub(crate) fn text(&self) -> Result<Option<&'a str>, ApiError> {
        Ok(self.string()?.filter(|s| !s.is_empty()))
    }

    /// A string that must be there, and may be empty.
    pub(crate) fn required_string(&self) -> Result<&'a str, ApiError> {
        self.string()?.ok_or_else(|| self.fail("is required"))
    }

    /// A string that must be there and not be empty.
    pub(crate) fn required_text(&self) -> Result<&'a str, ApiError> {
        self.text()?.ok_or_else(|| self.fail("is required"))
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&self) -> Result<Option<bool>, ApiError> {
        match self.present() {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.fail("must be true or false")),
        }
    }

    /// A number, as the exact decimal its JSON text spells ([`Rules::exact`]).
    pub(crate) fn decimal(&self) -> Result<Option<Decimal>, ApiError> {
        match self.present() {
            None => Ok(None),
            Some(Value::Number(n)) => self
                .rules
                .exact(n)
                .map(Some)
                .ok_or_else(|| self.fail("is a number out of range")),
            Some(_) => Err(self.fail("must be a number")),
        }
    }

    /// An id of the call model: 1 to 128 characters (empty counts as absent; a longer one is refused).
    pub(crate) fn id(&self) -> Result<Option<&'a str>, ApiError> {
        match self.text()? {
            Some(id) if id.chars().count() > MAX_ID_LEN => {
                Err(self.fail(format!("must be at most {MAX_ID_LEN} characters")))
            }
            other => Ok(other),
        }
    }

    /// An ISO 8601 instant, not before 1970 (empty counts as absent).
    pub(crate) fn instant(&self) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(text) = self.text()? else {
            return Ok(None);
        };
        let t = DateTime::parse_from_rfc3339(text)
            .map_err(|_| self.fail("must be an ISO 8601 timestamp, e.g. 2025-01-15T10:30:00.000Z"))?
            .with_timezone(&Utc);
        self.since_1970(t).map(Some)
    }

    /// An instant as Unix milliseconds (a fraction gives nanoseconds), not before 1970.
    pub(crate) fn unix_ms(&self) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(ms) = self.decimal()? else {
            return Ok(None);
        };
        let nanos = ms
            .checked_mul(Decimal::from(1_000_000))
            .map(|n| n.round())
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| self.fail("is a time out of range"))?;
        self.since_1970(DateTime::from_timestamp_nanos(nanos)).map(Some)
    }

    fn since_1970(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        if t < DateTime::UNIX_EPOCH {
            Err(self.fail("must not be before 1970-01-01T00:00:00Z"))
        } else {
            Ok(t)
        }
    }

    /// Whole milliseconds since the epoch (a fraction rounded half away from zero), from 1970 to the year 9999.
    pub(crate) fn epoch_millis(&self) -> Result<Option<i64>, ApiError> {
        let Some(ms) = self.decimal()? else {
            return Ok(None);
        };
        match i64::try_from(ms.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)) {
            Ok(ms) if (0..=MAX_MILLIS).contains(&ms) => Ok(Some(ms)),
            _ => Err(self.fail("must be milliseconds since 1970-01-01T00:00:00Z, before the year 10000")),
        }
    }

    /// The [`timestamp`] `ms` milliseconds after the epoch, which this place gave; refused outside 1970 to 9999.
    pub(crate) fn millis_timestamp(&self, ms: i64) -> Result<Value, ApiError> {
        DateTime::from_timestamp_millis(ms)
            .filter(|_| (0..=MAX_MILLIS).contains(&ms))
            .map(timestamp)
            .ok_or_else(|| self.fail("gives a time before 1970 or after the year 9999"))
    }

    /// `d`, which this place gave, as a figure of the call model (seconds, milliseconds): 0 to [`MAX_FIGURE`],
    /// rounded to [`MAX_FIGURE_DECIMALS`] places by the rules. `unit`, when given, is named in the bound.
    pub(crate) fn figure(&self, d: Decimal, unit: Option<&str>) -> Result<Decimal, ApiError> {
        let rounded = d.round_dp_with_strategy(MAX_FIGURE_DECIMALS as u32, self.rules.rounding);
        let judged = if self.rules.sign_after_rounding { rounded } else { d };
        if judged.is_sign_negative() && !judged.is_zero() {
            return Err(self.fail("must not be negative"));
        }
        if rounded > Decimal::from(MAX_FIGURE as i64) {
            return Err(self.fail(match unit {
                Some(unit) => format!("must be at most {MAX_FIGURE} {unit}"),
                None => format!("must be at most {MAX_FIGURE}"),
            }));
        }
        Ok(rounded.normalize())
    }

    /// `d`, which this place gave, as an amount (or a quantity) of the call model: not negative, below
    /// 10^[`MAX_MONEY_DIGITS`], rounded to [`MAX_MONEY_SCALE`] places by the rules.
    pub(crate) fn money(&self, d: Decimal) -> Result<Decimal, ApiError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(self.fail("must not be negative"));
        }
        let d = d.round_dp_with_strategy(MAX_MONEY_SCALE as u32, self.rules.rounding);
        if d >= Decimal::from(10u64.pow(MAX_MONEY_DIGITS as u32)) {
            return Err(self.fail(self.rules.too_large));
        }
        Ok(if d.is_zero() { Decimal::ZERO } else { d.normalize() })
    }
}

/// The exact decimal a JSON number's own text spells (never through a float); `None` when it has no decimal.
pub(crate) fn exact(n: &Number) -> Option<Decimal> {
    let text = n.to_string();
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok()
    } else {
        Decimal::from_str(&text).ok()
    }
}

/// The first of `nodes` that holds a (non-empty) string.
pub(crate) fn first_text<'a>(nodes: &[Node<'a>]) -> Result<Option<&'a str>, ApiError> {
    for node in nodes {
        if let Some(text) = node.text()? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// The first of `nodes` that holds an ISO 8601 instant, and that node.
pub(crate) fn first_instant<'a>(nodes: &[Node<'a>]) -> Result<(Option<DateTime<Utc>>, Option<Node<'a>>), ApiError> {
    for node in nodes {
        if let Some(t) = node.instant()? {
            return Ok((Some(t), Some(node.clone())));
        }
    }
    Ok((None, None))
}

/// RFC 3339 in UTC, with as many fraction digits as the instant needs.
pub(crate) fn timestamp(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A decimal as a JSON number: an integer when it is whole, else the float that prints as its digits.
pub(crate) fn json_number(d: Decimal) -> Value {
    let d = d.normalize();
    if d.scale() == 0 {
        if let Ok(whole) = i64::try_from(d) {
            return Value::from(whole);
        }
    }
    f64::from_str(&d.to_string())
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// A message's `startOffset` and `endOffset` (seconds from the start of the call), and its `duration` when
/// both are there and in order.
pub(crate) fn offsets(message: &mut Map<String, Value>, start: Option<Decimal>, end: Option<Decimal>) {
    if let Some(start) = start {
        message.insert("startOffset".into(), json_number(start));
    }
    if let Some(end) = end {
        message.insert("endOffset".into(), json_number(end));
        if let Some(start) = start.filter(|s| *s <= end) {
            message.insert("duration".into(), json_number(end - start));
        }
    }
}

/// An amount (from [`Node::money`]) as the call model's decimal string.
pub(crate) fn money_text(d: Decimal) -> Value {
    Value::String(d.to_string())
}

/// `s` cut to at most `max` characters.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// A tool's arguments or result: a JSON object or array sent as a string is stored as JSON; anything else as
/// it came.
pub(crate) fn embedded(value: &Value) -> Value {
    if let Value::String(s) = value {
        if let Ok(parsed @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str::<Value>(s) {
            return parsed;
        }
    }
    value.clone()
}

/// `callMetadata` from `entries`, taken in their order: each value [`storable`], an entry with an empty key
/// dropped, and one that would take the whole past [`MAX_METADATA_BYTES`] of compact JSON left out.
pub(crate) fn metadata(entries: impl IntoIterator<Item = (String, Value)>) -> Map<String, Value> {
    let mut kept = Map::new();
    // Size of `kept` as compact JSON: `{}` plus, per entry, its key, a colon, its value and a comma between.
    let mut size = 2;
    for (key, value) in entries {
        if key.is_empty() {
            continue;
        }
        let value = storable(value);
        let cost =
            Value::from(key.as_str()).to_string().len() + 1 + value.to_string().len() + usize::from(!kept.is_empty());
        if size + cost <= MAX_METADATA_BYTES {
            size += cost;
            kept.insert(key, value);
        }
    }
    kept
}

/// `value` as DynamoDB can hold it: no empty key at any depth, and every number 0 or of a magnitude from
/// 1e-125 to 1e125 (any other becomes its text).
pub(crate) fn storable(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k, storable(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(storable).collect()),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0).abs();
            if x == 0.0 || (1e-125..=1e125).contains(&x) {
                Value::Number(n)
            } else {
                Value::String(n.to_string())
            }
        }
        other => other,
    }
}
