//! The change consumer (DESIGN §4): reads `{prefix}:changes:{shard}` with consumer group
//! `automations`, applies each event in one Postgres transaction with all its effects, then
//! acknowledges it.
//!
//! - Shards are leased (`shard_leases`): each shard is read by one process at a time, and the
//!   shards spread evenly over the live replicas (`consumers` heartbeats). That keeps per-contact
//!   order and makes a gap in `seq` meaningful.
//! - Correctness does not depend on the lease: every event's transaction locks the shard's row in
//!   `consumer_shards` and applies only `seq == last + 1` (older seqs are skipped, a jump is a gap),
//!   and records the event id in `processed_events`, so a duplicate (a redelivery, a replayed
//!   event, an XADDed copy) has no effect.
//! - Gaps (Redis lost entries): the missing range is replayed from the contacts service before
//!   the entry is applied. Seqs the contacts service no longer has are recorded as dead letters.
//! - XACK only after commit. A process that dies holding entries leaves them pending; the next
//!   reader of the shard claims them (XAUTOCLAIM) when it takes the shard, and periodically
//!   claims entries idle past MEISA_CONSUMER_CLAIM_IDLE. An entry that failed
//!   MEISA_CONSUMER_MAX_DELIVERIES deliveries (not counting transient failures, which are retried
//!   in place) goes to `dead_letters`, is logged at error level with its event id, and is acked.
//!
//! Dying half-way: before the commit nothing is written and the entry is pending (read again);
//! between commit and XACK the entry is read again and skipped (its seq is applied, its event id
//! recorded).

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use meisa_proto::events::ContactChanged;
use prost::Message;
use redis::{AsyncConnectionConfig, Value, aio::MultiplexedConnection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Wakers, fire::Wake, process};
use crate::{
    clients::Contacts,
    config::ConsumerConfig,
    domain::EventView,
    error::{Error, Result},
    store::{
        Store,
        consumer::{self as cstore, DeadLetter, Processed},
    },
};

pub struct Consumer {
    pub store: Store,
    pub redis: redis::Client,
    pub contacts: Contacts,
    pub prefix: String,
    pub shards: u32,
    pub cfg: ConsumerConfig,
    pub wakers: Wakers,
}

pub fn stream_key(prefix: &str, shard: u32) -> String {
    format!("{prefix}:changes:{shard}")
}

