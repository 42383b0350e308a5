//! `gateway admin …`: operator commands that run against the gateway's database directly, so they
//! work on any deployment reachable through `DATABASE_URL`. Each one migrates first, so it also
//! works on a fresh database.

use serde::Serialize;
use sqlx::PgPool;

use crate::accounts::{self, AccountError, NewPassword};
use crate::store::{
    self, StoreError,
    keys::{self, KeyInfo},
    workspaces::{self, CreatedWorkspace},
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot connect to DATABASE_URL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Migrate(#[from] crate::MigrateError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("{0}")]
    Invalid(String),
}

/// Admin commands work on a fresh server too: the database is created and migrated first.
pub async fn connect(database_url: &str) -> Result<PgPool, AdminError> {
    crate::migrate(database_url).await?;
    store::connect(database_url, 2)
        .await
        .map_err(AdminError::Connect)
}

pub async fn create_workspace(pool: &PgPool, name: &str) -> Result<CreatedWorkspace, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AdminError::Invalid(
            "--name must be 1 to 200 characters".into(),
        ));
    }
    Ok(workspaces::create(pool, name).await?)
}

/// A second key for a workspace, e.g. to rotate: create the new one, deploy it, revoke the old.
pub async fn create_key(pool: &PgPool, workspace_id: &str) -> Result<CreatedWorkspace, AdminError> {
    if !workspaces::exists(pool, workspace_id).await? {
        return Err(AdminError::Invalid(format!("no workspace {workspace_id}")));
    }
    let api_key = keys::create(pool, workspace_id).await?;
    Ok(CreatedWorkspace {
        workspace_id: workspace_id.into(),
        api_key,
    })
}

pub async fn list_keys(pool: &PgPool, workspace_id: &str) -> Result<Vec<KeyInfo>, AdminError> {
    if !workspaces::exists(pool, workspace_id).await? {
        return Err(AdminError::Invalid(format!("no workspace {workspace_id}")));
    }
    Ok(keys::list(pool, workspace_id).await?)
}

#[derive(Debug, Serialize)]
pub struct Revoked {
    pub revoked: KeyInfo,
}

/// Revokes the one active key that starts with `prefix` (`meisa_sk_` and at least 8 more
/// characters, as `list-keys` shows; a whole key works too). Refuses when several keys match
/// rather than guess.
pub async fn revoke_key(pool: &PgPool, prefix: &str) -> Result<Revoked, AdminError> {
    let prefix = prefix.trim();
    let display = keys::display_prefix(prefix);
    if !prefix.starts_with(keys::KEY_PREFIX)
        || display.len() < keys::KEY_PREFIX.len() + keys::DISPLAY_RANDOM_LEN
    {
        return Err(AdminError::Invalid(format!(
            "--key-prefix must be {}… with at least {} characters after it, as `admin list-keys` shows",
            keys::KEY_PREFIX,
            keys::DISPLAY_RANDOM_LEN
        )));
    }
    // A whole key is matched exactly. Of a prefix, only what is stored (meisa_sk_ + 8) can be
    // compared, and it must pick out one key.
    let candidates = if prefix.len() > display.len() && keys::looks_like_key(prefix) {
        keys::find_active_by_hash(pool, &keys::hash(prefix))
            .await?
            .into_iter()
            .collect()
    } else {
        keys::find_active_by_prefix(pool, &display).await?
    };
    match candidates.as_slice() {
        [] => Err(AdminError::Invalid(format!(
            "no active key starts with {display}"
        ))),
        [one] => keys::revoke(pool, &one.key_id)
            .await?
            .map(|revoked| Revoked { revoked })
            .ok_or_else(|| AdminError::Invalid(format!("key {display} was revoked meanwhile"))),
        many => Err(AdminError::Invalid(format!(
            "{} active keys start with {display}; pass the whole key",
            many.len()
        ))),
    }
}

/// A dashboard login, as `create-user` prints it (the password in clear, this once).
#[derive(Debug, Serialize)]
pub struct CreatedUser {
    pub workspace_id: String,
    pub user_id: String,
    pub email: String,
    pub password: String,
}

/// A dashboard user for a workspace; with no password given, one is generated (what `make dev`
/// does for the first user, printing it).
pub async fn create_user(
    pool: &PgPool,
    workspace_id: &str,
    email: &str,
    password: Option<&str>,
) -> Result<CreatedUser, AdminError> {
    if !workspaces::exists(pool, workspace_id).await? {
        return Err(AdminError::Invalid(format!("no workspace {workspace_id}")));
    }
    let email = meisa_model::EmailAddress::parse(email)
        .map_err(|e| AdminError::Invalid(format!("--email: {e}")))?;
    let password = match password {
        Some(p) => NewPassword::parse(p)?,
        None => NewPassword::generate(),
    };
    let shown = password.expose().to_owned();
    let user = accounts::create_user(pool, workspace_id, &email, password).await?;
    Ok(CreatedUser {
        workspace_id: user.workspace_id,
        user_id: user.id,
        email: user.email,
        password: shown,
    })
}
