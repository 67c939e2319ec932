//! HTTP API Lambda authorizer (payload 2.0, simple responses): maps `Authorization: Bearer <key>` to a tenant.
//!
//! It never denies. A valid key puts `tenantId` and its `scopes` (space separated) into the context; a missing, malformed, unknown or revoked
//! key leaves it out, and the handler answers 401 `UNAUTHORIZED` in the API's own error envelope. (An HTTP
//! API answers a denial with a bare 403 `{"message":"Forbidden"}`, which no client of this API expects.)
//! Handlers accept a tenant from this context only.

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use callrecords::apikey::{self, Scope};
use callrecords::http::{SCOPES_CONTEXT_KEY, TENANT_CONTEXT_KEY};
use callrecords::metrics;
use callrecords::store::DynamoStore;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{json, Value};

/// This function's name in its metrics (`Function`): its crate name.
pub const FUNCTION: &str = env!("CARGO_PKG_NAME");

pub async fn handle(
    keys: &DynamoStore,
    event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>,
) -> Result<ApiGatewayV2CustomAuthorizerSimpleResponse<Value>, Error> {
    let header = event.payload.headers.get("authorization").and_then(|v| v.to_str().ok());
    let caller = match header.and_then(apikey::bearer) {
        Some(key) => keys.authenticate(key).await,
        None => Ok(None),
    };
    metrics::authorization(FUNCTION, caller.as_ref().ok().map(Option::is_some));
    // A store failure is an error, not a verdict: API Gateway then answers 500 and the caller retries.
    let caller = caller?;
    let context = match &caller {
        Some(c) => json!({ TENANT_CONTEXT_KEY: c.tenant.as_str(), SCOPES_CONTEXT_KEY: Scope::join(&c.scopes) }),
        None => json!({}),
    };
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    response.is_authorized = true;
    response.context = context;
    Ok(response)
}
