//! Triggers (DESIGN §3): what kind of change makes an automation consider firing.

use meisa_conditions::{BuiltIn, DateValue, Field, FieldType};
use serde_json::{Map, Value, json};

use super::{
    event::{EventKind, EventView},
    json::{DefinitionError, Obj, Result, describe},
};

#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    ContactCreated,
    /// Fires on an update whose change set has `field` (any field when `None`) with the old and
    /// new values matching `from` and `to` where given.
    ContactUpdated {
        field: Option<TriggerField>,
        from: Option<ValueMatch>,
        to: Option<ValueMatch>,
    },
    /// Fires on the change that makes the automation's conditions true when they were false.
    ConditionMet,
    TagAdded {
        tag: String,
    },
}

/// The field of a contact_updated trigger, as written (`plan` or `custom_fields.plan`) and as
/// understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerField {
    pub field: Field,
    pub written: String,
}

impl TriggerField {
    /// The path the contacts service writes in a change set: built-ins by name, custom fields as
    /// `custom_fields.<name>`.
    pub fn change_path(&self) -> String {
        match &self.field {
            Field::Custom(name) => format!("custom_fields.{name}"),
            f => f.name().to_string(),
        }
    }
}

/// `from` / `to`: a value to compare with, or JSON `null` for "the field did not exist" (from) or
/// "the field was removed" (to).
#[derive(Clone, Debug, PartialEq)]
pub enum ValueMatch {
    Absent,
    Is(Value),
}

impl ValueMatch {
    fn parse(v: &Value, path: &str) -> Result<Self> {
        match v {
            Value::Null => Ok(Self::Absent),
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(Self::Is(v.clone())),
            other => Err(DefinitionError::new(
                path,
                format!(
                    "expected a string, number, boolean or null, got {}",
                    describe(other)
                ),
            )),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Absent => Value::Null,
            Self::Is(v) => v.clone(),
        }
    }

    /// Whether a changed path's value (`None`: it did not exist) is the one this names.
    pub fn matches(&self, actual: Option<&Value>, field: &Field) -> bool {
        match (self, actual) {
            (Self::Absent, None) => true,
            (Self::Absent, Some(v)) => v.is_null(),
            (Self::Is(_), None) => false,
            (Self::Is(want), Some(got)) => values_equal(want, got, field),
        }
    }
}

/// Equality as conditions define it: numbers by value (`5` = `5.0`), two strings that both read
/// as dates as instants, email case-insensitively, everything else exactly.
pub fn values_equal(a: &Value, b: &Value, field: &Field) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => {
            if x == y {
                return true;
            }
            if *field == Field::BuiltIn(BuiltIn::Email) {
                return x.eq_ignore_ascii_case(y);
            }
            match (DateValue::parse(x), DateValue::parse(y)) {
                (Some(p), Some(q)) => p.at() == q.at(),
                _ => false,
            }
        }
        _ => false,
    }
}

pub const TYPES: &str = "contact_created, contact_updated, condition_met, tag_added";

