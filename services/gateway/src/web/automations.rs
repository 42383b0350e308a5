//! Automations: the list with a plain-language summary of each, and the editor: a trigger picker
//! for the four DESIGN §3 triggers, the condition builder, actions, re-entry, enabling and
//! disabling, and the numbers. Like the sequence editor, its buttons re-render the form unsaved;
//! saving sends DESIGN §3 JSON to automations, which judges it.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::Form;
use meisa_proto::{
    automations::{
        AutomationStats, CreateAutomationRequest, DeleteAutomationRequest,
        DisableAutomationRequest, EnableAutomationRequest, GetAutomationRequest,
        GetAutomationStatsRequest, ListAutomationsRequest, MatchContactsRequest,
        UpdateAutomationRequest,
    },
    common::PageRequest,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    builder::{self, Conditions, FieldTypes, op_words, typed_value},
    form::{self, Op, apply, definition, name_of, refusal},
    page::{Frame, InFrame, PageError, PageResult},
    sequences::UNITS,
    session::SignedIn,
};
use crate::{error::AppError, state::AppState};

/// The triggers, in the picker's words.
pub const TRIGGERS: &[(&str, &str)] = &[
    ("contact_created", "A contact is created"),
    ("contact_updated", "A contact changes"),
    ("condition_met", "The conditions below become true"),
    ("tag_added", "A tag is added"),
];

/// The actions, in the picker's words.
pub const ACTIONS: &[(&str, &str)] = &[
    ("enroll", "Enroll in a sequence"),
    ("exit", "Take out of a sequence"),
    ("send_email", "Send an email"),
    ("add_tag", "Add a tag"),
    ("remove_tag", "Remove a tag"),
];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trigger {
    pub kind: String,
    pub field: String,
    pub from: String,
    pub to: String,
    pub tag: String,
}

impl Trigger {
    fn to_json(&self, types: &FieldTypes) -> Value {
        let mut t = Map::new();
        t.insert("type".into(), json!(self.kind));
        match self.kind.as_str() {
            "contact_updated" => {
                let field_type = types.get(self.field.trim());
                if !self.field.trim().is_empty() {
                    t.insert("field".into(), json!(self.field.trim()));
                }
                for (key, text) in [("from", &self.from), ("to", &self.to)] {
                    if !text.trim().is_empty() {
                        t.insert(key.into(), typed_value("eq", text.trim(), field_type));
                    }
                }
            }
            "tag_added" => {
                t.insert("tag".into(), json!(self.tag.trim()));
            }
            _ => {}
        }
        Value::Object(t)
    }

    fn from_json(t: Option<&Value>) -> Self {
        let text = |k: &str| {
            t.and_then(|t| t.get(k))
                .map_or_else(String::new, |v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
        };
        Self {
            kind: Some(text("type"))
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "contact_created".into()),
            field: text("field"),
            from: text("from"),
            to: text("to"),
            tag: text("tag"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Action {
    pub kind: String,
    pub tag: String,
    pub sequence_id: String,
    pub template_id: String,
}

impl Action {
    fn to_json(&self) -> Value {
        match self.kind.as_str() {
            "add_tag" | "remove_tag" => json!({"type": self.kind, "tag": self.tag.trim()}),
            "send_email" => json!({"type": "send_email", "template_id": self.template_id}),
            _ => json!({"type": self.kind, "sequence_id": self.sequence_id}),
        }
    }

    fn from_json(a: &Value) -> Self {
        let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Self {
            kind: text("type"),
            tag: text("tag"),
            sequence_id: text("sequence_id"),
            template_id: text("template_id"),
        }
    }
}

/// `once`, `always`, or `after:<amount><unit>` as the editor shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reentry {
    pub kind: String,
    pub amount: String,
    pub unit: String,
}

impl Reentry {
    fn to_json(&self) -> Value {
        match self.kind.as_str() {
            "always" => json!("always"),
            "after" => json!(format!("after:{}{}", self.amount.trim(), self.unit)),
            _ => json!("once"),
        }
    }

    fn from_json(r: Option<&Value>) -> Self {
        let text = r.and_then(Value::as_str).unwrap_or("once");
        match text.strip_prefix("after:") {
            Some(duration) => {
                let split = duration
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(duration.len());
                let (amount, unit) = duration.split_at(split);
                Self {
                    kind: "after".into(),
                    amount: amount.into(),
                    unit: unit.into(),
                }
            }
            None => Self {
                kind: text.into(),
                amount: "30".into(),
                unit: "d".into(),
            },
        }
    }
}

/// Everything the editor shows of an automation.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    pub conditions: Conditions,
    pub actions: Vec<Action>,
    pub reentry: Reentry,
}

impl Draft {
    fn from_json(def: &Value) -> Self {
        Self {
            name: name_of(def),
            enabled: def.get("enabled").and_then(Value::as_bool).unwrap_or(false),
            trigger: Trigger::from_json(def.get("trigger")),
            conditions: Conditions::from_json(def.get("conditions")),
            actions: def
                .get("actions")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Action::from_json).collect())
                .unwrap_or_default(),
            reentry: Reentry::from_json(def.get("reentry")),
        }
    }

