//! Shard leases: which shards this process reads. Every third of MEISA_CONSUMER_LEASE it records
//! that it is alive, renews the shards it holds, and gives back or takes shards so that each live
//! replica holds its fair share. The shards it holds go to the supervisor through a watch channel.
//!
//! A process that cannot reach the database for a whole lease stops reading every shard: others
//! may hold them by then. A process that dies keeps its leases until they run out; a process that
//! stops gives them back at once.

use std::{collections::BTreeSet, sync::Arc, time::Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Consumer;
use crate::store::consumer as cstore;

/// How many shards each of `live` replicas should hold (the first ones round up).
fn fair_share(shards: u32, live: u64) -> usize {
    let share = u64::from(shards).div_ceil(live.max(1));
    // At most `shards`, a u32: it fits a usize on every target this builds for.
    usize::try_from(share).unwrap_or(usize::MAX)
}

pub(super) async fn run(
    c: Arc<Consumer>,
    tx: watch::Sender<BTreeSet<u32>>,
    stop: CancellationToken,
) {
    let (group, me, lease) = (&c.cfg.group, &c.cfg.name, c.cfg.shard_lease);
    let every = lease / 3;
    let mut last_ok = Instant::now();
    let mut ensured = false;
    loop {
        let round = async {
            if !ensured {
                cstore::ensure_shards(&c.store.pool, group, c.shards).await?;
                ensured = true;
            }
            let live = cstore::heartbeat(&c.store.pool, group, me, lease).await?;
            let fair = fair_share(c.shards, live);
            let mut owned = cstore::renew(&c.store.pool, group, me, lease).await?;
            owned.sort_unstable();
            if owned.len() > fair {
                let extra = owned.split_off(fair);
                cstore::release(&c.store.pool, group, me, Some(&extra)).await?;
                tracing::info!(shards = ?extra, "released shards to other replicas");
            } else if owned.len() < fair {
                let got =
                    cstore::acquire(&c.store.pool, group, me, fair - owned.len(), lease).await?;
                if !got.is_empty() {
                    tracing::info!(shards = ?got, "acquired shards");
                }
                owned.extend(got);
            }
            Ok::<_, sqlx::Error>(owned.into_iter().collect::<BTreeSet<u32>>())
        }
        .await;
        match round {
            Ok(owned) => {
                last_ok = Instant::now();
                tx.send_if_modified(|cur| {
                    let changed = *cur != owned;
                    *cur = owned;
                    changed
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "shard lease round failed");
                // Past the lease, others may hold our shards: stop reading them.
                if last_ok.elapsed() >= lease {
                    tx.send_if_modified(|cur| {
                        let changed = !cur.is_empty();
                        cur.clear();
                        changed
                    });
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if let Err(e) = cstore::release(&c.store.pool, group, me, None).await {
        tracing::warn!(error = %e, "could not release shard leases; they expire on their own");
    }
    let _ = cstore::forget_consumer(&c.store.pool, group, me).await;
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn shares_round_up_so_every_shard_has_a_reader() {
        assert_eq!(fair_share(16, 1), 16);
        assert_eq!(fair_share(16, 3), 6);
        assert_eq!(fair_share(4, 8), 1);
        assert_eq!(
            fair_share(4, 0),
            4,
            "no live replica recorded yet: this one takes all"
        );
    }
}
