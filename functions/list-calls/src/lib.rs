//! GET /api/v1/calls: read the query string, ask the domain for one page, map the result. Glue only; the
//! rules (filters, indexes, cursor) are in `callrecords::list`.

use callrecords::apikey::Scope;
use callrecords::http::{self, RequestLog};
use callrecords::list::ListQuery;
use callrecords::App;
use lambda_http::{Body, Error, Request, RequestExt, Response};

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let mut log = RequestLog::start(FUNCTION, "GET /api/v1/calls", &req);
    let result = async {
        let tenant = http::authorize(&req, &app.keys, &mut log, Scope::CallsRead).await?;
        let params = req.query_string_parameters();
        let query = ListQuery::parse(params.iter())?;
        app.list_calls(&tenant, &query).await
    }
    .await;
    Ok(log.finish(result, |page| http::ok_list(&page.data, &page.pagination)))
}
