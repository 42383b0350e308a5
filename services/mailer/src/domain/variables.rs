//! The variable builder (DESIGN §3): a contact snapshot (or a preview's sample fields) as the data
//! a template sees.

use liquid_core::model::Value;
use meisa_model::BuiltIn;
use meisa_proto::common::{Contact, Value as FieldValue, value::Kind};

use super::template::{UNSUBSCRIBE_URL, Variables};

pub fn field_value(v: &FieldValue) -> Option<Value> {
    match v.kind.as_ref()? {
        Kind::NullValue(_) => None,
        Kind::StringValue(s) => Some(Value::scalar(s.clone())),
        Kind::IntValue(i) => Some(Value::scalar(*i)),
        Kind::DoubleValue(d) => Some(Value::scalar(*d)),
        Kind::BoolValue(b) => Some(Value::scalar(*b)),
    }
}

/// RFC 3339 in whole seconds; `None` for a time no date can hold (the variable is then absent,
/// as a missing time is).
fn timestamp(ts: &prost_types::Timestamp) -> Option<String> {
    meisa_proto::datetime(ts).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn tags(tags: &[String]) -> Value {
    Value::Array(tags.iter().map(|t| Value::scalar(t.clone())).collect())
}

/// Built-in fields by name, each custom field by bare name and as `custom_fields.<name>`, `tags`
/// and `unsubscribe_url`. A field without a value (no first name, a null custom field) is left out,
/// so that using it without a `default` filter is noticed instead of rendering "Hi ,".
pub fn from_contact(contact: &Contact, unsubscribe_url: &str) -> Variables {
    let mut v = Variables::new();
    for field in BuiltIn::ALL {
        let value = match field {
            BuiltIn::Email => Some(Value::scalar(contact.email.clone())),
            BuiltIn::ExternalId => (!contact.external_id.is_empty())
                .then(|| Value::scalar(contact.external_id.clone())),
            BuiltIn::FirstName => contact.first_name.clone().map(Value::scalar),
            BuiltIn::LastName => contact.last_name.clone().map(Value::scalar),
            BuiltIn::Subscribed => Some(Value::scalar(contact.subscribed)),
            BuiltIn::Tags => Some(tags(&contact.tags)),
            BuiltIn::CreatedAt => contact
                .created_at
                .as_ref()
                .and_then(timestamp)
                .map(Value::scalar),
            BuiltIn::UpdatedAt => contact
                .updated_at
                .as_ref()
                .and_then(timestamp)
                .map(Value::scalar),
        };
        if let Some(value) = value {
            v.set(field.name(), value);
        }
    }
    for (name, value) in &contact.custom_fields {
        if let Some(value) = field_value(value) {
            v.set_custom(name, value);
        }
    }
    v.set(UNSUBSCRIBE_URL, Value::scalar(unsubscribe_url.to_string()));
    v
}

/// Preview data typed into the dashboard: built-in names are built-ins, anything else is a custom
/// field. Tags and the link come from their own arguments, never from the fields.
pub fn from_sample(
    fields: &std::collections::BTreeMap<String, FieldValue>,
    tags_given: &[String],
    unsubscribe_url: &str,
) -> Variables {
    let mut v = Variables::new();
    for (name, value) in fields {
        let Some(value) = field_value(value) else {
            continue;
        };
        match BuiltIn::parse(name) {
            Some(BuiltIn::Tags) => {}
            Some(_) => v.set(name, value),
            None if name == UNSUBSCRIBE_URL => {}
            None => v.set_custom(name, value),
        }
    }
    v.set(BuiltIn::Tags.name(), tags(tags_given));
    v.set(UNSUBSCRIBE_URL, Value::scalar(unsubscribe_url.to_string()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn string(s: &str) -> FieldValue {
        FieldValue {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    #[test]
    fn builds_built_ins_custom_fields_tags_and_the_url() {
        let contact = Contact {
            id: "ct_1".into(),
            email: "jane@example.com".into(),
            external_id: "usr_1".into(),
            first_name: Some("Jane".into()),
            last_name: None,
            subscribed: true,
            tags: vec!["pro".into()],
            custom_fields: BTreeMap::from([
                ("plan".to_string(), string("pro")),
                (
                    "gone".to_string(),
                    FieldValue {
                        kind: Some(Kind::NullValue(true)),
                    },
                ),
                (
                    "posts".to_string(),
                    FieldValue {
                        kind: Some(Kind::IntValue(5)),
                    },
                ),
            ]),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        let v = from_contact(&contact, "https://x.test/u/t");
        assert_eq!(v.get("first_name"), Some(&Value::scalar("Jane")));
        assert_eq!(v.get("last_name"), None);
        assert_eq!(v.get("plan"), Some(&Value::scalar("pro")));
        assert_eq!(v.get_custom("plan"), Some(&Value::scalar("pro")));
        assert_eq!(v.get("posts"), Some(&Value::scalar(5i64)));
        assert_eq!(v.get("gone"), None);
        assert_eq!(
            v.get("created_at"),
            Some(&Value::scalar("2023-11-14T22:13:20Z"))
        );
        assert_eq!(
            v.get("unsubscribe_url"),
            Some(&Value::scalar("https://x.test/u/t"))
        );
        assert_eq!(
            v.get("tags"),
            Some(&Value::Array(vec![Value::scalar("pro")]))
        );
    }

    proptest! {
        /// Every custom field is reachable both ways with the same value, and none takes over a
        /// built-in or the unsubscribe URL.
        #[test]
        fn custom_fields_by_both_names(
            fields in proptest::collection::btree_map("[a-z][a-z0-9_]{0,10}", "[ -~]{0,20}", 0..12),
            first in proptest::option::of("[ -~]{0,10}"),
        ) {
            let contact = Contact {
                email: "a@b.test".into(),
                first_name: first.clone(),
                custom_fields: fields.iter().map(|(k, v)| (k.clone(), string(v))).collect(),
                ..Default::default()
            };
            let v = from_contact(&contact, "https://u.test/x");
            for (k, val) in &fields {
                prop_assert_eq!(v.get_custom(k), Some(&Value::scalar(val.clone())));
                if !crate::domain::template::is_reserved(k) {
                    prop_assert_eq!(v.get(k), Some(&Value::scalar(val.clone())));
                }
            }
            prop_assert_eq!(v.get("email"), Some(&Value::scalar("a@b.test")));
            let expected_first = first.map(Value::scalar);
            prop_assert_eq!(v.get("first_name"), expected_first.as_ref());
            prop_assert_eq!(v.get("unsubscribe_url"), Some(&Value::scalar("https://u.test/x")));
        }
    }
}
