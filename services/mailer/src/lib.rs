//! The mailer service (DESIGN §5): owns templates, messages and the suppression list, renders
//! Liquid templates, delivers over SMTP (or to `.eml` files) from a queue table, and handles
//! RFC 8058 unsubscribes.
//!
//! `Application::build(config)` binds (port 0 in tests); `run(shutdown)` serves gRPC, runs the
//! delivery workers and the change consumer (erasure, [`changes`]) until the token is cancelled,
//! then drains: health goes NOT_SERVING, workers stop claiming, finish the delivery in hand and
//! release the rest of their claims, the consumer finishes the batch in hand and gives its
//! shards back, and the gRPC server lets in-flight calls finish.

pub mod api;
pub mod changes;
pub mod config;
pub mod contacts;
pub mod domain;
pub mod error;
pub mod service;
pub mod store;
pub mod transport;
pub mod worker;

use std::{net::SocketAddr, sync::Arc};

pub use config::{Config, StreamConfig};
use meisa_proto::mailer::mailer_service_server::MailerServiceServer;
use sqlx::{migrate::Migrator, postgres::PgPoolOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api::Api, changes::Consumer, contacts::Contacts, domain::token::TokenSigner, service::Mailer,
    store::Store, transport::Transport, worker::DeliverySettings,
};

pub static MIGRATOR: Migrator = sqlx::migrate!();

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database (DATABASE_URL): {0}")]
    Db(#[source] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] meisa_runtime::db::MigrateError),
    #[error("cannot listen on MEISA_GRPC_ADDR={addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("MEISA_CONTACTS_URL: {0}")]
    Contacts(#[from] meisa_runtime::client::ChannelError),
    #[error(transparent)]
    Grpc(#[from] meisa_runtime::grpc::GrpcError),
    #[error("REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("MEISA_UNSUBSCRIBE_SECRET cannot key the token MAC: {0}")]
    Secret(String),
}

/// Creates the database when it does not exist yet, then applies the embedded migrations
/// (`mailer migrate`, and tests).
pub async fn migrate(database_url: &str) -> Result<(), StartError> {
    meisa_runtime::db::migrate(database_url, &MIGRATOR).await?;
    Ok(())
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    mailer: Arc<Mailer>,
    transport: Transport,
    settings: DeliverySettings,
    changes: Option<Arc<Consumer>>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartError> {
        if config.dev_secret {
            tracing::warn!(
                "MEISA_UNSUBSCRIBE_SECRET is not set: using the built-in development secret; anyone can forge unsubscribe links. Set it in production."
            );
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(config.database_url.expose())
            .await
            .map_err(StartError::Db)?;
        let listener = TcpListener::bind(&config.grpc_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.grpc_addr.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.grpc_addr.clone(),
            source,
        })?;
        let contacts = Contacts::connect_lazy(&config.contacts_url)?;
        let mailer = Arc::new(Mailer::new(
            Store::new(pool),
            TokenSigner::new(config.unsubscribe_secret.expose().as_bytes())
                .map_err(|e| StartError::Secret(e.to_string()))?,
            config.public_url.clone(),
            contacts,
            config.smtp.is_none().then(|| config.data_dir.clone()),
        ));
        let transport = match &config.smtp {
            Some(url) => Transport::Smtp {
                url: url.clone(),
                timeout: config.delivery.smtp_timeout,
            },
            None => Transport::Files {
                dir: config.data_dir.clone(),
            },
        };
        let settings = config.delivery;
        let changes = config
            .stream
            .map(|stream| Consumer::new(mailer.clone(), stream, config.database_url.clone()))
            .transpose()?
            .map(Arc::new);
        Ok(Application {
            listener,
            addr,
            mailer,
            transport,
            settings,
            changes,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service core, for in-process callers (tests, benchmarks).
    pub fn mailer(&self) -> Arc<Mailer> {
        self.mailer.clone()
    }

    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let (mut routes, health) = meisa_runtime::grpc::base_routes()?;
        routes.add_service(MailerServiceServer::new(Api::new(self.mailer.clone())));
        health.set_serving::<MailerServiceServer<Api>>().await;
        tracing::info!(addr = %self.addr, transport = %self.transport.describe(), workers = self.settings.workers, "mailer listening");

        let mut workers = worker::spawn(
            self.mailer.clone(),
            self.transport,
            self.settings,
            shutdown.clone(),
        );
        match self.changes {
            Some(changes) => workers.push(tokio::spawn(changes::run(changes, shutdown.clone()))),
            None => tracing::info!(
                "no change stream configured: deleted contacts are not erased from the mailer"
            ),
        }
        let drain = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                health.set_not_serving::<MailerServiceServer<Api>>().await;
                for w in workers {
                    let _ = w.await;
                }
                tracing::info!("delivery workers and the change consumer stopped");
            }
        };
        let (served, ()) = tokio::join!(
            meisa_runtime::grpc::serve(routes.routes(), self.listener, shutdown),
            drain
        );
        self.mailer.store.pool().close().await;
        served?;
        Ok(())
    }
}
