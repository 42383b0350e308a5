//! What a batch read from a shard means here. The read loop is `meisa_stream`'s
//! ([`read_until_stopped`]: pending entries first, with their delivery counts, then new ones;
//! what a dead reader left is claimed). Each batch is applied in runs ([`apply::run`]) and each
//! run acknowledged after its commit (XACK only after commit).
//!
//! Failures: transient ones (a dependency down) are retried in place and are not deliveries; a
//! run of several entries that fails otherwise is applied again one entry at a time, so the entry
//! at fault fails alone; that entry stays pending, is read again with its delivery count, and
//! after MEISA_CONSUMER_MAX_DELIVERIES deliveries goes to `dead_letters` (logged at error level
//! with its event id) and is acknowledged.

use std::{future::Future, sync::Arc, time::Duration};

use meisa_stream::{
    Batches, DeadLetterPolicy, Entry, Group, Handled, ReadOptions, read_until_stopped,
};
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use super::{
    Consumer,
    apply::{self, Item, MAX_RUN},
    gap,
};
use crate::error::{Error, Result};

/// Reads the shard until `stop` (the loop is `meisa_stream`'s, the same as the mailer's).
pub(super) async fn run(c: Arc<Consumer>, shard: u32, stop: CancellationToken) {
    let group = Group::new(&c.prefix, shard, &c.cfg.group, &c.cfg.name);
    let options = ReadOptions {
        batch: c.cfg.batch,
        block: c.cfg.block,
        claim_idle: c.cfg.claim_idle,
    };
    read_until_stopped(&c.redis, &group, &options, &*c, shard, &stop).await;
}

impl Batches for Consumer {
    type Error = Error;

    async fn handle(
        &self,
        shard: u32,
        group: &Group,
        conn: &mut MultiplexedConnection,
        entries: Vec<Entry>,
        deliveries: Vec<usize>,
        stop: &CancellationToken,
    ) -> Result<Handled> {
        let policy = DeadLetterPolicy {
            max_deliveries: self.cfg.max_deliveries,
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
        apply_batch(self, shard, group, conn, &batch, stop).await
    }
}

/// What was read, side by side: stream ids, delivery counts, and the items to apply.
struct Batch<'a> {
    ids: &'a [String],
    deliveries: &'a [usize],
    items: &'a [Item],
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
) -> Result<Handled> {
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
            Err(e) if e.is_transient() => return Ok(Handled::Stopped),
            Err(e) if run.len() > 1 => {
                tracing::debug!(shard, error = %e, "a run of changes failed; applying them one by one");
                run_len = 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(shard, entry = %batch.ids[start], deliveries = batch.deliveries[start], error = %e, "change not applied; it will be delivered again");
                return Ok(Handled::Failed);
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
                Err(e) if e.is_transient() => return Ok(Handled::Stopped),
                Err(e) => {
                    tracing::warn!(shard, entry = %batch.ids[start], error = %e, "gap not replayed; the change will be delivered again");
                    return Ok(Handled::Failed);
                }
            }
            replayed_before = Some(start);
        }
    }
    Ok(Handled::All)
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
