//! The HTTP surface: one module per resource, the router, and the layers every request passes.

pub mod body;
pub mod contacts;
pub mod fields;
pub mod health;
pub mod model;

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{Request, Response, header},
    middleware,
    response::IntoResponse,
    routing::{get, post},
};
use meisa_runtime::errors::ApiError;
use sqlx::PgPool;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::{Span, field::Empty};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{self, KeyCache},
    contacts::ContactsClient,
    error::api_error_response,
    openapi::ApiDoc,
};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub contacts: ContactsClient,
    pub contacts_health: HealthClient<Channel>,
    pub keys: Arc<KeyCache>,
}

/// The whole application router and its OpenAPI document (served at `/api/v1/openapi.json`).
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    // Every route here needs an API key. The paths without a trailing slash are the same
    // handlers; they are left out of the OpenAPI document to keep it to one path per operation.
    let authenticated = OpenApiRouter::new()
        .routes(routes!(contacts::upsert))
        .routes(routes!(contacts::batch_upsert))
        .routes(routes!(contacts::list_or_find))
        .routes(routes!(contacts::get_contact, contacts::delete_contact))
        .routes(routes!(fields::list_fields))
        .route("/api/v1/contacts/upsert", post(contacts::upsert))
        .route("/api/v1/contacts/batch-upsert", post(contacts::batch_upsert))
        .route("/api/v1/contacts", get(contacts::list_or_find))
        .route("/api/v1/fields", get(fields::list_fields))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    let public = OpenApiRouter::new()
        .routes(routes!(health::alive))
        .routes(routes!(health::ready));

    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(authenticated)
        .merge(public)
        .split_for_parts();

    let document = Arc::new(openapi.clone());
    let router = router
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
                        .on_response(record_status),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state);
    (router, openapi)
}

/// The path only: query strings can hold an email address, which does not belong in traces.
fn http_span(req: &Request<Body>) -> Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http",
        method = %req.method(),
        path = %req.uri().path(),
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
    response
        .headers_mut()
        .remove(header::WWW_AUTHENTICATE);
    response
}
