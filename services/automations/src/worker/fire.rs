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
    if !effects::take_reentry(conn, ws, &a.id, contact_id, &a.def.reentry, now).await? {
        tracing::debug!(automation = %a.id, contact = contact_id, event = event_id, "reentry: not firing again");
        return Ok(None);
    }
    if !effects::insert_firing(conn, ws, &a.id, event_id, contact_id).await? {
        // Processed events and locked sweep rows make this unreachable; if it happens anyway
        // the automation already fired for this event and must not act twice.
        tracing::warn!(automation = %a.id, event = event_id, "already fired for this event");
        return Ok(None);
    }
    tracing::info!(automation = %a.id, contact = contact_id, event = event_id, "automation fired");
    metrics::counter!("meisa_automations_firings_total").increment(1);
    let mut log =
        vec![Entry::new(ws, contact_id, Kind::Triggered).automation(Some(&a.id), Some(event_id))];

    let mut wake = Wake::default();
    let traceparent = meisa_runtime::telemetry::current_traceparent();
    // Changes this firing causes carry the next depth (DESIGN §3 loop guard).
    let action_depth = depth.saturating_add(1);
    // Indexes as stored: a u32 each, counted as such (definitions hold at most MAX_ACTIONS).
    for (i, action) in (0u32..).zip(a.def.actions.iter()) {
        let base = Entry::new(ws, contact_id, Kind::ActionDone)
            .automation(Some(&a.id), Some(event_id))
            .action(i, action.type_name());
        let mut exits = Vec::new();
        let mut enrolled = None;
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
                            wake.scheduler = true;
                            let detail = format!("enrolled as {enrollment_id}");
                            enrolled = Some(
                                Entry::new(ws, contact_id, Kind::Enrolled)
                                    .automation(Some(&a.id), Some(event_id))
                                    .enrollment(sequence_id, &enrollment_id),
                            );
                            ("done", detail)
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
                let detail = match ended.first() {
                    None => "not enrolled".to_string(),
                    Some(e) => format!("exited {}", e.id),
                };
                exits = ended;
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
        log.extend(enrolled);
        log.extend(exit_entries(ws, Some(contact_id), &exits, "exit_action"));
        match status {
            "pending" => wake.jobs = true,
            "failed" => {
                let mut e = base.detail(detail);
                e.kind = Kind::ActionFailed;
                log.push(e);
            }
            _ => log.push(base.detail(detail)),
        }
    }
    activity::record_all(conn, &log).await?;
    Ok(Some(wake))
}

/// EXITED activity for ended enrollments, credited to the automation that created each (so its
/// stats count its enrollments' exits).
fn exit_entries(
    workspace_id: &str,
    contact_id: Option<&str>,
    ended: &[enrollments::Ended],
    reason: &str,
) -> Vec<Entry> {
    ended
        .iter()
        .map(|e| {
            let mut entry = Entry::new(workspace_id, "", Kind::Exited)
                .automation(e.automation_id.as_deref(), None)
                .enrollment(&e.sequence_id, &e.id)
                .detail(reason);
            entry.contact_id = contact_id.map(str::to_string);
            entry
        })
        .collect()
}

/// Records the end of enrollments as EXITED activity.
pub async fn record_exits(
    conn: &mut PgConnection,
    workspace_id: &str,
    contact_id: Option<&str>,
    ended: &[enrollments::Ended],
    reason: &str,
) -> Result<()> {
    activity::record_all(conn, &exit_entries(workspace_id, contact_id, ended, reason)).await?;
    Ok(())
}
