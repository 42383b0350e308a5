//! The one error type of every handler. Whatever went wrong becomes a
//! [`meisa_runtime::errors::ApiError`] here, at the edge, so the JSON body and status come from
//! the shared code table; causes that are not the caller's business are logged, never sent.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use meisa_runtime::errors::{ApiError, ErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{clients::Service, store::StoreError};

/// How long a client should wait before retrying a 503 or 429. Short: a dependency restarting in
/// Kubernetes is usually back within a couple of seconds.
pub const RETRY_AFTER_SECS: &str = "2";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A public error, already in the caller's words.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A service answered with an error, or could not be reached. Built with
    /// [`AppError::contacts`], [`AppError::mailer`] or [`AppError::automations`], never from a
    /// bare status, so each call says which service answered.
    #[error("{service} service: {status}")]
    Service {
        service: Service,
        status: tonic::Status,
    },
    /// A service answered something that does not fit its type: a missing object, a time no
    /// clock can hold, an enum value the gateway does not know. A bug on one side, never the
    /// caller's: a 500.
    #[error(transparent)]
    BadAnswer(#[from] BadAnswer),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or broken invariant in the gateway itself.
    #[error("internal: {0}")]
    Internal(String),
}

/// What in a service's answer could not be read, in words for the log.
#[derive(Debug, thiserror::Error)]
#[error("unreadable answer: {0}")]
pub struct BadAnswer(pub String);

impl BadAnswer {
    /// An answer that lacks the object it exists to carry.
    pub fn missing(service: Service, what: &str) -> Self {
        Self(format!("the {service} service answered without {what}"))
    }
}

