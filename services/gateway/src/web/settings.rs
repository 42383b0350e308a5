//! Settings: API keys (a new one shown once, inside a ready-to-paste upsert; the list with
//! prefix, creator and last use; revoke), teammates (invite by email with a link that works once,
//! remove), sender defaults for new templates, and the suppression list. Everything is scoped to
//! the signed-in user's workspace: another workspace's key, user or address changes nothing.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::Form;
use meisa_proto::{
    common::PageRequest,
    mailer::{AddSuppressionRequest, ListSuppressionsRequest, RemoveSuppressionRequest},
};
use serde::Deserialize;

use super::{
    contacts::when,
    form::refusal,
    home::upsert_snippet,
    page::{Frame, InFrame, PageError, PageResult},
    session::SignedIn,
};
use crate::{
    accounts::{self, AccountError},
    api::mail_model::SuppressionView,
    error::AppError,
    state::AppState,
    store::{
        accounts::{self as users, User},
        keys::{self, KeyInfo},
        settings::{self, SenderDefaults},
    },
};

/// Something to show once at the top of the page after an action.
#[derive(Default)]
pub struct Outcome {
    /// A new API key and its snippet.
    new_key: Option<(String, String)>,
    /// A new invitation's link.
    invite_link: Option<String>,
    /// A refusal: the form ("invite", "suppression", "sender") and why.
    error: Option<(&'static str, String)>,
}

pub struct KeyRow {
    pub id: String,
    pub prefix: String,
    pub created: String,
    pub created_by: String,
    pub last_used: String,
    pub revoked: bool,
}

impl From<KeyInfo> for KeyRow {
    fn from(k: KeyInfo) -> Self {
        Self {
            id: k.key_id,
            prefix: format!("{}…", k.key_prefix),
            created: when(k.created_at),
            created_by: k.created_by.unwrap_or_else(|| "an operator".into()),
            last_used: k.last_used_at.map_or_else(|| "never".into(), when),
            revoked: k.revoked_at.is_some(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    frame: Frame,
    me: String,
    keys: Vec<KeyRow>,
    team: Vec<User>,
    invites: Vec<users::Invite>,
    sender: SenderDefaults,
    suppressions: Result<Vec<SuppressionView>, String>,
    outcome: Outcome,
}

impl SettingsPage {
    fn error_of(&self, form: &str) -> Option<&str> {
        self.outcome
            .error
            .as_ref()
            .filter(|(f, _)| *f == form)
            .map(|(_, m)| m.as_str())
    }

    fn joined(&self, user: &User) -> String {
        when(user.created_at)
    }

    fn expires(&self, invite: &users::Invite) -> String {
        when(invite.expires_at)
    }

    fn suppressed_at(&self, s: &SuppressionView) -> String {
        when(s.created_at)
    }
}

async fn page(state: &AppState, user: &SignedIn, outcome: Outcome) -> PageResult<SettingsPage> {
    let frame = Frame::new(user, "settings");
    let ws = user.workspace();
    let keys = keys::list(&state.pool, ws).await.in_frame(&frame)?;
    let team = users::list(&state.pool, ws).await.in_frame(&frame)?;
    let invites = users::open_invites(&state.pool, ws)
        .await
        .in_frame(&frame)?;
    let sender = settings::sender_defaults(&state.pool, ws)
        .await
        .in_frame(&frame)?;
    // The suppression list lives in the mailer; when it does not answer, the rest still shows.
    let suppressions = match state
        .mailer()
        .list_suppressions(ListSuppressionsRequest {
            workspace_id: ws.into(),
            page: Some(PageRequest {
                limit: 200,
                cursor: String::new(),
            }),
        })
        .await
    {
        Ok(resp) => resp
            .into_inner()
            .suppressions
            .into_iter()
            .map(SuppressionView::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                AppError::from(e).logged();
                "The suppression list could not be read; it has been logged.".to_string()
            }),
        Err(status) => Err(format!(
            "Not available right now: {}",
            AppError::mailer(status).logged().message
        )),
    };
    Ok(SettingsPage {
        frame,
        me: user.user.id.clone(),
        keys: keys.into_iter().rev().map(KeyRow::from).collect(),
        team,
        invites,
        sender,
        suppressions,
        outcome,
    })
}

pub async fn show(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    Ok(page(&state, &user, Outcome::default())
        .await?
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    reply_to: String,
}

fn back() -> Response {
    Redirect::to("/settings").into_response()
}

/// A form's refusal, shown next to it on the settings page.
async fn refused(
    state: &AppState,
    user: &SignedIn,
    form: &'static str,
    message: String,
) -> PageResult<Response> {
    let outcome = Outcome {
        error: Some((form, message)),
        ..Outcome::default()
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        page(state, user, outcome).await?,
    )
        .into_response())
}

pub async fn create_key(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SettingsForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "settings");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let key = keys::create_by(&state.pool, user.workspace(), Some(&user.user.email))
        .await
        .in_frame(&frame)?;
    tracing::info!(user = %user.user.id, "API key created from the dashboard");
    let snippet = upsert_snippet(&state.dashboard.public_url, Some(&key));
    let outcome = Outcome {
        new_key: Some((key, snippet)),
        ..Outcome::default()
    };
    Ok(page(&state, &user, outcome).await?.into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "settings");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    keys::revoke_in(&state.pool, user.workspace(), &id)
        .await
        .in_frame(&frame)?
        .ok_or_else(|| PageError::not_found("active API key"))
        .in_frame(&frame)?;
    tracing::info!(user = %user.user.id, key = %id, "API key revoked from the dashboard");
    Ok(back())
}

pub async fn invite(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SettingsForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "settings");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    match accounts::invite(&state.pool, user.workspace(), &form.email, &user.user.id).await {
        Ok(token) => {
            let outcome = Outcome {
                invite_link: Some(format!("{}/invite/{token}", state.dashboard.public_url)),
                ..Outcome::default()
            };
            Ok(page(&state, &user, outcome).await?.into_response())
        }
        Err(e @ (AccountError::Email(_) | AccountError::EmailTaken(_))) => {
            refused(&state, &user, "invite", e.to_string()).await
        }
        Err(e) => Err(AppError::Internal(e.to_string())).in_frame(&frame),
    }
}

pub async fn remove_teammate(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "settings");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    if id == user.user.id {
        // Removing oneself could leave a workspace nobody can sign in to.
        return refused(
            &state,
            &user,
            "team",
            "You cannot remove yourself; ask a teammate.".into(),
        )
        .await;
    }
    if !users::remove(&state.pool, user.workspace(), &id)
        .await
        .in_frame(&frame)?
    {
        return Err(PageError::not_found("teammate").in_frame(frame));
    }
    tracing::info!(user = %user.user.id, removed = %id, "teammate removed");
    Ok(back())
}

