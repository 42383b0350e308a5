//! `/api/v1/messages/…`: what was sent to whom, from which automation or sequence step, with its
//! status and rendered subject (DESIGN §3). The mailer keeps messages; this is a read-only view.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use meisa_proto::mailer as pb;
use meisa_runtime::paging::MAX_PAGE;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    docs::{ById, Errors, Noun},
    mail_model::{MessageDetail, MessageList, MessageView, status_filter},
    paging,
    resource::Resource,
};
use crate::{
    auth::Workspace,
    clients::Service,
    error::{AppError, ErrorBody, FieldIs},
    state::AppState,
};

/// Read-only here: the mailer writes messages as it sends.
/// What one is called in errors and in the documentation.
impl Noun for MessageView {
    const NOUN: &'static str = "message";
}

const MESSAGES: Resource<pb::Message, MessageView> = Resource {
    service: Service::Mailer,
    path_id: &[("id", FieldIs::NotFound(MessageView::NOUN))],
    to_view: MessageView::try_from,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages to this contact (`ct_…`).
    contact_id: Option<String>,
    /// Only messages sent by this automation (`aut_…`).
    automation_id: Option<String>,
    /// Only messages sent by this sequence (`seq_…`).
    sequence_id: Option<String>,
    /// Only messages of this template (`tpl_…`).
    template_id: Option<String>,
    /// queued, sent, failed, suppressed or skipped.
    status: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Messages, newest first; the filters combine (all must hold).
#[utoipa::path(
    get, path = "/api/v1/messages/", tag = "messages",
    security(("api_key" = [])),
    params(MessagesQuery),
    responses(
        (status = 200, body = MessageList),
        (status = 422, body = ErrorBody, description = "a bad filter, limit or cursor; `field` names it"),
        Errors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_messages(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<Json<MessageList>, AppError> {
    let q = paging::query(q)?;
    let status = status_filter(q.status.as_deref())?;
    let request = pb::ListMessagesRequest {
        workspace_id: ws.id(),
        page: Some(paging::page(q.limit, q.cursor, MAX_PAGE)?),
        contact_id: q.contact_id.unwrap_or_default(),
        automation_id: q.automation_id.unwrap_or_default(),
        sequence_id: q.sequence_id.unwrap_or_default(),
        status: status as i32,
        template_id: q.template_id.unwrap_or_default(),
    };
    let (messages, next_cursor) = MESSAGES
        .page(state.mailer().list_messages(request), |r| {
            (r.messages, r.next_cursor)
        })
        .await?;
    Ok(Json(MessageList {
        messages,
        next_cursor,
    }))
}

/// One message, with its rendered bodies when they were kept (queued and sent messages).
#[utoipa::path(
    get, path = "/api/v1/messages/{id}", tag = "messages",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The message id, msg_…")),
    responses(
        (status = 200, body = MessageDetail),
        ById<MessageView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn get_message(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<MessageDetail>, AppError> {
    let request = pb::GetMessageRequest {
        workspace_id: ws.id(),
        id,
    };
    let answer = MESSAGES.call(state.mailer().get_message(request)).await?;
    Ok(Json(MessageDetail::try_from(
        MESSAGES.item(answer.message)?,
    )?))
}
