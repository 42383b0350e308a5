//! The write transaction: every write to a contact (upsert, tag and subscription edits, erasure)
//! is applied here, by the writer lanes, in two shapes that share the planner
//! ([`super::plan`]) and the statements that write its plan:
//!
//! - [`apply_batch`]: a fixed number of statements whatever the number of writes: one locks every
//!   contact they can touch, the plan is made in memory, then one statement each deletes, updates
//!   and inserts contacts and writes history and outbox rows.
//! - [`apply_one_by_one`]: the same, one write at a time (lock, plan, write), in one transaction.
//!   The writer falls back to it when a batch failed; it also settles the rare batch whose bulk
//!   update trips a unique index mid-statement (a chain of email changes).
//!
//! Ordering: every transaction locks the contacts it touches (one statement, in (workspace, id)
//! order) before it reads them. An upsert and a tag change of the same contact may travel in
//! different lanes (an upsert is routed by its external id or email, an edit by the contact's
//! id, which an upsert does not know before it matched), so they serialize on that row lock: the
//! second waits for the first to commit and reads its result. Its version is the next one, and
//! its outbox row is inserted after the first one committed, so it gets a later outbox id: one
//! contact's events reach the outbox, and their shard, in version order. Inside one
//! transaction, writes apply in the order they were queued, each seeing the ones before it.
//!
//! If the process dies half-way, the transaction rolls back: no contact row, no history, no
//! outbox row of any write in it. The callers got no answer and retry; an upsert or an edit
//! retried is an ordinary write (adding a tag twice is no change), an erasure retried after a
//! commit whose answer was lost finds no contact (404).

use chrono::Utc;
use sqlx::{PgConnection, Postgres, Transaction};

use super::{
    Store, StoreError, changes, contacts,
    fields::TxFields,
    plan::{ItemResult, Plan, Planner, WriteItem},
};

/// Applies `items` in one transaction with one locking statement and one statement per kind of
/// row. The error is the database's: the writer retries, one by one.
pub async fn apply_batch(
    store: &Store,
    items: &[&WriteItem],
) -> Result<Vec<ItemResult>, StoreError> {
    let mut tx = store.pool.begin().await?;
    let mut fields = store.registry.begin();
    let keys: Vec<_> = items.iter().map(|i| i.lock_key()).collect();
    let locked = contacts::lock_many(&mut tx, &keys).await?;
    let mut planner = Planner::new(store.shards, Utc::now(), &mut fields, locked);
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(planner.plan(&mut tx, item).await?);
    }
    let wrote = write(&mut tx, planner.finish()).await?;
    commit(store, tx, fields, wrote).await?;
    Ok(results)
}

/// The same writes, each locking and writing its own rows before the next one locks: slower,
/// but a unique index is never tripped by an order of rows inside one statement.
pub async fn apply_one_by_one(
    store: &Store,
    items: &[&WriteItem],
) -> Result<Vec<ItemResult>, StoreError> {
    let mut tx = store.pool.begin().await?;
    let mut fields = store.registry.begin();
    let now = Utc::now();
    let mut results = Vec::with_capacity(items.len());
    let mut wrote = false;
    for item in items {
        let locked = contacts::lock_many(&mut tx, &[item.lock_key()]).await?;
        let mut planner = Planner::new(store.shards, now, &mut fields, locked);
        results.push(planner.plan(&mut tx, item).await?);
        wrote |= write(&mut tx, planner.finish()).await?;
    }
    commit(store, tx, fields, wrote).await?;
    Ok(results)
}

/// Writes a plan; true when it recorded changes (the relay has something to publish).
async fn write(conn: &mut PgConnection, plan: Plan) -> Result<bool, StoreError> {
    // Deletions and updates first: a contact that was erased or gave up its email frees that
    // email for a contact this plan creates.
    contacts::delete_many(conn, &plan.deleted).await?;
    contacts::update_many(conn, &plan.updated.iter().collect::<Vec<_>>()).await?;
    contacts::insert_many(conn, &plan.created.iter().collect::<Vec<_>>()).await?;
    changes::write(conn, &plan.events).await?;
    // After the events: those this plan wrote for a contact it then erased are stripped too.
    changes::erase(conn, &plan.erased).await?;
    Ok(!plan.events.is_empty())
}

async fn commit(
    store: &Store,
    mut tx: Transaction<'static, Postgres>,
    fields: TxFields,
    wrote: bool,
) -> Result<(), StoreError> {
    if wrote {
        store.wake.before_commit(&mut tx).await?;
    }
    tx.commit().await?;
    fields.commit();
    if wrote {
        store.wake.after_commit();
    }
    Ok(())
}
