//! A `meisa.events.v1.ContactChanged` as triggers and conditions read it: the change set with
//! JSON values, the state after, and the state before, rebuilt from the state after and the old
//! values of the changed paths.

use chrono::{DateTime, Utc};
use meisa_conditions::{BuiltIn, Field, State};
use meisa_proto::{
    common, datetime,
    events::{ChangeKind, ContactChanged},
    value_to_json,
};
use serde_json::{Map, Value, json};

/// Past this causation depth a change triggers nothing (DESIGN §3: no loops). A change made by an
/// automation in response to an event of depth `d` has depth `d + 1`; an upsert has depth 0.
pub const MAX_CAUSATION_DEPTH: u32 = 5;

/// Whether an event of this causation depth may trigger automations.
pub fn may_trigger(depth: u32) -> bool {
    depth < MAX_CAUSATION_DEPTH
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub path: String,
    /// `None`: the path did not exist before / was removed.
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub tags_added: Vec<String>,
    pub tags_removed: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct EventView {
    pub event_id: String,
    pub workspace_id: String,
    pub contact_id: String,
    pub version: i64,
    pub kind: EventKind,
    pub changes: Vec<Change>,
    /// `None` for deletions.
    pub after: Option<State>,
    pub depth: u32,
    pub cause_automation_id: Option<String>,
    pub cause_event_id: Option<String>,
    /// W3C trace context of the change, so its effects join the upsert's trace.
    pub traceparent: String,
}

/// A `ContactChanged` that is not a change this service can read; it carries the event back
/// (for the dead letter), so reading one never needs a copy.
#[derive(Debug, thiserror::Error)]
#[error("event {:?}: {reason}", event.event_id)]
pub struct EventError {
    pub reason: String,
    pub event: Box<ContactChanged>,
}

impl EventView {
    /// Takes the event apart (no copy of its values): each stream entry is decoded once by
    /// meisa-stream and turned into a view once, here.
    pub fn from_proto(ev: ContactChanged) -> Result<Self, EventError> {
        let (kind, after) = match Self::check(&ev) {
            Ok(x) => x,
            Err(reason) => {
                return Err(EventError {
                    reason,
                    event: Box::new(ev),
                });
            }
        };
        let causation = ev.causation.unwrap_or_default();
        let present = |s: String| Some(s).filter(|s| !s.is_empty());
        Ok(Self {
            event_id: ev.event_id,
            workspace_id: ev.workspace_id,
            contact_id: ev.contact_id,
            version: ev.version,
            kind,
            changes: ev
                .changes
                .into_iter()
                .map(|c| Change {
                    path: c.path,
                    old: c.old.as_ref().and_then(json_of),
                    new: c.new.as_ref().and_then(json_of),
                    tags_added: c.tags_added,
                    tags_removed: c.tags_removed,
                })
                .collect(),
            after,
            depth: causation.depth,
            cause_automation_id: present(causation.automation_id),
            cause_event_id: present(causation.event_id),
            traceparent: ev.traceparent,
        })
    }

    /// What a change must have: ids, a known kind, and (unless it is a deletion) the state
    /// after, with valid times.
    fn check(ev: &ContactChanged) -> Result<(EventKind, Option<State>), String> {
        if ev.event_id.is_empty() {
            return Err("no event id".into());
        }
        if ev.workspace_id.is_empty() || ev.contact_id.is_empty() {
            return Err("no workspace or contact id".into());
        }
        let kind = match ChangeKind::try_from(ev.kind) {
            Ok(ChangeKind::Created) => EventKind::Created,
            Ok(ChangeKind::Updated) => EventKind::Updated,
            Ok(ChangeKind::Deleted) => EventKind::Deleted,
            _ => return Err("unknown change kind".into()),
        };
        let after = match (&ev.state, kind) {
            (_, EventKind::Deleted) => None,
            (Some(s), _) => Some(state_from_contact(s).map_err(|e| e.to_string())?),
            (None, _) => return Err("no state after the change".into()),
        };
        Ok((kind, after))
    }

    pub fn change(&self, path: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.path == path)
    }

    pub fn tags_added(&self) -> impl Iterator<Item = &String> {
        self.changes
            .iter()
            .filter(|c| c.path == "tags")
            .flat_map(|c| c.tags_added.iter())
    }

    /// Whether the change set touches any of `fields` (a condition's fields).
    pub fn touches(&self, fields: &[&Field]) -> bool {
        fields.iter().any(|f| {
            let path = match f {
                Field::Custom(n) => format!("custom_fields.{n}"),
                other => other.name().to_string(),
            };
            self.change(&path).is_some()
        })
    }

    /// The state before the change: `None` when the contact did not exist (creation) or the
    /// event is a deletion. `updated_at` keeps the value after (the change set does not carry it).
    pub fn before(&self) -> Option<State> {
        if self.kind != EventKind::Updated {
            return None;
        }
        let mut s = self.after.clone()?;
        for c in &self.changes {
            let old_str = || c.old.as_ref().and_then(Value::as_str).map(str::to_string);
            match c.path.as_str() {
                "email" => s.email = old_str(),
                "first_name" => s.first_name = old_str(),
                "last_name" => s.last_name = old_str(),
                "external_id" => s.external_id = old_str(),
                "subscribed" => s.subscribed = c.old.as_ref().and_then(Value::as_bool),
                "tags" => {
                    for t in &c.tags_added {
                        s.tags.remove(t);
                    }
                    s.tags.extend(c.tags_removed.iter().cloned());
                }
                path => {
                    if let Some(name) = path.strip_prefix("custom_fields.") {
                        match &c.old {
                            Some(v) => {
                                s.custom_fields.insert(name.to_string(), v.clone());
                            }
                            None => {
                                s.custom_fields.remove(name);
                            }
                        }
                    }
                }
            }
        }
        Some(s)
    }
}

