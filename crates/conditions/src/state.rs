//! A contact as conditions see it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::field::Field;
use meisa_model::{BuiltIn, parse_date};

/// A contact's current state: built-in fields, custom fields and tags.
///
/// Build it from parts (`State { email: Some(..), ..State::default() }` or the `with_*`
/// helpers). `None` and an absent or `null` custom field all mean "missing" for the
/// missing-field rule; an empty string is a value. Callers converting from protobuf map
/// unset optionals to `None`. Custom fields hold what the contacts service stores: strings
/// (dates as RFC 3339 or `YYYY-MM-DD` strings), numbers and booleans. Any other JSON value
/// (an object, a list) is tolerated: it exists but matches no comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub external_id: Option<String>,
    pub subscribed: Option<bool>,
    pub tags: BTreeSet<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// By bare name (`plan`, not `custom_fields.plan`).
    pub custom_fields: BTreeMap<String, Value>,
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_custom_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.custom_fields.insert(name.into(), value.into());
        self
    }

    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }

    pub(crate) fn get(&self, field: &Field) -> Got<'_> {
        fn s(v: &Option<String>) -> Got<'_> {
            v.as_deref().map_or(Got::Missing, Got::Str)
        }
        match field {
            Field::BuiltIn(BuiltIn::Email) => s(&self.email),
            Field::BuiltIn(BuiltIn::FirstName) => s(&self.first_name),
            Field::BuiltIn(BuiltIn::LastName) => s(&self.last_name),
            Field::BuiltIn(BuiltIn::ExternalId) => s(&self.external_id),
            Field::BuiltIn(BuiltIn::Subscribed) => self.subscribed.map_or(Got::Missing, Got::Bool),
            Field::BuiltIn(BuiltIn::CreatedAt) => self.created_at.map_or(Got::Missing, Got::Date),
            Field::BuiltIn(BuiltIn::UpdatedAt) => self.updated_at.map_or(Got::Missing, Got::Date),
            // The tag set is read by the tag ops directly; as a scalar it is nothing.
            Field::BuiltIn(BuiltIn::Tags) => {
                if self.tags.is_empty() {
                    Got::Missing
                } else {
                    Got::Other
                }
            }
            Field::Custom(name) => match self.custom_fields.get(name) {
                // DESIGN §2: `null` removes a field, so a stored null is no value.
                None | Some(Value::Null) => Got::Missing,
                Some(Value::String(v)) => Got::Str(v),
                // Without serde_json's arbitrary_precision every number has an f64 form; if
                // one ever lacks it, it matches nothing rather than panicking.
                Some(Value::Number(n)) => n.as_f64().map_or(Got::Other, Got::Num),
                Some(Value::Bool(b)) => Got::Bool(*b),
                Some(Value::Array(_) | Value::Object(_)) => Got::Other,
            },
        }
    }
}

/// A field's value as evaluation reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Got<'a> {
    Missing,
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Date(DateTime<Utc>),
    /// Present, but of no type a comparison understands.
    Other,
}

impl Got<'_> {
    /// The instant a date field holds; strings are read as dates the way DESIGN §2 detects them.
    pub(crate) fn as_date(self) -> Option<DateTime<Utc>> {
        match self {
            Got::Date(t) => Some(t),
            Got::Str(s) => parse_date(s),
            _ => None,
        }
    }
}
