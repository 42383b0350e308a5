//! The contacts service's configuration, from the environment only (DESIGN §7).

use std::{net::SocketAddr, time::Duration};

use meisa_runtime::config::{self, ConfigError};

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub redis_url: String,
    pub grpc_addr: SocketAddr,
    /// Streams are `{stream_prefix}:changes:{shard}`.
    pub stream_prefix: String,
    /// Fixed per deployment: changing it moves contacts to other shards.
    pub shards: u32,
    pub stream_maxlen: u64,
    pub outbox_retention: Duration,
    pub relay_poll_interval: Duration,
    pub writer_lanes: usize,
    pub db_max_connections: u32,
    /// Off only in tests that need an unpublished outbox.
    pub relay_enabled: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: config::required(
                "DATABASE_URL",
                "set it to the contacts database, e.g. postgres://postgres@127.0.0.1:5432/meisa_contacts",
            )?,
            redis_url: config::required(
                "REDIS_URL",
                "set it to the Redis server, e.g. redis://127.0.0.1:6379",
            )?,
            grpc_addr: config::parsed(
                "MEISA_GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50051)),
            )?,
            stream_prefix: config::optional("MEISA_STREAM_PREFIX")
                .unwrap_or_else(|| "meisa".into()),
            shards: config::parsed("MEISA_STREAM_SHARDS", 16)?,
            stream_maxlen: config::parsed("MEISA_STREAM_MAXLEN", 1_000_000)?,
            outbox_retention: config::duration(
                "MEISA_OUTBOX_RETENTION",
                Duration::from_secs(7 * 86_400),
            )?,
            relay_poll_interval: config::duration(
                "MEISA_RELAY_POLL_INTERVAL",
                Duration::from_millis(500),
            )?,
            writer_lanes: config::parsed("MEISA_WRITER_LANES", 8)?,
            db_max_connections: config::parsed("MEISA_DB_MAX_CONNECTIONS", 16)?,
            relay_enabled: true,
        })
    }

    /// Defaults for tests and local tools: gRPC on an ephemeral loopback port.
    pub fn local(database_url: String, redis_url: String, stream_prefix: String) -> Self {
        Self {
            database_url,
            redis_url,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stream_prefix,
            shards: 4,
            stream_maxlen: 100_000,
            outbox_retention: Duration::from_secs(7 * 86_400),
            relay_poll_interval: Duration::from_millis(200),
            writer_lanes: 4,
            db_max_connections: 10,
            relay_enabled: true,
        }
    }
}