impl Trigger {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ContactCreated => "contact_created",
            Self::ContactUpdated { .. } => "contact_updated",
            Self::ConditionMet => "condition_met",
            Self::TagAdded { .. } => "tag_added",
        }
    }

    /// Reads `{"type": ..., ...}` at `path` (normally `trigger`).
    pub fn parse(v: &Value, path: &str) -> Result<Self> {
        let obj = Obj::new(v, path, "a trigger")?;
        let ty = obj.str_req("type", &format!("use one of {TYPES}"))?;
        match ty {
            "contact_created" => {
                obj.only(&["type"], "a contact_created trigger")?;
                Ok(Self::ContactCreated)
            }
            "condition_met" => {
                obj.only(
                    &["type"],
                    "a condition_met trigger (its test is `conditions`)",
                )?;
                Ok(Self::ConditionMet)
            }
            "tag_added" => {
                obj.only(&["type", "tag"], "a tag_added trigger")?;
                let tag = super::action::tag(&obj, "tag")?;
                Ok(Self::TagAdded { tag })
            }
            "contact_updated" => {
                obj.only(
                    &["type", "field", "from", "to"],
                    "a contact_updated trigger",
                )?;
                let field = match obj.str_opt("field")? {
                    None => None,
                    Some(written) => Some(parse_field(written, &obj.at("field"))?),
                };
                let from = obj
                    .raw("from")
                    .map(|v| ValueMatch::parse(v, &obj.at("from")))
                    .transpose()?;
                let to = obj
                    .raw("to")
                    .map(|v| ValueMatch::parse(v, &obj.at("to")))
                    .transpose()?;
                for (key, given) in [("from", from.is_some()), ("to", to.is_some())] {
                    if !given {
                        continue;
                    }
                    match &field {
                        None => {
                            return Err(DefinitionError::new(
                                obj.at(key),
                                format!("{key} needs a field: say which field's value it is"),
                            ));
                        }
                        Some(f) if f.field == Field::BuiltIn(BuiltIn::Tags) => {
                            return Err(DefinitionError::new(
                                obj.at(key),
                                "tags have no single value to compare; use a tag_added trigger or a has_tag condition",
                            ));
                        }
                        Some(_) => {}
                    }
                }
                Ok(Self::ContactUpdated { field, from, to })
            }
            other => Err(DefinitionError::new(
                obj.at("type"),
                format!("unknown trigger type {other:?}; use one of {TYPES}"),
            )),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.type_name()));
        match self {
            Self::ContactUpdated { field, from, to } => {
                if let Some(f) = field {
                    m.insert("field".into(), json!(f.written));
                }
                if let Some(v) = from {
                    m.insert("from".into(), v.to_json());
                }
                if let Some(v) = to {
                    m.insert("to".into(), v.to_json());
                }
            }
            Self::TagAdded { tag } => {
                m.insert("tag".into(), json!(tag));
            }
            Self::ContactCreated | Self::ConditionMet => {}
        }
        Value::Object(m)
    }

    /// Checks `from` / `to` against the field's type. Returns the custom field when the workspace
    /// has not seen it yet (accepted: the dashboard marks it).
    pub fn validate(
        &self,
        field_type: &impl Fn(&str) -> Option<FieldType>,
        path: &str,
    ) -> Result<Option<String>> {
        let Self::ContactUpdated {
            field: Some(f),
            from,
            to,
        } = self
        else {
            return Ok(None);
        };
        let (ty, unseen) = match &f.field {
            Field::Custom(name) => match field_type(name) {
                Some(t) => (t, None),
                None => return Ok(Some(name.clone())),
            },
            Field::BuiltIn(b) => match b.field_type() {
                // Parsing refused from/to on tags; created_at/updated_at are refused as fields.
                None | Some(FieldType::Date) => return Ok(None),
                Some(t) => (t, None),
            },
        };
        for (key, m) in [("from", from), ("to", to)] {
            let Some(ValueMatch::Is(v)) = m else { continue };
            let fits = match ty {
                FieldType::String => v.is_string(),
                FieldType::Number => v.is_number(),
                FieldType::Boolean => v.is_boolean(),
                FieldType::Date => v.as_str().is_some_and(|s| DateValue::parse(s).is_some()),
            };
            if !fits {
                let hint = match ty {
                    FieldType::String => "write a string in quotes",
                    FieldType::Number => "write a number without quotes, e.g. 5",
                    FieldType::Boolean => "write true or false without quotes",
                    FieldType::Date => {
                        "write a date: RFC 3339 (2026-11-20T10:00:00Z) or YYYY-MM-DD"
                    }
                };
                return Err(DefinitionError::new(
                    super::json::join(path, key),
                    format!(
                        "{} is a {ty} field, got {}; {hint}",
                        f.field.name(),
                        describe(v)
                    ),
                ));
            }
        }
        Ok(unseen)
    }

    /// Whether the event is this trigger's kind of change. condition_met is decided with the
    /// conditions (see `worker::process`), so here it only says "a change to a live contact".
    pub fn matches(&self, ev: &EventView) -> bool {
        match self {
            Self::ContactCreated => ev.kind == EventKind::Created,
            Self::ConditionMet => ev.kind != EventKind::Deleted,
            Self::TagAdded { tag } => {
                ev.kind != EventKind::Deleted && ev.tags_added().any(|t| t == tag)
            }
            Self::ContactUpdated { field, from, to } => {
                if ev.kind != EventKind::Updated {
                    return false;
                }
                let Some(f) = field else {
                    return !ev.changes.is_empty();
                };
                let Some(change) = ev.change(&f.change_path()) else {
                    return false;
                };
                from.as_ref()
                    .is_none_or(|m| m.matches(change.old.as_ref(), &f.field))
                    && to
                        .as_ref()
                        .is_none_or(|m| m.matches(change.new.as_ref(), &f.field))
            }
        }
    }

    /// The custom field a contact_updated trigger names, for the unseen-field report.
    pub fn custom_field(&self) -> Option<&str> {
        match self {
            Self::ContactUpdated {
                field:
                    Some(TriggerField {
                        field: Field::Custom(n),
                        ..
                    }),
                ..
            } => Some(n),
            _ => None,
        }
    }
}

