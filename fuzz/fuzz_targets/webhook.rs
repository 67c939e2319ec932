//! A webhook delivery's body as the receiver reads it, once its signature has passed: for every provider,
//! whatever arrives is a delivery whose merged call passes validation or a clear 400 naming a path, or an
//! event we keep nothing of. Never a panic. Also: a signature check of these bytes under any header never
//! panics, and never passes without the secret.
#![no_main]

use callrecords::webhook::{merge, signature, Provider};
use callrecords::{validate, ApiError, CallId, TenantId};
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let now = DateTime::from_timestamp(1_893_456_000, 0).expect("2030");
    let text = String::from_utf8_lossy(data);
    for p in Provider::ALL {
        let headers = [
            (signature::RETELL_HEADER, text.as_ref()),
            (signature::ELEVENLABS_HEADER, text.as_ref()),
            (signature::VAPI_SIGNATURE_HEADER, text.as_ref()),
        ];
        assert!(signature::verify(p, &headers[..], data, &[b"the secret"], now).is_err());
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let tenant = TenantId::parse("fuzz").expect("tenant");
    for p in Provider::ALL {
        let delivery = match p.delivery(&value) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(ApiError::InvalidParameter { field, reason }) => {
                assert!(!field.is_empty() && !reason.is_empty());
                continue;
            }
            Err(other) => panic!("{p}: not a bad parameter: {other}"),
        };
        let Ok(id) = CallId::parse(&p.call_id(&delivery.call_id)) else {
            continue;
        };
        let (mut fields, _) = merge(None, &delivery);
        fields.insert("id".into(), Value::String(id.as_str().to_owned()));
        match validate::call(&tenant, &Value::Object(fields), Some(&id), now) {
            Ok(_) => {}
            Err(ApiError::InvalidParameter { field, .. }) => assert!(!field.is_empty()),
            Err(other) => panic!("{p}: validation gave {other}"),
        }
    }
});
