//! list-calls through its Lambda entry point, against DynamoDB Local: every filter combination compared with
//! a brute-force filter of the same data, the cost of each page, the cursor's guarantees, and validation.

use std::collections::{BTreeMap, BTreeSet};

use callrecords::model::{CallContent, CallRecord, CallStatus, Direction};
use callrecords::store::calls::Condition;
use callrecords::synth::Generator;
use callrecords::TenantId;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use integration_tests::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const NOW: &str = "2025-03-01T00:00:00Z";

/// Customers' numbers as platforms send them, and the E.164 form the API must file them under.
const CUSTOMERS: [(&str, &str); 4] = [
    ("+1 (415) 555-0101", "+14155550101"),
    ("0014155550102", "+14155550102"),
    ("+90 532 111 22 33", "+905321112233"),
    ("+442079460958", "+442079460958"),
];

fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}

/// A call as the brute-force filter sees it, computed from what was written, not by the product's code.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    status: &'static str,
    direction: &'static str,
    assistant: Option<String>,
    campaign: Option<String>,
    number_id: Option<String>,
    customer: Option<&'static str>,
    time: DateTime<Utc>,
}

/// `n` calls for `t` over two months: every status and direction, several assistants, campaigns, numbers
/// and customers, calls at the very same instant, queued calls that have not started, calls without an
/// assistant.
fn dataset(t: &str, n: usize, seed: u64) -> (Vec<CallRecord>, Vec<Row>) {
    let mut generator = Generator::new(seed);
    let mut rng = SmallRng::seed_from_u64(seed);
    let base: DateTime<Utc> = at("2025-01-01T00:00:00Z");
    let mut records = Vec::new();
    let mut rows = Vec::new();
    let mut start = base;
    for i in 0..n {
        // Most calls complete; every status occurs.
        let status = if rng.random_bool(0.5) {
            CallStatus::Completed
        } else {
            CallStatus::ALL[rng.random_range(0..CallStatus::ALL.len())]
        };
        let direction = [
            Direction::Inbound,
            Direction::Outbound,
            Direction::Outbound,
            Direction::Web,
        ][rng.random_range(0..4)];
        // One call in ten starts at the same instant as the one before: order falls back to the id.
        if i % 10 != 3 {
            start = base
                + Duration::seconds(rng.random_range(0..58 * 86_400))
                + Duration::milliseconds(rng.random_range(0..1000));
        }
        let id = format!("c{i:04}");
        let mut call = generator.call(&tenant(t), &id, status, direction, start, 0);
        call.content = CallContent::default();
        let customer = CUSTOMERS[rng.random_range(0..CUSTOMERS.len())];
        let mut customer_e164 = None;
        match direction {
            Direction::Inbound => {
                call.summary.from = Some(customer.0.to_owned());
                customer_e164 = Some(customer.1);
            }
            Direction::Outbound => {
                call.summary.to = Some(customer.0.to_owned());
                customer_e164 = Some(customer.1);
            }
            Direction::Web => {}
        }
        if i % 13 == 0 {
            call.summary.assistant_id = None;
            call.summary.assistant = None;
        }
        if i % 17 == 0 {
            call.summary.phone_number_id = Some("phone_rare".into());
        }
        let s = &call.summary;
        rows.push(Row {
            id: id.clone(),
            status: s.status.as_str(),
            direction: s.direction.as_str(),
            assistant: s.assistant_id.clone(),
            campaign: s.campaign_id.clone(),
            number_id: s.phone_number_id.clone(),
            customer: customer_e164,
            time: s.start_time.unwrap_or(s.created_at),
        });
        records.push(call);
    }
    (records, rows)
}

async fn load(stack: &Stack, t: &str, records: Vec<CallRecord>) {
    stack
        .app
        .store
        .put_calls(&tenant(t), records, 4, chrono::Utc::now())
        .await
        .unwrap();
}

/// One list request's filters, both as query parameters and as the brute-force predicate.
#[derive(Debug, Clone, Default)]
struct Ask {
    params: Vec<(String, String)>,
    statuses: Vec<&'static str>,
    direction: Option<&'static str>,
    assistant: Option<String>,
    campaign: Option<String>,
    number_id: Option<String>,
    customer: Option<&'static str>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Ask {
    fn param(&mut self, k: &str, v: impl Into<String>) {
        self.params.push((k.to_owned(), v.into()));
    }

