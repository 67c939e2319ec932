//! GET /api/v1/calls/{callId}/recording: a fresh presigned link on every request, so a player or a page left
//! open never holds a dead one. 302 to the link by default; JSON `{url, expiresAt}` with `?format=json` or
//! `Accept: application/json`. 404 when the call has no servable recording, 410 once retention has ended.

use callrecords::apikey::Scope;
use callrecords::http::{self, RequestLog};
use callrecords::store::Link;
use callrecords::{ApiError, App, CallId};
use chrono::{DateTime, Utc};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Serialize;

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkBody<'a> {
    url: &'a str,
    expires_at: DateTime<Utc>,
}

/// JSON when asked by `format=json` or by an `Accept` that names JSON; a redirect otherwise.
fn wants_json(req: &Request) -> Result<bool, ApiError> {
    let params = req.query_string_parameters();
    for (name, _) in params.iter() {
        if name != "format" {
            return Err(ApiError::invalid(name, "unknown parameter"));
        }
    }
    if params.all("format").is_some_and(|all| all.len() > 1) {
        return Err(ApiError::invalid("format", "given more than once"));
    }
    match params.first("format") {
        Some("json") => Ok(true),
        Some("redirect") => Ok(false),
        Some(_) => Err(ApiError::invalid("format", "must be json or redirect")),
        None => Ok(req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"))),
    }
}

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let mut log = RequestLog::start(FUNCTION, "GET /api/v1/calls/{callId}/recording", &req);
    let result = async {
        let tenant = http::authorize(&req, &app.keys, &mut log, Scope::CallsRead).await?;
        let json = wants_json(&req)?;
        let id = CallId::parse(req.path_parameters().first("callId").unwrap_or_default())?;
        Ok::<(Link, bool), ApiError>((app.recording_link(&tenant, &id).await?, json))
    }
    .await;
    Ok(log.finish(result, |(link, json)| {
        let body = LinkBody {
            url: &link.url,
            expires_at: link.expires_at,
        };
        if json {
            http::ok(&body)
        } else {
            http::redirect(&link.url, &body)
        }
    }))
}
