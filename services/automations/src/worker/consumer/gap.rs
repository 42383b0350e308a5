//! Gaps (Redis lost entries): Postgres is the source of truth (DESIGN §4), so the missing range
//! is replayed from the contacts service's `ReplayChanges`, in order, through the same runs as
//! stream entries (events already applied are skipped). Seqs the contacts service no longer has
//! (past its outbox retention) are recorded as dead letters, and the shard moves on.
//!
//! Dying half-way: each run of replayed events commits with the shard's last seq, so a restart
//! replays only what is still missing.

use std::ops::RangeInclusive;

use super::{
    Consumer,
    apply::{self, Item, MAX_RUN},
};
use crate::{
    error::{Error, Result},
    store::consumer as cstore,
    worker::Wake,
};

/// Applies `seqs` from the contacts service, in order.
pub(super) async fn replay(c: &Consumer, shard: u32, seqs: RangeInclusive<u64>) -> Result<Wake> {
    let (from, to) = (*seqs.start(), *seqs.end());
    tracing::warn!(
        shard,
        from,
        to,
        "gap in the change stream; replaying from the contacts service"
    );
    metrics::counter!("meisa_automations_gap_replays_total").increment(1);
    let mut wake = Wake::default();
    let mut next = from;
    while next <= to {
        let events = c
            .contacts
            .replay(shard, next, to)
            .await
            .map_err(Error::Contacts)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            let mut tx = c.store.pool.begin().await?;
            let applied = cstore::lock_shard(&mut tx, &c.cfg.group, shard).await?;
            if applied.is_none_or(|l| l < to) {
                apply::record_lost(&mut tx, &c.cfg.group, shard, next..=to).await?;
                cstore::set_last_seq(&mut tx, &c.cfg.group, shard, to).await?;
            }
            tx.commit().await?;
            break;
        };
        let items: Vec<Item> = events
            .into_iter()
            .filter(|e| e.seq >= next && e.seq <= to)
            .map(Item::replayed)
            .collect();
        // A jump inside what the contacts service answered is a seq it no longer has: recorded
        // as lost by the run (`fill_gaps` false), not replayed again.
        for run in items.chunks(MAX_RUN) {
            wake.merge(apply::run(c, shard, run, false).await?.wake);
        }
        if last < next {
            break;
        }
        next = last + 1;
    }
    Ok(wake)
}
