//! GET /api/v1/calls, the pure part: the query string read into a [`ListQuery`], the [`Plan`] that says which
//! index serves it, and the paging rules. The store runs a plan; nothing here talks to AWS.
//!
//! Paging rules:
//! - Order is the list sort key (`sortTime`, then call id; see [`crate::store::layout`]), newest first unless
//!   `sort=asc`. A page resumes strictly after the position its cursor holds, so there are no duplicates and
//!   no gaps, whatever is written meanwhile before that position.
//! - A page is one Query. With no filter beyond the index's own key it reads `limit + 1` items (the extra one
//!   tells whether more follow). With filters the index cannot apply it reads at most `2 × limit` items and
//!   keeps those that match: a selective filter gives a short page, with `hasMore: true` and a cursor just
//!   past the last item read, so every page makes progress and none reads more than its budget.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use crate::error::ApiError;
use crate::ids::TenantId;
use crate::model::{CallStatus, Direction};
use crate::store::layout::{self, ListIndex};

pub const DEFAULT_LIMIT: u32 = 15;
pub const MAX_LIMIT: u32 = 100;
/// Longest filter value accepted (ids end up in index keys).
pub const MAX_VALUE_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    #[default]
    Desc,
    Asc,
}

/// The filters of a list request, normalised: two requests that ask for the same calls have equal filters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    /// Empty: any status (asking for every status is the same as asking for none).
    pub statuses: BTreeSet<&'static str>,
    pub direction: Option<Direction>,
    pub assistant_id: Option<String>,
    pub campaign_id: Option<String>,
    pub phone_number_id: Option<String>,
    /// E.164.
    pub phone_number: Option<String>,
    /// Inclusive lower bound on the list time.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on the list time.
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filters: Filters,
    pub sort: Sort,
    pub limit: u32,
    pub cursor: Option<String>,
    pub include_total: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filters: Filters::default(),
            sort: Sort::Desc,
            limit: DEFAULT_LIMIT,
            cursor: None,
            include_total: false,
        }
    }
}

/// What the cursor is bound to besides the tenant: the filters and the sort.
#[derive(Serialize)]
struct Binding<'a> {
    #[serde(flatten)]
    filters: &'a Filters,
    sort: Sort,
}

const PARAMETERS: [&str; 14] = [
    "status",
    "direction",
    "type",
    "assistantId",
    "campaignId",
    "phoneNumberId",
    "phoneNumber",
    "dateFrom",
    "dateTo",
    "sort",
    "limit",
    "per_page",
    "cursor",
    "includeTotal",
];

fn id_value(field: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_VALUE_LEN {
        return Err(ApiError::invalid(field, "must be at most 128 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

fn status(value: &str) -> Result<&'static str, ApiError> {
    CallStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .find(|s| *s == value)
        .ok_or_else(|| {
            ApiError::invalid(
                "status",
                "each value must be one of queued, ringing, in-progress, completed, busy, no-answer, failed, canceled",
            )
        })
}

fn direction(field: &str, value: &str) -> Result<Direction, ApiError> {
    match value {
        "inbound" => Ok(Direction::Inbound),
        "outbound" => Ok(Direction::Outbound),
        "web" => Ok(Direction::Web),
        _ => Err(ApiError::invalid(field, "must be inbound, outbound or web")),
    }
}

/// `YYYY-MM-DD` is the whole UTC day: its start for `dateFrom`, the next day's start (exclusive) for
/// `dateTo`. An RFC 3339 instant is taken as given, both bounds inclusive.
fn date_bound(field: &str, value: &str, upper: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
    let bad = || ApiError::invalid(field, "must be a date (YYYY-MM-DD) or an RFC 3339 instant");
    let instant = if value.len() == 10 {
        let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad())?;
        let day = if upper { day.succ_opt() } else { Some(day) };
        day.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
    } else {
        let t = DateTime::parse_from_rfc3339(value)
            .map_err(|_| bad())?
            .with_timezone(&Utc);
        if upper {
            t.checked_add_signed(chrono::Duration::nanoseconds(1))
        } else {
            Some(t)
        }
    };
    // List times are keyed with four-digit years. A bound beyond them either bounds nothing (a lower bound
    // before year 0, an upper one after 9999) or leaves nothing to find, which is refused rather than
    // answered with an empty list that looks like "no calls".
    let Some(instant) = instant else {
        return Ok(None);
    };
    let in_range = |t: DateTime<Utc>| (0..=9999).contains(&t.year());
    match (in_range(instant), upper, instant.year() > 9999) {
        (true, _, _) => Ok(Some(instant)),
        (false, false, false) | (false, true, true) => Ok(None),
        (false, _, _) => Err(ApiError::invalid(
            field,
            "must fall within the years 0000 to 9999 in UTC",
        )),
    }
}

fn flag(field: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(field, "must be true or false")),
    }
}

