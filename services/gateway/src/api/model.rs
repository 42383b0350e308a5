//! The public JSON shapes (DESIGN §2) and their mapping to and from the contacts protos. This is
//! the one place that knows both sides: handlers only pass values through.
//!
//! Shape errors are found here, in document order, and name the field: the caller learns exactly
//! which key to fix. Everything about values (email syntax, limits, custom field names and types)
//! is the contacts service's to judge, so HTTP and gRPC callers get the same answers.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use meisa_proto::{
    common,
    contacts::{self as pb, ContactInput, StringPatch},
};
use meisa_runtime::errors::{ApiError, ErrorCode};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::json::{object, reject_unknown, time, type_name, wrong_type};
use crate::error::{BadAnswer, ErrorBody};

const UPSERT_KEYS: &[&str] = &[
    "email",
    "external_id",
    "first_name",
    "last_name",
    "subscribed",
    "custom_fields",
];

/// The body of `POST /api/v1/contacts/upsert/`. Documentation only: the handler reads a raw JSON
/// value and maps it with [`contact_input`], so unknown keys and wrong types get precise errors.
#[derive(ToSchema)]
#[schema(example = json!({
    "email": "jane@example.com", "external_id": "usr_12345", "first_name": "Jane",
    "last_name": "Doe", "subscribed": true,
    "custom_fields": {"plan": "free", "posts_generated": 0, "onboarding_completed": false,
                      "signup_date": "2026-11-20T10:00:00Z"}
}))]
#[allow(dead_code)]
pub struct UpsertContactBody {
    /// Trimmed, compared case-insensitively, stored lower-cased; at most 254 bytes.
    email: String,
    /// Your own id for the user; matched first.
    external_id: String,
    /// Omit to keep the stored value; `null` clears it. At most 256 characters.
    first_name: Option<String>,
    last_name: Option<String>,
    /// Omit to keep the stored value.
    subscribed: Option<bool>,
    /// Merged into the stored fields: fields not sent are kept, `null` removes one. Values are
    /// strings, numbers or booleans; the first value seen fixes a field's type.
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<HashMap<String, Value>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchUpsertBody {
    /// Up to 1,000 upsert bodies.
    contacts: Vec<UpsertContactBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpsertResult {
    #[schema(example = "ct_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    pub id: String,
    pub created: bool,
    pub version: i64,
    /// Changed paths; empty when the upsert changed nothing (and nothing was written).
    #[schema(example = json!(["first_name", "custom_fields.plan"]))]
    pub changed: Vec<String>,
}

impl From<pb::UpsertResponse> for UpsertResult {
    fn from(r: pb::UpsertResponse) -> Self {
        Self {
            id: r.id,
            created: r.created,
            version: r.version,
            changed: r.changed,
        }
    }
}

/// One entry of a batch answer: the upsert result or `{"error": {…}}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchItemResult {
    Ok(UpsertResult),
    Err(ErrorBody),
}

impl BatchItemResult {
    pub fn error(e: &ApiError) -> Self {
        Self::Err(ErrorBody { error: e.into() })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchUpsertResult {
    /// One entry per input, in order.
    pub results: Vec<BatchItemResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub id: String,
    pub email: String,
    pub external_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub subscribed: bool,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<common::Contact> for ContactView {
    type Error = BadAnswer;

    fn try_from(c: common::Contact) -> Result<Self, BadAnswer> {
        Ok(Self {
            id: c.id,
            email: c.email,
            external_id: c.external_id,
            first_name: c.first_name,
            last_name: c.last_name,
            subscribed: c.subscribed,
            tags: c.tags,
            custom_fields: fields_to_json(c.custom_fields),
            version: c.version,
            created_at: time("created_at", c.created_at)?,
            updated_at: time("updated_at", c.updated_at)?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactList {
    pub contacts: Vec<ContactView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldView {
    pub name: String,
    /// string, number, boolean or date.
    #[serde(rename = "type")]
    #[schema(example = "string")]
    pub kind: String,
    pub first_seen_at: DateTime<Utc>,
    /// How many contacts currently have the field.
    pub contacts: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldList {
    pub fields: Vec<FieldView>,
}

impl TryFrom<pb::Field> for FieldView {
    type Error = BadAnswer;

    fn try_from(f: pb::Field) -> Result<Self, BadAnswer> {
        let kind = meisa_proto::field_type_of(f.r#type)
            .map_err(|e| BadAnswer(format!("field {:?}: {e}", f.name)))?;
        Ok(Self {
            first_seen_at: time("first_seen_at", f.first_seen_at)?,
            name: f.name,
            kind: kind.as_str().into(),
            contacts: f.contacts,
        })
    }
}

/// Custom fields in name order (the proto map is a BTreeMap), so the same contact always
/// serializes the same way.
pub fn fields_to_json(fields: BTreeMap<String, common::Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(name, v)| (name, meisa_proto::value_to_json(&v)))
        .collect()
}

/// JSON integers stay integers (`0` comes back as `0`, not `0.0`); every other number is a
/// double. Objects and arrays are refused here, naming the field.
fn value_from_json(name: &str, v: &Value) -> Result<common::Value, ApiError> {
    meisa_proto::json_to_value(v).ok_or_else(|| {
        ApiError::field(
            format!("custom_fields.{name}"),
            format!(
                "send a string, number or boolean (or null to remove the field), got {}; \
                 objects and arrays are not supported",
                type_name(v)
            ),
        )
    })
}

fn required_string(obj: &mut Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match obj.remove(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(ApiError::field(field, "is required")),
        Some(other) => Err(wrong_type(field, "a string", &other)),
    }
}

/// Absent keeps the stored value, `null` clears it, a string sets it.
fn string_patch(
    obj: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<StringPatch>, ApiError> {
    match obj.remove(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(StringPatch { value: None })),
        Some(Value::String(s)) => Ok(Some(StringPatch { value: Some(s) })),
        Some(other) => Err(wrong_type(field, "a string or null", &other)),
    }
}

/// Maps one upsert body to the contacts input, or says which field is wrong.
pub fn contact_input(body: Value) -> Result<ContactInput, ApiError> {
    let mut obj = object(body, "with email and external_id")?;
    reject_unknown(&obj, UPSERT_KEYS, ". Custom fields go inside custom_fields")?;
    // Checked in the order a reader scans the body, so the first error reported is the first
    // one in the document.
    let mut input = ContactInput::default();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in &keys {
        match key.as_str() {
            "email" => input.email = required_string(&mut obj, "email")?,
            "external_id" => {
                input.external_id = required_string(&mut obj, "external_id")?;
                // Contacts treats an empty id as "match by email only", which internal imports
                // use; the public API always identifies the user.
                if input.external_id.trim().is_empty() {
                    return Err(ApiError::field(
                        "external_id",
                        "is required and cannot be empty",
                    ));
                }
            }
            "first_name" => input.first_name = string_patch(&mut obj, "first_name")?,
            "last_name" => input.last_name = string_patch(&mut obj, "last_name")?,
            "subscribed" => match obj.remove("subscribed") {
                Some(Value::Bool(b)) => input.subscribed = Some(b),
                Some(other) => return Err(wrong_type("subscribed", "true or false", &other)),
                None => {}
            },
            "custom_fields" => match obj.remove("custom_fields") {
                // A serializer's `None` means "no custom field changes", not an error.
                Some(Value::Null) | None => {}
                Some(Value::Object(fields)) => {
                    for (name, value) in fields {
                        let value = value_from_json(&name, &value)?;
                        input.custom_fields.insert(name, value);
                    }
                }
                Some(other) => {
                    return Err(wrong_type(
                        "custom_fields",
                        "an object of field names to values",
                        &other,
                    ));
                }
            },
            _ => {}
        }
    }
    if input.email.is_empty() && !keys.iter().any(|k| k == "email") {
        return Err(ApiError::field("email", "is required"));
    }
    if input.external_id.is_empty() && !keys.iter().any(|k| k == "external_id") {
        return Err(ApiError::field("external_id", "is required"));
    }
    Ok(input)
}

/// A batch item failure reported by the contacts service, in the public shape. Internal details
/// are replaced by the opaque message, as for any other error.
pub fn item_error(e: pb::ItemError) -> ApiError {
    match ErrorCode::parse(&e.code) {
        Some(ErrorCode::Internal) | None => ApiError::internal(),
        Some(code) => ApiError {
            code,
            message: e.message,
            field: Some(e.field).filter(|f| !f.is_empty()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meisa_proto::common::value::Kind;
    use serde_json::json;

    fn at(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    fn err(body: Value) -> ApiError {
        contact_input(body).unwrap_err()
    }

    #[test]
    fn a_full_body_maps_to_the_proto() {
        let input = contact_input(json!({
            "email": "jane@example.com", "external_id": "usr_1", "first_name": "Jane",
            "last_name": null, "subscribed": true,
            "custom_fields": {"plan": "free", "posts": 0, "ratio": 0.5, "done": false, "gone": null}
        }))
        .unwrap();
        assert_eq!(input.email, "jane@example.com");
        assert_eq!(input.external_id, "usr_1");
        assert_eq!(
            input.first_name,
            Some(StringPatch {
                value: Some("Jane".into())
            })
        );
        assert_eq!(input.last_name, Some(StringPatch { value: None }));
        assert_eq!(input.subscribed, Some(true));
        let kind = |n: &str| input.custom_fields[n].kind.clone().unwrap();
        assert_eq!(kind("plan"), Kind::StringValue("free".into()));
        assert_eq!(kind("posts"), Kind::IntValue(0));
        assert_eq!(kind("ratio"), Kind::DoubleValue(0.5));
        assert_eq!(kind("done"), Kind::BoolValue(false));
        assert_eq!(kind("gone"), Kind::NullValue(true));
    }

    #[test]
    fn absent_optional_fields_keep_the_stored_values() {
        let input = contact_input(json!({"email": "a@b.co", "external_id": "u"})).unwrap();
        assert_eq!(input.first_name, None);
        assert_eq!(input.last_name, None);
        assert_eq!(input.subscribed, None);
        assert!(input.custom_fields.is_empty());
        assert!(
            contact_input(json!({"email": "a@b.co", "external_id": "u", "custom_fields": null}))
                .is_ok()
        );
    }

    #[test]
    fn integer_ness_survives_the_round_trip() {
        for v in [json!(0), json!(-7), json!(1.0), json!(2.5), json!(i64::MAX)] {
            let back = meisa_proto::value_to_json(&value_from_json("x", &v).unwrap());
            assert_eq!(back, v);
            assert_eq!(back.is_i64(), v.is_i64());
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err(json!({"email": "a@b.co", "external_id": "u", "plan": "pro"}));
        assert_eq!(e.code, ErrorCode::InvalidField);
        assert_eq!(e.field.as_deref(), Some("plan"));
        assert!(e.message.contains("custom_fields"));
    }

    #[test]
    fn wrong_top_level_types_are_named() {
        for (key, value) in [
            ("email", json!(5)),
            ("external_id", json!(12345)),
            ("first_name", json!(3)),
            ("last_name", json!(["Doe"])),
            ("subscribed", json!("yes")),
            ("subscribed", json!(null)),
            ("custom_fields", json!(["plan"])),
            ("custom_fields", json!("plan=pro")),
        ] {
            let mut body = json!({"email": "a@b.co", "external_id": "u"});
            body[key] = value;
            let e = err(body);
            assert_eq!(e.code, ErrorCode::InvalidField);
            assert_eq!(e.field.as_deref(), Some(key), "{}", e.message);
        }
    }

    #[test]
    fn missing_identifiers_are_required() {
        assert_eq!(
            err(json!({"external_id": "u"})).field.as_deref(),
            Some("email")
        );
        assert_eq!(
            err(json!({"email": "a@b.co"})).field.as_deref(),
            Some("external_id")
        );
        assert_eq!(
            err(json!({"email": null, "external_id": "u"}))
                .field
                .as_deref(),
            Some("email")
        );
        assert_eq!(
            err(json!({"email": "a@b.co", "external_id": " "}))
                .field
                .as_deref(),
            Some("external_id")
        );
        let e = err(json!([1, 2]));
        assert_eq!(e.code, ErrorCode::InvalidField);
        assert_eq!(e.field, None);
    }

    #[test]
    fn nested_custom_values_are_refused_with_their_path() {
        for v in [json!({"a": 1}), json!([1, 2])] {
            let e =
                err(json!({"email": "a@b.co", "external_id": "u", "custom_fields": {"plan": v}}));
            assert_eq!(e.field.as_deref(), Some("custom_fields.plan"));
            assert!(
                e.message.contains("string, number or boolean"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn the_first_error_in_the_document_is_reported() {
        let e = err(json!({"first_name": 1, "email": 2, "external_id": "u"}));
        assert_eq!(e.field.as_deref(), Some("first_name"));
    }

    #[test]
    fn contacts_render_with_nulls_and_sorted_fields() {
        let c = common::Contact {
            id: "ct_1".into(),
            email: "a@b.co".into(),
            external_id: "u".into(),
            first_name: Some("Jane".into()),
            last_name: None,
            subscribed: true,
            custom_fields: BTreeMap::from([
                (
                    "zeta".into(),
                    common::Value {
                        kind: Some(Kind::IntValue(1)),
                    },
                ),
                (
                    "alpha".into(),
                    common::Value {
                        kind: Some(Kind::StringValue("x".into())),
                    },
                ),
            ]),
            version: 3,
            created_at: at(1_800_000_000, 0),
            updated_at: at(1_800_000_001, 0),
            ..Default::default()
        };
        let v = serde_json::to_value(ContactView::try_from(c.clone()).unwrap()).unwrap();
        assert_eq!(v["last_name"], Value::Null);
        assert_eq!(v["custom_fields"], json!({"alpha": "x", "zeta": 1}));
        let keys: Vec<_> = v["custom_fields"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["alpha", "zeta"]);
        assert_eq!(v["created_at"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn a_contact_whose_times_cannot_be_read_is_an_error_not_the_epoch() {
        let c = common::Contact {
            id: "ct_1".into(),
            created_at: at(1_800_000_000, -1),
            updated_at: at(1_800_000_000, 0),
            ..Default::default()
        };
        assert!(ContactView::try_from(c.clone()).is_err());
        let c = common::Contact {
            created_at: c.updated_at,
            updated_at: None,
            ..c
        };
        assert!(ContactView::try_from(c).is_err());
    }
}
