//! Sequences: the list, and the editor: email and wait steps added, removed and reordered with
//! buttons (each press re-renders the form unsaved, so it works without JavaScript and from the
//! keyboard), exit conditions with the condition builder, and the sequence's numbers. The
//! definition goes to automations as DESIGN §3 JSON; what it refuses is shown at the step or the
//! condition row its path names.

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
        CreateSequenceRequest, DeleteSequenceRequest, GetSequenceRequest, GetSequenceStatsRequest,
        ListSequencesRequest, Sequence, SequenceStats, UpdateSequenceRequest,
    },
    common::PageRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    builder::{self, Conditions, FieldTypes},
    contacts::when,
    form::{self, Op, apply, definition, name_of},
    funnel::{self, FunnelRow},
    page::{Frame, InFrame, PageError, PageResult},
    session::SignedIn,
};
use crate::{error::AppError, state::AppState};

/// Wait units as the editor offers them: (DESIGN §3 suffix, words). Seconds too: DESIGN allows
/// `30s`, and a wait of seconds is how a sequence is tried out (or tested) without waiting long.
pub const UNITS: &[(&str, &str)] = &[
    ("s", "seconds"),
    ("m", "minutes"),
    ("h", "hours"),
    ("d", "days"),
];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// "email" or "wait".
    pub kind: String,
    pub template_id: String,
    /// The wait's amount and unit ("2", "d").
    pub amount: String,
    pub unit: String,
}

impl Step {
    fn email() -> Self {
        Self {
            kind: "email".into(),
            ..Self::default()
        }
    }

    fn wait() -> Self {
        Self {
            kind: "wait".into(),
            amount: "1".into(),
            unit: "d".into(),
            ..Self::default()
        }
    }

    fn to_json(&self) -> Value {
        match self.kind.as_str() {
            "wait" => {
                json!({"type": "wait", "duration": format!("{}{}", self.amount.trim(), self.unit)})
            }
            _ => json!({"type": "email", "template_id": self.template_id}),
        }
    }

    fn from_json(step: &Value) -> Self {
        let text = |k: &str| {
            step.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match text("type").as_str() {
            "wait" => {
                let duration = text("duration");
                let split = duration
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(duration.len());
                let (amount, unit) = duration.split_at(split);
                Self {
                    kind: "wait".into(),
                    amount: amount.into(),
                    unit: unit.into(),
                    ..Self::default()
                }
            }
            _ => Self {
                kind: "email".into(),
                template_id: text("template_id"),
                ..Self::default()
            },
        }
    }
}

/// The editor's form: the steps as parallel lists (one entry per step), the exit builder's rows,
/// and the button pressed.
#[derive(Deserialize, Default)]
pub struct SequenceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    step_kind: Vec<String>,
    #[serde(default)]
    step_template: Vec<String>,
    #[serde(default)]
    step_amount: Vec<String>,
    #[serde(default)]
    step_unit: Vec<String>,
    #[serde(default)]
    c_join: String,
    #[serde(default)]
    c_field: Vec<String>,
    #[serde(default)]
    c_op: Vec<String>,
    #[serde(default)]
    c_value: Vec<String>,
    #[serde(default)]
    op: String,
}

impl SequenceForm {
    fn steps(&self) -> Vec<Step> {
        let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        self.step_kind
            .iter()
            .enumerate()
            .map(|(i, kind)| Step {
                kind: kind.clone(),
                template_id: at(&self.step_template, i),
                amount: at(&self.step_amount, i),
                unit: at(&self.step_unit, i),
            })
            .collect()
    }
}

pub struct SequenceRow {
    pub id: String,
    pub name: String,
    pub steps: usize,
    pub updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "sequences/list.html")]
pub struct SequencesPage {
    frame: Frame,
    rows: Vec<SequenceRow>,
}

pub async fn list(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let frame = Frame::new(&user, "sequences");
    let resp = state
        .automations()
        .list_sequences(ListSequencesRequest {
            workspace_id: user.workspace().into(),
            page: Some(PageRequest {
                limit: 500,
                cursor: String::new(),
            }),
        })
        .await
        .map_err(AppError::automations)
        .in_frame(&frame)?
        .into_inner();
    let mut rows = Vec::new();
    for s in resp.sequences {
        let def = definition(&s.definition);
        let updated = crate::api::json::time("updated_at", s.updated_at).in_frame(&frame)?;
        rows.push(SequenceRow {
            name: name_of(&def),
            steps: def
                .get("steps")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
            id: s.id,
            updated: when(updated),
        });
    }
    Ok(SequencesPage { frame, rows }.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "sequences/edit.html")]
