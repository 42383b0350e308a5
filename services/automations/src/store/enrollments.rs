//! Enrollments: a contact going through a sequence. One active enrollment per (sequence,
//! contact); the scheduler claims due ones under a lease.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow};

use crate::domain::funnel::{EnrollmentGroup, GroupStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Completed,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Exited => "exited",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "active" => Ok(Self::Active),
            "completed" => Ok(Self::Completed),
            "exited" => Ok(Self::Exited),
            other => Err(super::unknown("enrollments.status", other)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Enrollment {
    pub workspace_id: String,
    pub id: String,
    pub sequence_id: String,
    pub contact_id: Option<String>,
    pub automation_id: Option<String>,
    pub event_id: Option<String>,
    pub status: Status,
    pub current_step: u32,
    pub next_run_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub exit_reason: String,
    pub traceparent: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "workspace_id, id, sequence_id, contact_id, automation_id, event_id, status,
    current_step, next_run_at, attempts, exit_reason, traceparent, created_at, updated_at, ended_at";

fn row(r: &PgRow) -> Result<Enrollment, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(Enrollment {
        workspace_id: r.try_get("workspace_id")?,
        id: r.try_get("id")?,
        sequence_id: r.try_get("sequence_id")?,
        contact_id: r.try_get("contact_id")?,
        automation_id: r.try_get("automation_id")?,
        event_id: r.try_get("event_id")?,
        status: Status::parse(&status)?,
        current_step: super::get_u32(r, "current_step")?,
        next_run_at: r.try_get("next_run_at")?,
        attempts: r.try_get("attempts")?,
        exit_reason: r.try_get("exit_reason")?,
        traceparent: r.try_get("traceparent")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

/// Creates an active enrollment due now; `None` when the contact already has an active one in
/// this sequence (enrolling again while active does nothing).
pub async fn create(
    conn: &mut PgConnection,
    workspace_id: &str,
    sequence_id: &str,
    contact_id: &str,
    automation_id: &str,
    event_id: &str,
    traceparent: &str,
) -> Result<Option<String>, sqlx::Error> {
    let id = meisa_model::id::new("enr");
    sqlx::query_scalar(
        "INSERT INTO enrollments (workspace_id, id, sequence_id, contact_id, automation_id,
            event_id, traceparent, status, current_step, next_run_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', 0, now(), now(), now())
         ON CONFLICT (workspace_id, sequence_id, contact_id) WHERE status = 'active' DO NOTHING
         RETURNING id",
    )
    .bind(workspace_id)
    .bind(&id)
    .bind(sequence_id)
    .bind(contact_id)
    .bind(automation_id)
    .bind(event_id)
    .bind(traceparent)
    .fetch_optional(&mut *conn)
    .await
}

/// An enrollment that ended: what activity needs to record it.
#[derive(Clone, Debug)]
pub struct Ended {
    pub id: String,
    pub sequence_id: String,
    pub automation_id: Option<String>,
}

fn ended(r: &PgRow) -> Result<Ended, sqlx::Error> {
    Ok(Ended {
        id: r.try_get("id")?,
        sequence_id: r.try_get("sequence_id")?,
        automation_id: r.try_get("automation_id")?,
    })
}

/// Ends the contact's active enrollments (in one sequence, or all) as exited.
pub async fn exit_active(
    conn: &mut PgConnection,
    workspace_id: &str,
    contact_id: &str,
    sequence_id: Option<&str>,
    reason: &str,
) -> Result<Vec<Ended>, sqlx::Error> {
    sqlx::query(
        "UPDATE enrollments SET status = 'exited', exit_reason = $4, next_run_at = NULL,
            lease_until = NULL, ended_at = now(), updated_at = now()
         WHERE workspace_id = $1 AND contact_id = $2 AND status = 'active'
           AND ($3::text IS NULL OR sequence_id = $3)
         RETURNING id, sequence_id, automation_id",
    )
    .bind(workspace_id)
    .bind(contact_id)
    .bind(sequence_id)
    .bind(reason)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(ended)
    .collect()
}

/// Ends every active enrollment of a deleted sequence.
pub async fn exit_sequence(
    conn: &mut PgConnection,
    workspace_id: &str,
    sequence_id: &str,
) -> Result<Vec<(Ended, Option<String>)>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE enrollments SET status = 'exited', exit_reason = 'sequence_deleted',
            next_run_at = NULL, lease_until = NULL, ended_at = now(), updated_at = now()
         WHERE workspace_id = $1 AND sequence_id = $2 AND status = 'active'
         RETURNING id, sequence_id, automation_id, contact_id",
    )
    .bind(workspace_id)
    .bind(sequence_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((ended(r)?, r.try_get("contact_id")?)))
        .collect()
}

/// Active enrollments of a contact with their sequence's definition (for exit checks on events).
pub async fn active_for_contact(
    conn: &mut PgConnection,
    workspace_id: &str,
    contact_id: &str,
) -> Result<Vec<(String, String, serde_json::Value)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.id, e.sequence_id, s.definition FROM enrollments e
         JOIN sequences s ON s.workspace_id = e.workspace_id AND s.id = e.sequence_id
         WHERE e.workspace_id = $1 AND e.contact_id = $2 AND e.status = 'active'",
    )
    .bind(workspace_id)
    .bind(contact_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("sequence_id")?,
                r.try_get("definition")?,
            ))
        })
        .collect()
}

