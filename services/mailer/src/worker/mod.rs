//! Delivery workers (DESIGN §5): claim due messages from the queue table with
//! `FOR UPDATE SKIP LOCKED` under a lease, compose each with lettre, hand it to the transport,
//! and record the outcome right after the server's answer.
//!
//! # What happens if the process dies half-way
//!
//! * Before a message is handed over: its claim runs out after the lease and another worker (or
//!   this one, restarted) sends it. Nothing is lost; the attempt is not counted.
//! * After the server answered 250 to DATA and before `mark_sent` committed: the message *was*
//!   accepted but is still queued, so it is sent again after the lease. This window is the time
//!   of one `UPDATE … / DELETE` round trip (well under a millisecond to a few milliseconds) right
//!   after the 250: `mark_sent` is the very next thing a worker does, one statement, not batched.
//!   It cannot be closed with SMTP alone (there is no two-phase commit with a mail server), so
//!   delivery is **at least once** with that residual window. The stable `Message-ID` (derived from
//!   the message id) lets receiving systems recognise such a duplicate.
//! * A dot sent and the 250 lost (connection cut, timeout): also reported as a transient failure
//!   and retried — the same at-least-once trade-off, as every SMTP client makes it.
//!
//! * A message whose contact is erased while it is in flight: the erasure deletes the row and
//!   the `.eml` files already on disk; `mark_sent` then finds no row, and the worker removes the
//!   file it has just written. (Mail an SMTP server accepted cannot be taken back.)
//!
//! A claimed batch is worked through only while the lease still covers a full delivery
//! (`elapsed + smtp_timeout < lease`); otherwise the rest is released and claimed afresh, so a
//! slow batch can never outlive its lease and be picked up twice.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::ids::MessageId,
    error::stored,
    service::Mailer,
    store::Job,
    transport::{DeliveryError, Outgoing, Sender, Transport, compose, from_domain},
};

#[derive(Clone, Debug)]
pub struct DeliverySettings {
    pub workers: usize,
    /// How many queued messages a worker claims at once.
    pub batch_size: usize,
    /// How long a claim holds; a worker that dies releases its claims when it runs out.
    pub lease: Duration,
    /// Give up retrying a message this long after it was queued.
    pub retry_deadline: Duration,
    /// First retry delay; doubles each attempt (with jitter) up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Bound on one SMTP delivery (connect + transaction).
    pub smtp_timeout: Duration,
    /// How often idle workers look for due messages queued by other replicas or due retries.
    pub poll_interval: Duration,
}

/// Exponential backoff with jitter: the n-th retry (n ≥ 1) waits between half and all of
/// `base * 2^(n-1)`, capped at `max`, so that retries of many messages spread out.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let cap = exp.min(max);
    let half = cap / 2;
    let jitter = rand::rng().random_range(0.0..=1.0);
    half + half.mul_f64(jitter)
}

