//! An automation (DESIGN §3): trigger → conditions → actions, with a reentry rule.
//!
//! Stored as the DESIGN JSON itself ([`AutomationDef::to_json`]) and read back with the same
//! parser that reads requests, so what the API accepts, what is stored and what is returned are
//! one grammar.

use meisa_conditions::{Condition, FieldType, is_time_dependent};
use serde_json::{Map, Value, json};

use super::{
    action::Action,
    json::{DefinitionError, Obj, Result, index, name},
    reentry::Reentry,
    trigger::Trigger,
};

pub const MAX_ACTIONS: usize = 50;

#[derive(Clone, Debug, PartialEq)]
pub struct AutomationDef {
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    pub conditions: Option<Condition>,
    pub actions: Vec<Action>,
    pub reentry: Reentry,
}

/// An id another service or table must know, with the path that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Template { path: String, id: String },
    Sequence { path: String, id: String },
}

impl AutomationDef {
    /// Reads the body of `POST /api/v1/automations/`. Paths in errors start at the body's top
    /// level (`trigger.to`, `actions[0].sequence_id`).
    pub fn parse(v: &Value) -> Result<Self> {
        let obj = Obj::new(v, "", "an automation")?;
        obj.only(
            &[
                "name",
                "enabled",
                "trigger",
                "conditions",
                "actions",
                "reentry",
            ],
            "an automation",
        )?;
        let name = name(&obj)?;
        let enabled = obj.bool_opt("enabled")?.unwrap_or(false);
        let trigger = match obj.get("trigger") {
            Some(t) => Trigger::parse(t, "trigger")?,
            None => {
                return Err(DefinitionError::new(
                    "trigger",
                    format!(
                        "is required; e.g. {{\"type\": \"contact_created\"}} (types: {})",
                        super::trigger::TYPES
                    ),
                ));
            }
        };
        let conditions = obj
            .get("conditions")
            .map(|c| Condition::parse(c, "conditions"))
            .transpose()?;
        if trigger == Trigger::ConditionMet && conditions.is_none() {
            return Err(DefinitionError::new(
                "conditions",
                "a condition_met trigger needs conditions: it fires when they become true",
            ));
        }
        let mut actions = Vec::new();
        if let Some(list) = obj.array_opt("actions")? {
            if list.len() > MAX_ACTIONS {
                return Err(DefinitionError::new(
                    "actions",
                    format!("at most {MAX_ACTIONS} actions"),
                ));
            }
            for (i, a) in list.iter().enumerate() {
                actions.push(Action::parse(a, &index("actions", i))?);
            }
        }
        let reentry = Reentry::parse(obj.str_opt("reentry")?, "reentry")?;
        Ok(Self {
            name,
            enabled,
            trigger,
            conditions,
            actions,
            reentry,
        })
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("trigger".into(), self.trigger.to_json());
        if let Some(c) = &self.conditions {
            m.insert("conditions".into(), c.to_json());
        }
        m.insert(
            "actions".into(),
            Value::Array(self.actions.iter().map(Action::to_json).collect()),
        );
        m.insert("reentry".into(), json!(self.reentry.as_string()));
        Value::Object(m)
    }

    /// Checks the trigger's values and the conditions against the workspace's field types
    /// (DESIGN §3: a value or op that does not fit the field's known type is rejected). Returns the
    /// custom fields the workspace has not seen yet, once each, in the order they appear.
    pub fn validate(&self, field_type: &impl Fn(&str) -> Option<FieldType>) -> Result<Vec<String>> {
        let mut unseen = Vec::new();
        if let Some(f) = self.trigger.validate(field_type, "trigger")? {
            unseen.push(f);
        }
        if let Some(c) = &self.conditions {
            let v = meisa_conditions::validate(c, field_type, "conditions")?;
            for f in v.unseen_fields {
                if !unseen.contains(&f) {
                    unseen.push(f);
                }
            }
        }
        Ok(unseen)
    }

    /// The custom fields the definition names (for deciding whether the registry is needed).
    pub fn names_custom_fields(&self) -> bool {
        self.trigger.custom_field().is_some()
            || self
                .conditions
                .as_ref()
                .is_some_and(|c| c.fields().iter().any(|f| f.is_custom()))
    }

