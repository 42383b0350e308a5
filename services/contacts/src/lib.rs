//! The contacts service: stores each contact's current state, detects what changed, and
//! publishes every change (DESIGN §2, §4).
//!
//! `main.rs` only wires; [`Application`] binds, and `run` serves gRPC, the writer lanes and the
//! relay until the shutdown token is cancelled.

pub mod api;
pub mod config;
pub mod convert;
pub mod domain;
pub mod error;
pub mod store;
pub mod worker;

use std::net::SocketAddr;

use meisa_proto::contacts::contacts_service_server::ContactsServiceServer;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use store::Store;
use worker::relay::{self, RelayConfig};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] meisa_runtime::config::ConfigError),
    #[error("cannot reach the contacts database (DATABASE_URL): {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] meisa_runtime::db::MigrateError),
    #[error("REDIS_URL is not a valid Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot listen on {addr} (MEISA_GRPC_ADDR): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Grpc(#[from] meisa_runtime::grpc::GrpcError),
    #[error(transparent)]
    Metrics(#[from] meisa_runtime::metrics::MetricsError),
}

/// Creates the database when it does not exist yet, then applies the migrations.
pub async fn migrate(database_url: &str) -> Result<(), StartError> {
    meisa_runtime::db::migrate(database_url, &store::MIGRATOR).await?;
    Ok(())
}

pub struct Application {
    config: Config,
    listener: TcpListener,
    store: Store,
    redis: redis::Client,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&config.database_url)
            .await?;
        let redis = redis::Client::open(config.redis_url.as_str())?;
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        let store = Store::new(pool, config.shards);
        Ok(Self {
            config,
            listener,
            store,
            redis,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.grpc_addr)
    }

    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let Self {
            config,
            listener,
            store,
            redis,
        } = self;
        // Workers get their own token: they stop after the server has drained its requests.
        let workers = CancellationToken::new();
        let (writer, lanes) =
            worker::writer::Writer::start(store.clone(), config.writer_lanes, workers.clone());

        let relay_task = config.relay_enabled.then(|| {
            let relay_config = RelayConfig {
                stream_prefix: config.stream_prefix.clone(),
                stream_maxlen: config.stream_maxlen,
                poll_interval: config.relay_poll_interval,
                retention: config.outbox_retention,
            };
            tokio::spawn(run_relay(
                store.pool.clone(),
                store.wake.clone(),
                redis,
                relay_config,
                workers.clone(),
            ))
        });

        let (mut routes, health) = meisa_runtime::grpc::base_routes()?;
        routes.add_service(
            ContactsServiceServer::new(api::ContactsApi::new(store.clone(), writer))
                .max_decoding_message_size(meisa_runtime::client::MAX_MESSAGE_BYTES),
        );
        health
            .set_serving::<ContactsServiceServer<api::ContactsApi>>()
            .await;
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "contacts gRPC listening");

        let served = meisa_runtime::grpc::serve(routes.routes(), listener, shutdown.clone()).await;
        health
            .set_not_serving::<ContactsServiceServer<api::ContactsApi>>()
            .await;
        workers.cancel();
        for lane in lanes {
            let _ = lane.await;
        }
        if let Some(t) = relay_task {
            let _ = t.await;
        }
        store.pool.close().await;
        served?;
        Ok(())
    }
}

async fn run_relay(
    pool: sqlx::PgPool,
    wake: std::sync::Arc<store::changes::RelayWake>,
    client: redis::Client,
    config: RelayConfig,
    shutdown: CancellationToken,
) {
    // Redis may be down at start: upserts still commit to the outbox, and the relay catches up.
    let manager = loop {
        match redis::aio::ConnectionManager::new(client.clone()).await {
            Ok(m) => break m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach Redis (REDIS_URL); the relay will retry");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    };
    relay::run(pool, wake, manager, config, shutdown).await;
}
