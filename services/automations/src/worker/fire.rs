//! Firing an automation for a contact, inside the caller's transaction (the consumer's, for a
//! change event; the sweep's, when time made conditions true). Everything a firing does is
//! written in that transaction: the firing, reentry memory, activity, enrollments and exits (which
//! touch only this service's tables), and a job for each remote action. If the process dies
//! before commit nothing of it exists and the event (or sweep row) is handled again; after commit
//! the workers run the jobs.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{
    domain::Action,
    error::Result,
    store::{
        activity::{self, Entry, Kind},
        definitions::{self, AutomationRow},
        effects, enrollments,
        jobs::{self, NewJob},
    },
};

/// What a firing left for the workers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wake {
    pub jobs: bool,
    pub scheduler: bool,
    pub sweep: bool,
}

impl Wake {
    pub fn merge(&mut self, o: Wake) {
        self.jobs |= o.jobs;
        self.scheduler |= o.scheduler;
        self.sweep |= o.sweep;
    }
}

/// Fires `a` for the contact unless reentry forbids it or it already fired for this event.
/// Returns whether it fired and what to wake.
pub async fn fire(
    conn: &mut PgConnection,
    a: &AutomationRow,
    contact_id: &str,
    event_id: &str,
    depth: u32,
    now: DateTime<Utc>,
) -> Result<Option<Wake>> {
    let ws = a.workspace_id.as_str();
    if effects::firing_exists(conn, ws, &a.id, event_id).await? {
        return Ok(None);
    }
    let last = effects::lock_reentry(conn, ws, &a.id, contact_id).await?;
    if !a.def.reentry.allows(last, now) {
        tracing::debug!(automation = %a.id, contact = contact_id, event = event_id, "reentry: not firing again");
        return Ok(None);
    }
    effects::set_reentry(conn, ws, &a.id, contact_id, now).await?;
    effects::insert_firing(conn, ws, &a.id, event_id, contact_id).await?;
    activity::record(
        conn,
        &Entry::new(ws, contact_id, Kind::Triggered).automation(Some(&a.id), Some(event_id)),
    )
    .await?;
    tracing::info!(automation = %a.id, contact = contact_id, event = event_id, "automation fired");

    let mut wake = Wake::default();
    let traceparent = meisa_runtime::telemetry::current_traceparent();
    // Changes this firing causes carry the next depth (DESIGN §3 loop guard).
    let action_depth = depth.saturating_add(1);
    for (i, action) in a.def.actions.iter().enumerate() {
        let base = Entry::new(ws, contact_id, Kind::ActionDone)
            .automation(Some(&a.id), Some(event_id))
            .action(i, action.type_name());
        let (status, detail) = match action {
            Action::Enroll { sequence_id } => {
                if !definitions::lock_sequence(conn, ws, sequence_id).await? {
                    ("failed", format!("sequence {sequence_id} no longer exists"))
                } else {
                    match enrollments::create(
                        conn,
                        ws,
                        sequence_id,
                        contact_id,
                        &a.id,
                        event_id,
                        &traceparent,
                    )
                    .await?
                    {
                        Some(enrollment_id) => {
                            activity::record(
                                conn,
                                &Entry::new(ws, contact_id, Kind::Enrolled)
                                    .automation(Some(&a.id), Some(event_id))
                                    .enrollment(sequence_id, &enrollment_id),
                            )
                            .await?;
                            wake.scheduler = true;
                            ("done", format!("enrolled as {enrollment_id}"))
                        }
                        None => ("done", "already enrolled (active)".to_string()),
                    }
                }
            }
            Action::Exit { sequence_id } => {
                let ended = enrollments::exit_active(
                    conn,
                    ws,
                    contact_id,
                    Some(sequence_id),
                    "exit_action",
                )
                .await?;
                record_exits(conn, ws, Some(contact_id), &ended, "exit_action").await?;
                let detail = if ended.is_empty() {
                    "not enrolled".to_string()
                } else {
                    format!("exited {}", ended[0].id)
                };
                ("done", detail)
            }
            Action::AddTag { .. } | Action::RemoveTag { .. } | Action::SendEmail { .. } => {
                ("pending", String::new())
            }
        };
        let inserted = jobs::insert(
            conn,
            &NewJob {
                workspace_id: ws,
                automation_id: &a.id,
                event_id,
                action_index: i,
                contact_id,
                action: action.to_json(),
                depth: action_depth,
                status,
                last_error: if status == "failed" { &detail } else { "" },
                traceparent: &traceparent,
            },
        )
        .await?;
        if inserted.is_none() {
            continue;
        }
        match status {
            "pending" => wake.jobs = true,
            "failed" => {
                let mut e = base.detail(detail);
                e.kind = Kind::ActionFailed;
                activity::record(conn, &e).await?;
            }
            _ => activity::record(conn, &base.detail(detail)).await?,
        }
    }
    Ok(Some(wake))
}

/// Records the end of enrollments as EXITED activity, credited to the automation that created
/// each (so its stats count its enrollments' exits).
pub async fn record_exits(
    conn: &mut PgConnection,
    workspace_id: &str,
    contact_id: Option<&str>,
    ended: &[enrollments::Ended],
    reason: &str,
) -> Result<()> {
    for e in ended {
        let mut entry = Entry::new(workspace_id, "", Kind::Exited)
            .automation(e.automation_id.as_deref(), None)
            .enrollment(&e.sequence_id, &e.id)
            .detail(reason);
        entry.contact_id = contact_id.map(str::to_string);
        activity::record(conn, &entry).await?;
    }
    Ok(())
}
