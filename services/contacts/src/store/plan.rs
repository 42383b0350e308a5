//! The planner: what a run of writes does to the contacts they touch, decided in memory, in
//! order, each write seeing the ones before it. This is the one implementation of the matching
//! rules (DESIGN §2), of type fixing, and of what an edit or an erasure does, for the batch path
//! and the one-by-one path of [`super::write`] alike.
//!
//! The planner starts from the contacts its transaction locked. It reads the field registry
//! (and fixes the type of first-seen fields) through the transaction, but writes no contact, no
//! history and no outbox row: [`Planner::finish`] hands over what to write. A write that is
//! rejected (409, 422, 404) leaves no trace in the plan and does not fail the others.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use meisa_proto::events::ChangeKind;
use meisa_runtime::errors::ApiError;
use sqlx::PgConnection;

use super::{
    StoreError,
    changes::{self, ChangeMeta, EventRow},
    contacts::LockKey,
    fields::TxFields,
};
use crate::domain::{Contact, ContactInput, Edit, FieldChange, FieldName, FieldValue};

/// One write to a contact, as the writer lanes queue it.
pub struct WriteItem {
    pub workspace_id: String,
    pub write: Write,
    pub meta: ChangeMeta,
}

pub enum Write {
    /// Match by external id, then email; create when nothing matches.
    Upsert(ContactInput),
    /// A tag or subscription change of an existing contact.
    Edit { id: String, edit: Edit },
    /// DESIGN §2 erasure: the contact, its history, and the personal data of its events.
    Erase { id: String },
}

impl WriteItem {
    /// The rows this write can touch, locked before it is planned.
    pub fn lock_key(&self) -> LockKey<'_> {
        let workspace_id = self.workspace_id.as_str();
        match &self.write {
            Write::Upsert(input) => LockKey::Match {
                workspace_id,
                email: input.email.as_str(),
                external_id: input.external_id.as_deref(),
            },
            Write::Edit { id, .. } | Write::Erase { id } => LockKey::Id { workspace_id, id },
        }
    }
}

/// A contact as a write left it. `changed` empty: nothing was written.
#[derive(Debug)]
pub struct Saved {
    pub contact: Contact,
    pub created: bool,
    pub changed: Vec<String>,
}

// Nearly every outcome is `Saved`: boxing it would cost an allocation per write to shrink the rare
// `Erased`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    /// An upsert or an edit.
    Saved(Saved),
    Erased,
}

/// Per item: what it did, or why it was rejected (nothing of it is written).
pub type ItemResult = Result<Outcome, ApiError>;

/// (workspace, contact id)
pub type ContactKey = (String, String);

/// What to write once every item is planned.
#[derive(Default)]
pub struct Plan {
    pub created: Vec<Contact>,
    pub updated: Vec<Contact>,
    pub deleted: Vec<ContactKey>,
    /// Every contact erased, including one created earlier in the same plan (never written).
    pub erased: Vec<ContactKey>,
    /// In the order of the writes, which keeps one contact's events in version order.
    pub events: Vec<EventRow>,
}

/// A contact the plan can touch, as the writes so far have left it.
struct Slot {
    contact: Contact,
    in_db: bool,
    dirty: bool,
    erased: bool,
}

pub struct Planner<'f> {
    shards: u32,
    now: DateTime<Utc>,
    fields: &'f mut TxFields,
    slots: Vec<Slot>,
    by_id: HashMap<ContactKey, usize>,
    by_email: HashMap<ContactKey, usize>,
    by_ext: HashMap<ContactKey, usize>,
    events: Vec<EventRow>,
}

