//! The one table of public error codes (DESIGN §2). Services turn their typed errors into an
//! [`ApiError`] and send it as a `tonic::Status` carrying `google.rpc.ErrorInfo` (the code) and
//! `google.rpc.BadRequest` (the field); the gateway reads it back and answers the JSON error body
//! with the HTTP status from the same table. A gRPC caller and an HTTP caller see the same code.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub const ERROR_DOMAIN: &str = "meisa";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidJson,
    Unauthorized,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidField,
    RateLimited,
    Unavailable,
    Internal,
}

/// (code, wire name, HTTP status, gRPC code)
const TABLE: &[(ErrorCode, &str, u16, Code)] = &[
    (
        ErrorCode::InvalidJson,
        "invalid_json",
        400,
        Code::InvalidArgument,
    ),
    (
        ErrorCode::Unauthorized,
        "unauthorized",
        401,
        Code::Unauthenticated,
    ),
    (ErrorCode::NotFound, "not_found", 404, Code::NotFound),
    (ErrorCode::Conflict, "conflict", 409, Code::AlreadyExists),
    (
        ErrorCode::PayloadTooLarge,
        "payload_too_large",
        413,
        Code::InvalidArgument,
    ),
    (
        ErrorCode::UnsupportedMediaType,
        "unsupported_media_type",
        415,
        Code::InvalidArgument,
    ),
    (
        ErrorCode::InvalidField,
        "invalid_field",
        422,
        Code::InvalidArgument,
    ),
    (
        ErrorCode::RateLimited,
        "rate_limited",
        429,
        Code::ResourceExhausted,
    ),
    (
        ErrorCode::Unavailable,
        "unavailable",
        503,
        Code::Unavailable,
    ),
    (ErrorCode::Internal, "internal", 500, Code::Internal),
];

impl ErrorCode {
    fn row(self) -> &'static (ErrorCode, &'static str, u16, Code) {
        TABLE
            .iter()
            .find(|r| r.0 == self)
            .unwrap_or(&TABLE[TABLE.len() - 1])
    }
    pub fn as_str(self) -> &'static str {
        self.row().1
    }
    pub fn http_status(self) -> u16 {
        self.row().2
    }
    pub fn grpc_code(self) -> Code {
        self.row().3
    }
    pub fn parse(s: &str) -> Option<Self> {
        TABLE.iter().find(|r| r.1 == s).map(|r| r.0)
    }
    /// For a status that carries no ErrorInfo (a dependency's own error, a transport failure).
    fn from_grpc_code(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidField,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists | Code::Aborted => Self::Conflict,
            Code::Unauthenticated | Code::PermissionDenied => Self::Unauthorized,
            Code::ResourceExhausted => Self::RateLimited,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable,
            _ => Self::Internal,
        }
    }
}

/// A public error: what went wrong, in words that say how to fix it, and which field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A validation error about one field; the message is prefixed with the field's path.
    pub fn field(field: impl Into<String>, message: impl AsRef<str>) -> Self {
        let field = field.into();
        Self {
            code: ErrorCode::InvalidField,
            message: format!("{field}: {}", message.as_ref()),
            field: Some(field),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// An unexpected failure: the details go to the log, never to the caller.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal error; it has been logged, please retry",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    pub fn to_status(&self) -> Status {
        let mut details = ErrorDetails::new();
        details.set_error_info(
            self.code.as_str(),
            ERROR_DOMAIN,
            std::collections::HashMap::<String, String>::new(),
        );
        if let Some(field) = &self.field {
            details.add_bad_request_violation(field.clone(), self.message.clone());
        }
        Status::with_error_details(self.code.grpc_code(), self.message.clone(), details)
    }

    /// Reads a status sent by another Meisa service (or by tonic itself) back into a public error.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let code = details
            .error_info()
            .filter(|i| i.domain == ERROR_DOMAIN)
            .and_then(|i| ErrorCode::parse(&i.reason))
            .unwrap_or_else(|| ErrorCode::from_grpc_code(status.code()));
        let field = details
            .bad_request()
            .and_then(|b| b.field_violations.first())
            .map(|v| v.field.clone())
            .filter(|f| !f.is_empty());
        let message = match code {
            ErrorCode::Internal => Self::internal().message,
            ErrorCode::Unavailable if status.message().is_empty() => {
                "a dependency is unavailable; retry shortly".into()
            }
            _ => status.message().to_string(),
        };
        Self {
            code,
            message,
            field,
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        e.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_a_status() {
        for (code, name, _, _) in TABLE {
            let e = ApiError {
                code: *code,
                message: format!("{name} happened"),
                field: Some("custom_fields.plan".into()),
            };
            let back = ApiError::from_status(&e.to_status());
            assert_eq!(back.code, *code);
            assert_eq!(back.field.as_deref(), Some("custom_fields.plan"));
            if *code != ErrorCode::Internal {
                assert_eq!(back.message, e.message);
            }
        }
    }

    #[test]
    fn plain_statuses_map_by_grpc_code_and_hide_internals() {
        let e = ApiError::from_status(&Status::unavailable("tcp connect error"));
        assert_eq!(e.code, ErrorCode::Unavailable);
        let e = ApiError::from_status(&Status::internal("SELECT * FROM secret"));
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.message.contains("SELECT"));
    }
}
