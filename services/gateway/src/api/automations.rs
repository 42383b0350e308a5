//! `/api/v1/automations/…`: create, list, read, replace, delete, enable, disable, stats; and
//! `/api/v1/contacts/{id}/activity`, what automations did for one contact. The automations
//! service owns automations (DESIGN §3) and judges everything about them, their JSON shape
//! included; the body goes to it as it came.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use meisa_proto::{
    automations as pb,
    contacts::{GetContactRequest, get_contact_request::By},
};
use meisa_runtime::errors::ApiError;

use super::{
    automation_model::{
        ActivityList, AutomationBody, AutomationList, AutomationStatsView, AutomationView,
    },
    body::{DEFINITION_LIMIT, JsonBody},
    docs::{BodyErrors, ById, Noun, PageErrors},
    json::{non_empty, views},
    paging::{self, CURSOR, PageQuery},
    resource::Resource,
};
use crate::{
    auth::Workspace,
    clients::Service,
    error::{AppError, ErrorBody, FieldIs},
    state::AppState,
};

/// What one is called in errors and in the documentation.
impl Noun for AutomationView {
    const NOUN: &'static str = "automation";
}

const AUTOMATIONS: Resource<pb::Automation, AutomationView> = Resource {
    service: Service::Automations,
    path_id: &[("id", FieldIs::NotFound(AutomationView::NOUN))],
    to_view: AutomationView::try_from,
};

/// Creates an automation (201). Value errors name the DESIGN path: `conditions.all[0].value` for
/// a value that does not fit the field's known type, `actions[0].sequence_id` for a sequence this
/// workspace lacks, `trigger.to`, `reentry`. A custom field the workspace has not sent yet is
/// accepted and listed in `unseen_fields`.
#[utoipa::path(
    post, path = "/api/v1/automations/", tag = "automations",
    security(("api_key" = [])),
    request_body(content = AutomationBody, content_type = "application/json"),
    responses(
        (status = 201, body = AutomationView, description = "created"),
        (status = 400, body = ErrorBody, description = "malformed JSON"),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "body over 256 KiB"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "an unknown key, a wrong type, a condition or trigger value that does not fit, an unknown sequence or template; `field` is the path (e.g. conditions.all[0].value)"),
        (status = 503, body = ErrorBody, description = "automations (or a service it asks) is unavailable; see Retry-After"),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn create_automation(
    State(state): State<AppState>,
    ws: Workspace,
    JsonBody(body): JsonBody<DEFINITION_LIMIT>,
) -> Result<(StatusCode, Json<AutomationView>), AppError> {
    let request = pb::CreateAutomationRequest {
        workspace_id: ws.id(),
        definition: body.to_string(),
    };
    AUTOMATIONS
        .created(state.automations().create_automation(request), |r| {
            r.automation
        })
        .await
}

