//! Handling entries in seq order: runs of entries in one transaction with the shard's position,
//! erasures, dead letters, and the replay of a gap from the contacts service.

use meisa_runtime::db::Corrupt;
use std::{future::Future, time::Duration};

use meisa_proto::events::ContactChanged;
use meisa_stream::{DeadLetterPolicy, Entry, Verdict};
use prost::Message;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

use super::Consumer;
use crate::{
    domain::{change::Effect, ids::MessageId},
    error::{Error, Result, stored},
    store::changes::{self as cstore, DeadLetter},
    transport::eml_path,
};

/// Why a batch was not handled to its end.
pub(super) enum Failure {
    /// Told to stop while a dependency was down: the rest stays pending.
    Stopped,
    /// A failure that a retry in place would repeat: the rest is delivered again.
    Failed(Error),
}

pub(super) struct Handled {
    /// How many leading entries are done (handled, skipped or dead-lettered): to acknowledge.
    pub done: usize,
    pub failure: Option<Failure>,
}

/// One change to handle at its seq: applied, or (`dead`) recorded as given up on.
#[derive(Clone)]
struct Work<'a> {
    seq: u64,
    event: &'a ContactChanged,
    dead: Option<String>,
    deliveries: usize,
    /// `None` for a replayed event, which never was on the stream.
    stream_id: Option<&'a str>,
}

/// What a gap means to a run.
#[derive(Clone, Copy)]
enum Gaps {
    /// Stop there, so the caller replays it (entries from the stream).
    Replay,
    /// Record the missing seqs as lost (a replay, which is all contacts still has).
    Lost,
}

enum Progress {
    Done,
    Gap { done: usize, from: u64, to: u64 },
}

/// Handles `entries` (one shard's, in stream order) and says how far it got. `deliveries[i]` is
/// how often entry `i` was delivered.
pub(super) async fn handle(
    c: &Consumer,
    shard: u32,
    entries: &[Entry],
    deliveries: &[usize],
    stop: &CancellationToken,
) -> Handled {
    let policy = DeadLetterPolicy {
        max_deliveries: c.cfg.max_deliveries,
    };
    let stream = c.stream(shard);
    let mut done = 0;
    while done < entries.len() {
        // The decodable entries from `done` on form one run; an undecodable one ends it.
        let mut works = Vec::new();
        for (entry, &n) in entries[done..].iter().zip(&deliveries[done..]) {
            let Ok(change) = &entry.body else { break };
            // Positions are bigints: a seq beyond them cannot be stored, so it cannot be applied.
            let Ok(_) = i64::try_from(change.seq) else {
                break;
            };
            works.push(Work {
                seq: change.seq,
                event: &change.event,
                dead: match policy.judge(entry, n) {
                    Verdict::Apply => None,
                    Verdict::DeadLetter(reason) => Some(reason),
                },
                deliveries: n,
                stream_id: Some(&entry.id),
            });
        }
        if !works.is_empty() {
            if let Err(f) = in_order(c, &stream, shard, &works, stop).await {
                return Handled {
                    done,
                    failure: Some(f),
                };
            }
            done += works.len();
            continue;
        }
        let (entry, n) = (&entries[done], deliveries[done]);
        if let Err(f) = retrying(stop, || undecodable(c, &stream, entry, n)).await {
            return Handled {
                done,
                failure: Some(f),
            };
        }
        done += 1;
    }
    Handled {
        done,
        failure: None,
    }
}

