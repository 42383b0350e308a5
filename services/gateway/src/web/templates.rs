//! Email templates: the list, and the editor (name, sender, subject, HTML, text) with a live
//! preview rendered by the mailer, shown in a sandboxed iframe (no scripts, no same-origin
//! access), and Liquid errors at their line and column while typing. Saving goes through the
//! mailer like the JSON API does; what it refuses is shown next to the field it names.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form, Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use meisa_proto::{
    common::{self, PageRequest},
    contacts::{GetContactRequest, get_contact_request::By},
    mailer::{
        self as pb, CreateTemplateRequest, GetTemplateRequest, ListTemplatesRequest,
        PreviewTemplateRequest, SampleFields, TemplateInput, UpdateTemplateRequest,
        preview_template_request::{Data, Template as Source},
    },
};
use serde::{Deserialize, Serialize};

use super::{
    contacts::when,
    form::refusal,
    page::{Frame, InFrame, PageError, PageResult},
    session::SignedIn,
};
use crate::{api::mail_model::TemplateView, error::AppError, state::AppState};

pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub subject: String,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "templates/list.html")]
pub struct TemplatesPage {
    frame: Frame,
    rows: Vec<TemplateRow>,
}

pub async fn list(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let frame = Frame::new(&user, "templates");
    let resp = state
        .mailer()
        .list_templates(ListTemplatesRequest {
            workspace_id: user.workspace().into(),
            page: Some(PageRequest {
                limit: 500,
                cursor: String::new(),
            }),
        })
        .await
        .map_err(AppError::mailer)
        .in_frame(&frame)?
        .into_inner();
    let rows = resp
        .templates
        .into_iter()
        .map(|t| {
            let t = TemplateView::try_from(t)?;
            Ok(TemplateRow {
                id: t.id,
                name: t.name,
                subject: t.subject,
                updated: when(t.updated_at),
            })
        })
        .collect::<Result<Vec<_>, crate::error::BadAnswer>>()
        .in_frame(&frame)?;
    Ok(TemplatesPage { frame, rows }.into_response())
}

/// What the editor's form sends; the same fields as the mailer's `TemplateInput`.
#[derive(Deserialize, Default, Clone)]
pub struct TemplateForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub reply_to: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub html: String,
    /// Empty: the mailer derives the text part from the HTML.
    #[serde(default)]
    pub text: String,
    /// Preview only: render as the contact with this email instead of sample values.
    #[serde(default)]
    pub preview_as: String,
}

