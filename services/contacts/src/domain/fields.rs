//! Custom fields: names, values and the type a workspace fixes for each name.

use std::fmt;

use meisa_runtime::errors::ApiError;

/// Built-in fields; their names cannot be custom field names (DESIGN §2).
pub const BUILT_IN: &[&str] = &[
    "email",
    "first_name",
    "last_name",
    "external_id",
    "subscribed",
    "tags",
    "created_at",
    "updated_at",
];

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_STRING_BYTES: usize = 4096;

/// A custom field name: a letter, then letters, digits or `_`, at most 64, not a built-in name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldName(String);

impl FieldName {
    pub fn parse(name: &str) -> Result<Self, ApiError> {
        let path = format!("custom_fields.{name}");
        let mut chars = name.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !starts_with_letter || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ApiError::field(
                path,
                "field names start with a letter followed by letters, digits or _",
            ));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ApiError::field(
                path,
                format!("field names are at most {MAX_NAME_LEN} characters"),
            ));
        }
        if BUILT_IN.contains(&name) {
            return Err(ApiError::field(
                path,
                format!(
                    "{name} is a built-in field; send it at the top level, not in custom_fields"
                ),
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn path(&self) -> String {
        format!("custom_fields.{}", self.0)
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
    Boolean,
    Date,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "string" => Some(Self::String),
            "number" => Some(Self::Number),
            "boolean" => Some(Self::Boolean),
            "date" => Some(Self::Date),
            _ => None,
        }
    }
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

/// RFC 3339 (`2026-11-20T10:00:00Z`) or a calendar date (`2026-11-20`).
pub fn is_date(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || (s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(FieldName::parse("plan").is_ok());
        assert!(FieldName::parse("posts_generated2").is_ok());
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
            let err = FieldName::parse(bad).unwrap_err();
            assert_eq!(
                err.field.as_deref(),
                Some(format!("custom_fields.{bad}").as_str())
            );
        }
        assert!(FieldName::parse(&"a".repeat(64)).is_ok());
        assert!(FieldName::parse(&"a".repeat(65)).is_err());
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
