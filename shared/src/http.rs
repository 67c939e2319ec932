//! The edge between API Gateway and the domain: the success and error envelopes, the request id, who the
//! caller is, and the one log line each request leaves. This module alone maps [`ApiError`] to HTTP.

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use std::time::Instant;

use crate::apikey::Scope;
use crate::auth::KeyCheck;
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::store::calls::Condition;

#[derive(Serialize)]
struct Success<'a, T> {
    success: bool,
    data: &'a T,
}

// Text, not binary: lambda_http would base64-encode a binary body, a third larger against Lambda's 6 MB
// response limit.
fn json_response(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().expect("static header"));
    response
}

/// `{"success": true, "data": …}` with status 200.
pub fn ok<T: Serialize>(data: &T) -> Response<Body> {
    match serde_json::to_string(&Success { success: true, data }) {
        Ok(body) => json_response(200, body),
        Err(e) => {
            tracing::error!(error = %e, "response encoding failed");
            error(&ApiError::Internal, "")
        }
    }
}

#[derive(Serialize)]
struct ListSuccess<'a, T, P> {
    success: bool,
    data: &'a [T],
    pagination: &'a P,
}

/// `{"success": true, "data": […], "pagination": …}` with status 200.
pub fn ok_list<T: Serialize, P: Serialize>(data: &[T], pagination: &P) -> Response<Body> {
    let body = ListSuccess {
        success: true,
        data,
        pagination,
    };
    match serde_json::to_string(&body) {
        Ok(body) => json_response(200, body),
        Err(e) => {
            tracing::error!(error = %e, "response encoding failed");
            error(&ApiError::Internal, "")
        }
    }
}

#[derive(Serialize)]
struct Failure<'a> {
    success: bool,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    code: &'static str,
    message: String,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Details<'a> {
    Field { field: &'a str, reason: &'a str },
    Scope { route: &'a str, scope: &'a str },
}

/// `response` with another status (for 201 Created).
pub fn with_status(mut response: Response<Body>, status: StatusCode) -> Response<Body> {
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    response
}

/// `response` with `name: value` added; a value that is not a valid header is left out.
pub fn with_header(mut response: Response<Body>, name: &'static str, value: &str) -> Response<Body> {
    if let Ok(value) = value.parse() {
        response.headers_mut().insert(name, value);
    }
    response
}

/// 204 No Content.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A call's `ETag` header value: its revision, quoted (a strong entity tag).
pub fn etag(revision: &str) -> String {
    format!("\"{revision}\"")
}

/// The request body's bytes (lambda_http has already decoded a base64 body).
pub fn body(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// 415 unless the request's `Content-Type` is `expected` (parameters such as `charset=utf-8` aside).
pub fn require_content_type(req: &Request, expected: &'static str) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match given {
        Some(t) if t == expected => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType { expected }),
    }
}

/// The write's precondition from `If-Match` (one strong entity tag, or `*`) and `If-None-Match` (`*`
/// only); both at once, a weak tag or a list is a 400 naming the header.
pub fn precondition(req: &Request) -> Result<Condition, ApiError> {
    let header = |name: &'static str| -> Result<Option<String>, ApiError> {
        let mut values = req.headers().get_all(name).iter();
        let Some(first) = values.next() else { return Ok(None) };
        if values.next().is_some() {
            return Err(ApiError::invalid(name, "given more than once"));
        }
        let text = first.to_str().map_err(|_| ApiError::invalid(name, "is not text"))?;
        Ok(Some(text.trim().to_owned()))
    };
    let if_match = header("If-Match")?;
    let if_none_match = header("If-None-Match")?;
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(ApiError::invalid("If-None-Match", "cannot be sent with If-Match")),
        (None, None) => Ok(Condition::Always),
        (None, Some(v)) if v == "*" => Ok(Condition::Absent),
        (None, Some(_)) => Err(ApiError::invalid("If-None-Match", "only * is supported on a write")),
        (Some(v), None) if v == "*" => Ok(Condition::Present),
        (Some(v), None) => match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(tag) if !tag.is_empty() && !tag.contains(['"', ',']) => Ok(Condition::Revision(tag.to_owned())),
            _ => Err(ApiError::invalid(
                "If-Match",
                "must be one entity tag as ETag gives it (\"…\") or *",
            )),
        },
    }
}