    pub fn references(&self) -> Vec<Reference> {
        self.actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Action::SendEmail { template_id } => Some(Reference::Template {
                    path: format!("actions[{i}].template_id"),
                    id: template_id.clone(),
                }),
                Action::Enroll { sequence_id } | Action::Exit { sequence_id } => {
                    Some(Reference::Sequence {
                        path: format!("actions[{i}].sequence_id"),
                        id: sequence_id.clone(),
                    })
                }
                Action::AddTag { .. } | Action::RemoveTag { .. } => None,
            })
            .collect()
    }

    /// A condition_met automation whose conditions move with time (`older_than`, `within`): the
    /// consumer keeps a projection per contact and the sweep fires it when time makes it true.
    pub fn is_time_dependent(&self) -> bool {
        self.trigger == Trigger::ConditionMet
            && self.conditions.as_ref().is_some_and(is_time_dependent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(name: &str) -> Option<FieldType> {
        match name {
            "plan" => Some(FieldType::String),
            "posts_generated" => Some(FieldType::Number),
            "onboarding_completed" => Some(FieldType::Boolean),
            "last_active" => Some(FieldType::Date),
            _ => None,
        }
    }

    fn err(v: Value) -> DefinitionError {
        AutomationDef::parse(&v)
            .and_then(|d| d.validate(&types).map(|_| d))
            .expect_err("should be rejected")
    }

    #[test]
    fn the_design_example_round_trips() {
        let v = json!({"name": "Upgrade to pro", "enabled": true,
            "trigger": {"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"},
            "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5}]},
            "actions": [{"type": "add_tag", "tag": "pro"},
                        {"type": "enroll", "sequence_id": "seq_0123456789abcdef0123456789abcdef"}],
            "reentry": "once"});
        let def = AutomationDef::parse(&v).unwrap();
        assert_eq!(def.to_json(), v);
        assert!(def.validate(&types).unwrap().is_empty());
        assert_eq!(
            def.references(),
            [Reference::Sequence {
                path: "actions[1].sequence_id".into(),
                id: "seq_0123456789abcdef0123456789abcdef".into()
            }]
        );
        // reentry defaults to once and is spelled out; enabled defaults to false.
        let d = AutomationDef::parse(&json!({"name": "x", "trigger": {"type": "contact_created"}}))
            .unwrap();
        assert_eq!(d.reentry, Reentry::Once);
        assert!(!d.enabled);
        assert_eq!(d.to_json()["reentry"], "once");
    }

    #[test]
    fn errors_name_the_design_path() {
        let base = || json!({"name": "n", "trigger": {"type": "contact_created"}, "actions": []});
        let with = |key: &str, v: Value| {
            let mut b = base();
            b[key] = v;
            b
        };
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                with(
                    "conditions",
                    json!({"all": [{"field": "posts_generated", "op": "gte", "value": "5"}]}),
                ),
                "conditions.all[0].value",
                "number",
            ),
            (
                with(
                    "conditions",
                    json!({"any": [{"field": "plan", "op": "eq", "value": "a"},
                                                {"field": "plan", "op": "gtee", "value": "b"}]}),
                ),
                "conditions.any[1].op",
                "did you mean gte",
            ),
            (
                with(
                    "actions",
                    json!([{"type": "add_tag", "tag": "x"},
                                    {"type": "enroll", "sequence_id": "onboarding"}]),
                ),
                "actions[1].sequence_id",
                "not a sequence id",
            ),
            (
                with("actions", json!([{"type": "send_email"}])),
                "actions[0].template_id",
                "required",
            ),
            (
                with(
                    "actions",
                    json!([{"type": "add_tag", "tag": "x", "template_id": "tpl_1"}]),
                ),
                "actions[0].template_id",
                "unknown key",
            ),
            (
                with("actions", json!([{"type": "tweet"}])),
                "actions[0].type",
                "unknown action type",
            ),
            (
                with(
                    "trigger",
                    json!({"type": "contact_updated", "field": "plan", "to": 5}),
                ),
                "trigger.to",
                "plan is a string field",
            ),
            (
                with("trigger", json!({"type": "contact_updated", "to": "pro"})),
                "trigger.to",
                "needs a field",
            ),
            (
                with(
                    "trigger",
                    json!({"type": "contact_updated", "field": "tags", "from": "a"}),
                ),
                "trigger.from",
                "tag_added",
            ),
            (
                with(
                    "trigger",
                    json!({"type": "contact_updated", "field": "updated_at"}),
                ),
                "trigger.field",
                "any update",
            ),
            (
                with("trigger", json!({"type": "tag_added"})),
                "trigger.tag",
                "required",
            ),
            (
                with("trigger", json!({"type": "signup"})),
                "trigger.type",
                "unknown trigger type",
            ),
            (
                with("trigger", json!({"type": "condition_met"})),
                "conditions",
                "needs conditions",
            ),
            (with("reentry", json!("after:2w")), "reentry", "unit"),
            (with("name", json!("")), "name", "empty"),
            (with("colour", json!("red")), "colour", "unknown key"),
        ];
        for (v, path, msg) in cases {
            let e = err(v.clone());
            assert_eq!(e.path, path, "{v}: {e}");
            assert!(e.message.contains(msg), "{v}: {e}");
        }
    }

    #[test]
    fn unseen_fields_are_accepted_and_reported_once() {
        let d = AutomationDef::parse(&json!({"name": "n",
            "trigger": {"type": "contact_updated", "field": "custom_fields.seats", "to": 3},
            "conditions": {"all": [{"field": "seats", "op": "gt", "value": 2},
                                   {"field": "company", "op": "exists"}]}}))
        .unwrap();
        assert_eq!(d.validate(&types).unwrap(), ["seats", "company"]);
        // The field is answered as written.
        assert_eq!(d.to_json()["trigger"]["field"], "custom_fields.seats");
    }

    #[test]
    fn time_dependence() {
        let d = AutomationDef::parse(&json!({"name": "n", "trigger": {"type": "condition_met"},
            "conditions": {"field": "last_active", "op": "older_than", "value": "14d"}}))
        .unwrap();
        assert!(d.is_time_dependent());
        let d = AutomationDef::parse(&json!({"name": "n", "trigger": {"type": "contact_updated"},
            "conditions": {"field": "last_active", "op": "older_than", "value": "14d"}}))
        .unwrap();
        assert!(!d.is_time_dependent(), "only condition_met is swept");
    }
}
