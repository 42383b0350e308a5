//! The public JSON of sequences, automations, enrollments and contact activity (DESIGN §3) and
//! its mapping to and from the automations protos, which mirror that JSON key for key.
//!
//! As in [`super::model`], the gateway finds shape errors (unknown keys, wrong JSON types, enum
//! strings the proto cannot carry) in document order and names the exact path
//! (`steps[1].foo`, `actions[0].type`). Everything about values (durations, ids, condition
//! grammar, types against the workspace's fields, references) is the automations service's to
//! judge: its errors already name the same DESIGN paths, so they pass through unchanged.
//! Condition trees (`conditions`, `exit_when`) go over as their JSON text, untouched.

use chrono::{DateTime, Utc};
use meisa_proto::automations::{
    self as pb, ActionType, ActivityKind, EnrollmentStatus, StepType, TriggerType,
};
use meisa_runtime::errors::ApiError;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    mail_model::{object, scalar},
    model::{timestamp, value_to_json, wrong_type},
};

pub const SEQUENCE_KEYS: &[&str] = &["name", "steps", "exit_when"];
pub const STEP_KEYS: &[&str] = &["type", "template_id", "duration"];
pub const AUTOMATION_KEYS: &[&str] = &[
    "name",
    "enabled",
    "trigger",
    "conditions",
    "actions",
    "reentry",
];
pub const TRIGGER_KEYS: &[&str] = &["type", "field", "from", "to", "tag"];
pub const ACTION_KEYS: &[&str] = &["type", "tag", "sequence_id", "template_id"];

const TRIGGER_TYPES: &[(&str, TriggerType)] = &[
    ("contact_created", TriggerType::ContactCreated),
    ("contact_updated", TriggerType::ContactUpdated),
    ("condition_met", TriggerType::ConditionMet),
    ("tag_added", TriggerType::TagAdded),
];
const ACTION_TYPES: &[(&str, ActionType)] = &[
    ("add_tag", ActionType::AddTag),
    ("remove_tag", ActionType::RemoveTag),
    ("enroll", ActionType::Enroll),
    ("exit", ActionType::Exit),
    ("send_email", ActionType::SendEmail),
];
const STEP_TYPES: &[(&str, StepType)] = &[("email", StepType::Email), ("wait", StepType::Wait)];
const ENROLLMENT_STATUSES: &[(&str, EnrollmentStatus)] = &[
    ("active", EnrollmentStatus::Active),
    ("completed", EnrollmentStatus::Completed),
    ("exited", EnrollmentStatus::Exited),
];
const ACTIVITY_KINDS: &[(&str, ActivityKind)] = &[
    ("triggered", ActivityKind::Triggered),
    ("action_done", ActivityKind::ActionDone),
    ("action_failed", ActivityKind::ActionFailed),
    ("enrolled", ActivityKind::Enrolled),
    ("step_done", ActivityKind::StepDone),
    ("step_failed", ActivityKind::StepFailed),
    ("completed", ActivityKind::Completed),
    ("exited", ActivityKind::Exited),
];

// ------------------------------------------------------------------------------ documentation

/// The body of `POST /api/v1/sequences/` and `PUT /api/v1/sequences/{id}`: exactly these keys.
/// Documentation only: handlers read a raw JSON value and map it with [`sequence_input`].
#[derive(ToSchema)]
#[schema(example = json!({
    "name": "Onboarding",
    "steps": [{"type": "email", "template_id": "tpl_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6"},
              {"type": "wait", "duration": "2d"},
              {"type": "email", "template_id": "tpl_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a7"}],
    "exit_when": {"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]}
}))]
#[allow(dead_code)]
pub struct SequenceBody {
    /// At most 200 characters.
    name: String,
    /// 1 to 100 steps, run in order.
    steps: Vec<StepView>,
    /// A condition (`{"all": [...]}`, `{"any": [...]}`, leaves `{"field", "op", "value"}`),
    /// checked before every step: when it holds the enrollment ends. Null or absent: none.
    #[schema(value_type = Option<Object>)]
    exit_when: Option<Value>,
}

