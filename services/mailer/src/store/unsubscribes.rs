//! Unsubscribes recorded from links, and their sync to the contacts service (retried until it
//! answers).

use uuid::Uuid;

use super::Store;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UnsubscribeRow {
    pub workspace_id: String,
    pub contact_id: String,
    pub contact_version: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PendingUnsubscribe {
    pub workspace_id: String,
    pub contact_id: String,
}

impl Store {
    /// Records an unsubscribe (again: a repeated one re-arms the contacts sync). Returns whether
    /// the contact had no unsubscribe on record before.
    pub async fn record_unsubscribe(
        &self,
        ws: &str,
        contact_id: &str,
        message_id: Uuid,
    ) -> sqlx::Result<bool> {
        let (inserted,): (bool,) = sqlx::query_as(
            "INSERT INTO unsubscribes (workspace_id, contact_id, message_id) VALUES ($1, $2, $3)
             ON CONFLICT (workspace_id, contact_id) DO UPDATE
                SET message_id = EXCLUDED.message_id, contact_version = NULL, synced_at = NULL,
                    created_at = now()
             RETURNING (xmax = 0)",
        )
        .bind(ws)
        .bind(contact_id)
        .bind(message_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(inserted)
    }

    pub async fn get_unsubscribe(
        &self,
        ws: &str,
        contact_id: &str,
    ) -> sqlx::Result<Option<UnsubscribeRow>> {
        sqlx::query_as(
            "SELECT workspace_id, contact_id, contact_version FROM unsubscribes
             WHERE workspace_id = $1 AND contact_id = $2",
        )
        .bind(ws)
        .bind(contact_id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn mark_unsubscribe_synced(
        &self,
        ws: &str,
        contact_id: &str,
        version: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE unsubscribes SET contact_version = $3, synced_at = now(), last_sync_error = ''
             WHERE workspace_id = $1 AND contact_id = $2",
        )
        .bind(ws)
        .bind(contact_id)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_unsubscribe_sync_failed(
        &self,
        ws: &str,
        contact_id: &str,
        error: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE unsubscribes SET sync_attempts = sync_attempts + 1, last_sync_error = $3
             WHERE workspace_id = $1 AND contact_id = $2",
        )
        .bind(ws)
        .bind(contact_id)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pending_unsubscribes(&self, limit: i64) -> sqlx::Result<Vec<PendingUnsubscribe>> {
        sqlx::query_as(
            "SELECT workspace_id, contact_id FROM unsubscribes WHERE synced_at IS NULL
             ORDER BY created_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }
}
