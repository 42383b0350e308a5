//! What every request handler shares, the JSON API's and the dashboard's alike: the gateway's
//! database, the service clients, the API key check, and the dashboard's settings.

use sqlx::PgPool;

use crate::{
    accounts::SignInLimits,
    auth::Authenticator,
    clients::{AutomationsClient, Clients, ContactsClient, MailerClient},
};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub clients: Clients,
    pub auth: Authenticator,
    pub dashboard: Dashboard,
}

/// How the dashboard is reached and guarded.
#[derive(Clone, Debug)]
pub struct Dashboard {
    /// Where people open the dashboard (`MEISA_PUBLIC_URL`): the base of invitation links and
    /// of the snippets it shows.
    pub public_url: String,
    /// Session cookies are `Secure` whenever the public URL is https.
    pub secure_cookies: bool,
    pub sign_in: SignInLimits,
}

impl Dashboard {
    pub fn new(public_url: &str, sign_in: SignInLimits) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_string(),
            secure_cookies: public_url.starts_with("https://"),
            sign_in,
        }
    }
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
