//! API keys: the authorizer's verdicts, the handler's 401s, local mode, and the key lifecycle.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use callrecords::apikey::Scope;
use callrecords::store::calls::Condition;
use callrecords::{apikey, validate, TenantId};
use integration_tests::*;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

const NOW: &str = "2025-01-15T11:00:00Z";

async fn new_key(stack: &Stack, t: &str) -> apikey::NewKey {
    new_key_with(stack, t, &[Scope::CallsRead]).await
}

async fn new_key_with(stack: &Stack, t: &str, scopes: &[Scope]) -> apikey::NewKey {
    let key = apikey::generate(&TenantId::parse(t).unwrap(), "test", scopes, at(NOW)).unwrap();
    stack.app.store.put_key(&key.record).await.unwrap();
    key
}

/// The authorizer's context for a request carrying `authorization` (or no such header).
async fn authorize(stack: &Stack, authorization: Option<&str>) -> Value {
    let mut ev = event("authorizer.json");
    let headers = ev["headers"].as_object_mut().unwrap();
    match authorization {
        Some(h) => headers.insert("authorization".into(), Value::String(h.into())),
        None => headers.remove("authorization"),
    };
    let payload: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_value(ev).unwrap();
    let response = authorizer::handle(&stack.app.store, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    assert!(
        response.is_authorized,
        "the authorizer leaves the verdict to the handler's 401"
    );
    response.context
}

#[tokio::test]
async fn the_authorizer_maps_a_valid_key_to_its_tenant() {
    let stack = stack(NOW).await;
    let key = new_key(&stack, "acme").await;
    let ctx = authorize(&stack, Some(&format!("Bearer {}", key.key))).await;
    assert_eq!(ctx["tenantId"], "acme");
    assert_eq!(ctx["scopes"], "calls:read");
    let both = new_key_with(&stack, "acme", &[Scope::CallsWrite, Scope::CallsRead]).await;
    let ctx = authorize(&stack, Some(&format!("Bearer {}", both.key))).await;
    assert_eq!(ctx["scopes"], "calls:read calls:write");
}

#[tokio::test]
async fn in_local_mode_a_key_without_the_routes_scope_gets_403_naming_it() {
    let stack = stack_with(NOW, true).await;
    let record = validate::call(&TenantId::parse("acme").unwrap(), &seed_000()["data"], None, at(NOW)).unwrap();
    stack
        .app
        .store
        .put_call(&TenantId::parse("acme").unwrap(), record, &Condition::Always, at(NOW))
        .await
        .unwrap();
    let read = new_key_with(&stack, "acme", &[Scope::CallsRead]).await;
    let write = new_key_with(&stack, "acme", &[Scope::CallsWrite]).await;

    let mut put = Write::put("call_123", &seed_000()["data"]).event();
    put["requestContext"].as_object_mut().unwrap().remove("authorizer");
    put["headers"]["authorization"] = Value::String(format!("Bearer {}", read.key));
    let reply = Write::put("call_123", &Value::Null).send_event(&stack.app, &put).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.body["error"]["details"]["scope"], "calls:write");

    let mut get = get_call_event(None, "call_123");
    get["headers"]["authorization"] = Value::String(format!("Bearer {}", write.key));
    let reply = get_call(&stack.app, request(&get)).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(
        reply.body["error"]["details"],
        serde_json::json!({"route": "GET /api/v1/calls/{callId}", "scope": "calls:read"})
    );
    get["headers"]["authorization"] = Value::String(format!("Bearer {}", read.key));
    assert_eq!(get_call(&stack.app, request(&get)).await.status, 200);
}

