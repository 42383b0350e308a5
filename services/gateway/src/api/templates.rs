//! `/api/v1/templates/…`: create, list, read, replace (PUT), merge (PATCH), delete, preview and
//! test-send. The mailer owns templates (DESIGN §5) and judges them (Liquid syntax with line and
//! column, addresses, sizes); the gateway checks the JSON shape and passes the workspace.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use meisa_proto::{
    common,
    contacts::{GetContactRequest, get_contact_request::By},
    mailer::{
        self as pb, preview_template_request::Data, preview_template_request::Template as Which,
    },
};
use meisa_runtime::errors::{ApiError, ErrorCode};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    body::{JsonBody, UPSERT_LIMIT},
    docs::{BodyErrors, ById, Errors, Noun, PageErrors},
    mail_model::{
        self, DataSource, MessageView, PreviewBody, PreviewView, TEST_CONTACT_PREFIX,
        TEST_SEND_KEY_PREFIX, TemplateBody, TemplateList, TemplatePatchBody, TemplateView,
        TestSendBody,
    },
    paging,
    resource::{self, Resource},
};
use crate::{
    auth::Workspace,
    clients::Service,
    error::{AppError, BadAnswer, ErrorBody, FieldIs},
    state::AppState,
};

/// A template's sources are at most 2 KiB + 256 KiB + 128 KiB (the mailer's bounds); JSON
/// escaping of quotes and new lines can double HTML, so the body limit leaves room for that.
pub const TEMPLATE_LIMIT: usize = 1024 * 1024;
/// A page of templates carries their sources; 100 of the largest still fit one gRPC message.
pub const MAX_TEMPLATE_PAGE: u32 = 100;

/// What one is called in errors and in the documentation.
impl Noun for TemplateView {
    const NOUN: &'static str = "template";
}

const TEMPLATES: Resource<pb::Template, TemplateView> = Resource {
    service: Service::Mailer,
    path_id: &[
        ("id", FieldIs::NotFound(TemplateView::NOUN)),
        ("template_id", FieldIs::NotFound(TemplateView::NOUN)),
    ],
    to_view: TemplateView::try_from,
};

/// Creates a template. Every part must parse: a Liquid error is a 422 whose `field` is the part
/// (`subject`, `html` or `text`) and whose message gives the line and column.
#[utoipa::path(
    post, path = "/api/v1/templates/", tag = "templates",
    security(("api_key" = [])),
    request_body(content = TemplateBody, content_type = "application/json"),
    responses(
        (status = 201, body = TemplateView, description = "created"),
        (status = 400, body = ErrorBody, description = "malformed JSON"),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "body over 1 MiB"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "an unknown key, a wrong type, a bad address, or a part that does not parse (line and column in the message)"),
        (status = 503, body = ErrorBody, description = "the mailer is unavailable; see Retry-After"),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn create_template(
    State(state): State<AppState>,
    ws: Workspace,
    JsonBody(body): JsonBody<TEMPLATE_LIMIT>,
) -> Result<(StatusCode, Json<TemplateView>), AppError> {
    let request = pb::CreateTemplateRequest {
        workspace_id: ws.id(),
        template: Some(mail_model::template_input(body)?),
    };
    TEMPLATES
        .created(state.mailer().create_template(request), |r| r.template)
        .await
}

