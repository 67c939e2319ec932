//! The test harness: a fresh table and bucket per test, created from template.yaml on the emulators that
//! `scripts/test` starts (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`), and requests built from the
//! sample events in `events/`, sent through the functions' real entry points.

pub mod emf;
pub mod emulator;
pub mod runtime_api;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use callrecords::apikey::{ApiKeyRecord, Scope};
use callrecords::clock::SetClock;
use callrecords::config::Config;
use callrecords::recording::Retention;
use callrecords::store::metrics::RequestCounter;
use callrecords::{template, App};
use chrono::{DateTime, Utc};
use lambda_http::http::HeaderMap;
use lambda_http::{Body, Request};
use serde_json::Value;

pub struct Stack {
    pub app: App,
    pub counter: RequestCounter,
    /// The app's clock: it stands at the stack's `now` until a test moves it.
    pub clock: Arc<SetClock>,
}

fn require_emulators() {
    for var in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"] {
        match std::env::var(var) {
            Ok(url) if url.starts_with("http://127.0.0.1:") => {}
            _ => panic!("{var} must point at a local emulator on 127.0.0.1: run the tests with scripts/test"),
        }
    }
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339 instant")
}

/// A new, empty table and bucket, with the clock standing at `now`.
pub async fn stack(now: &str) -> Stack {
    require_emulators();
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = Utc::now().timestamp_subsec_nanos();
    let suffix = format!("{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let config = Config {
        table_name: format!("calls-{suffix}"),
        bucket_name: format!("rec-{suffix}"),
        retention: Retention::days(30),
        key_cache_ttl: callrecords::config::DEFAULT_KEY_CACHE_TTL,
        s3_force_path_style: true,
        cursor_keys: Some(
            callrecords::cursor::CursorKeys::new(&callrecords::cursor::generate_secret(), None).expect("long enough"),
        ),
        capture: test_capture(None),
        // Totals are exact unless a test sets a smaller budget: the default items, and time no loaded
        // machine runs out of.
        total_budget: callrecords::config::TotalBudget {
            time: std::time::Duration::from_secs(60),
            ..Default::default()
        },
    };
    let counter = RequestCounter::default();
    let clock = Arc::new(SetClock::new(at(now)));
    let app = App::connect(config, clock.clone(), Some(counter.clone())).await;
    template::create_table(app.store.client(), app.store.table())
        .await
        .expect("table from template");
    template::create_bucket(app.recordings.client(), app.recordings.bucket(), 30)
        .await
        .expect("bucket from template");
    let queue = app
        .capture_queue
        .client()
        .create_queue()
        .queue_name(format!("capture-{suffix}"))
        .send()
        .await
        .expect("capture queue on the emulator")
        .queue_url
        .expect("queue url");
    let mut app = app;
    app.config.capture = test_capture(Some(queue.clone()));
    app.capture_queue = callrecords::store::queue::CaptureQueue::new(app.capture_queue.client().clone(), Some(queue));
    Stack { app, counter, clock }
}

/// The capture settings of the tests: links to loopback over plain HTTP allowed for every provider (what
/// the template never allows), 2 s per fetch, 3 tries.
pub fn test_capture(queue_url: Option<String>) -> callrecords::config::Capture {
    let loopback = vec!["127.0.0.1".to_owned()];
    callrecords::config::Capture {
        queue_url,
        hosts: [loopback.clone(), loopback.clone(), loopback],
        allow_loopback_http: true,
        max_bytes: 64 * 1024 * 1024,
        timeout: std::time::Duration::from_secs(2),
        attempts: 3,
    }
}

