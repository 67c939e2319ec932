//! GET /api/v1/calls/{callId}: parse the event, ask the domain, map the result. Glue only.

use callrecords::{http, ApiError, App, CallId};
use lambda_http::{Body, Error, Request, RequestExt, Response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let request_id = http::request_id(&req);
    let result = async {
        let tenant = http::tenant(&req, app.auth_mode(), &app.store).await?;
        let params = req.path_parameters();
        let id = CallId::parse(params.first("callId").unwrap_or_default())?;
        app.get_call(&tenant, &id).await
    }
    .await;
    Ok(match result {
        Ok(call) => http::ok(&call),
        Err(err) => {
            if matches!(err, ApiError::Internal) {
                tracing::error!(request_id, "get-call failed");
            }
            http::error(&err, &request_id)
        }
    })
}
