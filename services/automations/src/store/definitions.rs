//! Automations and sequences as the dashboard saves them.
//!
//! Saving an automation is one transaction: the row, and for a time-dependent condition_met
//! automation the reset of its projections and the backfill flag. A crash before commit saves
//! nothing; after commit the backfill task (which resumes from its stored cursor) rebuilds the
//! projections.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow};

use crate::{
    domain::{AutomationDef, SequenceDef},
    error::{Error, Result},
};

#[derive(Clone, Debug)]
pub struct AutomationRow {
    pub workspace_id: String,
    pub id: String,
    pub def: AutomationDef,
    pub unseen_fields: Vec<String>,
    pub time_dependent: bool,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct SequenceRow {
    pub workspace_id: String,
    pub id: String,
    pub def: SequenceDef,
    pub unseen_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const AUTOMATION_COLUMNS: &str = <AutomationRow as Saved>::COLUMNS;
const SEQUENCE_COLUMNS: &str = <SequenceRow as Saved>::COLUMNS;

/// A saved definition's row: the table it lives in and how it is read. [`get`] and [`list`] read
/// either kind.
pub trait Saved: Sized {
    /// What one is called in a "no such … in this workspace" answer.
    const NOUN: &'static str;
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    fn read(r: &PgRow) -> Result<Self>;
}

impl Saved for AutomationRow {
    const NOUN: &'static str = "automation";
    const TABLE: &'static str = "automations";
    const COLUMNS: &'static str = "workspace_id, id, enabled, definition, unseen_fields, time_dependent, revision, created_at, updated_at";

    fn read(r: &PgRow) -> Result<Self> {
        let id: String = r.try_get("id")?;
        let mut def = stored_definition(r, &id, Self::NOUN, AutomationDef::parse)?;
        def.enabled = r.try_get("enabled")?;
        Ok(AutomationRow {
            workspace_id: r.try_get("workspace_id")?,
            id,
            def,
            unseen_fields: r.try_get("unseen_fields")?,
            time_dependent: r.try_get("time_dependent")?,
            revision: r.try_get("revision")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

impl Saved for SequenceRow {
    const NOUN: &'static str = "sequence";
    const TABLE: &'static str = "sequences";
    const COLUMNS: &'static str =
        "workspace_id, id, definition, unseen_fields, created_at, updated_at";

    fn read(r: &PgRow) -> Result<Self> {
        let id: String = r.try_get("id")?;
        let def = stored_definition(r, &id, Self::NOUN, SequenceDef::parse)?;
        Ok(SequenceRow {
            workspace_id: r.try_get("workspace_id")?,
            id,
            def,
            unseen_fields: r.try_get("unseen_fields")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// The row's `definition`, parsed; one that no longer parses is corrupt, not the caller's fault.
fn stored_definition<D, E: std::fmt::Display>(
    r: &PgRow,
    id: &str,
    noun: &str,
    parse: impl FnOnce(&Value) -> std::result::Result<D, E>,
) -> Result<D> {
    let definition: Value = r.try_get("definition")?;
    parse(&definition).map_err(|e| Error::Corrupt(format!("stored {noun} {id}: {e}")))
}

pub async fn get<S: Saved>(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<S>> {
    sqlx::query(&format!(
        "SELECT {} FROM {} WHERE workspace_id = $1 AND id = $2",
        S::COLUMNS,
        S::TABLE
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(S::read)
    .transpose()
}

/// Newest first, ids below `before` when given.
pub async fn list<S: Saved>(
    pool: &PgPool,
    workspace_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<S>> {
    sqlx::query(&format!(
        "SELECT {} FROM {} WHERE workspace_id = $1 AND ($2::text IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
        S::COLUMNS,
        S::TABLE
    ))
    .bind(workspace_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(S::read)
    .collect()
}

/// Deletes the row; false when there was none.
async fn delete_row<S: Saved>(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "DELETE FROM {} WHERE workspace_id = $1 AND id = $2",
        S::TABLE
    ))
    .bind(workspace_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

// ------------------------------------------------------------------------------ automations

pub async fn insert_automation(
    pool: &PgPool,
    workspace_id: &str,
    id: &str,
    def: &AutomationDef,
    unseen: &[String],
) -> Result<AutomationRow> {
    let time_dependent = def.is_time_dependent();
    let row = sqlx::query(&format!(
        "INSERT INTO automations (workspace_id, id, enabled, definition, unseen_fields,
            time_dependent, backfill_pending, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())
         RETURNING {AUTOMATION_COLUMNS}"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(def.enabled)
    .bind(def.to_json())
    .bind(unseen)
    .bind(time_dependent)
    .bind(time_dependent && def.enabled)
    .fetch_one(pool)
    .await?;
    AutomationRow::read(&row)
}

/// Every enabled automation of a workspace, read in the caller's transaction (so an automation
/// disabled by a committed transaction is never fired by a later one).
pub async fn enabled_automations(
    conn: &mut PgConnection,
    workspace_id: &str,
) -> Result<Vec<AutomationRow>> {
    sqlx::query(&format!(
        "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE workspace_id = $1 AND enabled ORDER BY id"
    ))
    .bind(workspace_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(AutomationRow::read)
    .collect()
}

/// Replaces the definition. Projections of the old definition are dropped; a time-dependent,
/// enabled automation gets a fresh backfill.
pub async fn update_automation(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
    def: &AutomationDef,
    unseen: &[String],
) -> Result<Option<AutomationRow>> {
    let time_dependent = def.is_time_dependent();
    let row = sqlx::query(&format!(
        "UPDATE automations SET enabled = $3, definition = $4, unseen_fields = $5,
            time_dependent = $6, backfill_pending = $7, backfill_cursor = '', backfill_lease = NULL,
            revision = revision + 1, updated_at = now()
         WHERE workspace_id = $1 AND id = $2 RETURNING {AUTOMATION_COLUMNS}"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(def.enabled)
    .bind(def.to_json())
    .bind(unseen)
    .bind(time_dependent)
    .bind(time_dependent && def.enabled)
    .fetch_optional(&mut *conn)
    .await?;
    if row.is_some() {
        super::projections::delete_for_automation(conn, workspace_id, id).await?;
        if !def.enabled {
            cancel_pending(conn, workspace_id, id, "automation disabled").await?;
        }
    }
    row.as_ref().map(AutomationRow::read).transpose()
}

/// Enables or disables. Disabling drops the projections (they would go stale, since a disabled
/// automation's projections are not maintained) and cancels its queued actions; enabling a
/// time-dependent automation backfills them.
pub async fn set_enabled(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
    enabled: bool,
) -> Result<Option<AutomationRow>> {
    let row = sqlx::query(&format!(
        "UPDATE automations SET enabled = $3,
            backfill_pending = time_dependent AND $3 AND (NOT enabled OR backfill_pending),
            backfill_cursor = CASE WHEN enabled = $3 THEN backfill_cursor ELSE '' END,
            revision = CASE WHEN enabled = $3 THEN revision ELSE revision + 1 END,
            updated_at = CASE WHEN enabled = $3 THEN updated_at ELSE now() END
         WHERE workspace_id = $1 AND id = $2 RETURNING {AUTOMATION_COLUMNS}"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(enabled)
    .fetch_optional(&mut *conn)
    .await?;
    if row.is_some() && !enabled {
        super::projections::delete_for_automation(conn, workspace_id, id).await?;
        // Disabling is how a team stops an automation that misbehaves: what it queued and has
        // not started is dropped too (a call in flight finishes).
        cancel_pending(conn, workspace_id, id, "automation disabled").await?;
    }
    row.as_ref().map(AutomationRow::read).transpose()
}

/// Deletes the automation, cancels its pending actions and drops its projections and reentry
/// memory. Its activity stays (history of what was done), as do enrollments it created.
pub async fn delete_automation(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
) -> Result<bool> {
    if !delete_row::<AutomationRow>(conn, workspace_id, id).await? {
        return Ok(false);
    }
    cancel_pending(conn, workspace_id, id, "automation deleted").await?;
    super::projections::delete_for_automation(conn, workspace_id, id).await?;
    sqlx::query("DELETE FROM reentry WHERE workspace_id = $1 AND automation_id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Cancels the automation's queued actions that have not started (a running one finishes; its
/// outcome is still recorded).
async fn cancel_pending(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
    why: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE action_jobs SET status = 'cancelled', updated_at = now(), last_error = $3
         WHERE workspace_id = $1 AND automation_id = $2 AND status = 'pending'",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(why)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Automations whose enroll or exit action names the sequence: `(automation id, action index)`.
pub async fn sequence_users(
    conn: &mut PgConnection,
    workspace_id: &str,
    sequence_id: &str,
) -> Result<Vec<(String, usize)>> {
    let pattern = serde_json::json!([{ "sequence_id": sequence_id }]);
    let rows = sqlx::query(
        "SELECT id, definition FROM automations
         WHERE workspace_id = $1 AND definition -> 'actions' @> $2 ORDER BY id",
    )
    .bind(workspace_id)
    .bind(pattern)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        let def: Value = r.try_get("definition")?;
        let index = def["actions"]
            .as_array()
            .and_then(|a| a.iter().position(|x| x["sequence_id"] == sequence_id))
            .unwrap_or(0);
        out.push((id, index));
    }
    Ok(out)
}

/// Which of `ids` exist as sequences of the workspace.
pub async fn existing_sequences(
    pool: &PgPool,
    workspace_id: &str,
    ids: &[String],
) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM sequences WHERE workspace_id = $1 AND id = ANY($2)")
            .bind(workspace_id)
            .bind(ids)
            .fetch_all(pool)
            .await?,
    )
}

// -------------------------------------------------------------------------------- sequences

pub async fn insert_sequence(
    pool: &PgPool,
    workspace_id: &str,
    id: &str,
    def: &SequenceDef,
    unseen: &[String],
) -> Result<SequenceRow> {
    let row = sqlx::query(&format!(
        "INSERT INTO sequences (workspace_id, id, definition, unseen_fields, created_at, updated_at)
         VALUES ($1, $2, $3, $4, now(), now()) RETURNING {SEQUENCE_COLUMNS}"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(def.to_json())
    .bind(unseen)
    .fetch_one(pool)
    .await?;
    SequenceRow::read(&row)
}

pub async fn update_sequence(
    pool: &PgPool,
    workspace_id: &str,
    id: &str,
    def: &SequenceDef,
    unseen: &[String],
) -> Result<Option<SequenceRow>> {
    sqlx::query(&format!(
        "UPDATE sequences SET definition = $3, unseen_fields = $4, updated_at = now()
         WHERE workspace_id = $1 AND id = $2 RETURNING {SEQUENCE_COLUMNS}"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(def.to_json())
    .bind(unseen)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(SequenceRow::read)
    .transpose()
}

pub async fn delete_sequence(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
) -> Result<bool> {
    delete_row::<SequenceRow>(conn, workspace_id, id).await
}

/// Locks the sequence row for the transaction, so a concurrent delete waits for an enrollment
/// being created (and the enrollment never outlives its sequence unnoticed).
pub async fn lock_sequence(conn: &mut PgConnection, workspace_id: &str, id: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM sequences WHERE workspace_id = $1 AND id = $2 FOR SHARE")
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

// -------------------------------------------------------------------------------- backfill

pub struct Backfill {
    pub workspace_id: String,
    pub id: String,
    pub revision: i64,
    pub cursor: String,
    pub def: AutomationDef,
}

/// Claims one automation whose projections need a backfill, under a lease.
pub async fn claim_backfill(pool: &PgPool, lease: std::time::Duration) -> Result<Option<Backfill>> {
    let row = sqlx::query(
        "UPDATE automations SET backfill_lease = now() + make_interval(secs => $1::double precision / 1e6)
         WHERE (workspace_id, id) IN (
            SELECT workspace_id, id FROM automations
            WHERE backfill_pending AND (backfill_lease IS NULL OR backfill_lease < now())
            ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING workspace_id, id, revision, backfill_cursor, definition",
    )
    .bind(super::micros(lease))
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let id: String = r.try_get("id")?;
    let def = stored_definition(&r, &id, "automation", AutomationDef::parse)?;
    Ok(Some(Backfill {
        workspace_id: r.try_get("workspace_id")?,
        id,
        revision: r.try_get("revision")?,
        cursor: r.try_get("backfill_cursor")?,
        def,
    }))
}

/// Saves backfill progress if the automation is still at `revision` (locking its row, so a
/// concurrent edit waits or wins); false when it changed and the backfill must stop.
pub async fn save_backfill(
    conn: &mut PgConnection,
    b: &Backfill,
    next_cursor: &str,
    lease: std::time::Duration,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE automations SET backfill_cursor = $4, backfill_pending = ($4 <> ''),
            backfill_lease = CASE WHEN $4 <> ''
                THEN now() + make_interval(secs => $5::double precision / 1e6) ELSE NULL END
         WHERE workspace_id = $1 AND id = $2 AND revision = $3 AND backfill_pending",
    )
    .bind(&b.workspace_id)
    .bind(&b.id)
    .bind(b.revision)
    .bind(next_cursor)
    .bind(super::micros(lease))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
