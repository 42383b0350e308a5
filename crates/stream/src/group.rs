//! A consumer group on one shard's stream: create it, read new and pending entries, claim what
//! a dead consumer left, count deliveries, acknowledge; and the dead-letter policy.

use std::time::Duration;

use redis::{Value, aio::MultiplexedConnection};

use crate::{Entry, Result, StreamError, key};

/// One consumer (`consumer`) of group `group` on one shard's stream.
#[derive(Clone, Debug)]
pub struct Group {
    pub key: String,
    pub group: String,
    pub consumer: String,
}

/// How far a group has come on a stream: what tests wait on before asserting that nothing more
/// happened, and what a lag metric reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupState {
    /// The stream's newest entry id ("0-0" when empty).
    pub last_entry: String,
    /// The newest id delivered to the group ("0-0" when none).
    pub last_delivered: String,
    /// Delivered and not yet acknowledged.
    pub pending: u64,
}

impl GroupState {
    /// Every entry was delivered and acknowledged.
    pub fn is_caught_up(&self) -> bool {
        self.pending == 0 && self.last_delivered == self.last_entry
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Group {
    pub fn new(prefix: &str, shard: u32, group: &str, consumer: &str) -> Self {
        Self {
            key: key(prefix, shard),
            group: group.into(),
            consumer: consumer.into(),
        }
    }

    /// Creates the group (and the stream) if missing, reading from the stream's start: a new
    /// deployment applies what the stream still holds.
    pub async fn create(&self, conn: &mut MultiplexedConnection) -> Result<()> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.group)
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

    /// Claims entries pending at least `min_idle` into this consumer (ids only: the claim does
    /// not count as a delivery; reading them does). Returns how many were claimed.
    pub async fn reclaim(
        &self,
        conn: &mut MultiplexedConnection,
        min_idle: Duration,
        batch: usize,
    ) -> Result<usize> {
        let mut start = "0-0".to_string();
        let mut total = 0;
        // XAUTOCLAIM scans the pending list in pages; a bounded number of pages per call keeps
        // one reclaim from starving reading.
        for _ in 0..100 {
            let reply: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(millis(min_idle))
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
            tracing::info!(stream = %self.key, claimed = total, "reclaimed pending entries");
        }
        Ok(total)
    }

    /// Entries delivered to this consumer and not yet acknowledged, oldest first.
    pub async fn read_pending(
        &self,
        conn: &mut MultiplexedConnection,
        count: usize,
    ) -> Result<Vec<Entry>> {
        self.read(conn, "0", count, None).await
    }

    /// New entries, waiting up to `block` for the first.
    pub async fn read_new(
        &self,
        conn: &mut MultiplexedConnection,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Entry>> {
        self.read(conn, ">", count, Some(block)).await
    }

    async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(millis(b).max(1));
        }
        cmd.arg("STREAMS").arg(&self.key).arg(id);
        let v: Value = cmd.query_async(conn).await?;
        parse_read(v)
    }

    /// How many times each of `entries` (this consumer's pending ones) was delivered.
    pub async fn delivery_counts(
        &self,
        conn: &mut MultiplexedConnection,
        entries: &[Entry],
    ) -> Result<Vec<usize>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Vec::new());
        };
        let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.key)
            .arg(&self.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(entries.len())
            .arg(&self.consumer)
            .query_async(conn)
            .await?;
        Ok(entries
            .iter()
            .map(|e| {
                reply
                    .ids
                    .iter()
                    .find(|p| p.id == e.id)
                    .map_or(1, |p| p.times_delivered)
            })
            .collect())
    }

    pub async fn ack<'a>(
        &self,
        conn: &mut MultiplexedConnection,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.key).arg(&self.group);
        let mut any = false;
        for id in ids {
            cmd.arg(id);
            any = true;
        }
        if any {
            let _: i64 = cmd.query_async(conn).await?;
        }
        Ok(())
    }

    /// Where the group stands on its stream; `None` when the stream or the group does not
    /// exist yet.
    pub async fn state<C: redis::aio::ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Option<GroupState>> {
        let stream: redis::RedisResult<redis::streams::StreamInfoStreamReply> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(&self.key)
            .query_async(conn)
            .await;
        let stream = match stream {
            Ok(s) => s,
            // "ERR no such key": nothing was published on this shard yet.
            Err(e) if e.code() == Some("ERR") => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.key)
            .query_async(conn)
            .await?;
        Ok(groups
            .groups
            .into_iter()
            .find(|g| g.name == self.group)
            .map(|g| GroupState {
                last_entry: stream.last_generated_id.clone(),
                last_delivered: g.last_delivered_id,
                pending: u64::try_from(g.pending).unwrap_or(u64::MAX),
            }))
    }
}

/// XREADGROUP's reply: nil, or `[[key, [[id, [field, value, …] | nil], …]]]` (a map in RESP3).
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
        other => return Err(StreamError::Reply(format!("XREADGROUP answered {other:?}"))),
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
            let id: String = match parts.pop() {
                Some(v) => redis::from_redis_value(v)
                    .map_err(|e| StreamError::Reply(format!("a stream entry id: {e}")))?,
                None => continue,
            };
            let fields = match fields {
                Some(Value::Array(kv)) => {
                    let mut it = kv.into_iter();
                    Some(pairs(std::iter::from_fn(|| {
                        Some((it.next()?, it.next()?))
                    }))?)
                }
                Some(Value::Map(kv)) => Some(pairs(kv.into_iter())?),
                _ => None,
            };
            out.push(Entry::decode(id, fields));
        }
    }
    Ok(out)
}

fn pairs(kv: impl Iterator<Item = (Value, Value)>) -> Result<Vec<(String, Vec<u8>)>> {
    kv.map(|(k, v)| {
        let k: String = redis::from_redis_value(k)
            .map_err(|e| StreamError::Reply(format!("a stream field name: {e}")))?;
        let v: Vec<u8> = redis::from_redis_value(v)
            .map_err(|e| StreamError::Reply(format!("stream field {k}: {e}")))?;
        Ok((k, v))
    })
    .collect()
}

/// When an entry is given up on: it cannot be decoded, or it was delivered more than
/// `max_deliveries` times without being applied (a poison entry must not block its shard).
/// Transient failures (a dependency down) are retried in place and are not deliveries.
#[derive(Clone, Copy, Debug)]
pub struct DeadLetterPolicy {
    pub max_deliveries: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Apply,
    DeadLetter(String),
}

impl DeadLetterPolicy {
    pub fn judge(&self, entry: &Entry, deliveries: usize) -> Verdict {
        match &entry.body {
            Err(u) => Verdict::DeadLetter(u.reason.clone()),
            Ok(_) if deliveries > self.max_deliveries => Verdict::DeadLetter(format!(
                "delivered {deliveries} times without being applied"
            )),
            Ok(_) => Verdict::Apply,
        }
    }
}
