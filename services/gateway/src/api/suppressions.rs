//! `/api/v1/suppressions/…`: addresses that are never mailed (manual entries, hard bounces,
//! complaints). Per workspace; the mailer owns the list.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use meisa_proto::mailer as pb;
use meisa_runtime::errors::ApiError;

use super::{
    body::{JsonBody, UPSERT_LIMIT},
    docs::{BodyErrors, Errors, Noun, PageErrors},
    mail_model::{self, SuppressionBody, SuppressionList, SuppressionView},
    paging::{self, PageQuery},
    resource::Resource,
};
use crate::{
    auth::Workspace,
    clients::Service,
    error::{AppError, ErrorBody},
    state::AppState,
};

/// What one is called in errors.
impl Noun for SuppressionView {
    const NOUN: &'static str = "suppression";
}

/// The path names an address, not an id; a removal says "not on the list" itself (see
/// [`remove_suppression`]).
const SUPPRESSIONS: Resource<pb::Suppression, SuppressionView> = Resource {
    service: Service::Mailer,
    path_id: &[],
    to_view: SuppressionView::try_from,
};

#[utoipa::path(
    get, path = "/api/v1/suppressions/", tag = "suppressions",
    security(("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = SuppressionList),
        PageErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_suppressions(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SuppressionList>, AppError> {
    let request = pb::ListSuppressionsRequest {
        workspace_id: ws.id(),
        page: Some(paging::query(q)?.page()?),
    };
    let (suppressions, next_cursor) = SUPPRESSIONS
        .page(state.mailer().list_suppressions(request), |r| {
            (r.suppressions, r.next_cursor)
        })
        .await?;
    Ok(Json(SuppressionList {
        suppressions,
        next_cursor,
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
        (status = 422, body = ErrorBody, description = "a bad address, reason or detail"),
        Errors,
        BodyErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn add_suppression(
    State(state): State<AppState>,
    ws: Workspace,
    JsonBody(body): JsonBody<UPSERT_LIMIT>,
) -> Result<(StatusCode, Json<SuppressionView>), AppError> {
    let new = mail_model::suppression_body(body)?;
    let request = pb::AddSuppressionRequest {
        workspace_id: ws.id(),
        email: new.email,
        reason: new.reason as i32,
        detail: new.detail,
    };
    let resp = SUPPRESSIONS
        .call(state.mailer().add_suppression(request))
        .await?;
    let status = if resp.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let suppression = SUPPRESSIONS.view(SUPPRESSIONS.item(resp.suppression)?)?;
    Ok((status, Json(suppression)))
}

/// Takes an address off the list (compared case-insensitively); it can be mailed again.
#[utoipa::path(
    delete, path = "/api/v1/suppressions/{email}", tag = "suppressions",
    security(("api_key" = [])),
    params(("email" = String, Path, description = "The address, URL-encoded")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, body = ErrorBody, description = "the address is not on the list"),
        (status = 422, body = ErrorBody, description = "not an email address"),
        Errors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn remove_suppression(
    State(state): State<AppState>,
    ws: Workspace,
    Path(email): Path<String>,
) -> Result<StatusCode, AppError> {
    let request = pb::RemoveSuppressionRequest {
        workspace_id: ws.id(),
        email,
    };
    match SUPPRESSIONS
        .deleted(state.mailer().remove_suppression(request))
        .await
    {
        // The mailer's message repeats the address, and every rejection is logged: say it
        // without the address (the caller knows which one it sent).
        Err(AppError::Service { status, .. }) if status.code() == tonic::Code::NotFound => {
            Err(ApiError::not_found("this address is not on the suppression list").into())
        }
        answer => answer,
    }
}