fn repo_file(path: &str) -> String {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/../").to_owned() + path;
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A sample event from `events/`.
pub fn event(name: &str) -> Value {
    serde_json::from_str(&repo_file(&format!("events/{name}"))).expect("event JSON")
}

/// Seed 000's example response.
pub fn seed_000() -> Value {
    serde_json::from_str(&repo_file("fixtures/seed-000-get-call.json")).expect("seed JSON")
}

/// The scopes of the key a test request carries for reads.
pub const READ: &str = "calls:read";
/// The scopes of the key a test write carries.
pub const READ_WRITE: &str = "calls:read calls:write";

/// The test keys handed out so far, by key: each one's record.
static TEST_KEYS: Mutex<Vec<(String, ApiKeyRecord)>> = Mutex::new(Vec::new());
/// The API key of `tenant` with `scopes` (space separated): the same key every time, well formed like a
/// real one, its record kept here until a request carrying it is sent ([`prepare_key`]).
pub fn test_key(tenant: &str, scopes: &str) -> String {
    let digest = |what: &str| callrecords::apikey::hash(&format!("{what}:{tenant}:{scopes}"));
    let key_id = digest("id")[..12].to_owned();
    let key = format!("crk_{key_id}_{}", &digest("secret")[..43]);
    let mut keys = TEST_KEYS.lock().expect("test keys");
    if !keys.iter().any(|(k, _)| *k == key) {
        let record = ApiKeyRecord {
            key_id,
            tenant_id: tenant.to_owned(),
            label: "test".to_owned(),
            key_hash: callrecords::apikey::hash(&key),
            created_at: at("2025-01-01T00:00:00Z"),
            revoked_at: None,
            scopes: scopes.split(' ').filter_map(Scope::parse).collect(),
        };
        keys.push((key.clone(), record));
    }
    key
}

/// `ev` carrying `Authorization: Bearer <key>`, or no such header.
pub fn with_key(mut ev: Value, key: Option<&str>) -> Value {
    let headers = ev["headers"].as_object_mut().expect("headers");
    headers.retain(|name, _| !name.eq_ignore_ascii_case("authorization"));
    if let Some(key) = key {
        headers.insert("authorization".to_owned(), Value::String(format!("Bearer {key}")));
    }
    ev
}

/// Before a request is sent: when it carries a test key, the app's key check holds the key's record, as
/// a warm instance that has read it does; the record is not in the table. Request counts are then the
/// route's own; `tests/tests/auth.rs` stores keys and counts their reads.
pub fn prepare_key(app: &App, req: &Request) {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    if let Some(record) = header.and_then(callrecords::apikey::bearer).and_then(test_key_record) {
        app.keys.remember(&record);
    }
}

/// The app's key check holds the record of `tenant`'s test key with `scopes`, for requests that reach the
/// handler by another way than this harness' senders (the local Runtime API).
pub fn hold_key(app: &App, tenant: &str, scopes: &str) {
    let record = test_key_record(&test_key(tenant, scopes)).expect("a test key");
    app.keys.remember(&record);
}

/// The record of the test key `key`; `None` for a key that is no test key.
pub fn test_key_record(key: &str) -> Option<ApiKeyRecord> {
    let keys = TEST_KEYS.lock().expect("test keys");
    keys.iter().find(|(k, _)| k == key).map(|(_, r)| r.clone())
}

/// A get-call request as API Gateway delivers it: `events/get-call.json` with this call id and, when given,
/// a read key of this tenant (none: no `Authorization` header).
pub fn get_call_event(tenant: Option<&str>, call_id: &str) -> Value {
    let mut ev = event("get-call.json");
    ev["pathParameters"]["callId"] = Value::String(call_id.to_owned());
    ev["rawPath"] = Value::String(format!("/api/v1/calls/{call_id}"));
    let key = tenant.map(|t| test_key(t, READ));
    with_key(ev, key.as_deref())
}

pub fn request(ev: &Value) -> Request {
    lambda_http::request::from_str(&ev.to_string()).expect("a valid API Gateway event")
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Sends a request through get-call's entry point.
pub async fn get_call(app: &App, req: Request) -> Reply {
    prepare_key(app, &req);
    reply(
        get_call::handle(app, req)
            .await
            .expect("the handler answers every request"),
    )
}

fn reply(response: lambda_http::Response<Body>) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = match response.into_body() {
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        Body::Empty => Vec::new(),
        _ => Vec::new(),
    };
    // Every response is JSON but a 204's, which has no body.
    let body = match (status, bytes.is_empty()) {
        (204, true) => Value::Null,
        _ => serde_json::from_slice(&bytes).expect("every response is JSON"),
    };
    Reply { status, headers, body }
}

/// get-call for `call_id` as `tenant`, the way API Gateway delivers it.
pub async fn fetch(stack: &Stack, tenant: &str, call_id: &str) -> Reply {
    get_call(&stack.app, request(&get_call_event(Some(tenant), call_id))).await
}

/// Sends a request through get-recording's entry point.
pub async fn get_recording(app: &App, req: Request) -> Reply {
    prepare_key(app, &req);
    reply(
        get_recording::handle(app, req)
            .await
            .expect("the handler answers every request"),
    )
}

/// `events/get-recording.json` for `call_id` as `tenant`, with this query string (`""` for none).
pub fn get_recording_event(tenant: &str, call_id: &str, query: &[(&str, &str)]) -> Value {
    let mut ev = event("get-recording.json");
    ev["pathParameters"]["callId"] = Value::String(call_id.to_owned());
    ev["rawPath"] = Value::String(format!("/api/v1/calls/{call_id}/recording"));
    let mut ev = with_key(ev, Some(&test_key(tenant, READ)));
    ev["queryStringParameters"] = query
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    ev["rawQueryString"] = Value::String(
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    ev
}

/// Puts an object of `bytes` into the stack's recordings bucket.
pub async fn put_object(stack: &Stack, key: &str, bytes: impl Into<Vec<u8>>) {
    stack
        .app
        .recordings
        .client()
        .put_object()
        .bucket(stack.app.recordings.bucket())
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(bytes.into()))
        .send()
        .await
        .expect("object stored");
}

/// The body without its request id, for comparing two error responses.
pub fn without_request_id(mut body: Value) -> Value {
    if let Some(err) = body.get_mut("error").and_then(Value::as_object_mut) {
        err.remove("requestId");
    }
    body
}

/// Asserts that every field of `expected` is in `actual` with the same JSON type and value, recursively
/// (arrays element by element); `skip` lists paths whose values are only checked for type.
pub fn assert_contains(expected: &Value, actual: &Value, path: &str, skip: &[&str]) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                let av = a.get(k).unwrap_or_else(|| panic!("{p} is missing"));
                assert_contains(ev, av, &p, skip);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{path}: array length");
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_contains(ev, av, &format!("{path}[{i}]"), skip);
            }
        }
        (e, a) if skip.contains(&path) => {
            assert_eq!(std::mem::discriminant(e), std::mem::discriminant(a), "{path}: type");
        }
        (Value::Number(e), Value::Number(a)) => {
            assert_eq!(e.is_f64(), a.is_f64(), "{path}: integer vs decimal ({e} vs {a})");
            assert_eq!(e, a, "{path}");
        }
        (e, a) => assert_eq!(e, a, "{path}"),
    }
}

