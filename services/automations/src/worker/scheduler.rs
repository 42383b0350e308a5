//! The sequence scheduler: claims due enrollments (`FOR UPDATE SKIP LOCKED`, under a lease) and
//! runs their steps.
//!
//! Before every step the contact's current state is read from the contacts service (DESIGN §3):
//! if it is gone, unsubscribed, or `exit_when` holds, the enrollment exits and nothing more is
//! sent. An email step calls SendEmail with the idempotency key `{enrollment id}:{step index}`,
//! then advances the enrollment in one transaction with its activity. A wait step sets the next
//! run to now + duration and releases the claim.
//!
//! Dying half-way: after SendEmail but before the advance commits, the lease runs out and the
//! step runs again; the mailer answers the message it already made for that key, so no email is
//! sent twice. A claim that was lost (lease expired, another scheduler advanced it) is detected
//! by the advance's `current_step` guard, which then changes nothing.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use meisa_conditions::evaluate;
use meisa_proto::mailer as mpb;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Wakers, backoff, chrono, fire::record_exits};
use crate::{
    clients::{Contacts, Found, Mailer, message_accepted, message_status_name},
    domain::{Step, event::state_from_contact},
    error::{Error, Result},
    store::{
        Store,
        activity::{self, Entry, Kind},
        definitions,
        enrollments::{self, Enrollment},
    },
};

pub struct Scheduler {
    pub store: Store,
    pub contacts: Contacts,
    pub mailer: Mailer,
    pub lease: Duration,
    pub poll: Duration,
    pub wakers: Wakers,
}

/// Runs up to `concurrency` enrollments at once until `shutdown`, then finishes those in hand.
pub async fn run(s: Arc<Scheduler>, concurrency: usize, shutdown: CancellationToken) {
    let claimer = s.clone();
    super::dispatch(
        concurrency,
        s.poll,
        s.wakers.scheduler.clone(),
        shutdown,
        "due enrollments",
        move |n| {
            let s = claimer.clone();
            async move { enrollments::claim_due(&s.store.pool, n, s.lease).await }
        },
        move |e: Enrollment| {
            let s = s.clone();
            async move {
                let span = tracing::info_span!("enrollment", enrollment = %e.id, sequence = %e.sequence_id, step = e.current_step);
                meisa_runtime::telemetry::set_parent_from_traceparent(&span, &e.traceparent);
                if let Err(err) = steps(&s, &e).instrument(span).await {
                    let at = Utc::now() + chrono(backoff(e.attempts + 1));
                    if err.is_transient() {
                        tracing::warn!(enrollment = %e.id, error = %err, retry_at = %at, "step failed; retrying later");
                    } else {
                        tracing::error!(enrollment = %e.id, error = %err, retry_at = %at, "step failed; retrying later");
                    }
                    if let Err(db) = enrollments::release(&s.store.pool, &e.workspace_id, &e.id, Some(at)).await {
                        tracing::warn!(enrollment = %e.id, error = %db, "could not release the enrollment; its lease will");
                    }
                }
            }
        },
    )
    .await;
}