#[tokio::test]
async fn missing_invalid_and_revoked_keys_get_no_tenant() {
    let stack = stack(NOW).await;
    let key = new_key(&stack, "acme").await;
    let unknown = apikey::generate(
        &TenantId::parse("acme").unwrap(),
        "never stored",
        &[Scope::CallsRead],
        at(NOW),
    )
    .unwrap();
    let tampered = format!("{}x", &key.key[..key.key.len() - 1]);

    for (what, header) in [
        ("missing", None),
        ("not bearer", Some(format!("Basic {}", key.key))),
        ("malformed", Some("Bearer hello".to_owned())),
        ("unknown", Some(format!("Bearer {}", unknown.key))),
        ("wrong secret", Some(format!("Bearer {tampered}"))),
    ] {
        let ctx = authorize(&stack, header.as_deref()).await;
        assert_eq!(ctx.get("tenantId"), None, "{what}");
    }

    assert!(stack.app.store.revoke_key(&key.record.key_id, at(NOW)).await.unwrap());
    let ctx = authorize(&stack, Some(&format!("Bearer {}", key.key))).await;
    assert_eq!(ctx.get("tenantId"), None, "revoked");
}

#[tokio::test]
async fn get_call_answers_401_when_the_authorizer_found_no_tenant() {
    let stack = stack(NOW).await;
    for ev in [
        event("get-call-no-tenant.json"),
        get_call_event(Some(""), "call_123"),
        get_call_event(None, "call_123"),
    ] {
        let reply = get_call(&stack.app, request(&ev)).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["error"]["code"], "UNAUTHORIZED");
        assert!(!reply.body["error"]["requestId"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn in_local_mode_the_handler_checks_the_bearer_key_itself() {
    let stack = stack_with(NOW, true).await;
    let t = TenantId::parse("acme").unwrap();
    stack
        .app
        .store
        .put_call(
            &t,
            validate::call(&t, &seed_000()["data"], None, stack.app.clock.now()).unwrap(),
            &Condition::Always,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let key = new_key(&stack, "acme").await;
    let other = new_key(&stack, "globex").await;

    let with_header = |h: Option<String>| {
        let mut ev = get_call_event(None, "call_123");
        let headers = ev["headers"].as_object_mut().unwrap();
        headers.remove("authorization");
        if let Some(h) = h {
            headers.insert("authorization".into(), Value::String(h));
        }
        request(&ev)
    };

    assert_eq!(
        get_call(&stack.app, with_header(Some(format!("Bearer {}", key.key))))
            .await
            .status,
        200
    );
    assert_eq!(
        get_call(&stack.app, with_header(Some(format!("Bearer {}", other.key))))
            .await
            .status,
        404
    );
    for h in [None, Some("Bearer nope".to_owned()), Some(key.key.clone())] {
        let reply = get_call(&stack.app, with_header(h.clone())).await;
        assert_eq!(reply.status, 401, "{h:?}");
        assert_eq!(reply.body["error"]["code"], "UNAUTHORIZED");
    }
    stack.app.store.revoke_key(&key.record.key_id, at(NOW)).await.unwrap();
    assert_eq!(
        get_call(&stack.app, with_header(Some(format!("Bearer {}", key.key))))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn keys_are_listed_per_tenant_newest_first_and_revocation_is_recorded() {
    let stack = stack(NOW).await;
    let first = new_key(&stack, "acme").await;
    let mut second = apikey::generate(
        &TenantId::parse("acme").unwrap(),
        "second",
        &[Scope::CallsRead],
        at("2025-01-15T12:00:00Z"),
    )
    .unwrap();
    second.record.label = "second".into();
    stack.app.store.put_key(&second.record).await.unwrap();
    new_key(&stack, "globex").await;

    assert!(stack
        .app
        .store
        .revoke_key(&first.record.key_id, at("2025-01-16T00:00:00Z"))
        .await
        .unwrap());
    assert!(
        !stack.app.store.revoke_key("000000000000", at(NOW)).await.unwrap(),
        "no such key"
    );

    let keys = stack
        .app
        .store
        .list_keys(&TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(
        keys.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
        [&second.record.key_id, &first.record.key_id]
    );
    assert_eq!(keys[1].revoked_at, Some(at("2025-01-16T00:00:00Z")));
    assert_eq!(keys[0].revoked_at, None);
    assert!(keys.iter().all(|k| !k.key_hash.is_empty() && k.tenant_id == "acme"));
}
