//! Group commit. Upserts are routed to a few writer lanes by the contact's key (workspace and
//! external id, else email); each lane takes every upsert waiting for it and applies them in one
//! transaction, so N concurrent upserts cost one commit instead of N. Routing by key also makes
//! concurrent upserts of one contact queue in one lane instead of fighting over its row lock.
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
        upsert::{UpsertItem, UpsertOutcome, apply_batch, apply_batch_sequential},
    },
};

const MAX_BATCH: usize = 256;
const MAX_ATTEMPTS: u32 = 6;

type Reply = oneshot::Sender<Result<UpsertOutcome, ContactsError>>;

#[derive(Clone)]
pub struct Writer {
    lanes: Vec<mpsc::Sender<(UpsertItem, Reply)>>,
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

    fn lane_for(&self, item: &UpsertItem) -> usize {
        let key = item
            .input
            .external_id
            .as_deref()
            .unwrap_or(item.input.email.as_str());
        let shard = crate::store::shard_of(
            &item.workspace_id,
            key,
            u32::try_from(self.lanes.len()).unwrap_or(1),
        );
        usize::try_from(shard).unwrap_or(0)
    }

    pub async fn upsert(&self, item: UpsertItem) -> Result<UpsertOutcome, ContactsError> {
        let (tx, rx) = oneshot::channel();
        let lane = self.lane_for(&item);
        self.lanes[lane]
            .send((item, tx))
            .await
            .map_err(|_| ContactsError::ShuttingDown)?;
        rx.await.map_err(|_| ContactsError::ShuttingDown)?
    }

    /// Many upserts at once; one result per item, in order.
    pub async fn upsert_many(
        &self,
        items: Vec<UpsertItem>,
    ) -> Vec<Result<UpsertOutcome, ContactsError>> {
        let mut waits = Vec::with_capacity(items.len());
        for item in items {
            let (tx, rx) = oneshot::channel();
            let lane = self.lane_for(&item);
            let sent = self.lanes[lane].send((item, tx)).await.is_ok();
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
    mut rx: mpsc::Receiver<(UpsertItem, Reply)>,
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
        let items: Vec<&UpsertItem> = batch.iter().map(|(i, _)| i).collect();
        let started = std::time::Instant::now();
        let results = apply_with_retry(lane, &store, &items).await;
        metrics::histogram!("meisa_contacts_commit_batch_size").record(items.len() as f64);
        metrics::histogram!("meisa_contacts_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        match results {
            Ok(results) => {
                for ((_, reply), r) in batch.drain(..).zip(results) {
                    let outcome = match &r {
                        Ok(o) if o.created => "created",
                        Ok(o) if o.changed.is_empty() => "unchanged",
                        Ok(_) => "updated",
                        Err(_) => "rejected",
                    };
                    metrics::counter!("meisa_contacts_upserts_total", "outcome" => outcome)
                        .increment(1);
                    let _ = reply.send(r.map_err(ContactsError::Rejected));
                }
            }
            Err(e) => {
                tracing::error!(lane, error = %e, size = batch.len(), "upsert batch failed");
                metrics::counter!("meisa_contacts_upserts_total", "outcome" => "failed")
                    .increment(batch.len() as u64);
                let err = store_failure(&e);
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(ContactsError::Rejected(err.clone())));
                }
            }
        }
    }
}

async fn apply_with_retry(
    lane: usize,
    store: &Store,
    items: &[&UpsertItem],
) -> Result<Vec<Result<UpsertOutcome, ApiError>>, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // First try set-based; any retry goes item by item (see apply_batch).
        let result = if attempt == 1 {
            apply_batch(store, items).await
        } else {
            apply_batch_sequential(store, items).await
        };
        match result {
            Err(e) if attempt < MAX_ATTEMPTS && e.is_retryable() => {
                tracing::debug!(lane, attempt, error = %e, "upsert batch raced another writer; retrying");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}
