//! Action workers: run the remote actions of firings (add_tag, remove_tag through the contacts
//! service, send_email through the mailer), one job at a time per worker.
//!
//! A job is claimed under a lease, the call is made, and the outcome is recorded with its
//! activity in one transaction. If the process dies after the call but before that commit, the
//! lease runs out and the job runs again: tags are idempotent, and SendEmail carries the job id
//! as its idempotency key, so the mailer answers the message it already made instead of sending
//! a second email.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use meisa_proto::{common::Causation, mailer as mpb};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Wakers, backoff, chrono};

use crate::{
    clients::{Contacts, Found, Mailer, message_accepted, message_status_name},
    domain::Action,
    error::{Error, Result},
    store::{
        Store,
        activity::{self, Entry, Kind},
        jobs::{self, Job},
    },
};

pub struct Actions {
    pub store: Store,
    pub contacts: Contacts,
    pub mailer: Mailer,
    pub lease: Duration,
    pub poll: Duration,
    pub max_attempts: i32,
    pub wakers: Wakers,
}

/// Runs up to `concurrency` jobs at once until `shutdown`, then finishes those in hand.
pub async fn run(a: Arc<Actions>, concurrency: usize, shutdown: CancellationToken) {
    let claimer = a.clone();
    super::dispatch(
        concurrency,
        a.poll,
        a.wakers.jobs.clone(),
        shutdown,
        "action jobs",
        move |n| {
            let a = claimer.clone();
            async move { jobs::claim(&a.store.pool, n, a.lease).await }
        },
        move |job: Job| {
            let a = a.clone();
            async move {
                let span = tracing::info_span!("action", job = %job.id, automation = %job.automation_id, index = job.action_index);
                meisa_runtime::telemetry::set_parent_from_traceparent(&span, &job.traceparent);
                if let Err(e) = run_job(&a, &job).instrument(span).await {
                    tracing::warn!(job = %job.id, error = %e, "recording an action's outcome failed; it will run again when its lease ends");
                }
            }
        },
    )
    .await;
}

enum Outcome {
    Done(String),
    Emailed {
        message_id: String,
        status: i32,
    },
    /// The contact was erased: nothing to do, nothing to record against it.
    Gone,
    Failed(String),
}

async fn run_job(a: &Actions, job: &Job) -> Result<()> {
    let outcome = match execute(a, job).await {
        Ok(o) => o,
        Err(e) if e.is_transient() && job.attempts < a.max_attempts => {
            let at = Utc::now() + chrono(backoff(job.attempts));
            tracing::warn!(job = %job.id, attempts = job.attempts, retry_at = %at, error = %e, "action failed; retrying later");
            jobs::retry_at(&a.store.pool, job, at, &e.to_string()).await?;
            return Ok(());
        }
        Err(e) => Outcome::Failed(e.to_string()),
    };
    let contact = job.contact_id.as_deref().unwrap_or_default();
    let ty = job.action["type"].as_str().unwrap_or("unknown").to_string();
    let entry = |kind: Kind| {
        Entry::new(&job.workspace_id, contact, kind)
            .automation(Some(&job.automation_id), Some(&job.event_id))
            .action(job.action_index, &ty)
    };
    let mut tx = a.store.pool.begin().await?;
    let (status, error, record) = match outcome {
        Outcome::Done(detail) => (
            "done",
            String::new(),
            Some(entry(Kind::ActionDone).detail(detail)),
        ),
        Outcome::Emailed { message_id, status } => (
            "done",
            String::new(),
            Some(
                entry(Kind::ActionDone)
                    .email(&message_id, message_accepted(status))
                    .detail(message_status_name(status)),
            ),
        ),
        Outcome::Gone => ("cancelled", "contact erased".to_string(), None),
        Outcome::Failed(why) => {
            tracing::warn!(job = %job.id, error = %why, "action failed for good");
            (
                "failed",
                why.clone(),
                Some(entry(Kind::ActionFailed).detail(why)),
            )
        }
    };
    metrics::counter!("meisa_automations_actions_total", "type" => ty.clone(), "outcome" => status)
        .increment(1);
    if jobs::finish(&mut tx, job, status, &error).await? {
        if let Some(e) = record {
            activity::record(&mut tx, &e).await?;
        }
        tx.commit().await?;
    } else {
        // Our claim ran out and another worker has the job; it records the outcome.
        tx.rollback().await?;
    }
    Ok(())
}

async fn execute(a: &Actions, job: &Job) -> Result<Outcome> {
    let action = Action::parse(&job.action, "action")
        .map_err(|e| Error::Corrupt(format!("job {}: {e}", job.id)))?;
    let Some(contact_id) = job.contact_id.as_deref() else {
        return Ok(Outcome::Gone);
    };
    let ws = job.workspace_id.as_str();
    let causation = Causation {
        source: "automation".into(),
        automation_id: job.automation_id.clone(),
        event_id: job.event_id.clone(),
        depth: job.depth,
    };
    Ok(match action {
        Action::AddTag { ref tag } | Action::RemoveTag { ref tag } => {
            let add = matches!(action, Action::AddTag { .. });
            let changed = a
                .contacts
                .tag(ws, contact_id, tag, add, causation)
                .await
                .map_err(Error::Contacts)?;
            match (changed, add) {
                (None, _) => Outcome::Gone,
                (Some(true), true) => Outcome::Done(format!("tagged {tag}")),
                (Some(false), true) => Outcome::Done(format!("already tagged {tag}")),
                (Some(true), false) => Outcome::Done(format!("untagged {tag}")),
                (Some(false), false) => Outcome::Done(format!("did not have {tag}")),
            }
        }
        Action::SendEmail { template_id } => {
            // The contact as it is right before sending (DESIGN §5), not as the event saw it.
            let contact = match a
                .contacts
                .get(ws, contact_id)
                .await
                .map_err(Error::Contacts)?
            {
                Found::Gone => return Ok(Outcome::Gone),
                Found::Contact(c) => *c,
            };
            let sent = a
                .mailer
                .send(mpb::SendEmailRequest {
                    workspace_id: ws.into(),
                    idempotency_key: job.id.clone(),
                    contact: Some(contact),
                    template_id,
                    source: Some(mpb::MessageSource {
                        automation_id: job.automation_id.clone(),
                        event_id: job.event_id.clone(),
                        ..Default::default()
                    }),
                })
                .await;
            match sent {
                Ok(m) => Outcome::Emailed {
                    message_id: m.id,
                    status: m.status,
                },
                Err(s) if crate::error::status_transient(&s) => return Err(Error::Mailer(s)),
                // A deleted template, an address the mailer refuses: retrying will not help.
                Err(s) => Outcome::Failed(format!("the mailer refused the email: {}", s.message())),
            }
        }
        // Done in the firing's transaction; a job row exists only as their record.
        Action::Enroll { .. } | Action::Exit { .. } => Outcome::Done("done at firing".into()),
    })
}
