//! What every dashboard page shares: the [`Frame`] around it (navigation, who is signed in, the
//! sign-out form with its CSRF token) and the [`PageError`] page that any failure becomes. A
//! failure reads the same as in the JSON API (the status comes from the one code table through
//! [`AppError::to_api`]) but as a page with a way back, never a JSON body or a stack trace.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use meisa_runtime::errors::ErrorCode;

use super::{assets, session::SignedIn};
use crate::error::{AppError, RETRY_AFTER_SECS};

/// The dashboard's sections, in the order the navigation shows them: (key, path, label).
pub const SECTIONS: &[(&str, &str, &str)] = &[
    ("contacts", "/contacts", "Contacts"),
    ("fields", "/fields", "Fields"),
    ("templates", "/templates", "Templates"),
    ("sequences", "/sequences", "Sequences"),
    ("automations", "/automations", "Automations"),
    ("messages", "/messages", "Messages"),
    ("settings", "/settings", "Settings"),
    ("welcome", "/welcome", "Get started"),
];

/// The page around the content: who is signed in, where they are, the token for its forms.
#[derive(Clone, Debug)]
pub struct Frame {
    pub email: String,
    pub csrf: String,
    /// The key of the section in [`SECTIONS`] this page belongs to.
    pub section: &'static str,
    pub css: String,
    pub js: String,
}

impl Frame {
    pub fn new(user: &SignedIn, section: &'static str) -> Self {
        Self {
            email: user.user.email.clone(),
            csrf: user.csrf.clone(),
            section,
            css: assets::url("meisa.css"),
            js: assets::url("meisa.js"),
        }
    }

    /// The frame of a page for someone not signed in (sign-in, invitation): no navigation.
    pub fn signed_out() -> Self {
        Self {
            email: String::new(),
            csrf: String::new(),
            section: "",
            css: assets::url("meisa.css"),
            js: assets::url("meisa.js"),
        }
    }

    pub fn sections(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        SECTIONS
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    frame: Frame,
    title: String,
    message: String,
}

/// A failure, as a page. With a [`Frame`] when the user is known, so the navigation stays.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    message: String,
    // Boxed: a page result is returned through every handler, and a frame is most of its size.
    frame: Option<Box<Frame>>,
}

impl PageError {
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            frame: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("There is no such {what} in this workspace. It may have been deleted."),
        )
    }

    /// A form whose token is missing or is not this session's: a stale tab, or another site
    /// posting on the user's behalf. Nothing was changed.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Nothing was changed. Go back, reload the page and try again.",
        )
    }

    pub fn in_frame(mut self, frame: Frame) -> Self {
        self.frame = Some(Box::new(frame));
        self
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        let api = e.logged();
        let status = StatusCode::from_u16(api.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (title, message) = match api.code {
            ErrorCode::NotFound => ("Not found", api.message),
            ErrorCode::Unavailable => (
                "Meisa is briefly unavailable",
                format!("{} Reload the page in a moment.", api.message),
            ),
            ErrorCode::Internal => (
                "Something went wrong on our side",
                "It has been logged. Reload the page; if it keeps happening, tell your engineers."
                    .into(),
            ),
            _ => ("That did not work", api.message),
        };
        Self::new(status, title, message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            frame: self.frame.map_or_else(Frame::signed_out, |f| *f),
            title: self.title,
            message: self.message,
        };
        let mut response = (self.status, page).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// A page handler's result.
pub type PageResult<T> = Result<T, PageError>;

impl From<crate::error::BadAnswer> for PageError {
    fn from(e: crate::error::BadAnswer) -> Self {
        AppError::from(e).into()
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::from(e).into()
    }
}

/// A failure shown inside the page's frame, so the navigation stays: `call.await.in_frame(&frame)?`.
pub trait InFrame<T> {
    fn in_frame(self, frame: &Frame) -> PageResult<T>;
}

impl<T, E: Into<PageError>> InFrame<T> for Result<T, E> {
    fn in_frame(self, frame: &Frame) -> PageResult<T> {
        self.map_err(|e| e.into().in_frame(frame.clone()))
    }
}