    fn to_json(&self, types: &FieldTypes) -> Value {
        json!({
            "name": self.name,
            "enabled": self.enabled,
            "trigger": self.trigger.to_json(types),
            "conditions": self.conditions.to_json(types),
            "actions": self.actions.iter().map(Action::to_json).collect::<Vec<_>>(),
            "reentry": self.reentry.to_json(),
        })
    }
}

/// "When plan changes from free to pro, and posts_generated is at least 5: tag pro, then enroll
/// in Pro onboarding". `names` gives sequences' and templates' names by id.
pub fn summary(draft: &Draft, names: &BTreeMap<String, String>) -> String {
    let t = &draft.trigger;
    let quoted = |s: &str| s.to_string();
    let when = match t.kind.as_str() {
        "contact_created" => "When a contact is created".to_string(),
        "tag_added" => format!("When the tag {} is added", quoted(&t.tag)),
        "condition_met" => "When".to_string(),
        _ if t.field.trim().is_empty() => "When a contact changes".to_string(),
        _ => {
            let mut s = format!("When {} changes", t.field.trim());
            if !t.from.trim().is_empty() {
                s.push_str(&format!(" from {}", t.from.trim()));
            }
            if !t.to.trim().is_empty() {
                s.push_str(&format!(" to {}", t.to.trim()));
            }
            s
        }
    };
    let join = if draft.conditions.join == "any" {
        " or "
    } else {
        " and "
    };
    let conditions: Vec<String> = draft
        .conditions
        .rows
        .iter()
        .map(|r| match r.op.as_str() {
            "has_tag" => format!("the contact has the tag {}", r.value),
            "lacks_tag" => format!("the contact does not have the tag {}", r.value),
            "exists" | "not_exists" => format!("{} {}", r.field, op_words(&r.op)),
            _ => format!("{} {} {}", r.field, op_words(&r.op), r.value),
        })
        .collect();
    let mut s = when;
    if t.kind == "condition_met" {
        if conditions.is_empty() {
            s.push_str(" the conditions become true");
        } else {
            s.push_str(&format!(" {} becomes true", conditions.join(join)));
        }
    } else if draft.conditions.nested.is_some() {
        s.push_str(", and the conditions hold");
    } else if !conditions.is_empty() {
        s.push_str(&format!(", and {}", conditions.join(join)));
    }
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let actions: Vec<String> = draft
        .actions
        .iter()
        .map(|a| match a.kind.as_str() {
            "add_tag" => format!("tag {}", a.tag),
            "remove_tag" => format!("remove the tag {}", a.tag),
            "enroll" => format!("enroll in {}", name(&a.sequence_id)),
            "exit" => format!("take out of {}", name(&a.sequence_id)),
            "send_email" => format!("send {}", name(&a.template_id)),
            other => other.to_string(),
        })
        .collect();
    if actions.is_empty() {
        s.push_str(": nothing yet");
    } else {
        s.push_str(&format!(": {}", actions.join(", then ")));
    }
    s
}

