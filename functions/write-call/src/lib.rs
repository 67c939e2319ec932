//! The write routes, one function (they share a client pool, one cold start and one IAM role scoped to the
//! table and the recordings prefix): PUT, PATCH and DELETE of `/api/v1/calls/{callId}`, DELETE of
//! `/api/v1/calls?phoneNumber=…` (erasure) and POST of `/api/v1/calls/{callId}/recording` (upload). Glue
//! only: the rules are in `callrecords::write`. Every route needs the `calls:write` scope.

use callrecords::apikey::Scope;
use callrecords::http::{self, RequestLog};
use callrecords::write::WriteOutcome;
use callrecords::{phone, validate, ApiError, App, CallId};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

/// The route a request is for, by method and path shape (the template routes only these here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Put,
    Patch,
    Delete,
    Erase,
    Upload,
}

impl Route {
    fn of(req: &Request) -> Option<Route> {
        let has_id = req.path_parameters().first("callId").is_some();
        let upload = req.uri().path().ends_with("/recording");
        match (req.method(), has_id, upload) {
            (&Method::PUT, true, false) => Some(Route::Put),
            (&Method::PATCH, true, false) => Some(Route::Patch),
            (&Method::DELETE, true, false) => Some(Route::Delete),
            (&Method::DELETE, false, false) => Some(Route::Erase),
            (&Method::POST, true, true) => Some(Route::Upload),
            _ => None,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Route::Put => "PUT /api/v1/calls/{callId}",
            Route::Patch => "PATCH /api/v1/calls/{callId}",
            Route::Delete => "DELETE /api/v1/calls/{callId}",
            Route::Erase => "DELETE /api/v1/calls",
            Route::Upload => "POST /api/v1/calls/{callId}/recording",
        }
    }
}

/// What a route answers before it becomes a response.
enum Answer {
    Call(Box<WriteOutcome>),
    Gone,
    Erased(callrecords::write::Erased),
    Upload(callrecords::write::UploadLink),
}

fn no_query(req: &Request) -> Result<(), ApiError> {
    match req.query_string_parameters().iter().next() {
        Some((name, _)) => Err(ApiError::invalid(name, "unknown parameter")),
        None => Ok(()),
    }
}

/// The one parameter of an erasure: `phoneNumber`, once, in E.164.
fn erase_number(req: &Request) -> Result<String, ApiError> {
    let params = req.query_string_parameters();
    for (name, _) in params.iter() {
        if name != "phoneNumber" {
            return Err(ApiError::invalid(
                name,
                "unknown parameter (an erasure takes phoneNumber only)",
            ));
        }
    }
    match params.all("phoneNumber").as_deref() {
        None | Some([]) => Err(ApiError::invalid("phoneNumber", "is required")),
        Some([one]) => phone::e164(one).ok_or_else(|| ApiError::invalid("phoneNumber", "must be an E.164 number")),
        Some(_) => Err(ApiError::invalid("phoneNumber", "given more than once")),
    }
}

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let route = Route::of(&req);
    let mut log = RequestLog::start(FUNCTION, route.map_or("write", Route::key), &req);
    let result = async {
        let tenant = http::authorize(&req, &app.keys, &mut log, Scope::CallsWrite).await?;
        let Some(route) = route else {
            return Err(ApiError::NotFound);
        };
        let id = || CallId::parse(req.path_parameters().first("callId").unwrap_or_default());
        match route {
            Route::Put => {
                no_query(&req)?;
                let id = id()?;
                let condition = http::precondition(&req)?;
                http::require_content_type(&req, "application/json")?;
                let body = validate::body(http::body(&req))?;
                Ok(Answer::Call(Box::new(
                    app.put_call(&tenant, &id, &body, condition).await?,
                )))
            }
            Route::Patch => {
                no_query(&req)?;
                let id = id()?;
                let condition = http::precondition(&req)?;
                http::require_content_type(&req, "application/merge-patch+json")?;
                let body = validate::body(http::body(&req))?;
                Ok(Answer::Call(Box::new(
                    app.patch_call(&tenant, &id, &body, condition).await?,
                )))
            }
            Route::Delete => {
                no_query(&req)?;
                app.delete_call(&tenant, &id()?).await?;
                Ok(Answer::Gone)
            }
            Route::Erase => {
                let number = erase_number(&req)?;
                Ok(Answer::Erased(app.erase(&tenant, &number).await?))
            }
            Route::Upload => {
                no_query(&req)?;
                let id = id()?;
                http::require_content_type(&req, "application/json")?;
                let upload = validate::upload(&validate::body(http::body(&req))?)?;
                Ok(Answer::Upload(app.start_upload(&tenant, &id, &upload).await?))
            }
        }
    }
    .await;
    Ok(log.finish(result, |answer| match answer {
        Answer::Call(outcome) => {
            let response = http::with_header(http::ok(&outcome.call), "etag", &http::etag(&outcome.etag));
            if outcome.created {
                let location = format!("/api/v1/calls/{}", outcome.call.summary.id);
                http::with_header(http::with_status(response, StatusCode::CREATED), "location", &location)
            } else {
                response
            }
        }
        Answer::Gone => http::no_content(),
        Answer::Erased(erased) => http::ok(&erased),
        Answer::Upload(link) => http::with_status(http::ok(&link), StatusCode::CREATED),
    }))
}
