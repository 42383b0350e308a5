//! Actions (DESIGN §3): what an automation does when it fires.

use serde_json::{Value, json};

use super::json::{DefinitionError, Obj, Result, prefixed_id};

/// The contacts service's bound on a tag (so an action can never fail on it at run time).
pub const MAX_TAG_CHARS: usize = 64;
pub const TYPES: &str = "add_tag, remove_tag, enroll, exit, send_email";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    AddTag { tag: String },
    RemoveTag { tag: String },
    Enroll { sequence_id: String },
    Exit { sequence_id: String },
    SendEmail { template_id: String },
}

impl Action {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::AddTag { .. } => "add_tag",
            Self::RemoveTag { .. } => "remove_tag",
            Self::Enroll { .. } => "enroll",
            Self::Exit { .. } => "exit",
            Self::SendEmail { .. } => "send_email",
        }
    }

    /// Whether it only touches this service's tables, so it happens in the transaction that
    /// records the firing instead of as a job.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Enroll { .. } | Self::Exit { .. })
    }

    pub fn parse(v: &Value, path: &str) -> Result<Self> {
        let obj = Obj::new(v, path, "an action")?;
        let ty = obj.str_req("type", &format!("use one of {TYPES}"))?;
        let context = format!("a {ty} action");
        match ty {
            "add_tag" | "remove_tag" => {
                obj.only(&["type", "tag"], &context)?;
                let tag = tag(&obj, "tag")?;
                Ok(if ty == "add_tag" {
                    Self::AddTag { tag }
                } else {
                    Self::RemoveTag { tag }
                })
            }
            "enroll" | "exit" => {
                obj.only(&["type", "sequence_id"], &context)?;
                let id = obj.str_req("sequence_id", "name the sequence (seq_…)")?;
                let sequence_id = prefixed_id(id, "seq_", &obj.at("sequence_id"), "sequence")?;
                Ok(if ty == "enroll" {
                    Self::Enroll { sequence_id }
                } else {
                    Self::Exit { sequence_id }
                })
            }
            "send_email" => {
                obj.only(&["type", "template_id"], &context)?;
                let id = obj.str_req("template_id", "name the template (tpl_…)")?;
                let template_id = prefixed_id(id, "tpl_", &obj.at("template_id"), "template")?;
                Ok(Self::SendEmail { template_id })
            }
            other => Err(DefinitionError::new(
                obj.at("type"),
                format!("unknown action type {other:?}; use one of {TYPES}"),
            )),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Self::AddTag { tag } | Self::RemoveTag { tag } => {
                json!({"type": self.type_name(), "tag": tag})
            }
            Self::Enroll { sequence_id } | Self::Exit { sequence_id } => {
                json!({"type": self.type_name(), "sequence_id": sequence_id})
            }
            Self::SendEmail { template_id } => {
                json!({"type": self.type_name(), "template_id": template_id})
            }
        }
    }
}

/// A tag as the contacts service accepts it: trimmed, non-empty, at most 64 characters, no
/// control characters.
pub fn tag(obj: &Obj<'_>, key: &str) -> Result<String> {
    let t = obj.str_req(key, "name the tag")?.trim();
    if t.chars().count() > MAX_TAG_CHARS {
        return Err(DefinitionError::new(
            obj.at(key),
            format!("tags are at most {MAX_TAG_CHARS} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(DefinitionError::new(
            obj.at(key),
            "tags cannot contain control characters",
        ));
    }
    Ok(t.to_string())
}