/// GET over plain HTTP on loopback; the body bytes.
pub fn http_get(url: &str) -> Vec<u8> {
    let mut response = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.body_mut().read_to_vec().expect("body")
}

/// `events/list-calls.json` as `tenant` with this query string (already decoded, as API Gateway hands it
/// over; a name may repeat).
pub fn list_event(tenant: &str, query: &[(&str, &str)]) -> Value {
    let mut ev = with_key(event("list-calls.json"), Some(&test_key(tenant, READ)));
    let mut params = serde_json::Map::new();
    for (k, v) in query {
        // API Gateway joins a repeated name's values with commas.
        let joined = match params.get(*k).and_then(Value::as_str) {
            Some(before) => format!("{before},{v}"),
            None => v.to_string(),
        };
        params.insert(k.to_string(), Value::String(joined));
    }
    ev["queryStringParameters"] = Value::Object(params);
    ev["rawQueryString"] = Value::String(
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter())
            .finish(),
    );
    ev
}

/// Sends a request through list-calls' entry point.
pub async fn list_calls(app: &App, req: Request) -> Reply {
    prepare_key(app, &req);
    reply(
        list_calls::handle(app, req)
            .await
            .expect("the handler answers every request"),
    )
}

/// One list request as `tenant`, the way API Gateway delivers it.
pub async fn list(stack: &Stack, tenant: &str, query: &[(&str, &str)]) -> Reply {
    list_calls(&stack.app, request(&list_event(tenant, query))).await
}

/// A write request as API Gateway delivers it: `events/put-call.json` made into
/// `method path` (`call_id` fills `{callId}`; `None` for `/api/v1/calls`), for `tenant` with `scopes`.
pub struct Write<'a> {
    pub tenant: &'a str,
    pub scopes: &'a str,
    pub method: &'a str,
    pub call_id: Option<&'a str>,
    pub recording: bool,
    pub body: Option<String>,
    pub content_type: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub query: Vec<(&'a str, &'a str)>,
}

impl<'a> Write<'a> {
    pub fn new(method: &'a str, call_id: Option<&'a str>) -> Self {
        Write {
            tenant: "acme",
            scopes: READ_WRITE,
            method,
            call_id,
            recording: false,
            body: None,
            content_type: "application/json",
            headers: Vec::new(),
            query: Vec::new(),
        }
    }

    pub fn put(call_id: &'a str, body: &Value) -> Self {
        Write::new("PUT", Some(call_id)).body(body)
    }

