//! Group commit, for every write to a contact: upserts, tag and subscription edits, erasures.
//! Writes are routed to a few writer lanes by a key of their contact (an upsert by workspace and
//! external id, else email; an edit or an erasure by the contact's id); each lane takes every
//! write waiting for it and applies them in one transaction ([`crate::store::write`]), so N
//! concurrent writes cost one commit instead of N. Routing by key also makes concurrent upserts
//! of one contact queue in one lane instead of fighting over its row lock. How an upsert and an
//! edit of one contact in two lanes stay ordered is said in [`crate::store::write`].
//!
//! Races between lanes (or replicas) that Postgres resolves by aborting a transaction — a
//! deadlock, or two creations of one email — retry the whole batch. If the process dies, the
//! transaction in flight rolls back and its callers, who got no answer, retry.

use std::time::Duration;

use meisa_runtime::errors::ApiError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{ContactsError, store_failure},
    store::{
        Store, StoreError,
        plan::{ItemResult, Outcome, Write, WriteItem},
        stable_hash,
        write::{apply_batch, apply_one_by_one},
    },
};

const MAX_BATCH: usize = 256;
const MAX_ATTEMPTS: u32 = 6;

type Reply = oneshot::Sender<Result<Outcome, ContactsError>>;

#[derive(Clone)]
pub struct Writer {
    lanes: Vec<mpsc::Sender<(WriteItem, Reply)>>,
}

impl Writer {
    pub fn start(
        store: Store,
        lanes: usize,
        shutdown: CancellationToken,
    ) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for lane in 0..lanes.max(1) {
            let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
            senders.push(tx);
            handles.push(tokio::spawn(run_lane(
                lane,
                store.clone(),
                rx,
                shutdown.clone(),
            )));
        }
        (Self { lanes: senders }, handles)
    }

    fn lane_for(&self, item: &WriteItem) -> &mpsc::Sender<(WriteItem, Reply)> {
        let key = match &item.write {
            Write::Upsert(input) => input.external_id.as_deref().unwrap_or(input.email.as_str()),
            Write::Edit { id, .. } | Write::Erase { id } => id,
        };
        let hash = stable_hash(&item.workspace_id, key);
        // A usize widens to u64, and the remainder is below the lane count, so it fits back.
        &self.lanes[(hash % self.lanes.len() as u64) as usize]
    }

    pub async fn write(&self, item: WriteItem) -> Result<Outcome, ContactsError> {
        let (tx, rx) = oneshot::channel();
        self.lane_for(&item)
            .send((item, tx))
            .await
            .map_err(|_| ContactsError::ShuttingDown)?;
        rx.await.map_err(|_| ContactsError::ShuttingDown)?
    }

    /// Many writes at once; one result per item, in order.
    pub async fn write_many(&self, items: Vec<WriteItem>) -> Vec<Result<Outcome, ContactsError>> {
        let mut waits = Vec::with_capacity(items.len());
        for item in items {
            let (tx, rx) = oneshot::channel();
            let sent = self.lane_for(&item).send((item, tx)).await.is_ok();
            waits.push((sent, rx));
        }
        let mut out = Vec::with_capacity(waits.len());
        for (sent, rx) in waits {
            out.push(if sent {
                rx.await.unwrap_or(Err(ContactsError::ShuttingDown))
            } else {
                Err(ContactsError::ShuttingDown)
            });
        }
        out
    }
}

async fn run_lane(
    lane: usize,
    store: Store,
    mut rx: mpsc::Receiver<(WriteItem, Reply)>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Finish what was queued before shutdown, then stop: queued callers get an answer.
        let first = tokio::select! {
            biased;
            msg = rx.recv() => msg,
            _ = shutdown.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let items: Vec<&WriteItem> = batch.iter().map(|(i, _)| i).collect();
        let started = std::time::Instant::now();
        let results = apply_with_retry(lane, &store, &items).await;
        metrics::histogram!("meisa_contacts_commit_batch_size").record(items.len() as f64);
        metrics::histogram!("meisa_contacts_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        match results {
            Ok(results) => {
                for ((item, reply), r) in batch.drain(..).zip(results) {
                    if matches!(item.write, Write::Upsert(_)) {
                        count_upsert(&r);
                    }
                    let _ = reply.send(r.map_err(ContactsError::Rejected));
                }
            }
            Err(e) => {
                tracing::error!(lane, error = %e, size = batch.len(), "write batch failed");
                let upserts = batch
                    .iter()
                    .filter(|(i, _)| matches!(i.write, Write::Upsert(_)))
                    .count();
                metrics::counter!("meisa_contacts_upserts_total", "outcome" => "failed")
                    .increment(upserts as u64);
                let err = store_failure(&e);
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(ContactsError::Rejected(err.clone())));
                }
            }
        }
    }
}

fn count_upsert(r: &ItemResult) {
    let outcome = match r {
        Ok(Outcome::Saved(s)) if s.created => "created",
        Ok(Outcome::Saved(s)) if s.changed.is_empty() => "unchanged",
        Ok(_) => "updated",
        Err(_) => "rejected",
    };
    metrics::counter!("meisa_contacts_upserts_total", "outcome" => outcome).increment(1);
}

async fn apply_with_retry(
    lane: usize,
    store: &Store,
    items: &[&WriteItem],
) -> Result<Vec<Result<Outcome, ApiError>>, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // First try set-based; any retry goes one by one (see store::write).
        let result = if attempt == 1 {
            apply_batch(store, items).await
        } else {
            apply_one_by_one(store, items).await
        };
        match result {
            Err(e) if attempt < MAX_ATTEMPTS && e.is_retryable() => {
                tracing::debug!(lane, attempt, error = %e, "write batch raced another writer; retrying");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}
