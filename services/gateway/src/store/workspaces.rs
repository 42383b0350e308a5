//! Workspaces: created by `gateway admin create-workspace` with their first API key, in one
//! transaction.

use meisa_model::id;
use serde::Serialize;
use sqlx::PgPool;

use super::{StoreError, keys};

/// A new workspace and its first API key (in clear, shown once).
#[derive(Debug, Serialize)]
pub struct CreatedWorkspace {
    pub workspace_id: String,
    pub api_key: String,
}

/// Creates the workspace and its first key together, so a failure never leaves a workspace
/// nobody can call the API for.
pub async fn create(pool: &PgPool, name: &str) -> Result<CreatedWorkspace, StoreError> {
    let id = id::new("ws");
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO workspaces (id, name) VALUES ($1, $2)")
        .bind(&id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let api_key = keys::create(&mut *tx, &id).await?;
    tx.commit().await?;
    Ok(CreatedWorkspace {
        workspace_id: id,
        api_key,
    })
}

pub async fn exists(pool: &PgPool, id: &str) -> Result<bool, StoreError> {
    let found: Option<(String,)> = sqlx::query_as("SELECT id FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}
