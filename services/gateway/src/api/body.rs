//! The JSON body extractor of every write endpoint. It is written by hand, instead of axum's
//! `Json`, so that each failure is the documented status and error body (415, 413, 400) and
//! axum's plain-text rejections never reach a caller.

use axum::{
    extract::{FromRequest, Request},
    http::{HeaderMap, header},
};
use futures::StreamExt;
use meisa_runtime::errors::{ApiError, ErrorCode};
use serde_json::Value;

use crate::error::AppError;

/// DESIGN §2: an upsert body is at most 256 KiB.
pub const UPSERT_LIMIT: usize = 256 * 1024;
/// A batch carries up to 1,000 upsert bodies; typical ones are well under 1 KiB each, and each
/// item is still held to [`UPSERT_LIMIT`] on its own.
pub const BATCH_LIMIT: usize = 16 * 1024 * 1024;
/// A sequence or automation: 100 steps or 50 actions with their conditions fit many times over.
pub const DEFINITION_LIMIT: usize = 256 * 1024;

/// A parsed JSON body of at most `LIMIT` bytes.
pub struct JsonBody<const LIMIT: usize>(pub Value);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for JsonBody<LIMIT> {
    type Rejection = AppError;

    async fn from_request(req: Request, _: &S) -> Result<Self, AppError> {
        check_content_type(req.headers())?;
        if declared_length(req.headers()).is_some_and(|len| len > LIMIT) {
            return Err(too_large(LIMIT).into());
        }
        let mut body = Vec::new();
        let mut stream = req.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::new(ErrorCode::InvalidJson, "the request body could not be read")
            })?;
            if body.len() + chunk.len() > LIMIT {
                return Err(too_large(LIMIT).into());
            }
            body.extend_from_slice(&chunk);
        }
        parse(&body).map(Self).map_err(AppError::Api)
    }
}

pub fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON: {e}")))
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than the limit of {} KiB", limit / 1024),
    )
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `application/json`, with or without parameters (`; charset=utf-8`), any letter case.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with the header `Content-Type: application/json`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn content_type_must_be_json() {
        assert!(check_content_type(&ct("application/json")).is_ok());
        assert!(check_content_type(&ct("Application/JSON; charset=utf-8")).is_ok());
        assert!(check_content_type(&ct("text/plain")).is_err());
        assert!(check_content_type(&ct("application/x-www-form-urlencoded")).is_err());
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn malformed_json_says_where() {
        let e = parse(b"{\"email\": ").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        assert!(e.message.contains("line 1"), "{}", e.message);
    }
}
