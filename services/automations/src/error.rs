//! The automations service's errors, mapped once to the public error table ([`ApiError`]) and
//! from there to a `tonic::Status` carrying ErrorInfo and BadRequest details.

use meisa_runtime::errors::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already public: validation, not found, conflict.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("contacts service: {0}")]
    Contacts(tonic::Status),
    #[error("mailer service: {0}")]
    Mailer(tonic::Status),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("change stream: {0}")]
    Stream(#[from] meisa_stream::StreamError),
    /// Something stored or received that cannot be read (a definition written by a newer version,
    /// a stream entry that is not a ContactChanged). Retrying does not help.
    #[error("unreadable data: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Failures a retry may resolve: a dependency that is down or overloaded, a lost connection,
    /// two transactions that raced. Workers retry these without counting them against an entry or
    /// a job.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Db(e) => meisa_runtime::db::is_retryable(e),
            Error::Contacts(s) | Error::Mailer(s) => status_transient(s),
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
            }
            Error::Stream(e) => e.is_transient(),
            Error::Api(_) | Error::Corrupt(_) => false,
        }
    }

    /// The public form. Unexpected failures are logged here, once, with their cause; the caller
    /// only learns that it may retry.
    pub fn to_api(&self) -> ApiError {
        match self {
            Error::Api(e) => e.clone(),
            Error::Db(e) if meisa_runtime::db::is_retryable(e) => {
                tracing::warn!(error = %self, "database unavailable");
                ApiError::unavailable("the automations database is unavailable; retry shortly")
            }
            Error::Contacts(s) if status_transient(s) => {
                tracing::warn!(error = %self, "contacts unavailable");
                ApiError::unavailable("the contacts service is unavailable; retry shortly")
            }
            Error::Mailer(s) if status_transient(s) => {
                tracing::warn!(error = %self, "mailer unavailable");
                ApiError::unavailable("the mailer service is unavailable; retry shortly")
            }
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::internal()
            }
        }
    }
}

pub fn status_transient(s: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        s.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Unknown
    )
}

/// A contact the contacts service answered that cannot be read.
impl From<crate::domain::event::ContactError> for Error {
    fn from(e: crate::domain::event::ContactError) -> Self {
        Error::Corrupt(e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.to_api().to_status()
    }
}
