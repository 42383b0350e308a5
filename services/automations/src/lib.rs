//! The automations service (DESIGN §3, §4): automations and sequences as the dashboard configures
//! them, the consumer of contact changes that fires them, the workers that run their actions and
//! sequence steps, and the sweep that fires conditions time makes true.
//!
//! `main.rs` only wires; [`Application::build`] binds (port 0 in tests) and connects, and
//! [`Application::run`] serves gRPC and runs the workers until the shutdown token is cancelled.
//! Then: health goes NOT_SERVING, the consumer stops reading (finishing the batch in hand) and
//! gives its shard leases back, workers finish the job or step in hand, and the gRPC server lets
//! in-flight calls finish.

#![forbid(unsafe_code)]

pub mod api;
pub mod clients;
pub mod config;
pub mod domain;
pub mod error;
pub mod store;
pub mod worker;

use std::{net::SocketAddr, sync::Arc};

use meisa_proto::automations::automations_service_server::AutomationsServiceServer;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::{
    clients::{Contacts, Mailer},
    store::Store,
    worker::{Wakers, actions::Actions, consumer::Consumer, scheduler::Scheduler, sweep::Sweeper},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] meisa_runtime::config::ConfigError),
    #[error("cannot reach the automations database (DATABASE_URL): {0}")]
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
    #[error("{var}: {source}")]
    Client {
        var: &'static str,
        source: meisa_runtime::client::ChannelError,
    },
    #[error(transparent)]
    Grpc(#[from] meisa_runtime::grpc::GrpcError),
    #[error(transparent)]
    Metrics(#[from] meisa_runtime::metrics::MetricsError),
}

/// Creates the database when it does not exist yet (race-safe: parallel Jobs or tests), then
/// applies the migrations.
pub async fn migrate(database_url: &str) -> Result<(), StartError> {
    meisa_runtime::db::migrate(database_url, &store::MIGRATOR).await?;
    Ok(())
}

pub struct Application {
    config: Config,
    listener: TcpListener,
    store: Store,
    redis: redis::Client,
    contacts: Contacts,
    mailer: Mailer,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.check()?;
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&config.database_url)
            .await?;
        let redis = redis::Client::open(config.redis_url.as_str())?;
        let contacts =
            Contacts::connect_lazy(&config.contacts_url).map_err(|source| StartError::Client {
                var: "MEISA_CONTACTS_URL",
                source,
            })?;
        let mailer =
            Mailer::connect_lazy(&config.mailer_url).map_err(|source| StartError::Client {
                var: "MEISA_MAILER_URL",
                source,
            })?;
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        Ok(Self {
            config,
            listener,
            store: Store::new(pool),
            redis,
            contacts,
            mailer,
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
            contacts,
            mailer,
        } = self;
        let wakers = Wakers::default();
        // Workers stop on their own token, after the API stops taking calls.
        let workers = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(worker::consumer::run(
                Arc::new(Consumer {
                    store: store.clone(),
                    redis,
                    contacts: contacts.clone(),
                    prefix: config.stream_prefix.clone(),
                    shards: config.shards,
                    cfg: config.consumer.clone(),
                    wakers: wakers.clone(),
                }),
                workers.clone(),
            )),
            tokio::spawn(worker::actions::run(
                Arc::new(Actions {
                    store: store.clone(),
                    contacts: contacts.clone(),
                    mailer: mailer.clone(),
                    lease: config.job_lease,
                    poll: config.scheduler_poll,
                    max_attempts: config.action_max_attempts,
                    wakers: wakers.clone(),
                }),
                config.action_workers,
                workers.clone(),
            )),
            tokio::spawn(worker::scheduler::run(
                Arc::new(Scheduler {
                    store: store.clone(),
                    contacts: contacts.clone(),
                    mailer: mailer.clone(),
                    lease: config.job_lease,
                    poll: config.scheduler_poll,
                    wakers: wakers.clone(),
                }),
                config.scheduler_workers,
                workers.clone(),
            )),
            tokio::spawn(worker::sweep::run(
                Arc::new(Sweeper {
                    store: store.clone(),
                    contacts: contacts.clone(),
                    interval: config.sweep_interval,
                    lease: config.job_lease,
                    processed_retention: config.processed_retention,
                    wakers: wakers.clone(),
                }),
                workers.clone(),
            )),
        ];

        let (mut routes, health) = meisa_runtime::grpc::base_routes()?;
        routes.add_service(AutomationsServiceServer::new(api::Api::new(
            store.clone(),
            contacts,
            mailer,
            wakers,
        )));
        health
            .set_serving::<AutomationsServiceServer<api::Api>>()
            .await;
        tracing::info!(
            addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            consumer = %config.consumer.name,
            "automations gRPC listening"
        );
        let drain = {
            let shutdown = shutdown.clone();
            let workers = workers.clone();
            async move {
                shutdown.cancelled().await;
                health
                    .set_not_serving::<AutomationsServiceServer<api::Api>>()
                    .await;
                workers.cancel();
                for t in tasks {
                    let _ = t.await;
                }
                tracing::info!("workers stopped");
            }
        };
        let (served, ()) = tokio::join!(
            meisa_runtime::grpc::serve(routes.routes(), listener, shutdown),
            drain
        );
        store.pool.close().await;
        served?;
        Ok(())
    }
}
