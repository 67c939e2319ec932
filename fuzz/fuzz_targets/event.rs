//! API Gateway events as the handlers receive them: the event JSON, sanitized as `http::run` does, into a
//! request; then the request id, the key of its `Authorization` header, the call id from the path and the list query from
//! the query string. Any input is refused or read without a panic.
#![no_main]

use callrecords::list::ListQuery;
use callrecords::{apikey, http, CallId};
use lambda_http::request::LambdaRequest;
use lambda_http::{Request, RequestExt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut event) = serde_json::from_slice::<LambdaRequest>(data) else {
        return;
    };
    http::sanitize(&mut event);
    let req: Request = event.into();
    let _ = http::request_id(&req);
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    if let Some(id) = header.and_then(apikey::bearer).and_then(apikey::key_id_of) {
        assert!(id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    if let Some(id) = req.path_parameters().first("callId") {
        if let Err(err) = CallId::parse(id) {
            assert_eq!(err.field(), Some("callId"));
        }
    }
    let params = req.query_string_parameters();
    if let Err(err) = ListQuery::parse(params.iter()) {
        assert_eq!(err.status(), 400);
    }
});
