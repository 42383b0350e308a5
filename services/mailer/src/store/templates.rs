//! Templates as saved (name, subject, HTML, text, from, reply-to), scoped by workspace; they were
//! validated before they get here.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, postgres::PgArguments, query::QueryAs};
use uuid::Uuid;

use super::Store;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TemplateRow {
    pub workspace_id: String,
    pub id: Uuid,
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text_body: Option<String>,
    pub from_addr: String,
    pub reply_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The editable fields, validated.
#[derive(Clone, Debug)]
pub struct TemplateFields {
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    pub from: String,
    pub reply_to: Option<String>,
}

const COLUMNS: &str =
    "workspace_id, id, name, subject, html, text_body, from_addr, reply_to, created_at, updated_at";

/// `sql` with the workspace as `$1`, the id as `$2` and the fields as `$3`…`$8`.
fn bind<'q>(
    sql: &'q str,
    ws: &'q str,
    id: Uuid,
    f: &'q TemplateFields,
) -> QueryAs<'q, Postgres, TemplateRow, PgArguments> {
    sqlx::query_as(sql)
        .bind(ws)
        .bind(id)
        .bind(&f.name)
        .bind(&f.subject)
        .bind(&f.html)
        .bind(&f.text)
        .bind(&f.from)
        .bind(&f.reply_to)
}

impl Store {
    pub async fn insert_template(
        &self,
        ws: &str,
        id: Uuid,
        f: &TemplateFields,
    ) -> sqlx::Result<TemplateRow> {
        let sql = format!(
            "INSERT INTO templates (workspace_id, id, name, subject, html, text_body, from_addr, reply_to)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        );
        bind(&sql, ws, id, f).fetch_one(&self.pool).await
    }

    pub async fn get_template(&self, ws: &str, id: Uuid) -> sqlx::Result<Option<TemplateRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM templates WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(ws)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Newest first; `before` is the last id of the previous page.
    pub async fn list_templates(
        &self,
        ws: &str,
        before: Option<Uuid>,
        limit: i64,
    ) -> sqlx::Result<Vec<TemplateRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM templates WHERE workspace_id = $1 AND ($2::uuid IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(ws)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn update_template(
        &self,
        ws: &str,
        id: Uuid,
        f: &TemplateFields,
    ) -> sqlx::Result<Option<TemplateRow>> {
        let sql = format!(
            "UPDATE templates SET name = $3, subject = $4, html = $5, text_body = $6, from_addr = $7,
                    reply_to = $8, updated_at = clock_timestamp()
             WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        bind(&sql, ws, id, f).fetch_optional(&self.pool).await
    }

    pub async fn delete_template(&self, ws: &str, id: Uuid) -> sqlx::Result<bool> {
        let r = sqlx::query("DELETE FROM templates WHERE workspace_id = $1 AND id = $2")
            .bind(ws)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
