//! Moves outbox rows to the shard streams (`meisa_stream::key`), in order, exactly once.
//!
//! One relay works at a time across all replicas: it holds a Postgres advisory lock on the
//! connection it does all its work on, so if that connection dies the lock goes with it and
//! another replica takes over. It wakes on NOTIFY from committing transactions and polls as a
//! fallback (a lost notification only delays, never loses).
//!
//! A publish is a copy: the outbox row holds the event as the stream carries it (with its shard),
//! and [`meisa_stream::Publisher`] appends the `seq` the row was numbered with.
//!
//! Exactly once: each entry is added with stream id `{seq}-0`. If the relay dies after XADD but
//! before marking the row published, the retry's XADD is refused by Redis ("equal or smaller than
//! the target stream top item"), the publisher skips it, and the row is simply marked. If it dies
//! before XADD, the row is still unpublished and goes out on the retry.

use std::{sync::Arc, time::Duration};

use meisa_stream::{Published, Publisher};
use redis::aio::ConnectionManager;
use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use crate::store::{OUTBOX_CHANNEL, StoreError, changes::RelayWake, outbox};

/// The advisory lock the leading relay holds ("meisarly"); a test waits for it to be taken.
pub const RELAY_LOCK_KEY: i64 = 0x6d65_6973_6172_6c79;
const BATCH: i64 = 1000;

#[derive(Clone)]
pub struct RelayConfig {
    pub stream_prefix: String,
    pub stream_maxlen: u64,
    pub poll_interval: Duration,
    pub retention: Duration,
}

pub async fn run(
    pool: PgPool,
    wake: Arc<RelayWake>,
    redis: ConnectionManager,
    config: RelayConfig,
    shutdown: CancellationToken,
) {
    let publisher = Publisher::new(config.stream_prefix.clone(), config.stream_maxlen);
    let mut redis = redis;
    while !shutdown.is_cancelled() {
        let led = lead(&pool, &wake, &mut redis, &publisher, &config, &shutdown).await;
        wake.set_leading(false);
        match led {
            Ok(()) => {}
            // A row that cannot be published stops the relay at it (publishing around it would
            // leave a hole in the shard's seq): someone has to look.
            Err(RelayError::Store(StoreError::Corrupt(e))) => {
                tracing::error!(error = %e, "relay stopped at a corrupt outbox row; retrying");
            }
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
    #[error(transparent)]
    Stream(#[from] meisa_stream::StreamError),
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
    publisher: &Publisher,
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
            let n = publish_batch(&mut conn, redis, publisher).await?;
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
    publisher: &Publisher,
) -> Result<usize, RelayError> {
    let pending = outbox::claim_and_number(conn, BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    for shard_rows in pending.chunk_by(|a, b| a.shard == b.shard) {
        let shard = shard_rows[0].shard;
        let entries: Vec<Published<'_>> = shard_rows
            .iter()
            .map(|p| Published {
                seq: p.seq,
                stored: &p.payload,
            })
            .collect();
        let added = publisher.publish(redis, shard, &entries).await?;
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
