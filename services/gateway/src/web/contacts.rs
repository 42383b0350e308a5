//! The contact list (search by email, name or external id; filter by tag; paged) and the contact
//! page: every field with its type, tags, subscription, the timeline of changes (old → new,
//! newest first), the sequences the contact is in and the messages sent to it. All of it is
//! asked of contacts, automations and the mailer; another workspace's contact is a 404.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use axum_extra::extract::Query;
use chrono::{DateTime, Utc};
use meisa_proto::{
    automations::{ListContactActivityRequest, ListEnrollmentsRequest, MatchContactsRequest},
    common::{self, PageRequest},
    contacts::{
        GetContactRequest, ListChangesRequest, ListContactsRequest, ListFieldsRequest,
        get_contact_request::By,
    },
    events::ChangeKind,
    mailer::ListMessagesRequest,
};
use meisa_runtime::errors::ErrorCode;
use serde::Deserialize;

use super::builder::{self, Conditions, FieldTypes};
use super::form::{Op, apply};
use super::messages::MessageRow;
use super::page::{Frame, InFrame, PageError, PageResult};
use super::session::SignedIn;
use crate::{
    api::{
        automation_model::EnrollmentView, json::time, mail_model::MessageView, model::ContactView,
    },
    error::{AppError, BadAnswer},
    state::AppState,
};

const PAGE_SIZE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    cursor: String,
    // The condition builder's rows (repeated keys) and the button pressed.
    #[serde(default)]
    c_join: String,
    #[serde(default)]
    c_field: Vec<String>,
    #[serde(default)]
    c_op: Vec<String>,
    #[serde(default)]
    c_value: Vec<String>,
    #[serde(default)]
    op: String,
}

pub struct ContactRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub external_id: String,
    pub subscribed: bool,
    pub tags: Vec<String>,
    pub updated: String,
}

