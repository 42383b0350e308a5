//! One shard's read loop, on a `meisa_stream::Group`: this consumer's pending entries first
//! (with their delivery counts), then new ones; entries a dead reader left are claimed
//! (XAUTOCLAIM) when the shard is taken and then every half MEISA_CONSUMER_CLAIM_IDLE. Each batch
//! is applied in runs ([`apply::run`]) and each run acknowledged after its commit (XACK only
//! after commit).
//!
//! Failures: transient ones (a dependency down) are retried in place and are not deliveries; a
//! run of several entries that fails otherwise is applied again one entry at a time, so the entry
//! at fault fails alone; that entry stays pending, is read again with its delivery count, and
//! after MEISA_CONSUMER_MAX_DELIVERIES deliveries goes to `dead_letters` (logged at error level
//! with its event id) and is acknowledged.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use meisa_stream::{DeadLetterPolicy, Group};
use redis::{AsyncConnectionConfig, aio::MultiplexedConnection};
use tokio_util::sync::CancellationToken;

use super::{
    Consumer,
    apply::{self, Item, MAX_RUN},
    gap,
};
use crate::error::Result;

/// Reads the shard until `stop`, reconnecting (with backoff) after a failure.
pub(super) async fn run(c: Arc<Consumer>, shard: u32, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        match read_shard(&c, shard, &stop).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(shard, error = %e, "shard reader failed; reconnecting");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::debug!(shard, "shard reader stopped");
}

async fn read_shard(c: &Consumer, shard: u32, stop: &CancellationToken) -> Result<()> {
    let group = Group::new(&c.prefix, shard, &c.cfg.group, &c.cfg.name);
    let policy = DeadLetterPolicy {
        max_deliveries: c.cfg.max_deliveries,
    };
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(Some(c.cfg.block + Duration::from_secs(5)))
        .set_connection_timeout(Some(Duration::from_secs(3)));
    let mut conn = c
        .redis
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    group.create(&mut conn).await?;
    // Whoever read this shard before is gone or gave it up: take its pending entries now, and
    // read this consumer's own pending entries before new ones.
    group
        .reclaim(&mut conn, Duration::ZERO, c.cfg.batch)
        .await?;
    let mut check_pending = true;
    let mut last_claim = Instant::now();
    let mut failures = 0u32;
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        if last_claim.elapsed() >= c.cfg.claim_idle / 2 {
            if group
                .reclaim(&mut conn, c.cfg.claim_idle, c.cfg.batch)
                .await?
                > 0
            {
                check_pending = true;
            }
            last_claim = Instant::now();
        }
        let (entries, deliveries) = if check_pending {
            let entries = group.read_pending(&mut conn, c.cfg.batch).await?;
            if entries.is_empty() {
                check_pending = false;
                continue;
            }
            let counts = group.delivery_counts(&mut conn, &entries).await?;
            (entries, counts)
        } else {
            let entries = group.read_new(&mut conn, c.cfg.batch, c.cfg.block).await?;
            let once = vec![1; entries.len()];
            (entries, once)
        };
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let items: Vec<Item> = entries
            .into_iter()
            .zip(deliveries.iter())
            .map(|(e, n)| Item::from_entry(e, *n, &policy))
            .collect();
        let batch = Batch {
            ids: &ids,
            deliveries: &deliveries,
            items: &items,
        };
        match apply_batch(c, shard, &group, &mut conn, &batch, stop).await? {
            Applied::All => failures = 0,
            Applied::Stopped => return Ok(()),
            Applied::Failed => {
                check_pending = true;
                failures += 1;
                let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// What was read, side by side: stream ids, delivery counts, and the items to apply.
struct Batch<'a> {
    ids: &'a [String],
    deliveries: &'a [usize],
    items: &'a [Item],
}

enum Applied {
    All,
    /// Stopping while a dependency is down: the rest is left pending.
    Stopped,
    /// An entry failed; it and those after it are left pending.
    Failed,
}

/// Applies the batch in runs and acknowledges each run after its commit. The batch in hand is
/// finished even when stopping: these entries are in flight.
async fn apply_batch(
    c: &Consumer,
    shard: u32,
    group: &Group,
    conn: &mut MultiplexedConnection,
    batch: &Batch<'_>,
    stop: &CancellationToken,
) -> Result<Applied> {
    let mut start = 0;
    let mut run_len = MAX_RUN;
    // The entry whose gap was replayed: a gap still before it is not replayed twice, it is
    // recorded as lost.
    let mut replayed_before = None;
    while start < batch.items.len() {
        let end = (start + run_len).min(batch.items.len());
        let run = &batch.items[start..end];
        let fill_gaps = replayed_before != Some(start);
        let attempt = retrying(stop, shard, run[0].seq(), || {
            apply::run(c, shard, run, fill_gaps)
        })
        .await;
        let outcome = match attempt {
            Ok(o) => o,
            Err(e) if e.is_transient() => return Ok(Applied::Stopped),
            Err(e) if run.len() > 1 => {
                tracing::debug!(shard, error = %e, "a run of changes failed; applying them one by one");
                run_len = 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(shard, entry = %batch.ids[start], deliveries = batch.deliveries[start], error = %e, "change not applied; it will be delivered again");
                return Ok(Applied::Failed);
            }
        };
        // At once, not after the batch: the workers start while the rest is applied.
        c.wakers.wake(outcome.wake);
        let done = start + outcome.done;
        group
            .ack(conn, batch.ids[start..done].iter().map(String::as_str))
            .await?;
        start = done;
        if let Some(gap) = outcome.gap {
            let replay = retrying(stop, shard, run[outcome.done].seq(), || {
                gap::replay(c, shard, gap.clone())
            })
            .await;
            match replay {
                Ok(w) => c.wakers.wake(w),
                Err(e) if e.is_transient() => return Ok(Applied::Stopped),
                Err(e) => {
                    tracing::warn!(shard, entry = %batch.ids[start], error = %e, "gap not replayed; the change will be delivered again");
                    return Ok(Applied::Failed);
                }
            }
            replayed_before = Some(start);
        }
    }
    Ok(Applied::All)
}

/// Retries `attempt` in place while it fails transiently (a dependency down: that is not the
/// entry's fault, and not a delivery), with backoff; gives the error back when stopping.
async fn retrying<T, F, Fut>(
    stop: &CancellationToken,
    shard: u32,
    seq: Option<u64>,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(shard, seq, error = %e, "transient failure applying changes; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return Err(e),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}
