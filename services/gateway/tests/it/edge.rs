//! The edge itself: unknown routes, health, readiness, OpenAPI, a dependency that is down.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    assert_error, jane, spawn_app, spawn_app_with_automations, spawn_app_without_contacts,
};

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let app = spawn_app().await;
    // (`/` is the dashboard's start now: see dashboard.rs.)
    for path in ["/nope", "/api/v1/nope", "/api/v2/contacts/upsert/"] {
        let resp = app.get(path).await;
        assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    }
    // A known path with a method it does not serve.
    let resp = app.get("/api/v1/contacts/upsert/").await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    let resp = app
        .http
        .put(app.url("/api/v1/fields/"))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app_with_automations().await;
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["contacts"], "ok", "{body}");
    assert_eq!(body["checks"]["mailer"], "ok", "{body}");
    assert_eq!(body["checks"]["automations"], "ok", "{body}");
    assert_eq!(body["degraded"], serde_json::json!([]), "{body}");
}

#[tokio::test]
async fn contacts_down_is_a_503_with_retry_after() {
    let app = spawn_app_without_contacts().await;
    let resp = app.upsert(jane()).await;
    assert_eq!(resp.headers()["retry-after"], "2");
    let error = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable", None).await;
    assert_eq!(
        error["message"],
        "the contacts service is unavailable; retry shortly"
    );
    let resp = app.get("/api/v1/contacts/ct_1").await;
    assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable", None).await;

    // Alive, but not ready.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_ne!(body["checks"]["contacts"], "ok", "{body}");
    assert_eq!(body["error"]["code"], "unavailable");

    // Input errors are still answered without contacts.
    let resp = app
        .upsert(serde_json::json!({"email": 5, "external_id": "u"}))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("email"),
    )
    .await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/contacts/upsert/",
        "/api/v1/contacts/batch-upsert/",
        "/api/v1/contacts/",
        "/api/v1/contacts/{id}",
        "/api/v1/fields/",
        "/healthz",
        "/readyz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(
        doc["paths"]["/api/v1/contacts/{id}"]
            .get("delete")
            .is_some()
    );
    for schema in [
        "UpsertContactBody",
        "UpsertResult",
        "ContactView",
        "ErrorBody",
        "FieldList",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn a_caller_trace_and_request_id_are_carried() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url("/api/v1/contacts/upsert/"))
        .bearer_auth(&app.api_key)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-request-id", "req-123")
        .json(&jane())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-request-id"], "req-123");
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(
        resp.headers().contains_key("x-request-id"),
        "one is made when none is sent"
    );
}
