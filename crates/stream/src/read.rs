//! One shard's read loop, the same for every consumer: connect, make sure the group exists, take
//! over what a previous reader left pending, read this consumer's pending entries (with their
//! delivery counts) before new ones, claim entries a dead reader left (XAUTOCLAIM) every half
//! `claim_idle`, and hand each batch to the consumer's [`Batches`]. What a batch means, and
//! when its entries are acknowledged (always after their effects are committed), is the
//! consumer's.
//!
//! A batch that failed is read again from the pending list after a pause that grows with each
//! failure in a row: that read counts a delivery, so the [`crate::DeadLetterPolicy`] can give up
//! on an entry that keeps failing. Redis being down ends the session; [`read_until_stopped`]
//! reconnects with backoff and says so once per outage at warn level.

use std::{
    fmt::Display,
    future::Future,
    time::{Duration, Instant},
};

use redis::{AsyncConnectionConfig, aio::MultiplexedConnection};
use tokio_util::sync::CancellationToken;

use crate::{Entry, Group, StreamError};

/// How a shard is read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Entries per read.
    pub batch: usize,
    /// How long one read waits for new entries. A stop does not wait for it.
    pub block: Duration,
    /// Pending entries idle this long belong to a reader that is gone.
    pub claim_idle: Duration,
}

/// How a consumer's batch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// Every entry was handled and acknowledged.
    All,
    /// Told to stop while a dependency was down: the rest stays pending.
    Stopped,
    /// An entry failed (the consumer logged it): it and those after it stay pending and are
    /// delivered again.
    Failed,
}

/// What a consumer does with what was read.
pub trait Batches: Sync {
    type Error: Display + From<StreamError> + Send;

    /// Handles `entries` (the shard's, in stream order; `deliveries[i]` is how often entry `i`
    /// was delivered) and acknowledges on `group` each entry whose effects are committed. The
    /// batch in hand is finished even when stopping: its entries are in flight.
    fn handle(
        &self,
        shard: u32,
        group: &Group,
        conn: &mut MultiplexedConnection,
        entries: Vec<Entry>,
        deliveries: Vec<usize>,
        stop: &CancellationToken,
    ) -> impl Future<Output = Result<Handled, Self::Error>> + Send;
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Reads the shard until `stop`, reconnecting (with backoff) after a failure.
pub async fn read_until_stopped<B: Batches>(
    redis: &redis::Client,
    group: &Group,
    options: &ReadOptions,
    batches: &B,
    shard: u32,
    stop: &CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        match read_shard(redis, group, options, batches, shard, stop, &mut retry).await {
            Ok(()) => break,
            Err(e) => {
                failures += 1;
                // Once per outage at warn: sixteen shards retrying every few seconds would bury
                // the log.
                if failures == 1 {
                    tracing::warn!(shard, error = %e, "shard reader failed; reconnecting");
                } else {
                    tracing::debug!(shard, error = %e, "shard reader still failing");
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
    tracing::debug!(shard, "shard reader stopped");
}

/// One connection's worth of reading; `Ok` when told to stop.
async fn read_shard<B: Batches>(
    redis: &redis::Client,
    group: &Group,
    options: &ReadOptions,
    batches: &B,
    shard: u32,
    stop: &CancellationToken,
    retry: &mut Duration,
) -> Result<(), B::Error> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(options.block + Duration::from_secs(5)));
    let mut conn = redis
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(StreamError::from)?;
    group.create(&mut conn).await?;
    // Whoever read this shard before is gone or gave it up: what it left pending is ours now.
    group
        .reclaim(&mut conn, Duration::ZERO, options.batch)
        .await?;
    *retry = FIRST_RETRY;
    let mut pending = true;
    let mut last_claim = Instant::now();
    let mut failures = 0u32;
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        // A reader that lost the shard without noticing (its session broke) may have left
        // entries pending under its name.
        if last_claim.elapsed() >= options.claim_idle / 2 {
            if group
                .reclaim(&mut conn, options.claim_idle, options.batch)
                .await?
                > 0
            {
                pending = true;
            }
            last_claim = Instant::now();
        }
        let (entries, deliveries) = if pending {
            let entries = group.read_pending(&mut conn, options.batch).await?;
            if entries.is_empty() {
                pending = false;
                continue;
            }
            let deliveries = group.delivery_counts(&mut conn, &entries).await?;
            (entries, deliveries)
        } else {
            let entries = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                read = group.read_new(&mut conn, options.batch, options.block) => read?,
            };
            let deliveries = vec![1; entries.len()];
            (entries, deliveries)
        };
        match batches
            .handle(shard, group, &mut conn, entries, deliveries, stop)
            .await?
        {
            Handled::All => failures = 0,
            Handled::Stopped => return Ok(()),
            Handled::Failed => {
                failures += 1;
                pending = true;
                let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}
