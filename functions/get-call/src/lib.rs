//! GET /api/v1/calls/{callId}: parse the event, ask the domain, map the result. Glue only.

use callrecords::apikey::Scope;
use callrecords::http::{self, RequestLog};
use callrecords::{App, CallId};
use lambda_http::{Body, Error, Request, RequestExt, Response};

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let mut log = RequestLog::start(FUNCTION, "GET /api/v1/calls/{callId}", &req);
    let result = async {
        let tenant = http::authorize(&req, &app.keys, &mut log, Scope::CallsRead).await?;
        let params = req.path_parameters();
        let id = CallId::parse(params.first("callId").unwrap_or_default())?;
        app.get_call(&tenant, &id).await
    }
    .await;
    Ok(log.finish(result, |(call, etag)| {
        http::with_header(http::ok(&call), "etag", &http::etag(&etag))
    }))
}
