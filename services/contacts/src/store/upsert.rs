//! The upsert transaction: matching (DESIGN §2), type fixing, merge, change detection, and the
//! change recorded with its outbox row. Several upserts share one transaction (group commit);
//! each item is fully checked before anything of it is written, so a rejected item leaves no
//! trace and does not fail the others.
//!
//! If the process dies half-way, the transaction rolls back: no contact row, no history, no
//! outbox row. The caller got no answer and retries; the retry is an ordinary upsert.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use meisa_proto::events::ChangeKind;
use meisa_runtime::errors::ApiError;
use sqlx::PgConnection;

use super::{
    Store, StoreError,
    changes::{self, ChangeMeta},
    contacts,
    fields::TxFields,
};
use crate::domain::{Contact, ContactInput, FieldChange, FieldName, FieldValue};

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

type ItemResults = Vec<Result<UpsertOutcome, ApiError>>;

/// Which locked contact an upsert is about (DESIGN §2), or a 409.
enum Matched {
    ByExternalId,
    ByEmail,
    New,
}

fn match_contact(
    input: &ContactInput,
    by_ext: Option<&Contact>,
    by_email: Option<&Contact>,
) -> Result<Matched, ApiError> {
    let email = input.email.as_str();
    match (by_ext, by_email) {
        (Some(a), Some(b)) if a.id != b.id => Err(conflict(format!(
            "email {email} belongs to another contact ({}); change or delete that contact first",
            b.id
        ))),
        (Some(_), _) => Ok(Matched::ByExternalId),
        (None, Some(b)) => match (&b.external_id, &input.external_id) {
            (Some(other), Some(_)) => Err(conflict(format!(
                "email {email} belongs to a contact with another external_id ({other}); \
                 send that external_id, or change that contact's email first"
            ))),
            // No external id yet: this upsert attaches it.
            _ => Ok(Matched::ByEmail),
        },
        (None, None) => Ok(Matched::New),
    }
}

fn conflict(message: String) -> ApiError {
    let mut e = ApiError::conflict(message);
    e.field = Some("email".into());
    e
}

/// Checks every sent value against its field's fixed type; returns the fields seen for the
/// first time. Nothing is written.
async fn check_types<'a>(
    conn: &mut PgConnection,
    fields: &mut TxFields,
    ws: &str,
    input: &'a ContactInput,
) -> Result<Result<Vec<(&'a FieldName, &'a FieldValue)>, ApiError>, StoreError> {
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
    Ok(Ok(new_fields))
}