/// A value as JSON; `None` for an empty value (a path that did not exist, a field without a
/// value), which is absence, not `null`.
fn json_of(v: &common::Value) -> Option<Value> {
    v.kind.as_ref().map(|_| value_to_json(v))
}

#[derive(Debug, thiserror::Error)]
#[error("contact {contact_id}: {field} is not a valid timestamp")]
pub struct ContactError {
    pub contact_id: String,
    pub field: &'static str,
}

/// A contact as conditions read it. A timestamp no date can hold is an error, not a missing
/// date: conditions on it would silently answer "not set".
pub fn state_from_contact(c: &common::Contact) -> Result<State, ContactError> {
    let time = |ts: &Option<prost_types::Timestamp>, field| match ts {
        None => Ok(None),
        Some(ts) => datetime(ts).map(Some).ok_or_else(|| ContactError {
            contact_id: c.id.clone(),
            field,
        }),
    };
    Ok(State {
        email: Some(c.email.clone()).filter(|e| !e.is_empty()),
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        external_id: Some(c.external_id.clone()).filter(|e| !e.is_empty()),
        subscribed: Some(c.subscribed),
        tags: c.tags.iter().cloned().collect(),
        created_at: time(&c.created_at, "created_at")?,
        updated_at: time(&c.updated_at, "updated_at")?,
        custom_fields: c
            .custom_fields
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), json_of(v)?)))
            .collect(),
    })
}

/// The part of a state that `fields` read, as JSON, for the sweep's projection: only what the
/// condition needs is kept, so a projection row holds as little personal data as possible.
pub fn snapshot(state: &State, fields: &[&Field]) -> Value {
    let mut m = Map::new();
    let mut custom = Map::new();
    for f in fields {
        let v = match f {
            Field::BuiltIn(BuiltIn::Email) => json!(state.email),
            Field::BuiltIn(BuiltIn::FirstName) => json!(state.first_name),
            Field::BuiltIn(BuiltIn::LastName) => json!(state.last_name),
            Field::BuiltIn(BuiltIn::ExternalId) => json!(state.external_id),
            Field::BuiltIn(BuiltIn::Subscribed) => json!(state.subscribed),
            Field::BuiltIn(BuiltIn::Tags) => json!(state.tags),
            Field::BuiltIn(BuiltIn::CreatedAt) => json!(state.created_at.map(|t| t.to_rfc3339())),
            Field::BuiltIn(BuiltIn::UpdatedAt) => json!(state.updated_at.map(|t| t.to_rfc3339())),
            Field::Custom(n) => {
                if let Some(v) = state.custom_fields.get(n) {
                    custom.insert(n.clone(), v.clone());
                }
                continue;
            }
        };
        m.insert(f.name().to_string(), v);
    }
    m.insert("custom_fields".into(), Value::Object(custom));
    Value::Object(m)
}

