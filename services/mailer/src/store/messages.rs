//! Messages: the row each send creates (unique per idempotency key), the delivery queue the
//! workers claim under a lease, and the status changes a delivery makes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub workspace_id: String,
    pub id: Uuid,
    pub idempotency_key: String,
    pub contact_id: String,
    pub to_email: String,
    pub template_id: Option<Uuid>,
    pub source_automation_id: String,
    pub source_sequence_id: String,
    pub source_step: Option<i32>,
    pub source_enrollment_id: String,
    pub source_event_id: String,
    pub status: String,
    pub reason: String,
    pub subject: String,
    pub html_body: String,
    pub text_body: String,
    pub message_id_header: String,
    pub attempts: i32,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "workspace_id, id, idempotency_key, contact_id, to_email, template_id,
    source_automation_id, source_sequence_id, source_step, source_enrollment_id, source_event_id,
    status, reason, subject, html_body, text_body, message_id_header, attempts, last_error,
    created_at, updated_at, sent_at";
/// Lists leave the bodies out.
const LIST_COLUMNS: &str = "workspace_id, id, idempotency_key, contact_id, to_email, template_id,
    source_automation_id, source_sequence_id, source_step, source_enrollment_id, source_event_id,
    status, reason, subject, '' AS html_body, '' AS text_body, message_id_header, attempts,
    last_error, created_at, updated_at, sent_at";

#[derive(Clone, Debug, Default)]
pub struct NewMessage {
    pub workspace_id: String,
    pub id: Uuid,
    pub idempotency_key: String,
    pub contact_id: String,
    pub to_email: String,
    pub template_id: Option<Uuid>,
    pub source_automation_id: String,
    pub source_sequence_id: String,
    pub source_step: Option<i32>,
    pub source_enrollment_id: String,
    pub source_event_id: String,
    pub status: &'static str,
    pub reason: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub from_addr: String,
    pub reply_to: Option<String>,
    pub message_id_header: String,
}

/// What decides whether a message may go out, read in one round trip.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SendGate {
    /// The suppression list's reason for this address.
    pub suppression: Option<String>,
    pub unsubscribed: Option<bool>,
    /// The contact's version once contacts recorded the unsubscribe.
    pub unsubscribed_version: Option<i64>,
}

/// A claimed delivery.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub message_id: Uuid,
    pub workspace_id: String,
    pub queued_at: DateTime<Utc>,
    pub attempts: i32,
    pub to_email: String,
    pub subject: String,
    pub html_body: String,
    pub text_body: String,
    pub from_addr: String,
    pub reply_to: Option<String>,
    pub message_id_header: String,
}

#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub contact_id: Option<String>,
    pub automation_id: Option<String>,
    pub sequence_id: Option<String>,
    pub status: Option<&'static str>,
    pub template_id: Option<Uuid>,
}

