//! The whole HTTP application: the JSON API ([`crate::api`]) and the dashboard
//! ([`crate::web`]) on one [`AppState`], the OpenAPI document, the JSON 404 of unknown routes,
//! and the layers every request passes (request id, trace span without secrets).

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, Response, header},
    response::IntoResponse,
    routing::get,
};
use meisa_runtime::errors::ApiError;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::{Span, field::Empty};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{api, error::api_error_response, openapi::ApiDoc, state::AppState, web};

/// The application router and its OpenAPI document (served at `/api/v1/openapi.json`).
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api::routes(state.auth.clone()))
        .split_for_parts();

    let document = Arc::new(openapi.clone());
    let router = router
        .merge(web::router())
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(http_span)
                        .on_response(record_status)
                        // AppError logs each failure once, with its cause; a second, causeless
                        // ERROR line per 503 (say, every readiness probe while contacts
                        // restarts) would only be noise.
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state);
    (router, openapi)
}

/// What a trace records of a path. Query strings are left out (they can hold an email address),
/// and so are the path segments that are secrets or personal data: the unsubscribe token (a
/// credential: whoever has it can unsubscribe the contact) and a suppressed address.
fn loggable_path(path: &str) -> &str {
    const REDACTED: &[(&str, &str)] = &[
        ("/u/", "/u/{token}"),
        ("/api/v1/suppressions/", "/api/v1/suppressions/{email}"),
    ];
    for (prefix, shown) in REDACTED {
        if path.starts_with(prefix) && path.len() > prefix.len() {
            return shown;
        }
    }
    path
}

fn http_span(req: &Request<Body>) -> Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http",
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
        request_id,
        status = Empty,
    );
    // Continue the caller's trace when it sent a W3C `traceparent`.
    meisa_runtime::telemetry::set_parent_from_headers(&span, req.headers());
    span
}

fn record_status(res: &Response<Body>, latency: std::time::Duration, span: &Span) {
    span.record("status", res.status().as_u16());
    tracing::debug!(latency_ms = latency.as_millis() as u64, "answered");
}

/// Unknown routes and methods answer in the same JSON error shape as everything else. A known
/// path with the wrong method is a 404 too: the shared code table has no 405.
async fn not_found(req: Request<Body>) -> impl IntoResponse {
    let mut response = api_error_response(&ApiError::not_found(format!(
        "no route for {} {}; the API is documented at /api/v1/openapi.json",
        req.method(),
        req.uri().path()
    )));
    response.headers_mut().remove(header::WWW_AUTHENTICATE);
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use http::Request;
    use meisa_runtime::client::Timeouts;
    use tower::ServiceExt;

    use super::*;
    use crate::{auth::Authenticator, clients::Clients, config::Upstream};

    /// A router whose dependencies are never contacted: nothing listens at either address.
    fn offline_router() -> Router {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(200))
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let nowhere = Upstream {
            url: "http://127.0.0.1:1".into(),
            timeouts: Timeouts {
                connect: Duration::from_millis(200),
                call: Duration::from_millis(500),
            },
        };
        router(AppState {
            clients: Clients::new(&nowhere, &nowhere, &nowhere).unwrap(),
            auth: Authenticator::new(pool.clone(), Duration::ZERO),
            pool,
            dashboard: crate::state::Dashboard::new(
                "http://127.0.0.1:8080",
                crate::accounts::SignInLimits::default(),
            ),
        })
        .0
    }

    async fn call(req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let resp = offline_router().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn unknown_routes_answer_the_json_error_body() {
        let (status, body) = call(get("/nope")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["field"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn api_routes_need_a_key_before_anything_else() {
        let req = Request::post("/api/v1/contacts/upsert")
            .header("content-type", "text/plain")
            .body(Body::from("not json"))
            .unwrap();
        let (status, body) = call(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthorized");
    }

    #[tokio::test]
    async fn an_unreachable_database_makes_auth_a_503_not_a_500() {
        let req = Request::get("/api/v1/fields/")
            .header(
                "authorization",
                format!("Bearer meisa_sk_{}", "a".repeat(40)),
            )
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(req).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
    }

    #[test]
    fn tokens_and_addresses_stay_out_of_traces() {
        assert_eq!(loggable_path("/u/AQIDBAUGBwgJ"), "/u/{token}");
        assert_eq!(
            loggable_path("/api/v1/suppressions/jane%40example.com"),
            "/api/v1/suppressions/{email}"
        );
        assert_eq!(
            loggable_path("/api/v1/suppressions/"),
            "/api/v1/suppressions/"
        );
        assert_eq!(
            loggable_path("/api/v1/contacts/ct_1"),
            "/api/v1/contacts/ct_1"
        );
    }

    #[tokio::test]
    async fn the_unsubscribe_page_needs_no_key_and_hides_an_outage_behind_a_page() {
        let resp = offline_router()
            .oneshot(get(&format!("/u/{}", "A".repeat(44))))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let resp = offline_router()
            .oneshot(get("/u/not%20a%20token"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn mail_routes_are_in_the_openapi_document() {
        let (_, body) = call(get("/api/v1/openapi.json")).await;
        for path in [
            "/api/v1/templates/",
            "/api/v1/templates/{id}",
            "/api/v1/templates/{id}/preview",
            "/api/v1/templates/{id}/test-send",
            "/api/v1/messages/",
            "/api/v1/messages/{id}",
            "/api/v1/suppressions/",
            "/api/v1/suppressions/{email}",
            "/u/{token}",
        ] {
            assert!(
                body["paths"].get(path).is_some(),
                "{path} is not documented"
            );
        }
        for method in ["get", "put", "patch", "delete"] {
            assert!(
                body["paths"]["/api/v1/templates/{id}"]
                    .get(method)
                    .is_some()
            );
        }
    }

    #[tokio::test]
    async fn automation_routes_are_in_the_openapi_document() {
        let (_, body) = call(get("/api/v1/openapi.json")).await;
        for (path, methods) in [
            ("/api/v1/sequences/", &["get", "post"][..]),
            ("/api/v1/sequences/{id}", &["get", "put", "delete"][..]),
            ("/api/v1/sequences/{id}/stats", &["get"][..]),
            ("/api/v1/enrollments/", &["get"][..]),
            ("/api/v1/automations/", &["get", "post"][..]),
            ("/api/v1/automations/{id}", &["get", "put", "delete"][..]),
            ("/api/v1/automations/{id}/enable", &["post"][..]),
            ("/api/v1/automations/{id}/disable", &["post"][..]),
            ("/api/v1/automations/{id}/stats", &["get"][..]),
            ("/api/v1/contacts/{id}/activity", &["get"][..]),
        ] {
            for method in methods {
                assert!(
                    body["paths"][path].get(*method).is_some(),
                    "{method} {path} is not documented"
                );
            }
        }
        let schemas = &body["components"]["schemas"];
        assert!(
            schemas["AutomationView"]["properties"]
                .get("unseen_fields")
                .is_some()
        );
        assert!(schemas.get("SequenceBody").is_some());
    }

    #[tokio::test]
    async fn automation_routes_check_the_key_first_and_answer_without_a_trailing_slash() {
        for path in [
            "/api/v1/automations",
            "/api/v1/sequences",
            "/api/v1/enrollments",
        ] {
            let (status, body) = call(get(path)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn liveness_and_the_openapi_document_need_no_dependency() {
        let (status, body) = call(get("/healthz")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        let (status, body) = call(get("/api/v1/openapi.json")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["openapi"], "3.1.0");
        let (status, body) = call(get("/readyz")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
    }
}
