//! The automations service's configuration, from the environment only (DESIGN §7). Every error
//! names the variable.

use std::{net::SocketAddr, time::Duration};

use meisa_runtime::config::{self, ConfigError};

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub redis_url: String,
    pub grpc_addr: SocketAddr,
    pub contacts_url: String,
    pub mailer_url: String,
    /// Streams are `{stream_prefix}:changes:{shard}`, as the contacts relay writes them.
    pub stream_prefix: String,
    /// Must equal the contacts service's MEISA_STREAM_SHARDS.
    pub shards: u32,
    pub consumer: ConsumerConfig,
    /// How often the scheduler and the action workers look for due work that no in-process wake-up
    /// announced (work of other replicas, retries, expired leases).
    pub scheduler_poll: Duration,
    /// Longest time between two sweeps of clock-driven conditions (a sweep also runs as soon as
    /// the earliest pending check is due).
    pub sweep_interval: Duration,
    /// How many action jobs / sequence steps run at once in this process (each mostly waits on
    /// a call to contacts or the mailer).
    pub action_workers: usize,
    pub scheduler_workers: usize,
    /// How long a claimed action job or enrollment stays claimed; a worker that dies releases its
    /// claims when this runs out. Must exceed the longest call a step makes.
    pub job_lease: Duration,
    /// Transient failures of an action are retried this many times (with backoff) before it fails.
    pub action_max_attempts: i32,
    /// How long processed event ids are kept for deduplication. Must exceed the contacts outbox
    /// retention (the window in which an event can be replayed).
    pub processed_retention: Duration,
    pub db_max_connections: u32,
}

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub group: String,
    /// Unique per process: `{pod or host name}-{random}`.
    pub name: String,
    pub batch: usize,
    /// How long one XREADGROUP waits for new entries; bounds how fast a shard reader notices
    /// shutdown or the loss of its shard.
    pub block: Duration,
    /// Entries pending (delivered, not acknowledged) this long are reclaimed with XAUTOCLAIM.
    pub claim_idle: Duration,
    /// An entry delivered this many times without success goes to the dead-letter table.
    pub max_deliveries: usize,
    /// Shard ownership lease: a shard is read by one process at a time, which keeps per-contact
    /// order and makes gaps in `seq` visible. Renewed every third of it.
    pub shard_lease: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let shards: u32 = config::parsed("MEISA_STREAM_SHARDS", 16)?;
        if shards == 0 {
            return Err(ConfigError::Invalid {
                name: "MEISA_STREAM_SHARDS".into(),
                value: "0".into(),
                reason: "must be at least 1 and equal the contacts service's value".into(),
            });
        }
        let cfg = Self {
            database_url: config::required(
                "DATABASE_URL",
                "set it to the automations database, e.g. postgres://postgres@127.0.0.1:5432/meisa_automations",
            )?,
            redis_url: config::required(
                "REDIS_URL",
                "set it to the Redis server the contacts relay writes to, e.g. redis://127.0.0.1:6379",
            )?,
            grpc_addr: config::parsed(
                "MEISA_GRPC_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50052)),
            )?,
            contacts_url: url("MEISA_CONTACTS_URL", "http://127.0.0.1:50051")?,
            mailer_url: url("MEISA_MAILER_URL", "http://127.0.0.1:50053")?,
            stream_prefix: config::optional("MEISA_STREAM_PREFIX")
                .unwrap_or_else(|| "meisa".into()),
            shards,
            consumer: ConsumerConfig {
                group: config::optional("MEISA_CONSUMER_GROUP")
                    .unwrap_or_else(|| "automations".into()),
                name: config::consumer_name("automations"),
                batch: config::parsed("MEISA_CONSUMER_BATCH", 100usize)?.clamp(1, 1000),
                block: config::duration("MEISA_CONSUMER_BLOCK", Duration::from_secs(1))?,
                claim_idle: config::duration("MEISA_CONSUMER_CLAIM_IDLE", Duration::from_secs(30))?,
                max_deliveries: config::parsed("MEISA_CONSUMER_MAX_DELIVERIES", 5usize)?.max(1),
                shard_lease: config::duration("MEISA_CONSUMER_LEASE", Duration::from_secs(15))?,
            },
            scheduler_poll: config::duration("MEISA_SCHEDULER_POLL", Duration::from_secs(1))?,
            sweep_interval: config::duration("MEISA_SWEEP_INTERVAL", Duration::from_secs(60))?,
            action_workers: config::parsed("MEISA_ACTION_WORKERS", 32usize)?.max(1),
            scheduler_workers: config::parsed("MEISA_SCHEDULER_WORKERS", 32usize)?.max(1),
            job_lease: config::duration("MEISA_JOB_LEASE", Duration::from_secs(60))?,
            action_max_attempts: config::parsed("MEISA_ACTION_MAX_ATTEMPTS", 20i32)?.max(1),
            processed_retention: config::duration(
                "MEISA_PROCESSED_RETENTION",
                Duration::from_secs(14 * 86_400),
            )?,
            db_max_connections: config::parsed("MEISA_DB_MAX_CONNECTIONS", 32u32)?.max(4),
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Defaults for tests and local tools: gRPC on an ephemeral port, fast timings.
    pub fn local(
        database_url: String,
        redis_url: String,
        stream_prefix: String,
        contacts_url: String,
        mailer_url: String,
    ) -> Self {
        Self {
            database_url,
            redis_url,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            contacts_url,
            mailer_url,
            stream_prefix,
            shards: 4,
            consumer: ConsumerConfig {
                group: "automations".into(),
                name: config::consumer_name("automations"),
                batch: 100,
                block: Duration::from_millis(500),
                claim_idle: Duration::from_secs(2),
                max_deliveries: 5,
                shard_lease: Duration::from_secs(3),
            },
            scheduler_poll: Duration::from_millis(100),
            sweep_interval: Duration::from_secs(1),
            action_workers: 8,
            scheduler_workers: 8,
            job_lease: Duration::from_secs(15),
            action_max_attempts: 20,
            processed_retention: Duration::from_secs(14 * 86_400),
            db_max_connections: 16,
        }
    }

    /// Timings that would make the service do work twice or stall.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |name: &str, value: Duration, reason: String| ConfigError::Invalid {
            name: name.into(),
            value: format!("{value:?}"),
            reason,
        };
        // A job's calls are bounded by the client timeout; a lease shorter than that could let a
        // second worker claim a job whose first run is still in flight.
        if self.job_lease <= crate::clients::CALL_TIMEOUT {
            return Err(invalid(
                "MEISA_JOB_LEASE",
                self.job_lease,
                format!(
                    "must be longer than the {:?} bound on one call to contacts or the mailer",
                    crate::clients::CALL_TIMEOUT
                ),
            ));
        }
        if self.consumer.shard_lease < Duration::from_millis(300) {
            return Err(invalid(
                "MEISA_CONSUMER_LEASE",
                self.consumer.shard_lease,
                "must be at least 300ms (it is renewed every third of it)".into(),
            ));
        }
        if self.consumer.block >= self.consumer.shard_lease {
            return Err(invalid(
                "MEISA_CONSUMER_BLOCK",
                self.consumer.block,
                "must be shorter than MEISA_CONSUMER_LEASE so a reader notices a lost shard in time"
                    .into(),
            ));
        }
        if self.sweep_interval.is_zero() || self.scheduler_poll.is_zero() {
            return Err(invalid(
                "MEISA_SWEEP_INTERVAL / MEISA_SCHEDULER_POLL",
                Duration::ZERO,
                "must be longer than zero".into(),
            ));
        }
        Ok(())
    }
}

fn url(name: &str, default: &str) -> Result<String, ConfigError> {
    let v = config::optional(name).unwrap_or_else(|| default.into());
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            name: name.into(),
            value: v,
            reason: "must be an http:// or https:// URL of the gRPC service".into(),
        });
    }
    Ok(v)
}
