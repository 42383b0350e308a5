//! What was sent: every message with its status (queued, sent, failed, suppressed, skipped), to
//! whom, from which automation or sequence step, and why it was skipped, suppressed or failed;
//! and one message with the email as it was rendered, in a sandboxed frame.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use meisa_proto::{
    common::PageRequest,
    mailer::{GetMessageRequest, ListMessagesRequest},
};
use serde::Deserialize;

use super::{
    contacts::when,
    form,
    page::{Frame, InFrame, PageError, PageResult},
    session::SignedIn,
};
use crate::{
    api::mail_model::{MessageDetail, MessageSourceView, MessageView, status_filter},
    error::{AppError, BadAnswer},
    state::AppState,
};

/// The statuses a person can filter by, in their words.
pub const STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("sent", "Sent"),
    ("queued", "Queued"),
    ("failed", "Failed"),
    ("suppressed", "Suppressed"),
    ("skipped", "Skipped"),
];

/// Where a message came from, in words: "Onboarding, step 2", "automation Upgrade to pro",
/// "test send". `names` holds sequences' and automations' names by id.
pub fn source_words(source: &MessageSourceView, names: &BTreeMap<String, String>) -> String {
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    if source.test {
        "test send".into()
    } else if let Some(seq) = &source.sequence_id {
        format!("{}, step {}", name(seq), source.step.map_or(1, |s| s + 1))
    } else if let Some(aut) = &source.automation_id {
        format!("automation {}", name(aut))
    } else {
        String::new()
    }
}

pub struct MessageRow {
    pub id: String,
    pub to: String,
    pub contact_id: String,
    pub subject: String,
    pub status: String,
    pub reason: String,
    pub source: String,
    pub when: String,
}

impl MessageRow {
    pub fn new(m: MessageView, names: &BTreeMap<String, String>) -> Self {
        Self {
            source: source_words(&m.source, names),
            id: m.id,
            to: m.to,
            contact_id: m.contact_id,
            subject: m.subject.unwrap_or_else(|| "(not rendered)".into()),
            status: m.status,
            reason: m.reason.unwrap_or_default(),
            when: when(m.created_at),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "messages/list.html")]
pub struct MessagesPage {
    frame: Frame,
    status: String,
    rows: Vec<MessageRow>,
    next: Option<String>,
    paged: bool,
}

impl MessagesPage {
    fn statuses(&self) -> &'static [(&'static str, &'static str)] {
        STATUSES
    }
}

/// Names of the workspace's sequences (and, for messages, their automations' ids stay ids: an
/// automation's name costs a call per page and the sequence step says more).
async fn sequence_names(state: &AppState, ws: &str) -> BTreeMap<String, String> {
    form::sequence_choices(state, ws)
        .await
        .map(|s| s.into_iter().collect())
        .unwrap_or_default()
}

pub async fn list(
    State(state): State<AppState>,
    user: SignedIn,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "messages");
    let ws = user.workspace().to_string();
    let status = status_filter(Some(q.status.as_str()).filter(|s| !s.is_empty()))
        .map_err(AppError::from)
        .in_frame(&frame)?;
    let mut mailer = state.mailer();
    let (resp, names) = tokio::join!(
        mailer.list_messages(ListMessagesRequest {
            workspace_id: ws.clone(),
            page: Some(PageRequest {
                limit: 50,
                cursor: q.cursor.clone(),
            }),
            status: status as i32,
            ..Default::default()
        }),
        sequence_names(&state, &ws)
    );
    let resp = resp
        .map_err(AppError::mailer)
        .in_frame(&frame)?
        .into_inner();
    let rows = resp
        .messages
        .into_iter()
        .map(|m| MessageView::try_from(m).map(|m| MessageRow::new(m, &names)))
        .collect::<Result<Vec<_>, BadAnswer>>()
        .in_frame(&frame)?;
    let next = (!resp.next_cursor.is_empty()).then(|| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if !q.status.is_empty() {
            s.append_pair("status", &q.status);
        }
        s.append_pair("cursor", &resp.next_cursor);
        format!("/messages?{}", s.finish())
    });
    Ok(MessagesPage {
        frame,
        status: q.status,
        rows,
        next,
        paged: !q.cursor.is_empty(),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "messages/show.html")]
pub struct MessagePage {
    frame: Frame,
    row: MessageRow,
    detail: MessageDetail,
}

pub async fn show(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "messages");
    if meisa_model::id::parse("msg", &id).is_none() {
        return Err(PageError::not_found("message").in_frame(frame));
    }
    let ws = user.workspace().to_string();
    let message = state
        .mailer()
        .get_message(GetMessageRequest {
            workspace_id: ws.clone(),
            id,
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => PageError::not_found("message"),
            _ => AppError::mailer(s).into(),
        })
        .in_frame(&frame)?
        .into_inner()
        .message
        .ok_or_else(|| BadAnswer("GetMessage answered no message".into()))
        .in_frame(&frame)?;
    let detail = MessageDetail::try_from(message).in_frame(&frame)?;
    let names = sequence_names(&state, &ws).await;
    let row = MessageRow::new(detail.message.clone(), &names);
    Ok(MessagePage { frame, row, detail }.into_response())
}