/// The body of `POST /api/v1/automations/` and `PUT /api/v1/automations/{id}`: exactly these
/// keys. Documentation only: handlers read a raw JSON value and map it with [`automation_input`].
#[derive(ToSchema)]
#[schema(example = json!({
    "name": "Upgrade to pro", "enabled": true,
    "trigger": {"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"},
    "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5}]},
    "actions": [{"type": "add_tag", "tag": "pro"},
                {"type": "enroll", "sequence_id": "seq_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6"}],
    "reentry": "once"
}))]
#[allow(dead_code)]
pub struct AutomationBody {
    /// At most 200 characters.
    name: String,
    /// Absent: false (a new automation starts as a draft). A PUT without it disables.
    enabled: Option<bool>,
    trigger: TriggerView,
    /// Null or absent: no conditions (required for `condition_met`).
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    /// Up to 50 actions, run in order.
    actions: Vec<ActionView>,
    /// `once` (the default), `always` or `after:<duration>` (e.g. `after:30d`).
    #[schema(example = "once")]
    reentry: Option<String>,
}

// ------------------------------------------------------------------------------ JSON → proto

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Refuses the first key outside `known` (in document order), naming its full path.
fn reject_unknown(
    obj: &Map<String, Value>,
    path: &str,
    known: &[&str],
    what: &str,
) -> Result<(), ApiError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::field(
            join(path, unknown),
            format!("unknown field; {what} takes only {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn nested_object(value: Value, path: &str, example: &str) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(wrong_type(
            path,
            &format!("an object such as {example}"),
            &other,
        )),
    }
}

/// A string the proto carries as "" when not given. An empty string would read the same there
/// and silently mean "not given" (for a trigger's `field`: "any field"), so it is refused here.
fn optional_text(path: &str, value: Value, hint: &str) -> Result<String, ApiError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) if s.is_empty() => {
            Err(ApiError::field(path, format!("cannot be empty; {hint}")))
        }
        Value::String(s) => Ok(s),
        other => Err(wrong_type(path, "a string", &other)),
    }
}

fn name(value: Value) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s),
        Value::Null => Err(ApiError::field("name", "is required")),
        other => Err(wrong_type("name", "a string", &other)),
    }
}

/// An enum given by its JSON name; `None` (null) leaves the proto's UNSPECIFIED, which the
/// service reports as required with the list of names.
fn enum_value<T: Copy>(
    path: &str,
    value: Value,
    table: &[(&str, T)],
    what: &str,
) -> Result<Option<T>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => match table.iter().find(|(n, _)| *n == s) {
            Some((_, v)) => Ok(Some(*v)),
            None => Err(ApiError::field(
                path,
                format!("unknown {what} {s:?}; use one of {}", names(table)),
            )),
        },
        other => Err(wrong_type(
            path,
            &format!("a string, one of {}", names(table)),
            &other,
        )),
    }
}

fn names<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

