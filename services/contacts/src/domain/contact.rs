//! A contact's state and what an upsert, a tag or a subscription change does to it. Pure: the
//! store decides matching and persistence, this decides the new state and the change set.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{
    fields::FieldValue,
    input::{ContactInput, TagName},
};

/// A nullable update: keep what is stored, clear it, or set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patch<T> {
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Patch<T> {
    fn apply(&self, current: &Option<T>) -> Option<T> {
        match self {
            Self::Keep => current.clone(),
            Self::Clear => None,
            Self::Set(v) => Some(v.clone()),
        }
    }
}

/// A change to one existing contact, named by id, other than an upsert: what automations'
/// actions and an unsubscribe do.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    AddTags(Vec<TagName>),
    RemoveTags(Vec<TagName>),
    SetSubscribed(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub subscribed: bool,
    pub tags: BTreeSet<String>,
    pub custom_fields: BTreeMap<String, FieldValue>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One changed path. `old: None` means it did not exist; `new: None` that it was removed.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub path: String,
    pub old: Option<FieldValue>,
    pub new: Option<FieldValue>,
    pub tags_added: Vec<String>,
    pub tags_removed: Vec<String>,
}

impl FieldChange {
    fn scalar(path: &str, old: Option<FieldValue>, new: Option<FieldValue>) -> Option<Self> {
        (old != new).then(|| Self {
            path: path.to_string(),
            old,
            new,
            tags_added: vec![],
            tags_removed: vec![],
        })
    }
}

fn s(v: &Option<String>) -> Option<FieldValue> {
    v.clone().map(FieldValue::String)
}

