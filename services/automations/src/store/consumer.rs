//! The consumer's bookkeeping: processed event ids, the last seq applied per shard, shard leases,
//! live consumers and dead letters.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, Row};

use super::{micros, param, read};

/// The last seq applied on the shard, locked until the transaction ends: events of one shard are
/// applied one at a time and in seq order, whichever process holds them. `None`: nothing applied
/// yet (the first entry seen sets the baseline).
pub async fn lock_shard(
    conn: &mut PgConnection,
    group: &str,
    shard: u32,
) -> Result<Option<u64>, sqlx::Error> {
    // One statement: creates the row on first use, otherwise a no-op update that locks it.
    let last: Option<i64> = sqlx::query_scalar(
        "INSERT INTO consumer_shards (group_name, shard, last_seq) VALUES ($1, $2, NULL)
         ON CONFLICT (group_name, shard) DO UPDATE SET last_seq = consumer_shards.last_seq
         RETURNING last_seq",
    )
    .bind(group)
    .bind(param::<i32, _>("shard", shard)?)
    .fetch_one(&mut *conn)
    .await?;
    last.map(|s| read("consumer_shards.last_seq", s))
        .transpose()
}

pub async fn set_last_seq(
    conn: &mut PgConnection,
    group: &str,
    shard: u32,
    seq: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consumer_shards SET last_seq = $3 WHERE group_name = $1 AND shard = $2")
        .bind(group)
        .bind(param::<i32, _>("shard", shard)?)
        .bind(param::<i64, _>("seq", seq)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub struct Processed<'a> {
    pub event_id: &'a str,
    pub shard: u32,
    pub seq: u64,
    pub depth: u32,
    pub cause_automation_id: Option<&'a str>,
    pub cause_event_id: Option<&'a str>,
    pub dead: bool,
}

/// Records the event id; false when it was already recorded (its effects exist: do nothing).
pub async fn mark_processed(
    conn: &mut PgConnection,
    p: &Processed<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO processed_events (event_id, shard, seq, depth, cause_automation_id,
            cause_event_id, dead)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(p.event_id)
    .bind(param::<i32, _>("shard", p.shard)?)
    .bind(param::<i64, _>("seq", p.seq)?)
    .bind(param::<i32, _>("depth", p.depth)?)
    .bind(p.cause_automation_id)
    .bind(p.cause_event_id)
    .bind(p.dead)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The causation chain that led to an event, oldest first, as `automation(event)` links, from
/// what was recorded when each event was processed (for the loop guard's log line).
pub async fn causation_chain(
    conn: &mut PgConnection,
    cause_automation_id: Option<&str>,
    cause_event_id: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    let mut chain = Vec::new();
    if let Some(a) = cause_automation_id {
        chain.push(format!("{a}({})", cause_event_id.unwrap_or("?")));
    }
    let mut next = cause_event_id.map(str::to_string);
    // Depth is bounded by the guard; the limit keeps a corrupt cycle from looping.
    for _ in 0..16 {
        let Some(ev) = next.take() else { break };
        let row = sqlx::query(
            "SELECT cause_automation_id, cause_event_id FROM processed_events WHERE event_id = $1",
        )
        .bind(&ev)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { break };
        let a: Option<String> = row.try_get("cause_automation_id")?;
        let e: Option<String> = row.try_get("cause_event_id")?;
        if let Some(a) = a {
            chain.push(format!("{a}({})", e.as_deref().unwrap_or("?")));
        }
        next = e;
    }
    chain.reverse();
    Ok(chain)
}

pub struct DeadLetter<'a> {
    pub group: &'a str,
    pub shard: u32,
    pub seq: Option<u64>,
    pub stream_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub payload: Option<&'a [u8]>,
    pub deliveries: usize,
    pub error: &'a str,
}

pub async fn dead_letter(conn: &mut PgConnection, d: &DeadLetter<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dead_letters (group_name, shard, seq, stream_id, event_id, payload,
            deliveries, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(d.group)
    .bind(param::<i32, _>("shard", d.shard)?)
    .bind(d.seq.map(|s| param::<i64, _>("seq", s)).transpose()?)
    .bind(d.stream_id)
    .bind(d.event_id)
    .bind(d.payload)
    .bind(param::<i32, _>("deliveries", d.deliveries)?)
    .bind(d.error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn prune_processed(pool: &PgPool, older_than: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM processed_events
         WHERE processed_at < now() - make_interval(secs => $1::double precision / 1e6)",
    )
    .bind(micros(older_than))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

// ------------------------------------------------------------------------------- leases

pub async fn ensure_shards(pool: &PgPool, group: &str, shards: u32) -> Result<(), sqlx::Error> {
    let all: Vec<i32> = (0..param::<i32, _>("shards", shards)?).collect();
    sqlx::query(
        "INSERT INTO shard_leases (group_name, shard)
         SELECT $1, s FROM unnest($2::int[]) AS s ON CONFLICT DO NOTHING",
    )
    .bind(group)
    .bind(&all)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that this consumer is alive; returns how many consumers of the group are.
pub async fn heartbeat(
    pool: &PgPool,
    group: &str,
    me: &str,
    lease: Duration,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO consumers (group_name, name, heartbeat_at) VALUES ($1, $2, now())
         ON CONFLICT (group_name, name) DO UPDATE SET heartbeat_at = now()",
    )
    .bind(group)
    .bind(me)
    .execute(pool)
    .await?;
    // Consumers silent for several leases are gone (killed): forget them.
    sqlx::query(
        "DELETE FROM consumers WHERE group_name = $1
           AND heartbeat_at < now() - make_interval(secs => $2::double precision * 3 / 1e6)",
    )
    .bind(group)
    .bind(micros(lease))
    .execute(pool)
    .await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM consumers WHERE group_name = $1
           AND heartbeat_at >= now() - make_interval(secs => $2::double precision / 1e6)",
    )
    .bind(group)
    .bind(micros(lease))
    .fetch_one(pool)
    .await?;
    read("count(consumers)", live)
}

fn shards_of(rows: Vec<i32>) -> Result<Vec<u32>, sqlx::Error> {
    rows.into_iter()
        .map(|s| read("shard_leases.shard", s))
        .collect()
}

/// Extends the leases this consumer holds; returns the shards it still holds.
pub async fn renew(
    pool: &PgPool,
    group: &str,
    me: &str,
    lease: Duration,
) -> Result<Vec<u32>, sqlx::Error> {
    let rows: Vec<i32> = sqlx::query_scalar(
        "UPDATE shard_leases SET lease_until = now() + make_interval(secs => $3::double precision / 1e6)
         WHERE group_name = $1 AND owner = $2 RETURNING shard",
    )
    .bind(group)
    .bind(me)
    .bind(micros(lease))
    .fetch_all(pool)
    .await?;
    shards_of(rows)
}

/// Takes up to `n` shards nobody holds (or whose holder's lease ran out).
pub async fn acquire(
    pool: &PgPool,
    group: &str,
    me: &str,
    n: usize,
    lease: Duration,
) -> Result<Vec<u32>, sqlx::Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<i32> = sqlx::query_scalar(
        "UPDATE shard_leases SET owner = $2,
            lease_until = now() + make_interval(secs => $4::double precision / 1e6)
         WHERE group_name = $1 AND shard IN (
            SELECT shard FROM shard_leases
            WHERE group_name = $1 AND (owner IS NULL OR lease_until IS NULL OR lease_until < now())
            ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING shard",
    )
    .bind(group)
    .bind(me)
    .bind(param::<i64, _>("n", n)?)
    .bind(micros(lease))
    .fetch_all(pool)
    .await?;
    shards_of(rows)
}

/// Gives shards back (all of this consumer's when `shards` is `None`).
pub async fn release(
    pool: &PgPool,
    group: &str,
    me: &str,
    shards: Option<&[u32]>,
) -> Result<(), sqlx::Error> {
    let list: Option<Vec<i32>> = shards
        .map(|s| s.iter().map(|x| param("shard", *x)).collect())
        .transpose()?;
    sqlx::query(
        "UPDATE shard_leases SET owner = NULL, lease_until = NULL
         WHERE group_name = $1 AND owner = $2 AND ($3::int[] IS NULL OR shard = ANY($3))",
    )
    .bind(group)
    .bind(me)
    .bind(list)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn forget_consumer(pool: &PgPool, group: &str, me: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM consumers WHERE group_name = $1 AND name = $2")
        .bind(group)
        .bind(me)
        .execute(pool)
        .await?;
    Ok(())
}
