//! Clock-driven conditions (`older_than`, `within`) of condition_met automations: they can become
//! true with no change to the contact, so no event announces it. The consumer keeps a projection
//! row per (automation, contact) with what the condition reads, its last value and
//! `next_check_at = next_flip(condition, state, now)`; this sweep reads only the rows that are
//! due, through the partial index on `next_check_at`, so its cost follows the contacts that can
//! flip, not the contact table.
//!
//! Each batch is one transaction: rows are locked (`SKIP LOCKED`: another replica or an event
//! holding a row leaves it for next time), re-evaluated, fired when they went from false to true
//! (the firing recorded in the same transaction under the synthetic event id
//! `sweep:{automation}:{contact}:{flip instant}`, so a retried batch fires nothing twice), and
//! given their next check. A process that dies mid-batch leaves the rows due; they are swept
//! again.
//!
//! The sweep wakes at the earliest `next_check_at` (or after MEISA_SWEEP_INTERVAL at most), so a
//! condition fires close to the instant it becomes true.
//!
//! Automations enabled after their contacts exist get their projections from a backfill: a
//! resumable task that pages through the contacts service's ListContacts and writes a row per
//! contact (never over a row an event wrote with the same or a newer version). Contacts whose
//! condition is already true when the automation is enabled are recorded as true and do not fire;
//! the automation fires for those who become true afterwards.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{SecondsFormat, Utc};
use meisa_conditions::{evaluate, next_flip};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    Wakers,
    fire::{Wake, fire},
};
use crate::{
    clients::Contacts,
    domain::event::{snapshot, state_from_contact, state_from_snapshot},
    error::{Error, Result},
    store::{
        Store, consumer,
        definitions::{self, AutomationRow},
        projections::{self, Projection},
    },
};

const BATCH: i64 = 200;
const BACKFILL_PAGE: u32 = 500;

pub struct Sweeper {
    pub store: Store,
    pub contacts: Contacts,
    pub interval: Duration,
    pub lease: Duration,
    pub processed_retention: Duration,
    pub wakers: Wakers,
}

pub async fn run(s: Arc<Sweeper>, shutdown: CancellationToken) {
    let mut last_prune: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        let mut busy = false;
        match sweep(&s).await {
            Ok(n) => busy |= n as i64 >= BATCH,
            Err(e) => tracing::warn!(error = %e, "sweep failed; retrying"),
        }
        match backfill(&s, &shutdown).await {
            Ok(more) => busy |= more,
            Err(e) => tracing::warn!(error = %e, "backfill failed; it resumes from its cursor"),
        }
        if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            match consumer::prune_processed(&s.store.pool, s.processed_retention).await {
                Ok(n) if n > 0 => {
                    tracing::info!(pruned = n, "pruned processed event ids past retention")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning processed events failed"),
            }
            last_prune = Some(Instant::now());
        }
        if busy {
            continue;
        }
        let wait = match projections::next_due(&s.store.pool).await {
            Ok(Some(t)) => (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), s.interval),
            _ => s.interval,
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            // A new projection may be due earlier than planned.
            _ = s.wakers.sweep.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One batch of due rows; returns how many were checked.
async fn sweep(s: &Sweeper) -> Result<usize> {
    let mut tx = s.store.pool.begin().await?;
    let due = projections::claim_due(&mut tx, BATCH).await?;
    if due.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let now = Utc::now();
    let mut cache: Vec<((String, String), Option<AutomationRow>)> = Vec::new();
    let mut wake = Wake::default();
    for d in &due {
        let key = (d.workspace_id.clone(), d.automation_id.clone());
        let a = match cache.iter().find(|(k, _)| *k == key) {
            Some((_, a)) => a.clone(),
            None => {
                let a =
                    definitions::get::<AutomationRow>(&mut tx, &d.workspace_id, &d.automation_id)
                        .await?;
                cache.push((key, a.clone()));
                a
            }
        };
        let Some((a, cond)) = a
            .as_ref()
            .filter(|a| a.def.enabled && a.time_dependent)
            .and_then(|a| a.def.conditions.as_ref().map(|c| (a, c)))
        else {
            // Disabled or changed since: nothing to watch for under this row.
            projections::set_checked(&mut tx, d, d.last_value, None).await?;
            continue;
        };
        let state = state_from_snapshot(&d.state);
        let is = evaluate(cond, &state, now);
        if is && !d.last_value {
            let event_id = format!(
                "sweep:{}:{}:{}",
                a.id,
                d.contact_id,
                d.next_check_at.to_rfc3339_opts(SecondsFormat::Micros, true)
            );
            let span = tracing::info_span!("sweep", automation = %a.id, contact = %d.contact_id);
            metrics::counter!("meisa_automations_sweep_flips_total").increment(1);
            if let Some(w) = fire(&mut tx, a, &d.contact_id, &event_id, 0, now)
                .instrument(span)
                .await?
            {
                wake.merge(w);
            }
        }
        projections::set_checked(&mut tx, d, is, next_flip(cond, &state, now)).await?;
    }
    tx.commit().await?;
    s.wakers.wake(wake);
    Ok(due.len())
}

/// Backfills projections for one automation, a page at a time; returns whether more is pending.
async fn backfill(s: &Sweeper, shutdown: &CancellationToken) -> Result<bool> {
    let Some(mut b) = definitions::claim_backfill(&s.store.pool, s.lease).await? else {
        return Ok(false);
    };
    let Some(cond) = b
        .def
        .conditions
        .clone()
        .filter(|_| b.def.is_time_dependent())
    else {
        let mut tx = s.store.pool.begin().await?;
        definitions::save_backfill(&mut tx, &b, "", s.lease).await?;
        tx.commit().await?;
        return Ok(true);
    };
    let fields = cond.fields();
    tracing::info!(automation = %b.id, "backfilling projections from the contacts service");
    while !shutdown.is_cancelled() {
        let (contacts, next) = s
            .contacts
            .list(&b.workspace_id, &b.cursor, BACKFILL_PAGE)
            .await
            .map_err(Error::Contacts)?;
        let now = Utc::now();
        let rows = contacts
            .iter()
            .map(|c| {
                let state = state_from_contact(c)?;
                Ok(Projection {
                    workspace_id: &b.workspace_id,
                    automation_id: &b.id,
                    contact_id: &c.id,
                    state: snapshot(&state, &fields),
                    version: c.version,
                    last_value: evaluate(&cond, &state, now),
                    next_check_at: next_flip(&cond, &state, now),
                })
            })
            .collect::<Result<Vec<Projection<'_>>>>()?;
        let mut tx = s.store.pool.begin().await?;
        // Progress first: it locks the automation row, so an edit in between stops this backfill.
        if !definitions::save_backfill(&mut tx, &b, &next, s.lease).await? {
            tx.rollback().await?;
            return Ok(true);
        }
        projections::backfill(&mut tx, &rows).await?;
        tx.commit().await?;
        if rows.iter().any(|r| r.next_check_at.is_some()) {
            s.wakers.sweep.notify_one();
        }
        if next.is_empty() {
            tracing::info!(automation = %b.id, "backfill done");
            return Ok(true);
        }
        b.cursor = next;
    }
    Ok(true)
}
