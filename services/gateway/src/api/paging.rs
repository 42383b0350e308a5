//! The query string of every list: `limit` (1 to a maximum, default
//! [`meisa_runtime::paging::DEFAULT_PAGE`]) and `cursor` (the previous page's `next_cursor`), and
//! the one malformed-query error.

use axum::extract::{Query, rejection::QueryRejection};
use meisa_proto::common::PageRequest;
use meisa_runtime::{
    errors::{ApiError, ErrorCode},
    paging::{DEFAULT_PAGE, MAX_PAGE},
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::FieldIs;

/// The services name the cursor `page.cursor`; the caller sent it as `cursor`.
pub const CURSOR: &[(&str, FieldIs<'static>)] = &[("page.cursor", FieldIs::Named("cursor"))];

/// The query of a list without filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(self) -> Result<PageRequest, ApiError> {
        page(self.limit, self.cursor, MAX_PAGE)
    }
}

/// The page a list asks for, its limit at most `max` (what fits one gRPC answer).
pub fn page(
    limit: Option<String>,
    cursor: Option<String>,
    max: u32,
) -> Result<PageRequest, ApiError> {
    Ok(PageRequest {
        limit: parse_limit(limit.as_deref(), max)?,
        cursor: cursor.unwrap_or_default(),
    })
}

/// `limit` of a list: 1 to `max`, [`DEFAULT_PAGE`] when absent.
pub fn parse_limit(limit: Option<&str>, max: u32) -> Result<u32, ApiError> {
    let Some(raw) = limit else {
        return Ok(DEFAULT_PAGE.min(max));
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::field(
            "limit",
            format!("must be a whole number from 1 to {max}, got {raw:?}"),
        )),
    }
}

/// The query string, or a 422 saying what is wrong with it (axum's own rejection is plain text).
pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidField,
            format!("bad query string: {}", e.body_text()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(None, MAX_PAGE).unwrap(), DEFAULT_PAGE);
        assert_eq!(parse_limit(Some("10"), MAX_PAGE).unwrap(), 10);
        assert!(parse_limit(Some("0"), MAX_PAGE).is_err());
        assert!(parse_limit(Some("501"), MAX_PAGE).is_err());
        assert_eq!(
            parse_limit(Some("abc"), MAX_PAGE)
                .unwrap_err()
                .field
                .as_deref(),
            Some("limit")
        );
    }
}
