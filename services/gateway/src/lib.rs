//! The Meisa gateway: the only public edge (DESIGN §1, §6). It authenticates API keys against its
//! own database, turns the public JSON API into gRPC calls to the services, and turns their
//! errors back into the public error body through the shared code table.
//!
//! `main.rs` only parses the command line; everything a test needs is here:
//! [`Config`], [`Application::build`] (binds, port 0 in tests), [`Application::run`], [`migrate`].

pub mod admin;
pub mod api;
pub mod auth;
pub mod automations;
pub mod config;
pub mod contacts;
pub mod error;
pub mod grpc;
pub mod mailer;
pub mod openapi;
pub mod store;

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot connect to DATABASE_URL: {0}")]
    Database(#[source] sqlx::Error),
    #[error("MEISA_CONTACTS_URL is not a usable gRPC address: {0}")]
    ContactsUrl(#[source] tonic::transport::Error),
    #[error("MEISA_MAILER_URL is not a usable gRPC address: {0}")]
    MailerUrl(#[source] tonic::transport::Error),
    #[error("MEISA_AUTOMATIONS_URL is not a usable gRPC address: {0}")]
    AutomationsUrl(#[source] tonic::transport::Error),
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
        let channel = contacts::channel(
            &config.contacts_url,
            config.contacts_connect_timeout,
            config.contacts_timeout,
        )
        .map_err(BuildError::ContactsUrl)?;
        let mailer_channel = grpc::channel(
            &config.mailer_url,
            config.mailer_connect_timeout,
            config.mailer_timeout,
        )
        .map_err(BuildError::MailerUrl)?;
        let automations_channel = grpc::channel(
            &config.automations_url,
            config.automations_connect_timeout,
            config.automations_timeout,
        )
        .map_err(BuildError::AutomationsUrl)?;
        let state = api::AppState {
            pool,
            contacts: contacts::client(channel.clone()),
            contacts_health: tonic_health::pb::health_client::HealthClient::new(channel),
            mailer: mailer::client(mailer_channel.clone()),
            mailer_health: tonic_health::pb::health_client::HealthClient::new(mailer_channel),
            automations: automations::client(automations_channel.clone()),
            automations_health: tonic_health::pb::health_client::HealthClient::new(
                automations_channel,
            ),
            keys: Arc::new(auth::KeyCache::new(config.key_cache_ttl)),
        };
        let (router, _) = api::router(state);
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
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}
