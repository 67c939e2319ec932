//! A call as a write sends it (get-call's `data`, or its envelope as an import line holds it): any JSON is
//! read into a call or refused with one bad parameter naming a field, never a panic, whatever the clock.
#![no_main]

use callrecords::{validate, ApiError, TenantId};
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let call = value.get("data").unwrap_or(&value);
    let tenant = TenantId::parse("fuzz").expect("a valid tenant");
    for now in [
        DateTime::from_timestamp(1_736_937_000, 0).expect("2025"),
        DateTime::<chrono::Utc>::MAX_UTC,
        DateTime::<chrono::Utc>::MIN_UTC,
    ] {
        match validate::call(&tenant, call, None, now) {
            Ok(record) => assert!(record.summary.updated_at == Some(now)),
            Err(ApiError::InvalidParameter { field, reason }) => assert!(!field.is_empty() && !reason.is_empty()),
            Err(other) => panic!("not a bad parameter: {other}"),
        }
    }
});