/// 302 to `location`, never cached (each link is fresh); the body repeats it as `{"success": true, "data": …}`
/// for clients that do not follow redirects.
pub fn redirect<T: Serialize>(location: &str, data: &T) -> Response<Body> {
    let mut response = ok(data);
    match location.parse() {
        Ok(value) => {
            *response.status_mut() = StatusCode::FOUND;
            response.headers_mut().insert(LOCATION, value);
            response
                .headers_mut()
                .insert(CACHE_CONTROL, "no-store".parse().expect("static header"));
            response
        }
        Err(_) => error(&ApiError::Internal, ""),
    }
}

/// Seed 000's error envelope, with the request id and, for a bad parameter, which one and why.
pub fn error(err: &ApiError, request_id: &str) -> Response<Body> {
    let details = match err {
        ApiError::InvalidParameter { field, reason } | ApiError::Conflict { field, reason } => {
            Some(Details::Field { field, reason })
        }
        ApiError::InvalidCursor(reason) => Some(Details::Field {
            field: "cursor",
            reason,
        }),
        ApiError::Forbidden { route, scope } => Some(Details::Scope { route, scope }),
        _ => None,
    };
    let body = Failure {
        success: false,
        error: ErrorBody {
            code: err.code(),
            message: err.to_string(),
            request_id,
            details,
        },
    };
    let bytes = serde_json::to_string(&body).unwrap_or_default();
    let mut response = json_response(err.status(), bytes);
    if let ApiError::ServiceUnavailable { retry_after } = err {
        let secs = retry_after.as_secs().max(1).to_string();
        response
            .headers_mut()
            .insert(RETRY_AFTER, secs.parse().expect("digits"));
    }
    response
}

/// API Gateway's request id, or the Lambda invocation's when there is none.
pub fn request_id(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        if let Some(id) = &ctx.request_id {
            return id.clone();
        }
    }
    req.lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default()
}

/// The tenant of a caller that holds `scope`: 401 without a valid key, 403 naming the route and the scope
/// when the key lacks it. Logged as the request's tenant either way.
pub async fn authorize(
    req: &Request,
    keys: &KeyCheck,
    log: &mut RequestLog,
    scope: Scope,
) -> Result<TenantId, ApiError> {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    let caller = keys.caller(header).await?;
    log.tenant(&caller.tenant);
    if !caller.may(scope) {
        return Err(ApiError::Forbidden {
            route: log.route,
            scope: scope.as_str(),
        });
    }
    Ok(caller.tenant)
}

/// The one structured log line a request leaves: `{"message":"request","apiRequestId","route","status",
/// "latencyMs","tenant","error"}` (with the invocation's `requestId` and `traceId`, as every line), and its
/// metrics ([`crate::metrics::request`]). It names the route's template (never the raw path or query string,
/// which may hold a phone number) and the tenant (never the key). `apiRequestId` is API Gateway's id, the
/// `requestId` of the error envelope a client sees.
pub struct RequestLog {
    function: &'static str,
    route: &'static str,
    route_key: String,
    request_id: String,
    started: Instant,
    tenant: Option<TenantId>,
}

impl RequestLog {
    /// A request to `function` (its crate name) on `route` (the handler's method and path template).
    pub fn start(function: &'static str, route: &'static str, req: &Request) -> Self {
        RequestLog {
            function,
            route,
            route_key: route_key(req, route),
            request_id: request_id(req),
            started: Instant::now(),
            tenant: None,
        }
    }

    /// The tenant, once the request is authenticated.
    pub fn tenant(&mut self, tenant: &TenantId) {
        self.tenant = Some(tenant.clone());
    }