/// Reads a [`snapshot`] back.
pub fn state_from_snapshot(v: &Value) -> State {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let t = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    };
    State {
        email: s("email"),
        first_name: s("first_name"),
        last_name: s("last_name"),
        external_id: s("external_id"),
        subscribed: v.get("subscribed").and_then(Value::as_bool),
        tags: v
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        created_at: t("created_at"),
        updated_at: t("updated_at"),
        custom_fields: v
            .get("custom_fields")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use meisa_proto::{
        common::{Causation, value::Kind},
        events::FieldChange,
    };

    use super::*;

    pub fn string(s: &str) -> common::Value {
        common::Value {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    pub fn int(i: i64) -> common::Value {
        common::Value {
            kind: Some(Kind::IntValue(i)),
        }
    }

    pub fn contact(fields: &[(&str, common::Value)], tags: &[&str]) -> common::Contact {
        common::Contact {
            id: "ct_1".into(),
            workspace_id: "ws_1".into(),
            email: "jane@example.com".into(),
            external_id: "usr_1".into(),
            subscribed: true,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            custom_fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            version: 2,
            ..Default::default()
        }
    }

    pub fn change(
        path: &str,
        old: Option<common::Value>,
        new: Option<common::Value>,
    ) -> FieldChange {
        FieldChange {
            path: path.into(),
            old,
            new,
            ..Default::default()
        }
    }

    pub fn event(
        kind: ChangeKind,
        changes: Vec<FieldChange>,
        after: common::Contact,
        depth: u32,
    ) -> EventView {
        EventView::from_proto(ContactChanged {
            event_id: "ev_1".into(),
            workspace_id: "ws_1".into(),
            contact_id: "ct_1".into(),
            version: 2,
            kind: kind as i32,
            changes,
            state: Some(after),
            causation: Some(Causation {
                source: "automation".into(),
                automation_id: "aut_x".into(),
                event_id: "ev_0".into(),
                depth,
            }),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn before_is_rebuilt_from_old_values() {
        let after = contact(
            &[("plan", string("pro")), ("seats", int(3))],
            &["pro", "beta"],
        );
        let ev = event(
            ChangeKind::Updated,
            vec![
                change(
                    "custom_fields.plan",
                    Some(string("free")),
                    Some(string("pro")),
                ),
                change("custom_fields.seats", None, Some(int(3))),
                FieldChange {
                    path: "tags".into(),
                    tags_added: vec!["pro".into()],
                    tags_removed: vec!["trial".into()],
                    ..Default::default()
                },
            ],
            after,
            0,
        );
        let before = ev.before().unwrap();
        assert_eq!(before.custom_fields.get("plan"), Some(&json!("free")));
        assert!(!before.custom_fields.contains_key("seats"));
        let tags: Vec<&str> = before.tags.iter().map(String::as_str).collect();
        assert_eq!(tags, ["beta", "trial"]);
        assert_eq!(
            ev.after.as_ref().unwrap().custom_fields.get("seats"),
            Some(&json!(3))
        );
    }

    #[test]
    fn snapshots_keep_only_what_the_condition_reads() {
        let state = state_from_contact(&contact(
            &[
                ("plan", string("pro")),
                ("last_active", string("2026-11-20T10:00:00Z")),
            ],
            &["pro"],
        ))
        .unwrap();
        let c = meisa_conditions::Condition::parse(
            &json!({"all": [{"field": "last_active", "op": "older_than", "value": "1d"},
                            {"field": "tags", "op": "has_tag", "value": "pro"}]}),
            "conditions",
        )
        .unwrap();
        let snap = snapshot(&state, &c.fields());
        assert!(snap.get("email").is_none());
        assert!(snap["custom_fields"].get("plan").is_none());
        let back = state_from_snapshot(&snap);
        let now = Utc::now();
        assert_eq!(
            meisa_conditions::evaluate(&c, &back, now),
            meisa_conditions::evaluate(&c, &state, now)
        );
    }

    #[test]
    fn loop_guard_stops_at_depth_five() {
        assert!(may_trigger(0));
        assert!(may_trigger(4));
        assert!(!may_trigger(5));
        assert!(!may_trigger(6));
    }
}