/// Applies `works` in order, replaying the gaps before them.
async fn in_order(
    c: &Consumer,
    stream: &str,
    shard: u32,
    works: &[Work<'_>],
    stop: &CancellationToken,
) -> Result<(), Failure> {
    let mut rest = works;
    // Each replay moves the position past its gap, so every pass gets further; the bound only
    // guards against a position that moves backwards under us.
    for _ in 0..=works.len() {
        match retrying(stop, || run(c, stream, rest, Gaps::Replay)).await? {
            Progress::Done => return Ok(()),
            Progress::Gap { done, from, to } => {
                replay(c, stream, shard, from, to, stop).await?;
                rest = &rest[done..];
            }
        }
    }
    Err(Failure::Failed(Error::Corrupt(Corrupt::new(
        "stream position",
        format!("{stream} did not move past its gaps"),
    ))))
}

/// One transaction: locks the position, handles each work above it, moves the position.
async fn run(c: &Consumer, stream: &str, works: &[Work<'_>], gaps: Gaps) -> Result<Progress> {
    let mut tx = c.mailer.store.pool().begin().await?;
    let start = cstore::lock_position(&mut tx, stream)
        .await?
        .map(|s| stored::<i64, u64>("stream position", s))
        .transpose()?;
    let mut last = start;
    let mut progress = Progress::Done;
    for (i, w) in works.iter().enumerate() {
        if let Some(l) = last {
            if w.seq <= l {
                // Handled before: a redelivery, or a replay got there first.
                continue;
            }
            if w.seq > l + 1 {
                match gaps {
                    Gaps::Replay => {
                        progress = Progress::Gap {
                            done: i,
                            from: l + 1,
                            to: w.seq - 1,
                        };
                        break;
                    }
                    Gaps::Lost => lost(&mut tx, stream, l + 1, w.seq - 1).await?,
                }
            }
        }
        apply(&mut tx, c, stream, w).await?;
        last = Some(w.seq);
    }
    if let Some(l) = last.filter(|l| Some(*l) != start) {
        cstore::set_position(&mut tx, stream, seq_column(l)?).await?;
    }
    tx.commit().await?;
    Ok(progress)
}

async fn apply(tx: &mut PgConnection, c: &Consumer, stream: &str, w: &Work<'_>) -> Result<()> {
    let given_up = match (&w.dead, Effect::of(w.event)) {
        (Some(reason), _) => reason.clone(),
        (None, Err(e)) => e.to_string(),
        (None, Ok(Effect::Nothing)) => return Ok(()),
        (
            None,
            Ok(Effect::Erase {
                workspace_id,
                contact_id,
            }),
        ) => return erase(tx, c, workspace_id, contact_id).await,
    };
    let payload = w.event.encode_to_vec();
    cstore::dead_letter(
        tx,
        &DeadLetter {
            stream,
            seq: Some(seq_column(w.seq)?),
            stream_id: w.stream_id,
            event_id: Some(&w.event.event_id),
            payload: Some(&payload),
            deliveries: count(w.deliveries),
            error: &given_up,
            ..Default::default()
        },
    )
    .await?;
    tracing::error!(stream, seq = w.seq, event_id = %w.event.event_id, deliveries = w.deliveries, reason = %given_up, "change moved to the dead letters");
    Ok(())
}

/// Deletes the contact's rows, then its `.eml` files, before the transaction commits: a process
/// that dies in between leaves the rows, and the redelivered entry erases again.
async fn erase(tx: &mut PgConnection, c: &Consumer, ws: &str, contact_id: &str) -> Result<()> {
    let ids = cstore::erase_contact(tx, ws, contact_id).await?;
    if let Some(dir) = &c.mailer.eml_dir {
        for id in &ids {
            let path = eml_path(dir, MessageId::from_uuid(*id));
            match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Eml { path, source: e });
                }
                _ => {}
            }
        }
    }
    tracing::info!(workspace_id = %ws, contact_id = %contact_id, messages = ids.len(), "contact erased");
    Ok(())
}