/// Fixes the type of first-seen fields. Another transaction may have fixed one first: then the
/// value is checked against that type.
async fn register(
    conn: &mut PgConnection,
    fields: &mut TxFields,
    ws: &str,
    new_fields: Vec<(&FieldName, &FieldValue)>,
    now: DateTime<Utc>,
) -> Result<Result<(), ApiError>, StoreError> {
    for (name, value) in new_fields {
        let fixed = fields
            .register(conn, ws, name.as_str(), value.inferred_type(), now)
            .await?;
        if let Err(e) = value.check_type(name, fixed) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

fn unchanged(contact: Contact) -> UpsertOutcome {
    UpsertOutcome {
        contact,
        created: false,
        changed: vec![],
    }
}

/// Applies `items` in one transaction with a fixed number of statements whatever their count:
/// one to lock every contact they can match, then the plan is made in memory (items in order,
/// each seeing the ones before it), then one statement each for updated contacts, new contacts,
/// history and outbox rows.
///
/// The outer error is the database's; the writer retries the batch, item by item
/// ([`apply_batch_sequential`]), which also settles the rare batch whose bulk update trips a
/// unique index mid-statement (a chain of email changes).
pub async fn apply_batch(store: &Store, items: &[&UpsertItem]) -> Result<ItemResults, StoreError> {
    let mut tx = store.pool.begin().await?;
    let mut fields = store.registry.begin();
    let now = Utc::now();

    let keys: Vec<(&str, &str, Option<&str>)> = items
        .iter()
        .map(|i| {
            (
                i.workspace_id.as_str(),
                i.input.email.as_str(),
                i.input.external_id.as_deref(),
            )
        })
        .collect();
    let locked = contacts::lock_matches_many(&mut tx, &keys).await?;

    // The working set: every contact the batch can touch, as the batch has left it so far.
    struct Slot {
        contact: Contact,
        in_db: bool,
        dirty: bool,
    }
    let mut slots: Vec<Slot> = Vec::with_capacity(locked.len() + items.len());
    let mut by_email: HashMap<(String, String), usize> = HashMap::new();
    let mut by_ext: HashMap<(String, String), usize> = HashMap::new();
    for c in locked {
        by_email.insert((c.workspace_id.clone(), c.email.clone()), slots.len());
        if let Some(x) = &c.external_id {
            by_ext.insert((c.workspace_id.clone(), x.clone()), slots.len());
        }
        slots.push(Slot {
            contact: c,
            in_db: true,
            dirty: false,
        });
    }

    let mut events = Vec::new();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let ws = item.workspace_id.as_str();
        let input = &item.input;
        let ext_slot = input
            .external_id
            .as_ref()
            .and_then(|x| by_ext.get(&(ws.to_string(), x.clone())).copied());
        let email_slot = by_email
            .get(&(ws.to_string(), input.email.as_str().to_string()))
            .copied();
        let slot = match match_contact(
            input,
            ext_slot.map(|i| &slots[i].contact),
            email_slot.map(|i| &slots[i].contact),
        ) {
            Err(e) => {
                results.push(Err(e));
                continue;
            }
            Ok(Matched::ByExternalId) => ext_slot,
            Ok(Matched::ByEmail) => email_slot,
            Ok(Matched::New) => None,
        };
        let new_fields = match check_types(&mut tx, &mut fields, ws, input).await? {
            Ok(f) => f,
            Err(e) => {
                results.push(Err(e));
                continue;
            }
        };
        let before = slot.map(|i| &slots[i].contact);
        let base = before.cloned().unwrap_or_else(|| {
            Contact::new(
                meisa_model::id::new("ct"),
                ws.to_string(),
                input.email.as_str().to_string(),
                now,
            )
        });
        let mut next = base.apply_input(input);
        let diff: Vec<FieldChange> = next.diff(before);
        if diff.is_empty() {
            results.push(Ok(unchanged(base)));
            continue;
        }
        if let Err(e) = register(&mut tx, &mut fields, ws, new_fields, now).await? {
            results.push(Err(e));
            continue;
        }
        next.version = base.version + 1;
        next.updated_at = now;
        let kind = if slot.is_some() {
            ChangeKind::Updated
        } else {
            ChangeKind::Created
        };
        events.push(changes::build(
            store.shards,
            kind,
            ws,
            &next.id,
            next.version,
            Some(&next),
            &diff,
            &item.meta,
            now,
        ));
        let idx = match slot {
            Some(i) => {
                by_email.remove(&(ws.to_string(), slots[i].contact.email.clone()));
                i
            }
            None => {
                slots.push(Slot {
                    contact: next.clone(),
                    in_db: false,
                    dirty: true,
                });
                slots.len() - 1
            }
        };
        by_email.insert((ws.to_string(), next.email.clone()), idx);
        if let Some(x) = &next.external_id {
            by_ext.insert((ws.to_string(), x.clone()), idx);
        }
        slots[idx].contact = next.clone();
        slots[idx].dirty = true;
        results.push(Ok(UpsertOutcome {
            contact: next,
            created: kind == ChangeKind::Created,
            changed: diff.into_iter().map(|c| c.path).collect(),
        }));
    }

    // Updates first: a contact that gave up an email frees it for a new contact in this batch.
    let updated: Vec<&Contact> = slots
        .iter()
        .filter(|s| s.in_db && s.dirty)
        .map(|s| &s.contact)
        .collect();
    contacts::update_many(&mut tx, &updated).await?;
    let created: Vec<&Contact> = slots
        .iter()
        .filter(|s| !s.in_db)
        .map(|s| &s.contact)
        .collect();
    contacts::insert_many(&mut tx, &created).await?;
    changes::write(&mut tx, &events).await?;
    if !events.is_empty() {
        store.wake.before_commit(&mut tx).await?;
    }
    tx.commit().await?;
    fields.commit();
    store.wake.after_commit();
    Ok(results)
}

/// The same rules, one item at a time, each locking and writing its own rows. Slower, but a
/// unique index is never tripped by an order of rows inside one statement.
pub async fn apply_batch_sequential(
    store: &Store,
    items: &[&UpsertItem],
) -> Result<ItemResults, StoreError> {
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
        store.wake.before_commit(&mut tx).await?;
    }
    tx.commit().await?;
    fields.commit();
    store.wake.after_commit();
    Ok(results)
}

async fn upsert_one(
    conn: &mut PgConnection,
    fields: &mut TxFields,
    shards: u32,
    item: &UpsertItem,
    now: DateTime<Utc>,
) -> Result<Result<UpsertOutcome, ApiError>, StoreError> {
    let ws = item.workspace_id.as_str();
    let input = &item.input;
    let email = input.email.as_str();
    let ext = input.external_id.as_deref();

    let matches = contacts::lock_matches(conn, ws, ext, email).await?;
    let by_ext = ext.and_then(|e| matches.iter().find(|c| c.external_id.as_deref() == Some(e)));
    let by_email = matches.iter().find(|c| c.email == email);
    let before = match match_contact(input, by_ext, by_email) {
        Err(e) => return Ok(Err(e)),
        Ok(Matched::ByExternalId) => by_ext,
        Ok(Matched::ByEmail) => by_email,
        Ok(Matched::New) => None,
    };
    let new_fields = match check_types(conn, fields, ws, input).await? {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let created = before.is_none();
    let base = before.cloned().unwrap_or_else(|| {
        Contact::new(
            meisa_model::id::new("ct"),
            ws.to_string(),
            email.to_string(),
            now,
        )
    });
    let mut next = base.apply_input(input);
    let diff: Vec<FieldChange> = next.diff(before);
    if diff.is_empty() {
        return Ok(Ok(unchanged(base)));
    }
    if let Err(e) = register(conn, fields, ws, new_fields, now).await? {
        return Ok(Err(e));
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

/// A change to one existing contact (tags, subscription) in its own transaction; a no-op writes
/// nothing.
pub async fn mutate(
    store: &Store,
    workspace_id: &str,
    id: &str,
    meta: &ChangeMeta,
    change: impl FnOnce(&Contact) -> Contact,
) -> Result<Result<UpsertOutcome, ApiError>, StoreError> {
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
    store.wake.before_commit(&mut tx).await?;
    tx.commit().await?;
    store.wake.after_commit();
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
) -> Result<Result<(), ApiError>, StoreError> {
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
    store.wake.before_commit(&mut tx).await?;
    tx.commit().await?;
    store.wake.after_commit();
    Ok(Ok(()))
}
