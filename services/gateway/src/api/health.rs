//! `/healthz` says the process is alive (Kubernetes liveness); `/readyz` says it can serve
//! (readiness): its database answers and contacts reports SERVING.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use meisa_runtime::errors::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::{contacts, error::ErrorDetail, store};

/// A readiness probe must answer before the kubelet gives up on it.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub struct Alive {
    #[schema(example = "ok")]
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// Present when not ready, in the usual error shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
    /// "ok" or what is wrong, per dependency.
    checks: Checks,
}

#[derive(Serialize, ToSchema)]
pub struct Checks {
    database: String,
    contacts: String,
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Alive)))]
pub async fn alive() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, body = Readiness),
        (status = 503, body = Readiness, description = "a dependency is unavailable"),
    )
)]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let mut health = state.contacts_health.clone();
    let (database, contacts) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, store::ping(&state.pool)),
        tokio::time::timeout(CHECK_TIMEOUT, contacts::check(&mut health)),
    );
    let database = match database {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "unreachable".to_string()
        }
        Err(_) => "timed out".to_string(),
    };
    let contacts = match contacts {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => e,
        Err(_) => "timed out".to_string(),
    };
    let ready = database == "ok" && contacts == "ok";
    let error = (!ready).then(|| {
        ErrorDetail::from(&ApiError::unavailable(format!(
            "not ready: database {database}, contacts {contacts}"
        )))
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (
        status,
        Json(Readiness {
            error,
            checks: Checks { database, contacts },
        }),
    )
        .into_response();
    if !ready {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static(crate::error::RETRY_AFTER_SECS),
        );
    }
    response
}
