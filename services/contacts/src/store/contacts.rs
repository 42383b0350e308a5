//! Reading and writing contact rows.

use chrono::{DateTime, Utc};
use sqlx::{
    PgConnection, PgPool, Postgres, Row,
    postgres::{PgArguments, PgRow},
    query::Query,
};

use super::{Corrupt, StoreError};
use crate::domain::{Contact, FieldValue};

const COLUMNS: &str = "workspace_id, id, email, external_id, first_name, last_name, subscribed, \
                       tags, custom_fields, version, created_at, updated_at";

fn from_row(row: &PgRow) -> Result<Contact, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |problem: String| Corrupt::new("contacts", format!("contact {id}: {problem}"));
    let custom: serde_json::Value = row.try_get("custom_fields")?;
    let serde_json::Value::Object(custom) = custom else {
        return Err(corrupt("custom_fields is not a JSON object".into()).into());
    };
    let custom_fields = custom
        .iter()
        .map(|(k, v)| match FieldValue::from_json(v) {
            Some(v) => Ok((k.clone(), v)),
            None => Err(corrupt(format!(
                "custom_fields.{k} is not a string, number or boolean"
            ))),
        })
        .collect::<Result<_, _>>()?;
    let tags: Vec<String> = row.try_get("tags")?;
    Ok(Contact {
        workspace_id: row.try_get("workspace_id")?,
        id,
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

pub enum Lookup<'a> {
    Id(&'a str),
    Email(&'a str),
    ExternalId(&'a str),
}

pub async fn get(
    pool: &PgPool,
    workspace_id: &str,
    by: Lookup<'_>,
) -> Result<Option<Contact>, StoreError> {
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
    // An ILIKE pattern, escaped by the caller.
    query: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Vec<Contact>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts
         WHERE workspace_id = $1 AND ($2::text IS NULL OR tags @> ARRAY[$2::text])
           AND ($3::text IS NULL OR id > $3)
           AND ($5::text IS NULL OR email ILIKE $5 OR external_id ILIKE $5
                OR concat_ws(' ', first_name, last_name) ILIKE $5)
         ORDER BY id LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(tag)
    .bind(cursor)
    .bind(limit)
    .bind(query)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// What one write can touch: the contacts an upsert can match (by email, by external id), or the
/// contact an edit or an erasure names.
pub enum LockKey<'a> {
    Match {
        workspace_id: &'a str,
        email: &'a str,
        external_id: Option<&'a str>,
    },
    Id {
        workspace_id: &'a str,
        id: &'a str,
    },
}

/// Locks every contact any of `keys` can touch, in one statement and in (workspace, id) order,
/// so that two transactions lock shared rows in the same order and do not deadlock.
pub async fn lock_many(
    conn: &mut PgConnection,
    keys: &[LockKey<'_>],
) -> Result<Vec<Contact>, StoreError> {
    let (mut match_ws, mut emails, mut exts) = (Vec::new(), Vec::new(), Vec::new());
    let (mut id_ws, mut ids) = (Vec::new(), Vec::new());
    for key in keys {
        match key {
            LockKey::Match {
                workspace_id,
                email,
                external_id,
            } => {
                match_ws.push(*workspace_id);
                emails.push(*email);
                exts.push(*external_id);
            }
            LockKey::Id { workspace_id, id } => {
                id_ws.push(*workspace_id);
                ids.push(*id);
            }
        }
    }
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE (workspace_id, id) IN (
             SELECT c.workspace_id, c.id FROM contacts c
               JOIN unnest($1::text[], $2::text[]) AS k(ws, email) ON c.workspace_id = k.ws AND c.email = k.email
             UNION
             SELECT c.workspace_id, c.id FROM contacts c
               JOIN unnest($1::text[], $3::text[]) AS k(ws, ext) ON c.workspace_id = k.ws AND c.external_id = k.ext
             UNION
             SELECT ws, id FROM unnest($4::text[], $5::text[]) AS k(ws, id))
         ORDER BY workspace_id, id FOR UPDATE"
    ))
    .bind(match_ws)
    .bind(emails)
    .bind(exts)
    .bind(id_ws)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Arrays of arrays do not bind as `text[][]` per row, so tags travel as one JSON array each.
fn tags_json(c: &Contact) -> serde_json::Value {
    serde_json::Value::from(c.tags.iter().cloned().collect::<Vec<_>>())
}

/// Contacts as one set of rows, `v`, bound by [`bind_rows`] in this column order.
const ROWS: &str = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::bool[], $8::jsonb[], $9::jsonb[], $10::bigint[], $11::timestamptz[],
                          $12::timestamptz[])
         AS v(ws, id, email, ext, first_name, last_name, subscribed, tags, custom_fields, version,
              created_at, updated_at)";

fn bind_rows<'q>(
    query: Query<'q, Postgres, PgArguments>,
    cs: &'q [&Contact],
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(
            cs.iter()
                .map(|c| c.workspace_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(cs.iter().map(|c| c.id.as_str()).collect::<Vec<_>>())
        .bind(cs.iter().map(|c| c.email.as_str()).collect::<Vec<_>>())
        .bind(
            cs.iter()
                .map(|c| c.external_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            cs.iter()
                .map(|c| c.first_name.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            cs.iter()
                .map(|c| c.last_name.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(cs.iter().map(|c| c.subscribed).collect::<Vec<_>>())
        .bind(cs.iter().map(|c| tags_json(c)).collect::<Vec<_>>())
        .bind(cs.iter().map(|c| custom_json(c)).collect::<Vec<_>>())
        .bind(cs.iter().map(|c| c.version).collect::<Vec<_>>())
        .bind(cs.iter().map(|c| c.created_at).collect::<Vec<_>>())
        .bind(cs.iter().map(|c| c.updated_at).collect::<Vec<_>>())
}

pub async fn insert_many(conn: &mut PgConnection, cs: &[&Contact]) -> Result<(), sqlx::Error> {
    if cs.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO contacts (workspace_id, id, email, external_id, first_name, last_name, subscribed,
                               tags, custom_fields, version, created_at, updated_at)
         SELECT ws, id, email, ext, first_name, last_name, subscribed,
                ARRAY(SELECT jsonb_array_elements_text(tags)), custom_fields, version, created_at, updated_at
         FROM {ROWS}"
    );
    bind_rows(sqlx::query(&sql), cs).execute(&mut *conn).await?;
    Ok(())
}

/// Every column but the key and `created_at`, which never change.
pub async fn update_many(conn: &mut PgConnection, cs: &[&Contact]) -> Result<(), sqlx::Error> {
    if cs.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE contacts c SET email = v.email, external_id = v.ext, first_name = v.first_name,
                last_name = v.last_name, subscribed = v.subscribed,
                tags = ARRAY(SELECT jsonb_array_elements_text(v.tags)), custom_fields = v.custom_fields,
                version = v.version, updated_at = v.updated_at
         FROM {ROWS}
         WHERE c.workspace_id = v.ws AND c.id = v.id"
    );
    bind_rows(sqlx::query(&sql), cs).execute(&mut *conn).await?;
    Ok(())
}

/// Deletes contacts by (workspace, id).
pub async fn delete_many(
    conn: &mut PgConnection,
    ids: &[(String, String)],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM contacts WHERE (workspace_id, id) IN
           (SELECT * FROM unnest($1::text[], $2::text[]))",
    )
    .bind(ids.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
    .bind(ids.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
