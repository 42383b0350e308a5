//! Custom fields: values, and what contacts says about names and types. The rules themselves
//! (the name syntax, the built-in names, what is a date, the four types) are meisa-model's; this
//! module words their errors the way the contacts API always has, at the field's path.

use meisa_model::{FieldNameError, is_date};
use meisa_runtime::errors::ApiError;

pub use meisa_model::{FieldName, FieldType};

pub const MAX_STRING_BYTES: usize = 4096;

/// A custom field name as sent in `custom_fields`, or an error at `custom_fields.<name>`.
pub fn field_name(name: &str) -> Result<FieldName, ApiError> {
    FieldName::parse(name).map_err(|e| {
        let path = format!("{}{name}", meisa_model::CUSTOM_PREFIX);
        match e {
            // An empty name breaks the same rule as `2fast`: it does not start with a letter.
            FieldNameError::Empty | FieldNameError::Syntax => {
                ApiError::field(path, FieldNameError::Syntax.to_string())
            }
            FieldNameError::TooLong => ApiError::field(path, e.to_string()),
            FieldNameError::BuiltIn(b) => ApiError::field(
                path,
                format!("{b} is a built-in field; send it at the top level, not in custom_fields"),
            ),
        }
    })
}

/// A custom field value. Integers stay integers so a product that sends `0` reads back `0`.
#[derive(Clone, Debug)]
pub enum FieldValue {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl PartialEq for FieldValue {
    /// Numbers compare by value: `5` and `5.0` are the same number, so re-sending one as the other
    /// is not a change.
    fn eq(&self, other: &Self) -> bool {
        use FieldValue::*;
        match (self, other) {
            (String(a), String(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Int(a), Float(b)) | (Float(b), Int(a)) => (*a as f64) == *b,
            _ => false,
        }
    }
}

impl FieldValue {
    /// The type this value gives a field seen for the first time: a string that parses as a date
    /// makes a date field.
    pub fn inferred_type(&self) -> FieldType {
        match self {
            Self::String(s) if is_date(s) => FieldType::Date,
            Self::String(_) => FieldType::String,
            Self::Int(_) | Self::Float(_) => FieldType::Number,
            Self::Bool(_) => FieldType::Boolean,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::String(_) => "a string",
            Self::Int(_) | Self::Float(_) => "a number",
            Self::Bool(_) => "a boolean",
        }
    }

    /// Checks the value against the field's fixed type; the error says what was expected.
    pub fn check_type(&self, name: &FieldName, ty: FieldType) -> Result<(), ApiError> {
        let fits = match (ty, self) {
            (FieldType::String, Self::String(_)) => true,
            (FieldType::Date, Self::String(s)) => {
                if is_date(s) {
                    true
                } else {
                    return Err(ApiError::field(
                        name.path(),
                        "field is a date, got a string that is not a date; send RFC 3339 (2026-11-20T10:00:00Z) or YYYY-MM-DD",
                    ));
                }
            }
            (FieldType::Number, Self::Int(_) | Self::Float(_)) => true,
            (FieldType::Boolean, Self::Bool(_)) => true,
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(ApiError::field(
                name.path(),
                format!("field is a {}, got {}", ty.as_str(), self.kind()),
            ))
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::String(s) => serde_json::Value::String(s.clone()),
            Self::Int(i) => serde_json::Value::from(*i),
            Self::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Self::Bool(b) => serde_json::Value::Bool(*b),
        }
    }

    /// Reads a stored value back; anything else than a scalar was never written by this service.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        match v {
            serde_json::Value::String(s) => Some(Self::String(s.clone())),
            serde_json::Value::Bool(b) => Some(Self::Bool(*b)),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Self::Int)
                .or_else(|| n.as_f64().map(Self::Float)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(field_name("plan").is_ok());
        assert!(field_name("posts_generated2").is_ok());
        for bad in [
            "",
            "2fast",
            "_x",
            "has-dash",
            "has space",
            "é",
            "email",
            "tags",
        ] {
            let err = field_name(bad).unwrap_err();
            assert_eq!(
                err.field.as_deref(),
                Some(format!("custom_fields.{bad}").as_str())
            );
        }
        assert!(field_name(&"a".repeat(64)).is_ok());
        assert!(field_name(&"a".repeat(65)).is_err());
        assert_eq!(
            field_name("tags").unwrap_err().message,
            "custom_fields.tags: tags is a built-in field; send it at the top level, not in custom_fields"
        );
        assert_eq!(
            field_name("").unwrap_err().message,
            "custom_fields.: field names start with a letter followed by letters, digits or _"
        );
    }

    #[test]
    fn dates_are_detected_from_strings() {
        assert_eq!(
            FieldValue::String("2026-11-20T10:00:00Z".into()).inferred_type(),
            FieldType::Date
        );
        assert_eq!(
            FieldValue::String("2026-11-20".into()).inferred_type(),
            FieldType::Date
        );
        assert_eq!(
            FieldValue::String("2026-13-40".into()).inferred_type(),
            FieldType::String
        );
        assert_eq!(
            FieldValue::String("free".into()).inferred_type(),
            FieldType::String
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(FieldValue::Int(5), FieldValue::Float(5.0));
        assert_ne!(FieldValue::Int(5), FieldValue::String("5".into()));
    }

    #[test]
    fn type_mismatch_names_the_field() {
        let name = FieldName::parse("plan").unwrap();
        let err = FieldValue::Int(3)
            .check_type(&name, FieldType::String)
            .unwrap_err();
        assert_eq!(
            err.message,
            "custom_fields.plan: field is a string, got a number"
        );
        assert_eq!(err.field.as_deref(), Some("custom_fields.plan"));
    }
}
