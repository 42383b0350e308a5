//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and served
//! at `GET /api/v1/openapi.json`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Meisa API",
        version = "v1",
        description = "Send each user's current state with one upsert; Meisa runs the lifecycle \
                       email. Every error answers {\"error\": {\"code\", \"message\", \"field\"}}."
    ),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "contacts", description = "Upsert, read, list and erase contacts"),
        (name = "fields", description = "Custom fields and their types"),
        (name = "templates", description = "Liquid email templates: edit, preview, test-send"),
        (name = "messages", description = "What was sent to whom, and what became of it"),
        (name = "suppressions", description = "Addresses that are never mailed"),
        (name = "sequences", description = "Email and wait steps a contact is enrolled in, and the enrollments"),
        (name = "automations", description = "Trigger → conditions → actions; what they did, per automation and per contact"),
        (name = "unsubscribe", description = "The unsubscribe link of every email (RFC 8058 one-click); no API key"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("meisa_sk_…")
                    .description(Some("An API key from `gateway admin create-workspace`"))
                    .build(),
            ),
        );
    }
}
