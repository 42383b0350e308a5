//! Action jobs: one per (automation, triggering event, action index), unique, so each action runs
//! at most once per firing. Workers claim them with `FOR UPDATE SKIP LOCKED` under a lease.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow};

use super::{get_u32, param};

pub struct NewJob<'a> {
    pub workspace_id: &'a str,
    pub automation_id: &'a str,
    pub event_id: &'a str,
    pub action_index: u32,
    pub contact_id: &'a str,
    pub action: Value,
    pub depth: u32,
    /// `pending` for workers; `done` / `failed` for actions done in the firing's transaction.
    pub status: &'static str,
    pub last_error: &'a str,
    pub traceparent: &'a str,
}

/// Records the job; returns its id, or `None` if this (automation, event, index) already has one.
pub async fn insert(
    conn: &mut PgConnection,
    j: &NewJob<'_>,
) -> Result<Option<String>, sqlx::Error> {
    let id = meisa_model::id::new("job");
    sqlx::query_scalar(
        "INSERT INTO action_jobs (workspace_id, id, automation_id, event_id, action_index,
            contact_id, action, depth, status, last_error, traceparent, run_at, created_at,
            updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), now(), now())
         ON CONFLICT (workspace_id, automation_id, event_id, action_index) DO NOTHING
         RETURNING id",
    )
    .bind(j.workspace_id)
    .bind(&id)
    .bind(j.automation_id)
    .bind(j.event_id)
    .bind(param::<i32, _>("action_index", j.action_index)?)
    .bind(j.contact_id)
    .bind(&j.action)
    .bind(param::<i32, _>("depth", j.depth)?)
    .bind(j.status)
    .bind(j.last_error)
    .bind(j.traceparent)
    .fetch_optional(&mut *conn)
    .await
}

#[derive(Clone, Debug)]
pub struct Job {
    pub workspace_id: String,
    pub id: String,
    pub automation_id: String,
    pub event_id: String,
    pub action_index: u32,
    pub contact_id: Option<String>,
    pub action: Value,
    pub depth: u32,
    /// Including this claim; identifies the claim when finishing.
    pub attempts: i32,
    pub traceparent: String,
}

fn job(r: &PgRow) -> Result<Job, sqlx::Error> {
    Ok(Job {
        workspace_id: r.try_get("workspace_id")?,
        id: r.try_get("id")?,
        automation_id: r.try_get("automation_id")?,
        event_id: r.try_get("event_id")?,
        action_index: get_u32(r, "action_index")?,
        contact_id: r.try_get("contact_id")?,
        action: r.try_get("action")?,
        depth: get_u32(r, "depth")?,
        attempts: r.try_get("attempts")?,
        traceparent: r.try_get("traceparent")?,
    })
}

/// Claims due jobs (pending and due, or running with an expired lease: a worker died). A job
/// waits while an earlier action of the same firing is unfinished, so a firing's actions run in
/// the order written.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    lease: std::time::Duration,
) -> Result<Vec<Job>, sqlx::Error> {
    sqlx::query(
        "UPDATE action_jobs SET status = 'running', attempts = attempts + 1, updated_at = now(),
            lease_until = now() + make_interval(secs => $2::double precision / 1e6)
         WHERE (workspace_id, id) IN (
            SELECT c.workspace_id, c.id FROM action_jobs c
            WHERE ((c.status = 'pending' AND c.run_at <= now())
                   OR (c.status = 'running' AND c.lease_until < now()))
              AND NOT EXISTS (
                SELECT 1 FROM action_jobs p
                WHERE p.workspace_id = c.workspace_id AND p.automation_id = c.automation_id
                  AND p.event_id = c.event_id AND p.action_index < c.action_index
                  AND p.status IN ('pending', 'running'))
            ORDER BY c.run_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING workspace_id, id, automation_id, event_id, action_index, contact_id, action,
                   depth, attempts, traceparent",
    )
    .bind(limit)
    .bind(super::micros(lease))
    .fetch_all(pool)
    .await?
    .iter()
    .map(job)
    .collect()
}

/// Finishes this claim of the job (`done`, `failed` or `cancelled`). False when the claim was
/// lost (its lease ran out and another worker took the job): the caller then records nothing.
pub async fn finish(
    conn: &mut PgConnection,
    j: &Job,
    status: &str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE action_jobs SET status = $4, last_error = $5, lease_until = NULL, updated_at = now()
         WHERE workspace_id = $1 AND id = $2 AND status = 'running' AND attempts = $3",
    )
    .bind(&j.workspace_id)
    .bind(&j.id)
    .bind(j.attempts)
    .bind(status)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts the job back to run again at `at` (a transient failure).
pub async fn retry_at(
    pool: &PgPool,
    j: &Job,
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE action_jobs SET status = 'pending', run_at = $4, last_error = $5,
            lease_until = NULL, updated_at = now()
         WHERE workspace_id = $1 AND id = $2 AND status = 'running' AND attempts = $3",
    )
    .bind(&j.workspace_id)
    .bind(&j.id)
    .bind(j.attempts)
    .bind(at)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
