//! Sequence steps (DESIGN §3): send an email, or wait.

use meisa_conditions::Duration;
use serde_json::{Value, json};

use super::json::{DefinitionError, Obj, Result, prefixed_id};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Email { template_id: String },
    Wait(Duration),
}

impl Step {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Wait(_) => "wait",
        }
    }

    pub fn parse(v: &Value, path: &str) -> Result<Self> {
        let obj = Obj::new(v, path, "a step")?;
        let ty = obj.str_req("type", "use email or wait")?;
        match ty {
            "email" => {
                obj.only(&["type", "template_id"], "an email step")?;
                let id = obj.str_req("template_id", "name the template (tpl_…)")?;
                Ok(Self::Email {
                    template_id: prefixed_id(id, "tpl_", &obj.at("template_id"), "template")?,
                })
            }
            "wait" => {
                obj.only(&["type", "duration"], "a wait step")?;
                let d = obj.str_req(
                    "duration",
                    "write an integer and a unit: s, m, h or d (30s, 15m, 2h, 3d)",
                )?;
                Duration::parse(d)
                    .map(Self::Wait)
                    .map_err(|e| DefinitionError::new(obj.at("duration"), e.to_string()))
            }
            other => Err(DefinitionError::new(
                obj.at("type"),
                format!("unknown step type {other:?}; use email or wait"),
            )),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Self::Email { template_id } => json!({"type": "email", "template_id": template_id}),
            Self::Wait(d) => json!({"type": "wait", "duration": d.to_string()}),
        }
    }
}
