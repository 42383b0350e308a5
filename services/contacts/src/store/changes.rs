//! Recording a change: the history row and the outbox row, in the caller's transaction, so a
//! change is never stored without its event nor published without being stored.

use chrono::{DateTime, Utc};
use meisa_proto::{common, events};
use prost::Message;
use sqlx::{PgConnection, PgPool, Row};

use super::{Corrupt, StoreError, shard_of, stored};
use crate::{
    convert,
    domain::{Contact, FieldChange},
};

/// Where a change came from, carried into its event.
#[derive(Clone, Debug, Default)]
pub struct ChangeMeta {
    pub causation: Option<common::Causation>,
    pub traceparent: String,
}

/// One change ready to be written: its outbox row (with the full state after) and its history
/// row (without it; the contact row has the state). Erasures have no history row.
pub struct EventRow {
    pub event_id: uuid::Uuid,
    pub shard: u32,
    pub workspace_id: String,
    pub contact_id: String,
    pub version: i64,
    /// The event as the stream carries it, but for `seq` (see `meisa_stream::with_seq`).
    pub outbox_payload: Vec<u8>,
    pub history_payload: Option<Vec<u8>>,
    pub occurred_at: DateTime<Utc>,
}

/// The rows of one change of `contact`: `contact` is its state after the change, or, for an
/// erasure, the contact as it was with the version of its erasure (the event then carries no
/// state: no personal data).
pub fn build(
    shards: u32,
    kind: events::ChangeKind,
    contact: &Contact,
    changes: &[FieldChange],
    meta: &ChangeMeta,
    now: DateTime<Utc>,
) -> EventRow {
    let event_id = uuid::Uuid::now_v7();
    let shard = shard_of(&contact.workspace_id, &contact.id, shards);
    let erased = kind == events::ChangeKind::Deleted;
    let mut event = events::ContactChanged {
        event_id: event_id.to_string(),
        workspace_id: contact.workspace_id.clone(),
        contact_id: contact.id.clone(),
        version: contact.version,
        kind: kind as i32,
        changes: changes.iter().map(convert::field_change).collect(),
        state: (!erased).then(|| convert::contact(contact)),
        occurred_at: Some(meisa_proto::timestamp(now)),
        causation: meta.causation.clone(),
        traceparent: meta.traceparent.clone(),
        shard,
        seq: 0,
    };
    let outbox_payload = event.encode_to_vec();
    let history_payload = (!erased).then(|| {
        event.state = None;
        event.encode_to_vec()
    });
    EventRow {
        event_id,
        shard,
        workspace_id: contact.workspace_id.clone(),
        contact_id: contact.id.clone(),
        version: contact.version,
        outbox_payload,
        history_payload,
        occurred_at: now,
    }
}