/// A dead letter for an entry that cannot be read. The position stays below it: the entry's seq
/// shows up as a gap at the next entry and is replayed from contacts, so a deletion is not
/// skipped because its copy on the stream was damaged. (Before anything was handled on the
/// shard, its stream id, `{seq}-0`, sets the position just below it, as a first entry would.)
async fn undecodable(c: &Consumer, stream: &str, entry: &Entry, deliveries: usize) -> Result<()> {
    let (reason, raw) = match &entry.body {
        Err(u) => (u.reason.clone(), u.raw.as_deref()),
        Ok(change) => (format!("seq {} is out of range", change.seq), None),
    };
    let mut tx = c.mailer.store.pool().begin().await?;
    if cstore::lock_position(&mut tx, stream).await?.is_none()
        && let Some(seq) = published_seq(&entry.id)
    {
        cstore::set_position(&mut tx, stream, seq - 1).await?;
    }
    cstore::dead_letter(
        &mut tx,
        &DeadLetter {
            stream,
            stream_id: Some(&entry.id),
            payload: raw,
            deliveries: count(deliveries),
            error: &reason,
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    tracing::error!(stream, stream_id = %entry.id, %reason, "undecodable change moved to the dead letters; its seq is replayed from contacts once the next entry shows the gap");
    Ok(())
}

/// The seq an entry was published at, from its stream id (`{seq}-0`, see `meisa_stream`).
fn published_seq(stream_id: &str) -> Option<i64> {
    let seq: i64 = stream_id.strip_suffix("-0")?.parse().ok()?;
    (seq >= 1).then_some(seq)
}

/// Seqs neither the stream nor contacts has: nothing can be done for them here but say so.
async fn lost(tx: &mut PgConnection, stream: &str, from: u64, to: u64) -> Result<()> {
    let reason = format!("seq {from}..={to} missing from the stream and from ReplayChanges");
    cstore::dead_letter(
        tx,
        &DeadLetter {
            stream,
            seq: Some(seq_column(from)?),
            seq_to: Some(seq_column(to)?),
            error: &reason,
            ..Default::default()
        },
    )
    .await?;
    tracing::error!(
        stream,
        from,
        to,
        "{reason}: a deletion among them leaves its messages here"
    );
    Ok(())
}

/// Handles `from ..= to` from the contacts service, page by page, each page committed with its
/// position.
async fn replay(
    c: &Consumer,
    stream: &str,
    shard: u32,
    from: u64,
    to: u64,
    stop: &CancellationToken,
) -> Result<(), Failure> {
    tracing::warn!(
        stream,
        from,
        to,
        "gap in the change stream; replaying it from the contacts service"
    );
    let mut next = from;
    while next <= to {
        let contacts = &c.mailer.contacts;
        let page = retrying(stop, || async move {
            contacts
                .replay(shard, next, to)
                .await
                .map_err(Error::Contacts)
        })
        .await?;
        let works: Vec<Work> = page
            .iter()
            .filter(|e| (next..=to).contains(&e.seq))
            .map(|e| Work {
                seq: e.seq,
                event: e,
                dead: None,
                deliveries: 0,
                stream_id: None,
            })
            .collect();
        let Some(last) = works.last().map(|w| w.seq) else {
            retrying(stop, || lost_tail(c, stream, next, to)).await?;
            break;
        };
        replayed(c, stream, &works, stop).await?;
        next = last + 1;
    }
    Ok(())
}

/// Applies a page of replayed events. One that fails however often it is retried would stop
/// the shard for good (every later entry shows the same gap), so it is found by applying the
/// page one by one and given up on.
async fn replayed(
    c: &Consumer,
    stream: &str,
    works: &[Work<'_>],
    stop: &CancellationToken,
) -> Result<(), Failure> {
    match retrying(stop, || run(c, stream, works, Gaps::Lost)).await {
        Err(Failure::Failed(e)) => {
            tracing::warn!(stream, error = %e, "a replayed page failed; applying it one by one")
        }
        other => return other.map(|_| ()),
    }
    for w in works {
        let one = std::slice::from_ref(w);
        if let Err(Failure::Failed(e)) = retrying(stop, || run(c, stream, one, Gaps::Lost)).await {
            let dead = Work {
                dead: Some(format!("replayed and not applied: {e}")),
                ..w.clone()
            };
            retrying(stop, || {
                run(c, stream, std::slice::from_ref(&dead), Gaps::Lost)
            })
            .await?;
        }
    }
    Ok(())
}

/// Contacts has nothing left of `from ..= to`.
async fn lost_tail(c: &Consumer, stream: &str, from: u64, to: u64) -> Result<()> {
    let mut tx = c.mailer.store.pool().begin().await?;
    let position = cstore::lock_position(&mut tx, stream).await?;
    let to_column = seq_column(to)?;
    if position.is_none_or(|p| p < to_column) {
        lost(&mut tx, stream, from, to).await?;
        cstore::set_position(&mut tx, stream, to_column).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A delivery count for the record; past `i32::MAX` the exact number does not matter.
fn count(deliveries: usize) -> i32 {
    deliveries.min(i32::MAX as usize) as i32
}

fn seq_column(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| {
        Error::Corrupt(Corrupt::new(
            "stream seq",
            format!("{seq} does not fit a bigint"),
        ))
    })
}

/// Runs `attempt` until it succeeds or fails for good, waiting between transient failures; a
/// stop while waiting gives up.
async fn retrying<T, F, Fut>(stop: &CancellationToken, mut attempt: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?wait, "transient failure handling changes");
                tokio::select! {
                    _ = stop.cancelled() => return Err(Failure::Stopped),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(Failure::Failed(e)),
        }
    }
}
