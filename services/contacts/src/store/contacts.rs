//! Reading and writing contact rows.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow};

use crate::domain::{Contact, FieldValue};

const COLUMNS: &str = "workspace_id, id, email, external_id, first_name, last_name, subscribed, \
                       tags, custom_fields, version, created_at, updated_at";

fn from_row(row: &PgRow) -> Result<Contact, sqlx::Error> {
    let custom: serde_json::Value = row.try_get("custom_fields")?;
    let custom_fields = custom
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| FieldValue::from_json(v).map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    let tags: Vec<String> = row.try_get("tags")?;
    Ok(Contact {
        workspace_id: row.try_get("workspace_id")?,
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        external_id: row.try_get("external_id")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        subscribed: row.try_get("subscribed")?,
        tags: tags.into_iter().collect(),
        custom_fields,
        version: row.try_get("version")?,
        created_at: row.try_get::<DateTime<Utc>, _>("created_at")?,
        updated_at: row.try_get::<DateTime<Utc>, _>("updated_at")?,
    })
}

fn custom_json(c: &Contact) -> serde_json::Value {
    serde_json::Value::Object(
        c.custom_fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

/// Locks the contacts an upsert can match: by external id and by email (at most two rows).
pub async fn lock_matches(
    conn: &mut PgConnection,
    workspace_id: &str,
    external_id: Option<&str>,
    email: &str,
) -> Result<Vec<Contact>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts
         WHERE workspace_id = $1 AND (email = $2 OR external_id = $3)
         ORDER BY id FOR UPDATE"
    ))
    .bind(workspace_id)
    .bind(email)
    .bind(external_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn lock_by_id(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<Contact>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub enum Lookup<'a> {
    Id(&'a str),
    Email(&'a str),
    ExternalId(&'a str),
}

pub async fn get(
    pool: &PgPool,
    workspace_id: &str,
    by: Lookup<'_>,
) -> Result<Option<Contact>, sqlx::Error> {
    let (column, value) = match by {
        Lookup::Id(v) => ("id", v.to_string()),
        Lookup::Email(v) => ("email", v.trim().to_lowercase()),
        Lookup::ExternalId(v) => ("external_id", v.to_string()),
    };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE workspace_id = $1 AND {column} = $2"
    ))
    .bind(workspace_id)
    .bind(value)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A page of contacts in creation order, starting after `cursor` (an id).
pub async fn list(
    pool: &PgPool,
    workspace_id: &str,
    tag: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Vec<Contact>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts
         WHERE workspace_id = $1 AND ($2::text IS NULL OR tags @> ARRAY[$2::text])
           AND ($3::text IS NULL OR id > $3)
         ORDER BY id LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(tag)
    .bind(cursor)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn insert(conn: &mut PgConnection, c: &Contact) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO contacts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&c.workspace_id)
    .bind(&c.id)
    .bind(&c.email)
    .bind(&c.external_id)
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(c.subscribed)
    .bind(c.tags.iter().cloned().collect::<Vec<_>>())
    .bind(custom_json(c))
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update(conn: &mut PgConnection, c: &Contact) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contacts SET email = $3, external_id = $4, first_name = $5, last_name = $6,
                subscribed = $7, tags = $8, custom_fields = $9, version = $10, updated_at = $11
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(&c.workspace_id)
    .bind(&c.id)
    .bind(&c.email)
    .bind(&c.external_id)
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(c.subscribed)
    .bind(c.tags.iter().cloned().collect::<Vec<_>>())
    .bind(custom_json(c))
    .bind(c.version)
    .bind(c.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(
    conn: &mut PgConnection,
    workspace_id: &str,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM contacts WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