async fn end(s: &Scheduler, e: &Enrollment, reason: &str) -> Result<()> {
    metrics::counter!("meisa_automations_enrollments_exited_total", "reason" => reason.to_string())
        .increment(1);
    let mut tx = s.store.pool.begin().await?;
    if let Some(ended) = enrollments::exit_one(&mut tx, &e.workspace_id, &e.id, reason).await? {
        record_exits(
            &mut tx,
            &e.workspace_id,
            e.contact_id.as_deref(),
            &[ended],
            reason,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(enrollment = %e.id, reason, "enrollment exited");
    Ok(())
}

fn completed(e: &Enrollment, contact_id: &str, step: u32) -> Entry {
    let mut entry = Entry::new(&e.workspace_id, contact_id, Kind::Completed)
        .automation(e.automation_id.as_deref(), None)
        .enrollment(&e.sequence_id, &e.id);
    entry.step_index = Some(step);
    entry
}

/// Runs steps from the enrollment's current one until it waits, ends, or loses its claim.
async fn steps(s: &Scheduler, e: &Enrollment) -> Result<()> {
    let ws = e.workspace_id.as_str();
    let sequence = {
        let mut conn = s.store.pool.acquire().await?;
        definitions::get::<definitions::SequenceRow>(&mut conn, ws, &e.sequence_id).await?
    };
    let Some(sequence) = sequence else {
        return end(s, e, "sequence_deleted").await;
    };
    let Some(contact_id) = e.contact_id.as_deref() else {
        return end(s, e, "contact_deleted").await;
    };
    let steps = &sequence.def.steps;
    let mut step = e.current_step;
    loop {
        // Past the last step (a step index that did not fit a usize would be past it too).
        let at = usize::try_from(step).ok();
        let Some((index, current)) = at.and_then(|i| Some((i, steps.get(i)?))) else {
            let mut tx = s.store.pool.begin().await?;
            if enrollments::complete(&mut tx, ws, &e.id).await? {
                activity::record(&mut tx, &completed(e, contact_id, step)).await?;
            }
            tx.commit().await?;
            return Ok(());
        };
        let contact = match s
            .contacts
            .get(ws, contact_id)
            .await
            .map_err(Error::Contacts)?
        {
            Found::Gone => return end(s, e, "contact_deleted").await,
            Found::Contact(c) => *c,
        };
        if !contact.subscribed {
            return end(s, e, "unsubscribed").await;
        }
        let state = state_from_contact(&contact)?;
        if sequence
            .def
            .exit_when
            .as_ref()
            .is_some_and(|c| evaluate(c, &state, Utc::now()))
        {
            return end(s, e, "exit_when").await;
        }
        let base = || {
            Entry::new(ws, contact_id, Kind::StepDone)
                .automation(e.automation_id.as_deref(), e.event_id.as_deref())
                .enrollment(&e.sequence_id, &e.id)
                .step(step, current.type_name())
        };
        match current {
            Step::Wait(d) => {
                let until = Utc::now() + d.to_chrono();
                let mut tx = s.store.pool.begin().await?;
                if enrollments::advance(&mut tx, ws, &e.id, step, until, true).await? {
                    activity::record(
                        &mut tx,
                        &base().detail(format!("until {}", until.to_rfc3339())),
                    )
                    .await?;
                }
                tx.commit().await?;
                return Ok(());
            }
            Step::Email { template_id } => {
                let sent = s
                    .mailer
                    .send(mpb::SendEmailRequest {
                        workspace_id: ws.into(),
                        idempotency_key: format!("{}:{step}", e.id),
                        contact: Some(contact),
                        template_id: template_id.clone(),
                        source: Some(mpb::MessageSource {
                            automation_id: e.automation_id.clone().unwrap_or_default(),
                            sequence_id: e.sequence_id.clone(),
                            step: Some(step),
                            enrollment_id: e.id.clone(),
                            event_id: e.event_id.clone().unwrap_or_default(),
                        }),
                    })
                    .await;
                let outcome = match &sent {
                    Ok(m) => message_status_name(m.status),
                    Err(_) => "error",
                };
                metrics::counter!("meisa_automations_email_steps_total", "outcome" => outcome)
                    .increment(1);
                let entry = match sent {
                    Ok(m) => base()
                        .email(&m.id, message_accepted(m.status))
                        .detail(message_status_name(m.status)),
                    Err(st) if crate::error::status_transient(&st) => {
                        return Err(Error::Mailer(st));
                    }
                    // A deleted template: the step cannot be sent; record it and go on.
                    Err(st) => {
                        let mut entry = base()
                            .detail(format!("the mailer refused the email: {}", st.message()));
                        entry.kind = Kind::StepFailed;
                        entry
                    }
                };
                // After the last email the enrollment completes in the same transaction.
                let last = index + 1 >= steps.len();
                let mut tx = s.store.pool.begin().await?;
                let advanced =
                    enrollments::advance(&mut tx, ws, &e.id, step, Utc::now(), false).await?;
                if advanced {
                    let mut log = vec![entry];
                    if last && enrollments::complete(&mut tx, ws, &e.id).await? {
                        log.push(completed(e, contact_id, step + 1));
                    }
                    activity::record_all(&mut tx, &log).await?;
                }
                tx.commit().await?;
                if !advanced || last {
                    return Ok(());
                }
                step += 1;
            }
        }
    }
}
