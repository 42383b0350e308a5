//! The activity log: what automations did for each contact, written in the transaction of the
//! fact it records. Stats are counts over it (and over enrollments for what is active now).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow};

use crate::domain::funnel::{StepGroup, StepOutcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Triggered,
    ActionDone,
    ActionFailed,
    Enrolled,
    StepDone,
    StepFailed,
    Completed,
    Exited,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::ActionDone => "action_done",
            Self::ActionFailed => "action_failed",
            Self::Enrolled => "enrolled",
            Self::StepDone => "step_done",
            Self::StepFailed => "step_failed",
            Self::Completed => "completed",
            Self::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Result<Self, sqlx::Error> {
        [
            Self::Triggered,
            Self::ActionDone,
            Self::ActionFailed,
            Self::Enrolled,
            Self::StepDone,
            Self::StepFailed,
            Self::Completed,
            Self::Exited,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| super::unknown("activity.kind", s))
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub workspace_id: String,
    pub contact_id: Option<String>,
    pub kind: Kind,
    pub automation_id: Option<String>,
    pub sequence_id: Option<String>,
    pub enrollment_id: Option<String>,
    pub event_id: Option<String>,
    pub action_index: Option<u32>,
    pub action_type: Option<String>,
    pub step_index: Option<u32>,
    pub step_type: Option<String>,
    pub message_id: Option<String>,
    /// The mailer took an email for sending (queued or sent).
    pub emailed: bool,
    pub detail: String,
}

impl Entry {
    pub fn new(workspace_id: &str, contact_id: &str, kind: Kind) -> Self {
        Self {
            workspace_id: workspace_id.into(),
            contact_id: Some(contact_id.into()),
            kind,
            automation_id: None,
            sequence_id: None,
            enrollment_id: None,
            event_id: None,
            action_index: None,
            action_type: None,
            step_index: None,
            step_type: None,
            message_id: None,
            emailed: false,
            detail: String::new(),
        }
    }

    pub fn automation(mut self, id: Option<&str>, event_id: Option<&str>) -> Self {
        self.automation_id = id.map(str::to_string);
        self.event_id = event_id.map(str::to_string);
        self
    }

    pub fn enrollment(mut self, sequence_id: &str, enrollment_id: &str) -> Self {
        self.sequence_id = Some(sequence_id.into());
        self.enrollment_id = Some(enrollment_id.into());
        self
    }

    pub fn action(mut self, index: u32, ty: &str) -> Self {
        self.action_index = Some(index);
        self.action_type = Some(ty.into());
        self
    }

    pub fn step(mut self, index: u32, ty: &str) -> Self {
        self.step_index = Some(index);
        self.step_type = Some(ty.into());
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }

    pub fn email(mut self, message_id: &str, accepted: bool) -> Self {
        self.message_id = Some(message_id.into());
        self.emailed = accepted;
        self
    }
}

pub async fn record(conn: &mut PgConnection, e: &Entry) -> Result<(), sqlx::Error> {
    record_all(conn, std::slice::from_ref(e)).await
}

/// Several entries in one statement, in order.
pub async fn record_all(conn: &mut PgConnection, entries: &[Entry]) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Entry) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    let index = |name: &str, f: fn(&Entry) -> Option<u32>| {
        entries
            .iter()
            .map(|e| f(e).map(|i| super::param::<i32, _>(name, i)).transpose())
            .collect::<Result<Vec<_>, _>>()
    };
    sqlx::query(
        "INSERT INTO activity (workspace_id, contact_id, kind, automation_id, sequence_id,
            enrollment_id, event_id, action_index, action_type, step_index, step_type, message_id,
            emailed, detail, occurred_at)
         SELECT ws, ct, k, aut, seq, enr, ev, ai, at, si, st, msg, em, d, now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::int[], $9::text[], $10::int[], $11::text[], $12::text[],
                     $13::bool[], $14::text[])
           WITH ORDINALITY AS r(ws, ct, k, aut, seq, enr, ev, ai, at, si, st, msg, em, d, n)
         ORDER BY n",
    )
    .bind(col(|e| Some(e.workspace_id.clone())))
    .bind(col(|e| e.contact_id.clone()))
    .bind(col(|e| Some(e.kind.as_str().to_string())))
    .bind(col(|e| e.automation_id.clone()))
    .bind(col(|e| e.sequence_id.clone()))
    .bind(col(|e| e.enrollment_id.clone()))
    .bind(col(|e| e.event_id.clone()))
    .bind(index("action_index", |e| e.action_index)?)
    .bind(col(|e| e.action_type.clone()))
    .bind(index("step_index", |e| e.step_index)?)
    .bind(col(|e| e.step_type.clone()))
    .bind(col(|e| e.message_id.clone()))
    .bind(entries.iter().map(|e| e.emailed).collect::<Vec<_>>())
    .bind(col(|e| Some(e.detail.clone())))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug)]
pub struct ActivityRow {
    pub id: i64,
    pub entry: Entry,
    pub occurred_at: DateTime<Utc>,
}