impl TemplateForm {
    fn input(&self) -> TemplateInput {
        let optional = |s: &str| Some(s.to_owned()).filter(|s| !s.trim().is_empty());
        TemplateInput {
            name: self.name.clone(),
            subject: self.subject.clone(),
            html: self.html.clone(),
            text: optional(&self.text),
            from: self.from.clone(),
            reply_to: optional(&self.reply_to),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "templates/edit.html")]
pub struct EditorPage {
    frame: Frame,
    /// None for a new template.
    id: Option<String>,
    form: TemplateForm,
    /// The field the mailer refused, and why.
    error: Option<(String, String)>,
    saved: bool,
    /// Where a test send just went.
    test_sent: Option<String>,
}

impl EditorPage {
    /// The error of one field, for the template to put next to its input.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// The one-line inputs: (name, label, hint, value).
    fn line_fields(&self) -> [(&'static str, &'static str, &'static str, &str); 4] {
        [
            ("name", "Name", "Only your team sees it.", &self.form.name),
            (
                "from",
                "From",
                "Who it comes from, e.g. Acme <hello@acme.com>",
                &self.form.from,
            ),
            (
                "reply_to",
                "Reply-to (optional)",
                "Where replies go, if not the sender.",
                &self.form.reply_to,
            ),
            (
                "subject",
                "Subject",
                "You can use fields: {{ first_name }}",
                &self.form.subject,
            ),
        ]
    }

    /// An error that names no field of the form, shown at the top.
    fn general_error(&self) -> Option<&str> {
        const FIELDS: &[&str] = &["name", "from", "reply_to", "subject", "html", "text", "to"];
        self.error
            .as_ref()
            .filter(|(f, _)| !FIELDS.contains(&f.as_str()))
            .map(|(_, m)| m.as_str())
    }
}

pub async fn new(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let frame = Frame::new(&user, "templates");
    let sender = crate::store::settings::sender_defaults(&state.pool, user.workspace())
        .await
        .in_frame(&frame)?;
    Ok(EditorPage {
        frame,
        id: None,
        form: TemplateForm {
            from: sender.from,
            reply_to: sender.reply_to,
            html: "<p>Hi {{ first_name | default: \"there\" }},</p>\n<p></p>".into(),
            ..TemplateForm::default()
        },
        error: None,
        saved: false,
        test_sent: None,
    }
    .into_response())
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn edit(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> PageResult<Response> {
    let mut page = saved_editor(&state, &user, &id).await?;
    page.saved = q.saved.is_some();
    Ok(page.into_response())
}

/// The editor of a saved template, as stored.
async fn saved_editor(state: &AppState, user: &SignedIn, id: &str) -> PageResult<EditorPage> {
    let frame = Frame::new(user, "templates");
    if meisa_model::id::parse("tpl", id).is_none() {
        return Err(PageError::not_found("template").in_frame(frame));
    }
    let template = state
        .mailer()
        .get_template(GetTemplateRequest {
            workspace_id: user.workspace().into(),
            id: id.into(),
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => PageError::not_found("template"),
            _ => AppError::mailer(s).into(),
        })
        .in_frame(&frame)?
        .into_inner()
        .template
        .ok_or_else(|| crate::error::BadAnswer("GetTemplate answered no template".into()))
        .in_frame(&frame)?;
    let t = TemplateView::try_from(template).in_frame(&frame)?;
    Ok(EditorPage {
        frame,
        id: Some(t.id),
        form: TemplateForm {
            csrf: String::new(),
            name: t.name,
            from: t.from,
            reply_to: t.reply_to.unwrap_or_default(),
            subject: t.subject,
            html: t.html,
            text: t.text.unwrap_or_default(),
            preview_as: String::new(),
        },
        error: None,
        saved: false,
        test_sent: None,
    })
}

#[derive(Deserialize, Default)]
pub struct TestSendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    /// A contact's email whose data the test uses; empty: the sample values.
    #[serde(default)]
    preview_as: String,
}

/// Sends the saved template once to an address, as the chosen contact or the sample person; it
/// is listed under Messages as a test send.
pub async fn test_send(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<TestSendForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "templates");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let mut page = saved_editor(&state, &user, &id).await?;
    let snapshot = match form.preview_as.trim() {
        "" => Ok(sample_contact()),
        email => state
            .contacts()
            .get_contact(GetContactRequest {
                workspace_id: user.workspace().into(),
                by: Some(By::Email(email.into())),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().contact)
            .ok_or_else(|| {
                (
                    "to".to_string(),
                    format!("no contact has the email {email}"),
                )
            }),
    };
    let sent = match snapshot {
        Ok(snapshot) => {
            let ws = crate::auth::Workspace(user.workspace().into());
            crate::api::templates::send_test(&state, &ws, id, form.to.trim().into(), snapshot)
                .await
                .map_err(refusal)
        }
        Err(refused) => Err(Ok(refused)),
    };
    match sent {
        Ok(message) => {
            page.test_sent = Some(message.to);
            Ok(page.into_response())
        }
        // The address is the one thing this form sends; any refusal reads next to it.
        Err(Ok((_, message))) => {
            page.error = Some(("to".into(), message));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(Err(page_error)) => Err(page_error.in_frame(frame)),
    }
}

/// The sample person as a contact, for a test send without a chosen contact.
fn sample_contact() -> common::Contact {
    common::Contact {
        email: "jane@example.com".into(),
        first_name: Some("Jane".into()),
        last_name: Some("Doe".into()),
        subscribed: true,
        ..common::Contact::default()
    }
}

pub async fn create(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<TemplateForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "templates");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let answer = state
        .mailer()
        .create_template(CreateTemplateRequest {
            workspace_id: user.workspace().into(),
            template: Some(form.input()),
        })
        .await;
    match answer {
        Ok(resp) => {
            let id = resp.into_inner().template.map(|t| t.id).unwrap_or_default();
            Ok(Redirect::to(&format!("/templates/{id}?saved=1")).into_response())
        }
        Err(status) => {
            let error = refusal(AppError::mailer(status)).in_frame(&frame)?;
            Ok(refused(frame, None, form, error))
        }
    }
}

pub async fn update(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<TemplateForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "templates");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    if meisa_model::id::parse("tpl", &id).is_none() {
        return Err(PageError::not_found("template").in_frame(frame));
    }
    let answer = state
        .mailer()
        .update_template(UpdateTemplateRequest {
            workspace_id: user.workspace().into(),
            id: id.clone(),
            template: Some(form.input()),
        })
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to(&format!("/templates/{id}?saved=1")).into_response()),
        Err(status) if status.code() == tonic::Code::NotFound => {
            Err(PageError::not_found("template").in_frame(frame))
        }
        Err(status) => {
            let error = refusal(AppError::mailer(status)).in_frame(&frame)?;
            Ok(refused(frame, Some(id), form, error))
        }
    }
}

