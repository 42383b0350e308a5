//! The contacts service's errors, mapped once to `tonic::Status` at the gRPC edge.

use meisa_runtime::errors::ApiError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// A public error the caller can act on: validation, conflict, not found.
    #[error(transparent)]
    Rejected(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the service is shutting down")]
    ShuttingDown,
}

impl From<ContactsError> for Status {
    fn from(e: ContactsError) -> Self {
        match e {
            ContactsError::Rejected(api) => api.to_status(),
            ContactsError::Db(db) => {
                if meisa_runtime::db::is_unavailable(&db) {
                    tracing::warn!(error = %db, "database unavailable");
                    ApiError::unavailable("the contacts database is unavailable; retry shortly")
                        .to_status()
                } else {
                    tracing::error!(error = %db, "database error");
                    ApiError::internal().to_status()
                }
            }
            ContactsError::ShuttingDown => {
                ApiError::unavailable("the contacts service is restarting; retry shortly")
                    .to_status()
            }
        }
    }
}

/// Postgres errors a retry resolves: two transactions raced for the same rows.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("40001") | Some("40P01") | Some("23505")
        ),
        _ => false,
    }
}
