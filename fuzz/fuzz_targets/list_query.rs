//! GET /api/v1/calls query strings: any input is either a valid query, whose plan stays inside the tenant
//! and inside its read budget, or a 400 that names a parameter. Never a panic.
#![no_main]

use callrecords::list::{ListQuery, MAX_LIMIT};
use callrecords::TenantId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Name/value pairs as API Gateway hands them over (already decoded).
    let pairs: Vec<(&str, &str)> = text.split('&').map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    match ListQuery::parse(pairs.iter().copied()) {
        Ok(query) => {
            assert!((1..=MAX_LIMIT).contains(&query.limit));
            let tenant = TenantId::parse("acme").expect("valid tenant");
            let plan = query.plan(&tenant);
            assert!(plan.partition.starts_with("T#acme"));
            assert!(plan.partition.len() < 2048, "DynamoDB's partition key limit");
            for condition in &plan.conditions {
                assert!(condition.values.iter().all(|v| v.starts_with("T#acme#")));
            }
            let budget = plan.read_budget(query.limit);
            assert!(budget > query.limit && budget <= 2 * query.limit);
            if let (Some(lo), Some(hi)) = (&plan.lower, &plan.upper) {
                assert!(lo < hi, "{lo} < {hi}");
            }
            let _ = query.binding();
        }
        Err(err) => {
            assert_eq!(err.status(), 400);
            assert!(err.field().is_some(), "{err}");
        }
    }
});
