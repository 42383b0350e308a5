//! The one error this crate returns: where in the JSON, and how to fix it.

/// A condition that cannot be saved. `path` points into the submitted JSON exactly as the
/// gateway reports it in `error.field` (`conditions.all[1].value`); `message` says what to write
/// instead. Both parse and validation errors use it, so the API maps one type to a 422.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConditionError {
    pub path: String,
    pub message: String,
}

impl ConditionError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}
