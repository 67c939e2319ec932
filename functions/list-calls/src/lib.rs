//! GET /api/v1/calls: read the query string, ask the domain for one page, map the result. Glue only; the
//! rules (filters, indexes, cursor) are in `callrecords::list`.

use callrecords::list::ListQuery;
use callrecords::{http, ApiError, App};
use lambda_http::{Body, Error, Request, RequestExt, Response};

pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    let request_id = http::request_id(&req);
    let result = async {
        let tenant = http::tenant(&req, app.auth_mode(), &app.store).await?;
        let params = req.query_string_parameters();
        let query = ListQuery::parse(params.iter())?;
        app.list_calls(&tenant, &query).await
    }
    .await;
    Ok(match result {
        Ok(page) => http::ok_list(&page.data, &page.pagination),
        Err(err) => {
            if matches!(err, ApiError::Internal) {
                tracing::error!(request_id, "list-calls failed");
            }
            http::error(&err, &request_id)
        }
    })
}