/// Exits one enrollment if it is still active; returns what ended.
pub async fn exit_one(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
    reason: &str,
) -> Result<Option<Ended>, sqlx::Error> {
    sqlx::query(
        "UPDATE enrollments SET status = 'exited', exit_reason = $3, next_run_at = NULL,
            lease_until = NULL, ended_at = now(), updated_at = now()
         WHERE workspace_id = $1 AND id = $2 AND status = 'active'
         RETURNING id, sequence_id, automation_id",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(ended)
    .transpose()
}

/// Claims due enrollments: each stays claimed until `lease` runs out, so a scheduler that dies
/// releases its claims by themselves.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease: std::time::Duration,
) -> Result<Vec<Enrollment>, sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE enrollments SET lease_until = now() + make_interval(secs => $2::double precision / 1e6)
         WHERE (workspace_id, id) IN (
            SELECT workspace_id, id FROM enrollments
            WHERE status = 'active' AND next_run_at <= now()
              AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_run_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(limit)
    .bind(super::micros(lease))
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}

/// Moves a claimed enrollment from step `from` to `from + 1`, due at `next_run_at`; `release`
/// gives the claim back (a wait), otherwise the caller keeps it to run the next step at once.
/// False when it is no longer at that step or no longer active (another scheduler after a lost
/// lease, or an exit), in which case nothing changes.
pub async fn advance(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
    from: u32,
    next_run_at: DateTime<Utc>,
    release: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE enrollments SET current_step = $3 + 1, next_run_at = $4,
            lease_until = CASE WHEN $5 THEN NULL ELSE lease_until END,
            attempts = 0, updated_at = now()
         WHERE workspace_id = $1 AND id = $2 AND current_step = $3 AND status = 'active'",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(super::param::<i32, _>("current_step", from)?)
    .bind(next_run_at)
    .bind(release)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn complete(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE enrollments SET status = 'completed', next_run_at = NULL, lease_until = NULL,
            ended_at = now(), updated_at = now()
         WHERE workspace_id = $1 AND id = $2 AND status = 'active'",
    )
    .bind(workspace_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a claim back: due again at `at` (a transient failure's backoff), or now.
pub async fn release(
    pool: &PgPool,
    workspace_id: &str,
    id: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE enrollments SET lease_until = NULL,
            next_run_at = COALESCE($3, next_run_at),
            attempts = attempts + CASE WHEN $3::timestamptz IS NULL THEN 0 ELSE 1 END
         WHERE workspace_id = $1 AND id = $2 AND status = 'active'",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(retry_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub struct Filter<'a> {
    pub sequence_id: Option<&'a str>,
    pub contact_id: Option<&'a str>,
    pub status: Option<Status>,
}

/// Newest first.
pub async fn list(
    pool: &PgPool,
    workspace_id: &str,
    f: &Filter<'_>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Enrollment>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM enrollments
         WHERE workspace_id = $1 AND ($2::text IS NULL OR sequence_id = $2)
           AND ($3::text IS NULL OR contact_id = $3) AND ($4::text IS NULL OR status = $4)
           AND ($5::text IS NULL OR id < $5)
         ORDER BY id DESC LIMIT $6"
    ))
    .bind(workspace_id)
    .bind(f.sequence_id)
    .bind(f.contact_id)
    .bind(f.status.map(Status::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}

/// A sequence's enrollments counted by where they stand, for its funnel.
pub async fn funnel_groups(
    pool: &PgPool,
    workspace_id: &str,
    sequence_id: &str,
) -> Result<Vec<EnrollmentGroup>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT status, current_step, (status = 'active' AND next_run_at > now()) AS waiting,
                exit_reason, count(*) AS n
         FROM enrollments WHERE workspace_id = $1 AND sequence_id = $2
         GROUP BY 1, 2, 3, 4",
    )
    .bind(workspace_id)
    .bind(sequence_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok(EnrollmentGroup {
                status: match Status::parse(&status)? {
                    Status::Active => GroupStatus::Active,
                    Status::Completed => GroupStatus::Completed,
                    Status::Exited => GroupStatus::Exited,
                },
                current_step: super::get_u32(r, "current_step")?,
                waiting: r.try_get::<Option<bool>, _>("waiting")?.unwrap_or(false),
                exit_reason: r.try_get("exit_reason")?,
                count: super::read("n", r.try_get::<i64, _>("n")?)?,
            })
        })
        .collect()
}
