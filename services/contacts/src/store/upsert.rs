//! The upsert transaction: matching (DESIGN §2), type fixing, merge, change detection, and the
//! change recorded with its outbox row. Several upserts share one transaction (group commit);
//! each item is fully checked before it writes anything, so a rejected item leaves no trace and
//! does not fail the others.
//!
//! If the process dies half-way, the transaction rolls back: no contact row, no history, no
//! outbox row. The caller got no answer and retries; the retry is an ordinary upsert.

use chrono::{DateTime, Utc};
use meisa_proto::events::ChangeKind;
use meisa_runtime::errors::ApiError;
use sqlx::PgConnection;

use super::{
    Store,
    changes::{self, ChangeMeta},
    contacts,
    fields::TxFields,
    new_id,
};
use crate::domain::{Contact, ContactInput, FieldChange};

pub struct UpsertItem {
    pub workspace_id: String,
    pub input: ContactInput,
    pub meta: ChangeMeta,
}

#[derive(Debug)]
pub struct UpsertOutcome {
    pub contact: Contact,
    pub created: bool,
    pub changed: Vec<String>,
}

/// Runs `items` in one transaction. The outer error is the database's (the caller may retry the
/// whole batch); the inner ones are each item's own rejection.
pub async fn apply_batch(
    store: &Store,
    items: &[&UpsertItem],
) -> Result<Vec<Result<UpsertOutcome, ApiError>>, sqlx::Error> {
    let mut tx = store.pool.begin().await?;
    let mut fields = store.registry.begin();
    let now = Utc::now();
    let mut results = Vec::with_capacity(items.len());
    let mut wrote = false;
    for item in items {
        let r = upsert_one(&mut tx, &mut fields, store.shards, item, now).await?;
        wrote |= matches!(&r, Ok(o) if !o.changed.is_empty());
        results.push(r);
    }
    if wrote {
        changes::notify_relay(&mut tx).await?;
    }
    tx.commit().await?;
    fields.commit();
    Ok(results)
}

async fn upsert_one(
    conn: &mut PgConnection,
    fields: &mut TxFields,
    shards: u32,
    item: &UpsertItem,
    now: DateTime<Utc>,
) -> Result<Result<UpsertOutcome, ApiError>, sqlx::Error> {
    let ws = item.workspace_id.as_str();
    let input = &item.input;
    let email = input.email.as_str();
    let ext = input.external_id.as_deref();

    let matches = contacts::lock_matches(conn, ws, ext, email).await?;
    let by_ext = ext.and_then(|e| matches.iter().find(|c| c.external_id.as_deref() == Some(e)));
    let by_email = matches.iter().find(|c| c.email == email);
    let before = match (by_ext, by_email) {
        (Some(a), Some(b)) if a.id != b.id => {
            return Ok(Err(conflict(format!(
                "email {email} belongs to another contact ({}); change or delete that contact first",
                b.id
            ))));
        }
        (Some(a), _) => Some(a.clone()),
        (None, Some(b)) => match (&b.external_id, ext) {
            (Some(other), Some(_)) => {
                return Ok(Err(conflict(format!(
                    "email {email} belongs to a contact with another external_id ({other}); \
                     send that external_id, or change that contact's email first"
                ))));
            }
            // No external id yet: this upsert attaches it.
            _ => Some(b.clone()),
        },
        (None, None) => None,
    };

    // Check every value against its field's fixed type before writing anything.
    let mut new_fields = Vec::new();
    for (name, value) in &input.custom_fields {
        let Some(value) = value else { continue };
        match fields.get(conn, ws, name.as_str()).await? {
            Some(ty) => {
                if let Err(e) = value.check_type(name, ty) {
                    return Ok(Err(e));
                }
            }
            None => new_fields.push((name, value)),
        }
    }

    let created = before.is_none();
    let base = before
        .clone()
        .unwrap_or_else(|| Contact::new(new_id("ct"), ws.to_string(), email.to_string(), now));
    let mut next = base.apply_input(input);
    let diff: Vec<FieldChange> = next.diff(before.as_ref());
    if diff.is_empty() {
        return Ok(Ok(UpsertOutcome {
            contact: base,
            created: false,
            changed: vec![],
        }));
    }

    for (name, value) in new_fields {
        let fixed = fields
            .register(conn, ws, name.as_str(), value.inferred_type(), now)
            .await?;
        // Another transaction may have fixed the type first.
        if let Err(e) = value.check_type(name, fixed) {
            return Ok(Err(e));
        }
    }

    next.version = base.version + 1;
    next.updated_at = now;
    let kind = if created {
        contacts::insert(conn, &next).await?;
        ChangeKind::Created
    } else {
        contacts::update(conn, &next).await?;
        ChangeKind::Updated
    };
    changes::record(
        conn,
        shards,
        kind,
        ws,
        &next.id,
        next.version,
        Some(&next),
        &diff,
        &item.meta,
        now,
    )
    .await?;
    Ok(Ok(UpsertOutcome {
        contact: next,
        created,
        changed: diff.into_iter().map(|c| c.path).collect(),
    }))
}

fn conflict(message: String) -> ApiError {
    let mut e = ApiError::conflict(message);
    e.field = Some("email".into());
    e
}

/// A change to one existing contact (tags, subscription) in its own transaction; a no-op writes
/// nothing.
pub async fn mutate(
    store: &Store,
    workspace_id: &str,
    id: &str,
    meta: &ChangeMeta,
    change: impl FnOnce(&Contact) -> Contact,
) -> Result<Result<UpsertOutcome, ApiError>, sqlx::Error> {
    let mut tx = store.pool.begin().await?;
    let Some(before) = contacts::lock_by_id(&mut tx, workspace_id, id).await? else {
        return Ok(Err(ApiError::not_found(format!(
            "no contact {id} in this workspace"
        ))));
    };
    let mut next = change(&before);
    let diff = next.diff(Some(&before));
    if diff.is_empty() {
        return Ok(Ok(UpsertOutcome {
            contact: before,
            created: false,
            changed: vec![],
        }));
    }
    let now = Utc::now();
    next.version = before.version + 1;
    next.updated_at = now;
    contacts::update(&mut tx, &next).await?;
    changes::record(
        &mut tx,
        store.shards,
        ChangeKind::Updated,
        workspace_id,
        id,
        next.version,
        Some(&next),
        &diff,
        meta,
        now,
    )
    .await?;
    changes::notify_relay(&mut tx).await?;
    tx.commit().await?;
    Ok(Ok(UpsertOutcome {
        contact: next,
        created: false,
        changed: diff.into_iter().map(|c| c.path).collect(),
    }))
}

/// Erasure (DESIGN §2): the contact, its history and its personal data; a `deleted` event with
/// no personal data tells the other services to erase theirs.
pub async fn erase(
    store: &Store,
    workspace_id: &str,
    id: &str,
    meta: &ChangeMeta,
) -> Result<Result<(), ApiError>, sqlx::Error> {
    let mut tx = store.pool.begin().await?;
    let Some(before) = contacts::lock_by_id(&mut tx, workspace_id, id).await? else {
        return Ok(Err(ApiError::not_found(format!(
            "no contact {id} in this workspace"
        ))));
    };
    contacts::delete(&mut tx, workspace_id, id).await?;
    changes::erase(&mut tx, workspace_id, id).await?;
    changes::record(
        &mut tx,
        store.shards,
        ChangeKind::Deleted,
        workspace_id,
        id,
        before.version + 1,
        None,
        &[],
        meta,
        Utc::now(),
    )
    .await?;
    changes::notify_relay(&mut tx).await?;
    tx.commit().await?;
    Ok(Ok(()))
}
