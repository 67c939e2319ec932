//! list-calls benchmark: for each table size, a fresh table with that many calls in one tenant (plus a
//! second tenant of the same size beside it), then pages of several filter sets through list-calls' entry
//! point. Prints DynamoDB requests, items read and latency per page, and what `includeTotal` costs within
//! its budget (and whether its total was exact) beside a count without one. Run
//! with `scripts/bench-list`, which starts the emulators. Latency is against DynamoDB Local on this
//! machine, not AWS: compare sizes with each other, not with production.

use std::time::Instant;

use callrecords::config::TotalBudget;
use callrecords::synth::Generator;
use callrecords::{App, StoreError, TenantId};
use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use lambda_http::{Body, Request};
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// Calls in the tenant, each size a fresh table.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    calls: Vec<u64>,
    /// Pages walked per filter set.
    #[arg(long, default_value_t = 20)]
    pages: usize,
    /// Page size.
    #[arg(long, default_value_t = 15)]
    limit: u32,
    /// includeTotal's time budget (LIST_TOTAL_BUDGET_MS), ms.
    #[arg(long, default_value_t = TotalBudget::default().time.as_millis() as u64)]
    total_budget_ms: u64,
    /// includeTotal's read budget (LIST_TOTAL_MAX_ITEMS), items.
    #[arg(long, default_value_t = TotalBudget::default().max_items)]
    total_max_items: u64,
}

const FILTERS: [(&str, &str); 7] = [
    ("no filter", ""),
    ("status=completed", "status=completed"),
    ("status=failed&direction=inbound", "status=failed&direction=inbound"),
    ("status=busy,no-answer", "status=busy,no-answer"),
    (
        "assistantId&dateFrom&dateTo",
        "assistantId=asst_sales&dateFrom=2025-03-01&dateTo=2025-04-30",
    ),
    ("campaignId&sort=asc", "campaignId=camp_q4&sort=asc"),
    ("phoneNumber", "phoneNumber=%2B14150000001"),
];

fn event(query: &str) -> Request {
    let params: serde_json::Map<String, Value> = url_pairs(query)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let ev = json!({
        "version": "2.0",
        "routeKey": "GET /api/v1/calls",
        "rawPath": "/api/v1/calls",
        "rawQueryString": query,
        "headers": {"accept": "application/json", "authorization": callrecords_bench::authorization()},
        "queryStringParameters": params,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench", "domainPrefix": "bench",
            "http": {"method": "GET", "path": "/api/v1/calls", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "GET /api/v1/calls", "stage": "$default",
            "time": "01/Jun/2025:00:00:00 +0000", "timeEpoch": 1748736000000u64
        },
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&ev.to_string()).expect("valid event")
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn page(app: &App, query: &str) -> Value {
    let response = list_calls::handle(app, event(query)).await.expect("an answer");
    let status = response.status();
    let body = match response.into_body() {
        Body::Text(t) => t,
        _ => String::new(),
    };
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let now: DateTime<Utc> = "2025-06-01T00:00:00Z".parse()?;
    let tenant = TenantId::parse("bench")?;
    let other = TenantId::parse("neighbour")?;
    println!(
        "| calls in tenant | filter | pages | calls served | requests/page | items read/page (max) | items read/page (mean) | ms/page p50 | ms/page p95 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut totals = Vec::new();
    for (run, &n) in args.calls.iter().enumerate() {
        let (mut app, counter) = callrecords_bench::fresh_stack(&format!("bench-list-{run}"), now).await?;

        // Summaries only: list pages never read content parts, so content would only slow the load.
        let load = Instant::now();
        for (t, seed) in [(&tenant, 1), (&other, 2)] {
            let mut generator = Generator::new(seed);
            let mut next = 1;
            while next <= n {
                let end = (next + 5000).min(n + 1);
                let calls: Vec<_> = (next..end)
                    .map(|i| {
                        let mut c = generator.history_call(t, i, now, Duration::days(180));
                        c.content = Default::default();
                        c
                    })
                    .collect();
                // DynamoDB Local on a busy machine now and then misses the SDK's 5 s while loading; writing
                // the same calls again leaves the same table, so a chunk is simply tried again.
                let mut tries = 1;
                loop {
                    match app.store.put_calls(t, calls.clone(), 8, app.clock.now()).await {
                        Ok(()) => break,
                        Err(StoreError::Unavailable(e)) if tries < 4 => {
                            eprintln!("loading calls {next}..{end}, try {tries}: {e}");
                            tries += 1;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                next = end;
            }
        }
        eprintln!("loaded 2 × {n} calls in {:.1} s", load.elapsed().as_secs_f64());

        for (name, filter) in FILTERS {
            let mut cursor: Option<String> = None;
            let (mut served, mut pages, mut max_items, mut items, mut requests) = (0usize, 0usize, 0u64, 0u64, 0u64);
            let mut ms = Vec::new();
            while pages < args.pages {
                let mut query = format!("{filter}&limit={}", args.limit);
                if let Some(c) = &cursor {
                    query.push_str("&cursor=");
                    query.push_str(c);
                }
                let before = counter.snapshot();
                let start = Instant::now();
                let body = page(&app, query.trim_start_matches('&')).await;
                ms.push(start.elapsed().as_secs_f64() * 1000.0);
                let used = counter.since(before);
                pages += 1;
                requests += used.requests;
                items += used.items_read;
                max_items = max_items.max(used.items_read);
                served += body["data"].as_array().map_or(0, Vec::len);
                match body["pagination"]["nextCursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            ms.sort_by(f64::total_cmp);
            println!(
                "| {n} | {name} | {pages} | {served} | {:.2} | {max_items} | {:.1} | {:.1} | {:.1} |",
                requests as f64 / pages as f64,
                items as f64 / pages as f64,
                percentile(&ms, 0.5),
                percentile(&ms, 0.95),
            );
        }

        let budget = TotalBudget {
            time: std::time::Duration::from_millis(args.total_budget_ms),
            max_items: args.total_max_items,
        };
        // No budget a count of these sizes reaches: the exact total, and what it costs.
        let unbounded = TotalBudget {
            time: std::time::Duration::from_secs(60),
            max_items: u64::MAX,
        };
        for (name, filter) in [
            ("no filter", ""),
            ("status=failed&direction=inbound", "status=failed&direction=inbound"),
        ] {
            let mut runs = Vec::new();
            for limits in [budget, unbounded] {
                app.config.total_budget = limits;
                let before = counter.snapshot();
                let start = Instant::now();
                let query = format!("{filter}&limit=1&includeTotal=true");
                let body = page(&app, query.trim_start_matches('&')).await;
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                runs.push((limits, body["pagination"].clone(), counter.since(before), ms));
            }
            // The count without a budget is the number of matching calls.
            let matching = match &runs[1].1 {
                p if p["totalExact"] == true => p["total"].to_string(),
                _ => "?".to_owned(),
            };
            for (limits, pagination, used, ms) in runs {
                let limits = match limits == unbounded {
                    true => "none".to_owned(),
                    false => format!("{} ms, {} items", limits.time.as_millis(), limits.max_items),
                };
                totals.push(format!(
                    "| {n} | {name} | {limits} | {matching} | {} | {} | {} | {} | {ms:.0} |",
                    pagination["total"], pagination["totalExact"], used.requests, used.items_read
                ));
            }
        }
    }
    println!();
    println!("includeTotal on a page of 1, within the budget and without one (not part of a page's read budget)");
    println!();
    println!(
        "| calls in tenant | filter | budget | matching calls | total | totalExact | requests | items read | ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for line in totals {
        println!("{line}");
    }
    Ok(())
}