fn key(workspace_id: &str, value: &str) -> ContactKey {
    (workspace_id.to_string(), value.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no contact {id} in this workspace"))
}

fn unchanged(contact: Contact) -> Outcome {
    Outcome::Saved(Saved {
        contact,
        created: false,
        changed: vec![],
    })
}

fn paths(diff: Vec<FieldChange>) -> Vec<String> {
    diff.into_iter().map(|c| c.path).collect()
}

impl<'f> Planner<'f> {
    /// `locked`: every contact the writes to plan can touch, locked by their transaction.
    pub fn new(
        shards: u32,
        now: DateTime<Utc>,
        fields: &'f mut TxFields,
        locked: Vec<Contact>,
    ) -> Self {
        let mut planner = Self {
            shards,
            now,
            fields,
            slots: Vec::with_capacity(locked.len()),
            by_id: HashMap::new(),
            by_email: HashMap::new(),
            by_ext: HashMap::new(),
            events: Vec::new(),
        };
        for contact in locked {
            planner.push(Slot {
                contact,
                in_db: true,
                dirty: false,
                erased: false,
            });
        }
        planner
    }

    /// Plans one write after the ones before it. The outer error is the database's (reading
    /// the field registry); the inner one rejects this write alone.
    pub async fn plan(
        &mut self,
        conn: &mut PgConnection,
        item: &WriteItem,
    ) -> Result<ItemResult, StoreError> {
        let ws = item.workspace_id.as_str();
        match &item.write {
            Write::Upsert(input) => self.upsert(conn, ws, input, &item.meta).await,
            Write::Edit { id, edit } => Ok(self.edit(ws, id, edit, &item.meta)),
            Write::Erase { id } => Ok(self.erase(ws, id, &item.meta)),
        }
    }

    async fn upsert(
        &mut self,
        conn: &mut PgConnection,
        ws: &str,
        input: &ContactInput,
        meta: &ChangeMeta,
    ) -> Result<ItemResult, StoreError> {
        let ext_slot = input
            .external_id
            .as_ref()
            .and_then(|x| self.by_ext.get(&key(ws, x)).copied());
        let email_slot = self.by_email.get(&key(ws, input.email.as_str())).copied();
        let slot = match match_contact(
            input,
            ext_slot.map(|i| &self.slots[i].contact),
            email_slot.map(|i| &self.slots[i].contact),
        ) {
            Err(e) => return Ok(Err(e)),
            Ok(Matched::ByExternalId) => ext_slot,
            Ok(Matched::ByEmail) => email_slot,
            Ok(Matched::New) => None,
        };
        let new_fields = match check_types(conn, self.fields, ws, input).await? {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let fresh;
        let base = match slot {
            Some(i) => &self.slots[i].contact,
            None => {
                fresh = Contact::new(
                    meisa_model::id::new("ct"),
                    ws.to_string(),
                    input.email.as_str().to_string(),
                    self.now,
                );
                &fresh
            }
        };
        let mut next = base.apply_input(input);
        let diff = next.diff(slot.map(|_| base));
        if diff.is_empty() {
            return Ok(Ok(unchanged(base.clone())));
        }
        if let Err(e) = register(conn, self.fields, ws, new_fields, self.now).await? {
            return Ok(Err(e));
        }
        next.version = base.version + 1;
        next.updated_at = self.now;
        let created = slot.is_none();
        let kind = if created {
            ChangeKind::Created
        } else {
            ChangeKind::Updated
        };
        self.events.push(changes::build(
            self.shards,
            kind,
            &next,
            &diff,
            meta,
            self.now,
        ));
        let saved = next.clone();
        match slot {
            Some(i) => {
                // The contact may have given up its email: index it afresh.
                self.unindex(i);
                self.slots[i].contact = next;
                self.slots[i].dirty = true;
                self.index(i);
            }
            None => self.push(Slot {
                contact: next,
                in_db: false,
                dirty: true,
                erased: false,
            }),
        }
        Ok(Ok(Outcome::Saved(Saved {
            contact: saved,
            created,
            changed: paths(diff),
        })))
    }

    fn edit(&mut self, ws: &str, id: &str, edit: &Edit, meta: &ChangeMeta) -> ItemResult {
        let Some(i) = self.by_id.get(&key(ws, id)).copied() else {
            return Err(not_found(id));
        };
        let before = &self.slots[i].contact;
        let mut next = before.apply_edit(edit);
        let diff = next.diff(Some(before));
        if diff.is_empty() {
            return Ok(unchanged(before.clone()));
        }
        next.version = before.version + 1;
        next.updated_at = self.now;
        self.events.push(changes::build(
            self.shards,
            ChangeKind::Updated,
            &next,
            &diff,
            meta,
            self.now,
        ));
        self.slots[i].contact = next.clone();
        self.slots[i].dirty = true;
        Ok(Outcome::Saved(Saved {
            contact: next,
            created: false,
            changed: paths(diff),
        }))
    }

    /// The `deleted` event has the next version and no state; later writes of the plan no
    /// longer find the contact (an upsert with its email creates a new one).
    fn erase(&mut self, ws: &str, id: &str, meta: &ChangeMeta) -> ItemResult {
        let Some(i) = self.by_id.get(&key(ws, id)).copied() else {
            return Err(not_found(id));
        };
        self.unindex(i);
        let slot = &mut self.slots[i];
        slot.erased = true;
        slot.contact.version += 1;
        self.events.push(changes::build(
            self.shards,
            ChangeKind::Deleted,
            &slot.contact,
            &[],
            meta,
            self.now,
        ));
        Ok(Outcome::Erased)
    }

    fn push(&mut self, slot: Slot) {
        self.slots.push(slot);
        self.index(self.slots.len() - 1);
    }

    fn index(&mut self, i: usize) {
        let c = &self.slots[i].contact;
        self.by_id.insert(key(&c.workspace_id, &c.id), i);
        self.by_email.insert(key(&c.workspace_id, &c.email), i);
        if let Some(x) = &c.external_id {
            self.by_ext.insert(key(&c.workspace_id, x), i);
        }
    }

    fn unindex(&mut self, i: usize) {
        let c = &self.slots[i].contact;
        let forget = |map: &mut HashMap<ContactKey, usize>, k: ContactKey| {
            if map.get(&k) == Some(&i) {
                map.remove(&k);
            }
        };
        forget(&mut self.by_id, key(&c.workspace_id, &c.id));
        forget(&mut self.by_email, key(&c.workspace_id, &c.email));
        if let Some(x) = &c.external_id {
            forget(&mut self.by_ext, key(&c.workspace_id, x));
        }
    }

    pub fn finish(self) -> Plan {
        let mut plan = Plan {
            events: self.events,
            ..Plan::default()
        };
        for slot in self.slots {
            let contact_key = || (slot.contact.workspace_id.clone(), slot.contact.id.clone());
            if slot.erased {
                plan.erased.push(contact_key());
                if slot.in_db {
                    plan.deleted.push(contact_key());
                }
            } else if !slot.in_db {
                plan.created.push(slot.contact);
            } else if slot.dirty {
                plan.updated.push(slot.contact);
            }
        }
        plan
    }
}

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
