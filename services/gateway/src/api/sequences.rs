//! `/api/v1/sequences/…`: create, list, read, replace, delete, stats; and `/api/v1/enrollments/`.
//! The automations service owns sequences (DESIGN §3) and judges everything about them (shape,
//! durations, template references, `exit_when` against the workspace's fields); the body goes to
//! it as it came.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use meisa_proto::{automations as pb, common::PageRequest};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    AppState,
    automation_model::{
        self, EnrollmentList, EnrollmentView, SequenceBody, SequenceList, SequenceStatsView,
        SequenceView,
    },
    body::JsonBody,
    contacts::{MAX_PAGE, parse_limit_up_to},
    templates::query,
};
use crate::{
    auth::Workspace,
    error::{AppError, ErrorBody, FieldIs},
};

/// A definition body: 100 steps or 50 actions with their conditions fit many times over.
pub const DEFINITION_LIMIT: usize = 256 * 1024;

pub(crate) const CURSOR: &[(&str, FieldIs<'static>)] = &[("page.cursor", FieldIs::Named("cursor"))];
const PATH_ID: &[(&str, FieldIs<'static>)] = &[("id", FieldIs::NotFound("sequence"))];

fn view(sequence: Option<pb::Sequence>) -> Result<SequenceView, AppError> {
    sequence
        .ok_or_else(|| "automations answered without a sequence".to_string())
        .and_then(SequenceView::try_from)
        .map_err(AppError::Internal)
}

/// Creates a sequence. Value errors name the DESIGN path: `steps[1].duration` for a duration that
/// is not an integer and a unit, `steps[0].template_id` for a template this workspace lacks,
/// `exit_when.all[0].value` for a value that does not fit the field's type.
#[utoipa::path(
    post, path = "/api/v1/sequences/", tag = "sequences",
    security(("api_key" = [])),
    request_body(content = SequenceBody, content_type = "application/json"),
    responses(
        (status = 201, body = SequenceView, description = "created"),
        (status = 400, body = ErrorBody, description = "malformed JSON"),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "body over 256 KiB"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "an unknown key, a wrong type, a bad duration, an unknown template, or a condition that does not fit; `field` is the path (e.g. steps[1].duration)"),
        (status = 503, body = ErrorBody, description = "automations (or a service it asks) is unavailable; see Retry-After"),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn create_sequence(
    State(state): State<AppState>,
    ws: Workspace,
    JsonBody(body): JsonBody<DEFINITION_LIMIT>,
) -> Result<(StatusCode, Json<SequenceView>), AppError> {
    let sequence = state
        .automations
        .clone()
        .create_sequence(pb::CreateSequenceRequest {
            workspace_id: ws.id(),
            definition: body.to_string(),
        })
        .await
        .map_err(|s| AppError::automations(s, &[]))?
        .into_inner()
        .sequence;
    Ok((StatusCode::CREATED, Json(view(sequence)?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    pub fn page(self) -> Result<PageRequest, AppError> {
        Ok(PageRequest {
            limit: parse_limit_up_to(self.limit.as_deref(), MAX_PAGE)?,
            cursor: self.cursor.unwrap_or_default(),
        })
    }
}

/// The workspace's sequences, newest first.
#[utoipa::path(
    get, path = "/api/v1/sequences/", tag = "sequences",
    security(("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = SequenceList),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad limit or cursor"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_sequences(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SequenceList>, AppError> {
    let page = query(q)?.page()?;
    let resp = state
        .automations
        .clone()
        .list_sequences(pb::ListSequencesRequest {
            workspace_id: ws.id(),
            page: Some(page),
        })
        .await
        .map_err(|s| AppError::automations(s, CURSOR))?
        .into_inner();
    let sequences = resp
        .sequences
        .into_iter()
        .map(SequenceView::try_from)
        .collect::<Result<_, _>>()
        .map_err(AppError::Internal)?;
    Ok(Json(SequenceList {
        sequences,
        next_cursor: Some(resp.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// One sequence; its `unseen_fields` are recomputed against the fields the workspace has now.
#[utoipa::path(
    get, path = "/api/v1/sequences/{id}", tag = "sequences",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The sequence id, seq_…")),
    responses(
        (status = 200, body = SequenceView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such sequence in this workspace"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn get_sequence(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<SequenceView>, AppError> {
    let sequence = state
        .automations
        .clone()
        .get_sequence(pb::GetSequenceRequest {
            workspace_id: ws.id(),
            id,
        })
        .await
        .map_err(|s| AppError::automations(s, PATH_ID))?
        .into_inner()
        .sequence;
    Ok(Json(view(sequence)?))
}

/// Replaces name, steps and exit_when (the body is the same as for creating one). Active
/// enrollments keep their step index and continue with the new steps; an index past the end
/// completes the enrollment.
#[utoipa::path(
    put, path = "/api/v1/sequences/{id}", tag = "sequences",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The sequence id, seq_…")),
    request_body(content = SequenceBody, content_type = "application/json"),
    responses(
        (status = 200, body = SequenceView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such sequence in this workspace"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "as for create"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn replace_sequence(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DEFINITION_LIMIT>,
) -> Result<Json<SequenceView>, AppError> {
    let sequence = state
        .automations
        .clone()
        .update_sequence(pb::UpdateSequenceRequest {
            workspace_id: ws.id(),
            id,
            definition: body.to_string(),
        })
        .await
        .map_err(|s| AppError::automations(s, PATH_ID))?
        .into_inner()
        .sequence;
    Ok(Json(view(sequence)?))
}

/// Deletes a sequence and ends its active enrollments (exit reason `sequence_deleted`). Refused
/// with 409 while an automation's enroll or exit action names it; the message says which.
#[utoipa::path(
    delete, path = "/api/v1/sequences/{id}", tag = "sequences",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The sequence id, seq_…")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such sequence in this workspace"),
        (status = 409, body = ErrorBody, description = "an automation uses it (named in the message, with the action's index)"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn delete_sequence(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state
        .automations
        .clone()
        .delete_sequence(pb::DeleteSequenceRequest {
            workspace_id: ws.id(),
            id,
        })
        .await
        .map_err(|s| AppError::automations(s, PATH_ID))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts of the sequence's enrollments and the emails its steps sent.
#[utoipa::path(
    get, path = "/api/v1/sequences/{id}/stats", tag = "sequences",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The sequence id, seq_…")),
    responses(
        (status = 200, body = SequenceStatsView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such sequence in this workspace"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn sequence_stats(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<SequenceStatsView>, AppError> {
    let stats = state
        .automations
        .clone()
        .get_sequence_stats(pb::GetSequenceStatsRequest {
            workspace_id: ws.id(),
            id,
        })
        .await
        .map_err(|s| AppError::automations(s, PATH_ID))?
        .into_inner()
        .stats
        .unwrap_or_default();
    Ok(Json(stats.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentsQuery {
    /// Only enrollments in this sequence (`seq_…`).
    sequence_id: Option<String>,
    /// Only enrollments of this contact (`ct_…`).
    contact_id: Option<String>,
    /// active, completed or exited.
    status: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Enrollments, newest first; the filters combine (all must hold). An id of another workspace,
/// or of nothing, matches nothing (an empty page, not a 404: this is a search).
#[utoipa::path(
    get, path = "/api/v1/enrollments/", tag = "sequences",
    security(("api_key" = [])),
    params(EnrollmentsQuery),
    responses(
        (status = 200, body = EnrollmentList),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad status, limit or cursor; `field` names it"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_enrollments(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<EnrollmentsQuery>, QueryRejection>,
) -> Result<Json<EnrollmentList>, AppError> {
    let q = query(q)?;
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(automation_model::parse_enrollment_status)
        .transpose()?
        .unwrap_or(pb::EnrollmentStatus::Unspecified);
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    let resp = state
        .automations
        .clone()
        .list_enrollments(pb::ListEnrollmentsRequest {
            workspace_id: ws.id(),
            page: Some(page),
            sequence_id: q.sequence_id.unwrap_or_default(),
            contact_id: q.contact_id.unwrap_or_default(),
            status: status as i32,
        })
        .await
        .map_err(|s| AppError::automations(s, CURSOR))?
        .into_inner();
    Ok(Json(EnrollmentList {
        enrollments: resp
            .enrollments
            .into_iter()
            .map(EnrollmentView::from)
            .collect(),
        next_cursor: Some(resp.next_cursor).filter(|c| !c.is_empty()),
    }))
}