    /// The response for `result` (`ok` makes the success response), logged and counted.
    pub fn finish<T>(self, result: Result<T, ApiError>, ok: impl FnOnce(T) -> Response<Body>) -> Response<Body> {
        let (response, code) = match result {
            Ok(value) => (ok(value), None),
            Err(err) => (error(&err, &self.request_id), Some(err.code())),
        };
        let latency = self.started.elapsed();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let status = response.status().as_u16();
        tracing::info!(
            apiRequestId = %self.request_id,
            route = self.route,
            status,
            latencyMs = (latency_ms * 1000.0).round() / 1000.0,
            tenant = self.tenant.as_ref().map(TenantId::as_str),
            error = code,
            "request"
        );
        crate::metrics::request(self.function, &self.route_key, status, latency);
        response
    }
}

/// The route as API Gateway names it (`GET /api/v1/calls/{callId}`): the request context's route key, else
/// `fallback`. API Gateway sends only the keys of the template's routes, so metrics by route stay few; a raw
/// path (ids in it) never becomes one.
fn route_key(req: &Request, fallback: &str) -> String {
    let given = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    };
    match given {
        Some(key) if !key.is_empty() && key != "$default" => key.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// Query characters an `http::Uri` takes as they are (RFC 3986); everything else is percent-encoded.
const QUERY_KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/')
    .remove(b'?')
    .remove(b'%');

/// Makes an API Gateway event safe to turn into a request. lambda_http builds the request's URI from
/// `rawPath`, `rawQueryString` and the host, and panics (`failed to build request`) when they do not make a
/// valid URI: a query with a character a URI may not hold as it is (a space, `|`, `{`, `"` …), or a host
/// or path that does not parse. The query is percent-encoded where it must be (its parameters decode to the
/// same values), the path made absolute, and an unusable host left out. Found by `fuzz/fuzz_targets/event.rs`.
pub fn sanitize(event: &mut lambda_http::request::LambdaRequest) {
    let lambda_http::request::LambdaRequest::ApiGatewayV2(ev) = event else {
        return;
    };
    if let Some(query) = ev.raw_query_string.as_mut() {
        *query = percent_encoding::utf8_percent_encode(query, QUERY_KEEP).to_string();
    }
    if let Some(path) = ev.raw_path.as_mut() {
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
    }
    let path = ev.raw_path.clone().unwrap_or_default();
    // As lambda_http builds it: parsed as a URL, then as the request's URI.
    let usable = |host: &str| {
        url::Url::parse(&format!("https://{host}{path}"))
            .is_ok_and(|u| u.as_str().parse::<lambda_http::http::Uri>().is_ok())
    };
    if ev
        .headers
        .get(lambda_http::http::header::HOST)
        .is_some_and(|h| !h.to_str().is_ok_and(usable))
    {
        ev.headers.remove(lambda_http::http::header::HOST);
    }
    if ev.request_context.domain_name.as_deref().is_some_and(|h| !usable(h)) {
        ev.request_context.domain_name = None;
    }
    // The scheme comes from X-Forwarded-Proto; anything but http(s) could break the URI as well.
    if ev
        .headers
        .get("x-forwarded-proto")
        .is_some_and(|p| !matches!(p.to_str(), Ok("http" | "https")))
    {
        ev.headers.remove("x-forwarded-proto");
    }
}

/// `lambda_http::run` for this API's handlers, with every event [`sanitize`]d first and the metrics of each
/// invocation written when it ends ([`crate::metrics::flushed`]).
pub async fn run<F, Fut>(mut handler: F) -> Result<(), lambda_http::Error>
where
    F: FnMut(Request) -> Fut,
    Fut: std::future::Future<Output = Result<Response<Body>, lambda_http::Error>> + Send,
{
    let flushed = move |req| crate::metrics::flushed(handler(req));
    let adapter = lambda_http::Adapter::from(lambda_runtime::service_fn(flushed));
    lambda_runtime::run(Sanitized(adapter)).await
}

/// Wraps lambda_http's adapter: sanitizes each event, then hands it on.
struct Sanitized<S>(S);

impl<S> lambda_runtime::Service<lambda_runtime::LambdaEvent<lambda_http::request::LambdaRequest>> for Sanitized<S>
where
    S: lambda_runtime::Service<lambda_runtime::LambdaEvent<lambda_http::request::LambdaRequest>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut event: lambda_runtime::LambdaEvent<lambda_http::request::LambdaRequest>) -> Self::Future {
        sanitize(&mut event.payload);
        self.0.call(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use lambda_http::request::LambdaRequest;

    /// The parts of an event [`sanitize`] looks at; the default is an ordinary request as API Gateway sends it.
    struct Parts {
        query: &'static str,
        path: &'static str,
        host: Option<&'static str>,
        proto: &'static str,
        domain: &'static str,
    }

    impl Default for Parts {
        fn default() -> Self {
            Parts {
                query: "status=completed,failed&phoneNumber=%2B14155550100&dateFrom=2025-01-01T00:00:00Z",
                path: "/api/v1/calls",
                host: Some("api.example.com"),
                proto: "https",
                domain: "api.example.com",
            }
        }
    }

    fn event(p: &Parts) -> LambdaRequest {
        let mut json = serde_json::json!({
            "version": "2.0", "routeKey": "GET /api/v1/calls", "rawPath": p.path, "rawQueryString": p.query,
            "headers": {"x-forwarded-proto": p.proto, "user-agent": "t"},
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": p.domain, "domainPrefix": "a",
                "http": {"method": "GET", "path": p.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "GET /api/v1/calls", "stage": "$default", "time": "t", "timeEpoch": 0},
            "isBase64Encoded": false
        });
        if let Some(host) = p.host {
            json["headers"]["host"] = host.into();
        }
        serde_json::from_value(json).unwrap()
    }

    fn v2(event: LambdaRequest) -> ApiGatewayV2httpRequest {
        let LambdaRequest::ApiGatewayV2(inner) = event else {
            panic!("an HTTP API event")
        };
        inner
    }

    fn sanitized(p: &Parts) -> ApiGatewayV2httpRequest {
        let mut ev = event(p);
        sanitize(&mut ev);
        v2(ev)
    }

    fn panics_as_a_request(p: &Parts) -> bool {
        let ev = event(p);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Request::from(ev))).is_err()
    }

    #[test]
    fn events_lambda_http_would_panic_on_become_requests_with_the_same_parameters() {
        let p = Parts {
            query: "status=a b|c{\"}&limit=5&note=%7C",
            path: ":9/x",
            host: Some("local.`example.com"),
            proto: "ht tp",
            domain: "exa mple",
        };
        assert!(panics_as_a_request(&p));
        let mut ev = event(&p);
        sanitize(&mut ev);
        let req: Request = ev.into();
        let q = req.query_string_parameters();
        assert_eq!(q.first("status"), Some("a b|c{\"}"));
        assert_eq!(q.first("limit"), Some("5"));
        assert_eq!(q.first("note"), Some("|"));
        assert_eq!(req.uri().path(), "/:9/x");
    }

    #[test]
    fn each_part_that_would_break_the_uri_is_repaired_and_nothing_else_changes() {
        type Repair = fn(&mut ApiGatewayV2httpRequest);
        let cases: [(Parts, Repair); 5] = [
            (
                Parts {
                    query: "status=a b|c{\"}&limit=5&note=%7C",
                    ..Parts::default()
                },
                |e| e.raw_query_string = Some("status=a%20b%7Cc%7B%22%7D&limit=5&note=%7C".into()),
            ),
            (
                Parts {
                    path: ":x/calls",
                    ..Parts::default()
                },
                |e| e.raw_path = Some("/:x/calls".into()),
            ),
            (
                Parts {
                    host: Some("local.`example.com"),
                    ..Parts::default()
                },
                |e| {
                    e.headers.remove("host");
                },
            ),
            (
                Parts {
                    host: None,
                    domain: "exa mple",
                    ..Parts::default()
                },
                |e| e.request_context.domain_name = None,
            ),
            (
                Parts {
                    proto: "ht tp",
                    ..Parts::default()
                },
                |e| {
                    e.headers.remove("x-forwarded-proto");
                },
            ),
        ];
        for (parts, repair) in cases {
            let what = format!(
                "{:?} {:?} {:?} {:?} {:?}",
                parts.query, parts.path, parts.host, parts.proto, parts.domain
            );
            assert!(
                panics_as_a_request(&parts),
                "{what}: lambda_http would panic on it as sent"
            );
            let mut expected = v2(event(&parts));
            repair(&mut expected);
            assert_ne!(expected, v2(event(&parts)), "{what}: the repair changes something");
            let got = sanitized(&parts);
            assert_eq!(got, expected, "{what}: only the broken part is repaired");
            let _: Request = LambdaRequest::ApiGatewayV2(got).into();
        }
    }

    #[test]
    fn an_ordinary_event_is_left_as_it_is() {
        let ordinary = [
            Parts::default(),
            Parts {
                query: "",
                path: "/api/v1/calls/call_123/recording",
                ..Parts::default()
            },
            Parts {
                query: "phoneNumber=%2B1%20(415)%20555-0101&sort=asc&limit=5&cursor=AbC-_~.!$'()*;:@/?%3D",
                ..Parts::default()
            },
            Parts {
                host: Some("127.0.0.1:3000"),
                proto: "http",
                domain: "localhost",
                ..Parts::default()
            },
            Parts {
                host: None,
                ..Parts::default()
            },
        ];
        for parts in ordinary {
            let before = v2(event(&parts));
            let after = sanitized(&parts);
            assert_eq!(after, before, "{:?} {:?} {:?}", parts.query, parts.path, parts.host);
            assert!(
                !panics_as_a_request(&parts),
                "{:?}: lambda_http takes it as it is",
                parts.query
            );
        }
    }

    #[test]
    fn the_route_is_api_gateways_route_key_or_else_the_handlers_template() {
        let with_key = |key: Option<&str>| {
            let mut ev = v2(event(&Parts::default()));
            ev.request_context.route_key = key.map(str::to_owned);
            let req: Request = LambdaRequest::ApiGatewayV2(ev).into();
            route_key(&req, "GET /api/v1/calls/{callId}")
        };
        assert_eq!(with_key(Some("GET /api/v1/calls")), "GET /api/v1/calls");
        for none in [None, Some(""), Some("$default")] {
            assert_eq!(with_key(none), "GET /api/v1/calls/{callId}", "{none:?}");
        }
        let plain: Request = Request::new(Body::Empty);
        assert_eq!(route_key(&plain, "write"), "write", "no API Gateway context");
    }

    fn with_headers(headers: &[(&str, &str)]) -> Request {
        let mut req = Request::new(Body::Empty);
        for (name, value) in headers {
            req.headers_mut().append(
                lambda_http::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        req
    }

    #[test]
    fn preconditions_read_one_strong_tag_or_a_star() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<Condition, &'a str>);
        let cases: [Case; 10] = [
            (&[], Ok(Condition::Always)),
            (&[("if-match", "\"abc\"")], Ok(Condition::Revision("abc".into()))),
            (&[("if-match", " \"abc\" ")], Ok(Condition::Revision("abc".into()))),
            (&[("if-match", "*")], Ok(Condition::Present)),
            (&[("if-none-match", "*")], Ok(Condition::Absent)),
            (&[("if-match", "W/\"abc\"")], Err("If-Match")),
            (&[("if-match", "\"a\", \"b\"")], Err("If-Match")),
            (&[("if-match", "abc")], Err("If-Match")),
            (&[("if-none-match", "\"abc\"")], Err("If-None-Match")),
            (&[("if-match", "\"a\""), ("if-none-match", "*")], Err("If-None-Match")),
        ];
        for (headers, want) in cases {
            let got = precondition(&with_headers(headers)).map_err(|e| e.field().unwrap_or_default().to_owned());
            assert_eq!(got, want.map_err(str::to_owned), "{headers:?}");
        }
        let twice = with_headers(&[("if-match", "\"a\""), ("if-match", "\"b\"")]);
        assert_eq!(precondition(&twice).unwrap_err().field(), Some("If-Match"));
    }

    #[test]
    fn content_types_are_compared_without_parameters_or_case() {
        let ok = with_headers(&[("content-type", "Application/JSON; charset=utf-8")]);
        assert!(require_content_type(&ok, "application/json").is_ok());
        for bad in [&[("content-type", "text/plain")][..], &[][..]] {
            let err = require_content_type(&with_headers(bad), "application/json").unwrap_err();
            assert_eq!(err.status(), 415);
        }
    }
}
