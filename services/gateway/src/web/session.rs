//! Who is signed in. The session cookie holds a random token (HttpOnly, SameSite=Lax, Secure when
//! the dashboard is served over https); [`SignedIn`] looks it up on every page and sends anyone
//! without a live session to the sign-in page. Every form carries the session's CSRF token and
//! every POST handler checks it with [`SignedIn::check_csrf`] before doing anything.
//!
//! The sign-in and invitation forms come before any session exists; they carry a token that is
//! also set in a short-lived cookie (double submit), checked with [`check_pre_session_csrf`].

use axum::{
    extract::FromRequestParts,
    http::request::Parts,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use subtle::ConstantTimeEq;

use super::page::PageError;
use crate::{
    accounts,
    error::AppError,
    state::AppState,
    store::{accounts::User, keys, sessions},
};

pub const SESSION_COOKIE: &str = "meisa_session";
/// The double-submit token of the forms shown to someone not signed in yet.
pub const FORM_COOKIE: &str = "meisa_form";

/// A signed-in dashboard user and their session's CSRF token.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: User,
    pub csrf: String,
}

impl SignedIn {
    pub fn workspace(&self) -> &str {
        &self.user.workspace_id
    }

    /// The form's token against the session's, in constant time.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(PageError::csrf())
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let session = match jar.get(SESSION_COOKIE) {
            Some(cookie) => sessions::find(&state.pool, &keys::hash(cookie.value()))
                .await
                .map_err(|e| PageError::from(AppError::from(e)).into_response())?,
            None => None,
        };
        match session {
            Some(s) => Ok(Self {
                user: s.user,
                csrf: s.csrf_token,
            }),
            None => Err(to_sign_in(parts)),
        }
    }
}

/// The client's address as the connection tells it (no `X-Forwarded-For`: anyone can write that
/// header). Behind a proxy it is the proxy's; the per-account limit still holds then.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// To the sign-in page, coming back here afterwards (for a page; a form's POST comes back to the
/// page it was on, which the Referer does not reliably tell, so to the start).
fn to_sign_in(parts: &Parts) -> Response {
    let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if parts.method == axum::http::Method::GET && here != "/" {
        let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
        Redirect::to(&format!("/login?next={next}")).into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

/// Only paths of this site: `next` comes from a URL anyone can craft, and `//evil.example` or
/// `https://…` would make sign-in an open redirect.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n.into(),
        _ => "/".into(),
    }
}

/// The cookie that carries a new session.
pub fn session_cookie(session: &accounts::NewSession, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, session.token.clone()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(
            accounts::SESSION_LIFETIME.as_secs() as i64,
        ))
        .build()
}

/// A jar that forgets `name` (the attributes must match the ones it was set with).
pub fn forget(jar: CookieJar, name: &'static str) -> CookieJar {
    jar.remove(Cookie::build(name).path("/"))
}

/// The pre-session form token: the one in the cookie when there is one, else a new one set now.
pub fn pre_session_token(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(existing) = jar.get(FORM_COOKIE) {
        let token = existing.value().to_owned();
        return (jar, token);
    }
    let (token, _) = accounts::token();
    let cookie = Cookie::build((FORM_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::hours(12))
        .build();
    (jar.add(cookie), token)
}

pub fn check_pre_session_csrf(jar: &CookieJar, sent: &str) -> Result<(), PageError> {
    match jar.get(FORM_COOKIE) {
        Some(c) if bool::from(c.value().as_bytes().ct_eq(sent.as_bytes())) && !sent.is_empty() => {
            Ok(())
        }
        _ => Err(PageError::csrf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/contacts?tag=pro")), "/contacts?tag=pro");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
