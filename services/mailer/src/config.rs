//! Configuration, from the environment only (DESIGN §7). Every error names the variable.

use std::{path::PathBuf, time::Duration};

use meisa_runtime::config::{self, ConfigError, Secret};

use crate::{transport::SmtpUrl, worker::DeliverySettings};

/// Used when MEISA_UNSUBSCRIBE_SECRET is unset, with a warning at start: fine for `make dev`,
/// never for production (anyone could forge unsubscribe links).
const DEV_SECRET: &str = "meisa-dev-unsubscribe-secret-do-not-use-in-production";

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: Secret,
    /// `host:port`; port 0 picks a free one (tests).
    pub grpc_addr: String,
    /// The contacts service, for Unsubscribe (SetSubscribed) and previews by contact id.
    pub contacts_url: String,
    /// None: write `.eml` files under `data_dir` instead of sending.
    pub smtp: Option<SmtpUrl>,
    pub data_dir: PathBuf,
    /// Where `/u/{token}` is served (the gateway), without a trailing slash.
    pub public_url: String,
    pub unsubscribe_secret: Secret,
    pub dev_secret: bool,
    /// The delivery workers: how many, their claims, retries and timeouts.
    pub delivery: DeliverySettings,
    pub db_max_connections: u32,
    /// The change-stream consumer that erases deleted contacts. Always set by `from_env` (for
    /// `serve`); `None` in `local`, for in-process callers that do not need erasure.
    pub stream: Option<StreamConfig>,
}

/// The change stream as the mailer reads it (DESIGN §4), with consumer group `mailer`.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub redis_url: Secret,
    /// Streams are `{prefix}:changes:{shard}`, as the contacts relay writes them.
    pub prefix: String,
    /// Must equal the contacts service's MEISA_STREAM_SHARDS.
    pub shards: u32,
    /// This process's consumer name in the group; unique per process.
    pub consumer: String,
    /// Entries read at once (and handled in one transaction).
    pub batch: usize,
    /// An entry delivered this many times without being handled goes to `dead_letters`.
    pub max_deliveries: usize,
    /// Entries left pending this long by a consumer are taken over (its process died).
    pub claim_idle: Duration,
    /// How often a replica takes shards nobody reads and hands back those above its share.
    pub rebalance: Duration,
}

impl StreamConfig {
    fn from_env() -> Result<Self, ConfigError> {
        let redis_url = config::required(
            "REDIS_URL",
            "set it to the Redis server of the change streams, e.g. redis://127.0.0.1:6379",
        )?;
        redis::Client::open(redis_url.as_str()).map_err(|e| ConfigError::Invalid {
            name: "REDIS_URL".into(),
            value: redact_url(&redis_url),
            reason: e.to_string(),
        })?;
        let shards: u32 = config::parsed("MEISA_STREAM_SHARDS", 16)?;
        if shards == 0 {
            return Err(ConfigError::Invalid {
                name: "MEISA_STREAM_SHARDS".into(),
                value: "0".into(),
                reason: "must be at least 1 and equal the contacts service's value".into(),
            });
        }
        Ok(Self {
            redis_url: Secret::new(redis_url),
            prefix: config::optional("MEISA_STREAM_PREFIX").unwrap_or_else(|| "meisa".into()),
            shards,
            consumer: config::consumer_name("mailer"),
            batch: config::parsed("MEISA_CONSUMER_BATCH", 100usize)?.clamp(1, 1000),
            max_deliveries: config::parsed("MEISA_CONSUMER_MAX_DELIVERIES", 5usize)?.max(1),
            claim_idle: config::duration("MEISA_CONSUMER_CLAIM_IDLE", Duration::from_secs(30))?,
            rebalance: config::duration("MEISA_CONSUMER_REBALANCE", Duration::from_secs(5))?,
        })
    }

