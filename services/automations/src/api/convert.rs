//! Stored rows → protobuf. Definitions leave as the DESIGN JSON they were read from.

use meisa_proto::{
    automations::{self as pb, ActivityKind, EnrollmentStatus},
    timestamp,
};

use crate::domain::funnel::StepFunnel;
use crate::store::{
    activity::{ActivityRow, Kind},
    definitions::{AutomationRow, SequenceRow},
    enrollments::{Enrollment, Status},
};

pub fn automation(r: &AutomationRow, unseen: Option<Vec<String>>) -> pb::Automation {
    pb::Automation {
        id: r.id.clone(),
        workspace_id: r.workspace_id.clone(),
        definition: r.def.to_json().to_string(),
        unseen_fields: unseen.unwrap_or_else(|| r.unseen_fields.clone()),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
    }
}

pub fn sequence(r: &SequenceRow, unseen: Option<Vec<String>>) -> pb::Sequence {
    pb::Sequence {
        id: r.id.clone(),
        workspace_id: r.workspace_id.clone(),
        definition: r.def.to_json().to_string(),
        unseen_fields: unseen.unwrap_or_else(|| r.unseen_fields.clone()),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
    }
}

pub fn status(s: Status) -> EnrollmentStatus {
    match s {
        Status::Active => EnrollmentStatus::Active,
        Status::Completed => EnrollmentStatus::Completed,
        Status::Exited => EnrollmentStatus::Exited,
    }
}

pub fn enrollment(e: &Enrollment) -> pb::Enrollment {
    pb::Enrollment {
        id: e.id.clone(),
        workspace_id: e.workspace_id.clone(),
        sequence_id: e.sequence_id.clone(),
        contact_id: e.contact_id.clone().unwrap_or_default(),
        automation_id: e.automation_id.clone().unwrap_or_default(),
        event_id: e.event_id.clone().unwrap_or_default(),
        status: status(e.status) as i32,
        current_step: e.current_step,
        next_run_at: e.next_run_at.map(timestamp),
        exit_reason: e.exit_reason.clone(),
        created_at: Some(timestamp(e.created_at)),
        updated_at: Some(timestamp(e.updated_at)),
        ended_at: e.ended_at.map(timestamp),
    }
}

fn kind(k: Kind) -> ActivityKind {
    match k {
        Kind::Triggered => ActivityKind::Triggered,
        Kind::ActionDone => ActivityKind::ActionDone,
        Kind::ActionFailed => ActivityKind::ActionFailed,
        Kind::Enrolled => ActivityKind::Enrolled,
        Kind::StepDone => ActivityKind::StepDone,
        Kind::StepFailed => ActivityKind::StepFailed,
        Kind::Completed => ActivityKind::Completed,
        Kind::Exited => ActivityKind::Exited,
    }
}

pub fn activity(r: &ActivityRow) -> pb::Activity {
    let e = &r.entry;
    pb::Activity {
        kind: kind(e.kind) as i32,
        automation_id: e.automation_id.clone().unwrap_or_default(),
        sequence_id: e.sequence_id.clone().unwrap_or_default(),
        enrollment_id: e.enrollment_id.clone().unwrap_or_default(),
        event_id: e.event_id.clone().unwrap_or_default(),
        action_index: e.action_index,
        action_type: e.action_type.clone().unwrap_or_default(),
        step_index: e.step_index,
        step_type: e.step_type.clone().unwrap_or_default(),
        message_id: e.message_id.clone().unwrap_or_default(),
        detail: e.detail.clone(),
        occurred_at: Some(timestamp(r.occurred_at)),
    }
}

pub fn step_stats((index, f): (u32, StepFunnel)) -> pb::StepStats {
    let reasons = |m: std::collections::BTreeMap<String, u64>| {
        m.into_iter()
            .map(|(reason, count)| pb::ReasonCount { reason, count })
            .collect()
    };
    pb::StepStats {
        index,
        entered: f.entered,
        here_now: f.here_now,
        sent: f.sent,
        skipped: reasons(f.skipped),
        failed: reasons(f.failed),
        exited: reasons(f.exited),
        next: f.next,
    }
}