/// How a field the mailer or automations names in an `invalid_field` error reads for the HTTP
/// caller.
#[derive(Clone, Copy, Debug)]
pub enum FieldIs<'a> {
    /// The same value under the request's name (`page.cursor` is the query's `cursor`).
    Named(&'a str),
    /// A path id the service cannot parse names nothing: 404, "{what} not found".
    NotFound(&'a str),
}

impl AppError {
    pub fn contacts(status: tonic::Status) -> Self {
        Self::Service {
            service: Service::Contacts,
            status,
        }
    }

    pub fn mailer(status: tonic::Status) -> Self {
        Self::Service {
            service: Service::Mailer,
            status,
        }
    }

    /// Its validation errors already name the DESIGN §3 JSON path of the body the caller sent
    /// (`conditions.all[0].value`), so only request-level names (`page.cursor`) need
    /// [`AppError::renaming`].
    pub fn automations(status: tonic::Status) -> Self {
        Self::Service {
            service: Service::Automations,
            status,
        }
    }

    /// A service's `invalid_field` error in the caller's terms (see [`FieldIs`]); anything else
    /// stays the service's status, so its cause is logged with it.
    pub fn renaming(self, fields: &[(&str, FieldIs<'_>)]) -> Self {
        let Self::Service { status, .. } = &self else {
            return self;
        };
        let api = ApiError::from_status(status);
        if api.code != ErrorCode::InvalidField {
            return self;
        }
        let Some(field) = api.field.as_deref() else {
            return self;
        };
        match fields.iter().find(|(from, _)| *from == field) {
            Some((_, FieldIs::NotFound(what))) => {
                Self::Api(ApiError::not_found(format!("{what} not found")))
            }
            Some((from, FieldIs::Named(to))) => {
                // ApiError::field prefixes the message with the field's path.
                let message = match api.message.strip_prefix(&format!("{from}:")) {
                    Some(rest) => format!("{to}:{rest}"),
                    None => api.message.clone(),
                };
                Self::Api(ApiError {
                    code: ErrorCode::InvalidField,
                    message,
                    field: Some((*to).to_string()),
                })
            }
            None => self,
        }
    }

    pub fn to_api(&self) -> ApiError {
        match self {
            Self::Api(e) => e.clone(),
            Self::Service { service, status } => {
                let api = ApiError::from_status(status);
                // Automations' own "unavailable" says which of its dependencies is down (its
                // database, contacts, the mailer) and carries error details; that is worth
                // passing on. Otherwise an unavailable status is tonic failing to reach the
                // service, and its words ("tcp connect error: Connection refused…") describe our
                // network, not the caller's request.
                let from_automations =
                    *service == Service::Automations && !status.details().is_empty();
                if api.code == ErrorCode::Unavailable && !from_automations {
                    ApiError::unavailable(format!(
                        "the {service} service is unavailable; retry shortly"
                    ))
                } else {
                    api
                }
            }
            Self::Store(e) if e.is_unavailable() => {
                ApiError::unavailable("the gateway database is unavailable; retry shortly")
            }
            Self::BadAnswer(_) | Self::Store(_) | Self::Internal(_) => ApiError::internal(),
        }
    }
}

/// `{"error": {"code", "message", "field"}}`, the body of every failure (DESIGN §2).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of invalid_json, unauthorized, not_found, conflict, payload_too_large,
    /// unsupported_media_type, invalid_field, rate_limited, unavailable, internal.
    #[schema(example = "invalid_field")]
    pub code: String,
    #[schema(example = "custom_fields.plan: field is a string, got a number")]
    pub message: String,
    /// The offending field's path, or null when the error is not about one field.
    #[schema(example = "custom_fields.plan")]
    pub field: Option<String>,
}

impl From<&ApiError> for ErrorDetail {
    fn from(e: &ApiError) -> Self {
        Self {
            code: e.code.as_str().to_string(),
            message: e.message.clone(),
            field: e.field.clone(),
        }
    }
}

impl AppError {
    /// The public error, after logging the cause once: an error for a bug, a warning for an
    /// outage, debug for the caller's mistakes. The JSON API and the dashboard's pages both end
    /// here.
    pub fn logged(&self) -> ApiError {
        let api = self.to_api();
        match api.code {
            ErrorCode::Internal => tracing::error!(error = %self, "request failed"),
            ErrorCode::Unavailable => tracing::warn!(error = %self, "dependency unavailable"),
            _ => tracing::debug!(code = api.code.as_str(), error = %self, "request rejected"),
        }
        api
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        api_error_response(&self.logged())
    }
}

pub fn api_error_response(api: &ApiError) -> Response {
    let status =
        StatusCode::from_u16(api.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        Json(ErrorBody {
            error: ErrorDetail::from(api),
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    match api.code {
        ErrorCode::Unavailable | ErrorCode::RateLimited => {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        ErrorCode::Unauthorized => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_contacts_is_a_503_with_retry_after() {
        let err = AppError::contacts(tonic::Status::unavailable(
            "tcp connect error: os error 111",
        ));
        assert!(!err.to_api().message.contains("tcp"));
        let resp = err.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], RETRY_AFTER_SECS);
    }

    #[test]
    fn unreachable_mailer_is_a_503_naming_the_mailer() {
        let err = AppError::mailer(tonic::Status::unavailable("tcp connect error"));
        let api = err.to_api();
        assert_eq!(api.code, ErrorCode::Unavailable);
        assert!(api.message.contains("mailer"), "{}", api.message);
        assert!(!api.message.contains("tcp"));
    }

    #[test]
    fn automations_outages_say_which_service_is_down() {
        let err = AppError::automations(tonic::Status::unavailable("tcp connect error"));
        let api = err.to_api();
        assert_eq!(api.code, ErrorCode::Unavailable);
        assert!(api.message.contains("automations"), "{}", api.message);
        // The service reachable, its own dependency down: its words are kept.
        let status =
            ApiError::unavailable("the contacts service is unavailable; retry shortly").to_status();
        let api = AppError::automations(status).to_api();
        assert!(api.message.contains("contacts"), "{}", api.message);
    }

    #[test]
    fn automations_paths_pass_through_and_conflicts_keep_their_message() {
        let status = ApiError::field("conditions.all[0].value", "expected a number").to_status();
        let api = AppError::automations(status)
            .renaming(&[("page.cursor", FieldIs::Named("cursor"))])
            .to_api();
        assert_eq!(api.field.as_deref(), Some("conditions.all[0].value"));
        let status = ApiError::conflict("sequence seq_1 is used by automation aut_1").to_status();
        let api = AppError::automations(status).to_api();
        assert_eq!(api.code, ErrorCode::Conflict);
        assert!(api.message.contains("aut_1"));
    }

    #[test]
    fn mailer_fields_are_renamed_to_the_request_s() {
        let status = ApiError::field("page.cursor", "is not a cursor").to_status();
        let api = AppError::mailer(status)
            .renaming(&[("page.cursor", FieldIs::Named("cursor"))])
            .to_api();
        assert_eq!(api.field.as_deref(), Some("cursor"));
        assert_eq!(api.message, "cursor: is not a cursor");
        let status = ApiError::field("id", "\"x\" is not a valid template id").to_status();
        let api = AppError::mailer(status)
            .renaming(&[("id", FieldIs::NotFound("template"))])
            .to_api();
        assert_eq!(api.code, ErrorCode::NotFound);
        assert_eq!(api.field, None);
        let status = ApiError::field("html", "line 1, column 3: bad").to_status();
        let api = AppError::mailer(status).to_api();
        assert_eq!(api.field.as_deref(), Some("html"));
        assert_eq!(api.code, ErrorCode::InvalidField);
    }

    #[test]
    fn an_answer_that_cannot_be_read_is_a_500_that_hides_it() {
        let err = AppError::from(BadAnswer("created_at Timestamp { nanos: -1 }".into()));
        let api = err.to_api();
        assert_eq!(api.code, ErrorCode::Internal);
        assert!(!api.message.contains("created_at"), "{}", api.message);
        assert!(
            err.to_string().contains("created_at"),
            "the log keeps the cause"
        );
    }

    #[test]
    fn every_service_error_says_which_service_answered() {
        let status = || tonic::Status::internal("boom");
        assert!(
            AppError::contacts(status())
                .to_string()
                .starts_with("contacts")
        );
        assert!(AppError::mailer(status()).to_string().starts_with("mailer"));
        assert!(
            AppError::automations(status())
                .to_string()
                .starts_with("automations")
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let api = AppError::Internal("SELECT secret FROM keys".into()).to_api();
        assert_eq!(api.code, ErrorCode::Internal);
        assert!(!api.message.contains("SELECT"));
    }
}
