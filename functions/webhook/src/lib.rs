//! The webhook receiver: `POST /api/v1/webhooks/{provider}/{endpointId}`, with no API key
//! (the provider's signature authenticates). Glue only: the steps are in `callrecords::receive`.

use callrecords::http::{self, RequestLog};
use callrecords::App;
use lambda_http::{Body, Error, Request, RequestExt, Response};

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

pub const ROUTE: &str = "POST /api/v1/webhooks/{provider}/{endpointId}";

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let log = RequestLog::start(FUNCTION, ROUTE, &req);
    let params = req.path_parameters();
    let provider = params.first("provider").unwrap_or_default();
    let endpoint = params.first("endpointId").unwrap_or_default();
    let result = app
        .receive_webhook(provider, endpoint, req.headers(), http::body(&req))
        .await;
    Ok(log.finish(result, |received| http::ok(&received)))
}
