//! Checking a parsed condition against the workspace's field registry (DESIGN §3: a value or op
//! that does not fit the field's known type is rejected at save time).

use crate::condition::{Condition, Leaf, Op, Scalar};
use crate::error::ConditionError;
use meisa_model::FieldType;
use meisa_model::parse_date;

use crate::field::{Field, Kind};

/// What a valid condition still wants the dashboard to know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validation {
    /// Custom fields the workspace has not seen yet, by bare name, once each, in the order they
    /// first appear. They are accepted so a team can prepare automations before the product
    /// sends the data; the dashboard marks them.
    pub unseen_fields: Vec<String>,
}

/// Checks every leaf against the type of its field. `field_type` answers for custom fields by
/// bare name (`"plan"`); built-in fields have fixed types and are never looked up. `root_path`
/// is the one given to [`Condition::parse`], so paths point at the same JSON.
///
/// The first mismatch is the error: `<leaf>.op` when the op cannot apply to the field's type
/// (`gt` on a boolean, `older_than` on a string), `<leaf>.value` (or `<leaf>.value[i]` inside
/// `in`) when the op fits but the value does not.
pub fn validate(
    condition: &Condition,
    field_type: &impl Fn(&str) -> Option<FieldType>,
    root_path: &str,
) -> Result<Validation, ConditionError> {
    let mut out = Validation::default();
    walk(condition, field_type, root_path, &mut out)?;
    Ok(out)
}

fn walk(
    c: &Condition,
    field_type: &impl Fn(&str) -> Option<FieldType>,
    path: &str,
    out: &mut Validation,
) -> Result<(), ConditionError> {
    let (key, children) = match c {
        Condition::All(cs) => ("all", cs),
        Condition::Any(cs) => ("any", cs),
        Condition::Leaf(leaf) => return check_leaf(leaf, field_type, path, out),
    };
    for (i, child) in children.iter().enumerate() {
        walk(child, field_type, &join(path, &format!("{key}[{i}]")), out)?;
    }
    Ok(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_leaf(
    leaf: &Leaf,
    field_type: &impl Fn(&str) -> Option<FieldType>,
    path: &str,
    out: &mut Validation,
) -> Result<(), ConditionError> {
    let kind = match leaf.field.built_in_kind() {
        Some(k) => k,
        None => match field_type(leaf.field.name()) {
            Some(t) => Kind::Typed(t),
            None => {
                let name = leaf.field.name();
                if !out.unseen_fields.iter().any(|n| n == name) {
                    out.unseen_fields.push(name.to_string());
                }
                // Nothing to check a value against yet; parsing already checked its shape.
                return Ok(());
            }
        },
    };
    let op_path = join(path, "op");
    let value_path = join(path, "value");
    let field = &leaf.field;
    let op = leaf.op.kind();
    match kind {
        Kind::Tags => match &leaf.op {
            Op::Contains(_) | Op::Exists | Op::NotExists | Op::HasTag(_) | Op::LacksTag(_) => {
                Ok(())
            }
            Op::In(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !matches!(item, Scalar::String(_)) {
                        return Err(ConditionError::new(
                            format!("{value_path}[{i}]"),
                            format!(
                                "tags are strings, got {}; write the tag in quotes",
                                scalar_kind(item)
                            ),
                        ));
                    }
                }
                Ok(())
            }
            _ => Err(ConditionError::new(
                op_path,
                format!(
                    "{op} does not apply to tags, the contact's set of tags; use has_tag, lacks_tag, contains, in, exists or not_exists"
                ),
            )),
        },
        Kind::Typed(t) => match &leaf.op {
            Op::Exists | Op::NotExists => Ok(()),
            Op::Eq(v) | Op::Ne(v) => fits(field, t, v, &value_path),
            Op::Gt(v) | Op::Gte(v) | Op::Lt(v) | Op::Lte(v) => {
                if t == FieldType::Boolean {
                    return Err(ConditionError::new(
                        op_path,
                        format!("{op} orders values, and {field} is a boolean field; use eq or ne"),
                    ));
                }
                fits(field, t, v, &value_path)
            }
            Op::Contains(_) => only_on(FieldType::String, t, &op_path, || {
                format!("contains looks for text in a string field, and {field} is a {t} field")
            }),
            Op::In(items) => {
                for (i, item) in items.iter().enumerate() {
                    fits(field, t, item, &format!("{value_path}[{i}]"))?;
                }
                Ok(())
            }
            Op::Before(_) | Op::After(_) | Op::OlderThan(_) | Op::Within(_) => {
                only_on(FieldType::Date, t, &op_path, || {
                    format!("{op} compares dates, and {field} is a {t} field")
                })
            }
            // Parsing only builds these on `tags`; a hand-built leaf on another field is refused.
            Op::HasTag(_) | Op::LacksTag(_) => Err(ConditionError::new(
                join(path, "field"),
                format!("{op} tests the contact's tags; write \"field\": \"tags\""),
            )),
        },
    }
}

/// An op that applies to fields of type `wanted` only, on a field of type `t`: refused with
/// `why` and the ops that do apply.
fn only_on(
    wanted: FieldType,
    t: FieldType,
    op_path: &str,
    why: impl FnOnce() -> String,
) -> Result<(), ConditionError> {
    if t == wanted {
        return Ok(());
    }
    Err(ConditionError::new(
        op_path,
        format!("{}; {}", why(), ops_for(t)),
    ))
}

/// The ops that do apply to a type, for messages that refuse one.
fn ops_for(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "use eq, ne, contains, in, gt, gte, lt, lte, exists or not_exists",
        FieldType::Number => "use eq, ne, gt, gte, lt, lte, in, exists or not_exists",
        FieldType::Boolean => "use eq, ne, exists or not_exists",
        FieldType::Date => {
            "use before, after, older_than, within, eq, ne, gt, gte, lt, lte, exists or not_exists"
        }
    }
}

fn scalar_kind(v: &Scalar) -> &'static str {
    match v {
        Scalar::String(s) if parse_date(s).is_some() => "a date",
        Scalar::String(_) => "a string",
        Scalar::Number(_) => "a number",
        Scalar::Bool(_) => "a boolean",
    }
}

fn fits(field: &Field, t: FieldType, v: &Scalar, path: &str) -> Result<(), ConditionError> {
    let ok = match (t, v) {
        (FieldType::String, Scalar::String(_)) => true,
        (FieldType::Number, Scalar::Number(_)) => true,
        (FieldType::Boolean, Scalar::Bool(_)) => true,
        (FieldType::Date, Scalar::String(s)) => parse_date(s).is_some(),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let how = match t {
        FieldType::String => "write the value in quotes",
        FieldType::Number => "write a number without quotes, e.g. 5",
        FieldType::Boolean => "write true or false without quotes",
        FieldType::Date => {
            "write a date: RFC 3339 (2026-11-20T10:00:00Z) or YYYY-MM-DD (2026-11-20)"
        }
    };
    // A string compared with a date field is a date that did not parse, not a string.
    let got = match (t, v) {
        (FieldType::Date, Scalar::String(_)) => "a string that is not a date",
        _ => scalar_kind(v),
    };
    Err(ConditionError::new(
        path,
        format!("{field} is a {t} field, got {got}; {how}"),
    ))
}