pub struct EditorPage {
    frame: Frame,
    id: Option<String>,
    name: String,
    steps: Vec<Step>,
    conditions: Conditions,
    fields: FieldTypes,
    /// (id, name) of every template, for the email steps' choice.
    templates: Vec<(String, String)>,
    stats: Option<SequenceStats>,
    /// The saved steps' funnel.
    funnel: Vec<FunnelRow>,
    /// What saving this edit does to contacts in flight, said before it is saved.
    impact: Vec<String>,
    /// Fields the exit conditions name that no contact has sent yet.
    unseen: Vec<String>,
    /// What automations refused: the path it named and why.
    error: Option<(String, String)>,
    saved: bool,
}

impl EditorPage {
    fn step_error(&self, i: usize) -> Option<&str> {
        let (path, message) = self.error.as_ref()?;
        let prefix = format!("steps[{i}]");
        (path == &prefix || path.starts_with(&format!("{prefix}."))).then_some(message.as_str())
    }

    fn cond_error(&self, i: usize) -> Option<&str> {
        let (path, message) = self.error.as_ref()?;
        (self.conditions.row_of("exit_when", path) == Some(i)).then_some(message.as_str())
    }

    fn name_error(&self) -> Option<&str> {
        let (path, message) = self.error.as_ref()?;
        (path == "name").then_some(message.as_str())
    }

    /// An error no input shows: at the top of the form.
    fn general_error(&self) -> Option<&str> {
        let (path, message) = self.error.as_ref()?;
        let shown = path == "name"
            || (0..self.steps.len()).any(|i| self.step_error(i).is_some())
            || (0..self.conditions.rows.len()).any(|i| self.cond_error(i).is_some());
        (!shown).then_some(message.as_str())
    }

    fn ops(&self) -> &'static [(&'static str, &'static str)] {
        builder::OPS
    }

    fn units(&self) -> &'static [(&'static str, &'static str)] {
        UNITS
    }

    fn field_types_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_default()
    }
}

async fn editor(
    state: &AppState,
    user: &SignedIn,
    id: Option<String>,
    name: String,
    steps: Vec<Step>,
    conditions: Conditions,
) -> PageResult<EditorPage> {
    let frame = Frame::new(user, "sequences");
    let (fields, templates) = tokio::join!(
        builder::workspace_fields(state, user.workspace()),
        form::template_choices(state, user.workspace())
    );
    Ok(EditorPage {
        fields: fields.in_frame(&frame)?,
        templates: templates.in_frame(&frame)?,
        frame,
        id,
        name,
        steps,
        conditions,
        stats: None,
        funnel: Vec::new(),
        impact: Vec::new(),
        unseen: Vec::new(),
        error: None,
        saved: false,
    })
}

pub async fn new(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let page = editor(
        &state,
        &user,
        None,
        String::new(),
        vec![Step::email()],
        Conditions::from_json(None),
    )
    .await?;
    Ok(page.into_response())
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    saved: Option<String>,
}

fn valid_id(id: &str, frame: &Frame) -> PageResult<()> {
    if meisa_model::id::parse("seq", id).is_none() {
        return Err(PageError::not_found("sequence").in_frame(frame.clone()));
    }
    Ok(())
}

/// The saved sequence, and its numbers or why automations could not count them (the editor
/// still opens without them; a save that must first warn cannot go on).
async fn saved_with_stats(
    state: &AppState,
    ws: &str,
    id: &str,
) -> Result<(Sequence, Result<SequenceStats, PageError>), PageError> {
    let mut automations = state.automations();
    let mut automations2 = state.automations();
    let (sequence, stats) = tokio::join!(
        automations.get_sequence(GetSequenceRequest {
            workspace_id: ws.into(),
            id: id.into(),
        }),
        automations2.get_sequence_stats(GetSequenceStatsRequest {
            workspace_id: ws.into(),
            id: id.into(),
        })
    );
    let sequence = sequence
        .map_err(not_found_or)?
        .into_inner()
        .sequence
        .ok_or_else(|| crate::error::BadAnswer("GetSequence answered no sequence".into()))?;
    let stats = stats
        .map_err(|e| PageError::from(AppError::automations(e)))
        .and_then(|r| {
            r.into_inner().stats.ok_or_else(|| {
                crate::error::BadAnswer("GetSequenceStats answered no stats".into()).into()
            })
        });
    Ok((sequence, stats))
}

fn saved_steps(definition_json: &str) -> Vec<Step> {
    definition(definition_json)
        .get("steps")
        .and_then(Value::as_array)
        .map(|s| s.iter().map(Step::from_json).collect())
        .unwrap_or_default()
}