    fn matches(&self, r: &Row) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&r.status))
            && self.direction.is_none_or(|d| d == r.direction)
            && self.assistant.as_ref().is_none_or(|a| r.assistant.as_ref() == Some(a))
            && self.campaign.as_ref().is_none_or(|c| r.campaign.as_ref() == Some(c))
            && self.number_id.as_ref().is_none_or(|n| r.number_id.as_ref() == Some(n))
            && self.customer.is_none_or(|c| r.customer == Some(c))
            && self.from.is_none_or(|f| r.time >= f)
            && self.until.is_none_or(|u| r.time < u)
    }

    fn expected(&self, rows: &[Row], ascending: bool) -> Vec<String> {
        let mut hits: Vec<&Row> = rows.iter().filter(|r| self.matches(r)).collect();
        hits.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        if !ascending {
            hits.reverse();
        }
        hits.into_iter().map(|r| r.id.clone()).collect()
    }
}

fn pick<'a, T>(rng: &mut SmallRng, from: &'a [T]) -> &'a T {
    &from[rng.random_range(0..from.len())]
}

/// A bound for `dateFrom` / `dateTo`: a day, an instant, or the exact instant of some call (to pin down
/// that instants are inclusive). Returns the parameter value and the bound it means.
fn date_value(rng: &mut SmallRng, rows: &[Row], upper: bool) -> (String, DateTime<Utc>) {
    match rng.random_range(0..3) {
        0 => {
            let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + Duration::days(rng.random_range(0..60));
            let bound = if upper { day.succ_opt().unwrap() } else { day };
            (day.to_string(), bound.and_hms_opt(0, 0, 0).unwrap().and_utc())
        }
        1 => {
            let t = at("2025-01-01T00:00:00Z") + Duration::minutes(rng.random_range(0..60 * 24 * 58));
            let bound = if upper { t + Duration::nanoseconds(1) } else { t };
            (t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(), bound)
        }
        _ => {
            let t = pick(rng, rows).time;
            let bound = if upper { t + Duration::nanoseconds(1) } else { t };
            (t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true), bound)
        }
    }
}

/// The request for filter combination `mask` (one bit per filter; `status_kind` 0 none, 1 one, 2 several).
fn ask(mask: u32, status_kind: u32, rows: &[Row], rng: &mut SmallRng) -> Ask {
    let mut a = Ask::default();
    let statuses: Vec<&'static str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
    match status_kind {
        1 => a.statuses = vec![*pick(rng, &statuses)],
        2 => {
            let n = rng.random_range(2..5);
            let mut set = BTreeSet::new();
            while set.len() < n {
                set.insert(*pick(rng, &statuses));
            }
            a.statuses = set.into_iter().collect();
        }
        _ => {}
    }
    if !a.statuses.is_empty() {
        let joined = a.statuses.join(",");
        a.param("status", joined);
    }
    if mask & 1 != 0 {
        let d = *pick(rng, &["inbound", "outbound", "web"]);
        a.direction = Some(d);
        let name = if rng.random_bool(0.5) { "direction" } else { "type" };
        a.param(name, d);
    }
    if mask & 2 != 0 {
        let v = pick(rng, &["asst_support", "asst_sales", "asst_booking", "asst_none"]).to_string();
        a.param("assistantId", &v);
        a.assistant = Some(v);
    }
    if mask & 4 != 0 {
        let v = pick(rng, &["camp_q4", "camp_reminders"]).to_string();
        a.param("campaignId", &v);
        a.campaign = Some(v);
    }
    if mask & 8 != 0 {
        let v = pick(rng, &["phone_main", "phone_sales", "phone_rare"]).to_string();
        a.param("phoneNumberId", &v);
        a.number_id = Some(v);
    }
    if mask & 16 != 0 {
        let (spelled, e164) = *pick(rng, &CUSTOMERS);
        // Asked in another spelling than the one stored, or in E.164.
        let asked = if rng.random_bool(0.5) { spelled } else { e164 };
        a.param("phoneNumber", asked);
        a.customer = Some(e164);
    }
    let mut from = (mask & 32 != 0).then(|| date_value(rng, rows, false));
    let mut to = (mask & 64 != 0).then(|| date_value(rng, rows, true));
    if let (Some(f), Some(t)) = (&from, &to) {
        if f.1 >= t.1 {
            // Keep the request valid: a range that ends before it starts is its own test.
            from = Some(date_value(rng, rows, false)).filter(|f| f.1 < t.1);
            if from.is_none() {
                to = None;
            }
        }
    }
    if let Some((v, b)) = from {
        a.param("dateFrom", v);
        a.from = Some(b);
    }
    if let Some((v, b)) = to {
        a.param("dateTo", v);
        a.until = Some(b);
    }
    a
}

