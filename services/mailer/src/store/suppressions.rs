//! The suppression list: addresses never mailed (manual entries, hard bounces, complaints).

use chrono::{DateTime, Utc};

use super::Store;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SuppressionRow {
    pub workspace_id: String,
    pub email: String,
    pub reason: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Returns the stored entry and whether it is new.
    pub async fn add_suppression(
        &self,
        ws: &str,
        email: &str,
        reason: &str,
        detail: &str,
    ) -> sqlx::Result<(SuppressionRow, bool)> {
        let inserted: Option<SuppressionRow> = sqlx::query_as(
            "INSERT INTO suppressions (workspace_id, email, reason, detail) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, email) DO NOTHING
             RETURNING workspace_id, email, reason, detail, created_at",
        )
        .bind(ws)
        .bind(email)
        .bind(reason)
        .bind(detail)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok((row, true));
        }
        let row = sqlx::query_as(
            "SELECT workspace_id, email, reason, detail, created_at FROM suppressions
             WHERE workspace_id = $1 AND email = $2",
        )
        .bind(ws)
        .bind(email)
        .fetch_one(&self.pool)
        .await?;
        Ok((row, false))
    }

    /// By address; `after` is the last address of the previous page.
    pub async fn list_suppressions(
        &self,
        ws: &str,
        after: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<SuppressionRow>> {
        sqlx::query_as(
            "SELECT workspace_id, email, reason, detail, created_at FROM suppressions
             WHERE workspace_id = $1 AND ($2::text IS NULL OR email > $2)
             ORDER BY email LIMIT $3",
        )
        .bind(ws)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn remove_suppression(&self, ws: &str, email: &str) -> sqlx::Result<bool> {
        let r = sqlx::query("DELETE FROM suppressions WHERE workspace_id = $1 AND email = $2")
            .bind(ws)
            .bind(email)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