pub fn spawn(
    mailer: Arc<Mailer>,
    transport: Transport,
    settings: DeliverySettings,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut handles: Vec<JoinHandle<()>> = (0..settings.workers)
        .map(|_| {
            tokio::spawn(worker(
                mailer.clone(),
                Sender::new(transport.clone()),
                settings.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    handles.push(tokio::spawn(unsubscribe_sync(mailer, shutdown)));
    handles
}

async fn worker(
    mailer: Arc<Mailer>,
    mut sender: Sender,
    s: DeliverySettings,
    shutdown: CancellationToken,
) {
    let id = Uuid::new_v4();
    let store = mailer.store.clone();
    // Room for a delivery plus the outcome's write.
    let needed = s.smtp_timeout + Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        let jobs = match store.claim(id, s.batch_size as i64, s.lease).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "claiming deliveries failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(s.poll_interval) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
        };
        if jobs.is_empty() {
            tokio::select! {
                _ = mailer.wake.notified() => {}
                _ = tokio::time::sleep(s.poll_interval) => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        let claimed_at = Instant::now();
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            if shutdown.is_cancelled() || claimed_at.elapsed() + needed >= s.lease {
                let rest: Vec<Uuid> = std::iter::once(job.message_id)
                    .chain(jobs.by_ref().map(|j| j.message_id))
                    .collect();
                match store.release(id, &rest).await {
                    Ok(n) => tracing::debug!(released = n, "released claimed deliveries"),
                    Err(e) => {
                        tracing::warn!(error = %e, "releasing claims failed; they come back after the lease")
                    }
                }
                break;
            }
            deliver(&mailer, &mut sender, &job, &s).await;
        }
    }
    sender.close().await;
}

async fn deliver(mailer: &Mailer, sender: &mut Sender, job: &Job, s: &DeliverySettings) {
    let store = &mailer.store;
    let id = MessageId::from_uuid(job.message_id);
    let token = mailer.signer.sign(id);
    let url = mailer.unsubscribe_url(id);
    let composed = from_domain(&job.from_addr).and_then(|domain| {
        compose(&Outgoing {
            message_id_header: &job.message_id_header,
            from: &job.from_addr,
            reply_to: job.reply_to.as_deref(),
            to: &job.to_email,
            subject: &job.subject,
            html: &job.html_body,
            text: &job.text_body,
            unsubscribe_url: &url,
            unsubscribe_mailto: &format!("unsubscribe+{token}@{domain}"),
        })
    });
    let outcome = match composed {
        Ok((envelope, bytes)) => sender.send(id, &envelope, &bytes).await,
        Err(e) => Err(DeliveryError::Permanent {
            message: e.to_string(),
            recipient_rejected: false,
        }),
    };
    let recorded = match &outcome {
        Ok(()) => {
            // The window described in the module docs: nothing but this statement stands between
            // the 250 and the record. A failing write is retried briefly, because giving up here
            // means the message is sent again when the lease runs out.
            let mut result = store.mark_sent(&job.workspace_id, job.message_id).await;
            for wait in [50, 200, 1000] {
                if result.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(wait)).await;
                result = store.mark_sent(&job.workspace_id, job.message_id).await;
            }
            if let Ok(false) = result {
                // Erased while in flight (the erasure removed what was on disk before this was
                // written): take back what can be taken back.
                tracing::info!(message_id = %id, "message erased during its delivery");
                if let Err(e) = sender.discard(id).await {
                    tracing::error!(message_id = %id, error = %e, "cannot remove the .eml file of an erased message");
                }
            }
            result.map(|_| ())
        }
        Err(DeliveryError::Permanent {
            message,
            recipient_rejected,
        }) => {
            tracing::warn!(message_id = %id, error = %message, "delivery failed permanently");
            let suppress = recipient_rejected.then_some((job.to_email.as_str(), message.as_str()));
            store
                .mark_failed(&job.workspace_id, job.message_id, message, suppress)
                .await
        }
        Err(DeliveryError::Transient(message)) => {
            match stored::<_, u32>("message attempts", job.attempts) {
                Ok(before) => {
                    let attempts = before + 1;
                    let delay = backoff(attempts, s.retry_base, s.retry_max);
                    if gives_up(job.queued_at, s.retry_deadline, delay) {
                        let why = format!("gave up after {attempts} attempts: {message}");
                        tracing::warn!(message_id = %id, error = %why, "delivery failed");
                        store
                            .mark_failed(&job.workspace_id, job.message_id, &why, None)
                            .await
                    } else {
                        tracing::info!(message_id = %id, attempts, retry_in = ?delay, error = %message, "delivery deferred");
                        store
                            .retry_later(&job.workspace_id, job.message_id, delay, message)
                            .await
                    }
                }
                Err(e) => {
                    // No count to back off by: failing the message says so where retrying would hide it.
                    tracing::error!(message_id = %id, error = %e, "cannot schedule a retry");
                    store
                        .mark_failed(&job.workspace_id, job.message_id, &e.to_string(), None)
                        .await
                }
            }
        }
    };
    if let Err(e) = recorded {
        tracing::error!(message_id = %id, error = %e, outcome = ?outcome, "recording a delivery outcome failed; the message will be retried after its lease");
    }
}

/// Whether a retry `delay` from now falls past the deadline of a message queued at `queued_at`.
/// A deadline too far off for a date never arrives; a retry too far off for one is past it.
fn gives_up(queued_at: chrono::DateTime<chrono::Utc>, deadline: Duration, delay: Duration) -> bool {
    let at = |from: chrono::DateTime<chrono::Utc>, d: Duration| {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| from.checked_add_signed(d))
    };
    match (at(queued_at, deadline), at(chrono::Utc::now(), delay)) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(deadline), Some(next)) => next > deadline,
    }
}

/// Retries unsubscribes that contacts did not take yet (it was down, say).
async fn unsubscribe_sync(mailer: Arc<Mailer>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            _ = shutdown.cancelled() => return,
        }
        let pending = match mailer.store.pending_unsubscribes(50).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "reading pending unsubscribes failed");
                continue;
            }
        };
        for p in pending {
            if shutdown.is_cancelled() {
                return;
            }
            let _ = mailer
                .sync_unsubscribe(&p.workspace_id, &p.contact_id)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(100);
        for _ in 0..100 {
            let d1 = backoff(1, base, max);
            assert!(
                d1 >= Duration::from_secs(5) && d1 <= Duration::from_secs(10),
                "{d1:?}"
            );
            let d3 = backoff(3, base, max);
            assert!(
                d3 >= Duration::from_secs(20) && d3 <= Duration::from_secs(40),
                "{d3:?}"
            );
            let d30 = backoff(30, base, max);
            assert!(d30 >= Duration::from_secs(50) && d30 <= max, "{d30:?}");
        }
    }
}
