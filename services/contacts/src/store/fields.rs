//! The field registry: the type each custom field got the first time its workspace sent it.
//! A type never changes once fixed, so committed entries are cached for the process's life.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

use super::{Corrupt, StoreError};
use crate::domain::FieldType;

/// The `type` column as the model's type; the table's CHECK allows only the four spellings, so
/// anything else is a corrupt row.
fn stored_type(workspace_id: &str, name: &str, ty: &str) -> Result<FieldType, Corrupt> {
    FieldType::parse(ty).ok_or_else(|| {
        Corrupt::new(
            "fields",
            format!("field {name} of {workspace_id} has type {ty:?}"),
        )
    })
}

type Key = (String, String);

#[derive(Clone, Default)]
pub struct FieldRegistry {
    committed: Arc<RwLock<HashMap<Key, FieldType>>>,
}

/// The registry as one transaction sees it; [`TxFields::commit`] publishes what it learnt to the
/// shared cache only after the transaction committed.
pub struct TxFields {
    registry: FieldRegistry,
    seen: HashMap<Key, FieldType>,
}

impl FieldRegistry {
    pub fn begin(&self) -> TxFields {
        TxFields {
            registry: self.clone(),
            seen: HashMap::new(),
        }
    }
}

impl TxFields {
    pub async fn get(
        &mut self,
        conn: &mut PgConnection,
        workspace_id: &str,
        name: &str,
    ) -> Result<Option<FieldType>, StoreError> {
        let key = (workspace_id.to_string(), name.to_string());
        if let Some(t) = self.seen.get(&key) {
            return Ok(Some(*t));
        }
        if let Some(t) = self
            .registry
            .committed
            .read()
            .ok()
            .and_then(|m| m.get(&key).copied())
        {
            return Ok(Some(t));
        }
        let ty: Option<String> =
            sqlx::query_scalar("SELECT type FROM fields WHERE workspace_id = $1 AND name = $2")
                .bind(workspace_id)
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        let ty = ty
            .map(|t| stored_type(workspace_id, name, &t))
            .transpose()?;
        if let Some(t) = ty {
            self.seen.insert(key, t);
        }
        Ok(ty)
    }

    /// Registers a new field. If another transaction registered it first, its type wins and is
    /// returned, so the caller re-checks the value against it.
    pub async fn register(
        &mut self,
        conn: &mut PgConnection,
        workspace_id: &str,
        name: &str,
        ty: FieldType,
        now: DateTime<Utc>,
    ) -> Result<FieldType, StoreError> {
        sqlx::query(
            "INSERT INTO fields (workspace_id, name, type, first_seen_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, name) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(ty.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let stored: String =
            sqlx::query_scalar("SELECT type FROM fields WHERE workspace_id = $1 AND name = $2")
                .bind(workspace_id)
                .bind(name)
                .fetch_one(&mut *conn)
                .await?;
        let stored = stored_type(workspace_id, name, &stored)?;
        self.seen
            .insert((workspace_id.to_string(), name.to_string()), stored);
        Ok(stored)
    }

    pub fn commit(self) {
        if let Ok(mut map) = self.registry.committed.write() {
            map.extend(self.seen);
        }
    }
}

pub struct FieldInfo {
    pub name: String,
    pub ty: FieldType,
    pub first_seen_at: DateTime<Utc>,
    pub contacts: i64,
}

/// Every field of a workspace with how many contacts have it now.
pub async fn list(pool: &PgPool, workspace_id: &str) -> Result<Vec<FieldInfo>, StoreError> {
    let rows = sqlx::query(
        "SELECT f.name, f.type, f.first_seen_at,
                (SELECT count(*) FROM contacts c
                  WHERE c.workspace_id = f.workspace_id AND c.custom_fields ? f.name) AS contacts
         FROM fields f WHERE f.workspace_id = $1 ORDER BY f.name",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name")?;
            let ty: String = r.try_get("type")?;
            Ok(FieldInfo {
                ty: stored_type(workspace_id, &name, &ty)?,
                name,
                first_seen_at: r.try_get("first_seen_at")?,
                contacts: r.try_get("contacts")?,
            })
        })
        .collect()
}