fn refused(
    frame: Frame,
    id: Option<String>,
    form: TemplateForm,
    error: (String, String),
) -> Response {
    let page = EditorPage {
        frame,
        id,
        form,
        error: Some(error),
        saved: false,
        test_sent: None,
    };
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

/// What the editor's preview pane shows.
#[derive(Serialize)]
pub struct Preview {
    subject: String,
    html: String,
    text: String,
    /// Where rendering failed: the field, the words, and for a syntax error its line and column.
    error: Option<PreviewError>,
    /// Whose data the preview used, in words.
    data: String,
}

#[derive(Serialize)]
struct PreviewError {
    field: String,
    message: String,
    line: u32,
    column: u32,
    variable: String,
}

/// The sample a preview uses when no contact is chosen: the built-in fields of a made-up person.
fn sample() -> SampleFields {
    let text = |s: &str| common::Value {
        kind: Some(common::value::Kind::StringValue(s.into())),
    };
    SampleFields {
        fields: [
            ("first_name", text("Jane")),
            ("last_name", text("Doe")),
            ("email", text("jane@example.com")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        tags: Vec::new(),
    }
}

/// Renders the editor's current text, as it would go to the chosen contact or to the sample.
/// Called by the editor's script as the user types; answers JSON.
pub async fn preview(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<TemplateForm>,
) -> Result<Json<Preview>, Response> {
    user.check_csrf(&form.csrf)
        .map_err(IntoResponse::into_response)?;
    let (data, described) = match form.preview_as.trim() {
        "" => (
            Data::Sample(sample()),
            "sample values (Jane Doe)".to_string(),
        ),
        email => {
            let found = state
                .contacts()
                .get_contact(GetContactRequest {
                    workspace_id: user.workspace().into(),
                    by: Some(By::Email(email.into())),
                })
                .await;
            match found.map(|r| r.into_inner().contact) {
                Ok(Some(contact)) => (Data::Contact(contact), format!("the contact {email}")),
                Ok(None) | Err(_) => {
                    return Ok(Json(Preview {
                        subject: String::new(),
                        html: String::new(),
                        text: String::new(),
                        error: Some(PreviewError {
                            field: "preview_as".into(),
                            message: format!("no contact has the email {email}"),
                            line: 0,
                            column: 0,
                            variable: String::new(),
                        }),
                        data: String::new(),
                    }));
                }
            }
        }
    };
    let resp = state
        .mailer()
        .preview_template(PreviewTemplateRequest {
            workspace_id: user.workspace().into(),
            template: Some(Source::Draft(form.input())),
            data: Some(data),
        })
        .await
        .map_err(|s| AppError::mailer(s).into_response())?
        .into_inner();
    Ok(Json(Preview {
        subject: resp.subject,
        html: resp.html,
        text: resp.text,
        error: resp.error.map(|e: pb::RenderError| PreviewError {
            field: e.field,
            message: e.message,
            line: e.line,
            column: e.column,
            variable: e.variable,
        }),
        data: described,
    }))
}