/// The workspace's automations, newest first.
#[utoipa::path(
    get, path = "/api/v1/automations/", tag = "automations",
    security(("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = AutomationList),
        PageErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_automations(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<AutomationList>, AppError> {
    let request = pb::ListAutomationsRequest {
        workspace_id: ws.id(),
        page: Some(paging::query(q)?.page()?),
    };
    let (automations, next_cursor) = AUTOMATIONS
        .page(state.automations().list_automations(request), |r| {
            (r.automations, r.next_cursor)
        })
        .await?;
    Ok(Json(AutomationList {
        automations,
        next_cursor,
    }))
}

/// One automation; its `unseen_fields` are recomputed against the fields the workspace has now.
#[utoipa::path(
    get, path = "/api/v1/automations/{id}", tag = "automations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The automation id, aut_…")),
    responses(
        (status = 200, body = AutomationView),
        ById<AutomationView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn get_automation(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<AutomationView>, AppError> {
    let request = pb::GetAutomationRequest {
        workspace_id: ws.id(),
        id,
    };
    AUTOMATIONS
        .found(state.automations().get_automation(request), |r| {
            r.automation
        })
        .await
}

/// Replaces every editable field; the body is the same as for creating one, so `enabled` left
/// out means false (use enable/disable to switch it alone).
#[utoipa::path(
    put, path = "/api/v1/automations/{id}", tag = "automations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The automation id, aut_…")),
    request_body(content = AutomationBody, content_type = "application/json"),
    responses(
        (status = 200, body = AutomationView),
        (status = 422, body = ErrorBody, description = "as for create"),
        ById<AutomationView>,
        BodyErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn replace_automation(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DEFINITION_LIMIT>,
) -> Result<Json<AutomationView>, AppError> {
    let request = pb::UpdateAutomationRequest {
        workspace_id: ws.id(),
        id,
        definition: body.to_string(),
    };
    AUTOMATIONS
        .found(state.automations().update_automation(request), |r| {
            r.automation
        })
        .await
}

/// Deletes an automation and cancels its pending actions; enrollments it created carry on.
#[utoipa::path(
    delete, path = "/api/v1/automations/{id}", tag = "automations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The automation id, aut_…")),
    responses(
        (status = 204, description = "deleted"),
        ById<AutomationView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn delete_automation(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let request = pb::DeleteAutomationRequest {
        workspace_id: ws.id(),
        id,
    };
    AUTOMATIONS
        .deleted(state.automations().delete_automation(request))
        .await
}

/// Turns the automation on (idempotent); answers the automation.
#[utoipa::path(
    post, path = "/api/v1/automations/{id}/enable", tag = "automations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The automation id, aut_…")),
    responses(
        (status = 200, body = AutomationView),
        ById<AutomationView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn enable_automation(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<AutomationView>, AppError> {
    let request = pb::EnableAutomationRequest {
        workspace_id: ws.id(),
        id,
    };
    AUTOMATIONS
        .found(state.automations().enable_automation(request), |r| {
            r.automation
        })
        .await
}

/// Turns the automation off (idempotent): it triggers nothing, and its queued actions that have
/// not started are cancelled; enrollments it created carry on. Answers the automation.
#[utoipa::path(
    post, path = "/api/v1/automations/{id}/disable", tag = "automations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The automation id, aut_…")),
    responses(
        (status = 200, body = AutomationView),
        ById<AutomationView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn disable_automation(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<AutomationView>, AppError> {
    let request = pb::DisableAutomationRequest {
        workspace_id: ws.id(),
        id,
    };
    AUTOMATIONS
        .found(state.automations().disable_automation(request), |r| {
            r.automation
        })
        .await
}

/// What the automation did: firings, enrollments and how they ended, emails, actions.
#[utoipa::path(
    get, path = "/api/v1/automations/{id}/stats", tag = "automations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The automation id, aut_…")),
    responses(
        (status = 200, body = AutomationStatsView),
        ById<AutomationView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn automation_stats(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<AutomationStatsView>, AppError> {
    let request = pb::GetAutomationStatsRequest {
        workspace_id: ws.id(),
        id,
    };
    let answer = AUTOMATIONS
        .call(state.automations().get_automation_stats(request))
        .await?;
    let stats = answer
        .stats
        .ok_or_else(|| AUTOMATIONS.missing("the stats"))?;
    Ok(Json(stats.into()))
}

/// What automations did for one contact, newest first: triggers fired, actions done or failed,
/// enrollments, sequence steps, completions and exits.
#[utoipa::path(
    get, path = "/api/v1/contacts/{id}/activity", tag = "automations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The contact id, ct_…"), PageQuery),
    responses(
        (status = 200, body = ActivityList),
        (status = 404, body = ErrorBody, description = "no such contact in this workspace (or it was erased)"),
        PageErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn contact_activity(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<ActivityList>, AppError> {
    let page = paging::query(q)?.page()?;
    // Automations keeps activity by contact id and knows nothing of workspaces' contacts, so
    // an unknown id would be an empty list; contacts says whether the contact is this
    // workspace's, for the 404 every other id gets. Both are asked at once.
    let mut contacts = state.contacts();
    let mut automations = state.automations();
    let (found, activity) = tokio::join!(
        contacts.get_contact(GetContactRequest {
            workspace_id: ws.id(),
            by: Some(By::Id(id.clone())),
        }),
        automations.list_contact_activity(pb::ListContactActivityRequest {
            workspace_id: ws.id(),
            contact_id: id,
            page: Some(page),
        }),
    );
    match found {
        Ok(resp) if resp.get_ref().contact.is_some() => {}
        Ok(_) => return Err(ApiError::not_found("contact not found").into()),
        // Not found (or a malformed id) answers as GET /api/v1/contacts/{id} does.
        Err(s) => return Err(AppError::contacts(s)),
    }
    let resp = activity
        .map_err(|s| AppError::automations(s).renaming(CURSOR))?
        .into_inner();
    Ok(Json(ActivityList {
        activities: views(resp.activities)?,
        next_cursor: non_empty(resp.next_cursor),
    }))
}