pub async fn save_sender(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SettingsForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "settings");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let defaults = SenderDefaults {
        from: form.from.trim().to_string(),
        reply_to: form.reply_to.trim().to_string(),
    };
    if defaults.from.contains('\0') || defaults.reply_to.contains('\0') || defaults.from.len() > 320
    {
        return refused(
            &state,
            &user,
            "sender",
            "An address may not hold that.".into(),
        )
        .await;
    }
    settings::set_sender_defaults(&state.pool, user.workspace(), &defaults)
        .await
        .in_frame(&frame)?;
    Ok(back())
}

pub async fn add_suppression(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SettingsForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "settings");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let answer = state
        .mailer()
        .add_suppression(AddSuppressionRequest {
            workspace_id: user.workspace().into(),
            email: form.email.clone(),
            reason: 0,
            detail: form.detail.clone(),
        })
        .await;
    match answer {
        Ok(_) => Ok(back()),
        Err(status) => {
            let (_, message) = refusal(AppError::mailer(status)).in_frame(&frame)?;
            refused(&state, &user, "suppression", message).await
        }
    }
}

pub async fn remove_suppression(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SettingsForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "settings");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    state
        .mailer()
        .remove_suppression(RemoveSuppressionRequest {
            workspace_id: user.workspace().into(),
            email: form.email,
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                PageError::not_found("suppressed address")
            }
            _ => AppError::mailer(s).into(),
        })
        .in_frame(&frame)?;
    Ok(back())
}
