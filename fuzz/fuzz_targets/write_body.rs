//! A write's body as the write routes read it, from raw bytes: whatever arrives is a call (PUT), a patched
//! call (PATCH, over seed 000's), an upload request, or one clear refusal — 413 over the size limit, a bad
//! parameter that names `body` when it is not JSON, or one that names a field by its JSON path. Never a
//! panic, never another error.
#![no_main]

use callrecords::{validate, ApiError, CallId, TenantId};
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const SEED_000: &str = include_str!("../../fixtures/seed-000-get-call.json");

fn refused_well(err: ApiError) {
    match err {
        ApiError::InvalidParameter { field, reason } => assert!(!field.is_empty() && !reason.is_empty()),
        other => panic!("not a bad parameter: {other}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let tenant = TenantId::parse("fuzz").expect("a valid tenant");
    let id = CallId::parse("call_123").expect("a valid id");
    let now = DateTime::from_timestamp(1_736_937_000, 0).expect("2025");
    let value = match validate::body(data) {
        Ok(value) => value,
        Err(ApiError::PayloadTooLarge { limit }) => return assert!(data.len() > limit),
        Err(ApiError::InvalidParameter { field, .. }) => return assert_eq!(field, "body"),
        Err(other) => panic!("not a body refusal: {other}"),
    };
    match validate::call(&tenant, &value, Some(&id), now) {
        Ok(record) => assert_eq!(record.summary.id, "call_123"),
        Err(e) => refused_well(e),
    }
    let base: Value = serde_json::from_str::<Value>(SEED_000).expect("seed JSON")["data"].clone();
    match validate::call(&tenant, &validate::patched(&base, &value), Some(&id), now) {
        Ok(record) => assert_eq!(record.summary.id, "call_123"),
        Err(e) => refused_well(e),
    }
    if let Err(e) = validate::upload(&value) {
        refused_well(e);
    }
});
