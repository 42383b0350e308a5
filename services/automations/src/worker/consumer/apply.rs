//! Applying changes: a run of entries of one shard in one transaction. The transaction locks the
//! shard's row in `consumer_shards` (so runs of one shard apply one at a time, in seq order,
//! whichever process holds them), applies each entry whose seq follows the last one applied,
//! records its event id in `processed_events` with its effects, and moves the shard's last seq.
//! Under load a run shares one commit and one shard lock among many entries; a single entry is a
//! run of one, through the same code.
//!
//! An entry that cannot be applied whatever the retries (it does not decode, it is not a valid
//! change, it was delivered too many times) is written to `dead_letters` in the run, in its place
//! in the order, and the shard moves on.
//!
//! Dying before the commit leaves every entry of the run pending: nothing of it was written.

use std::ops::RangeInclusive;

use chrono::Utc;
use meisa_proto::events::ContactChanged;
use meisa_stream::{DeadLetterPolicy, Entry, Verdict};
use prost::Message;
use sqlx::PgConnection;
use tracing::Instrument;

use super::Consumer;
use crate::{
    domain::EventView,
    error::Result,
    store::consumer::{self as cstore, DeadLetter, Processed},
    worker::{Wake, process},
};

/// At most this many entries share a transaction: the first of them waits for the last.
pub(super) const MAX_RUN: usize = 32;

/// One entry on its way into a run, decoded and turned into an [`EventView`] once.
// Nearly every item is an `Apply`: boxing it would cost an allocation per change for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Item {
    Apply {
        seq: u64,
        view: EventView,
        /// Replayed from the contacts service rather than read from the stream.
        replayed: bool,
    },
    DeadLetter(Rejected),
}

/// Why and what is given up on, as the dead letter records it.
pub(super) struct Rejected {
    seq: Option<u64>,
    stream_id: Option<String>,
    event_id: Option<String>,
    payload: Option<Vec<u8>>,
    deliveries: usize,
    reason: String,
}

impl Item {
    /// A stream entry delivered `deliveries` times: applied, or dead-lettered when the policy
    /// gives up on it or its event is not a change this service can read.
    pub(super) fn from_entry(entry: Entry, deliveries: usize, policy: &DeadLetterPolicy) -> Self {
        let verdict = policy.judge(&entry, deliveries);
        let stream_id = Some(entry.id);
        let change = match entry.body {
            Ok(change) => change,
            Err(u) => {
                return Item::DeadLetter(Rejected {
                    seq: None,
                    stream_id,
                    event_id: None,
                    payload: u.raw,
                    deliveries,
                    reason: u.reason,
                });
            }
        };
        let seq = change.seq;
        let reject = |event: &ContactChanged, reason: String| {
            Item::DeadLetter(Rejected {
                seq: Some(seq),
                stream_id: stream_id.clone(),
                event_id: Some(event.event_id.clone()).filter(|id| !id.is_empty()),
                // Encoded again only here, for the record: the apply path never re-encodes.
                payload: Some(event.encode_to_vec()),
                deliveries,
                reason,
            })
        };
        if let Verdict::DeadLetter(reason) = verdict {
            return reject(&change.event, reason);
        }
        match EventView::from_proto(change.event) {
            Ok(view) => Item::Apply {
                seq,
                view,
                replayed: false,
            },
            Err(e) => reject(&e.event, e.to_string()),
        }
    }

    /// An event the contacts service replayed (its `seq` is set).
    pub(super) fn replayed(event: ContactChanged) -> Self {
        let seq = event.seq;
        match EventView::from_proto(event) {
            Ok(view) => Item::Apply {
                seq,
                view,
                replayed: true,
            },
            Err(e) => Item::DeadLetter(Rejected {
                seq: Some(seq),
                stream_id: None,
                event_id: Some(e.event.event_id.clone()).filter(|id| !id.is_empty()),
                payload: Some(e.event.encode_to_vec()),
                deliveries: 0,
                reason: e.to_string(),
            }),
        }
    }

    pub(super) fn seq(&self) -> Option<u64> {
        match self {
            Item::Apply { seq, .. } => Some(*seq),
            Item::DeadLetter(r) => r.seq,
        }
    }
}

/// What a run did: how many leading items are finished (applied, skipped as already applied, or
/// dead-lettered) and may be acknowledged, what to wake, and the gap the run stopped at.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub done: usize,
    pub wake: Wake,
    pub gap: Option<RangeInclusive<u64>>,
}

