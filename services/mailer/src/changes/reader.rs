//! Reading one shard: connect, make sure the group exists, take over what a previous owner left
//! pending, read this consumer's pending entries before new ones, hand each batch to [`apply`],
//! and acknowledge what it handled. Redis being down is retried here, with backoff; the mailer
//! serves gRPC and sends mail meanwhile.

use std::{sync::Arc, time::Duration};

use meisa_stream::{Group, StreamError};
use redis::AsyncConnectionConfig;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    Consumer, GROUP,
    apply::{self, Failure},
};

/// How long one read waits for new entries. A stop does not wait for it.
const BLOCK: Duration = Duration::from_secs(2);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

pub(super) async fn read(c: Arc<Consumer>, shard: u32, stop: CancellationToken) {
    let group = Group::new(&c.cfg.prefix, shard, GROUP, &c.cfg.consumer);
    let mut retry = FIRST_RETRY;
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        match session(&c, shard, &group, &stop, &mut retry).await {
            Ok(()) => break,
            Err(e) => {
                failures += 1;
                // Once per outage at warn: sixteen shards retrying every few seconds would bury
                // the log.
                if failures == 1 {
                    tracing::warn!(shard, error = %e, "change stream unreachable; retrying");
                } else {
                    tracing::debug!(shard, error = %e, "change stream still unreachable");
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
async fn session(
    c: &Consumer,
    shard: u32,
    group: &Group,
    stop: &CancellationToken,
    retry: &mut Duration,
) -> Result<(), StreamError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
    let mut conn = c
        .redis
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    group.create(&mut conn).await?;
    // Whoever read this shard before is gone or gave it up: what it left pending is ours now.
    group
        .reclaim(&mut conn, Duration::ZERO, c.cfg.batch)
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
        if last_claim.elapsed() >= c.cfg.claim_idle {
            if group
                .reclaim(&mut conn, c.cfg.claim_idle, c.cfg.batch)
                .await?
                > 0
            {
                pending = true;
            }
            last_claim = Instant::now();
        }
        let (entries, deliveries) = if pending {
            let entries = group.read_pending(&mut conn, c.cfg.batch).await?;
            if entries.is_empty() {
                pending = false;
                continue;
            }
            let deliveries = group.delivery_counts(&mut conn, &entries).await?;
            (entries, deliveries)
        } else {
            let entries = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                read = group.read_new(&mut conn, c.cfg.batch, BLOCK) => read?,
            };
            let deliveries = vec![1; entries.len()];
            (entries, deliveries)
        };
        // The batch in hand is finished even when stopping: its entries are in flight.
        let handled = apply::handle(c, shard, &entries, &deliveries, stop).await;
        let done = entries.get(..handled.done).unwrap_or(&entries);
        group
            .ack(&mut conn, done.iter().map(|e| e.id.as_str()))
            .await?;
        match handled.failure {
            None => failures = 0,
            Some(Failure::Stopped) => return Ok(()),
            Some(Failure::Failed(e)) => {
                failures += 1;
                let at = entries.get(handled.done).map_or("?", |e| e.id.as_str());
                tracing::warn!(shard, entry = at, error = %e, "change not handled; it will be delivered again");
                // Read again from the pending list: that counts a delivery, and the dead-letter
                // policy gives up on an entry that keeps failing.
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