    /// For tests: `shards` streams under `prefix`, quick to take over and to rebalance.
    pub fn local(redis_url: &str, prefix: &str, shards: u32) -> Self {
        Self {
            redis_url: Secret::new(redis_url),
            prefix: prefix.into(),
            shards,
            consumer: config::consumer_name("mailer"),
            batch: 100,
            max_deliveries: 5,
            claim_idle: Duration::from_secs(1),
            rebalance: Duration::from_millis(200),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let database_url = config::required(
            "DATABASE_URL",
            "set it to the mailer's Postgres database, e.g. postgres://postgres@127.0.0.1:5432/meisa_mailer",
        )?;
        let smtp = match config::optional("MEISA_SMTP_URL") {
            None => None,
            Some(v) => Some(SmtpUrl::parse(&v).map_err(|reason| ConfigError::Invalid {
                name: "MEISA_SMTP_URL".into(),
                value: redact_url(&v),
                reason,
            })?),
        };
        let public_url =
            config::optional("MEISA_PUBLIC_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "MEISA_PUBLIC_URL".into(),
                value: public_url,
                reason: "must start with http:// or https://".into(),
            });
        }
        let (unsubscribe_secret, dev_secret) = match config::optional("MEISA_UNSUBSCRIBE_SECRET") {
            Some(s) if s.len() < 16 => {
                return Err(ConfigError::Invalid {
                    name: "MEISA_UNSUBSCRIBE_SECRET".into(),
                    value: "***".into(),
                    reason: "must be at least 16 characters (32 random bytes, e.g. `openssl rand -hex 32`)".into(),
                });
            }
            Some(s) => (Secret::new(s), false),
            None => (Secret::new(DEV_SECRET), true),
        };
        let workers: usize = config::parsed("MEISA_MAIL_WORKERS", 4)?;
        let batch_size: usize = config::parsed("MEISA_MAIL_BATCH", 16)?;
        let cfg = Config {
            database_url: Secret::new(database_url),
            grpc_addr: config::optional("MEISA_GRPC_ADDR")
                .unwrap_or_else(|| "127.0.0.1:50053".into()),
            contacts_url: config::optional("MEISA_CONTACTS_URL")
                .unwrap_or_else(|| "http://127.0.0.1:50051".into()),
            smtp,
            data_dir: config::optional("MEISA_DATA_DIR")
                .unwrap_or_else(|| ".dev/mail".into())
                .into(),
            public_url: public_url.trim_end_matches('/').to_string(),
            unsubscribe_secret,
            dev_secret,
            delivery: DeliverySettings {
                workers: workers.max(1),
                batch_size: batch_size.clamp(1, 500),
                lease: config::duration("MEISA_MAIL_LEASE", Duration::from_secs(300))?,
                retry_deadline: config::duration(
                    "MEISA_MAIL_RETRY_DEADLINE",
                    Duration::from_secs(24 * 3600),
                )?,
                retry_base: config::duration("MEISA_MAIL_RETRY_BASE", Duration::from_secs(30))?,
                retry_max: config::duration("MEISA_MAIL_RETRY_MAX", Duration::from_secs(3600))?,
                smtp_timeout: config::duration("MEISA_SMTP_TIMEOUT", Duration::from_secs(60))?,
                poll_interval: config::duration("MEISA_MAIL_POLL", Duration::from_secs(1))?,
            },
            db_max_connections: config::parsed("MEISA_DB_MAX_CONNECTIONS", 16)?,
            stream: Some(StreamConfig::from_env()?),
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// For tests: a local database, files transport, free port, short timings.
    pub fn local(database_url: &str) -> Config {
        Config {
            database_url: Secret::new(database_url),
            grpc_addr: "127.0.0.1:0".into(),
            contacts_url: "http://127.0.0.1:1".into(),
            smtp: None,
            data_dir: std::env::temp_dir()
                .join(format!("meisa-mail-{}", uuid::Uuid::new_v4().simple())),
            public_url: "http://127.0.0.1:8080".into(),
            unsubscribe_secret: Secret::new("test-unsubscribe-secret-0123456789"),
            dev_secret: false,
            delivery: DeliverySettings {
                workers: 2,
                batch_size: 16,
                lease: Duration::from_secs(30),
                retry_deadline: Duration::from_secs(3600),
                retry_base: Duration::from_millis(50),
                retry_max: Duration::from_secs(1),
                smtp_timeout: Duration::from_secs(10),
                poll_interval: Duration::from_millis(100),
            },
            db_max_connections: 8,
            stream: None,
        }
    }

    /// A claim must outlive the delivery it covers, or a slow send could be claimed (and sent)
    /// again by another worker.
    fn check(&self) -> Result<(), ConfigError> {
        if let Some(stream) = &self.stream
            && (stream.claim_idle.is_zero() || stream.rebalance.is_zero())
        {
            return Err(ConfigError::Invalid {
                name: "MEISA_CONSUMER_CLAIM_IDLE / MEISA_CONSUMER_REBALANCE".into(),
                value: "0s".into(),
                reason: "must be longer than zero".into(),
            });
        }
        let d = &self.delivery;
        if d.lease <= d.smtp_timeout {
            return Err(ConfigError::Invalid {
                name: "MEISA_MAIL_LEASE".into(),
                value: format!("{:?}", d.lease),
                reason: format!(
                    "must be longer than MEISA_SMTP_TIMEOUT ({:?}), or a slow delivery could be claimed and sent twice",
                    d.smtp_timeout
                ),
            });
        }
        Ok(())
    }
}

/// The URL without its password, for error messages.
fn redact_url(v: &str) -> String {
    match url::Url::parse(v) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => v.to_string(),
    }
}