/// Applies the leading items of `items` that follow the shard's last seq, in one transaction.
/// At a jump in seq the run stops and reports the gap when `fill_gaps` (the caller replays it and
/// comes back); otherwise the missing seqs are recorded as lost and the run goes on (replayed
/// events: the contacts service has nothing more to give for them).
pub(super) async fn run(
    c: &Consumer,
    shard: u32,
    items: &[Item],
    fill_gaps: bool,
) -> Result<Outcome> {
    let group = c.cfg.group.as_str();
    let mut tx = c.store.pool.begin().await?;
    let start = cstore::lock_shard(&mut tx, group, shard).await?;
    let mut last = start;
    let mut out = Outcome::default();
    let mut dead = Vec::new();
    for item in items {
        let (seq, view, replayed) = match item {
            Item::DeadLetter(r) => {
                dead_letter(&mut tx, group, shard, r).await?;
                // In its place in the order: the shard moves on past it.
                if let Some(seq) = r.seq.filter(|s| last.is_none_or(|l| *s == l + 1)) {
                    last = Some(seq);
                }
                dead.push(r);
                out.done += 1;
                continue;
            }
            Item::Apply {
                seq,
                view,
                replayed,
            } => (*seq, view, *replayed),
        };
        match last {
            Some(l) if seq <= l => {
                tracing::debug!(shard, seq, event = %view.event_id, "seq already applied; skipping");
                out.done += 1;
                continue;
            }
            Some(l) if seq > l + 1 => {
                if fill_gaps {
                    out.gap = Some(l + 1..=seq - 1);
                    break;
                }
                record_lost(&mut tx, group, shard, l + 1..=seq - 1).await?;
            }
            _ => {}
        }
        let span = tracing::info_span!("change", event_id = %view.event_id, shard, seq, replayed);
        meisa_runtime::telemetry::set_parent_from_traceparent(&span, &view.traceparent);
        let wake = apply_one(&mut tx, shard, seq, view)
            .instrument(span)
            .await?;
        out.wake.merge(wake);
        last = Some(seq);
        out.done += 1;
    }
    if let Some(l) = last.filter(|l| Some(*l) != start) {
        cstore::set_last_seq(&mut tx, group, shard, l).await?;
    }
    tx.commit().await?;
    for r in dead {
        metrics::counter!("meisa_automations_dead_letters_total").increment(1);
        tracing::error!(
            event_id = r.event_id.as_deref().unwrap_or("?"),
            shard,
            seq = r.seq,
            stream_id = r.stream_id.as_deref(),
            deliveries = r.deliveries,
            reason = %r.reason,
            "change moved to the dead letters"
        );
    }
    Ok(out)
}

/// The event id recorded with the effects: a duplicate (a redelivery, a replayed event, an
/// XADDed copy) finds it and does nothing.
async fn apply_one(
    conn: &mut PgConnection,
    shard: u32,
    seq: u64,
    view: &EventView,
) -> Result<Wake> {
    let fresh = cstore::mark_processed(
        conn,
        &Processed {
            event_id: &view.event_id,
            shard,
            seq,
            depth: view.depth,
            cause_automation_id: view.cause_automation_id.as_deref(),
            cause_event_id: view.cause_event_id.as_deref(),
            dead: false,
        },
    )
    .await?;
    let outcome = if fresh { "applied" } else { "duplicate" };
    metrics::counter!("meisa_automations_events_total", "outcome" => outcome).increment(1);
    if !fresh {
        tracing::debug!(event = %view.event_id, "event already processed; skipping");
        return Ok(Wake::default());
    }
    process::apply(conn, view, Utc::now()).await
}

async fn dead_letter(conn: &mut PgConnection, group: &str, shard: u32, r: &Rejected) -> Result<()> {
    cstore::dead_letter(
        conn,
        &DeadLetter {
            group,
            shard,
            seq: r.seq,
            stream_id: r.stream_id.as_deref(),
            event_id: r.event_id.as_deref(),
            payload: r.payload.as_deref(),
            deliveries: r.deliveries,
            error: &r.reason,
        },
    )
    .await?;
    if let (Some(event_id), Some(seq)) = (r.event_id.as_deref(), r.seq) {
        // Recorded as processed (dead), so a replay of the same event skips it too.
        cstore::mark_processed(
            conn,
            &Processed {
                event_id,
                shard,
                seq,
                depth: 0,
                cause_automation_id: None,
                cause_event_id: None,
                dead: true,
            },
        )
        .await?;
    }
    Ok(())
}

/// Seqs the stream lost and the contacts service can no longer replay (past its retention).
pub(super) async fn record_lost(
    conn: &mut PgConnection,
    group: &str,
    shard: u32,
    seqs: RangeInclusive<u64>,
) -> Result<()> {
    let (from, to) = (*seqs.start(), *seqs.end());
    let reason = format!("seq {from}..={to} missing from the stream and from ReplayChanges");
    metrics::counter!("meisa_automations_dead_letters_total").increment(1);
    tracing::error!(shard, from, to, "{reason}; those changes trigger nothing");
    cstore::dead_letter(
        conn,
        &DeadLetter {
            group,
            shard,
            seq: Some(from),
            stream_id: None,
            event_id: None,
            payload: None,
            deliveries: 0,
            error: &reason,
        },
    )
    .await?;
    Ok(())
}
