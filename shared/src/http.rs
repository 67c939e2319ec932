//! The edge between API Gateway and the domain: the success and error envelopes, the request id, who the
//! caller is, and the one log line each request leaves. This module alone maps [`ApiError`] to HTTP.

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use std::time::Instant;

use crate::apikey;
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::store::DynamoStore;

/// Name of the authorizer context field that carries the tenant.
pub const TENANT_CONTEXT_KEY: &str = "tenantId";

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
struct Details<'a> {
    field: &'a str,
    reason: &'a str,
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
        ApiError::InvalidParameter { field, reason } => Some(Details { field, reason }),
        ApiError::InvalidCursor(reason) => Some(Details {
            field: "cursor",
            reason,
        }),
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

/// How a handler learns who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Deployed: the tenant comes from the authorizer's context, and only from there.
    Authorizer,
    /// `cargo lambda watch` runs no authorizer: the handler checks the Bearer key with the authorizer's code.
    Local,
}

/// The tenant the request acts for; never taken from anything the caller sends directly.
pub async fn tenant(req: &Request, mode: AuthMode, keys: &DynamoStore) -> Result<TenantId, ApiError> {
    let from_authorizer = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().map(|a| a.fields.get(TENANT_CONTEXT_KEY)),
        _ => None,
    };
    match (from_authorizer, mode) {
        // The authorizer ran: its word is final, a missing tenant means a bad key.
        (Some(value), _) => value
            .and_then(|v| v.as_str())
            .and_then(|t| TenantId::parse(t).ok())
            .ok_or(ApiError::Unauthorized),
        (None, AuthMode::Local) => {
            let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
            let Some(key) = header.and_then(apikey::bearer) else {
                return Err(ApiError::Unauthorized);
            };
            keys.authenticate(key).await?.ok_or(ApiError::Unauthorized)
        }
        (None, AuthMode::Authorizer) => Err(ApiError::Unauthorized),
    }
}

/// The one structured log line a request leaves: `{"message":"request","requestId","route","status",
/// "latencyMs","tenant","error"}`. It names the route's template (never the raw path or query string, which
/// may hold a phone number) and the tenant (never the key).
pub struct RequestLog {
    route: &'static str,
    request_id: String,
    started: Instant,
    tenant: Option<TenantId>,
}

impl RequestLog {
    pub fn start(route: &'static str, req: &Request) -> Self {
        RequestLog {
            route,
            request_id: request_id(req),
            started: Instant::now(),
            tenant: None,
        }
    }

    /// The tenant, once the request is authenticated.
    pub fn tenant(&mut self, tenant: &TenantId) {
        self.tenant = Some(tenant.clone());
    }

    /// The response for `result` (`ok` makes the success response), logged.
    pub fn finish<T>(self, result: Result<T, ApiError>, ok: impl FnOnce(T) -> Response<Body>) -> Response<Body> {
        let (response, code) = match result {
            Ok(value) => (ok(value), None),
            Err(err) => (error(&err, &self.request_id), Some(err.code())),
        };
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            requestId = %self.request_id,
            route = self.route,
            status = response.status().as_u16(),
            latencyMs = (latency_ms * 1000.0).round() / 1000.0,
            tenant = self.tenant.as_ref().map(TenantId::as_str),
            error = code,
            "request"
        );
        response
    }
}