struct Walk {
    ids: Vec<String>,
    pages: usize,
    total: Option<u64>,
}

/// Every page of a list, checking on each: status 200, at most `limit` calls, one DynamoDB request, at most
/// 2 × limit items read, and a cursor never seen before.
async fn walk(stack: &Stack, t: &str, params: &[(String, String)], limit: u32, total: bool) -> Walk {
    let mut cursors = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut out = Walk {
        ids: Vec::new(),
        pages: 0,
        total: None,
    };
    let limit_s = limit.to_string();
    loop {
        let mut q: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        q.push((if limit.is_multiple_of(2) { "limit" } else { "per_page" }, &limit_s));
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let first_with_total = total && out.pages == 0;
        if first_with_total {
            q.push(("includeTotal", "true"));
        }
        let before = stack.counter.snapshot();
        let reply = list(stack, t, &q).await;
        let cost = stack.counter.since(before);
        assert_eq!(reply.status, 200, "{q:?}: {}", reply.body);
        let page = reply.body["pagination"].clone();
        let data = reply.body["data"].as_array().expect("data is a list");
        assert!(data.len() <= limit as usize, "{q:?}: {} calls", data.len());
        assert_eq!(page["limit"], limit);
        if first_with_total {
            out.total = page["total"].as_u64();
            assert_eq!(page["totalExact"], true, "{q:?}: a total within its budget is exact");
        } else {
            assert_eq!(cost.requests, 1, "{q:?}: one Query per page");
            assert!(
                cost.items_read <= 2 * u64::from(limit),
                "{q:?}: read {} items",
                cost.items_read
            );
            assert!(page.get("total").is_none() && page.get("totalExact").is_none());
        }
        out.ids
            .extend(data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        out.pages += 1;
        assert!(out.pages < 2000, "{q:?}: no end");
        match page["hasMore"].as_bool().unwrap() {
            true => {
                let next = page["nextCursor"]
                    .as_str()
                    .expect("a cursor when there is more")
                    .to_owned();
                assert!(cursors.insert(next.clone()), "{q:?}: the same cursor twice");
                cursor = Some(next);
            }
            false => {
                assert_eq!(page["nextCursor"], Value::Null);
                return out;
            }
        }
    }
}

async fn every_combination_matches_brute_force(ascending: bool) {
    let stack = stack(NOW).await;
    let (acme, rows) = dataset("acme", 160, 7);
    let (globex, _) = dataset("globex", 60, 8);
    load(&stack, "acme", acme).await;
    load(&stack, "globex", globex).await;

    let mut rng = SmallRng::seed_from_u64(if ascending { 11 } else { 12 });
    let mut short_pages_seen = 0;
    // How much of the comparison had something to compare, counted from the brute-force results: a
    // filter that matched nothing in the data would pass every comparison and prove nothing.
    let mut non_empty = 0;
    let mut several_pages = 0;
    let mut non_empty_with = [0usize; 7];
    let mut non_empty_with_status = [0usize; 3];
    for status_kind in 0..3 {
        for mask in 0..128u32 {
            let mut a = ask(mask, status_kind, &rows, &mut rng);
            if ascending {
                a.param("sort", "asc");
            } else if rng.random_bool(0.5) {
                a.param("sort", "desc");
            }
            let want = a.expected(&rows, ascending);
            let limit = rng.random_range(1..=9);
            let with_total = mask % 4 == 0;
            let got = walk(&stack, "acme", &a.params, limit, with_total).await;
            assert_eq!(got.ids, want, "{:?} limit {limit}", a.params);
            if with_total {
                assert_eq!(got.total, Some(want.len() as u64), "{:?}: total", a.params);
            }
            if got.pages > want.len().div_ceil(limit as usize).max(1) {
                short_pages_seen += 1;
            }
            if !want.is_empty() {
                non_empty += 1;
                non_empty_with_status[status_kind as usize] += 1;
                for (bit, n) in non_empty_with.iter_mut().enumerate() {
                    if mask & (1 << bit) != 0 {
                        *n += 1;
                    }
                }
            }
            // More calls than fit on a page: the walk above had to follow `hasMore` and its cursor.
            if want.len() > limit as usize {
                several_pages += 1;
            }
        }
    }
    // Of the 384 combinations at least 100 found calls and 40 took more than one page (about 150 and 65 do
    // with this data); each filter, and each kind of status filter, found calls in at least 20 of the
    // combinations that use it (34 or more do), so each one was compared with the brute force on real results.
    assert!(non_empty >= 100, "{non_empty} combinations found calls");
    assert!(
        several_pages >= 40,
        "{several_pages} combinations took more than one page"
    );
    let filters = [
        "direction",
        "assistantId",
        "campaignId",
        "phoneNumberId",
        "phoneNumber",
        "dateFrom",
        "dateTo",
    ];
    for (name, n) in filters.iter().zip(non_empty_with) {
        assert!(n >= 20, "{name}: {n} combinations with it found calls");
    }
    for (kind, n) in ["no status", "one status", "several statuses"]
        .iter()
        .zip(non_empty_with_status)
    {
        assert!(n >= 20, "{kind}: {n} combinations found calls");
    }
    // Filters the index cannot apply do give short pages; the walks above prove they still end complete.
    assert!(short_pages_seen > 10, "{short_pages_seen}");
}

#[tokio::test]
async fn every_filter_combination_newest_first_matches_a_brute_force_filter() {
    every_combination_matches_brute_force(false).await;
}

#[tokio::test]
async fn every_filter_combination_oldest_first_matches_a_brute_force_filter() {
    every_combination_matches_brute_force(true).await;
}

#[tokio::test]
async fn a_page_costs_one_query_and_the_same_items_whatever_the_table_size() {
    let filters: [&[(&str, &str)]; 6] = [
        &[],
        &[("status", "completed")],
        &[("status", "completed"), ("direction", "outbound")],
        &[("status", "busy,failed")],
        &[
            ("assistantId", "asst_sales"),
            ("dateFrom", "2025-01-10"),
            ("dateTo", "2025-02-20"),
        ],
        &[("phoneNumber", "+14155550101"), ("sort", "asc")],
    ];
    let mut costs: Vec<BTreeMap<String, (u64, u64)>> = Vec::new();
    for size in [300usize, 3000] {
        let stack = stack(NOW).await;
        let (calls, _) = dataset("acme", size, 21);
        load(&stack, "acme", calls).await;
        // Another tenant's calls fill the same table.
        let (other, _) = dataset("globex", size, 22);
        load(&stack, "globex", other).await;
        let mut seen = BTreeMap::new();
        for f in filters {
            let mut cursor: Option<String> = None;
            // The first page, then the third: depth costs nothing extra.
            for page in 1..=3 {
                let mut q = f.to_vec();
                q.push(("limit", "10"));
                if let Some(c) = &cursor {
                    q.push(("cursor", c));
                }
                let before = stack.counter.snapshot();
                let reply = list(&stack, "acme", &q).await;
                let cost = stack.counter.since(before);
                assert_eq!(reply.status, 200, "{q:?}");
                assert_eq!(cost.requests, 1, "{f:?} page {page}");
                assert!(cost.items_read <= 20, "{f:?} page {page}: {} items", cost.items_read);
                if page != 2 {
                    seen.insert(format!("{f:?} page {page}"), (cost.requests, cost.items_read));
                }
                cursor = Some(
                    reply.body["pagination"]["nextCursor"]
                        .as_str()
                        .expect("more pages")
                        .to_owned(),
                );
            }
        }
        costs.push(seen);
    }
    assert_eq!(
        costs[0], costs[1],
        "requests and items read per page at 300 and at 3,000 calls"
    );
    let unfiltered = costs[0]["[] page 1"];
    assert_eq!(unfiltered, (1, 11), "an unfiltered page of 10 reads 11 items");
}

#[tokio::test]
async fn another_tenants_calls_never_appear_even_with_the_same_ids() {
    let stack = stack(NOW).await;
    let (acme, acme_rows) = dataset("acme", 40, 31);
    let (globex, globex_rows) = dataset("globex", 40, 32);
    load(&stack, "acme", acme).await;
    load(&stack, "globex", globex).await;

    let all = walk(&stack, "acme", &[], 100, true).await;
    assert_eq!(all.ids.len(), 40);
    assert_eq!(all.total, Some(40));
    let mine: BTreeSet<String> = acme_rows.iter().map(|r| r.id.clone()).collect();
    assert_eq!(all.ids.iter().cloned().collect::<BTreeSet<_>>(), mine);

    // Same ids, other data: every call served is acme's own version. Most ids (36 of 40) differ in status
    // or direction between the two tenants, so a call served from the wrong one would show.
    let differ = acme_rows
        .iter()
        .zip(&globex_rows)
        .filter(|(a, g)| a.id == g.id && (a.status, a.direction) != (g.status, g.direction))
        .count();
    assert!(differ >= 20, "{differ} of 40 calls differ between the tenants");
    let reply = list(&stack, "acme", &[("limit", "100")]).await;
    let served = reply.body["data"].as_array().unwrap();
    assert_eq!(served.len(), 40);
    for call in served {
        let row = acme_rows.iter().find(|r| r.id == call["id"]).unwrap();
        assert_eq!(call["status"], row.status, "{}", call["id"]);
        assert_eq!(call["direction"], row.direction, "{}", call["id"]);
    }
    assert_eq!(list(&stack, "nobody", &[]).await.body["data"], Value::Array(vec![]));
}

async fn first_cursor(stack: &Stack, t: &str, q: &[(&str, &str)]) -> String {
    let reply = list(stack, t, q).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["pagination"]["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned()
}

fn assert_invalid_cursor(reply: &Reply) {
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "INVALID_CURSOR", "{}", reply.body);
    assert_eq!(reply.body["error"]["details"]["field"], "cursor");
}

#[tokio::test]
async fn forged_foreign_altered_or_reused_cursors_are_refused() {
    let stack = stack(NOW).await;
    let (acme, _) = dataset("acme", 30, 41);
    let (globex, _) = dataset("globex", 30, 41);
    load(&stack, "acme", acme).await;
    load(&stack, "globex", globex).await;
    let filters = [("status", "completed"), ("limit", "3")];
    let cursor = first_cursor(&stack, "acme", &filters).await;

    // The same cursor with the same filters works, again and again, with any page size.
    let again = list(&stack, "acme", &[filters[0], ("limit", "3"), ("cursor", &cursor)]).await;
    assert_eq!(again.status, 200);
    let twice = list(&stack, "acme", &[filters[0], ("limit", "3"), ("cursor", &cursor)]).await;
    assert_eq!(again.body["data"], twice.body["data"]);
    assert_eq!(
        list(&stack, "acme", &[filters[0], ("limit", "7"), ("cursor", &cursor)])
            .await
            .status,
        200
    );

    // Another tenant, other filters, the other sort: refused, though both tenants hold the same ids.
    assert_invalid_cursor(&list(&stack, "globex", &[filters[0], ("cursor", &cursor)]).await);
    assert_invalid_cursor(&list(&stack, "acme", &[("status", "failed"), ("cursor", &cursor)]).await);
    assert_invalid_cursor(&list(&stack, "acme", &[("cursor", &cursor)]).await);
    assert_invalid_cursor(&list(&stack, "acme", &[filters[0], ("sort", "asc"), ("cursor", &cursor)]).await);
    assert_invalid_cursor(
        &list(
            &stack,
            "acme",
            &[filters[0], ("direction", "inbound"), ("cursor", &cursor)],
        )
        .await,
    );

    // Altered anywhere, or made up.
    let mut chars: Vec<char> = cursor.chars().collect();
    for i in [0, chars.len() / 2, chars.len() - 1] {
        let original = chars[i];
        chars[i] = if original == 'A' { 'B' } else { 'A' };
        let altered: String = chars.iter().collect();
        assert_invalid_cursor(&list(&stack, "acme", &[filters[0], ("cursor", &altered)]).await);
        chars[i] = original;
    }
    for forged in [
        "abc",
        "AXRoaXMgaXMgbm90IGEgY3Vyc29yIGZyb20gdGhpcyBBUEk",
        "%%%",
        &"A".repeat(600),
    ] {
        assert_invalid_cursor(&list(&stack, "acme", &[filters[0], ("cursor", forged)]).await);
    }

    // A cursor made with another key (another deployment) is refused too.
    let other = callrecords::cursor::CursorKeys::new(&callrecords::cursor::generate_secret(), None).unwrap();
    let position = "2025-01-20T00:00:00.000000000Z#c0001";
    let binding = callrecords::list::ListQuery::parse([("status", "completed")])
        .unwrap()
        .binding();
    let foreign = other.sign(&tenant("acme"), &binding, position);
    assert_invalid_cursor(&list(&stack, "acme", &[filters[0], ("cursor", &foreign)]).await);
}

#[tokio::test]
async fn a_selective_filter_gives_short_pages_that_always_progress() {
    let stack = stack(NOW).await;
    let (mut calls, _) = dataset("acme", 120, 51);
    // Exactly two failed web calls among 120, far apart in time.
    for c in calls.iter_mut() {
        if c.summary.status == CallStatus::Failed && c.summary.direction == Direction::Web {
            c.summary.status = CallStatus::Completed;
        }
    }
    for i in [5, 100] {
        calls[i].summary.status = CallStatus::Failed;
        calls[i].summary.direction = Direction::Web;
    }
    let wanted: BTreeSet<String> = [calls[5].summary.id.clone(), calls[100].summary.id.clone()].into();
    load(&stack, "acme", calls).await;

    // The failed index serves; direction is filtered under a budget of 2 × 3 items per page.
    let params = vec![
        ("status".to_owned(), "failed".to_owned()),
        ("type".to_owned(), "web".to_owned()),
    ];
    let got = walk(&stack, "acme", &params, 3, true).await;
    assert_eq!(got.ids.iter().cloned().collect::<BTreeSet<_>>(), wanted);
    assert_eq!(got.total, Some(2));

    // Several statuses and a direction: the time index serves, so pages run short and empty ones appear.
    let params = vec![
        ("status".to_owned(), "failed,busy".to_owned()),
        ("direction".to_owned(), "web".to_owned()),
    ];
    let got = walk(&stack, "acme", &params, 2, false).await;
    assert!(
        got.pages > got.ids.len(),
        "{} pages for {} calls",
        got.pages,
        got.ids.len()
    );
}

#[tokio::test]
async fn a_call_written_during_paging_neither_repeats_nor_hides_others() {
    let stack = stack(NOW).await;
    let (calls, rows) = dataset("acme", 50, 61);
    load(&stack, "acme", calls.clone()).await;
    let reply = list(&stack, "acme", &[("limit", "10")]).await;
    let mut ids: Vec<String> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = reply.body["pagination"]["nextCursor"].as_str().unwrap().to_owned();

    // A new call newer than everything, and one of the calls already listed changes status.
    let mut newest = calls[0].clone();
    newest.summary.id = "c_new".into();
    newest.summary.start_time = Some(at("2025-02-28T23:00:00Z"));
    let mut changed = calls.iter().find(|c| c.summary.id == ids[0]).unwrap().clone();
    changed.summary.status = CallStatus::Failed;
    load(&stack, "acme", vec![newest, changed]).await;

    loop {
        let reply = list(&stack, "acme", &[("limit", "10"), ("cursor", &cursor)]).await;
        ids.extend(
            reply.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match reply.body["pagination"]["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let want = Ask::default().expected(&rows, false);
    assert_eq!(
        ids, want,
        "every call once, in order; the newer call belongs to a fresh listing"
    );
    let fresh = list(&stack, "acme", &[("limit", "1")]).await;
    assert_eq!(fresh.body["data"][0]["id"], "c_new");
    let failed = list(&stack, "acme", &[("status", "failed"), ("limit", "100")]).await;
    assert!(failed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == want[0].as_str()));
}

#[tokio::test]
async fn bad_parameters_are_400s_that_name_the_parameter() {
    let stack = stack(NOW).await;
    let cases: [(&[(&str, &str)], &str); 9] = [
        (&[("colour", "red")], "colour"),
        (&[("status", "ended_by_customer")], "status"),
        (&[("limit", "0")], "limit"),
        (&[("per_page", "101")], "per_page"),
        (&[("sort", "newest")], "sort"),
        (&[("dateFrom", "2025-02-01"), ("dateTo", "2025-01-01")], "dateFrom"),
        (&[("dateTo", "31/01/2025")], "dateTo"),
        (&[("phoneNumber", "555-0101")], "phoneNumber"),
        (&[("includeTotal", "maybe")], "includeTotal"),
    ];
    for (q, field) in cases {
        let reply = list(&stack, "acme", q).await;
        assert_eq!(reply.status, 400, "{q:?}");
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["error"]["code"], "INVALID_PARAMETER", "{q:?}");
        assert_eq!(reply.body["error"]["details"]["field"], field, "{q:?}");
        assert_eq!(reply.body["error"]["requestId"], "evt-list-calls");
    }
}

#[tokio::test]
async fn a_list_entry_is_the_call_without_content_or_link() {
    let stack = stack(NOW).await;
    let mut generator = Generator::new(71);
    // With content: the list must leave it out and still report the message count.
    let call = generator.call(
        &tenant("acme"),
        "call_full",
        CallStatus::Completed,
        Direction::Inbound,
        at("2025-02-27T10:00:00Z"),
        3,
    );
    stack
        .app
        .store
        .put_call(&tenant("acme"), call.clone(), &Condition::Always, chrono::Utc::now())
        .await
        .unwrap();
    let reply = list(&stack, "acme", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["success"], true);
    let entry = &reply.body["data"][0];
    assert_eq!(entry["id"], "call_full");
    assert_eq!(entry["messagesCount"], call.summary.messages_count);
    assert!(call.summary.messages_count > 0);
    for absent in [
        "messages",
        "events",
        "latency",
        "transcript",
        "recordingUrl",
        "recordingUrlExpiresAt",
    ] {
        assert!(entry.get(absent).is_none(), "{absent} in a list entry");
    }
    assert_eq!(entry["recordingStatus"], "completed");
    assert!(entry["recordingExpiresAt"].is_string());
    let detail = fetch(&stack, "acme", "call_full").await.body["data"].clone();
    for field in [
        "assistantId",
        "status",
        "direction",
        "from",
        "startTime",
        "cost",
        "currency",
        "duration",
    ] {
        assert_eq!(entry[field], detail[field], "{field}");
    }
    assert_eq!(
        reply.body["pagination"],
        serde_json::json!({"limit": 15, "hasMore": false, "nextCursor": null})
    );
}

/// One page with `includeTotal=true`: the reply and what it cost.
async fn page_with_total(stack: &Stack, q: &[(&str, &str)]) -> (Value, callrecords::store::metrics::Snapshot) {
    let mut q = q.to_vec();
    q.push(("includeTotal", "true"));
    let before = stack.counter.snapshot();
    let reply = list(stack, "acme", &q).await;
    let cost = stack.counter.since(before);
    assert_eq!(reply.status, 200, "{q:?}: {}", reply.body);
    (reply.body, cost)
}

fn calls_on(body: &Value) -> u64 {
    body["data"].as_array().expect("data is a list").len() as u64
}

/// Filters on every kind of plan: the time index alone, one index, an index and a filter it cannot apply,
/// the time index with a filter, dates.
fn total_filters() -> Vec<Ask> {
    let mut asks = Vec::new();
    asks.push(Ask::default());
    let mut a = Ask::default();
    a.param("status", "completed");
    a.statuses = vec!["completed"];
    asks.push(a);
    let mut a = Ask::default();
    a.param("status", "completed");
    a.param("direction", "outbound");
    a.statuses = vec!["completed"];
    a.direction = Some("outbound");
    asks.push(a);
    let mut a = Ask::default();
    a.param("status", "busy,failed");
    a.statuses = vec!["busy", "failed"];
    asks.push(a);
    let mut a = Ask::default();
    a.param("assistantId", "asst_sales");
    a.param("dateFrom", "2025-01-10");
    a.param("dateTo", "2025-02-20");
    a.assistant = Some("asst_sales".into());
    a.from = Some(at("2025-01-10T00:00:00Z"));
    a.until = Some(at("2025-02-21T00:00:00Z"));
    asks.push(a);
    asks
}

#[tokio::test]
async fn a_total_within_its_budget_is_exact_with_or_without_filters() {
    let mut stack = stack(NOW).await;
    let (calls, rows) = dataset("acme", 1200, 81);
    load(&stack, "acme", calls).await;
    let (other, _) = dataset("globex", 300, 82);
    load(&stack, "globex", other).await;
    // One item more than the tenant has: every range fits, however the slices' requests interleave, and a
    // slice's share of the items often ends inside its range, so its count takes several requests.
    stack.app.config.total_budget.max_items = 1201;
    for a in total_filters() {
        let want = a.expected(&rows, false).len() as u64;
        assert!(want > 20, "{:?}: {want} calls, more than a page", a.params);
        let mut q: Vec<(&str, &str)> = a.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        q.push(("limit", "5"));
        let (body, cost) = page_with_total(&stack, &q).await;
        assert_eq!(body["pagination"]["totalExact"], true, "{q:?}");
        assert_eq!(body["pagination"]["total"], want, "{q:?}");
        assert!(cost.requests > 1, "{q:?}: counted beyond the page");
    }
}

#[tokio::test]
async fn a_first_page_that_holds_the_whole_list_is_its_own_exact_total() {
    let mut stack = stack(NOW).await;
    let (calls, rows) = dataset("acme", 40, 83);
    load(&stack, "acme", calls).await;
    // No time to count at all: the page alone knows the whole list.
    stack.app.config.total_budget.time = std::time::Duration::ZERO;
    let (body, cost) = page_with_total(&stack, &[("limit", "100")]).await;
    assert_eq!(body["pagination"]["hasMore"], false);
    assert_eq!(body["pagination"]["total"], 40);
    assert_eq!(body["pagination"]["totalExact"], true);
    assert_eq!(cost.requests, 1, "the page's one Query, no count");
    let want = Ask {
        statuses: vec!["completed"],
        ..Ask::default()
    }
    .expected(&rows, false)
    .len() as u64;
    let (body, cost) = page_with_total(&stack, &[("status", "completed"), ("limit", "100")]).await;
    assert_eq!(body["pagination"]["total"], want);
    assert_eq!(body["pagination"]["totalExact"], true);
    assert_eq!(cost.requests, 1);
}

#[tokio::test]
async fn a_small_read_budget_answers_a_lower_bound_and_reads_no_more_than_it() {
    let mut stack = stack(NOW).await;
    let (calls, rows) = dataset("acme", 1200, 84);
    load(&stack, "acme", calls).await;
    stack.app.config.total_budget.max_items = 300;

    // No filter: every item read is a call counted, so the count is exactly the budget's 300 items.
    let (body, cost) = page_with_total(&stack, &[("limit", "10")]).await;
    assert_eq!(calls_on(&body), 10);
    assert_eq!(body["pagination"]["totalExact"], false);
    assert_eq!(body["pagination"]["total"], 300);
    // The page's 11 items, the range's first and last (one each), and the count's 300, whatever the order
    // its slices ran in. Requests: the page, the two ends, and one per hand-out of items to a slice. A
    // budget below one request's 1,000 items is handed out whole each time, so again only after a slice
    // reached the end of its range and gave back what it did not read: at most 1 + 8 hand-outs.
    assert_eq!(cost.items_read, 11 + 2 + 300);
    assert!(cost.requests <= 1 + 2 + 1 + 8, "{} requests", cost.requests);

    // A filter on the time index: 300 items read, the matching ones among them counted; a lower bound at
    // most the true count, at least the page's own calls.
    let ask = Ask {
        statuses: vec!["busy", "failed"],
        ..Ask::default()
    };
    let want = ask.expected(&rows, false).len() as u64;
    assert!(want > 100, "{want} busy or failed calls");
    let (body, cost) = page_with_total(&stack, &[("status", "busy,failed"), ("limit", "10")]).await;
    let total = body["pagination"]["total"].as_u64().expect("a total");
    assert_eq!(body["pagination"]["totalExact"], false);
    assert!(total < want, "{total} of {want}");
    assert!(
        total >= calls_on(&body),
        "{total} below the page's {} calls",
        calls_on(&body)
    );
    assert_eq!(cost.items_read, 20 + 2 + 300);
    assert!(cost.requests <= 1 + 2 + 1 + 8, "{} requests", cost.requests);

    // An unbounded count of the same list reads all 1,200.
    stack.app.config.total_budget.max_items = 50_000;
    let (body, cost) = page_with_total(&stack, &[("status", "busy,failed"), ("limit", "10")]).await;
    assert_eq!(body["pagination"]["totalExact"], true);
    assert_eq!(body["pagination"]["total"], want);
    assert_eq!(cost.items_read, 20 + 2 + 1200);
}

#[tokio::test]
async fn no_time_to_count_still_serves_the_page_with_its_own_calls_as_the_lower_bound() {
    let mut stack = stack(NOW).await;
    let (calls, rows) = dataset("acme", 1200, 85);
    load(&stack, "acme", calls).await;
    stack.app.config.total_budget.time = std::time::Duration::ZERO;

    let (body, cost) = page_with_total(&stack, &[("limit", "15")]).await;
    assert_eq!(calls_on(&body), 15);
    assert_eq!(body["pagination"]["hasMore"], true);
    assert_eq!(
        (&body["pagination"]["total"], &body["pagination"]["totalExact"]),
        (&Value::from(15), &Value::Bool(false))
    );
    assert_eq!(cost.requests, 1, "the page's one Query; nothing counted");

    // The last page of a walk: fewer calls than the list holds, so the page is a lower bound.
    let want = Ask::default().expected(&rows, false);
    let cursor = {
        let reply = list(&stack, "acme", &[("limit", "100"), ("sort", "asc")]).await;
        let mut cursor = reply.body["pagination"]["nextCursor"].as_str().unwrap().to_owned();
        for _ in 0..10 {
            let reply = list(
                &stack,
                "acme",
                &[("limit", "100"), ("sort", "asc"), ("cursor", &cursor)],
            )
            .await;
            cursor = reply.body["pagination"]["nextCursor"].as_str().unwrap().to_owned();
        }
        cursor
    };
    let (body, cost) = page_with_total(&stack, &[("limit", "100"), ("sort", "asc"), ("cursor", &cursor)]).await;
    assert_eq!(body["pagination"]["hasMore"], false);
    assert_eq!(calls_on(&body), want.len() as u64 - 1100);
    assert_eq!(body["pagination"]["total"], calls_on(&body));
    assert_eq!(body["pagination"]["totalExact"], false);
    assert_eq!(cost.requests, 1);
}
