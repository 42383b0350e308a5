//! `/api/v1/suppressions/…`: addresses that are never mailed (manual entries, hard bounces,
//! complaints). Per workspace; the mailer owns the list.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use meisa_proto::{common::PageRequest, mailer as pb};
use meisa_runtime::errors::ApiError;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    AppState,
    body::{JsonBody, UPSERT_LIMIT},
    contacts::{MAX_PAGE, parse_limit_up_to},
    mail_model::{self, SuppressionBody, SuppressionList, SuppressionView},
    templates::query,
};
use crate::{
    auth::Workspace,
    error::{AppError, ErrorBody, FieldIs},
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionsQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/suppressions/", tag = "suppressions",
    security(("api_key" = [])),
    params(SuppressionsQuery),
    responses(
        (status = 200, body = SuppressionList),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad limit or cursor"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_suppressions(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<SuppressionsQuery>, QueryRejection>,
) -> Result<Json<SuppressionList>, AppError> {
    let q = query(q)?;
    let limit = parse_limit_up_to(q.limit.as_deref(), MAX_PAGE)?;
    let resp = state
        .mailer
        .clone()
        .list_suppressions(pb::ListSuppressionsRequest {
            workspace_id: ws.id(),
            page: Some(PageRequest {
                limit,
                cursor: q.cursor.unwrap_or_default(),
            }),
        })
        .await
        .map_err(|s| AppError::mailer(s, &[("page.cursor", FieldIs::Named("cursor"))]))?
        .into_inner();
    Ok(Json(SuppressionList {
        suppressions: resp
            .suppressions
            .into_iter()
            .map(SuppressionView::from)
            .collect(),
        next_cursor: Some(resp.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// Puts an address on the suppression list: 201 with the entry, or 200 with the stored entry
/// when the address was already on it (its reason and detail are kept).
#[utoipa::path(
    post, path = "/api/v1/suppressions/", tag = "suppressions",
    security(("api_key" = [])),
    request_body(content = SuppressionBody, content_type = "application/json"),
    responses(
        (status = 201, body = SuppressionView, description = "added"),
        (status = 200, body = SuppressionView, description = "already on the list"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad address, reason or detail"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn add_suppression(
    State(state): State<AppState>,
    ws: Workspace,
    JsonBody(body): JsonBody<UPSERT_LIMIT>,
) -> Result<(StatusCode, Json<SuppressionView>), AppError> {
    let new = mail_model::suppression_body(body)?;
    let resp = state
        .mailer
        .clone()
        .add_suppression(pb::AddSuppressionRequest {
            workspace_id: ws.id(),
            email: new.email,
            reason: new.reason as i32,
            detail: new.detail,
        })
        .await
        .map_err(|s| AppError::mailer(s, &[]))?
        .into_inner();
    let status = if resp.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let suppression = resp
        .suppression
        .ok_or_else(|| AppError::Internal("the mailer answered without a suppression".into()))?;
    Ok((status, Json(suppression.into())))
}

/// Takes an address off the list (compared case-insensitively); it can be mailed again.
#[utoipa::path(
    delete, path = "/api/v1/suppressions/{email}", tag = "suppressions",
    security(("api_key" = [])),
    params(("email" = String, Path, description = "The address, URL-encoded")),
    responses(
        (status = 204, description = "removed"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "the address is not on the list"),
        (status = 422, body = ErrorBody, description = "not an email address"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn remove_suppression(
    State(state): State<AppState>,
    ws: Workspace,
    Path(email): Path<String>,
) -> Result<StatusCode, AppError> {
    state
        .mailer
        .clone()
        .remove_suppression(pb::RemoveSuppressionRequest {
            workspace_id: ws.id(),
            email,
        })
        .await
        .map_err(|s| {
            // The mailer's message repeats the address, and every rejection is logged: say it
            // without the address (the caller knows which one it sent).
            if s.code() == tonic::Code::NotFound {
                ApiError::not_found("this address is not on the suppression list").into()
            } else {
                AppError::mailer(s, &[])
            }
        })?;
    Ok(StatusCode::NO_CONTENT)
}
