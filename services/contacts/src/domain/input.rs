//! Upsert input parsed from the wire. After `ContactInput::parse` every value is known to respect
//! DESIGN §2: email syntax and length, name lengths, custom field names, value kinds and limits.

use std::collections::BTreeMap;

use meisa_model::{EmailAddress, EmailError};
use meisa_proto::{common, contacts as pb};
use meisa_runtime::errors::ApiError;

use super::{
    contact::Patch,
    fields::{FieldName, FieldValue, MAX_STRING_BYTES, field_name},
};

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_EXTERNAL_ID_CHARS: usize = 256;
pub const MAX_CUSTOM_FIELDS: usize = 100;
pub const MAX_TAG_CHARS: usize = 64;

/// The address at `email`, by the one rule set of meisa-model, or an error at `email`.
pub fn parse_email(raw: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| match e {
        EmailError::Empty => ApiError::field("email", "required"),
        EmailError::TooLong(_) | EmailError::Invalid { .. } => {
            ApiError::field("email", e.to_string())
        }
    })
}

/// A tag: trimmed, 1 to 64 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagName(String);

impl TagName {
    pub fn parse(raw: &str, field: &str) -> Result<Self, ApiError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ApiError::field(field, "tags cannot be empty"));
        }
        if s.chars().count() > MAX_TAG_CHARS {
            return Err(ApiError::field(
                field,
                format!("tags are at most {MAX_TAG_CHARS} characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ApiError::field(
                field,
                "tags cannot contain control characters",
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn parse_tags(raw: &[String]) -> Result<Vec<TagName>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::field("tags", "give at least one tag"));
    }
    raw.iter()
        .enumerate()
        .map(|(i, t)| TagName::parse(t, &format!("tags[{i}]")))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContactInput {
    pub email: EmailAddress,
    /// Required by the public HTTP API; internal callers (imports) may match by email alone.
    pub external_id: Option<String>,
    pub first_name: Patch<String>,
    pub last_name: Patch<String>,
    pub subscribed: Option<bool>,
    /// `None` removes the field.
    pub custom_fields: BTreeMap<FieldName, Option<FieldValue>>,
}

impl ContactInput {
    pub fn parse(input: &pb::ContactInput) -> Result<Self, ApiError> {
        let email = parse_email(&input.email)?;
        let external_id = match input.external_id.as_str() {
            "" => None,
            id if id.chars().count() > MAX_EXTERNAL_ID_CHARS => {
                return Err(ApiError::field(
                    "external_id",
                    format!("at most {MAX_EXTERNAL_ID_CHARS} characters"),
                ));
            }
            id if id.trim() != id || id.chars().any(char::is_control) => {
                return Err(ApiError::field(
                    "external_id",
                    "cannot have surrounding spaces or control characters",
                ));
            }
            id => Some(id.to_string()),
        };
        let first_name = parse_name(input.first_name.as_ref(), "first_name")?;
        let last_name = parse_name(input.last_name.as_ref(), "last_name")?;

        if input.custom_fields.len() > MAX_CUSTOM_FIELDS {
            return Err(ApiError::field(
                "custom_fields",
                format!(
                    "at most {MAX_CUSTOM_FIELDS} custom fields per request, got {}",
                    input.custom_fields.len()
                ),
            ));
        }
        let mut custom_fields = BTreeMap::new();
        for (name, value) in &input.custom_fields {
            let name = field_name(name)?;
            let value = parse_value(&name, value)?;
            custom_fields.insert(name, value);
        }
        Ok(Self {
            email,
            external_id,
            first_name,
            last_name,
            subscribed: input.subscribed,
            custom_fields,
        })
    }
}

fn parse_name(patch: Option<&pb::StringPatch>, field: &str) -> Result<Patch<String>, ApiError> {
    match patch {
        None => Ok(Patch::Keep),
        Some(pb::StringPatch { value: None }) => Ok(Patch::Clear),
        Some(pb::StringPatch { value: Some(v) }) => {
            let v = v.trim();
            if v.chars().count() > MAX_NAME_CHARS {
                return Err(ApiError::field(
                    field,
                    format!("at most {MAX_NAME_CHARS} characters"),
                ));
            }
            // An empty name is no name: clearing keeps "Hi {{ first_name }}" defaults working.
            Ok(if v.is_empty() {
                Patch::Clear
            } else {
                Patch::Set(v.to_string())
            })
        }
    }
}

fn parse_value(name: &FieldName, value: &common::Value) -> Result<Option<FieldValue>, ApiError> {
    use common::value::Kind;
    Ok(match &value.kind {
        None | Some(Kind::NullValue(_)) => None,
        Some(Kind::StringValue(s)) => {
            if s.len() > MAX_STRING_BYTES {
                return Err(ApiError::field(
                    name.path(),
                    format!(
                        "string values are at most {MAX_STRING_BYTES} bytes, got {}",
                        s.len()
                    ),
                ));
            }
            Some(FieldValue::String(s.clone()))
        }
        Some(Kind::IntValue(i)) => Some(FieldValue::Int(*i)),
        Some(Kind::DoubleValue(f)) => {
            if !f.is_finite() {
                return Err(ApiError::field(name.path(), "numbers must be finite"));
            }
            Some(FieldValue::Float(*f))
        }
        Some(Kind::BoolValue(b)) => Some(FieldValue::Bool(*b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(email: &str) -> pb::ContactInput {
        pb::ContactInput {
            email: email.into(),
            external_id: "usr_1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        let c = ContactInput::parse(&input("  Jane@Example.COM ")).unwrap();
        assert_eq!(c.email.as_str(), "jane@example.com");
    }

    #[test]
    fn bad_emails_name_the_field() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "Jane <j@x.com>",
        ] {
            let err = ContactInput::parse(&input(bad)).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("email"), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            ContactInput::parse(&input(&long))
                .unwrap_err()
                .field
                .as_deref(),
            Some("email")
        );
    }

    #[test]
    fn limits_name_the_field() {
        let mut i = input("a@b.co");
        i.first_name = Some(pb::StringPatch {
            value: Some("x".repeat(257)),
        });
        assert_eq!(
            ContactInput::parse(&i).unwrap_err().field.as_deref(),
            Some("first_name")
        );

        let mut i = input("a@b.co");
        for n in 0..101 {
            i.custom_fields
                .insert(format!("f{n}"), common::Value::default());
        }
        assert_eq!(
            ContactInput::parse(&i).unwrap_err().field.as_deref(),
            Some("custom_fields")
        );

        let mut i = input("a@b.co");
        i.custom_fields.insert(
            "bio".into(),
            common::Value {
                kind: Some(common::value::Kind::StringValue("x".repeat(4097))),
            },
        );
        assert_eq!(
            ContactInput::parse(&i).unwrap_err().field.as_deref(),
            Some("custom_fields.bio")
        );
    }

    #[test]
    fn null_removes_and_absent_keeps() {
        let mut i = input("a@b.co");
        i.custom_fields.insert(
            "plan".into(),
            common::Value {
                kind: Some(common::value::Kind::NullValue(true)),
            },
        );
        i.last_name = Some(pb::StringPatch { value: None });
        let c = ContactInput::parse(&i).unwrap();
        assert_eq!(c.custom_fields.values().next(), Some(&None));
        assert_eq!(c.first_name, Patch::Keep);
        assert_eq!(c.last_name, Patch::Clear);
    }
}
