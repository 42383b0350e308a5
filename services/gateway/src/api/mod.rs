//! The JSON API (DESIGN §2, §3): one module per resource, and what they share. A handler module
//! imports only the shared modules below, never another handler module.
//!
//! - shared: [`body`] (the JSON body extractor and limits), [`paging`] (list queries),
//!   [`resource`] (the CRUD answers and their errors), [`json`] (reading bodies and answers),
//!   [`docs`] (the OpenAPI entries of shared failures);
//! - the JSON models: [`model`] (contacts), [`mail_model`] (templates, messages, suppressions),
//!   [`automation_model`] (sequences, automations, enrollments, activity);
//! - handlers: [`contacts`], [`fields`], [`templates`], [`messages`], [`suppressions`],
//!   [`sequences`], [`automations`], [`unsubscribe`], [`health`].

pub mod automation_model;
pub mod automations;
pub mod body;
pub mod contacts;
pub mod docs;
pub mod fields;
pub mod health;
pub mod json;
pub mod mail_model;
pub mod messages;
pub mod model;
pub mod paging;
pub mod resource;
pub mod sequences;
pub mod suppressions;
pub mod templates;
pub mod unsubscribe;

use axum::{
    middleware,
    routing::{get, post},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{self, Authenticator},
    state::AppState,
};

/// Every route of the JSON API, documented for OpenAPI.
pub fn routes(auth: Authenticator) -> OpenApiRouter<AppState> {
    // Every route here needs an API key. The paths without a trailing slash are the same
    // handlers; they are left out of the OpenAPI document to keep it to one path per operation.
    let authenticated = OpenApiRouter::new()
        .routes(routes!(contacts::upsert))
        .routes(routes!(contacts::batch_upsert))
        .routes(routes!(contacts::list_or_find))
        .routes(routes!(contacts::get_contact, contacts::delete_contact))
        .routes(routes!(fields::list_fields))
        .routes(routes!(
            templates::create_template,
            templates::list_templates
        ))
        .routes(routes!(
            templates::get_template,
            templates::replace_template,
            templates::patch_template,
            templates::delete_template
        ))
        .routes(routes!(templates::preview))
        .routes(routes!(templates::test_send))
        .routes(routes!(messages::list_messages))
        .routes(routes!(messages::get_message))
        .routes(routes!(
            suppressions::list_suppressions,
            suppressions::add_suppression
        ))
        .routes(routes!(suppressions::remove_suppression))
        .routes(routes!(
            sequences::create_sequence,
            sequences::list_sequences
        ))
        .routes(routes!(
            sequences::get_sequence,
            sequences::replace_sequence,
            sequences::delete_sequence
        ))
        .routes(routes!(sequences::sequence_stats))
        .routes(routes!(sequences::list_enrollments))
        .routes(routes!(
            automations::create_automation,
            automations::list_automations
        ))
        .routes(routes!(
            automations::get_automation,
            automations::replace_automation,
            automations::delete_automation
        ))
        .routes(routes!(automations::enable_automation))
        .routes(routes!(automations::disable_automation))
        .routes(routes!(automations::automation_stats))
        .routes(routes!(automations::contact_activity))
        .route("/api/v1/contacts/upsert", post(contacts::upsert))
        .route(
            "/api/v1/contacts/batch-upsert",
            post(contacts::batch_upsert),
        )
        .route("/api/v1/contacts", get(contacts::list_or_find))
        .route("/api/v1/fields", get(fields::list_fields))
        .route(
            "/api/v1/templates",
            get(templates::list_templates).post(templates::create_template),
        )
        .route("/api/v1/messages", get(messages::list_messages))
        .route(
            "/api/v1/suppressions",
            get(suppressions::list_suppressions).post(suppressions::add_suppression),
        )
        .route(
            "/api/v1/sequences",
            get(sequences::list_sequences).post(sequences::create_sequence),
        )
        .route("/api/v1/enrollments", get(sequences::list_enrollments))
        .route(
            "/api/v1/automations",
            get(automations::list_automations).post(automations::create_automation),
        )
        .route_layer(middleware::from_fn_with_state(auth, auth::require_api_key));
    // No API key: probes, and the unsubscribe link of every email (its token is the credential).
    let public = OpenApiRouter::new()
        .routes(routes!(health::alive))
        .routes(routes!(health::ready))
        .routes(routes!(unsubscribe::page, unsubscribe::unsubscribe));

    OpenApiRouter::new().merge(authenticated).merge(public)
}