#[derive(Deserialize, Default)]
pub struct AutomationForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    trigger_type: String,
    #[serde(default)]
    trigger_field: String,
    #[serde(default)]
    trigger_from: String,
    #[serde(default)]
    trigger_to: String,
    #[serde(default)]
    trigger_tag: String,
    #[serde(default)]
    c_join: String,
    #[serde(default)]
    c_field: Vec<String>,
    #[serde(default)]
    c_op: Vec<String>,
    #[serde(default)]
    c_value: Vec<String>,
    #[serde(default)]
    action_type: Vec<String>,
    #[serde(default)]
    action_tag: Vec<String>,
    #[serde(default)]
    action_sequence: Vec<String>,
    #[serde(default)]
    action_template: Vec<String>,
    #[serde(default)]
    reentry: String,
    #[serde(default)]
    reentry_amount: String,
    #[serde(default)]
    reentry_unit: String,
    #[serde(default)]
    op: String,
}

impl AutomationForm {
    fn draft(&self) -> Draft {
        let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        Draft {
            name: self.name.clone(),
            enabled: self.enabled.is_some(),
            trigger: Trigger {
                kind: self.trigger_type.clone(),
                field: self.trigger_field.clone(),
                from: self.trigger_from.clone(),
                to: self.trigger_to.clone(),
                tag: self.trigger_tag.clone(),
            },
            conditions: Conditions::from_form(
                &self.c_join,
                &self.c_field,
                &self.c_op,
                &self.c_value,
            ),
            actions: self
                .action_type
                .iter()
                .enumerate()
                .map(|(i, kind)| Action {
                    kind: kind.clone(),
                    tag: at(&self.action_tag, i),
                    sequence_id: at(&self.action_sequence, i),
                    template_id: at(&self.action_template, i),
                })
                .collect(),
            reentry: Reentry {
                kind: self.reentry.clone(),
                amount: self.reentry_amount.clone(),
                unit: self.reentry_unit.clone(),
            },
        }
    }
}

pub struct AutomationRow {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub summary: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "automations/list.html")]
pub struct AutomationsPage {
    frame: Frame,
    rows: Vec<AutomationRow>,
}

/// Names of sequences and templates by id, for summaries.
async fn names(
    state: &AppState,
    ws: &str,
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), AppError> {
    let (sequences, templates) = tokio::join!(
        form::sequence_choices(state, ws),
        form::template_choices(state, ws)
    );
    Ok((sequences?, templates?))
}

fn name_map(
    sequences: &[(String, String)],
    templates: &[(String, String)],
) -> BTreeMap<String, String> {
    sequences.iter().chain(templates).cloned().collect()
}

pub async fn list(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let frame = Frame::new(&user, "automations");
    let ws = user.workspace().to_string();
    let mut automations = state.automations();
    let (resp, choices) = tokio::join!(
        automations.list_automations(ListAutomationsRequest {
            workspace_id: ws.clone(),
            page: Some(PageRequest {
                limit: 500,
                cursor: String::new(),
            }),
        }),
        names(&state, &ws)
    );
    let resp = resp
        .map_err(AppError::automations)
        .in_frame(&frame)?
        .into_inner();
    let (sequences, templates) = choices.in_frame(&frame)?;
    let names = name_map(&sequences, &templates);
    let rows = resp
        .automations
        .into_iter()
        .map(|a| {
            let draft = Draft::from_json(&definition(&a.definition));
            AutomationRow {
                id: a.id,
                summary: summary(&draft, &names),
                name: draft.name,
                enabled: draft.enabled,
            }
        })
        .collect();
    Ok(AutomationsPage { frame, rows }.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "automations/edit.html")]
pub struct EditorPage {
    frame: Frame,
    id: Option<String>,
    draft: Draft,
    conditions: Conditions,
    fields: FieldTypes,
    sequences: Vec<(String, String)>,
    templates: Vec<(String, String)>,
    summary: String,
    stats: Option<AutomationStats>,
    unseen: Vec<String>,
    error: Option<(String, String)>,
    saved: bool,
    audience: Option<Audience>,
}

/// Who the conditions hold for right now, as automations counted them.
pub struct Audience {
    pub matched: u64,
    pub scanned: u64,
    /// Whether every contact was scanned (a large workspace is counted up to a bound).
    pub complete: bool,
    /// (id, email) of the first few.
    pub sample: Vec<(String, String)>,
}

/// How many contacts a preview shows by name.
const SAMPLE: u32 = 5;

