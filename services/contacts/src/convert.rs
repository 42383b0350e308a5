//! Domain ↔ protobuf, at the boundary only.

use meisa_proto::{common, events, timestamp};

use crate::domain::{Contact, FieldChange, FieldValue};

pub fn value(v: &FieldValue) -> common::Value {
    use common::value::Kind;
    common::Value {
        kind: Some(match v {
            FieldValue::String(s) => Kind::StringValue(s.clone()),
            FieldValue::Int(i) => Kind::IntValue(*i),
            FieldValue::Float(f) => Kind::DoubleValue(*f),
            FieldValue::Bool(b) => Kind::BoolValue(*b),
        }),
    }
}

pub fn contact(c: &Contact) -> common::Contact {
    common::Contact {
        id: c.id.clone(),
        workspace_id: c.workspace_id.clone(),
        email: c.email.clone(),
        external_id: c.external_id.clone().unwrap_or_default(),
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        subscribed: c.subscribed,
        tags: c.tags.iter().cloned().collect(),
        custom_fields: c
            .custom_fields
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect(),
        version: c.version,
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
    }
}

pub fn field_change(c: &FieldChange) -> events::FieldChange {
    events::FieldChange {
        path: c.path.clone(),
        old: c.old.as_ref().map(value),
        new: c.new.as_ref().map(value),
        tags_added: c.tags_added.clone(),
        tags_removed: c.tags_removed.clone(),
    }
}
