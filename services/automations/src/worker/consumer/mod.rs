//! The change consumer (DESIGN §4): reads `{prefix}:changes:{shard}` with consumer group
//! `automations`, applies each event in one Postgres transaction with all its effects, then
//! acknowledges it. One concern per module:
//!
//! - [`lease`]: which shards this process reads. Shards are leased (`shard_leases`): each shard
//!   is read by one process at a time, and the shards spread evenly over the live replicas
//!   (`consumers` heartbeats). That keeps per-contact order and makes a gap in `seq` meaningful.
//! - [`read`]: what a batch read from a shard means (the read loop is `meisa_stream`'s): runs
//!   applied, each acknowledged after its commit, a failing entry isolated.
//! - [`apply`]: a run of entries in one transaction, in seq order, with the dedup and the dead
//!   letters (a single entry is a run of one).
//! - [`gap`]: replaying a range of seqs the stream lost from the contacts service.
//!
//! This module wires them: a supervisor that starts a reader for each shard the lease gives this
//! process and stops the reader of a shard it lost.
//!
//! Correctness does not depend on the lease: every run's transaction locks the shard's row in
//! `consumer_shards` and applies only `seq == last + 1` (older seqs are skipped, a jump is a gap),
//! and records each event id in `processed_events`, so a duplicate (a redelivery, a replayed
//! event, an XADDed copy) has no effect.
//!
//! Dying half-way: before the commit nothing is written and the entries are pending (read
//! again); between commit and XACK they are read again and skipped (their seqs are applied, their
//! event ids recorded).

mod apply;
mod gap;
mod lease;
mod read;

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::Wakers;
use crate::{clients::Contacts, config::ConsumerConfig, store::Store};

pub struct Consumer {
    pub store: Store,
    pub redis: redis::Client,
    pub contacts: Contacts,
    pub prefix: String,
    pub shards: u32,
    pub cfg: ConsumerConfig,
    pub wakers: Wakers,
}

/// Runs until `shutdown`: leases shards, reads the ones it holds, and on shutdown stops reading,
/// finishes the batch in hand, and gives its shards back.
pub async fn run(c: Arc<Consumer>, shutdown: CancellationToken) {
    let (tx, mut rx) = watch::channel(BTreeSet::<u32>::new());
    let lease_stop = CancellationToken::new();
    let leases = tokio::spawn(lease::run(c.clone(), tx, lease_stop.clone()));
    let mut readers: HashMap<u32, (CancellationToken, JoinHandle<()>)> = HashMap::new();
    tracing::info!(consumer = %c.cfg.name, group = %c.cfg.group, shards = c.shards, "change consumer starting");
    loop {
        let owned = rx.borrow_and_update().clone();
        readers.retain(|shard, (stop, handle)| {
            let keep = owned.contains(shard) && !handle.is_finished();
            if !keep {
                stop.cancel();
            }
            keep
        });
        for shard in owned {
            if readers.contains_key(&shard) {
                continue;
            }
            let stop = shutdown.child_token();
            let handle = tokio::spawn(read::run(c.clone(), shard, stop.clone()));
            readers.insert(shard, (stop, handle));
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = rx.changed() => if changed.is_err() { break },
            // A reader that stopped on its own (it should not) is restarted.
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    for (_, (stop, handle)) in readers.drain() {
        stop.cancel();
        let _ = handle.await;
    }
    lease_stop.cancel();
    let _ = leases.await;
    tracing::info!("change consumer stopped");
}
