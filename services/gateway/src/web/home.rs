//! The first-run page (issue 8 §10): what to paste into the product's backend, with a real key,
//! and "waiting for your first contact" that turns into a link when one arrives. A workspace that
//! has contacts starts on the contact list instead.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form, Json,
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use meisa_proto::{common::PageRequest, contacts::ListContactsRequest};
use serde::Serialize;

use super::{
    page::{Frame, InFrame, PageResult},
    session::SignedIn,
    sign_in::CsrfForm,
};
use crate::{error::AppError, state::AppState, store::keys};

#[derive(Template, WebTemplate)]
#[template(path = "welcome.html")]
pub struct WelcomePage {
    frame: Frame,
    /// Set once, right after "create a key": the only time the key exists in clear.
    api_key: Option<String>,
    gateway_url: String,
}

impl WelcomePage {
    fn snippet(&self) -> String {
        upsert_snippet(&self.gateway_url, self.api_key.as_deref())
    }
}

/// The upsert a backend sends, with `key` (or a placeholder until one is made): what the
/// first-run page and a new key on the settings page show.
pub fn upsert_snippet(gateway_url: &str, key: Option<&str>) -> String {
    let key = key.unwrap_or("YOUR_API_KEY");
    format!(
        "curl -X POST {}/api/v1/contacts/upsert/ \\\n  -H 'Authorization: Bearer {key}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{{\"email\": \"jane@example.com\", \"external_id\": \"user_1\", \"first_name\": \"Jane\", \"custom_fields\": {{\"plan\": \"free\"}}}}'",
        gateway_url.trim_end_matches('/')
    )
}

#[derive(Serialize)]
pub struct FirstContact {
    /// The link to the first contact, or null while there is none.
    contact: Option<ContactLink>,
}

#[derive(Serialize)]
struct ContactLink {
    email: String,
    url: String,
}

async fn first_contact_of(state: &AppState, user: &SignedIn) -> Result<FirstContact, AppError> {
    let resp = state
        .contacts()
        .list_contacts(ListContactsRequest {
            workspace_id: user.workspace().into(),
            page: Some(PageRequest {
                limit: 1,
                cursor: String::new(),
            }),
            ..Default::default()
        })
        .await
        .map_err(AppError::contacts)?
        .into_inner();
    Ok(FirstContact {
        contact: resp.contacts.into_iter().next().map(|c| ContactLink {
            url: format!("/contacts/{}", c.id),
            email: c.email,
        }),
    })
}

/// `/`: the contact list once the workspace has contacts, the first-run page until then.
pub async fn home(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let frame = Frame::new(&user, "welcome");
    let first = first_contact_of(&state, &user).await.in_frame(&frame)?;
    if first.contact.is_some() {
        return Ok(Redirect::to("/contacts").into_response());
    }
    Ok(welcome_page(&state, frame, None).into_response())
}

pub async fn welcome(State(state): State<AppState>, user: SignedIn) -> Response {
    welcome_page(&state, Frame::new(&user, "welcome"), None).into_response()
}

fn welcome_page(state: &AppState, frame: Frame, api_key: Option<String>) -> WelcomePage {
    WelcomePage {
        frame,
        api_key,
        gateway_url: state.dashboard.public_url.clone(),
    }
}

/// Polled by the first-run page every few seconds.
pub async fn first_contact(
    State(state): State<AppState>,
    user: SignedIn,
) -> Result<Json<FirstContact>, AppError> {
    Ok(Json(first_contact_of(&state, &user).await?))
}

/// Creates an API key and shows it, in the snippet, this once.
pub async fn create_key(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "welcome");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let key = keys::create_by(&state.pool, user.workspace(), Some(&user.user.email))
        .await
        .in_frame(&frame)?;
    tracing::info!(user = %user.user.id, "API key created from the dashboard");
    Ok(welcome_page(&state, frame, Some(key)).into_response())
}