/// A list of templates has its own bound on `limit` (see [`MAX_TEMPLATE_PAGE`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplatePageQuery {
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The workspace's templates, newest first.
#[utoipa::path(
    get, path = "/api/v1/templates/", tag = "templates",
    security(("api_key" = [])),
    params(TemplatePageQuery),
    responses(
        (status = 200, body = TemplateList),
        PageErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_templates(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<TemplatePageQuery>, QueryRejection>,
) -> Result<Json<TemplateList>, AppError> {
    let q = paging::query(q)?;
    let request = pb::ListTemplatesRequest {
        workspace_id: ws.id(),
        page: Some(paging::page(q.limit, q.cursor, MAX_TEMPLATE_PAGE)?),
    };
    let (templates, next_cursor) = TEMPLATES
        .page(state.mailer().list_templates(request), |r| {
            (r.templates, r.next_cursor)
        })
        .await?;
    Ok(Json(TemplateList {
        templates,
        next_cursor,
    }))
}

/// The stored template, as the mailer has it.
async fn fetch(state: &AppState, ws: &Workspace, id: String) -> Result<pb::Template, AppError> {
    let request = pb::GetTemplateRequest {
        workspace_id: ws.id(),
        id,
    };
    let answer = TEMPLATES.call(state.mailer().get_template(request)).await?;
    Ok(TEMPLATES.item(answer.template)?)
}

#[utoipa::path(
    get, path = "/api/v1/templates/{id}", tag = "templates",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The template id, tpl_…")),
    responses(
        (status = 200, body = TemplateView),
        ById<TemplateView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn get_template(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<TemplateView>, AppError> {
    Ok(Json(TEMPLATES.view(fetch(&state, &ws, id).await?)?))
}

async fn update(
    state: &AppState,
    ws: &Workspace,
    id: String,
    input: pb::TemplateInput,
) -> Result<Json<TemplateView>, AppError> {
    let request = pb::UpdateTemplateRequest {
        workspace_id: ws.id(),
        id,
        template: Some(input),
    };
    TEMPLATES
        .found(state.mailer().update_template(request), |r| r.template)
        .await
}

/// Replaces the whole template: the body is the same as for creating one.
#[utoipa::path(
    put, path = "/api/v1/templates/{id}", tag = "templates",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The template id, tpl_…")),
    request_body(content = TemplateBody, content_type = "application/json"),
    responses(
        (status = 200, body = TemplateView),
        (status = 422, body = ErrorBody, description = "as for create"),
        ById<TemplateView>,
        BodyErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn replace_template(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TEMPLATE_LIMIT>,
) -> Result<Json<TemplateView>, AppError> {
    let input = mail_model::template_input(body)?;
    update(&state, &ws, id, input).await
}

/// Changes the keys sent and keeps the others (`null` clears `text` or `reply_to`). The template
/// is read, merged and written back whole; of two concurrent PATCHes the later write wins.
#[utoipa::path(
    patch, path = "/api/v1/templates/{id}", tag = "templates",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The template id, tpl_…")),
    request_body(content = TemplatePatchBody, content_type = "application/json"),
    responses(
        (status = 200, body = TemplateView),
        (status = 422, body = ErrorBody, description = "as for create"),
        ById<TemplateView>,
        BodyErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn patch_template(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TEMPLATE_LIMIT>,
) -> Result<Json<TemplateView>, AppError> {
    // Read first: a missing template is a 404 whatever the body says, and the merge needs the
    // stored values (UpdateTemplate replaces every field).
    let current = fetch(&state, &ws, id.clone()).await?;
    match mail_model::merge_template(&current, body)? {
        Some(input) => update(&state, &ws, id, input).await,
        None => Ok(Json(TEMPLATES.view(current)?)),
    }
}

#[utoipa::path(
    delete, path = "/api/v1/templates/{id}", tag = "templates",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The template id, tpl_…")),
    responses(
        (status = 204, description = "deleted"),
        ById<TemplateView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn delete_template(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let request = pb::DeleteTemplateRequest {
        workspace_id: ws.id(),
        id,
    };
    TEMPLATES
        .deleted(state.mailer().delete_template(request))
        .await
}

/// The contact a preview or test send renders with, read from contacts here (the gateway already
/// talks to it), so another workspace's contact is a 404 naming `contact_id`.
async fn contact(
    state: &AppState,
    ws: &Workspace,
    id: String,
) -> Result<common::Contact, AppError> {
    let found = state
        .contacts()
        .get_contact(GetContactRequest {
            workspace_id: ws.id(),
            by: Some(By::Id(id.clone())),
        })
        .await;
    let not_found = || {
        AppError::Api(ApiError {
            code: ErrorCode::NotFound,
            message: format!("contact_id: no contact {id} in this workspace"),
            field: Some("contact_id".into()),
        })
    };
    match found {
        Ok(resp) => resp.into_inner().contact.ok_or_else(not_found),
        Err(s) if s.code() == tonic::Code::NotFound => Err(not_found()),
        Err(s) => Err(AppError::contacts(s)),
    }
}

async fn render(
    state: &AppState,
    ws: &Workspace,
    template_id: String,
    data: Data,
) -> Result<PreviewView, AppError> {
    let request = pb::PreviewTemplateRequest {
        workspace_id: ws.id(),
        template: Some(Which::TemplateId(template_id)),
        data: Some(data),
    };
    let resp = TEMPLATES
        .call(state.mailer().preview_template(request))
        .await?;
    match resp.error {
        Some(e) => Err(mail_model::render_error(e).into()),
        None => Ok(PreviewView {
            subject: resp.subject,
            html: resp.html,
            text: resp.text,
        }),
    }
}

/// Renders the stored template against a contact (`contact_id`) or sample fields (`sample`).
/// A variable used without a `default` that the data lacks is a 422 naming the variable (a real
/// send would be `skipped`). The unsubscribe link is a placeholder.
#[utoipa::path(
    post, path = "/api/v1/templates/{id}/preview", tag = "templates",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The template id, tpl_…")),
    request_body(content = PreviewBody, content_type = "application/json"),
    responses(
        (status = 200, body = PreviewView, description = "the rendered subject, HTML and text"),
        (status = 404, body = ErrorBody, description = "no such template, or (`field`: contact_id) no such contact"),
        (status = 422, body = ErrorBody, description = "a bad body, or the template does not render with this data (`field` is the part; the message names the variable)"),
        Errors,
        BodyErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn preview(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UPSERT_LIMIT>,
) -> Result<Json<PreviewView>, AppError> {
    let data = match mail_model::preview_body(body)? {
        DataSource::ContactId(contact_id) => Data::Contact(contact(&state, &ws, contact_id).await?),
        DataSource::Sample(sample) => Data::Sample(sample.into_proto()),
        DataSource::Nothing => Data::Sample(pb::SampleFields::default()),
    };
    Ok(Json(render(&state, &ws, id, data).await?))
}

/// Sends one real email of the template to `to`, rendered with a contact's data (`contact_id`),
/// sample fields, or none. It goes through the normal queue (so it carries the unsubscribe
/// headers), to a stand-in recipient `test_…`: it never appears in a real contact's history and
/// its unsubscribe link unsubscribes no real contact. The suppression list still applies to `to`.
/// A template that does not render with the data is a 422 and nothing is sent.
#[utoipa::path(
    post, path = "/api/v1/templates/{id}/test-send", tag = "templates",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The template id, tpl_…")),
    request_body(content = TestSendBody, content_type = "application/json"),
    responses(
        (status = 202, body = MessageView, description = "queued (or `suppressed` when `to` is on the suppression list); follow it with GET /api/v1/messages/{id}"),
        (status = 404, body = ErrorBody, description = "no such template, or (`field`: contact_id) no such contact"),
        (status = 422, body = ErrorBody, description = "a bad body or address, or the template does not render with this data"),
        Errors,
        BodyErrors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn test_send(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UPSERT_LIMIT>,
) -> Result<(StatusCode, Json<MessageView>), AppError> {
    let request = mail_model::test_send_body(body)?;
    let snapshot = match request.data {
        DataSource::ContactId(contact_id) => contact(&state, &ws, contact_id).await?,
        DataSource::Sample(sample) => sample.into_contact()?,
        DataSource::Nothing => common::Contact::default(),
    };
    let message = send_test(&state, &ws, id, request.to, snapshot).await?;
    Ok((StatusCode::ACCEPTED, Json(MessageView::try_from(message)?)))
}

/// Sends template `id` once to `to`, rendered with `snapshot`'s data (a contact's or a sample's),
/// as a test: the JSON API's test send and the dashboard's editor both come here. A missing
/// variable is refused before anything is sent.
pub async fn send_test(
    state: &AppState,
    ws: &Workspace,
    id: String,
    to: String,
    mut snapshot: common::Contact,
) -> Result<pb::Message, AppError> {
    let test_id = meisa_model::id::new(TEST_CONTACT_PREFIX);
    let idempotency_key = format!("{TEST_SEND_KEY_PREFIX}{test_id}");
    snapshot.id = test_id;
    snapshot.workspace_id = ws.id();
    snapshot.email = to;
    // A test is sent even when the contact whose data it borrows has unsubscribed.
    snapshot.subscribed = true;
    // Render first: a missing variable is the caller's 422 here, not a `skipped` message.
    render(state, ws, id.clone(), Data::Contact(snapshot.clone())).await?;
    let request = pb::SendEmailRequest {
        workspace_id: ws.id(),
        idempotency_key,
        contact: Some(snapshot),
        template_id: id,
        source: Some(pb::MessageSource::default()),
    };
    const SEND_FIELDS: &[(&str, FieldIs<'static>)] = &[
        ("template_id", FieldIs::NotFound(TemplateView::NOUN)),
        ("contact.email", FieldIs::Named("to")),
    ];
    let message = resource::answer(
        Service::Mailer,
        SEND_FIELDS,
        state.mailer().send_email(request),
    )
    .await?
    .message
    .ok_or_else(|| BadAnswer::missing(Service::Mailer, "a message"))?;
    Ok(message)
}
