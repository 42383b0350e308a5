//! Dashboard users and their invitations. Passwords arrive here already hashed
//! ([`crate::accounts::password`]); invitation tokens only as their SHA-256.

use chrono::{DateTime, Utc};
use meisa_model::{EmailAddress, id};
use sqlx::{PgExecutor, PgPool, Row, postgres::PgRow};

use super::{StoreError, keys::KeyHash};

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// A user with the hash to check a password against, for sign-in only.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

fn user(row: &PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Whether a new user was created, or the address already has an account (anywhere: one account
/// per address, see the migration).
pub enum Created {
    User(User),
    EmailTaken,
}

pub async fn create(
    db: impl PgExecutor<'_>,
    workspace_id: &str,
    email: &EmailAddress,
    password_hash: &str,
) -> Result<Created, StoreError> {
    let row = sqlx::query(
        "INSERT INTO dashboard_users (id, workspace_id, email, password_hash) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING \
         RETURNING id, workspace_id, email, created_at",
    )
    .bind(id::new("usr"))
    .bind(workspace_id)
    .bind(email.as_str())
    .bind(password_hash)
    .fetch_optional(db)
    .await?;
    match row {
        Some(row) => Ok(Created::User(user(&row)?)),
        None => Ok(Created::EmailTaken),
    }
}

pub async fn credentials(
    pool: &PgPool,
    email: &EmailAddress,
) -> Result<Option<Credentials>, StoreError> {
    let row = sqlx::query(
        "SELECT id, workspace_id, email, created_at, password_hash FROM dashboard_users \
         WHERE email = $1",
    )
    .bind(email.as_str())
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Credentials {
            user: user(&row)?,
            password_hash: row.try_get("password_hash")?,
        })
    })
    .transpose()
}

/// The workspace's users, oldest first (the first one is whoever set the workspace up).
pub async fn list(pool: &PgPool, workspace_id: &str) -> Result<Vec<User>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, workspace_id, email, created_at FROM dashboard_users \
         WHERE workspace_id = $1 ORDER BY created_at, id",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
}

/// Removes a user of `workspace_id` (another workspace's id removes nothing); their sessions go
/// with them (ON DELETE CASCADE), so they are signed out everywhere at once.
pub async fn remove(pool: &PgPool, workspace_id: &str, user_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM dashboard_users WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Clone, Debug)]
pub struct Invite {
    pub workspace_id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn create_invite(
    pool: &PgPool,
    workspace_id: &str,
    email: &EmailAddress,
    invited_by: &str,
    token_hash: &KeyHash,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dashboard_invites (token_hash, workspace_id, email, invited_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token_hash[..])
    .bind(workspace_id)
    .bind(email.as_str())
    .bind(invited_by)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The open invitation behind a token: not accepted yet and not expired.
pub async fn open_invite(
    pool: &PgPool,
    token_hash: &KeyHash,
) -> Result<Option<Invite>, StoreError> {
    let row = sqlx::query(
        "SELECT workspace_id, email, created_at, expires_at FROM dashboard_invites \
         WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > now()",
    )
    .bind(&token_hash[..])
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Invite {
            workspace_id: row.try_get("workspace_id")?,
            email: row.try_get("email")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Accepts the invitation and creates its user in one transaction: a link works once, and a
/// crash between the two leaves the invitation open rather than used up without an account.
pub async fn accept_invite(
    pool: &PgPool,
    token_hash: &KeyHash,
    password_hash: &str,
) -> Result<Option<Created>, StoreError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE dashboard_invites SET accepted_at = now() \
         WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > now() \
         RETURNING workspace_id, email",
    )
    .bind(&token_hash[..])
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let workspace_id: String = row.try_get("workspace_id")?;
    let email: String = row.try_get("email")?;
    // Stored addresses went through EmailAddress::parse when the invitation was made.
    let email = EmailAddress::parse(&email)
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("invite email: {e}").into())))?;
    let created = create(&mut *tx, &workspace_id, &email, password_hash).await?;
    if matches!(created, Created::User(_)) {
        tx.commit().await?;
    }
    Ok(Some(created))
}

/// Invitations of the workspace that are still open, newest first.
pub async fn open_invites(pool: &PgPool, workspace_id: &str) -> Result<Vec<Invite>, StoreError> {
    let rows = sqlx::query(
        "SELECT workspace_id, email, created_at, expires_at FROM dashboard_invites \
         WHERE workspace_id = $1 AND accepted_at IS NULL AND expires_at > now() \
         ORDER BY created_at DESC",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Invite {
                workspace_id: row.try_get("workspace_id")?,
                email: row.try_get("email")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}
