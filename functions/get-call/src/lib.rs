//! GET /api/v1/calls/{callId}: parse the event, ask the domain, map the result. Glue only.

use callrecords::http::{self, RequestLog};
use callrecords::{App, CallId};
use lambda_http::{Body, Error, Request, RequestExt, Response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let mut log = RequestLog::start("GET /api/v1/calls/{callId}", &req);
    let result = async {
        let tenant = http::tenant(&req, app.auth_mode(), &app.store).await?;
        log.tenant(&tenant);
        let params = req.path_parameters();
        let id = CallId::parse(params.first("callId").unwrap_or_default())?;
        app.get_call(&tenant, &id).await
    }
    .await;
    Ok(log.finish(result, |call| http::ok(&call)))
}
