//! A sequence (DESIGN §3): email and wait steps, and the condition that ends an enrollment early.

use meisa_conditions::{Condition, FieldType};
use serde_json::{Map, Value, json};

use super::{
    automation::Reference,
    json::{DefinitionError, Obj, Result, index, name},
    step::Step,
};

pub const MAX_STEPS: usize = 100;

#[derive(Clone, Debug, PartialEq)]
pub struct SequenceDef {
    pub name: String,
    pub steps: Vec<Step>,
    pub exit_when: Option<Condition>,
}

impl SequenceDef {
    /// Reads the body of `POST /api/v1/sequences/`.
    pub fn parse(v: &Value) -> Result<Self> {
        let obj = Obj::new(v, "", "a sequence")?;
        obj.only(&["name", "steps", "exit_when"], "a sequence")?;
        let name = name(&obj)?;
        let list = obj.array_opt("steps")?.ok_or_else(|| {
            DefinitionError::new(
                "steps",
                "is required; e.g. [{\"type\": \"email\", \"template_id\": \"tpl_…\"}]",
            )
        })?;
        if list.is_empty() {
            return Err(DefinitionError::new("steps", "add at least one step"));
        }
        if list.len() > MAX_STEPS {
            return Err(DefinitionError::new(
                "steps",
                format!("at most {MAX_STEPS} steps"),
            ));
        }
        let steps = list
            .iter()
            .enumerate()
            .map(|(i, s)| Step::parse(s, &index("steps", i)))
            .collect::<Result<Vec<_>>>()?;
        let exit_when = obj
            .get("exit_when")
            .map(|c| Condition::parse(c, "exit_when"))
            .transpose()?;
        Ok(Self {
            name,
            steps,
            exit_when,
        })
    }

    /// Every key spelled out (`exit_when` null when there is none).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert(
            "steps".into(),
            Value::Array(self.steps.iter().map(Step::to_json).collect()),
        );
        m.insert(
            "exit_when".into(),
            self.exit_when
                .as_ref()
                .map_or(Value::Null, Condition::to_json),
        );
        Value::Object(m)
    }

    /// Checks `exit_when` against the workspace's field types; returns the unseen custom fields.
    pub fn validate(&self, field_type: &impl Fn(&str) -> Option<FieldType>) -> Result<Vec<String>> {
        match &self.exit_when {
            Some(c) => Ok(meisa_conditions::validate(c, field_type, "exit_when")?.unseen_fields),
            None => Ok(Vec::new()),
        }
    }

    pub fn names_custom_fields(&self) -> bool {
        self.exit_when
            .as_ref()
            .is_some_and(|c| c.fields().iter().any(|f| f.is_custom()))
    }

    pub fn references(&self) -> Vec<Reference> {
        self.steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Step::Email { template_id } => Some(Reference::Template {
                    path: format!("steps[{i}].template_id"),
                    id: template_id.clone(),
                }),
                Step::Wait(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPL: &str = "tpl_0123456789abcdef0123456789abcdef";

    #[test]
    fn the_design_example_round_trips() {
        let v = json!({"name": "Onboarding",
            "steps": [{"type": "email", "template_id": TPL},
                      {"type": "wait", "duration": "2d"},
                      {"type": "email", "template_id": TPL}],
            "exit_when": {"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]}});
        let s = SequenceDef::parse(&v).unwrap();
        assert_eq!(s.to_json(), v);
        assert_eq!(s.references().len(), 2);
        assert_eq!(s.validate(&|_| None).unwrap(), ["onboarding_completed"]);
    }

    #[test]
    fn errors_name_the_design_path() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"name": "s", "steps": [{"type": "email", "template_id": TPL},
                                           {"type": "wait", "duration": "2 days"}]}),
                "steps[1].duration",
                "unit",
            ),
            (
                json!({"name": "s", "steps": [{"type": "wait", "duration": "2w"}]}),
                "steps[0].duration",
                "s, m, h",
            ),
            (
                json!({"name": "s", "steps": [{"type": "email"}]}),
                "steps[0].template_id",
                "required",
            ),
            (
                json!({"name": "s", "steps": [{"type": "sms"}]}),
                "steps[0].type",
                "unknown step type",
            ),
            (json!({"name": "s", "steps": []}), "steps", "at least one"),
            (
                json!({"name": "s", "steps": [{"type": "wait", "duration": "1s"}],
                    "exit_when": {"all": [{"field": "plan", "op": "eq"}]}}),
                "exit_when.all[0].value",
                "missing value",
            ),
        ];
        for (v, path, msg) in cases {
            let e = SequenceDef::parse(&v).expect_err("rejected");
            assert_eq!(e.path, path, "{v}: {e}");
            assert!(e.message.contains(msg), "{v}: {e}");
        }
        let s = SequenceDef::parse(
            &json!({"name": "s", "steps": [{"type": "wait", "duration": "1s"}],
            "exit_when": {"all": [{"field": "plan", "op": "gt", "value": 1}]}}),
        )
        .unwrap();
        let e = s
            .validate(&|n| (n == "plan").then_some(FieldType::String))
            .unwrap_err();
        assert_eq!(e.path, "exit_when.all[0].value");
    }
}