fn not_found_or(status: tonic::Status) -> PageError {
    match status.code() {
        tonic::Code::NotFound => PageError::not_found("sequence"),
        _ => AppError::automations(status).into(),
    }
}

pub async fn edit(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "sequences");
    valid_id(&id, &frame)?;
    let (sequence, stats) = saved_with_stats(&state, user.workspace(), &id)
        .await
        .in_frame(&frame)?;
    let steps = saved_steps(&sequence.definition);
    let def = definition(&sequence.definition);
    let mut page = editor(
        &state,
        &user,
        Some(id),
        name_of(&def),
        steps.clone(),
        Conditions::from_json(def.get("exit_when")),
    )
    .await?;
    if let Ok(stats) = stats {
        page.funnel = funnel::rows(&steps, &stats, &page.templates);
        page.stats = Some(stats);
    }
    page.unseen = sequence.unseen_fields;
    page.saved = q.saved.is_some();
    Ok(page.into_response())
}

pub async fn create(
    State(state): State<AppState>,
    user: SignedIn,
    Form(form): Form<SequenceForm>,
) -> PageResult<Response> {
    submit(state, user, None, form).await
}

pub async fn update(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<SequenceForm>,
) -> PageResult<Response> {
    valid_id(&id, &Frame::new(&user, "sequences"))?;
    submit(state, user, Some(id), form).await
}

/// A press of any of the editor's buttons: a change to the form (re-rendered, nothing saved) or
/// the save.
async fn submit(
    state: AppState,
    user: SignedIn,
    id: Option<String>,
    form: SequenceForm,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "sequences");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    let op = Op::parse(&form.op);
    let mut steps = form.steps();
    let mut conditions =
        Conditions::from_form(&form.c_join, &form.c_field, &form.c_op, &form.c_value);
    match op {
        Op::Add("email") => steps.push(Step::email()),
        Op::Add("wait") => steps.push(Step::wait()),
        Op::Add("condition") => conditions.rows.push(builder::Row {
            op: "eq".into(),
            ..builder::Row::default()
        }),
        _ => {}
    }
    apply(&mut steps, op, "step");
    apply(&mut conditions.rows, op, "condition");
    if !matches!(op, Op::Save | Op::SaveAnyway) {
        let page = editor(&state, &user, id, form.name, steps, conditions).await?;
        return Ok(page.into_response());
    }
    // A live sequence: say first what the edit does to the contacts standing in it.
    let warning = match (&id, op) {
        (Some(id), Op::Save) => {
            let (saved, stats) = saved_with_stats(&state, user.workspace(), id)
                .await
                .in_frame(&frame)?;
            Some((saved_steps(&saved.definition), stats.in_frame(&frame)?))
        }
        _ => None,
    };

    let mut page = editor(
        &state,
        &user,
        id.clone(),
        form.name.clone(),
        steps,
        conditions,
    )
    .await?;
    if let Some((saved, stats)) = warning {
        page.impact = funnel::impact(&saved, &page.steps, &stats, &page.templates);
        if !page.impact.is_empty() {
            page.funnel = funnel::rows(&saved, &stats, &page.templates);
            page.stats = Some(stats);
            return Ok(page.into_response());
        }
    }
    let definition = json!({
        "name": form.name,
        "steps": page.steps.iter().map(Step::to_json).collect::<Vec<_>>(),
        "exit_when": page.conditions.to_json(&page.fields),
    })
    .to_string();
    let ws = user.workspace().to_string();
    let answer = match &id {
        None => state
            .automations()
            .create_sequence(CreateSequenceRequest {
                workspace_id: ws,
                definition,
            })
            .await
            .map(|r| r.into_inner().sequence),
        Some(id) => state
            .automations()
            .update_sequence(UpdateSequenceRequest {
                workspace_id: ws,
                id: id.clone(),
                definition,
            })
            .await
            .map(|r| r.into_inner().sequence),
    };
    match form::saved(
        "sequence",
        id.is_some(),
        answer.map(|a| a.map(|a| a.id)),
        AppError::automations,
    )
    .in_frame(&frame)?
    {
        Ok(saved) => Ok(Redirect::to(&format!("/sequences/{saved}?saved=1")).into_response()),
        Err(refused) => {
            page.error = Some(refused);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

pub async fn delete(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> PageResult<Response> {
    let frame = Frame::new(&user, "sequences");
    user.check_csrf(&form.csrf).in_frame(&frame)?;
    valid_id(&id, &frame)?;
    state
        .automations()
        .delete_sequence(DeleteSequenceRequest {
            workspace_id: user.workspace().into(),
            id,
        })
        .await
        .map_err(not_found_or)
        .in_frame(&frame)?;
    Ok(Redirect::to("/sequences").into_response())
}