impl Contact {
    /// A contact that does not exist yet; `apply_input` fills it.
    pub fn new(id: String, workspace_id: String, email: String, now: DateTime<Utc>) -> Self {
        Self {
            id,
            workspace_id,
            email,
            external_id: None,
            first_name: None,
            last_name: None,
            subscribed: true,
            tags: BTreeSet::new(),
            custom_fields: BTreeMap::new(),
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// The state after an upsert: fields not sent are kept, custom fields merge, null removes.
    pub fn apply_input(&self, input: &ContactInput) -> Contact {
        let mut next = self.clone();
        next.email = input.email.as_str().to_string();
        if let Some(ext) = &input.external_id {
            next.external_id = Some(ext.clone());
        }
        next.first_name = input.first_name.apply(&self.first_name);
        next.last_name = input.last_name.apply(&self.last_name);
        if let Some(sub) = input.subscribed {
            next.subscribed = sub;
        }
        for (name, value) in &input.custom_fields {
            match value {
                Some(v) => next
                    .custom_fields
                    .insert(name.as_str().to_string(), v.clone()),
                None => next.custom_fields.remove(name.as_str()),
            };
        }
        next
    }

    /// The state after an edit; adding a tag it has or removing one it lacks changes nothing.
    pub fn apply_edit(&self, edit: &Edit) -> Contact {
        let mut next = self.clone();
        match edit {
            Edit::AddTags(tags) => {
                next.tags
                    .extend(tags.iter().map(|t| t.as_str().to_string()));
            }
            Edit::RemoveTags(tags) => {
                for t in tags {
                    next.tags.remove(t.as_str());
                }
            }
            Edit::SetSubscribed(subscribed) => next.subscribed = *subscribed,
        }
        next
    }

    /// What changed from `before` (None for a new contact) to `self`, in a stable order:
    /// built-in fields first, then custom fields by name.
    pub fn diff(&self, before: Option<&Contact>) -> Vec<FieldChange> {
        let mut out = Vec::new();
        let email_before = before.map(|b| FieldValue::String(b.email.clone()));
        out.extend(FieldChange::scalar(
            "email",
            email_before,
            Some(FieldValue::String(self.email.clone())),
        ));
        out.extend(FieldChange::scalar(
            "external_id",
            before.and_then(|b| s(&b.external_id)),
            s(&self.external_id),
        ));
        out.extend(FieldChange::scalar(
            "first_name",
            before.and_then(|b| s(&b.first_name)),
            s(&self.first_name),
        ));
        out.extend(FieldChange::scalar(
            "last_name",
            before.and_then(|b| s(&b.last_name)),
            s(&self.last_name),
        ));
        out.extend(FieldChange::scalar(
            "subscribed",
            before.map(|b| FieldValue::Bool(b.subscribed)),
            Some(FieldValue::Bool(self.subscribed)),
        ));
        let empty = BTreeSet::new();
        let tags_before = before.map_or(&empty, |b| &b.tags);
        if *tags_before != self.tags {
            out.push(FieldChange {
                path: "tags".into(),
                old: None,
                new: None,
                tags_added: self.tags.difference(tags_before).cloned().collect(),
                tags_removed: tags_before.difference(&self.tags).cloned().collect(),
            });
        }
        let empty = BTreeMap::new();
        let cf_before = before.map_or(&empty, |b| &b.custom_fields);
        let names: BTreeSet<&String> = cf_before.keys().chain(self.custom_fields.keys()).collect();
        for name in names {
            out.extend(FieldChange::scalar(
                &format!("custom_fields.{name}"),
                cf_before.get(name).cloned(),
                self.custom_fields.get(name).cloned(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, FieldName};

    fn base() -> Contact {
        let mut c = Contact::new("ct_1".into(), "ws_1".into(), "a@b.co".into(), Utc::now());
        c.external_id = Some("u1".into());
        c.custom_fields
            .insert("plan".into(), FieldValue::String("free".into()));
        c.custom_fields.insert("posts".into(), FieldValue::Int(4));
        c
    }

    fn input() -> ContactInput {
        ContactInput {
            email: EmailAddress::parse("a@b.co").unwrap(),
            external_id: Some("u1".into()),
            first_name: Patch::Keep,
            last_name: Patch::Keep,
            subscribed: None,
            custom_fields: BTreeMap::new(),
        }
    }

    #[test]
    fn same_state_is_no_change() {
        let c = base();
        assert!(c.apply_input(&input()).diff(Some(&c)).is_empty());
    }

    #[test]
    fn merge_keeps_unsent_fields_and_null_removes() {
        let c = base();
        let mut i = input();
        i.custom_fields
            .insert(FieldName::parse("plan").unwrap(), None);
        i.custom_fields.insert(
            FieldName::parse("posts").unwrap(),
            Some(FieldValue::Float(4.0)),
        );
        i.first_name = Patch::Set("Jane".into());
        let next = c.apply_input(&i);
        assert!(!next.custom_fields.contains_key("plan"));
        assert_eq!(
            next.custom_fields.get("posts"),
            Some(&FieldValue::Float(4.0))
        );
        let paths: Vec<_> = next.diff(Some(&c)).into_iter().map(|ch| ch.path).collect();
        assert_eq!(paths, ["first_name", "custom_fields.plan"]);
    }

    #[test]
    fn tags_report_what_was_added_and_removed() {
        let c = base();
        let mut next = c.clone();
        next.tags.insert("pro".into());
        let ch = next.diff(Some(&c));
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].tags_added, ["pro"]);
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::{ContactInput, EmailAddress, FieldName};

    fn value() -> impl Strategy<Value = Option<FieldValue>> {
        prop_oneof![
            Just(None),
            any::<i64>().prop_map(|i| Some(FieldValue::Int(i))),
            "[a-z]{0,8}".prop_map(|s| Some(FieldValue::String(s))),
            any::<bool>().prop_map(|b| Some(FieldValue::Bool(b))),
        ]
    }

    fn input() -> impl Strategy<Value = ContactInput> {
        (
            proptest::collection::btree_map("[a-d]", value(), 0..4),
            proptest::option::of("[A-Z][a-z]{0,5}"),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(fields, first, sub)| ContactInput {
                email: EmailAddress::parse("p@example.com").unwrap(),
                external_id: Some("u".into()),
                first_name: first.map_or(Patch::Keep, Patch::Set),
                last_name: Patch::Keep,
                subscribed: sub,
                custom_fields: fields
                    .into_iter()
                    .map(|(k, v)| (FieldName::parse(&k).unwrap(), v))
                    .collect::<BTreeMap<_, _>>(),
            })
    }

    proptest! {
        /// Sending the same upsert twice: the second is never a change (no duplicate events).
        #[test]
        fn applying_an_input_twice_changes_nothing_the_second_time(a in input(), b in input()) {
            let base = Contact::new("ct".into(), "ws".into(), "p@example.com".into(), Utc::now());
            let once = base.apply_input(&a).apply_input(&b);
            let twice = once.apply_input(&b);
            prop_assert!(twice.diff(Some(&once)).is_empty());
        }

        /// The change set names exactly the custom fields whose values differ.
        #[test]
        fn diff_lists_exactly_the_fields_that_differ(a in input(), b in input()) {
            let base = Contact::new("ct".into(), "ws".into(), "p@example.com".into(), Utc::now());
            let before = base.apply_input(&a);
            let after = before.apply_input(&b);
            let paths: Vec<String> = after.diff(Some(&before)).into_iter().map(|c| c.path).collect();
            for (name, v) in &b.custom_fields {
                let differs = before.custom_fields.get(name.as_str()) != v.as_ref();
                prop_assert_eq!(paths.contains(&name.path()), differs);
            }
        }

        /// Parsing never panics, whatever the product sends; errors always name a field.
        #[test]
        fn parsing_any_input_never_panics(email in ".{0,300}", ext in ".{0,300}", key in ".{0,80}", s in ".{0,50}") {
            let mut i = meisa_proto::contacts::ContactInput { email, external_id: ext, ..Default::default() };
            i.custom_fields.insert(key, meisa_proto::common::Value {
                kind: Some(meisa_proto::common::value::Kind::StringValue(s)),
            });
            if let Err(e) = ContactInput::parse(&i) {
                prop_assert!(e.field.is_some());
            }
        }
    }
}
