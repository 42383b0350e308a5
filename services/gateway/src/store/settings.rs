//! A workspace's dashboard settings: the sender a new template starts with.

use sqlx::{PgPool, Row};

use super::StoreError;

#[derive(Clone, Debug, Default)]
pub struct SenderDefaults {
    pub from: String,
    pub reply_to: String,
}

pub async fn sender_defaults(
    pool: &PgPool,
    workspace_id: &str,
) -> Result<SenderDefaults, StoreError> {
    let row = sqlx::query(
        "SELECT default_from, default_reply_to FROM workspace_settings WHERE workspace_id = $1",
    )
    .bind(workspace_id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(row) => SenderDefaults {
            from: row.try_get("default_from")?,
            reply_to: row.try_get("default_reply_to")?,
        },
        None => SenderDefaults::default(),
    })
}

pub async fn set_sender_defaults(
    pool: &PgPool,
    workspace_id: &str,
    defaults: &SenderDefaults,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO workspace_settings (workspace_id, default_from, default_reply_to) \
         VALUES ($1, $2, $3) ON CONFLICT (workspace_id) DO UPDATE \
         SET default_from = $2, default_reply_to = $3, updated_at = now()",
    )
    .bind(workspace_id)
    .bind(&defaults.from)
    .bind(&defaults.reply_to)
    .execute(pool)
    .await?;
    Ok(())
}
