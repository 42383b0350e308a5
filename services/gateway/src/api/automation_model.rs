//! The public JSON of sequences, automations, enrollments and contact activity (DESIGN §3).
//!
//! Definitions pass through: the automations service is their one parser, over gRPC as over
//! HTTP, and answers them as the DESIGN JSON it stored. The gateway gives them their envelope
//! (the id in front, `unseen_fields` and times behind) and describes them for OpenAPI; it never
//! reads a trigger, a condition, an action or a step. Enrollments, activity and stats are typed
//! protos, mapped here to their JSON.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use meisa_proto::automations::{self as pb, ActivityKind, EnrollmentStatus};
use meisa_runtime::errors::ApiError;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, schema::Schema},
};

use super::json::{enum_filter, enum_name, non_empty, optional_time, time};
use crate::error::BadAnswer;

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
/// Documentation only: the body goes to the automations service as it came.
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
/// keys. Documentation only: the body goes to the automations service as it came.
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

/// `status` of an enrollment list; none: every status.
pub fn enrollment_status_filter(s: Option<&str>) -> Result<EnrollmentStatus, ApiError> {
    enum_filter(
        ENROLLMENT_STATUSES,
        "status",
        s,
        EnrollmentStatus::Unspecified,
    )
}

// ------------------------------------------------------------------------------ answers

/// A trigger as DESIGN §3 writes it: only the keys its type uses, so `"from": null` ("the field
/// did not exist") and no `from` ("any value") stay distinct.
#[derive(ToSchema)]
#[allow(dead_code)]
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

/// `{"type": "add_tag", "tag": "pro"}`, `{"type": "enroll", "sequence_id": "seq_…"}`,
/// `{"type": "send_email", "template_id": "tpl_…"}`.
#[derive(ToSchema)]
#[allow(dead_code)]
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

/// `{"type": "email", "template_id": "tpl_…"}` or `{"type": "wait", "duration": "2d"}`.
#[derive(ToSchema)]
#[allow(dead_code)]
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