impl ListQuery {
    /// Reads the query string. Every parameter is known, given once (a `status` may repeat: the values add
    /// up) and valid; otherwise a 400 names it. Parameters are read in name order, so a request with several
    /// bad ones always names the same one.
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ListQuery, ApiError> {
        let mut params: Vec<(&str, &str)> = params.into_iter().collect();
        params.sort_by_key(|(name, _)| *name);
        let mut q = ListQuery::default();
        let mut seen = BTreeSet::new();
        let mut limit: Option<(&str, u32)> = None;
        let mut direction_given: Option<(&str, Direction)> = None;
        let (mut date_from, mut date_to) = (None, None);
        for (name, value) in params {
            let Some(name) = PARAMETERS.iter().copied().find(|p| *p == name) else {
                return Err(ApiError::invalid(name, "unknown parameter"));
            };
            if name != "status" && !seen.insert(name) {
                return Err(ApiError::invalid(name, "given more than once"));
            }
            match name {
                "status" => {
                    for v in value.split(',') {
                        q.filters.statuses.insert(status(v.trim())?);
                    }
                }
                "direction" | "type" => {
                    let d = direction(name, value)?;
                    if let Some((other, before)) = direction_given {
                        if before != d {
                            return Err(ApiError::invalid(name, format!("contradicts {other}")));
                        }
                    }
                    direction_given = Some((name, d));
                    q.filters.direction = Some(d);
                }
                "assistantId" => q.filters.assistant_id = Some(id_value(name, value)?),
                "campaignId" => q.filters.campaign_id = Some(id_value(name, value)?),
                "phoneNumberId" => q.filters.phone_number_id = Some(id_value(name, value)?),
                "phoneNumber" => {
                    // A `+` sent unencoded in a query string arrives as a space.
                    let value = match value.strip_prefix(' ') {
                        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
                        _ => value.to_owned(),
                    };
                    let number = crate::phone::e164(&value).ok_or_else(|| {
                        ApiError::invalid(name, "must be an international number in E.164, e.g. +14155550100")
                    })?;
                    q.filters.phone_number = Some(number);
                }
                "dateFrom" => {
                    date_from = Some(value);
                    q.filters.from = date_bound(name, value, false)?;
                }
                "dateTo" => {
                    date_to = Some(value);
                    q.filters.until = date_bound(name, value, true)?;
                }
                "sort" => {
                    q.sort = match value {
                        "desc" => Sort::Desc,
                        "asc" => Sort::Asc,
                        _ => return Err(ApiError::invalid(name, "must be asc or desc")),
                    }
                }
                "limit" | "per_page" => {
                    let n = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| ApiError::invalid(name, "must be a whole number from 1 to 100"))?;
                    if let Some((other, before)) = limit {
                        if before != n {
                            return Err(ApiError::invalid(name, format!("contradicts {other}")));
                        }
                    }
                    limit = Some((name, n));
                    q.limit = n;
                }
                "cursor" => {
                    if value.is_empty() || value.len() > crate::cursor::MAX_CURSOR_LEN {
                        return Err(ApiError::InvalidCursor("not a cursor".into()));
                    }
                    q.cursor = Some(value.to_owned());
                }
                "includeTotal" => q.include_total = flag(name, value)?,
                _ => unreachable!("every name in PARAMETERS is handled"),
            }
        }
        if q.filters.statuses.len() == CallStatus::ALL.len() {
            q.filters.statuses.clear();
        }
        if let (Some(from), Some(until)) = (q.filters.from, q.filters.until) {
            if from >= until {
                let why = format!("{} is after dateTo {}", date_from.unwrap_or(""), date_to.unwrap_or(""));
                return Err(ApiError::invalid("dateFrom", why));
            }
        }
        Ok(q)
    }

    /// The canonical form of the filters and the sort, which a cursor is bound to.
    pub fn binding(&self) -> String {
        serde_json::to_string(&Binding {
            filters: &self.filters,
            sort: self.sort,
        })
        .expect("plain data serialises")
    }

    /// Which index serves this request, and what it must filter besides.
    pub fn plan(&self, tenant: &TenantId) -> Plan {
        let f = &self.filters;
        let direction = f.direction.map(Direction::as_str);
        let mut wanted: Vec<(ListIndex, Vec<String>)> = Vec::new();
        let mut want = |index: ListIndex, values: Vec<&str>| {
            if !values.is_empty() {
                wanted.push((index, values.into_iter().map(|v| index.pk(tenant, v)).collect()));
            }
        };
        want(ListIndex::Direction, direction.into_iter().collect());
        want(ListIndex::Status, f.statuses.iter().copied().collect());
        want(ListIndex::Number, f.phone_number_id.as_deref().into_iter().collect());
        want(ListIndex::Assistant, f.assistant_id.as_deref().into_iter().collect());
        want(ListIndex::Campaign, f.campaign_id.as_deref().into_iter().collect());
        want(ListIndex::Customer, f.phone_number.as_deref().into_iter().collect());
        // The most selective index named with one value serves the request; the rest are filters on it.
        let key = wanted
            .iter()
            .enumerate()
            .filter(|(_, (_, values))| values.len() == 1)
            .max_by_key(|(_, (index, _))| *index)
            .map(|(i, _)| i);
        let (index, partition) = match key {
            Some(i) => {
                let (index, mut values) = wanted.remove(i);
                (index, values.remove(0))
            }
            None => (ListIndex::Time, ListIndex::Time.pk(tenant, "")),
        };
        Plan {
            index,
            partition,
            lower: f.from.map(layout::list_time),
            upper: f.until.map(layout::list_time),
            conditions: wanted
                .into_iter()
                .map(|(index, values)| Condition {
                    attribute: index.pk_attr(),
                    values,
                })
                .collect(),
            ascending: self.sort == Sort::Asc,
        }
    }
}

