//! The dashboard (DESIGN §1, §6): the server-rendered pages a growth team uses, beside the JSON
//! API in [`crate::api`] on the same [`AppState`] and the same service clients. No page reads
//! another service's database; what a page shows, it asks a service for.
//!
//! - [`session`]: the session cookie, the signed-in user, and the CSRF check of every form;
//! - [`page`]: what every page shares (the frame with its navigation, the error page);
//! - [`assets`]: the dashboard's own CSS and JavaScript, compiled into the binary;
//! - [`sign_in`]: sign in and out, and accepting an invitation;
//! - [`home`]: the first-run page of a new workspace;
//! - [`contacts`]: the contact list and the contact page, with [`why`]: what automations did;
//! - [`fields`]: the field registry, and the fields used before any contact sent them;
//! - [`templates`]: the template list and the editor with its live preview;
//! - [`sequences`]: the sequence list and the step editor;
//! - [`messages`]: what was sent, to whom, why, and each email as rendered;
//! - [`automations`]: the automation list with summaries, and the trigger/conditions/actions editor;
//! - [`settings`]: API keys, teammates, sender defaults, the suppression list;
//! - [`builder`], [`form`]: the condition builder and the editors' buttons, shared.
//!
//! Each page is an askama template struct (`templates/`), so a missing or mistyped value fails
//! the build. Values are escaped by askama; nothing a contact or a template name holds is ever
//! written into a page as markup.

pub mod assets;
pub mod automations;
pub mod builder;
pub mod contacts;
pub mod fields;
pub mod form;
mod funnel;
pub mod home;
pub mod messages;
pub mod page;
pub mod sequences;
pub mod session;
pub mod settings;
pub mod sign_in;
pub mod templates;
pub mod why;

use axum::{
    Router,
    routing::{get, post},
};

use crate::state::AppState;

/// The dashboard's routes, merged into the application beside the JSON API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/welcome", get(home::welcome))
        .route("/welcome/first-contact", get(home::first_contact))
        .route("/welcome/key", post(home::create_key))
        .route("/login", get(sign_in::form).post(sign_in::submit))
        .route("/logout", post(sign_in::sign_out))
        .route(
            "/invite/{token}",
            get(sign_in::invite).post(sign_in::accept),
        )
        .route("/contacts", get(contacts::list))
        .route("/contacts/{id}", get(contacts::show))
        .route("/templates", get(templates::list))
        .route(
            "/templates/new",
            get(templates::new).post(templates::create),
        )
        .route("/templates/preview", post(templates::preview))
        .route(
            "/templates/{id}",
            get(templates::edit).post(templates::update),
        )
        .route("/templates/{id}/test-send", post(templates::test_send))
        .route("/sequences", get(sequences::list))
        .route(
            "/sequences/new",
            get(sequences::new).post(sequences::create),
        )
        .route(
            "/sequences/{id}",
            get(sequences::edit).post(sequences::update),
        )
        .route("/sequences/{id}/delete", post(sequences::delete))
        .route("/automations", get(automations::list))
        .route(
            "/automations/new",
            get(automations::new).post(automations::create),
        )
        .route(
            "/automations/{id}",
            get(automations::edit).post(automations::update),
        )
        .route("/automations/{id}/{action}", post(automations::switch))
        .route("/messages", get(messages::list))
        .route("/messages/{id}", get(messages::show))
        .route("/fields", get(fields::list))
        .route("/settings", get(settings::show))
        .route("/settings/keys", post(settings::create_key))
        .route("/settings/keys/{id}/revoke", post(settings::revoke_key))
        .route("/settings/team", post(settings::invite))
        .route(
            "/settings/team/{id}/remove",
            post(settings::remove_teammate),
        )
        .route("/settings/sender", post(settings::save_sender))
        .route("/settings/suppressions", post(settings::add_suppression))
        .route(
            "/settings/suppressions/remove",
            post(settings::remove_suppression),
        )
        .route("/assets/{file}", get(assets::serve))
}
