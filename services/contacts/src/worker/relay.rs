//! Moves outbox rows to Redis streams `{prefix}:changes:{shard}`, in order, exactly once.
//!
//! One relay works at a time across all replicas: it holds a Postgres advisory lock on the
//! connection it does all its work on, so if that connection dies the lock goes with it and
//! another replica takes over. It wakes on NOTIFY from committing transactions and polls as a
//! fallback (a lost notification only delays, never loses).
//!
//! Exactly once: each entry is added with stream id `{seq}-0`. If the relay dies after XADD but
//! before marking the row published, the retry's XADD is refused by Redis ("equal or smaller than
//! the target stream top item") and the row is simply marked. If it dies before XADD, the row is
//! still unpublished and goes out on the retry.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::store::{OUTBOX_CHANNEL, StoreError, changes::RelayWake, outbox};

const RELAY_LOCK_KEY: i64 = 0x6d65_6973_6172_6c79; // "meisarly"
const BATCH: i64 = 1000;

/// Adds entries in order, skipping those a previous attempt already added.
const XADD_SCRIPT: &str = r"
local n = 0
for i = 2, #ARGV, 3 do
  local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i], 'seq', ARGV[i+1], 'event', ARGV[i+2])
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'equal or smaller', 1, true) then
      return redis.error_reply(r.err)
    end
  else
    n = n + 1
  end
end
return n
";

#[derive(Clone)]
pub struct RelayConfig {
    pub stream_prefix: String,
    pub stream_maxlen: u64,
    pub poll_interval: Duration,
    pub retention: Duration,
}

pub fn stream_key(prefix: &str, shard: u32) -> String {
    format!("{prefix}:changes:{shard}")
}

pub async fn run(
    pool: PgPool,
    wake: Arc<RelayWake>,
    redis: ConnectionManager,
    config: RelayConfig,
    shutdown: CancellationToken,
) {
    let script = redis::Script::new(XADD_SCRIPT);
    let mut redis = redis;
    while !shutdown.is_cancelled() {
        let led = lead(&pool, &wake, &mut redis, &script, &config, &shutdown).await;
        wake.set_leading(false);
        match led {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "relay interrupted; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
    tracing::info!("relay stopped");
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl From<sqlx::Error> for RelayError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Takes the lead if no one has it, then relays until shutdown or an error.
async fn lead(
    pool: &PgPool,
    wake: &RelayWake,
    redis: &mut ConnectionManager,
    script: &redis::Script,
    config: &RelayConfig,
    shutdown: &CancellationToken,
) -> Result<(), RelayError> {
    let mut conn = pool.acquire().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RELAY_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !got {
        return Ok(());
    }
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(OUTBOX_CHANNEL).await?;
    tracing::info!("relay leading: publishing outbox to redis");
    wake.set_leading(true);
    let mut last_prune = tokio::time::Instant::now();

    let result = async {
        loop {
            let n = publish_batch(&mut conn, redis, script, config).await?;
            if last_prune.elapsed() > config.retention.min(Duration::from_secs(60)) {
                let cutoff = chrono::Utc::now()
                    - chrono::Duration::from_std(config.retention)
                        .unwrap_or(chrono::Duration::days(7));
                let pruned = outbox::prune(pool, cutoff).await?;
                if pruned > 0 {
                    tracing::info!(pruned, "pruned published outbox rows past retention");
                }
                last_prune = tokio::time::Instant::now();
            }
            if n as i64 >= BATCH {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = listener.recv() => { r?; }
                _ = wake.woken() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
            }
        }
    }
    .await;
    // Unlock explicitly: the pooled connection outlives this function.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RELAY_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result
}

async fn publish_batch(
    conn: &mut sqlx::PgConnection,
    redis: &mut ConnectionManager,
    script: &redis::Script,
    config: &RelayConfig,
) -> Result<usize, RelayError> {
    let pending = outbox::claim_and_number(conn, BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    for shard_rows in pending.chunk_by(|a, b| a.shard == b.shard) {
        let shard = shard_rows[0].shard;
        let mut inv = script.key(stream_key(&config.stream_prefix, shard));
        inv.arg(config.stream_maxlen);
        for p in shard_rows {
            inv.arg(format!("{}-0", p.seq))
                .arg(p.seq)
                .arg(outbox::stream_event(p));
        }
        let added: i64 = inv.invoke_async(redis).await?;
        tracing::debug!(shard, added, total = shard_rows.len(), "published changes");
    }
    let ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
    outbox::mark_published(conn, &ids).await?;
    // How long the oldest change of this batch waited between commit and stream.
    if let Some(oldest) = pending.iter().map(|p| p.created_at).min() {
        let lag = (chrono::Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("meisa_contacts_relay_lag_seconds").record(lag);
    }
    metrics::counter!("meisa_contacts_relay_published_total").increment(pending.len() as u64);
    Ok(pending.len())
}
