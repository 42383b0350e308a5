//! `/api/v1/sequences/…`: create, list, read, replace, delete, stats; and `/api/v1/enrollments/`.
//! The automations service owns sequences (DESIGN §3) and judges everything about them (shape,
//! durations, template references, `exit_when` against the workspace's fields); the body goes to
//! it as it came.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use meisa_proto::automations as pb;
use meisa_runtime::paging::MAX_PAGE;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    automation_model::{
        self, EnrollmentList, SequenceBody, SequenceList, SequenceStatsView, SequenceView,
    },
    body::{DEFINITION_LIMIT, JsonBody},
    docs::{BodyErrors, ById, Errors, Noun, PageErrors},
    json::{non_empty, views},
    paging::{self, CURSOR, PageQuery},
    resource::{self, Resource},
};
use crate::{
    auth::Workspace,
    clients::Service,
    error::{AppError, ErrorBody, FieldIs},
    state::AppState,
};

/// What one is called in errors and in the documentation.
impl Noun for SequenceView {
    const NOUN: &'static str = "sequence";
}

const SEQUENCES: Resource<pb::Sequence, SequenceView> = Resource {
    service: Service::Automations,
    path_id: &[("id", FieldIs::NotFound(SequenceView::NOUN))],
    to_view: SequenceView::try_from,
};

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
    let request = pb::CreateSequenceRequest {
        workspace_id: ws.id(),
        definition: body.to_string(),
    };
    SEQUENCES
        .created(state.automations().create_sequence(request), |r| r.sequence)
        .await
}

/// The workspace's sequences, newest first.
#[utoipa::path(
    get, path = "/api/v1/sequences/", tag = "sequences",
    security(("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = SequenceList),
        PageErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_sequences(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SequenceList>, AppError> {
    let request = pb::ListSequencesRequest {
        workspace_id: ws.id(),
        page: Some(paging::query(q)?.page()?),
    };
    let (sequences, next_cursor) = SEQUENCES
        .page(state.automations().list_sequences(request), |r| {
            (r.sequences, r.next_cursor)
        })
        .await?;
    Ok(Json(SequenceList {
        sequences,
        next_cursor,
    }))
}

/// One sequence; its `unseen_fields` are recomputed against the fields the workspace has now.
#[utoipa::path(
    get, path = "/api/v1/sequences/{id}", tag = "sequences",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The sequence id, seq_…")),
    responses(
        (status = 200, body = SequenceView),
        ById<SequenceView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn get_sequence(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<SequenceView>, AppError> {
    let request = pb::GetSequenceRequest {
        workspace_id: ws.id(),
        id,
    };
    SEQUENCES
        .found(state.automations().get_sequence(request), |r| r.sequence)
        .await
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
        (status = 422, body = ErrorBody, description = "as for create"),
        ById<SequenceView>,
        BodyErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn replace_sequence(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DEFINITION_LIMIT>,
) -> Result<Json<SequenceView>, AppError> {
    let request = pb::UpdateSequenceRequest {
        workspace_id: ws.id(),
        id,
        definition: body.to_string(),
    };
    SEQUENCES
        .found(state.automations().update_sequence(request), |r| r.sequence)
        .await
}

/// Deletes a sequence and ends its active enrollments (exit reason `sequence_deleted`). Refused
/// with 409 while an automation's enroll or exit action names it; the message says which.
#[utoipa::path(
    delete, path = "/api/v1/sequences/{id}", tag = "sequences",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The sequence id, seq_…")),
    responses(
        (status = 204, description = "deleted"),
        (status = 409, body = ErrorBody, description = "an automation uses it (named in the message, with the action's index)"),
        ById<SequenceView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn delete_sequence(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let request = pb::DeleteSequenceRequest {
        workspace_id: ws.id(),
        id,
    };
    SEQUENCES
        .deleted(state.automations().delete_sequence(request))
        .await
}

/// Counts of the sequence's enrollments and the emails its steps sent.
#[utoipa::path(
    get, path = "/api/v1/sequences/{id}/stats", tag = "sequences",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The sequence id, seq_…")),
    responses(
        (status = 200, body = SequenceStatsView),
        ById<SequenceView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn sequence_stats(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<SequenceStatsView>, AppError> {
    let request = pb::GetSequenceStatsRequest {
        workspace_id: ws.id(),
        id,
    };
    let answer = SEQUENCES
        .call(state.automations().get_sequence_stats(request))
        .await?;
    let stats = answer.stats.ok_or_else(|| SEQUENCES.missing("the stats"))?;
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
        (status = 422, body = ErrorBody, description = "a bad status, limit or cursor; `field` names it"),
        Errors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_enrollments(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<EnrollmentsQuery>, QueryRejection>,
) -> Result<Json<EnrollmentList>, AppError> {
    let q = paging::query(q)?;
    let status = automation_model::enrollment_status_filter(q.status.as_deref())?;
    let request = pb::ListEnrollmentsRequest {
        workspace_id: ws.id(),
        page: Some(paging::page(q.limit, q.cursor, MAX_PAGE)?),
        sequence_id: q.sequence_id.unwrap_or_default(),
        contact_id: q.contact_id.unwrap_or_default(),
        status: status as i32,
    };
    let resp = resource::answer(
        Service::Automations,
        CURSOR,
        state.automations().list_enrollments(request),
    )
    .await?;
    Ok(Json(EnrollmentList {
        enrollments: views(resp.enrollments)?,
        next_cursor: non_empty(resp.next_cursor),
    }))
}
