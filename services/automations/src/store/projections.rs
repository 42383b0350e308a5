//! Projections for clock-driven conditions: per (time-dependent automation, contact), what the
//! condition reads, its value when last looked at, and when time alone next changes it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};

pub async fn delete_for_automation(
    conn: &mut PgConnection,
    workspace_id: &str,
    automation_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM projections WHERE workspace_id = $1 AND automation_id = $2")
        .bind(workspace_id)
        .bind(automation_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_for_contact(
    conn: &mut PgConnection,
    workspace_id: &str,
    contact_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM projections WHERE workspace_id = $1 AND contact_id = $2")
        .bind(workspace_id)
        .bind(contact_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The stored value, locked for the transaction (the sweep skips locked rows).
pub async fn lock(
    conn: &mut PgConnection,
    workspace_id: &str,
    automation_id: &str,
    contact_id: &str,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT last_value FROM projections
         WHERE workspace_id = $1 AND automation_id = $2 AND contact_id = $3 FOR UPDATE",
    )
    .bind(workspace_id)
    .bind(automation_id)
    .bind(contact_id)
    .fetch_optional(&mut *conn)
    .await
}

pub struct Projection<'a> {
    pub workspace_id: &'a str,
    pub automation_id: &'a str,
    pub contact_id: &'a str,
    pub state: Value,
    pub version: i64,
    pub last_value: bool,
    pub next_check_at: Option<DateTime<Utc>>,
}

/// Writes the projection after a change event (the event is the newest state of the contact).
pub async fn upsert(conn: &mut PgConnection, p: &Projection<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projections (workspace_id, automation_id, contact_id, state, version,
            last_value, next_check_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now())
         ON CONFLICT (workspace_id, automation_id, contact_id) DO UPDATE SET
            state = EXCLUDED.state, version = EXCLUDED.version, last_value = EXCLUDED.last_value,
            next_check_at = EXCLUDED.next_check_at, updated_at = now()",
    )
    .bind(p.workspace_id)
    .bind(p.automation_id)
    .bind(p.contact_id)
    .bind(&p.state)
    .bind(p.version)
    .bind(p.last_value)
    .bind(p.next_check_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Backfill: writes rows for contacts read from the contacts service, never over a row that an
/// event of the same or a newer version wrote.
pub async fn backfill(conn: &mut PgConnection, rows: &[Projection<'_>]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO projections (workspace_id, automation_id, contact_id, state, version,
            last_value, next_check_at, updated_at)
         SELECT ws, aut, ct, st, v, lv, nc, now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[], $6::bool[],
                     $7::timestamptz[]) AS r(ws, aut, ct, st, v, lv, nc)
         ON CONFLICT (workspace_id, automation_id, contact_id) DO UPDATE SET
            state = EXCLUDED.state, version = EXCLUDED.version, last_value = EXCLUDED.last_value,
            next_check_at = EXCLUDED.next_check_at, updated_at = now()
         WHERE projections.version < EXCLUDED.version",
    )
    .bind(rows.iter().map(|r| r.workspace_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.automation_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.contact_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.state.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.last_value).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.next_check_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub struct Due {
    pub workspace_id: String,
    pub automation_id: String,
    pub contact_id: String,
    pub state: Value,
    pub last_value: bool,
    pub next_check_at: DateTime<Utc>,
}

/// Rows whose check is due, locked for the transaction; rows another sweeper (or an event) holds
/// are skipped and picked up next time.
pub async fn claim_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT workspace_id, automation_id, contact_id, state, last_value, next_check_at
         FROM projections WHERE next_check_at IS NOT NULL AND next_check_at <= now()
         ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                workspace_id: r.try_get("workspace_id")?,
                automation_id: r.try_get("automation_id")?,
                contact_id: r.try_get("contact_id")?,
                state: r.try_get("state")?,
                last_value: r.try_get("last_value")?,
                next_check_at: r.try_get("next_check_at")?,
            })
        })
        .collect()
}

pub async fn set_checked(
    conn: &mut PgConnection,
    d: &Due,
    last_value: bool,
    next_check_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projections SET last_value = $4, next_check_at = $5, updated_at = now()
         WHERE workspace_id = $1 AND automation_id = $2 AND contact_id = $3",
    )
    .bind(&d.workspace_id)
    .bind(&d.automation_id)
    .bind(&d.contact_id)
    .bind(last_value)
    .bind(next_check_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The earliest pending check, through the partial index.
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_check_at FROM projections WHERE next_check_at IS NOT NULL
         ORDER BY next_check_at LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}
