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

    /// The definition with every key spelled out (`conditions` null when there are none): what
    /// is stored and what the API answers.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("trigger".into(), self.trigger.to_json());
        m.insert(
            "conditions".into(),
            self.conditions
                .as_ref()
                .map_or(Value::Null, Condition::to_json),
        );
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
        assert_eq!(d.to_json()["conditions"], Value::Null);
        assert_eq!(d.to_json()["actions"], json!([]));
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

/// What the gateway used to judge before passing a definition on (shapes: unknown keys, JSON
/// types, enum names); the one parser now answers every such case, with the same paths.
#[cfg(test)]
mod shape_tests {
    use serde_json::{Value, json};

    use super::AutomationDef;
    use crate::domain::{SequenceDef, document, trigger::Trigger};

    const SEQ: &str = "seq_0123456789abcdef0123456789abcdef";

    fn upgrade() -> Value {
        json!({"name": "Upgrade to pro", "enabled": true,
            "trigger": {"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"},
            "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5}]},
            "actions": [{"type": "add_tag", "tag": "pro"}, {"type": "enroll", "sequence_id": SEQ}],
            "reentry": "once"})
    }

    #[test]
    fn the_design_automation_is_answered_as_sent() {
        let def = AutomationDef::parse(&upgrade()).unwrap();
        assert_eq!(def.name, "Upgrade to pro");
        assert!(def.enabled);
        assert_eq!(def.to_json(), upgrade());
    }

    #[test]
    fn null_from_is_not_absent_from() {
        let mut body = upgrade();
        body["trigger"] = json!({"type": "contact_updated", "field": "plan", "from": null});
        let def = AutomationDef::parse(&body).unwrap();
        assert!(matches!(def.trigger, Trigger::ContactUpdated { .. }));
        assert_eq!(
            def.to_json()["trigger"],
            json!({"type": "contact_updated", "field": "plan", "from": null})
        );
    }

    #[test]
    fn defaults_for_absent_keys() {
        let def =
            AutomationDef::parse(&json!({"name": "x", "trigger": {"type": "contact_created"}}))
                .unwrap();
        assert!(!def.enabled);
        assert!(def.conditions.is_none());
        assert!(def.actions.is_empty());
        let e = AutomationDef::parse(&json!({"name": "x", "conditions": null})).unwrap_err();
        assert_eq!(e.path, "trigger", "the trigger is required");
    }

    #[test]
    fn text_that_is_not_json_is_an_error_at_definition() {
        let e = document(r#"{"name": "x", "trigger": "#).unwrap_err();
        assert_eq!(e.path, "definition");
        assert!(e.message.contains("line 1"), "{}", e.message);
    }

    #[test]
    fn automation_shape_errors_name_the_path() {
        let cases = [
            (json!({"nmae": "x"}), "nmae"),
            (json!({"name": 3}), "name"),
            (json!({"trigger": {"type": "contact_created"}}), "name"),
            (json!({"name": "x", "enabled": "yes"}), "enabled"),
            (
                json!({"name": "x", "trigger": "contact_created"}),
                "trigger",
            ),
            (
                json!({"name": "x", "trigger": {"type": "signed_up"}}),
                "trigger.type",
            ),
            (json!({"name": "x", "trigger": {"type": 1}}), "trigger.type"),
            (
                json!({"name": "x", "trigger": {"type": "contact_updated", "feild": "plan"}}),
                "trigger.feild",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_updated", "field": ""}}),
                "trigger.field",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_updated", "field": "plan", "to": ["pro"]}}),
                "trigger.to",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_created"}, "actions": {"type": "add_tag"}}),
                "actions",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_created"}, "actions": [{"type": "add_tag", "tag": "a"}, "enroll"]}),
                "actions[1]",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_created"}, "actions": [{"type": "tag", "tag": "a"}]}),
                "actions[0].type",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_created"}, "actions": [{"type": "enroll", "sequence": SEQ}]}),
                "actions[0].sequence",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_created"}, "actions": [{"type": "enroll", "sequence_id": 7}]}),
                "actions[0].sequence_id",
            ),
            (
                json!({"name": "x", "trigger": {"type": "contact_created"}, "reentry": 30}),
                "reentry",
            ),
        ];
        for (body, path) in cases {
            let e = AutomationDef::parse(&body).unwrap_err();
            assert_eq!(e.path, path, "{body}: {}", e.message);
        }
        assert_eq!(AutomationDef::parse(&json!([])).unwrap_err().path, "");
    }

    #[test]
    fn sequence_shape_errors_name_the_path() {
        let ok = SequenceDef::parse(&json!({"name": "x",
            "steps": [{"type": "wait", "duration": "2d"}], "exit_when": null}))
        .unwrap();
        assert!(ok.exit_when.is_none());
        let cases = [
            (json!({"name": "x"}), "steps"),
            (json!({"name": "x", "steps": null}), "steps"),
            (json!({"name": "x", "steps": "email"}), "steps"),
            (
                json!({"name": "x", "steps": [{"type": "wait", "duration": "2d"}, {"type": "wait", "foo": 1}]}),
                "steps[1].foo",
            ),
            (
                json!({"name": "x", "steps": [{"type": "sms"}]}),
                "steps[0].type",
            ),
            (
                json!({"name": "x", "steps": [{"type": "wait", "duration": 2}]}),
                "steps[0].duration",
            ),
            (
                json!({"name": "x", "steps": [{"type": "wait", "duration": ""}]}),
                "steps[0].duration",
            ),
            (json!({"name": "x", "steps": [3]}), "steps[0]"),
            (json!({"steps": []}), "name"),
            (
                json!({"name": "x", "steps": [], "exitWhen": {}}),
                "exitWhen",
            ),
        ];
        for (body, path) in cases {
            let e = SequenceDef::parse(&body).unwrap_err();
            assert_eq!(e.path, path, "{body}: {}", e.message);
        }
    }
}
