//! `/api/v1/fields/`: the custom fields a workspace has sent. Contacts keeps them.

use axum::{Json, extract::State};
use meisa_proto::contacts::ListFieldsRequest;

use super::{json::views, model::FieldList};
use crate::{
    auth::Workspace,
    error::{AppError, ErrorBody},
    state::AppState,
};

/// Every custom field the workspace has sent, with the type its first value fixed.
#[utoipa::path(
    get, path = "/api/v1/fields/", tag = "fields",
    security(("api_key" = [])),
    responses(
        (status = 200, body = FieldList),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "contacts is unavailable; see Retry-After"),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_fields(
    State(state): State<AppState>,
    ws: Workspace,
) -> Result<Json<FieldList>, AppError> {
    let resp = state
        .contacts()
        .list_fields(ListFieldsRequest {
            workspace_id: ws.id(),
        })
        .await
        .map_err(AppError::contacts)?
        .into_inner();
    Ok(Json(FieldList {
        fields: views(resp.fields)?,
    }))
}