/// Writes the outbox and history rows of many changes in two statements. Outbox ids follow the
/// order of `rows`, which keeps one contact's events in version order.
pub async fn write(conn: &mut PgConnection, rows: &[EventRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO outbox (shard, event_id, workspace_id, contact_id, payload)
         SELECT shard, event_id, workspace_id, contact_id, payload
         FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::bytea[])
           WITH ORDINALITY AS r(shard, event_id, workspace_id, contact_id, payload, n)
         ORDER BY n",
    )
    // As bigint: the cast to the integer column refuses a shard that does not fit.
    .bind(rows.iter().map(|r| i64::from(r.shard)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.workspace_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.contact_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.outbox_payload.as_slice())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    let history: Vec<(&EventRow, &[u8])> = rows
        .iter()
        .filter_map(|r| r.history_payload.as_deref().map(|p| (r, p)))
        .collect();
    if !history.is_empty() {
        sqlx::query(
            "INSERT INTO contact_changes (workspace_id, contact_id, version, event_id, payload, occurred_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::uuid[], $5::bytea[], $6::timestamptz[])",
        )
        .bind(history.iter().map(|(r, _)| r.workspace_id.as_str()).collect::<Vec<_>>())
        .bind(history.iter().map(|(r, _)| r.contact_id.as_str()).collect::<Vec<_>>())
        .bind(history.iter().map(|(r, _)| r.version).collect::<Vec<_>>())
        .bind(history.iter().map(|(r, _)| r.event_id).collect::<Vec<_>>())
        .bind(history.iter().map(|(_, p)| *p).collect::<Vec<_>>())
        .bind(history.iter().map(|(r, _)| r.occurred_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// How committed changes wake the relay. Postgres serializes the commits of transactions that
/// NOTIFY (measured: 2.6× fewer upsert transactions per second), so a process whose own relay
/// leads wakes it in memory after commit; only a replica whose relay does not lead NOTIFYs the
/// leader. If leadership moves between the check and the commit, the relay's poll picks the
/// change up: a delay, never a loss.
#[derive(Default)]
pub struct RelayWake {
    leading: std::sync::atomic::AtomicBool,
    local: tokio::sync::Notify,
}

impl RelayWake {
    pub fn set_leading(&self, leading: bool) {
        self.leading
            .store(leading, std::sync::atomic::Ordering::Relaxed);
    }

    fn local_relay_leads(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Inside the transaction: NOTIFY is delivered at commit, and only when another process leads.
    pub async fn before_commit(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.local_relay_leads() {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::OUTBOX_CHANNEL)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// After commit: the rows are visible, wake the relay of this process.
    pub fn after_commit(&self) {
        if self.local_relay_leads() {
            self.local.notify_one();
        }
    }

    /// Resolves on the next in-process wake (a wake with no waiter is kept for the next call).
    pub async fn woken(&self) {
        self.local.notified().await;
    }
}

/// Erasure: drops the history of `contacts` (workspace, id) and strips personal data from their
/// events still in the outbox (they keep their place in the shard sequence, so consumers see no
/// gap). Runs after this transaction's own events were written, so those are stripped too.
///
/// No row is skipped: a payload that does not decode may hold personal data all the same, so it
/// is replaced by an event made of the row's own columns (event id, workspace, contact, shard,
/// time), of kind unspecified, so that no consumer takes it for a change.
pub async fn erase(
    conn: &mut PgConnection,
    contacts: &[(String, String)],
) -> Result<(), StoreError> {
    if contacts.is_empty() {
        return Ok(());
    }
    let ws: Vec<&str> = contacts.iter().map(|c| c.0.as_str()).collect();
    let ids: Vec<&str> = contacts.iter().map(|c| c.1.as_str()).collect();
    sqlx::query(
        "DELETE FROM contact_changes WHERE (workspace_id, contact_id) IN
           (SELECT * FROM unnest($1::text[], $2::text[]))",
    )
    .bind(&ws)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query(
        "SELECT id, shard, event_id, workspace_id, contact_id, created_at, payload FROM outbox
         WHERE (workspace_id, contact_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
    )
    .bind(&ws)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let (mut row_ids, mut payloads) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let payload: Vec<u8> = row.try_get("payload")?;
        let event = match events::ContactChanged::decode(payload.as_slice()) {
            Ok(mut event) => {
                strip(&mut event);
                event
            }
            Err(e) => {
                let event = from_columns(&row)?;
                tracing::warn!(
                    outbox_id = id,
                    event_id = %event.event_id,
                    error = %e,
                    "erasure: an outbox payload does not decode; replaced by its row's ids"
                );
                event
            }
        };
        row_ids.push(id);
        payloads.push(event.encode_to_vec());
    }
    sqlx::query(
        "UPDATE outbox SET payload = v.payload
         FROM unnest($1::bigint[], $2::bytea[]) AS v(id, payload) WHERE outbox.id = v.id",
    )
    .bind(&row_ids)
    .bind(&payloads)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What an event keeps of an erased contact: ids, version, kind, the paths that changed, time
/// and causation; no state and no values.
fn strip(event: &mut events::ContactChanged) {
    event.state = None;
    for change in &mut event.changes {
        change.old = None;
        change.new = None;
        change.tags_added.clear();
        change.tags_removed.clear();
    }
}

/// An event with no personal data, from an outbox row's columns only.
fn from_columns(row: &sqlx::postgres::PgRow) -> Result<events::ContactChanged, StoreError> {
    let shard: i32 = row.try_get("shard")?;
    let event_id: uuid::Uuid = row.try_get("event_id")?;
    let occurred_at: DateTime<Utc> = row.try_get("created_at")?;
    Ok(events::ContactChanged {
        event_id: event_id.to_string(),
        workspace_id: row.try_get("workspace_id")?,
        contact_id: row.try_get("contact_id")?,
        kind: events::ChangeKind::Unspecified as i32,
        occurred_at: Some(meisa_proto::timestamp(occurred_at)),
        shard: stored("outbox.shard", shard)?,
        ..Default::default()
    })
}

/// A contact's history, newest first, before version `before` when given. A row whose payload
/// does not decode fails the read: a history with a silent hole would misreport the contact.
pub async fn history(
    pool: &PgPool,
    workspace_id: &str,
    contact_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<events::ContactChanged>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, payload FROM contact_changes
         WHERE workspace_id = $1 AND contact_id = $2 AND ($3::bigint IS NULL OR version < $3)
         ORDER BY version DESC LIMIT $4",
    )
    .bind(workspace_id)
    .bind(contact_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let version: i64 = r.try_get("version")?;
            let payload: Vec<u8> = r.try_get("payload")?;
            events::ContactChanged::decode(payload.as_slice()).map_err(|e| {
                Corrupt::new(
                    "contact_changes",
                    format!("contact {contact_id} version {version}: payload does not decode: {e}"),
                )
                .into()
            })
        })
        .collect()
}
