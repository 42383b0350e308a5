//! The conversions between generated types and the shared vocabulary that every service needs,
//! written once: times, field types and custom field values as JSON.

use chrono::{DateTime, Utc};
use meisa_model::FieldType;
use prost_types::Timestamp;
use serde_json::{Number, Value as Json};

use crate::common::{self, value::Kind};

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        // Sub-second nanos are below 2·10⁹ (a leap second is 1·10⁹ + …), so this always fits.
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(999_999_999),
    }
}

/// `None` for a timestamp no `DateTime` can hold (negative nanos, out of range): a caller that
/// requires one treats that as corrupt input, not as the epoch.
pub fn datetime(ts: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

#[derive(Debug, thiserror::Error)]
#[error("field type {0} is not one of string, number, boolean, date")]
pub struct FieldTypeError(pub i32);

pub fn field_type(t: FieldType) -> common::FieldType {
    match t {
        FieldType::String => common::FieldType::String,
        FieldType::Number => common::FieldType::Number,
        FieldType::Boolean => common::FieldType::Boolean,
        FieldType::Date => common::FieldType::Date,
    }
}

/// The wire value of a `FieldType` field back as the model's type.
pub fn field_type_of(wire: i32) -> Result<FieldType, FieldTypeError> {
    match common::FieldType::try_from(wire) {
        Ok(common::FieldType::String) => Ok(FieldType::String),
        Ok(common::FieldType::Number) => Ok(FieldType::Number),
        Ok(common::FieldType::Boolean) => Ok(FieldType::Boolean),
        Ok(common::FieldType::Date) => Ok(FieldType::Date),
        Ok(common::FieldType::Unspecified) | Err(_) => Err(FieldTypeError(wire)),
    }
}

/// A value as JSON: `null` for `null_value` and for an empty value. Integers stay integers.
pub fn value_to_json(v: &common::Value) -> Json {
    match &v.kind {
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::IntValue(i)) => Json::from(*i),
        Some(Kind::DoubleValue(d)) => Number::from_f64(*d).map_or(Json::Null, Json::Number),
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NullValue(_)) | None => Json::Null,
    }
}

/// A JSON scalar as a value (`null` as `null_value`); `None` for a list or an object, which no
/// field can hold. Numbers that fit an i64 stay integers.
pub fn json_to_value(v: &Json) -> Option<common::Value> {
    let kind = match v {
        Json::Null => Kind::NullValue(true),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntValue(i),
            None => Kind::DoubleValue(n.as_f64()?),
        },
        Json::Array(_) | Json::Object(_) => return None,
    };
    Some(common::Value { kind: Some(kind) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_round_trip_and_bad_nanos_are_none() {
        let t = DateTime::parse_from_rfc3339("2026-11-20T10:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(datetime(&timestamp(t)), Some(t));
        assert_eq!(
            datetime(&Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
    }

    #[test]
    fn values_round_trip_through_json() {
        for j in [
            json!("free"),
            json!(0),
            json!(2.5),
            json!(true),
            json!(null),
        ] {
            let v = json_to_value(&j).unwrap();
            assert_eq!(value_to_json(&v), j);
        }
        assert!(json_to_value(&json!([1])).is_none());
        assert_eq!(value_to_json(&common::Value::default()), json!(null));
    }

    #[test]
    fn field_types_round_trip() {
        for t in FieldType::ALL {
            assert_eq!(field_type_of(field_type(t) as i32).unwrap(), t);
        }
        assert!(field_type_of(0).is_err());
    }
}
