//! Signing in and out, and accepting an invitation. A sign-in always opens a new session (any
//! session the browser had is deleted: no session fixation), is throttled per account and per
//! client address ([`crate::accounts::SignInLimits`]), and answers an unknown address and a wrong
//! password with the same words.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::{
    page::{Frame, PageError, PageResult},
    session::{
        ClientAddr, FORM_COOKIE, SESSION_COOKIE, SignedIn, check_pre_session_csrf, forget,
        pre_session_token, safe_next, session_cookie,
    },
};
use crate::{
    accounts::{self, AccountError, NewPassword, SignInError},
    error::AppError,
    state::AppState,
    store::{accounts as users, keys, sessions},
};

#[derive(Template, WebTemplate)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    frame: Frame,
    csrf: String,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<NextQuery>,
) -> Response {
    let (jar, csrf) = pre_session_token(jar, state.dashboard.secure_cookies);
    let page = SignInPage {
        frame: Frame::signed_out(),
        csrf,
        email: String::new(),
        next: safe_next(q.next.as_deref()),
        error: None,
    };
    (jar, page).into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    ClientAddr(client): ClientAddr,
    Form(form): Form<SignInForm>,
) -> PageResult<Response> {
    check_pre_session_csrf(&jar, &form.csrf)?;
    let next = safe_next(form.next.as_deref());
    let again = |status: StatusCode, error: String| {
        SignInPage {
            frame: Frame::signed_out(),
            csrf: form.csrf.clone(),
            email: form.email.clone(),
            next: next.clone(),
            error: Some(error),
        }
        .into_response()
        .with_status(status)
    };
    let result = accounts::sign_in(
        &state.pool,
        state.dashboard.sign_in,
        &form.email,
        &form.password,
        client,
    )
    .await;
    match result {
        Ok(session) => {
            // Rotate: whatever session this browser had is gone, the new one replaces it.
            if let Some(old) = jar.get(SESSION_COOKIE) {
                sessions::delete(&state.pool, &keys::hash(old.value()))
                    .await
                    .map_err(AppError::from)?;
            }
            tracing::info!(user = %session.user.id, "signed in");
            let jar = forget(jar, FORM_COOKIE)
                .add(session_cookie(&session, state.dashboard.secure_cookies));
            Ok((jar, Redirect::to(&next)).into_response())
        }
        Err(SignInError::Wrong) => Ok(again(
            StatusCode::UNAUTHORIZED,
            "That email and password do not match an account. Check both and try again.".into(),
        )),
        Err(SignInError::Throttled { retry_after }) => {
            let minutes = retry_after.as_secs().div_ceil(60);
            let mut response = again(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed attempts. For your account's safety, try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(response)
        }
        Err(SignInError::Store(e)) => Err(AppError::from(e).into()),
        Err(SignInError::Account(e)) => Err(AppError::Internal(e.to_string()).into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    user: SignedIn,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    user.check_csrf(&form.csrf)?;
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        sessions::delete(&state.pool, &keys::hash(cookie.value()))
            .await
            .map_err(AppError::from)?;
    }
    Ok((forget(jar, SESSION_COOKIE), Redirect::to("/login")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "invite.html")]
pub struct InvitePage {
    frame: Frame,
    csrf: String,
    email: String,
    error: Option<String>,
}

fn invite_gone() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "This invitation cannot be used",
        "It has expired or was used already. Ask a teammate to invite you again.",
    )
}

pub async fn invite(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(token): Path<String>,
) -> PageResult<Response> {
    let invite = users::open_invite(&state.pool, &keys::hash(&token))
        .await
        .map_err(AppError::from)?
        .ok_or_else(invite_gone)?;
    let (jar, csrf) = pre_session_token(jar, state.dashboard.secure_cookies);
    let page = InvitePage {
        frame: Frame::signed_out(),
        csrf,
        email: invite.email,
        error: None,
    };
    Ok((jar, page).into_response())
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn accept(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(token): Path<String>,
    Form(form): Form<AcceptForm>,
) -> PageResult<Response> {
    check_pre_session_csrf(&jar, &form.csrf)?;
    let hash = keys::hash(&token);
    let invite = users::open_invite(&state.pool, &hash)
        .await
        .map_err(AppError::from)?
        .ok_or_else(invite_gone)?;
    let password = match NewPassword::parse(&form.password) {
        Ok(p) => p,
        Err(e) => {
            let page = InvitePage {
                frame: Frame::signed_out(),
                csrf: form.csrf,
                email: invite.email,
                error: Some(e.to_string()),
            };
            return Ok(page
                .into_response()
                .with_status(StatusCode::UNPROCESSABLE_ENTITY));
        }
    };
    let user = match accounts::accept_invite(&state.pool, &hash, password).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(invite_gone()),
        Err(AccountError::EmailTaken(email)) => {
            return Err(PageError::new(
                StatusCode::CONFLICT,
                "You already have an account",
                format!("{email} can already sign in. Use the sign-in page."),
            ));
        }
        Err(e) => return Err(AppError::Internal(e.to_string()).into()),
    };
    let session = accounts::start_session(&state.pool, user)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let jar =
        forget(jar, FORM_COOKIE).add(session_cookie(&session, state.dashboard.secure_cookies));
    Ok((jar, Redirect::to("/")).into_response())
}

/// A response with another status, for re-rendered forms (422 with the errors, 429 throttled).
trait WithStatus {
    fn with_status(self, status: StatusCode) -> Response;
}

impl WithStatus for Response {
    fn with_status(mut self, status: StatusCode) -> Response {
        *self.status_mut() = status;
        self
    }
}