impl ContactRow {
    fn new(view: ContactView) -> Self {
        Self {
            name: full_name(view.first_name.as_deref(), view.last_name.as_deref()),
            id: view.id,
            email: view.email,
            external_id: view.external_id,
            subscribed: view.subscribed,
            tags: view.tags,
            updated: when(view.updated_at),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/list.html")]
pub struct ContactsPage {
    frame: Frame,
    q: String,
    tag: String,
    rows: Vec<ContactRow>,
    /// The next page's URL, keeping the search, the tag and the conditions.
    next: Option<String>,
    /// Whether this is a later page (the "first page" link shows).
    paged: bool,
    /// What went wrong with the search, shown next to the box.
    error: Option<String>,
    conditions: Conditions,
    fields: FieldTypes,
    /// The refusal of a condition row: (row, message).
    cond_refusal: Option<(usize, String)>,
}

impl ContactsPage {
    fn ops(&self) -> &'static [(&'static str, &'static str)] {
        builder::OPS
    }

    fn field_types_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_default()
    }

    fn cond_error(&self, i: usize) -> Option<&str> {
        self.cond_refusal
            .as_ref()
            .filter(|(row, _)| *row == i)
            .map(|(_, m)| m.as_str())
    }
}

/// The list's query string with another cursor: the search, the tag and every condition row.
fn query_string(q: &ListQuery, cursor: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [("q", &q.q), ("tag", &q.tag), ("c_join", &q.c_join)] {
        if !value.trim().is_empty() {
            s.append_pair(key, value.trim());
        }
    }
    for i in 0..q.c_field.len() {
        let at = |v: &[String]| v.get(i).cloned().unwrap_or_default();
        s.append_pair("c_field", &q.c_field[i]);
        s.append_pair("c_op", &at(&q.c_op));
        s.append_pair("c_value", &at(&q.c_value));
    }
    if !cursor.is_empty() {
        s.append_pair("cursor", cursor);
    }
    s.finish()
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn full_name(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One page of contacts and the next cursor: by search and tag from contacts, or, when the
/// builder has rows, the contacts matching them, evaluated by automations.
async fn find(
    state: &AppState,
    ws: &str,
    query: &ListQuery,
    tree: Option<serde_json::Value>,
) -> Result<(Vec<common::Contact>, String), AppError> {
    let page = Some(PageRequest {
        limit: PAGE_SIZE,
        cursor: query.cursor.clone(),
    });
    match tree {
        None => {
            let resp = state
                .contacts()
                .list_contacts(ListContactsRequest {
                    workspace_id: ws.into(),
                    page,
                    tag: query.tag.trim().into(),
                    query: query.q.trim().into(),
                })
                .await
                .map_err(AppError::contacts)?
                .into_inner();
            Ok((resp.contacts, resp.next_cursor))
        }
        Some(tree) => {
            let resp = state
                .automations()
                .match_contacts(MatchContactsRequest {
                    workspace_id: ws.into(),
                    conditions: tree.to_string(),
                    page,
                    count_all: false,
                    max_scan: 0,
                })
                .await
                .map_err(AppError::automations)?
                .into_inner();
            Ok((resp.contacts, resp.next_cursor))
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    user: SignedIn,
    Query(query): Query<ListQuery>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "contacts");
    let op = Op::parse(&query.op);
    let mut conditions =
        Conditions::from_form(&query.c_join, &query.c_field, &query.c_op, &query.c_value);
    if op == Op::Add("condition") {
        conditions.rows.push(builder::Row {
            op: "eq".into(),
            ..builder::Row::default()
        });
    }
    apply(&mut conditions.rows, op, "condition");
    let fields = builder::workspace_fields(&state, user.workspace())
        .await
        .in_frame(&frame)?;
    // With conditions, the tag is one more of them; the search box applies to lists only.
    let mut tree = conditions.clone();
    if !query.tag.trim().is_empty() && !tree.rows.is_empty() {
        tree.rows.push(builder::Row {
            field: String::new(),
            op: "has_tag".into(),
            value: query.tag.trim().into(),
        });
        tree.join = "all".into();
    }
    let tree = tree.to_json(&fields);
    let answer = if matches!(op, Op::Save) {
        find(&state, user.workspace(), &query, tree).await.map(Some)
    } else {
        // Adding or removing a row only redraws the builder.
        Ok(None)
    };
    let mut page = ContactsPage {
        frame: frame.clone(),
        q: query.q.trim().to_string(),
        tag: query.tag.trim().to_string(),
        rows: Vec::new(),
        next: None,
        paged: !query.cursor.is_empty(),
        error: None,
        conditions,
        fields,
        cond_refusal: None,
    };
    match answer {
        Ok(Some((contacts, next_cursor))) => {
            for c in contacts {
                page.rows
                    .push(ContactRow::new(ContactView::try_from(c).in_frame(&frame)?));
            }
            if !next_cursor.is_empty() {
                page.next = Some(format!("/contacts?{}", query_string(&query, &next_cursor)));
            }
        }
        Ok(None) => {}
        // A search the service refuses (too long, a NUL), a condition that does not fit its
        // field, or a stale cursor: said next to what caused it, with the page still usable.
        Err(e) if e.to_api().code == ErrorCode::InvalidField => {
            let api = e.to_api();
            match api
                .field
                .as_deref()
                .and_then(|f| page.conditions.row_of("conditions", f))
            {
                Some(row) => page.cond_refusal = Some((row, api.message)),
                None => page.error = Some(api.message),
            }
        }
        Err(e) => return Err(PageError::from(e).in_frame(frame)),
    }
    Ok(page.into_response())
}

pub struct FieldRow {
    pub name: String,
    pub kind: String,
    pub value: String,
}

pub struct ChangeRow {
    pub event_id: String,
    pub when: String,
    pub what: String,
    pub by: String,
    pub lines: Vec<(String, String, String)>,
}

pub struct EnrollmentRow {
    pub sequence: String,
    pub sequence_id: String,
    pub status: String,
    /// 1-based, as people count: the step that runs next.
    pub next_step: u32,
    /// When it runs, for an active enrollment.
    pub next_at: String,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "contacts/show.html")]
pub struct ContactPage {
    frame: Frame,
    contact: ContactView,
    name: String,
    fields: Vec<FieldRow>,
    changes: Vec<ChangeRow>,
    /// Each section from another service stands alone: when that service does not answer, the
    /// section says so and the rest of the page still shows.
    messages: Section<MessageRow>,
    enrollments: Section<EnrollmentRow>,
    why: Section<super::why::WhyRow>,
}

pub type Section<T> = Result<Vec<T>, String>;

/// A section's failure in words, logged once like any other.
fn unavailable(e: AppError) -> String {
    let api = e.logged();
    match api.code {
        ErrorCode::Unavailable => format!("Not available right now: {}", api.message),
        _ => "Could not be loaded; it has been logged.".into(),
    }
}

/// A field value as a person reads it: text without quotes, numbers as sent, dates as sent.
pub fn shown(v: &common::Value) -> String {
    use common::value::Kind;
    match &v.kind {
        Some(Kind::StringValue(s)) => s.clone(),
        Some(Kind::IntValue(i)) => i.to_string(),
        Some(Kind::DoubleValue(d)) => d.to_string(),
        Some(Kind::BoolValue(b)) => if *b { "true" } else { "false" }.into(),
        Some(Kind::NullValue(_)) | None => "—".into(),
    }
}

fn type_name(wire: i32) -> &'static str {
    match meisa_proto::field_type_of(wire) {
        Ok(t) => t.as_str(),
        Err(_) => "unknown",
    }
}

pub async fn show(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "contacts");
    // What cannot be a contact id names nothing: no call, and no odd byte reaches a database.
    if meisa_model::id::parse("ct", &id).is_none() {
        return Err(PageError::not_found("contact").in_frame(frame));
    }
    let ws = user.workspace().to_string();
    let contact = state
        .contacts()
        .get_contact(GetContactRequest {
            workspace_id: ws.clone(),
            by: Some(By::Id(id.clone())),
        })
        .await
        .map_err(|status| match status.code() {
            // An id of another workspace, or one that cannot be an id at all: not here.
            tonic::Code::NotFound | tonic::Code::InvalidArgument => PageError::not_found("contact"),
            _ => PageError::from(AppError::contacts(status)),
        })
        .in_frame(&frame)?
        .into_inner()
        .contact
        .ok_or_else(|| AppError::from(BadAnswer("GetContact answered no contact".into())))
        .in_frame(&frame)?;
    let custom = contact.custom_fields.clone();
    let contact = ContactView::try_from(contact).in_frame(&frame)?;

    // The calls borrow their clients, so the clients live here, for the joined calls to share.
    let (mut contacts, mut mailer, mut automations, mut contacts2, mut automations2) = (
        state.contacts(),
        state.mailer(),
        state.automations(),
        state.contacts(),
        state.automations(),
    );
    let (fields, changes, messages, enrollments, sequences, activity, automation_names) = tokio::join!(
        contacts.list_fields(ListFieldsRequest {
            workspace_id: ws.clone(),
        }),
        contacts2.list_changes(ListChangesRequest {
            workspace_id: ws.clone(),
            contact_id: id.clone(),
            page: Some(PageRequest {
                limit: 100,
                cursor: String::new(),
            }),
        }),
        mailer.list_messages(ListMessagesRequest {
            workspace_id: ws.clone(),
            contact_id: id.clone(),
            page: Some(PageRequest {
                limit: 50,
                cursor: String::new(),
            }),
            ..Default::default()
        }),
        automations.list_enrollments(ListEnrollmentsRequest {
            workspace_id: ws.clone(),
            contact_id: id.clone(),
            page: Some(PageRequest {
                limit: 100,
                cursor: String::new(),
            }),
            ..Default::default()
        }),
        super::form::sequence_choices(&state, &ws),
        automations2.list_contact_activity(ListContactActivityRequest {
            workspace_id: ws.clone(),
            contact_id: id.clone(),
            page: Some(PageRequest {
                limit: 100,
                cursor: String::new(),
            }),
        }),
        super::form::automation_choices(&state, &ws),
    );
    let automation_names: BTreeMap<String, String> =
        automation_names.unwrap_or_default().into_iter().collect();
    let types: BTreeMap<String, i32> = fields
        .map_err(AppError::contacts)
        .in_frame(&frame)?
        .into_inner()
        .fields
        .into_iter()
        .map(|f| (f.name, f.r#type))
        .collect();
    let fields = custom
        .iter()
        .map(|(name, value)| FieldRow {
            name: name.clone(),
            kind: types.get(name).map_or("unknown", |t| type_name(*t)).into(),
            value: shown(value),
        })
        .collect();

    let changes = changes
        .map_err(AppError::contacts)
        .in_frame(&frame)?
        .into_inner()
        .changes
        .into_iter()
        .map(|c| {
            let when = time("occurred_at", c.occurred_at).map(super::contacts::when)?;
            let what = match ChangeKind::try_from(c.kind) {
                Ok(ChangeKind::Created) => "Created",
                Ok(ChangeKind::Deleted) => "Erased",
                _ => "Updated",
            };
            let by = c
                .causation
                .map(|c| match c.source.as_str() {
                    "automation" => format!(
                        "automation {}",
                        automation_names
                            .get(&c.automation_id)
                            .unwrap_or(&c.automation_id)
                    ),
                    "" => "the API".into(),
                    "api" => "the API".into(),
                    other => other.replace('_', " "),
                })
                .unwrap_or_else(|| "the API".into());
            let created = what == "Created";
            let lines: Vec<(String, String, String)> = c
                .changes
                .into_iter()
                .map(|f| {
                    // A creation has no "before": each value is shown as it arrived.
                    let old = match &f.old {
                        _ if created => String::new(),
                        Some(v) => shown(v),
                        None => "—".into(),
                    };
                    let new = f.new.as_ref().map_or("—".into(), shown);
                    if f.path == "tags" {
                        let mut parts = Vec::new();
                        if !f.tags_added.is_empty() {
                            parts.push(format!("+ {}", f.tags_added.join(", ")));
                        }
                        if !f.tags_removed.is_empty() {
                            parts.push(format!("− {}", f.tags_removed.join(", ")));
                        }
                        (f.path, String::new(), parts.join("  "))
                    } else {
                        (
                            f.path
                                .strip_prefix("custom_fields.")
                                .unwrap_or(&f.path)
                                .into(),
                            old,
                            new,
                        )
                    }
                })
                .collect();
            Ok(ChangeRow {
                event_id: c.event_id,
                when,
                what: what.into(),
                by,
                lines,
            })
        })
        .collect::<Result<Vec<_>, BadAnswer>>()
        .map_err(AppError::from)
        .in_frame(&frame)?;

    let names: BTreeMap<String, String> = sequences.unwrap_or_default().into_iter().collect();
    // Each change as one line, for the why view to say which change an automation fired on.
    let change_names: BTreeMap<String, String> = changes
        .iter()
        .map(|c| {
            let line = c
                .lines
                .iter()
                .map(|(path, old, new)| match old.as_str() {
                    "" => format!("{path} {new}"),
                    old => format!("{path} {old} → {new}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            (c.event_id.clone(), line)
        })
        .collect();
    let why = activity
        .map_err(AppError::automations)
        .and_then(|r| {
            let names = super::why::Names {
                automations: &automation_names,
                sequences: &names,
                changes: &change_names,
            };
            r.into_inner()
                .activities
                .into_iter()
                .map(|a| super::why::row(a, &names))
                .collect::<Result<Vec<_>, BadAnswer>>()
                .map_err(AppError::from)
        })
        .map_err(unavailable);
    let messages = messages
        .map_err(AppError::mailer)
        .and_then(|r| {
            r.into_inner()
                .messages
                .into_iter()
                .map(|m| MessageView::try_from(m).map(|m| MessageRow::new(m, &names)))
                .collect::<Result<Vec<_>, BadAnswer>>()
                .map_err(AppError::from)
        })
        .map_err(unavailable);

    let enrollments = enrollments
        .map_err(AppError::automations)
        .and_then(|r| {
            r.into_inner()
                .enrollments
                .into_iter()
                .map(|e| {
                    let e = EnrollmentView::try_from(e)?;
                    Ok(EnrollmentRow {
                        sequence: names
                            .get(&e.sequence_id)
                            .cloned()
                            .unwrap_or_else(|| e.sequence_id.clone()),
                        sequence_id: e.sequence_id,
                        status: e.status,
                        next_step: e.current_step + 1,
                        next_at: e.next_run_at.map(when).unwrap_or_default(),
                        detail: e
                            .exit_reason
                            .map(|r| r.replace('_', " "))
                            .unwrap_or_default(),
                    })
                })
                .collect::<Result<Vec<_>, BadAnswer>>()
                .map_err(AppError::from)
        })
        .map_err(unavailable);

    Ok(ContactPage {
        frame,
        name: full_name(contact.first_name.as_deref(), contact.last_name.as_deref()),
        contact,
        fields,
        changes,
        messages,
        enrollments,
        why,
    }
    .into_response())
}