/// Runs until `shutdown`: leases shards, reads the ones it holds, and on shutdown stops reading,
/// finishes the batch in hand, and gives its shards back.
pub async fn run(c: Arc<Consumer>, shutdown: CancellationToken) {
    let (tx, mut rx) = watch::channel(BTreeSet::<u32>::new());
    let lease_stop = CancellationToken::new();
    let leases = tokio::spawn(lease_loop(c.clone(), tx, lease_stop.clone()));
    let mut readers: HashMap<u32, (CancellationToken, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    tracing::info!(consumer = %c.cfg.name, group = %c.cfg.group, shards = c.shards, "change consumer starting");
    loop {
        let owned = rx.borrow_and_update().clone();
        readers.retain(|shard, (stop, handle)| {
            let keep = owned.contains(shard) && !handle.is_finished();
            if !keep {
                stop.cancel();
            }
            keep
        });
        for shard in owned {
            if readers.contains_key(&shard) {
                continue;
            }
            let stop = shutdown.child_token();
            let handle = tokio::spawn(shard_loop(c.clone(), shard, stop.clone()));
            readers.insert(shard, (stop, handle));
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = rx.changed() => if changed.is_err() { break },
            // A reader that stopped on its own (it should not) is restarted.
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    for (_, (stop, handle)) in readers.drain() {
        stop.cancel();
        let _ = handle.await;
    }
    lease_stop.cancel();
    let _ = leases.await;
    tracing::info!("change consumer stopped");
}

async fn lease_loop(c: Arc<Consumer>, tx: watch::Sender<BTreeSet<u32>>, stop: CancellationToken) {
    let (group, me, lease) = (&c.cfg.group, &c.cfg.name, c.cfg.shard_lease);
    let every = lease / 3;
    let mut last_ok = Instant::now();
    let mut ensured = false;
    loop {
        let round = async {
            if !ensured {
                cstore::ensure_shards(&c.store.pool, group, c.shards).await?;
                ensured = true;
            }
            let live = cstore::heartbeat(&c.store.pool, group, me, lease)
                .await?
                .max(1);
            let fair =
                usize::try_from((i64::from(c.shards) + live - 1) / live).unwrap_or(usize::MAX);
            let mut owned = cstore::renew(&c.store.pool, group, me, lease).await?;
            owned.sort_unstable();
            if owned.len() > fair {
                let extra = owned.split_off(fair);
                cstore::release(&c.store.pool, group, me, Some(&extra)).await?;
                tracing::info!(shards = ?extra, "released shards to other replicas");
            } else if owned.len() < fair {
                let want = i64::try_from(fair - owned.len()).unwrap_or(0);
                let got = cstore::acquire(&c.store.pool, group, me, want, lease).await?;
                if !got.is_empty() {
                    tracing::info!(shards = ?got, "acquired shards");
                }
                owned.extend(got);
            }
            Ok::<_, sqlx::Error>(owned.into_iter().collect::<BTreeSet<u32>>())
        }
        .await;
        match round {
            Ok(owned) => {
                last_ok = Instant::now();
                tx.send_if_modified(|cur| {
                    let changed = *cur != owned;
                    *cur = owned;
                    changed
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "shard lease round failed");
                // Past the lease, others may hold our shards: stop reading them.
                if last_ok.elapsed() >= lease {
                    tx.send_if_modified(|cur| {
                        let changed = !cur.is_empty();
                        cur.clear();
                        changed
                    });
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if let Err(e) = cstore::release(&c.store.pool, group, me, None).await {
        tracing::warn!(error = %e, "could not release shard leases; they expire on their own");
    }
    let _ = cstore::forget_consumer(&c.store.pool, group, me).await;
}

async fn shard_loop(c: Arc<Consumer>, shard: u32, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        match read_shard(&c, shard, &stop).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(shard, error = %e, "shard reader failed; reconnecting");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::debug!(shard, "shard reader stopped");
}

/// One stream entry as read.
struct Entry {
    id: String,
    /// `None`: the entry was deleted from the stream while pending.
    fields: Option<HashMap<String, Vec<u8>>>,
}

async fn read_shard(c: &Consumer, shard: u32, stop: &CancellationToken) -> Result<()> {
    let key = stream_key(&c.prefix, shard);
    let (group, me) = (c.cfg.group.as_str(), c.cfg.name.as_str());
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(Some(c.cfg.block + Duration::from_secs(5)))
        .set_connection_timeout(Some(Duration::from_secs(3)));
    let mut conn = c
        .redis
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    create_group(&mut conn, &key, group).await?;
    // Whoever read this shard before is gone or gave it up: take its pending entries now, and
    // read this consumer's own pending entries before new ones.
    reclaim(&mut conn, &key, group, me, Duration::ZERO, c.cfg.batch).await?;
    let mut check_pending = true;
    let mut last_claim = Instant::now();
    let mut failures = 0u32;
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        if last_claim.elapsed() >= c.cfg.claim_idle / 2 {
            if reclaim(&mut conn, &key, group, me, c.cfg.claim_idle, c.cfg.batch).await? > 0 {
                check_pending = true;
            }
            last_claim = Instant::now();
        }
        let (entries, history) = if check_pending {
            let e = read(&mut conn, &key, group, me, "0", c.cfg.batch, None).await?;
            if e.is_empty() {
                check_pending = false;
                continue;
            }
            (e, true)
        } else {
            let block = c.cfg.block;
            (
                read(&mut conn, &key, group, me, ">", c.cfg.batch, Some(block)).await?,
                false,
            )
        };
        let counts = if history {
            delivery_counts(&mut conn, &key, group, me, &entries).await?
        } else {
            HashMap::new()
        };
        // Under load entries queue up: apply a run of them in one transaction (one commit, one
        // shard lock) and acknowledge them together. What that cannot take (a gap, an entry to
        // dead-letter, a failure) is left to the one-by-one path below.
        let mut start = 0;
        if !history && entries.len() > 1 {
            match apply_run(c, shard, &entries[..entries.len().min(MAX_RUN)]).await {
                Ok((done, wake)) => {
                    c.wakers.wake(wake);
                    if done > 0 {
                        ack_all(&mut conn, &key, group, &entries[..done]).await?;
                    }
                    start = done;
                }
                Err(e) => {
                    tracing::debug!(shard, error = %e, "batched apply failed; applying one by one");
                }
            }
        }
        let mut failed = false;
        // The batch in hand is finished even when stopping: these entries are in flight.
        for entry in &entries[start..] {
            let deliveries = counts.get(&entry.id).copied().unwrap_or(1);
            match handle_with_retry(c, shard, entry, deliveries, stop).await {
                Ok(w) => {
                    // At once, not after the batch: the workers start while the rest is applied.
                    c.wakers.wake(w);
                    ack(&mut conn, &key, group, &entry.id).await?;
                }
                Err(e) if e.is_transient() => {
                    // Stopping while a dependency is down: leave the rest pending.
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(shard, entry = %entry.id, deliveries, error = %e, "change not applied; it will be delivered again");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            check_pending = true;
            failures += 1;
            let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }
        } else {
            failures = 0;
        }
    }
}

async fn create_group(conn: &mut MultiplexedConnection, key: &str, group: &str) -> Result<()> {
    // From the start of the stream: a new deployment applies what the stream still holds.
    let r: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Claims entries pending at least `min_idle` into this consumer (ids only: the claim does not
/// count as a delivery; reading them does). Returns how many were claimed.
async fn reclaim(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
    me: &str,
    min_idle: Duration,
    batch: usize,
) -> Result<usize> {
    let mut start = "0-0".to_string();
    let mut total = 0;
    // XAUTOCLAIM scans the pending list in pages; a bounded number of pages per call keeps one
    // reclaim from starving reading.
    for _ in 0..100 {
        let reply: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(key)
            .arg(group)
            .arg(me)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(&start)
            .arg("COUNT")
            .arg(batch)
            .arg("JUSTID")
            .query_async(conn)
            .await?;
        total += reply.claimed.len();
        if reply.next_stream_id == "0-0" {
            break;
        }
        start = reply.next_stream_id;
    }
    if total > 0 {
        tracing::info!(stream = key, claimed = total, "reclaimed pending entries");
    }
    Ok(total)
}

async fn read(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
    me: &str,
    id: &str,
    count: usize,
    block: Option<Duration>,
) -> Result<Vec<Entry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(group).arg(me).arg("COUNT").arg(count);
    if let Some(b) = block {
        cmd.arg("BLOCK")
            .arg(u64::try_from(b.as_millis()).unwrap_or(u64::MAX).max(1));
    }
    cmd.arg("STREAMS").arg(key).arg(id);
    let v: Value = cmd.query_async(conn).await?;
    parse_read(v)
}

/// XREADGROUP's reply: nil, or [[key, [[id, [field, value, ...] | nil], ...]]] (a map in RESP3).
fn parse_read(v: Value) -> Result<Vec<Entry>> {
    let streams = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(a) => a
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => kv.pop(),
                _ => None,
            })
            .collect::<Vec<_>>(),
        Value::Map(m) => m.into_iter().map(|(_, v)| v).collect(),
        other => {
            return Err(Error::Corrupt(format!(
                "unexpected XREADGROUP reply {other:?}"
            )));
        }
    };
    let mut out = Vec::new();
    for s in streams {
        let Value::Array(entries) = s else { continue };
        for e in entries {
            let Value::Array(mut parts) = e else { continue };
            if parts.len() != 2 {
                continue;
            }
            let fields = parts.pop();
            let id: String = parts
                .pop()
                .map(redis::from_redis_value)
                .transpose()
                .map_err(|e| Error::Corrupt(format!("stream entry id: {e}")))?
                .unwrap_or_default();
            let fields = match fields {
                Some(Value::Array(kv)) => {
                    let mut m = HashMap::new();
                    let mut it = kv.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        let k: String = redis::from_redis_value(k).unwrap_or_default();
                        let v: Vec<u8> = redis::from_redis_value(v).unwrap_or_default();
                        m.insert(k, v);
                    }
                    Some(m)
                }
                Some(Value::Map(kv)) => Some(
                    kv.into_iter()
                        .map(|(k, v)| {
                            (
                                redis::from_redis_value::<String>(k).unwrap_or_default(),
                                redis::from_redis_value::<Vec<u8>>(v).unwrap_or_default(),
                            )
                        })
                        .collect(),
                ),
                _ => None,
            };
            out.push(Entry { id, fields });
        }
    }
    Ok(out)
}

/// How many times each of this consumer's pending entries was delivered.
async fn delivery_counts(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
    me: &str,
    entries: &[Entry],
) -> Result<HashMap<String, usize>> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(HashMap::new());
    };
    let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(key)
        .arg(group)
        .arg(&first.id)
        .arg(&last.id)
        .arg(entries.len())
        .arg(me)
        .query_async(conn)
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .map(|p| (p.id, p.times_delivered))
        .collect())
}

async fn ack_all(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
    entries: &[Entry],
) -> Result<()> {
    let mut cmd = redis::cmd("XACK");
    cmd.arg(key).arg(group);
    for e in entries {
        cmd.arg(&e.id);
    }
    let _: i64 = cmd.query_async(conn).await?;
    Ok(())
}

async fn ack(conn: &mut MultiplexedConnection, key: &str, group: &str, id: &str) -> Result<()> {
    let _: i64 = redis::cmd("XACK")
        .arg(key)
        .arg(group)
        .arg(id)
        .query_async(conn)
        .await?;
    Ok(())
}

/// Applies one entry, retrying transient failures in place (they do not count as deliveries).
/// An entry delivered more than the allowed number of times, or that cannot be decoded, goes to
/// the dead letters instead.
async fn handle_with_retry(
    c: &Consumer,
    shard: u32,
    entry: &Entry,
    deliveries: usize,
    stop: &CancellationToken,
) -> Result<Wake> {
    let decoded = decode(entry);
    let (seq, event) = match decoded {
        Ok(x) => x,
        Err(reason) => {
            dead_letter(c, shard, entry, None, None, deliveries, &reason).await?;
            return Ok(Wake::default());
        }
    };
    if deliveries > c.cfg.max_deliveries {
        let reason = format!("delivered {deliveries} times without being applied");
        dead_letter(
            c,
            shard,
            entry,
            Some(seq),
            Some(&event),
            deliveries,
            &reason,
        )
        .await?;
        return Ok(Wake::default());
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        let span = tracing::info_span!("change", event_id = %event.event_id, shard, seq);
        meisa_runtime::telemetry::set_parent_from_traceparent(&span, &event.traceparent);
        match apply_in_order(c, shard, seq, &event).instrument(span).await {
            Ok(w) => return Ok(w),
            Err(e) if e.is_transient() => {
                tracing::warn!(shard, seq, event = %event.event_id, error = %e, "transient failure applying a change; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return Err(e),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

fn decode(entry: &Entry) -> std::result::Result<(u64, ContactChanged), String> {
    let fields = entry
        .fields
        .as_ref()
        .ok_or_else(|| "the entry was deleted from the stream".to_string())?;
    let seq = fields
        .get("seq")
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| "no valid `seq` field".to_string())?;
    let bytes = fields
        .get("event")
        .ok_or_else(|| "no `event` field".to_string())?;
    let event = ContactChanged::decode(bytes.as_slice())
        .map_err(|e| format!("`event` is not a ContactChanged: {e}"))?;
    EventView::from_proto(&event).map_err(|e| e.to_string())?;
    Ok((seq, event))
}

async fn dead_letter(
    c: &Consumer,
    shard: u32,
    entry: &Entry,
    seq: Option<u64>,
    event: Option<&ContactChanged>,
    deliveries: usize,
    reason: &str,
) -> Result<()> {
    let group = c.cfg.group.as_str();
    let event_id = event.map(|e| e.event_id.as_str());
    let payload = entry.fields.as_ref().and_then(|f| f.get("event"));
    let mut tx = c.store.pool.begin().await?;
    let last = cstore::lock_shard(&mut tx, group, shard).await?;
    cstore::dead_letter(
        &mut tx,
        &DeadLetter {
            group,
            shard,
            seq,
            stream_id: Some(&entry.id),
            event_id,
            payload: payload.map(Vec::as_slice),
            deliveries,
            error: reason,
        },
    )
    .await?;
    if let (Some(ev), Some(seq)) = (event, seq) {
        // Recorded as processed (dead), so a replay of the same event skips it too.
        cstore::mark_processed(
            &mut tx,
            &Processed {
                event_id: &ev.event_id,
                shard,
                seq,
                depth: 0,
                cause_automation_id: None,
                cause_event_id: None,
                dead: true,
            },
        )
        .await?;
        if last.is_none_or(|l| seq == l + 1) {
            cstore::set_last_seq(&mut tx, group, shard, seq).await?;
        }
    }
    tx.commit().await?;
    metrics::counter!("meisa_automations_dead_letters_total").increment(1);
    tracing::error!(
        event_id = event_id.unwrap_or("?"),
        shard,
        seq,
        stream_id = %entry.id,
        deliveries,
        reason,
        "change moved to the dead letters"
    );
    Ok(())
}

fn count_event(fresh: bool) {
    let outcome = if fresh { "applied" } else { "duplicate" };
    metrics::counter!("meisa_automations_events_total", "outcome" => outcome).increment(1);
}

/// At most this many entries share a transaction: the first of them waits for the last.
const MAX_RUN: usize = 32;

/// Applies the leading run of `entries` that follow the shard's last seq without a gap, in one
/// transaction. Returns how many leading entries are done (applied, or already applied) and what
/// to wake; the caller applies the rest one by one. Dying before the commit leaves all of them
/// pending, as for a single entry.
async fn apply_run(c: &Consumer, shard: u32, entries: &[Entry]) -> Result<(usize, Wake)> {
    let group = c.cfg.group.as_str();
    let mut tx = c.store.pool.begin().await?;
    let mut last = cstore::lock_shard(&mut tx, group, shard).await?;
    let start = last;
    let mut wake = Wake::default();
    let mut done = 0;
    for entry in entries {
        let Ok((seq, event)) = decode(entry) else {
            break;
        };
        match last {
            Some(l) if seq <= l => {
                done += 1;
                continue;
            }
            Some(l) if seq > l + 1 => break,
            _ => {}
        }
        let view = EventView::from_proto(&event).map_err(|e| Error::Corrupt(e.to_string()))?;
        let span = tracing::info_span!("change", event_id = %event.event_id, shard, seq);
        meisa_runtime::telemetry::set_parent_from_traceparent(&span, &event.traceparent);
        let fresh = cstore::mark_processed(
            &mut tx,
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
        count_event(fresh);
        if fresh {
            wake.merge(
                process::apply(&mut tx, &view, Utc::now())
                    .instrument(span)
                    .await?,
            );
        }
        last = Some(seq);
        done += 1;
    }
    if let Some(l) = last.filter(|l| Some(*l) != start) {
        cstore::set_last_seq(&mut tx, group, shard, l).await?;
    }
    tx.commit().await?;
    Ok((done, wake))
}

enum Step {
    Applied(Wake),
    Skipped,
    Gap { from: u64, to: u64 },
}

/// Applies the entry at `seq`; replays a gap before it first.
async fn apply_in_order(
    c: &Consumer,
    shard: u32,
    seq: u64,
    event: &ContactChanged,
) -> Result<Wake> {
    let mut wake = Wake::default();
    // Twice at most: a gap is replayed, then the entry applies (or is skipped if the replay
    // covered it). A third pass would mean the shard moved on concurrently; skip then.
    for _ in 0..3 {
        match step(c, shard, seq, event, true).await? {
            Step::Applied(w) => {
                wake.merge(w);
                return Ok(wake);
            }
            Step::Skipped => return Ok(wake),
            Step::Gap { from, to } => wake.merge(replay(c, shard, from, to).await?),
        }
    }
    Ok(wake)
}

async fn step(
    c: &Consumer,
    shard: u32,
    seq: u64,
    event: &ContactChanged,
    fill_gaps: bool,
) -> Result<Step> {
    let group = c.cfg.group.as_str();
    let view = EventView::from_proto(event).map_err(|e| Error::Corrupt(e.to_string()))?;
    let mut tx = c.store.pool.begin().await?;
    let last = cstore::lock_shard(&mut tx, group, shard).await?;
    if let Some(l) = last {
        if seq <= l {
            tx.rollback().await?;
            return Ok(Step::Skipped);
        }
        if seq > l + 1 {
            if fill_gaps {
                tx.rollback().await?;
                return Ok(Step::Gap {
                    from: l + 1,
                    to: seq - 1,
                });
            }
            lost(&mut tx, group, shard, l + 1, seq - 1).await?;
        }
    }
    let fresh = cstore::mark_processed(
        &mut tx,
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
    count_event(fresh);
    let wake = if fresh {
        process::apply(&mut tx, &view, Utc::now()).await?
    } else {
        tracing::debug!(event = %view.event_id, "event already processed; skipping");
        Wake::default()
    };
    cstore::set_last_seq(&mut tx, group, shard, seq).await?;
    tx.commit().await?;
    Ok(Step::Applied(wake))
}

/// Seqs the stream lost and the contacts service can no longer replay (past its retention).
async fn lost(
    conn: &mut sqlx::PgConnection,
    group: &str,
    shard: u32,
    from: u64,
    to: u64,
) -> Result<()> {
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

/// Applies `from..=to` from the contacts service, in order (events already applied are skipped).
async fn replay(c: &Consumer, shard: u32, from: u64, to: u64) -> Result<Wake> {
    tracing::warn!(
        shard,
        from,
        to,
        "gap in the change stream; replaying from the contacts service"
    );
    metrics::counter!("meisa_automations_gap_replays_total").increment(1);
    let mut wake = Wake::default();
    let mut next = from;
    while next <= to {
        let events = c
            .contacts
            .replay(shard, next, to)
            .await
            .map_err(Error::Contacts)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            let mut tx = c.store.pool.begin().await?;
            let applied = cstore::lock_shard(&mut tx, &c.cfg.group, shard).await?;
            if applied.is_none_or(|l| l < to) {
                lost(&mut tx, &c.cfg.group, shard, next, to).await?;
                cstore::set_last_seq(&mut tx, &c.cfg.group, shard, to).await?;
            }
            tx.commit().await?;
            break;
        };
        for ev in events.iter().filter(|e| e.seq >= next && e.seq <= to) {
            let span = tracing::info_span!("change", event_id = %ev.event_id, shard, seq = ev.seq, replayed = true);
            meisa_runtime::telemetry::set_parent_from_traceparent(&span, &ev.traceparent);
            if let Step::Applied(w) = step(c, shard, ev.seq, ev, false).instrument(span).await? {
                wake.merge(w);
            }
        }
        if last < next {
            break;
        }
        next = last + 1;
    }
    Ok(wake)
}
