//! Dashboard sessions: the cookie holds a random token, the table its SHA-256, the user and the
//! session's CSRF token. Signing in always makes a new row (the session is rotated), signing out
//! deletes it, and removing a user deletes all of theirs.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::{StoreError, accounts::User, keys::KeyHash};

/// A live session and who it belongs to.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
}

pub async fn create(
    pool: &PgPool,
    token_hash: &KeyHash,
    user_id: &str,
    csrf_token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dashboard_sessions (token_hash, user_id, csrf_token, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&token_hash[..])
    .bind(user_id)
    .bind(csrf_token)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session behind a token, if it exists and has not expired.
pub async fn find(pool: &PgPool, token_hash: &KeyHash) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query(
        "SELECT u.id, u.workspace_id, u.email, u.created_at, s.csrf_token \
         FROM dashboard_sessions s JOIN dashboard_users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > now()",
    )
    .bind(&token_hash[..])
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Session {
            user: User {
                id: row.try_get("id")?,
                workspace_id: row.try_get("workspace_id")?,
                email: row.try_get("email")?,
                created_at: row.try_get("created_at")?,
            },
            csrf_token: row.try_get("csrf_token")?,
        })
    })
    .transpose()
}

pub async fn delete(pool: &PgPool, token_hash: &KeyHash) -> Result<(), StoreError> {
    // Expired sessions of anyone go too: signing out is rare enough to carry the clean-up.
    sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1 OR expires_at < now()")
        .bind(&token_hash[..])
        .execute(pool)
        .await?;
    Ok(())
}