async fn audience(state: &AppState, ws: &str, tree: Option<Value>) -> Result<Audience, AppError> {
    // No conditions: everyone matches; the same scan counts them.
    let tree = tree.unwrap_or_else(|| json!({"all": []}));
    let resp = state
        .automations()
        .match_contacts(MatchContactsRequest {
            workspace_id: ws.into(),
            conditions: tree.to_string(),
            page: Some(PageRequest {
                limit: SAMPLE,
                cursor: String::new(),
            }),
            count_all: true,
            max_scan: 0,
        })
        .await
        .map_err(AppError::automations)?
        .into_inner();
    Ok(Audience {
        matched: resp.matched,
        scanned: resp.scanned,
        complete: resp.next_cursor.is_empty(),
        sample: resp.contacts.into_iter().map(|c| (c.id, c.email)).collect(),
    })
}

impl EditorPage {
    fn error_at(&self, prefix: &str) -> Option<&str> {
        let (path, message) = self.error.as_ref()?;
        (path == prefix
            || path.starts_with(&format!("{prefix}."))
            || path.starts_with(&format!("{prefix}[")))
        .then_some(message.as_str())
    }

    fn action_error(&self, i: usize) -> Option<&str> {
        self.error_at(&format!("actions[{i}]"))
    }

    fn cond_error(&self, i: usize) -> Option<&str> {
        let (path, message) = self.error.as_ref()?;
        (self.conditions.row_of("conditions", path) == Some(i)).then_some(message.as_str())
    }

    fn general_error(&self) -> Option<&str> {
        let (path, message) = self.error.as_ref()?;
        let shown = ["name", "trigger", "reentry"]
            .iter()
            .any(|p| self.error_at(p).is_some())
            || (0..self.draft.actions.len()).any(|i| self.action_error(i).is_some())
            || (0..self.conditions.rows.len()).any(|i| self.cond_error(i).is_some());
        (!shown || path.is_empty()).then_some(message.as_str())
    }

    fn ops(&self) -> &'static [(&'static str, &'static str)] {
        builder::OPS
    }

    fn units(&self) -> &'static [(&'static str, &'static str)] {
        UNITS
    }

    fn triggers(&self) -> &'static [(&'static str, &'static str)] {
        TRIGGERS
    }

    fn actions(&self) -> &'static [(&'static str, &'static str)] {
        ACTIONS
    }

    fn field_types_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_default()
    }
}

async fn editor(
    state: &AppState,
    user: &SignedIn,
    id: Option<String>,
    draft: Draft,
) -> PageResult<EditorPage> {
    let frame = Frame::new(user, "automations");
    let (fields, choices) = tokio::join!(
        builder::workspace_fields(state, user.workspace()),
        names(state, user.workspace())
    );
    let (sequences, templates) = choices.in_frame(&frame)?;
    let summary = summary(&draft, &name_map(&sequences, &templates));
    Ok(EditorPage {
        fields: fields.in_frame(&frame)?,
        frame,
        id,
        conditions: draft.conditions.clone(),
        draft,
        sequences,
        templates,
        summary,
        stats: None,
        unseen: Vec::new(),
        error: None,
        saved: false,
        audience: None,
    })
}

pub async fn new(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let draft = Draft {
        trigger: Trigger::from_json(None),
        conditions: Conditions::from_json(None),
        actions: vec![Action {
            kind: "enroll".into(),
            ..Action::default()
        }],
        reentry: Reentry::from_json(None),
        ..Draft::default()
    };
    Ok(editor(&state, &user, None, draft).await?.into_response())
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    saved: Option<String>,
}

fn valid_id(id: &str, frame: &Frame) -> PageResult<()> {
    if meisa_model::id::parse("aut", id).is_none() {
        return Err(PageError::not_found("automation").in_frame(frame.clone()));
    }
    Ok(())
}

fn not_found_or(status: tonic::Status) -> PageError {
    match status.code() {
        tonic::Code::NotFound => PageError::not_found("automation"),
        _ => AppError::automations(status).into(),
    }
}

