//! The dashboard (DESIGN §1, §6): the server-rendered pages a growth team uses to edit templates,
//! sequences and automations and to follow what was sent. It is built here, beside the JSON API
//! in [`crate::api`], on the same [`AppState`]: the same service clients, the same errors.
//!
//! Nothing is served from here yet. What goes here: one module per page set (STYLE.md §12), each
//! page a template struct; session sign-in (Argon2id passwords, an HttpOnly SameSite cookie)
//! instead of API keys; a CSRF token on every form, and errors next to the input. The JSON
//! models in `crate::api` are the API's, not the pages': a page reads the services' answers
//! through the clients itself.

use axum::Router;

use crate::state::AppState;

/// The dashboard's routes, merged into the application beside the JSON API. Empty for now.
pub fn router() -> Router<AppState> {
    Router::new()
}
