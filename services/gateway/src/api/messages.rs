//! `/api/v1/messages/…`: what was sent to whom, from which automation or sequence step, with its
//! status and rendered subject (DESIGN §3). The mailer keeps messages; this is a read-only view.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use meisa_proto::{common::PageRequest, mailer as pb};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    AppState,
    contacts::{MAX_PAGE, parse_limit_up_to},
    mail_model::{MessageDetail, MessageList, MessageView, parse_status},
    templates::query,
};
use crate::{
    auth::Workspace,
    error::{AppError, ErrorBody, FieldIs},
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
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a bad filter, limit or cursor; `field` names it"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_messages(
    State(state): State<AppState>,
    ws: Workspace,
    q: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<Json<MessageList>, AppError> {
    let q = query(q)?;
    let limit = parse_limit_up_to(q.limit.as_deref(), MAX_PAGE)?;
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(parse_status)
        .transpose()?
        .unwrap_or(pb::MessageStatus::Unspecified);
    let resp = state
        .mailer
        .clone()
        .list_messages(pb::ListMessagesRequest {
            workspace_id: ws.id(),
            page: Some(PageRequest {
                limit,
                cursor: q.cursor.unwrap_or_default(),
            }),
            contact_id: q.contact_id.unwrap_or_default(),
            automation_id: q.automation_id.unwrap_or_default(),
            sequence_id: q.sequence_id.unwrap_or_default(),
            status: status as i32,
            template_id: q.template_id.unwrap_or_default(),
        })
        .await
        .map_err(|s| AppError::mailer(s, &[("page.cursor", FieldIs::Named("cursor"))]))?
        .into_inner();
    Ok(Json(MessageList {
        messages: resp.messages.into_iter().map(MessageView::from).collect(),
        next_cursor: Some(resp.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// One message, with its rendered bodies when they were kept (queued and sent messages).
#[utoipa::path(
    get, path = "/api/v1/messages/{id}", tag = "messages",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The message id, msg_…")),
    responses(
        (status = 200, body = MessageDetail),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such message in this workspace"),
        (status = 503, body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn get_message(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<MessageDetail>, AppError> {
    let message = state
        .mailer
        .clone()
        .get_message(pb::GetMessageRequest {
            workspace_id: ws.id(),
            id,
        })
        .await
        .map_err(|s| AppError::mailer(s, &[("id", FieldIs::NotFound("message"))]))?
        .into_inner()
        .message
        .ok_or_else(|| AppError::Internal("the mailer answered without a message".into()))?;
    Ok(Json(message.into()))
}