pub async fn edit(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "automations");
    valid_id(&id, &frame)?;
    let ws = user.workspace().to_string();
    let mut automations = state.automations();
    let mut automations2 = state.automations();
    let (automation, stats) = tokio::join!(
        automations.get_automation(GetAutomationRequest {
            workspace_id: ws.clone(),
            id: id.clone(),
        }),
        automations2.get_automation_stats(GetAutomationStatsRequest {
            workspace_id: ws.clone(),
            id: id.clone(),
        })
    );
    let automation = automation
        .map_err(not_found_or)
        .in_frame(&frame)?
        .into_inner()
        .automation
        .ok_or_else(|| crate::error::BadAnswer("GetAutomation answered no automation".into()))
        .in_frame(&frame)?;
    let draft = Draft::from_json(&definition(&automation.definition));
    let mut page = editor(&state, &user, Some(id), draft).await?;
    page.stats = stats.ok().and_then(|r| r.into_inner().stats);
    page.unseen = automation.unseen_fields;
    page.saved = q.saved.is_some();
    Ok(page.into_response())
}

pub async fn create(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<AutomationForm>,
) -> PageResult<Response> {
    submit(state, user, None, form).await
}

pub async fn update(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<AutomationForm>,
) -> PageResult<Response> {
    valid_id(&id, &Frame::new(&user, "automations"))?;
    submit(state, user, Some(id), form).await
}

async fn submit(
    state: AppState,
    user: SignedIn,
    id: Option<String>,
    form: AutomationForm,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "automations");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let op = Op::parse(&form.op);
    let mut draft = form.draft();
    match op {
        Op::Add("action") => draft.actions.push(Action {
            kind: "add_tag".into(),
            ..Action::default()
        }),
        Op::Add("condition") => draft.conditions.rows.push(builder::Row {
            op: "eq".into(),
            ..builder::Row::default()
        }),
        _ => {}
    }
    apply(&mut draft.actions, op, "action");
    apply(&mut draft.conditions.rows, op, "condition");
    let mut page = editor(&state, &user, id.clone(), draft).await?;
    if op == Op::Preview {
        let tree = page.conditions.to_json(&page.fields);
        match audience(&state, user.workspace(), tree).await {
            Ok(found) => page.audience = Some(found),
            Err(e) => {
                page.error = Some(refusal(e).in_frame(&frame)?);
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
        }
        return Ok(page.into_response());
    }
    if op != Op::Save {
        return Ok(page.into_response());
    }
    let definition = page.draft.to_json(&page.fields).to_string();
    let ws = user.workspace().to_string();
    let answer = match &id {
        None => state
            .automations()
            .create_automation(CreateAutomationRequest {
                workspace_id: ws,
                definition,
            })
            .await
            .map(|r| r.into_inner().automation),
        Some(id) => state
            .automations()
            .update_automation(UpdateAutomationRequest {
                workspace_id: ws,
                id: id.clone(),
                definition,
            })
            .await
            .map(|r| r.into_inner().automation),
    };
    match form::saved(
        "automation",
        id.is_some(),
        answer.map(|a| a.map(|a| a.id)),
        AppError::automations,
    )
    .in_frame(&frame)?
    {
        Ok(saved) => Ok(Redirect::to(&format!("/automations/{saved}?saved=1")).into_response()),
        Err(refused) => {
            page.error = Some(refused);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /automations/{id}/enable`, `/disable` and `/delete`.
pub async fn switch(
    State(state): State<AppState>,
    user: SignedIn,
    Path((id, what)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "automations");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    valid_id(&id, &frame)?;
    let ws = user.workspace().to_string();
    let mut client = state.automations();
    let done = match what.as_str() {
        "enable" => client
            .enable_automation(EnableAutomationRequest {
                workspace_id: ws,
                id: id.clone(),
            })
            .await
            .map(|_| ()),
        "disable" => client
            .disable_automation(DisableAutomationRequest {
                workspace_id: ws,
                id: id.clone(),
            })
            .await
            .map(|_| ()),
        "delete" => {
            client
                .delete_automation(DeleteAutomationRequest {
                    workspace_id: ws,
                    id: id.clone(),
                })
                .await
                .map_err(not_found_or)
                .in_frame(&frame)?;
            return Ok(Redirect::to("/automations").into_response());
        }
        _ => return Err(PageError::not_found("page").in_frame(frame)),
    };
    done.map_err(not_found_or).in_frame(&frame)?;
    Ok(Redirect::to(&format!("/automations/{id}")).into_response())
}
