//! What a firing writes besides jobs and enrollments: the firing itself, reentry memory, and the
//! erasure of a contact.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::Reentry;

pub async fn insert_firing(
    conn: &mut PgConnection,
    workspace_id: &str,
    automation_id: &str,
    event_id: &str,
    contact_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO firings (workspace_id, automation_id, event_id, contact_id, fired_at)
         VALUES ($1, $2, $3, $4, now()) ON CONFLICT DO NOTHING",
    )
    .bind(workspace_id)
    .bind(automation_id)
    .bind(event_id)
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Reentry (DESIGN §3) decided and recorded in one place: whether the automation may fire for
/// the contact at `now`, and if so, `now` becomes its last firing. The row is locked until the
/// transaction ends, so two firings for one contact decide one after the other.
pub async fn take_reentry(
    conn: &mut PgConnection,
    workspace_id: &str,
    automation_id: &str,
    contact_id: &str,
    reentry: &Reentry,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    // First firing for this contact (the common case): one statement.
    let inserted = sqlx::query(
        "INSERT INTO reentry (workspace_id, automation_id, contact_id, last_fired_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(workspace_id)
    .bind(automation_id)
    .bind(contact_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(true);
    }
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT last_fired_at FROM reentry
         WHERE workspace_id = $1 AND automation_id = $2 AND contact_id = $3 FOR UPDATE",
    )
    .bind(workspace_id)
    .bind(automation_id)
    .bind(contact_id)
    .fetch_one(&mut *conn)
    .await?;
    if !reentry.allows(last, now) {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE reentry SET last_fired_at = $4
         WHERE workspace_id = $1 AND automation_id = $2 AND contact_id = $3",
    )
    .bind(workspace_id)
    .bind(automation_id)
    .bind(contact_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Erasure (DESIGN §2): pending actions are cancelled, projections (the only copies of field
/// values) and reentry memory are dropped, and the contact id is removed from the jobs,
/// enrollments and activity that remain, so counts stay but nothing names the contact. Active
/// enrollments must have been exited by the caller first (it records that activity).
pub async fn erase_contact(
    conn: &mut PgConnection,
    workspace_id: &str,
    contact_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE action_jobs SET contact_id = NULL, lease_until = NULL, updated_at = now(),
            status = CASE WHEN status IN ('pending', 'running') THEN 'cancelled' ELSE status END,
            last_error = CASE WHEN status IN ('pending', 'running') THEN 'contact erased'
                              ELSE last_error END
         WHERE workspace_id = $1 AND contact_id = $2",
    )
    .bind(workspace_id)
    .bind(contact_id)
    .execute(&mut *conn)
    .await?;
    super::projections::delete_for_contact(conn, workspace_id, contact_id).await?;
    for table in ["reentry", "firings"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE workspace_id = $1 AND contact_id = $2"
        ))
        .bind(workspace_id)
        .bind(contact_id)
        .execute(&mut *conn)
        .await?;
    }
    for table in ["enrollments", "activity"] {
        sqlx::query(&format!(
            "UPDATE {table} SET contact_id = NULL WHERE workspace_id = $1 AND contact_id = $2"
        ))
        .bind(workspace_id)
        .bind(contact_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