fn name_of<T: PartialEq>(table: &[(&'static str, T)], value: Option<T>) -> &'static str {
    value
        .and_then(|v| table.iter().find(|(_, t)| *t == v))
        .map_or("unknown", |(n, _)| n)
}

/// The condition tree as JSON text for the proto; null is "none".
fn condition_text(value: Value) -> String {
    match value {
        Value::Null => String::new(),
        tree => tree.to_string(),
    }
}

/// The body of a sequence create or replace.
pub fn sequence_input(body: Value) -> Result<pb::SequenceInput, ApiError> {
    let obj = object(body, "with name, steps and exit_when")?;
    reject_unknown(&obj, "", SEQUENCE_KEYS, "a sequence")?;
    let (mut has_name, mut has_steps) = (false, false);
    let mut input = pb::SequenceInput::default();
    for (key, value) in obj {
        match key.as_str() {
            "name" => {
                input.name = name(value)?;
                has_name = true;
            }
            "steps" => match value {
                Value::Null => {}
                Value::Array(items) => {
                    has_steps = true;
                    for (i, item) in items.into_iter().enumerate() {
                        input.steps.push(step(item, &format!("steps[{i}]"))?);
                    }
                }
                other => return Err(wrong_type("steps", "a list of steps", &other)),
            },
            "exit_when" => input.exit_when = condition_text(value),
            // reject_unknown ran first.
            _ => {}
        }
    }
    if !has_name {
        return Err(ApiError::field("name", "is required"));
    }
    if !has_steps {
        return Err(ApiError::field(
            "steps",
            "is required; e.g. [{\"type\": \"email\", \"template_id\": \"tpl_…\"}]",
        ));
    }
    Ok(input)
}

fn step(value: Value, path: &str) -> Result<pb::Step, ApiError> {
    let obj = nested_object(
        value,
        path,
        "{\"type\": \"email\", \"template_id\": \"tpl_…\"} or {\"type\": \"wait\", \"duration\": \"2d\"}",
    )?;
    reject_unknown(&obj, path, STEP_KEYS, "a step")?;
    let mut step = pb::Step::default();
    for (key, value) in obj {
        let at = join(path, &key);
        match key.as_str() {
            "type" => {
                step.r#type =
                    enum_value(&at, value, STEP_TYPES, "step type")?.map_or(0, |t| t as i32);
            }
            "template_id" => {
                step.template_id = optional_text(&at, value, "name the template (tpl_…)")?
            }
            "duration" => {
                step.duration = optional_text(
                    &at,
                    value,
                    "write an integer and a unit: s, m, h or d (30s, 15m, 2h, 3d)",
                )?;
            }
            _ => {}
        }
    }
    Ok(step)
}

/// The body of an automation create or replace.
pub fn automation_input(body: Value) -> Result<pb::AutomationInput, ApiError> {
    let obj = object(
        body,
        "with name, enabled, trigger, conditions, actions and reentry",
    )?;
    reject_unknown(&obj, "", AUTOMATION_KEYS, "an automation")?;
    let mut has_name = false;
    let mut input = pb::AutomationInput::default();
    for (key, value) in obj {
        match key.as_str() {
            "name" => {
                input.name = name(value)?;
                has_name = true;
            }
            "enabled" => {
                input.enabled = match value {
                    Value::Null => false,
                    Value::Bool(b) => b,
                    other => return Err(wrong_type("enabled", "true or false", &other)),
                }
            }
            "trigger" => input.trigger = trigger(value)?,
            "conditions" => input.conditions = condition_text(value),
            "actions" => match value {
                Value::Null => {}
                Value::Array(items) => {
                    for (i, item) in items.into_iter().enumerate() {
                        input.actions.push(action(item, &format!("actions[{i}]"))?);
                    }
                }
                other => return Err(wrong_type("actions", "a list of actions", &other)),
            },
            "reentry" => {
                input.reentry = match value {
                    Value::Null => String::new(),
                    Value::String(s) => s,
                    other => {
                        return Err(wrong_type(
                            "reentry",
                            "a string: \"once\", \"always\" or \"after:<duration>\"",
                            &other,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if !has_name {
        return Err(ApiError::field("name", "is required"));
    }
    Ok(input)
}

/// `None` for null: the service says the trigger is required, with an example.
fn trigger(value: Value) -> Result<Option<pb::Trigger>, ApiError> {
    if value.is_null() {
        return Ok(None);
    }
    let obj = nested_object(value, "trigger", "{\"type\": \"contact_created\"}")?;
    reject_unknown(&obj, "trigger", TRIGGER_KEYS, "a trigger")?;
    let mut trigger = pb::Trigger::default();
    for (key, value) in obj {
        let at = join("trigger", &key);
        match key.as_str() {
            "type" => {
                trigger.r#type =
                    enum_value(&at, value, TRIGGER_TYPES, "trigger type")?.map_or(0, |t| t as i32);
            }
            "field" => {
                trigger.field = optional_text(&at, value, "leave it out to fire on any change")?;
            }
            // Present, even as null, means something: null is "the field did not exist" (from)
            // or "was removed" (to); absent is "any value".
            "from" => trigger.from = Some(scalar(&at, value)?),
            "to" => trigger.to = Some(scalar(&at, value)?),
            "tag" => trigger.tag = optional_text(&at, value, "name the tag")?,
            _ => {}
        }
    }
    Ok(Some(trigger))
}

fn action(value: Value, path: &str) -> Result<pb::Action, ApiError> {
    let obj = nested_object(value, path, "{\"type\": \"add_tag\", \"tag\": \"pro\"}")?;
    reject_unknown(&obj, path, ACTION_KEYS, "an action")?;
    let mut action = pb::Action::default();
    for (key, value) in obj {
        let at = join(path, &key);
        match key.as_str() {
            "type" => {
                action.r#type =
                    enum_value(&at, value, ACTION_TYPES, "action type")?.map_or(0, |t| t as i32);
            }
            "tag" => action.tag = optional_text(&at, value, "name the tag")?,
            "sequence_id" => {
                action.sequence_id = optional_text(&at, value, "name the sequence (seq_…)")?;
            }
            "template_id" => {
                action.template_id = optional_text(&at, value, "name the template (tpl_…)")?;
            }
            _ => {}
        }
    }
    Ok(action)
}

/// `status` of an enrollment list.
pub fn parse_enrollment_status(s: &str) -> Result<EnrollmentStatus, ApiError> {
    let s = s.trim();
    ENROLLMENT_STATUSES
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            ApiError::field(
                "status",
                format!("must be one of {}; got {s:?}", names(ENROLLMENT_STATUSES)),
            )
        })
}

// ------------------------------------------------------------------------------ proto → JSON

fn non_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// A stored condition tree back as JSON; the service normalises it (custom fields by bare name).
fn condition_json(text: &str, what: &str) -> Result<Option<Value>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| format!("automations answered {what} that is not JSON: {e}"))
}

/// A trigger as DESIGN §3 writes it: only the keys its type uses, so `"from": null` ("the field
/// did not exist") and no `from` ("any value") stay distinct.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerView {
    /// contact_created, contact_updated, condition_met or tag_added.
    #[serde(rename = "type")]
    #[schema(example = "contact_updated")]
    pub kind: String,
    /// contact_updated: the changed field (built-in, `plan` or `custom_fields.plan`); absent: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// contact_updated: the value before the change (a string, number or boolean; null: the
    /// field did not exist); absent: any value.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub from: Option<Value>,
    /// contact_updated: the value after the change (null: the field was removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub to: Option<Value>,
    /// tag_added: the tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl From<pb::Trigger> for TriggerView {
    fn from(t: pb::Trigger) -> Self {
        Self {
            kind: name_of(TRIGGER_TYPES, TriggerType::try_from(t.r#type).ok()).into(),
            field: non_empty(t.field),
            from: t.from.map(value_to_json),
            to: t.to.map(value_to_json),
            tag: non_empty(t.tag),
        }
    }
}

/// `{"type": "add_tag", "tag": "pro"}`, `{"type": "enroll", "sequence_id": "seq_…"}`,
/// `{"type": "send_email", "template_id": "tpl_…"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionView {
    /// add_tag, remove_tag, enroll, exit or send_email.
    #[serde(rename = "type")]
    #[schema(example = "add_tag")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
}

impl From<pb::Action> for ActionView {
    fn from(a: pb::Action) -> Self {
        Self {
            kind: name_of(ACTION_TYPES, ActionType::try_from(a.r#type).ok()).into(),
            tag: non_empty(a.tag),
            sequence_id: non_empty(a.sequence_id),
            template_id: non_empty(a.template_id),
        }
    }
}

/// `{"type": "email", "template_id": "tpl_…"}` or `{"type": "wait", "duration": "2d"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// email or wait.
    #[serde(rename = "type")]
    #[schema(example = "wait")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// An integer and a unit s, m, h or d (`30s`, `15m`, `2h`, `3d`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2d")]
    pub duration: Option<String>,
}

impl From<pb::Step> for StepView {
    fn from(s: pb::Step) -> Self {
        Self {
            kind: name_of(STEP_TYPES, StepType::try_from(s.r#type).ok()).into(),
            template_id: non_empty(s.template_id),
            duration: non_empty(s.duration),
        }
    }
}

/// A sequence: its body plus id, `unseen_fields` and times.
#[derive(Debug, Serialize, ToSchema)]
pub struct SequenceView {
    #[schema(example = "seq_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    pub id: String,
    pub name: String,
    pub steps: Vec<StepView>,
    /// The stored condition (custom fields by bare name), or null.
    #[schema(value_type = Option<Object>)]
    pub exit_when: Option<Value>,
    /// Custom fields `exit_when` names that the workspace has not sent yet (accepted, so a team
    /// can prepare before the product sends the data; the dashboard marks them). Recomputed by
    /// GET on one sequence; lists show it as of the last save.
    pub unseen_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<pb::Sequence> for SequenceView {
    type Error = String;

    fn try_from(s: pb::Sequence) -> Result<Self, String> {
        Ok(Self {
            exit_when: condition_json(&s.exit_when, "an exit_when")?,
            id: s.id,
            name: s.name,
            steps: s.steps.into_iter().map(StepView::from).collect(),
            unseen_fields: s.unseen_fields,
            created_at: timestamp(s.created_at),
            updated_at: timestamp(s.updated_at),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SequenceList {
    /// Newest first.
    pub sequences: Vec<SequenceView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An automation: its body plus id, `unseen_fields` and times.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationView {
    #[schema(example = "aut_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub trigger: TriggerView,
    /// The stored condition (custom fields by bare name), or null.
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<Value>,
    pub actions: Vec<ActionView>,
    /// Always spelled out: once, always or after:<duration>.
    #[schema(example = "once")]
    pub reentry: String,
    /// Custom fields the trigger or the conditions name that the workspace has not sent yet
    /// (accepted, so a team can prepare automations before the product sends the data; the
    /// dashboard marks them). Recomputed by GET on one automation; lists, writes and
    /// enable/disable show it as of the last save.
    #[schema(example = json!(["trial_ends_at"]))]
    pub unseen_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<pb::Automation> for AutomationView {
    type Error = String;

    fn try_from(a: pb::Automation) -> Result<Self, String> {
        Ok(Self {
            conditions: condition_json(&a.conditions, "conditions")?,
            id: a.id,
            name: a.name,
            enabled: a.enabled,
            trigger: a.trigger.map(TriggerView::from).ok_or_else(|| {
                "automations answered an automation without a trigger".to_string()
            })?,
            actions: a.actions.into_iter().map(ActionView::from).collect(),
            reentry: a.reentry,
            unseen_fields: a.unseen_fields,
            created_at: timestamp(a.created_at),
            updated_at: timestamp(a.updated_at),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationList {
    /// Newest first.
    pub automations: Vec<AutomationView>,
    pub next_cursor: Option<String>,
}

/// What an automation did, counted by the automations service from its own records.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationStatsView {
    /// Times it fired (trigger matched, conditions held, reentry allowed).
    pub triggered: u64,
    /// Enrollments its enroll actions created; of those, completed and exited so far.
    pub enrolled: u64,
    pub completed: u64,
    pub exited: u64,
    /// Emails the mailer accepted (queued or sent) from its send_email actions and from the steps
    /// of the enrollments it created.
    pub emails_sent: u64,
    pub actions_done: u64,
    /// Actions that failed for good (e.g. a deleted template).
    pub actions_failed: u64,
}

impl From<pb::AutomationStats> for AutomationStatsView {
    fn from(s: pb::AutomationStats) -> Self {
        Self {
            triggered: s.triggered,
            enrolled: s.enrolled,
            completed: s.completed,
            exited: s.exited,
            emails_sent: s.emails_sent,
            actions_done: s.actions_done,
            actions_failed: s.actions_failed,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SequenceStatsView {
    pub enrolled: u64,
    pub active: u64,
    pub completed: u64,
    pub exited: u64,
    /// Email steps the mailer accepted for sending (queued or sent).
    pub emails_sent: u64,
}

impl From<pb::SequenceStats> for SequenceStatsView {
    fn from(s: pb::SequenceStats) -> Self {
        Self {
            enrolled: s.enrolled,
            active: s.active,
            completed: s.completed,
            exited: s.exited,
            emails_sent: s.emails_sent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentView {
    #[schema(example = "enr_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    pub id: String,
    pub sequence_id: String,
    /// Null once the contact was erased.
    pub contact_id: Option<String>,
    /// The automation whose enroll action created it, and the event that triggered that.
    pub automation_id: Option<String>,
    pub event_id: Option<String>,
    /// active, completed or exited.
    #[schema(example = "active")]
    pub status: String,
    /// 0-based index of the next step to run (the step count once completed).
    pub current_step: u32,
    /// When the next step runs (active enrollments only).
    pub next_run_at: Option<DateTime<Utc>>,
    /// For exited: exit_when, unsubscribed, contact_deleted, exit_action or sequence_deleted.
    pub exit_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl From<pb::Enrollment> for EnrollmentView {
    fn from(e: pb::Enrollment) -> Self {
        Self {
            id: e.id,
            sequence_id: e.sequence_id,
            contact_id: non_empty(e.contact_id),
            automation_id: non_empty(e.automation_id),
            event_id: non_empty(e.event_id),
            status: name_of(
                ENROLLMENT_STATUSES,
                EnrollmentStatus::try_from(e.status).ok(),
            )
            .into(),
            current_step: e.current_step,
            next_run_at: e.next_run_at.map(|t| timestamp(Some(t))),
            exit_reason: non_empty(e.exit_reason),
            created_at: timestamp(e.created_at),
            updated_at: timestamp(e.updated_at),
            ended_at: e.ended_at.map(|t| timestamp(Some(t))),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentList {
    /// Newest first.
    pub enrollments: Vec<EnrollmentView>,
    pub next_cursor: Option<String>,
}

/// One thing automations did for a contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    /// triggered, action_done, action_failed, enrolled, step_done, step_failed, completed or
    /// exited.
    #[schema(example = "triggered")]
    pub kind: String,
    pub automation_id: Option<String>,
    pub sequence_id: Option<String>,
    pub enrollment_id: Option<String>,
    /// The contact change that triggered it (`sweep:…` when time made conditions true).
    pub event_id: Option<String>,
    /// action_done / action_failed: the action's index and type (add_tag, remove_tag, enroll,
    /// exit, send_email).
    pub action_index: Option<u32>,
    pub action_type: Option<String>,
    /// step_done / step_failed: the step's index and type (email, wait).
    pub step_index: Option<u32>,
    pub step_type: Option<String>,
    /// The mailer's `msg_…` for emails (follow it with GET /api/v1/messages/{id}).
    pub message_id: Option<String>,
    /// The mailer's status for an email (queued, suppressed, skipped…), an exit reason, or why
    /// something failed.
    pub detail: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl From<pb::Activity> for ActivityView {
    fn from(a: pb::Activity) -> Self {
        Self {
            kind: name_of(ACTIVITY_KINDS, ActivityKind::try_from(a.kind).ok()).into(),
            automation_id: non_empty(a.automation_id),
            sequence_id: non_empty(a.sequence_id),
            enrollment_id: non_empty(a.enrollment_id),
            event_id: non_empty(a.event_id),
            action_index: a.action_index,
            action_type: non_empty(a.action_type),
            step_index: a.step_index,
            step_type: non_empty(a.step_type),
            message_id: non_empty(a.message_id),
            detail: non_empty(a.detail),
            occurred_at: timestamp(a.occurred_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityList {
    /// Newest first.
    pub activities: Vec<ActivityView>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use meisa_proto::common::{self, value::Kind};
    use meisa_runtime::errors::ErrorCode;
    use serde_json::json;

    use super::*;

    const SEQ: &str = "seq_0123456789abcdef0123456789abcdef";

    fn upgrade() -> Value {
        json!({"name": "Upgrade to pro", "enabled": true,
            "trigger": {"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"},
            "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5}]},
            "actions": [{"type": "add_tag", "tag": "pro"}, {"type": "enroll", "sequence_id": SEQ}],
            "reentry": "once"})
    }

    fn field_of(e: ApiError) -> String {
        assert_eq!(e.code, ErrorCode::InvalidField, "{}", e.message);
        e.field.unwrap_or_default()
    }

    #[test]
    fn the_design_automation_maps_one_to_one() {
        let input = automation_input(upgrade()).unwrap();
        assert_eq!(input.name, "Upgrade to pro");
        assert!(input.enabled);
        let t = input.trigger.clone().unwrap();
        assert_eq!(t.r#type, TriggerType::ContactUpdated as i32);
        assert_eq!(t.field, "plan");
        assert_eq!(t.to.unwrap().kind, Some(Kind::StringValue("pro".into())));
        let conditions: Value = serde_json::from_str(&input.conditions).unwrap();
        assert_eq!(conditions, upgrade()["conditions"]);
        assert_eq!(input.actions[1].r#type, ActionType::Enroll as i32);
        assert_eq!(input.actions[1].sequence_id, SEQ);
        assert_eq!(input.reentry, "once");
    }

    #[test]
    fn null_from_is_not_absent_from() {
        let mut body = upgrade();
        body["trigger"] = json!({"type": "contact_updated", "field": "plan", "from": null});
        let t = automation_input(body).unwrap().trigger.unwrap();
        assert_eq!(
            t.from,
            Some(common::Value {
                kind: Some(Kind::NullValue(true))
            })
        );
        assert_eq!(t.to, None);
        let view = TriggerView::from(t);
        let out = serde_json::to_value(&view).unwrap();
        assert_eq!(
            out,
            json!({"type": "contact_updated", "field": "plan", "from": null})
        );
    }

    #[test]
    fn defaults_for_absent_keys() {
        let input =
            automation_input(json!({"name": "x", "trigger": {"type": "contact_created"}})).unwrap();
        assert!(!input.enabled);
        assert!(input.conditions.is_empty());
        assert!(input.actions.is_empty());
        assert!(input.reentry.is_empty());
        let input = automation_input(json!({"name": "x", "conditions": null})).unwrap();
        assert!(input.conditions.is_empty());
        assert!(
            input.trigger.is_none(),
            "the service says trigger is required"
        );
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
                json!({"name": "x", "actions": {"type": "add_tag"}}),
                "actions",
            ),
            (
                json!({"name": "x", "actions": [{"type": "add_tag", "tag": "a"}, "enroll"]}),
                "actions[1]",
            ),
            (
                json!({"name": "x", "actions": [{"type": "tag", "tag": "a"}]}),
                "actions[0].type",
            ),
            (
                json!({"name": "x", "actions": [{"type": "enroll", "sequence": SEQ}]}),
                "actions[0].sequence",
            ),
            (
                json!({"name": "x", "actions": [{"type": "enroll", "sequence_id": 7}]}),
                "actions[0].sequence_id",
            ),
            (json!({"name": "x", "reentry": 30}), "reentry"),
        ];
        for (body, path) in cases {
            let e = automation_input(body.clone()).unwrap_err();
            assert_eq!(field_of(e), path, "{body}");
        }
        assert_eq!(automation_input(json!([])).unwrap_err().field, None);
    }

    #[test]
    fn sequences_map_and_name_paths() {
        let input = sequence_input(json!({"name": "Onboarding",
            "steps": [{"type": "email", "template_id": "tpl_1"}, {"type": "wait", "duration": "2d"}],
            "exit_when": {"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]}}))
        .unwrap();
        assert_eq!(input.steps.len(), 2);
        assert_eq!(input.steps[1].r#type, StepType::Wait as i32);
        assert_eq!(input.steps[1].duration, "2d");
        assert!(input.exit_when.contains("onboarding_completed"));
        let ok = sequence_input(json!({"name": "x", "steps": [], "exit_when": null})).unwrap();
        assert!(ok.exit_when.is_empty());
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
            let e = sequence_input(body.clone()).unwrap_err();
            assert_eq!(field_of(e), path, "{body}");
        }
    }

    #[test]
    fn views_have_the_input_shape() {
        let a = pb::Automation {
            id: "aut_1".into(),
            name: "Welcome".into(),
            enabled: true,
            trigger: Some(pb::Trigger {
                r#type: TriggerType::ContactCreated as i32,
                ..Default::default()
            }),
            conditions: String::new(),
            actions: vec![pb::Action {
                r#type: ActionType::SendEmail as i32,
                template_id: "tpl_1".into(),
                ..Default::default()
            }],
            reentry: "once".into(),
            unseen_fields: vec!["trial".into()],
            ..Default::default()
        };
        let v = serde_json::to_value(AutomationView::try_from(a).unwrap()).unwrap();
        assert_eq!(v["trigger"], json!({"type": "contact_created"}));
        assert_eq!(v["conditions"], Value::Null);
        assert_eq!(
            v["actions"],
            json!([{"type": "send_email", "template_id": "tpl_1"}])
        );
        assert_eq!(v["unseen_fields"], json!(["trial"]));
        let s = pb::Sequence {
            id: "seq_1".into(),
            steps: vec![pb::Step {
                r#type: StepType::Wait as i32,
                duration: "2d".into(),
                ..Default::default()
            }],
            exit_when: r#"{"all":[{"field":"plan","op":"eq","value":"pro"}]}"#.into(),
            ..Default::default()
        };
        let v = serde_json::to_value(SequenceView::try_from(s).unwrap()).unwrap();
        assert_eq!(v["steps"], json!([{"type": "wait", "duration": "2d"}]));
        assert_eq!(v["exit_when"]["all"][0]["value"], "pro");
    }

    #[test]
    fn enrollment_statuses() {
        assert_eq!(
            parse_enrollment_status(" active ").unwrap(),
            EnrollmentStatus::Active
        );
        assert_eq!(
            parse_enrollment_status("done")
                .unwrap_err()
                .field
                .as_deref(),
            Some("status")
        );
    }
}