impl Store {
    /// Inserts the message and, when queued, its delivery row, in one statement. Returns
    /// `(row, true)`, or the message already stored under the idempotency key and `false`:
    /// concurrent callers with one key wait on the unique index and all see the one row.
    pub async fn insert_message(&self, m: &NewMessage) -> sqlx::Result<(MessageRow, bool)> {
        let inserted: Option<MessageRow> = sqlx::query_as(&format!(
            "WITH m AS (
                INSERT INTO messages (workspace_id, id, idempotency_key, contact_id, to_email, template_id,
                    source_automation_id, source_sequence_id, source_step, source_enrollment_id,
                    source_event_id, status, reason, subject, html_body, text_body, from_addr, reply_to,
                    message_id_header)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                ON CONFLICT (workspace_id, idempotency_key) DO NOTHING
                RETURNING {COLUMNS}
             ), q AS (
                INSERT INTO delivery_queue (message_id, workspace_id)
                SELECT id, workspace_id FROM m WHERE m.status = 'queued'
             )
             SELECT {COLUMNS} FROM m"
        ))
        .bind(&m.workspace_id)
        .bind(m.id)
        .bind(&m.idempotency_key)
        .bind(&m.contact_id)
        .bind(&m.to_email)
        .bind(m.template_id)
        .bind(&m.source_automation_id)
        .bind(&m.source_sequence_id)
        .bind(m.source_step)
        .bind(&m.source_enrollment_id)
        .bind(&m.source_event_id)
        .bind(m.status)
        .bind(&m.reason)
        .bind(&m.subject)
        .bind(&m.html)
        .bind(&m.text)
        .bind(&m.from_addr)
        .bind(&m.reply_to)
        .bind(&m.message_id_header)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok((row, true));
        }
        let existing = self
            .message_by_key(&m.workspace_id, &m.idempotency_key)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok((existing, false))
    }

    pub async fn message_by_key(&self, ws: &str, key: &str) -> sqlx::Result<Option<MessageRow>> {
        sqlx::query_as(&format!(
            "SELECT {LIST_COLUMNS} FROM messages WHERE workspace_id = $1 AND idempotency_key = $2"
        ))
        .bind(ws)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn get_message(&self, ws: &str, id: Uuid) -> sqlx::Result<Option<MessageRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM messages WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(ws)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// For unsubscribe tokens, which name the message only.
    pub async fn message_by_id(&self, id: Uuid) -> sqlx::Result<Option<MessageRow>> {
        sqlx::query_as(&format!(
            "SELECT {LIST_COLUMNS} FROM messages WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Newest first.
    pub async fn list_messages(
        &self,
        ws: &str,
        f: &MessageFilter,
        before: Option<Uuid>,
        limit: i64,
    ) -> sqlx::Result<Vec<MessageRow>> {
        sqlx::query_as(&format!(
            "SELECT {LIST_COLUMNS} FROM messages
             WHERE workspace_id = $1
               AND ($2::text IS NULL OR contact_id = $2)
               AND ($3::text IS NULL OR source_automation_id = $3)
               AND ($4::text IS NULL OR source_sequence_id = $4)
               AND ($5::text IS NULL OR status = $5)
               AND ($6::uuid IS NULL OR template_id = $6)
               AND ($7::uuid IS NULL OR id < $7)
             ORDER BY id DESC LIMIT $8"
        ))
        .bind(ws)
        .bind(&f.contact_id)
        .bind(&f.automation_id)
        .bind(&f.sequence_id)
        .bind(f.status)
        .bind(f.template_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn send_gate(
        &self,
        ws: &str,
        email: &str,
        contact_id: &str,
    ) -> sqlx::Result<SendGate> {
        sqlx::query_as(
            "SELECT (SELECT reason FROM suppressions WHERE workspace_id = $1 AND email = $2) AS suppression,
                    (SELECT true FROM unsubscribes WHERE workspace_id = $1 AND contact_id = $3) AS unsubscribed,
                    (SELECT contact_version FROM unsubscribes WHERE workspace_id = $1 AND contact_id = $3) AS unsubscribed_version",
        )
        .bind(ws)
        .bind(email)
        .bind(contact_id)
        .fetch_one(&self.pool)
        .await
    }

    // ---------------------------------------------------------------------- the delivery queue

    /// Claims up to `limit` due deliveries for `lease`. Rows locked by another claimer are
    /// skipped, not waited for; rows whose lease ran out (their worker died) are due again.
    pub async fn claim(&self, worker: Uuid, limit: i64, lease: Duration) -> sqlx::Result<Vec<Job>> {
        sqlx::query_as(
            "WITH c AS (
                SELECT message_id FROM delivery_queue
                WHERE next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
                ORDER BY next_attempt_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
             ), u AS (
                UPDATE delivery_queue q
                SET claimed_until = now() + make_interval(secs => $2), claimed_by = $3
                FROM c WHERE q.message_id = c.message_id
                RETURNING q.message_id, q.workspace_id, q.queued_at
             )
             SELECT u.message_id, u.workspace_id, u.queued_at, m.attempts, m.to_email, m.subject,
                    m.html_body, m.text_body, m.from_addr, m.reply_to, m.message_id_header
             FROM u JOIN messages m ON m.workspace_id = u.workspace_id AND m.id = u.message_id",
        )
        .bind(limit)
        .bind(lease.as_secs_f64())
        .bind(worker)
        .fetch_all(&self.pool)
        .await
    }

    /// The server accepted the message: one statement takes it off the queue and marks it sent.
    /// False when the message is gone: its contact was erased while it was being delivered.
    pub async fn mark_sent(&self, ws: &str, id: Uuid) -> sqlx::Result<bool> {
        let r = sqlx::query(
            "WITH d AS (DELETE FROM delivery_queue WHERE message_id = $2)
             UPDATE messages SET status = 'sent', sent_at = now(), updated_at = now(),
                    attempts = attempts + 1, last_error = '', reason = ''
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn retry_later(
        &self,
        ws: &str,
        id: Uuid,
        delay: Duration,
        error: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "WITH q AS (
                UPDATE delivery_queue SET next_attempt_at = now() + make_interval(secs => $3),
                       claimed_until = NULL, claimed_by = NULL
                WHERE message_id = $2
             )
             UPDATE messages SET attempts = attempts + 1, last_error = $4, updated_at = now()
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws)
        .bind(id)
        .bind(delay.as_secs_f64())
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Fails the message for good; with `suppress`, the address goes on the suppression list in
    /// the same transaction.
    pub async fn mark_failed(
        &self,
        ws: &str,
        id: Uuid,
        error: &str,
        suppress: Option<(&str, &str)>,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "WITH d AS (DELETE FROM delivery_queue WHERE message_id = $2)
             UPDATE messages SET status = 'failed', attempts = attempts + 1, last_error = $3,
                    reason = $3, updated_at = now()
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws)
        .bind(id)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if let Some((email, detail)) = suppress {
            sqlx::query(
                "INSERT INTO suppressions (workspace_id, email, reason, detail) VALUES ($1, $2, 'bounce', $3)
                 ON CONFLICT (workspace_id, email) DO NOTHING",
            )
            .bind(ws)
            .bind(email)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Gives claims back (on shutdown) so that another worker need not wait for the lease.
    pub async fn release(&self, worker: Uuid, ids: &[Uuid]) -> sqlx::Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let r = sqlx::query(
            "UPDATE delivery_queue SET claimed_until = NULL, claimed_by = NULL
             WHERE claimed_by = $1 AND message_id = ANY($2)",
        )
        .bind(worker)
        .bind(ids)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
