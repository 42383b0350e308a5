//! Recording a change: the history row and the outbox row, in the caller's transaction, so a
//! change is never stored without its event nor published without being stored.

use chrono::{DateTime, Utc};
use meisa_proto::{common, events};
use prost::Message;
use sqlx::{PgConnection, PgPool, Row};

use super::shard_of;
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

pub struct Recorded {
    pub event_id: uuid::Uuid,
}

#[allow(clippy::too_many_arguments)]
pub async fn record(
    conn: &mut PgConnection,
    shards: u32,
    kind: events::ChangeKind,
    workspace_id: &str,
    contact_id: &str,
    version: i64,
    after: Option<&Contact>,
    changes: &[FieldChange],
    meta: &ChangeMeta,
    now: DateTime<Utc>,
) -> Result<Recorded, sqlx::Error> {
    let event_id = uuid::Uuid::now_v7();
    let shard = shard_of(workspace_id, contact_id, shards);
    let mut event = events::ContactChanged {
        event_id: event_id.to_string(),
        workspace_id: workspace_id.to_string(),
        contact_id: contact_id.to_string(),
        version,
        kind: kind as i32,
        changes: changes.iter().map(convert::field_change).collect(),
        state: after.map(convert::contact),
        occurred_at: Some(convert::timestamp(now)),
        causation: meta.causation.clone(),
        traceparent: meta.traceparent.clone(),
        shard,
        seq: 0,
    };
    sqlx::query(
        "INSERT INTO outbox (shard, event_id, workspace_id, contact_id, payload)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(i32::try_from(shard).unwrap_or(0))
    .bind(event_id)
    .bind(workspace_id)
    .bind(contact_id)
    .bind(event.encode_to_vec())
    .execute(&mut *conn)
    .await?;

    if kind != events::ChangeKind::Deleted {
        // History keeps what changed, not the whole state: the contact row has that.
        event.state = None;
        sqlx::query(
            "INSERT INTO contact_changes (workspace_id, contact_id, version, event_id, payload, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(workspace_id)
        .bind(contact_id)
        .bind(version)
        .bind(event_id)
        .bind(event.encode_to_vec())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Recorded { event_id })
}

/// Wakes the relay when the transaction commits (NOTIFY is delivered at commit).
pub async fn notify_relay(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(super::OUTBOX_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Erasure: drops the history and strips personal data from events still in the outbox (they
/// keep their place in the shard sequence, so consumers see no gap).
pub async fn erase(
    conn: &mut PgConnection,
    workspace_id: &str,
    contact_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM contact_changes WHERE workspace_id = $1 AND contact_id = $2")
        .bind(workspace_id)
        .bind(contact_id)
        .execute(&mut *conn)
        .await?;
    let rows =
        sqlx::query("SELECT id, payload FROM outbox WHERE workspace_id = $1 AND contact_id = $2")
            .bind(workspace_id)
            .bind(contact_id)
            .fetch_all(&mut *conn)
            .await?;
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let payload: Vec<u8> = row.try_get("payload")?;
        let Ok(mut event) = events::ContactChanged::decode(payload.as_slice()) else {
            continue;
        };
        event.state = None;
        for change in &mut event.changes {
            change.old = None;
            change.new = None;
            change.tags_added.clear();
            change.tags_removed.clear();
        }
        sqlx::query("UPDATE outbox SET payload = $2 WHERE id = $1")
            .bind(id)
            .bind(event.encode_to_vec())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A contact's history, newest first, before version `before` when given.
pub async fn history(
    pool: &PgPool,
    workspace_id: &str,
    contact_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<events::ContactChanged>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT payload FROM contact_changes
         WHERE workspace_id = $1 AND contact_id = $2 AND ($3::bigint IS NULL OR version < $3)
         ORDER BY version DESC LIMIT $4",
    )
    .bind(workspace_id)
    .bind(contact_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<Vec<u8>, _>("payload").ok())
        .filter_map(|p| events::ContactChanged::decode(p.as_slice()).ok())
        .collect())
}
