//! What the editors' forms share: the button that was pressed ([`Op`]: save, or a change to the
//! form itself such as "add a step" that re-renders it unsaved), and a service's refusal as the
//! field it names and why, to show next to that field.

use meisa_proto::{
    automations::ListSequencesRequest, common::PageRequest, mailer::ListTemplatesRequest,
};
use meisa_runtime::errors::ErrorCode;
use serde_json::Value;

use super::page::PageError;
use crate::{error::AppError, state::AppState};

/// The button a form was submitted with (`name="op"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Save,
    /// Save although the editor was told what the change does to contacts in flight.
    SaveAnyway,
    /// Add a row of this kind ("email", "wait", "condition", "action").
    Add(&'a str),
    Remove(&'a str, usize),
    Up(usize),
    Down(usize),
    /// Show who the conditions hold for now, saving nothing.
    Preview,
}

impl<'a> Op<'a> {
    /// `save`, `add:email`, `remove:condition:2`, `up:1`, `down:0`; anything else is a save (a
    /// form sent by pressing Enter carries no button).
    pub fn parse(raw: &'a str) -> Self {
        let mut parts = raw.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("add"), Some(kind), None) => Self::Add(kind),
            (Some("remove"), Some(kind), Some(i)) => {
                i.parse().map_or(Self::Save, |i| Self::Remove(kind, i))
            }
            (Some("up"), Some(i), None) => i.parse().map_or(Self::Save, Self::Up),
            (Some("down"), Some(i), None) => i.parse().map_or(Self::Save, Self::Down),
            (Some("preview"), None, None) => Self::Preview,
            (Some("save"), Some("anyway"), None) => Self::SaveAnyway,
            _ => Self::Save,
        }
    }
}

/// Moves, removes or leaves the rows as `op` says (for ops on `kind`'s rows).
pub fn apply<T>(rows: &mut Vec<T>, op: Op<'_>, kind: &str) {
    match op {
        Op::Remove(k, i) if k == kind && i < rows.len() => {
            rows.remove(i);
        }
        Op::Up(i) if kind == "step" && i > 0 && i < rows.len() => rows.swap(i - 1, i),
        Op::Down(i) if kind == "step" && i + 1 < rows.len() => rows.swap(i, i + 1),
        _ => {}
    }
}

/// A service's `invalid_field` refusal as (field path, message without the path), or the error
/// page for anything else (an outage, a bug).
pub fn refusal(e: AppError) -> Result<(String, String), PageError> {
    let api = e.to_api();
    match (api.code, api.field) {
        (ErrorCode::InvalidField, Some(field)) => {
            let message = api
                .message
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(&api.message)
                .to_string();
            Ok((field, message))
        }
        // A refusal about the request as a whole (a conflict) reads at the top of the form.
        (ErrorCode::Conflict | ErrorCode::InvalidField, None) => Ok((String::new(), api.message)),
        _ => Err(e.into()),
    }
}

/// What a create or update of an editor came to: the saved object's id, or the refusal to show
/// at its field. `noun` names the object in a 404 ("sequence"); an update of an id the service
/// does not have is that 404, and an outage or a bug is the error page.
pub fn saved(
    noun: &str,
    updating: bool,
    answer: Result<Option<String>, tonic::Status>,
    wrap: fn(tonic::Status) -> AppError,
) -> Result<Result<String, (String, String)>, PageError> {
    match answer {
        Ok(Some(id)) => Ok(Ok(id)),
        Ok(None) => {
            Err(AppError::from(crate::error::BadAnswer(format!("no {noun} in the answer"))).into())
        }
        Err(status) if status.code() == tonic::Code::NotFound && updating => {
            Err(PageError::not_found(noun))
        }
        Err(status) => refusal(wrap(status)).map(Err),
    }
}

/// A saved definition's DESIGN §3 JSON. Automations wrote the text from a definition it had
/// parsed; were it unreadable, it shows as empty rather than failing the page.
pub fn definition(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn name_of(def: &Value) -> String {
    def.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The largest list a choice offers; a workspace with more templates or sequences than this
/// finds the rest by name in their lists.
const CHOICES: u32 = 500;

/// (id, name) of the workspace's templates, newest first: the choices of an email step.
pub async fn template_choices(
    state: &AppState,
    workspace_id: &str,
) -> Result<Vec<(String, String)>, AppError> {
    let resp = state
        .mailer()
        .list_templates(ListTemplatesRequest {
            workspace_id: workspace_id.into(),
            page: Some(PageRequest {
                limit: CHOICES,
                cursor: String::new(),
            }),
        })
        .await
        .map_err(AppError::mailer)?
        .into_inner();
    Ok(resp.templates.into_iter().map(|t| (t.id, t.name)).collect())
}

/// (id, name) of the workspace's sequences: the choices of an enroll or exit action.
pub async fn sequence_choices(
    state: &AppState,
    workspace_id: &str,
) -> Result<Vec<(String, String)>, AppError> {
    let resp = state
        .automations()
        .list_sequences(ListSequencesRequest {
            workspace_id: workspace_id.into(),
            page: Some(PageRequest {
                limit: CHOICES,
                cursor: String::new(),
            }),
        })
        .await
        .map_err(AppError::automations)?
        .into_inner();
    Ok(resp
        .sequences
        .into_iter()
        .map(|s| {
            let name = name_of(&definition(&s.definition));
            (s.id, name)
        })
        .collect())
}

/// (id, name) of the workspace's automations.
pub async fn automation_choices(
    state: &AppState,
    workspace_id: &str,
) -> Result<Vec<(String, String)>, AppError> {
    let resp = state
        .automations()
        .list_automations(meisa_proto::automations::ListAutomationsRequest {
            workspace_id: workspace_id.into(),
            page: Some(PageRequest {
                limit: CHOICES,
                cursor: String::new(),
            }),
        })
        .await
        .map_err(AppError::automations)?
        .into_inner();
    Ok(resp
        .automations
        .into_iter()
        .map(|a| {
            let name = name_of(&definition(&a.definition));
            (a.id, name)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_parse_and_anything_else_saves() {
        assert_eq!(Op::parse("add:email"), Op::Add("email"));
        assert_eq!(Op::parse("remove:condition:2"), Op::Remove("condition", 2));
        assert_eq!(Op::parse("up:1"), Op::Up(1));
        assert_eq!(Op::parse("down:0"), Op::Down(0));
        assert_eq!(Op::parse("preview"), Op::Preview);
        for raw in ["", "save", "up:x", "remove:step", "bogus:1:2:3"] {
            assert_eq!(Op::parse(raw), Op::Save, "{raw}");
        }
    }

    #[test]
    fn rows_move_and_go_within_bounds() {
        let mut rows = vec![1, 2, 3];
        apply(&mut rows, Op::Up(0), "step");
        apply(&mut rows, Op::Down(2), "step");
        assert_eq!(rows, [1, 2, 3], "nothing past the ends");
        apply(&mut rows, Op::Up(2), "step");
        assert_eq!(rows, [1, 3, 2]);
        apply(&mut rows, Op::Remove("step", 7), "step");
        apply(&mut rows, Op::Remove("condition", 0), "step");
        assert_eq!(rows, [1, 3, 2], "another kind's row, or none");
        apply(&mut rows, Op::Remove("step", 0), "step");
        assert_eq!(rows, [3, 2]);
    }
}