    pub fn patch(call_id: &'a str, patch: &Value) -> Self {
        let mut w = Write::new("PATCH", Some(call_id)).body(patch);
        w.content_type = "application/merge-patch+json";
        w
    }

    pub fn body(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self
    }

    pub fn tenant(mut self, tenant: &'a str) -> Self {
        self.tenant = tenant;
        self
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn event(&self) -> Value {
        let mut ev = event("put-call.json");
        let path = match (self.call_id, self.recording) {
            (Some(id), true) => format!("/api/v1/calls/{id}/recording"),
            (Some(id), false) => format!("/api/v1/calls/{id}"),
            (None, _) => "/api/v1/calls".to_owned(),
        };
        let template = match (self.call_id, self.recording) {
            (Some(_), true) => "/api/v1/calls/{callId}/recording",
            (Some(_), false) => "/api/v1/calls/{callId}",
            (None, _) => "/api/v1/calls",
        };
        let route = format!("{} {template}", self.method);
        ev["routeKey"] = Value::String(route.clone());
        ev["requestContext"]["routeKey"] = Value::String(route);
        ev["rawPath"] = Value::String(path.clone());
        ev["requestContext"]["http"]["path"] = Value::String(path);
        ev["requestContext"]["http"]["method"] = Value::String(self.method.to_owned());
        let mut ev = with_key(ev, Some(&test_key(self.tenant, self.scopes)));
        match self.call_id {
            Some(id) => ev["pathParameters"] = serde_json::json!({ "callId": id }),
            None => {
                ev.as_object_mut().expect("event").remove("pathParameters");
            }
        }
        match &self.body {
            Some(body) => {
                ev["body"] = Value::String(body.clone());
                ev["headers"]["content-type"] = Value::String(self.content_type.to_owned());
            }
            None => {
                let ev = ev.as_object_mut().expect("event");
                ev.remove("body");
                ev["headers"].as_object_mut().expect("headers").remove("content-type");
            }
        }
        for (name, value) in &self.headers {
            ev["headers"][*name] = Value::String(value.clone());
        }
        if !self.query.is_empty() {
            ev["queryStringParameters"] = self
                .query
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            ev["rawQueryString"] = Value::String(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(self.query.iter())
                    .finish(),
            );
        }
        ev
    }

    /// Sends it through write-call's entry point.
    pub async fn send(&self, app: &App) -> Reply {
        self.send_event(app, &self.event()).await
    }

    /// Sends `event` (this write's, changed) through write-call's entry point.
    pub async fn send_event(&self, app: &App, event: &Value) -> Reply {
        let req = request(event);
        prepare_key(app, &req);
        reply(
            write_call::handle(app, req)
                .await
                .expect("the handler answers every request"),
        )
    }
}

/// `events/recording-check.json` for the object `key` of `size` bytes, landed at the stack's now, sent through recording-check's
/// entry point: what the check answered.
pub async fn check_recording(app: &App, key: &str, size: u64) -> Result<Value, lambda_runtime::Error> {
    let mut ev = event("recording-check.json");
    ev["detail"]["bucket"]["name"] = Value::String(app.recordings.bucket().to_owned());
    ev["detail"]["object"]["key"] = Value::String(key.to_owned());
    ev["detail"]["object"]["size"] = Value::from(size);
    // The object lands now, by the stack's clock.
    ev["time"] = Value::String(app.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let context = lambda_runtime::Context::default();
    recording_check::handle(app, lambda_runtime::LambdaEvent::new(ev, context)).await
}

/// How many items `tenant`'s call `call_id` has in the table (summary and content parts).
pub async fn call_items(stack: &Stack, tenant: &str, call_id: &str) -> usize {
    partition_items(stack, tenant, call_id).await.len()
}

/// Every item of `tenant`'s call `call_id` as DynamoDB holds them (the summary and the content parts), by a
/// consistent Query of its partition.
pub async fn partition_items(
    stack: &Stack,
    tenant: &str,
    call_id: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use callrecords::store::layout;
    let pk = layout::call_pk(
        &callrecords::TenantId::parse(tenant).expect("tenant"),
        &callrecords::CallId::parse(call_id).expect("call id"),
    );
    let out = stack
        .app
        .store
        .client()
        .query()
        .table_name(stack.app.store.table())
        .key_condition_expression("#p = :p")
        .expression_attribute_names("#p", layout::PK)
        .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    out.items.unwrap_or_default()
}

/// The keys of every object in the stack's bucket.
pub async fn objects(stack: &Stack) -> Vec<String> {
    let out = stack
        .app
        .recordings
        .client()
        .list_objects_v2()
        .bucket(stack.app.recordings.bucket())
        .send()
        .await
        .expect("list objects");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

pub use callrecords::synth::wav;

/// A webhook endpoint of `tenant` for `provider`, stored with `secret`.
pub async fn webhook_endpoint(
    stack: &Stack,
    tenant: &str,
    provider: callrecords::webhook::Provider,
    secret: &str,
) -> callrecords::webhook::endpoint::WebhookEndpoint {
    let tenant = callrecords::TenantId::parse(tenant).expect("tenant");
    let endpoint = callrecords::webhook::endpoint::WebhookEndpoint::new(
        &tenant,
        provider,
        secret.to_owned(),
        stack.app.clock.now(),
    )
    .expect("endpoint");
    stack.app.store.put_endpoint(&endpoint).await.expect("put endpoint");
    endpoint
}

/// `events/webhook-vapi.json` made into a delivery of `body` to `/api/v1/webhooks/{provider}/{endpointId}`
/// with exactly `headers` (and a content type).
pub fn webhook_event(provider: &str, endpoint_id: &str, headers: &[(&str, String)], body: &[u8]) -> Value {
    let mut ev = event("webhook-vapi.json");
    let path = format!("/api/v1/webhooks/{provider}/{endpoint_id}");
    ev["rawPath"] = Value::String(path.clone());
    ev["requestContext"]["http"]["path"] = Value::String(path);
    ev["pathParameters"] = serde_json::json!({"provider": provider, "endpointId": endpoint_id});
    let mut h = serde_json::Map::new();
    h.insert("content-type".into(), "application/json".into());
    h.insert("host".into(), "local.execute-api.us-east-1.amazonaws.com".into());
    for (name, value) in headers {
        h.insert(name.to_string(), Value::String(value.clone()));
    }
    ev["headers"] = Value::Object(h);
    match std::str::from_utf8(body) {
        Ok(text) => {
            ev["body"] = Value::String(text.to_owned());
            ev["isBase64Encoded"] = Value::Bool(false);
        }
        Err(_) => {
            use base64::Engine;
            ev["body"] = Value::String(base64::engine::general_purpose::STANDARD.encode(body));
            ev["isBase64Encoded"] = Value::Bool(true);
        }
    }
    ev
}

/// Sends a delivery through the webhook function's entry point.
pub async fn deliver(app: &App, event: &Value) -> Reply {
    reply(
        webhook::handle(app, request(event))
            .await
            .expect("the handler answers every request"),
    )
}

/// `body` delivered to `endpoint`, signed with `secret` as its provider signs, at the stack's clock.
pub async fn deliver_signed(
    stack: &Stack,
    endpoint: &callrecords::webhook::endpoint::WebhookEndpoint,
    secret: &str,
    body: &[u8],
) -> Reply {
    let (name, value) =
        callrecords::webhook::signature::sign(endpoint.provider, secret.as_bytes(), body, stack.app.clock.now());
    let ev = webhook_event(
        endpoint.provider.as_str(),
        &endpoint.endpoint_id,
        &[(name, value)],
        body,
    );
    deliver(&stack.app, &ev).await
}

/// What the test recording server answers on a path.
#[derive(Clone)]
pub enum Served {
    Bytes(Vec<u8>),
    Status(u16),
    /// Accepts the request and never answers.
    Hang,
}

/// A plain HTTP/1.1 server on 127.0.0.1 that stands in for a provider's recording storage: each path
/// answers as configured; it counts the requests it got.
pub struct RecordingServer {
    pub base: String,
    hits: Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingServer {
    pub async fn start(routes: Vec<(&'static str, Served)>) -> RecordingServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = hits.clone();
        let routes: std::collections::HashMap<&'static str, Served> = routes.into_iter().collect();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let routes = routes.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let route = path.split('?').next().unwrap_or("/").to_owned();
                    seen.lock().expect("hits").push(route.clone());
                    let (status, body) = match routes.get(route.as_str()) {
                        Some(Served::Bytes(b)) => (200, b.clone()),
                        Some(Served::Status(s)) => (*s, Vec::new()),
                        Some(Served::Hang) => {
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                            return;
                        }
                        None => (404, Vec::new()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        RecordingServer { base, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The paths requested so far, in order.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits").clone()
    }
}

/// The messages waiting on the stack's capture queue (taken off it: they are not seen again).
pub async fn queued_captures(stack: &Stack) -> Vec<Value> {
    let q = &stack.app.capture_queue;
    let url = q.url().expect("a capture queue");
    let mut all = Vec::new();
    loop {
        let out = q
            .client()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        for m in messages {
            q.client()
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                .send()
                .await
                .expect("delete");
            all.push(serde_json::json!({
                "messageId": m.message_id.unwrap_or_default(),
                "body": m.body.unwrap_or_default(),
            }));
        }
    }
}

/// `messages` as SQS hands them to the capture worker on try `receive_count`, sent through its entry
/// point: the ids of the messages it asks to be retried.
pub async fn run_capture(stack: &Stack, messages: &[Value], receive_count: u32) -> Vec<String> {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m["messageId"], "receiptHandle": "r", "body": m["body"],
                "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
                "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            })
        })
        .collect();
    let fetcher = callrecords::capture::Fetcher::new(&stack.app.config.capture).expect("fetcher");
    let event = lambda_runtime::LambdaEvent::new(
        serde_json::json!({ "Records": records }),
        lambda_runtime::Context::default(),
    );
    let answer = recording_capture::handle(&stack.app, &fetcher, event)
        .await
        .expect("the worker answers");
    answer["batchItemFailures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().expect("id").to_owned())
        .collect()
}

/// Output captured in memory: what a function writes to stdout (log lines, metrics), for
/// `callrecords::telemetry::subscriber` and `callrecords::metrics::install`.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("captured").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("captured").clone()).expect("UTF-8 output")
    }

    /// Every line, each parsed as JSON (panics on a line that is not).
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
            .collect()
    }

    /// Forgets what was captured so far.
    pub fn clear(&self) {
        self.0.lock().expect("captured").clear();
    }
}

/// A summary row of `tenant`'s call `id` that no version of the product wrote (wrong types; `list_sk` may
/// hold a time outside the range the keys sort by), in the time list index and, under `shard`, in the
/// live-recordings index.
pub async fn put_unreadable_row(stack: &Stack, tenant: &str, id: &str, list_sk: &str, shard: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    use callrecords::store::layout;
    let s = |v: &str| AttributeValue::S(v.into());
    let tenant = callrecords::TenantId::parse(tenant).expect("tenant");
    stack
        .app
        .store
        .client()
        .put_item()
        .table_name(stack.app.store.table())
        .item(
            layout::PK,
            s(&layout::call_pk(&tenant, &callrecords::CallId::parse(id).expect("id"))),
        )
        .item(layout::SK, s(layout::SUMMARY_SK))
        .item("status", AttributeValue::N("5".into()))
        .item(layout::RECORDING, s("garbage"))
        .item(
            layout::ListIndex::Time.pk_attr(),
            s(&layout::ListIndex::Time.pk(&tenant, "")),
        )
        .item(layout::LIST_SK, s(list_sk))
        .item(layout::GSI2_PK, s(shard))
        .item(
            layout::GSI2_SK,
            s(&format!("2025-01-01T00:00:00Z#{}#{id}", tenant.as_str())),
        )
        .send()
        .await
        .expect("raw row stored");
}

/// Stores seed 000's call as acme's `id`, moved by `days_later` days, with its recording object in the
/// bucket (due for expiry once the stack's clock is 30 days past its end).
pub async fn seed_call_with_recording(stack: &Stack, id: &str, days_later: i64) -> callrecords::model::CallRecord {
    use callrecords::store::calls::Condition;
    let tenant = callrecords::TenantId::parse("acme").expect("tenant");
    let mut value = seed_000()["data"].clone();
    value["id"] = Value::String(id.into());
    let mut record =
        callrecords::validate::call(&tenant, &value, None, stack.app.clock.now()).expect("seed 000 is valid");
    let by = chrono::Duration::days(days_later);
    record.summary.created_at += by;
    record.summary.start_time = record.summary.start_time.map(|t| t + by);
    record.summary.end_time = record.summary.end_time.map(|t| t + by);
    let call_id = callrecords::CallId::parse(id).expect("call id");
    let key = callrecords::recording::object_key(&tenant, &call_id, record.summary.created_at, "m4a");
    record.recording.as_mut().expect("seed 000 has a recording").key = Some(key.clone());
    put_object(stack, &key, b"audio").await;
    stack
        .app
        .store
        .put_call(&tenant, record.clone(), &Condition::Always, chrono::Utc::now())
        .await
        .expect("call stored");
    record
}
