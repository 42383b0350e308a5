//! What the JSON models of every resource share: reading a body's shape (an object, its known
//! keys, the JSON type of a value, named in errors by the field's path), and reading what the
//! services answer (times, enum values, empty strings), where a value that does not fit is a
//! [`BadAnswer`], never a default.

use chrono::{DateTime, Utc};
use meisa_runtime::errors::{ApiError, ErrorCode};
use prost_types::Timestamp;
use serde_json::{Map, Value};

use crate::error::BadAnswer;

// ------------------------------------------------------------------------------ request bodies

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn wrong_type(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::field(field, format!("must be {expected}, got {}", type_name(got)))
}

/// The body as an object; `expected` completes "the body must be a JSON object …".
pub fn object(body: Value, expected: &str) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(obj) => Ok(obj),
        other => Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "the body must be a JSON object {expected}, got {}",
                type_name(&other)
            ),
        )),
    }
}

/// The first key of `obj` that is not in `known`, named as the error's field.
pub fn reject_unknown(
    obj: &Map<String, Value>,
    known: &[&str],
    hint: &str,
) -> Result<(), ApiError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::field(
            unknown.clone(),
            format!("unknown field; expected one of {}{hint}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// An enum filter of a list: absent or blank is `none` (the proto's `UNSPECIFIED`: no filter).
pub fn enum_filter<T: Copy>(
    table: &[(&str, T)],
    field: &str,
    s: Option<&str>,
    none: T,
) -> Result<T, ApiError> {
    match s.filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_enum(table, field, s),
        None => Ok(none),
    }
}

/// The enum value a query parameter names, by the resource's table of names.
pub fn parse_enum<T: Copy>(table: &[(&str, T)], field: &str, s: &str) -> Result<T, ApiError> {
    let s = s.trim();
    table
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
            ApiError::field(
                field,
                format!("must be one of {}; got {s:?}", names.join(", ")),
            )
        })
}

// ------------------------------------------------------------------------------ answers

/// A time the service must have set.
pub fn time(field: &str, ts: Option<Timestamp>) -> Result<DateTime<Utc>, BadAnswer> {
    optional_time(field, ts)?.ok_or_else(|| BadAnswer(format!("{field} is missing")))
}

/// A time that may be absent (`sent_at` of a queued message); present, it must be a time.
pub fn optional_time(
    field: &str,
    ts: Option<Timestamp>,
) -> Result<Option<DateTime<Utc>>, BadAnswer> {
    ts.map(|t| {
        meisa_proto::datetime(&t).ok_or_else(|| BadAnswer(format!("{field} {t:?} is not a time")))
    })
    .transpose()
}

/// The API's name of an enum value a service answered, by the resource's table of names.
pub fn enum_name<T: TryFrom<i32> + PartialEq>(
    table: &[(&'static str, T)],
    field: &str,
    wire: i32,
) -> Result<&'static str, BadAnswer> {
    T::try_from(wire)
        .ok()
        .and_then(|v| table.iter().find(|(_, t)| *t == v))
        .map(|(name, _)| *name)
        .ok_or_else(|| BadAnswer(format!("{field} {wire} is not a value the gateway knows")))
}

/// Every item of an answer as its view; one that does not fit fails the whole answer.
pub fn views<P, V: TryFrom<P, Error = BadAnswer>>(items: Vec<P>) -> Result<Vec<V>, BadAnswer> {
    items.into_iter().map(V::try_from).collect()
}

/// Protos cannot tell an empty string from none; the API answers null for none.
pub fn non_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_that_cannot_be_read_are_errors_not_the_epoch() {
        assert!(time("created_at", None).is_err());
        let bad = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(time("created_at", Some(bad)).is_err());
        assert!(optional_time("sent_at", Some(bad)).is_err());
        assert_eq!(optional_time("sent_at", None).unwrap(), None);
        let t = time(
            "created_at",
            Some(Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
        )
        .unwrap();
        assert_eq!(t.to_rfc3339(), "2027-01-15T08:00:00+00:00");
    }
}
