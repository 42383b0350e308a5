//! What every request handler shares, the JSON API's and the dashboard's alike: the gateway's
//! database, the service clients, and the API key check.

use sqlx::PgPool;

use crate::{
    auth::Authenticator,
    clients::{AutomationsClient, Clients, ContactsClient, MailerClient},
};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub clients: Clients,
    pub auth: Authenticator,
}

impl AppState {
    pub fn contacts(&self) -> ContactsClient {
        self.clients.contacts()
    }

    pub fn mailer(&self) -> MailerClient {
        self.clients.mailer()
    }

    pub fn automations(&self) -> AutomationsClient {
        self.clients.automations()
    }
}
