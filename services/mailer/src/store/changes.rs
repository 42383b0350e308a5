//! The change consumer's bookkeeping: each shard's position and the dead letters. Every function
//! takes the caller's transaction: a position moves with the erasures it covers.

use sqlx::PgConnection;
use uuid::Uuid;

/// The last seq handled on `stream`, locked until the transaction ends, so that entries of one
/// shard are handled one run at a time and in order, whichever process reads them. `None`:
/// nothing handled yet.
pub async fn lock_position(conn: &mut PgConnection, stream: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT last_seq FROM stream_positions WHERE stream = $1 FOR UPDATE")
        .bind(stream)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn set_position(conn: &mut PgConnection, stream: &str, seq: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO stream_positions (stream, last_seq) VALUES ($1, $2)
         ON CONFLICT (stream) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()",
    )
    .bind(stream)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Default)]
pub struct DeadLetter<'a> {
    pub stream: &'a str,
    pub seq: Option<i64>,
    pub seq_to: Option<i64>,
    pub stream_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub payload: Option<&'a [u8]>,
    pub deliveries: i32,
    pub error: &'a str,
}

pub async fn dead_letter(conn: &mut PgConnection, d: &DeadLetter<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO dead_letters (stream, seq, seq_to, stream_id, event_id, payload, deliveries,
            error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(d.stream)
    .bind(d.seq)
    .bind(d.seq_to)
    .bind(d.stream_id)
    .bind(d.event_id)
    .bind(d.payload)
    .bind(d.deliveries)
    .bind(d.error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Erasure: the contact's messages (bodies included, so its unsubscribe links stop working),
/// their queued deliveries and its unsubscribe record. Returns the deleted message ids, for
/// their `.eml` files. Erasing a contact with nothing left is a no-op. Suppression entries stay:
/// they protect an address, not a contact.
pub async fn erase_contact(
    conn: &mut PgConnection,
    ws: &str,
    contact_id: &str,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "WITH m AS (
            DELETE FROM messages WHERE workspace_id = $1 AND contact_id = $2 RETURNING id
         ), q AS (
            DELETE FROM delivery_queue WHERE message_id IN (SELECT id FROM m)
         ), u AS (
            DELETE FROM unsubscribes WHERE workspace_id = $1 AND contact_id = $2
         )
         SELECT id FROM m",
    )
    .bind(ws)
    .bind(contact_id)
    .fetch_all(&mut *conn)
    .await
}
