//! The Meisa gateway: the only public edge (DESIGN §1, §6). It authenticates API keys against its
//! own database, turns the public JSON API into gRPC calls to the services, and turns their
//! errors back into the public error body through the shared code table.
//!
//! `main.rs` only parses the command line; everything a test needs is here:
//! [`Config`], [`Application::build`] (binds, port 0 in tests), [`Application::run`], [`migrate`].
//!
//! A request's way through the crate: [`http`] (the router and its layers) → [`auth`] (the API
//! key) → a handler in [`api`] (or a page in [`web`], behind a session) → [`clients`] (gRPC to contacts,
//! the mailer, automations) → [`error`] (every failure, once, as the public error body).

pub mod accounts;
pub mod admin;
pub mod api;
pub mod auth;
pub mod clients;
pub mod config;
pub mod error;
pub mod http;
pub mod openapi;
pub mod state;
pub mod store;
pub mod web;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::{
    auth::Authenticator,
    clients::Clients,
    state::{AppState, Dashboard},
};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot connect to DATABASE_URL: {0}")]
    Database(#[source] sqlx::Error),
    /// A service URL tonic cannot use (the config checked its scheme and syntax already).
    #[error("MEISA_{}_URL: {source}", service.name().to_uppercase())]
    ServiceUrl {
        service: clients::Service,
        #[source]
        source: meisa_runtime::client::ChannelError,
    },
    #[error("cannot listen on {addr} (MEISA_HTTP_HOST / MEISA_HTTP_PORT): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub use meisa_runtime::db::MigrateError;

/// Applies the gateway's embedded migrations (what `gateway migrate` runs as a Kubernetes Job),
/// creating the database first if it does not exist.
pub async fn migrate(database_url: &str) -> Result<(), MigrateError> {
    meisa_runtime::db::migrate(database_url, &store::MIGRATOR).await
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
}

impl Application {
    /// Connects to the database, prepares the (lazy) gRPC channels and binds the listener; the
    /// server starts with [`Application::run`]. Contacts, the mailer and automations need not be up
    /// yet.
    pub async fn build(config: Config) -> Result<Self, BuildError> {
        let pool = store::connect(config.database_url.expose(), config.db_max_connections)
            .await
            .map_err(BuildError::Database)?;
        let clients = Clients::new(&config.contacts, &config.mailer, &config.automations)
            .map_err(|(service, source)| BuildError::ServiceUrl { service, source })?;
        let state = AppState {
            auth: Authenticator::new(pool.clone(), config.key_cache_ttl),
            pool,
            clients,
            dashboard: Dashboard::new(&config.public_url, config.sign_in),
        };
        let (router, _) = http::router(state);
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| BuildError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| BuildError::Bind {
            addr: config.http_addr,
            source,
        })?;
        Ok(Self {
            listener,
            addr,
            router,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and lets in-flight requests
    /// finish.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "gateway listening");
        // With the peer address, which the dashboard's sign-in throttle counts failures by.
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}
