//! The mailer's errors, mapped once to the public error table (`ApiError`), which turns them into
//! a `tonic::Status` with ErrorInfo and BadRequest details.

use meisa_runtime::{db::Corrupt, errors::ApiError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already public: validation, not found, conflict.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("contacts service: {0}")]
    Contacts(tonic::Status),
    #[error("render task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A value read back from storage that does not fit its type (a corrupt row, or code older
    /// than the data): no retry fixes it, so it is reported, never replaced by a default.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    #[error("cannot delete {}: {source}", path.display())]
    Eml {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stored word (a status, a reason) as the type it spells, or [`Error::Corrupt`] naming it.
pub fn stored_word<T>(what: &str, value: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    Ok(meisa_runtime::db::stored_word(what, value, parse)?)
}

/// A stored number in the type the code uses, or [`Error::Corrupt`] naming it.
pub fn stored<T, U>(what: &str, value: T) -> Result<U>
where
    T: Copy + std::fmt::Display,
    U: TryFrom<T>,
{
    Ok(meisa_runtime::db::stored(what, value)?)
}

impl Error {
    /// The public form. Unexpected failures are logged here, once, with their cause; the caller
    /// only learns that it may retry.
    pub fn to_api(&self) -> ApiError {
        match self {
            Error::Api(e) => e.clone(),
            Error::Db(e) if meisa_runtime::db::is_unavailable(e) => {
                tracing::warn!(error = %self, "database unavailable");
                ApiError::unavailable("the mailer's database is unavailable; retry shortly")
            }
            Error::Contacts(status) => {
                let e = ApiError::from_status(status);
                tracing::warn!(error = %self, "contacts call failed");
                e
            }
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::internal()
            }
        }
    }
}

impl Error {
    /// Worth retrying in place: the database or the contacts service is down or busy, or a
    /// transaction lost a deadlock or serialization race. Everything else fails the same way
    /// again. Every contacts failure counts: a gap is never given up on while contacts might
    /// still answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Db(e) => meisa_runtime::db::is_retryable(e),
            Error::Contacts(_) => true,
            _ => false,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.to_api().to_status()
    }
}