/// How one list request is served: a Query on `index` for `partition`, within `lower..upper` on the list sort
/// key, keeping only items that meet every condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub index: ListIndex,
    pub partition: String,
    /// Inclusive lower bound on `listSk`.
    pub lower: Option<String>,
    /// Exclusive upper bound on `listSk` (no key equals it: keys continue with `#<callId>`).
    pub upper: Option<String>,
    /// Filters the index cannot apply, each on one index key attribute: the item's value is one of `values`.
    pub conditions: Vec<Condition>,
    pub ascending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub attribute: &'static str,
    pub values: Vec<String>,
}

impl Plan {
    /// Most items one page may read: `limit + 1` when the index alone answers, `2 × limit` otherwise.
    pub fn read_budget(&self, limit: u32) -> u32 {
        if self.conditions.is_empty() {
            limit + 1
        } else {
            2 * limit
        }
    }
}

/// One Query's result, before it becomes a page: the matching items in order with their positions, and the
/// position of the last item read when the Query stopped before the end.
pub struct Read<T> {
    pub items: Vec<(String, T)>,
    /// Entries the Query returned that could not be read: skipped, never on a page, but index entries that
    /// a total counts.
    pub unreadable: usize,
    pub last_read: Option<String>,
}

/// Cuts what one Query read into a page of at most `limit` items and the position the next page starts
/// after (`None`: the list is complete).
pub fn cut<T>(read: Read<T>, limit: usize) -> (Vec<T>, Option<String>) {
    let Read {
        mut items, last_read, ..
    } = read;
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|(p, _)| p.clone());
        (items.into_iter().map(|(_, t)| t).collect(), next)
    } else {
        (items.into_iter().map(|(_, t)| t).collect(), last_read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        ListQuery::parse(q.iter().copied())
    }

    fn field(q: &[(&str, &str)]) -> String {
        parse(q).unwrap_err().field().unwrap_or("-").to_owned()
    }

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn defaults_are_newest_first_fifteen_per_page() {
        let q = parse(&[]).unwrap();
        assert_eq!((q.limit, q.sort, q.include_total), (15, Sort::Desc, false));
        assert_eq!(q.filters, Filters::default());
    }

    #[test]
    fn every_bad_value_names_its_parameter() {
        assert_eq!(field(&[("colour", "red")]), "colour");
        assert_eq!(field(&[("status", "ended")]), "status");
        assert_eq!(field(&[("status", "completed,")]), "status");
        assert_eq!(field(&[("direction", "sideways")]), "direction");
        assert_eq!(field(&[("type", "x")]), "type");
        assert_eq!(field(&[("direction", "inbound"), ("type", "outbound")]), "type");
        assert_eq!(field(&[("assistantId", "")]), "assistantId");
        assert_eq!(field(&[("campaignId", &"x".repeat(129))]), "campaignId");
        assert_eq!(field(&[("phoneNumberId", "a\u{0}b")]), "phoneNumberId");
        assert_eq!(field(&[("phoneNumber", "4155550100")]), "phoneNumber");
        assert_eq!(field(&[("dateFrom", "2025-13-01")]), "dateFrom");
        assert_eq!(field(&[("dateTo", "yesterday")]), "dateTo");
        assert_eq!(
            field(&[("dateFrom", "2025-02-01"), ("dateTo", "2025-01-31")]),
            "dateFrom"
        );
        assert_eq!(field(&[("sort", "up")]), "sort");
        for bad in ["0", "101", "-1", "ten", "1.5", ""] {
            assert_eq!(field(&[("limit", bad)]), "limit", "{bad}");
        }
        assert_eq!(field(&[("per_page", "500")]), "per_page");
        assert_eq!(field(&[("limit", "10"), ("per_page", "20")]), "per_page");
        assert_eq!(field(&[("includeTotal", "yes please")]), "includeTotal");
        assert_eq!(field(&[("assistantId", "a"), ("assistantId", "b")]), "assistantId");
        assert_eq!(field(&[("cursor", "")]), "cursor");
        assert_eq!(field(&[("type", "outbound"), ("direction", "inbound")]), "type");
        assert_eq!(field(&[("sort", "up"), ("limit", "0"), ("colour", "red")]), "colour");
    }

    #[test]
    fn aliases_and_repeats_that_agree_are_accepted() {
        let q = parse(&[("type", "web"), ("per_page", "100")]).unwrap();
        assert_eq!((q.filters.direction, q.limit), (Some(Direction::Web), 100));
        let q = parse(&[("direction", "web"), ("type", "web"), ("limit", "5"), ("per_page", "5")]).unwrap();
        assert_eq!((q.filters.direction, q.limit), (Some(Direction::Web), 5));
        let q = parse(&[("status", "failed,busy"), ("status", "busy")]).unwrap();
        assert_eq!(q.filters.statuses, BTreeSet::from(["busy", "failed"]));
    }

    #[test]
    fn dates_cover_whole_utc_days_and_instants_are_inclusive() {
        let q = parse(&[("dateFrom", "2025-01-15"), ("dateTo", "2025-01-15")]).unwrap();
        assert_eq!(q.filters.from, Some("2025-01-15T00:00:00Z".parse().unwrap()));
        assert_eq!(q.filters.until, Some("2025-01-16T00:00:00Z".parse().unwrap()));
        let q = parse(&[
            ("dateFrom", "2025-01-15T10:30:00+03:00"),
            ("dateTo", "2025-01-15T10:30:00+03:00"),
        ])
        .unwrap();
        assert_eq!(q.filters.from, Some("2025-01-15T07:30:00Z".parse().unwrap()));
        assert_eq!(q.filters.until, Some("2025-01-15T07:30:00.000000001Z".parse().unwrap()));
        assert_eq!(parse(&[("dateTo", "9999-12-31")]).unwrap().filters.until, None);
        // Beyond the years a list key can hold: no bound where that is right, a 400 where nothing could match.
        assert_eq!(
            parse(&[("dateFrom", "0000-01-01T00:00:00+01:00")])
                .unwrap()
                .filters
                .from,
            None
        );
        assert_eq!(field(&[("dateFrom", "9999-12-31T23:00:00-05:00")]), "dateFrom");
        assert_eq!(field(&[("dateTo", "0000-01-01T00:00:00+01:00")]), "dateTo");
        let q = parse(&[("assistantId", &"ü".repeat(128))]).unwrap();
        assert_eq!(q.filters.assistant_id.map(|a| a.chars().count()), Some(128));
    }

    #[test]
    fn phone_numbers_are_normalised_and_a_decoded_plus_is_restored() {
        for raw in ["+14155550100", " 14155550100", "+1 415 555 0100", "0014155550100"] {
            let q = parse(&[("phoneNumber", raw)]).unwrap();
            assert_eq!(q.filters.phone_number.as_deref(), Some("+14155550100"), "{raw:?}");
        }
    }

    #[test]
    fn the_same_list_asked_two_ways_has_one_binding_and_a_different_list_another() {
        let a = parse(&[
            ("status", "failed,busy"),
            ("type", "inbound"),
            ("dateFrom", "2025-01-15"),
        ])
        .unwrap();
        let b = parse(&[
            ("direction", "inbound"),
            ("status", "busy"),
            ("status", "failed"),
            ("dateFrom", "2025-01-15T00:00:00Z"),
            ("limit", "3"),
        ])
        .unwrap();
        assert_eq!(a.binding(), b.binding());
        let c = parse(&[
            ("status", "failed,busy"),
            ("type", "inbound"),
            ("dateFrom", "2025-01-15"),
            ("sort", "asc"),
        ])
        .unwrap();
        assert_ne!(a.binding(), c.binding());
        let every: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
        let all = parse(&[("status", every.join(",").as_str())]).unwrap();
        assert_eq!(all.binding(), parse(&[]).unwrap().binding());
    }

    #[test]
    fn the_most_selective_single_valued_filter_picks_the_index() {
        let plan = |q: &[(&str, &str)]| parse(q).unwrap().plan(&acme());
        let p = plan(&[]);
        assert_eq!(
            (p.index, p.partition.as_str(), p.conditions.len()),
            (ListIndex::Time, "T#acme", 0)
        );
        assert_eq!(p.read_budget(15), 16);
        let p = plan(&[("status", "failed"), ("direction", "inbound")]);
        assert_eq!((p.index, p.partition.as_str()), (ListIndex::Status, "T#acme#failed"));
        assert_eq!(
            p.conditions,
            vec![Condition {
                attribute: "byDirectionPk",
                values: vec!["T#acme#inbound".into()]
            }]
        );
        assert_eq!(p.read_budget(15), 30);
        let p = plan(&[
            ("status", "failed,busy"),
            ("assistantId", "a1"),
            ("phoneNumber", "+14155550100"),
        ]);
        assert_eq!(
            (p.index, p.partition.as_str()),
            (ListIndex::Customer, "T#acme#+14155550100")
        );
        assert_eq!(p.conditions.len(), 2);
        let p = plan(&[("status", "failed,busy")]);
        assert_eq!(p.index, ListIndex::Time);
        assert_eq!(
            p.conditions[0].values,
            vec!["T#acme#busy".to_owned(), "T#acme#failed".to_owned()]
        );
        let p = plan(&[("dateFrom", "2025-01-15"), ("sort", "asc")]);
        assert_eq!(p.lower.as_deref(), Some("2025-01-15T00:00:00.000000000Z"));
        assert!(p.ascending && p.upper.is_none());
    }

    #[test]
    fn a_page_cut_at_the_limit_resumes_after_its_last_item_and_a_short_one_after_the_last_read() {
        let read = |n: usize, last: Option<&str>| Read {
            items: (0..n).map(|i| (format!("p{i}"), i)).collect(),
            unreadable: 0,
            last_read: last.map(str::to_owned),
        };
        assert_eq!(cut(read(4, Some("p3")), 3), (vec![0, 1, 2], Some("p2".into())));
        assert_eq!(cut(read(2, Some("p9")), 3), (vec![0, 1], Some("p9".into())));
        assert_eq!(cut(read(0, Some("p9")), 3), (vec![], Some("p9".into())));
        assert_eq!(cut(read(3, None), 3), (vec![0, 1, 2], None));
    }
}
