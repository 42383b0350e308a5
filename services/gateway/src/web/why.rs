//! The contact page's "why" view: what automations did for the contact, newest first, each in a
//! sentence that says which automation fired on which change, what each action and sequence step
//! did, and why an enrollment ended or an email was skipped. It is read from automations'
//! activity log; the change an automation fired on is named from the contact's own timeline.

use std::collections::BTreeMap;

use meisa_proto::automations::{Activity, ActivityKind};

use super::contacts::when;
use crate::api::json::time;
use crate::error::BadAnswer;

pub struct WhyRow {
    pub when: String,
    /// "fired", "done", "failed", "exited"...: the badge.
    pub kind: &'static str,
    pub text: String,
}

/// Names of automations and sequences by id, and of each change event by its id ("plan: free →
/// pro").
pub struct Names<'a> {
    pub automations: &'a BTreeMap<String, String>,
    pub sequences: &'a BTreeMap<String, String>,
    pub changes: &'a BTreeMap<String, String>,
}

impl Names<'_> {
    fn of(map: &BTreeMap<String, String>, id: &str) -> String {
        map.get(id).cloned().unwrap_or_else(|| id.to_string())
    }
}

fn words(s: &str) -> String {
    s.replace('_', " ")
}

pub fn row(a: Activity, names: &Names<'_>) -> Result<WhyRow, BadAnswer> {
    let when = when(time("occurred_at", a.occurred_at)?);
    let automation = Names::of(names.automations, &a.automation_id);
    let sequence = Names::of(names.sequences, &a.sequence_id);
    let step = a.step_index.map_or(0, |i| i + 1);
    let detail = if a.detail.is_empty() {
        String::new()
    } else {
        format!(": {}", words(&a.detail))
    };
    let (kind, text) = match ActivityKind::try_from(a.kind) {
        Ok(ActivityKind::Triggered) => {
            let on = match names.changes.get(&a.event_id) {
                Some(change) => format!(" on the change {change}"),
                None if a.event_id.starts_with("sweep:") => {
                    " when time made its conditions true".to_string()
                }
                None => String::new(),
            };
            (
                "fired",
                format!("{automation} fired{on}; its conditions held"),
            )
        }
        Ok(ActivityKind::ActionDone) => (
            "done",
            format!("{automation}: {}{detail}", words(&a.action_type)),
        ),
        Ok(ActivityKind::ActionFailed) => (
            "failed",
            format!("{automation}: {} failed{detail}", words(&a.action_type)),
        ),
        Ok(ActivityKind::Enrolled) => ("done", format!("Enrolled in {sequence}")),
        Ok(ActivityKind::StepDone) => (
            "done",
            format!("{sequence}, step {step} ({}){detail}", a.step_type),
        ),
        Ok(ActivityKind::StepFailed) => (
            "failed",
            format!("{sequence}, step {step} ({}) failed{detail}", a.step_type),
        ),
        Ok(ActivityKind::Completed) => ("done", format!("Finished {sequence}")),
        Ok(ActivityKind::Exited) => ("exited", format!("Left {sequence}{detail}")),
        _ => ("done", format!("{automation}{detail}")),
    };
    Ok(WhyRow { when, kind, text })
}