/// A sequence: its body plus id, `unseen_fields` and times.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SequenceDoc {
    #[schema(example = "seq_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    id: String,
    name: String,
    steps: Vec<StepView>,
    /// The stored condition (custom fields by bare name), or null.
    #[schema(value_type = Option<Object>)]
    exit_when: Option<Value>,
    /// Custom fields `exit_when` names that the workspace has not sent yet (accepted, so a team
    /// can prepare before the product sends the data; the dashboard marks them). Recomputed by
    /// GET on one sequence; lists show it as of the last save.
    unseen_fields: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SequenceList {
    /// Newest first.
    pub sequences: Vec<SequenceView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An automation: its body plus id, `unseen_fields` and times.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AutomationDoc {
    #[schema(example = "aut_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    id: String,
    name: String,
    enabled: bool,
    trigger: TriggerView,
    /// The stored condition (custom fields by bare name), or null.
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    actions: Vec<ActionView>,
    /// Always spelled out: once, always or after:<duration>.
    #[schema(example = "once")]
    reentry: String,
    /// Custom fields the trigger or the conditions name that the workspace has not sent yet
    /// (accepted, so a team can prepare automations before the product sends the data; the
    /// dashboard marks them). Recomputed by GET on one automation; lists, writes and
    /// enable/disable show it as of the last save.
    #[schema(example = json!(["trial_ends_at"]))]
    unseen_fields: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A definition as the API answers it: `{"id", …the DESIGN §3 keys…, "unseen_fields",
/// "created_at", "updated_at"}`, built from the JSON the automations service answered without
/// reading it.
fn definition_view(
    id: String,
    definition: &str,
    unseen_fields: Vec<String>,
    created_at: Option<prost_types::Timestamp>,
    updated_at: Option<prost_types::Timestamp>,
) -> Result<Map<String, Value>, BadAnswer> {
    let body: Map<String, Value> = serde_json::from_str(definition).map_err(|e| {
        BadAnswer(format!(
            "automations answered a definition that is not a JSON object: {e}"
        ))
    })?;
    let mut view = Map::with_capacity(body.len() + 4);
    view.insert("id".into(), Value::String(id));
    view.extend(body);
    view.insert("unseen_fields".into(), unseen_fields.into());
    for (key, t) in [("created_at", created_at), ("updated_at", updated_at)] {
        let t = serde_json::to_value(time(key, t)?)
            .map_err(|e| BadAnswer(format!("{key} does not serialize: {e}")))?;
        view.insert(key.into(), t);
    }
    Ok(view)
}

/// The JSON of one definition, described in OpenAPI by `$doc`.
macro_rules! definition_view_type {
    ($name:ident, $doc:ident, $proto:ty) => {
        #[derive(Debug, Serialize)]
        #[serde(transparent)]
        pub struct $name(Map<String, Value>);

        impl TryFrom<$proto> for $name {
            type Error = BadAnswer;

            fn try_from(d: $proto) -> Result<Self, BadAnswer> {
                definition_view(
                    d.id,
                    &d.definition,
                    d.unseen_fields,
                    d.created_at,
                    d.updated_at,
                )
                .map(Self)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $doc::schema()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $doc::schemas(schemas);
            }
        }
    };
}

definition_view_type!(SequenceView, SequenceDoc, pb::Sequence);
definition_view_type!(AutomationView, AutomationDoc, pb::Automation);

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

impl TryFrom<pb::Enrollment> for EnrollmentView {
    type Error = BadAnswer;

    fn try_from(e: pb::Enrollment) -> Result<Self, BadAnswer> {
        Ok(Self {
            id: e.id,
            sequence_id: e.sequence_id,
            contact_id: non_empty(e.contact_id),
            automation_id: non_empty(e.automation_id),
            event_id: non_empty(e.event_id),
            status: enum_name(ENROLLMENT_STATUSES, "status", e.status)?.into(),
            current_step: e.current_step,
            next_run_at: optional_time("next_run_at", e.next_run_at)?,
            exit_reason: non_empty(e.exit_reason),
            created_at: time("created_at", e.created_at)?,
            updated_at: time("updated_at", e.updated_at)?,
            ended_at: optional_time("ended_at", e.ended_at)?,
        })
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

impl TryFrom<pb::Activity> for ActivityView {
    type Error = BadAnswer;

    fn try_from(a: pb::Activity) -> Result<Self, BadAnswer> {
        Ok(Self {
            kind: enum_name(ACTIVITY_KINDS, "kind", a.kind)?.into(),
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
            occurred_at: time("occurred_at", a.occurred_at)?,
        })
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
    use serde_json::json;

    fn at(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    use super::*;

    #[test]
    fn views_put_the_id_first_and_bookkeeping_last() {
        let a = pb::Automation {
            id: "aut_1".into(),
            definition: json!({"name": "Welcome", "enabled": true,
                "trigger": {"type": "contact_created"}, "conditions": null,
                "actions": [{"type": "send_email", "template_id": "tpl_1"}], "reentry": "once"})
            .to_string(),
            unseen_fields: vec!["trial".into()],
            created_at: at(1_800_000_000, 0),
            updated_at: at(1_800_000_000, 5_000_000),
            ..Default::default()
        };
        let v = serde_json::to_value(AutomationView::try_from(a.clone()).unwrap()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys.join(" "),
            "id name enabled trigger conditions actions reentry unseen_fields created_at updated_at"
        );
        assert_eq!(v["trigger"], json!({"type": "contact_created"}));
        assert_eq!(v["conditions"], Value::Null);
        assert_eq!(v["unseen_fields"], json!(["trial"]));
        assert_eq!(v["created_at"], "2027-01-15T08:00:00Z");
        assert_eq!(v["updated_at"], "2027-01-15T08:00:00.005Z");
        let unreadable = pb::Automation {
            updated_at: None,
            ..a
        };
        assert!(AutomationView::try_from(unreadable).is_err());
        let s = pb::Sequence {
            id: "seq_1".into(),
            definition: "not json".into(),
            ..Default::default()
        };
        assert!(SequenceView::try_from(s).is_err());
    }

    #[test]
    fn enrollment_statuses() {
        assert_eq!(
            enrollment_status_filter(Some(" active ")).unwrap(),
            EnrollmentStatus::Active
        );
        assert_eq!(
            enrollment_status_filter(Some("done"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("status")
        );
        assert_eq!(
            enrollment_status_filter(Some(" ")).unwrap(),
            EnrollmentStatus::Unspecified
        );
    }
}
