//! The relay's side of the outbox: give rows their shard sequence numbers, find what is not yet
//! published, mark it published, prune old rows, replay a range.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use meisa_proto::events;
use prost::Message;
use sqlx::{PgConnection, PgPool, Row};

use super::{Corrupt, StoreError, stored};

/// An outbox row to publish. `payload` is the event as the stream carries it, shard included,
/// but without its `seq` (numbered after commit, so writers never contend for it).
pub struct Pending {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub shard: u32,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Takes up to `limit` unpublished rows, gives those without one their sequence number, and
/// commits that before anything is published: a row keeps its number across crashes, so a retry
/// re-publishes it under the same stream id (which Redis refuses as a duplicate).
///
/// Rows that already have a number come first, so a backlog never gets numbers above an older row
/// of the same shard that is still waiting.
pub async fn claim_and_number(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Pending>, StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let rows = sqlx::query(
        "SELECT id, shard, seq, payload, created_at FROM outbox WHERE published_at IS NULL
         ORDER BY seq NULLS LAST, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut pending = Vec::with_capacity(rows.len());
    let mut unnumbered: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for row in &rows {
        let shard: i32 = row.try_get("shard")?;
        let seq: Option<i64> = row.try_get("seq")?;
        if seq.is_none() {
            unnumbered.entry(shard).or_default().push(pending.len());
        }
        pending.push(Pending {
            id: row.try_get("id")?,
            created_at: row.try_get("created_at")?,
            shard: stored("outbox.shard", shard)?,
            // Numbered below, before anything of this batch is published.
            seq: seq
                .map(|s| stored("outbox.seq", s))
                .transpose()?
                .unwrap_or(0),
            payload: row.try_get("payload")?,
        });
    }
    let (mut ids, mut seqs) = (Vec::new(), Vec::new());
    for (shard, idxs) in &unnumbered {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM relay_shards WHERE shard = $1")
                .bind(shard)
                .fetch_optional(&mut *tx)
                .await?;
        let mut next = last.unwrap_or(0);
        for &i in idxs {
            next += 1;
            pending[i].seq = stored("relay_shards.last_seq", next)?;
            ids.push(pending[i].id);
            seqs.push(next);
        }
        sqlx::query(
            "INSERT INTO relay_shards (shard, last_seq) VALUES ($1, $2)
             ON CONFLICT (shard) DO UPDATE SET last_seq = EXCLUDED.last_seq",
        )
        .bind(shard)
        .bind(next)
        .execute(&mut *tx)
        .await?;
    }
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE outbox SET seq = v.seq FROM unnest($1::bigint[], $2::bigint[]) AS v(id, seq)
             WHERE outbox.id = v.id",
        )
        .bind(&ids)
        .bind(&seqs)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    pending.sort_by_key(|p| (p.shard, p.seq));
    Ok(pending)
}

pub async fn mark_published(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn prune(pool: &PgPool, older_than: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM outbox WHERE published_at < $1")
        .bind(older_than)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Published events of one shard in `[from, to]`, for a consumer that saw a gap. Each row is
/// decoded once and given its `seq` (the stored payload has its shard already).
pub async fn replay(
    pool: &PgPool,
    shard: u32,
    from: u64,
    to: u64,
    limit: i64,
) -> Result<Vec<events::ContactChanged>, StoreError> {
    // A shard or a start beyond the columns' range names rows that cannot exist.
    let (Ok(shard_column), Ok(from)) = (i32::try_from(shard), i64::try_from(from)) else {
        return Ok(Vec::new());
    };
    let to = i64::try_from(to).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT seq, payload FROM outbox
         WHERE shard = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq LIMIT $4",
    )
    .bind(shard_column)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let seq: i64 = r.try_get("seq")?;
            let payload: Vec<u8> = r.try_get("payload")?;
            let mut event = events::ContactChanged::decode(payload.as_slice()).map_err(|e| {
                Corrupt::new(
                    "outbox",
                    format!("shard {shard} seq {seq}: payload does not decode: {e}"),
                )
            })?;
            event.seq = stored("outbox.seq", seq)?;
            Ok(event)
        })
        .collect()
}
