//! `/healthz` says the process is alive (Kubernetes liveness); `/readyz` says it can serve
//! (readiness): its database answers and contacts reports SERVING.
//!
//! The mailer and automations are checked and reported, but do not decide readiness: the upsert
//! (what product backends call) needs only contacts, and taking every gateway out of the load
//! balancer because one of them is down would turn a template- or automation-editing outage into a
//! total one. Their endpoints answer 503 with `Retry-After` on their own while they are down, and
//! `/u/{token}` shows a "try again" page. (Changes upserted meanwhile wait in the stream; the
//! automations service catches up when it is back.)

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use meisa_runtime::errors::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{clients::Service, error::ErrorDetail, state::AppState, store};

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
    /// Dependencies that are down without making the gateway unready (mailer, automations); empty
    /// when all is well.
    degraded: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Checks {
    database: String,
    contacts: String,
    /// Reported, not required (see the module docs).
    mailer: String,
    /// Reported, not required.
    automations: String,
}

/// "ok", what the health check said, or "timed out".
fn outcome(check: Result<Result<(), String>, tokio::time::error::Elapsed>) -> String {
    match check {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => e,
        Err(_) => "timed out".to_string(),
    }
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
    let check = |service| tokio::time::timeout(CHECK_TIMEOUT, state.clients.check(service));
    let (database, contacts, mailer, automations) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, store::ping(&state.pool)),
        check(Service::Contacts),
        check(Service::Mailer),
        check(Service::Automations),
    );
    let database = match database {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "unreachable".to_string()
        }
        Err(_) => "timed out".to_string(),
    };
    let (contacts, mailer, automations) =
        (outcome(contacts), outcome(mailer), outcome(automations));
    let degraded = [("mailer", &mailer), ("automations", &automations)]
        .into_iter()
        .filter(|(_, check)| *check != "ok")
        .map(|(name, _)| name.to_string())
        .collect();
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
            checks: Checks {
                database,
                contacts,
                mailer,
                automations,
            },
            degraded,
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