fn parse_field(written: &str, path: &str) -> Result<TriggerField> {
    let field = Field::parse(written).map_err(|m| DefinitionError::new(path, m))?;
    match field {
        Field::BuiltIn(BuiltIn::CreatedAt) => Err(DefinitionError::new(
            path,
            "created_at never changes; use a contact_created trigger",
        )),
        Field::BuiltIn(BuiltIn::UpdatedAt) => Err(DefinitionError::new(
            path,
            "updated_at changes with every update; leave field out to fire on any update",
        )),
        field => Ok(TriggerField {
            field,
            written: written.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use meisa_proto::events::{ChangeKind, FieldChange};

    use super::*;
    use crate::domain::event::tests::{change, contact, event, int, string};

    fn trigger(v: Value) -> Trigger {
        Trigger::parse(&v, "trigger").unwrap()
    }

    fn plan_change(from: Option<&str>, to: Option<&str>) -> EventView {
        let after = contact(
            &to.map(|t| vec![("plan", string(t))]).unwrap_or_default(),
            &[],
        );
        event(
            ChangeKind::Updated,
            vec![change(
                "custom_fields.plan",
                from.map(string),
                to.map(string),
            )],
            after,
            0,
        )
    }

    #[test]
    fn contact_updated_matches_field_from_and_to() {
        let t = trigger(
            json!({"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"}),
        );
        assert!(t.matches(&plan_change(Some("free"), Some("pro"))));
        assert!(!t.matches(&plan_change(Some("trial"), Some("pro"))));
        assert!(!t.matches(&plan_change(Some("free"), Some("team"))));
        // `custom_fields.plan` and bare `plan` are the same field.
        let t =
            trigger(json!({"type": "contact_updated", "field": "custom_fields.plan", "to": "pro"}));
        assert!(t.matches(&plan_change(Some("free"), Some("pro"))));
        assert!(t.matches(&plan_change(None, Some("pro"))));
        // Only `from` given: any new value.
        let t = trigger(json!({"type": "contact_updated", "field": "plan", "from": "free"}));
        assert!(t.matches(&plan_change(Some("free"), Some("team"))));
        // null: the field did not exist before / was removed.
        let t = trigger(json!({"type": "contact_updated", "field": "plan", "from": null}));
        assert!(t.matches(&plan_change(None, Some("pro"))));
        assert!(!t.matches(&plan_change(Some("free"), Some("pro"))));
        let t = trigger(json!({"type": "contact_updated", "field": "plan", "to": null}));
        assert!(t.matches(&plan_change(Some("free"), None)));
        // No field: any update; a field the change set lacks: no.
        let t = trigger(json!({"type": "contact_updated"}));
        assert!(t.matches(&plan_change(Some("free"), Some("pro"))));
        let t = trigger(json!({"type": "contact_updated", "field": "first_name"}));
        assert!(!t.matches(&plan_change(Some("free"), Some("pro"))));
        // A creation is not an update.
        let t = trigger(json!({"type": "contact_updated", "field": "plan"}));
        let created = event(
            ChangeKind::Created,
            vec![change("custom_fields.plan", None, Some(string("pro")))],
            contact(&[("plan", string("pro"))], &[]),
            0,
        );
        assert!(!t.matches(&created));
        assert!(trigger(json!({"type": "contact_created"})).matches(&created));
    }

    #[test]
    fn numbers_and_dates_compare_by_value() {
        let t = trigger(json!({"type": "contact_updated", "field": "posts", "from": 4, "to": 5.0}));
        let ev = event(
            ChangeKind::Updated,
            vec![change("custom_fields.posts", Some(int(4)), Some(int(5)))],
            contact(&[("posts", int(5))], &[]),
            0,
        );
        assert!(t.matches(&ev));
        let t = trigger(json!({"type": "contact_updated", "field": "renews", "to": "2026-12-01"}));
        let ev = event(
            ChangeKind::Updated,
            vec![change(
                "custom_fields.renews",
                None,
                Some(string("2026-12-01T00:00:00Z")),
            )],
            contact(&[("renews", string("2026-12-01T00:00:00Z"))], &[]),
            0,
        );
        assert!(t.matches(&ev));
    }

    #[test]
    fn tag_added_reads_the_tags_change() {
        let t = trigger(json!({"type": "tag_added", "tag": "pro"}));
        let ev = |added: &[&str]| {
            event(
                ChangeKind::Updated,
                vec![FieldChange {
                    path: "tags".into(),
                    tags_added: added.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                }],
                contact(&[], added),
                0,
            )
        };
        assert!(t.matches(&ev(&["beta", "pro"])));
        assert!(!t.matches(&ev(&["beta"])));
        let removed = event(
            ChangeKind::Updated,
            vec![FieldChange {
                path: "tags".into(),
                tags_removed: vec!["pro".into()],
                ..Default::default()
            }],
            contact(&[], &[]),
            0,
        );
        assert!(!t.matches(&removed));
    }
}