/// A contact's activity, newest first, before the cursor id when given.
pub async fn list_for_contact(
    pool: &PgPool,
    workspace_id: &str,
    contact_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ActivityRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, workspace_id, contact_id, kind, automation_id, sequence_id, enrollment_id,
                event_id, action_index, action_type, step_index, step_type, message_id, emailed,
                detail, occurred_at
         FROM activity WHERE workspace_id = $1 AND contact_id = $2 AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(workspace_id)
    .bind(contact_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(ActivityRow {
                id: r.try_get("id")?,
                occurred_at: r.try_get("occurred_at")?,
                entry: Entry {
                    workspace_id: r.try_get("workspace_id")?,
                    contact_id: r.try_get("contact_id")?,
                    kind: Kind::parse(&kind)?,
                    automation_id: r.try_get("automation_id")?,
                    sequence_id: r.try_get("sequence_id")?,
                    enrollment_id: r.try_get("enrollment_id")?,
                    event_id: r.try_get("event_id")?,
                    action_index: super::get_opt_u32(r, "action_index")?,
                    action_type: r.try_get("action_type")?,
                    step_index: super::get_opt_u32(r, "step_index")?,
                    step_type: r.try_get("step_type")?,
                    message_id: r.try_get("message_id")?,
                    emailed: r.try_get("emailed")?,
                    detail: r.try_get("detail")?,
                },
            })
        })
        .collect()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub triggered: u64,
    pub enrolled: u64,
    pub completed: u64,
    pub exited: u64,
    pub emails_sent: u64,
    pub actions_done: u64,
    pub actions_failed: u64,
    pub active: u64,
}

fn count(r: &PgRow, column: &str) -> Result<u64, sqlx::Error> {
    super::read(column, r.try_get::<i64, _>(column)?)
}

pub async fn automation_counts(
    pool: &PgPool,
    workspace_id: &str,
    automation_id: &str,
) -> Result<Counts, sqlx::Error> {
    let r = sqlx::query(
        "SELECT count(*) FILTER (WHERE kind = 'triggered') AS triggered,
                count(*) FILTER (WHERE kind = 'enrolled') AS enrolled,
                count(*) FILTER (WHERE kind = 'completed') AS completed,
                count(*) FILTER (WHERE kind = 'exited') AS exited,
                count(*) FILTER (WHERE emailed) AS emails_sent,
                count(*) FILTER (WHERE kind = 'action_done') AS actions_done,
                count(*) FILTER (WHERE kind = 'action_failed') AS actions_failed
         FROM activity WHERE workspace_id = $1 AND automation_id = $2",
    )
    .bind(workspace_id)
    .bind(automation_id)
    .fetch_one(pool)
    .await?;
    Ok(Counts {
        triggered: count(&r, "triggered")?,
        enrolled: count(&r, "enrolled")?,
        completed: count(&r, "completed")?,
        exited: count(&r, "exited")?,
        emails_sent: count(&r, "emails_sent")?,
        actions_done: count(&r, "actions_done")?,
        actions_failed: count(&r, "actions_failed")?,
        active: 0,
    })
}

pub async fn sequence_counts(
    pool: &PgPool,
    workspace_id: &str,
    sequence_id: &str,
) -> Result<Counts, sqlx::Error> {
    let r = sqlx::query(
        "SELECT count(*) FILTER (WHERE kind = 'enrolled') AS enrolled,
                count(*) FILTER (WHERE kind = 'completed') AS completed,
                count(*) FILTER (WHERE kind = 'exited') AS exited,
                count(*) FILTER (WHERE emailed AND kind = 'step_done') AS emails_sent,
                (SELECT count(*) FROM enrollments
                  WHERE workspace_id = $1 AND sequence_id = $2 AND status = 'active') AS active
         FROM activity WHERE workspace_id = $1 AND sequence_id = $2",
    )
    .bind(workspace_id)
    .bind(sequence_id)
    .fetch_one(pool)
    .await?;
    Ok(Counts {
        enrolled: count(&r, "enrolled")?,
        completed: count(&r, "completed")?,
        exited: count(&r, "exited")?,
        emails_sent: count(&r, "emails_sent")?,
        active: count(&r, "active")?,
        ..Counts::default()
    })
}

/// A sequence's step outcomes by step index, for its funnel. A wait's detail ("until …") differs
/// per row, so only email steps keep theirs as the reason.
pub async fn step_groups(
    pool: &PgPool,
    workspace_id: &str,
    sequence_id: &str,
) -> Result<Vec<StepGroup>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT step_index, kind, emailed,
                CASE WHEN step_type = 'email' THEN detail ELSE '' END AS reason, count(*) AS n
         FROM activity
         WHERE workspace_id = $1 AND sequence_id = $2 AND kind IN ('step_done', 'step_failed')
           AND step_index IS NOT NULL
         GROUP BY 1, 2, 3, 4",
    )
    .bind(workspace_id)
    .bind(sequence_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let emailed: bool = r.try_get("emailed")?;
            let reason: String = r.try_get("reason")?;
            let outcome = match Kind::parse(&kind)? {
                Kind::StepFailed => StepOutcome::Failed(reason),
                _ if emailed => StepOutcome::Sent,
                _ if reason.is_empty() => StepOutcome::Other,
                _ => StepOutcome::Skipped(reason),
            };
            Ok(StepGroup {
                step_index: super::get_u32(r, "step_index")?,
                outcome,
                count: count(r, "n")?,
            })
        })
        .collect()
}
