//! The contacts service's errors, mapped once to `tonic::Status` at the gRPC edge.

use meisa_runtime::errors::ApiError;
use tonic::Status;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// A public error the caller can act on: validation, conflict, not found.
    #[error(transparent)]
    Rejected(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the service is shutting down")]
    ShuttingDown,
}

impl From<sqlx::Error> for ContactsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<ContactsError> for Status {
    fn from(e: ContactsError) -> Self {
        match e {
            ContactsError::Rejected(api) => api.to_status(),
            ContactsError::Store(e) => {
                log_store_failure(&e);
                store_failure(&e).to_status()
            }
            ContactsError::ShuttingDown => {
                ApiError::unavailable("the contacts service is restarting; retry shortly")
                    .to_status()
            }
        }
    }
}

/// What a caller is told when the store failed: retry later when the database is down, an
/// opaque internal error otherwise (the details are in the log, never in the answer).
pub fn store_failure(e: &StoreError) -> ApiError {
    match e {
        StoreError::Db(db) if meisa_runtime::db::is_unavailable(db) => {
            ApiError::unavailable("the contacts database is unavailable; retry shortly")
        }
        StoreError::Db(_) | StoreError::Corrupt(_) => ApiError::internal(),
    }
}

fn log_store_failure(e: &StoreError) {
    match e {
        StoreError::Db(db) if meisa_runtime::db::is_unavailable(db) => {
            tracing::warn!(error = %db, "database unavailable");
        }
        StoreError::Db(db) => tracing::error!(error = %db, "database error"),
        StoreError::Corrupt(c) => {
            tracing::error!(error = %c, "a stored value does not fit its type")
        }
    }
}
