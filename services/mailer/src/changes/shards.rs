//! Which replica reads which shard. One Postgres session per replica holds an advisory lock per
//! shard it reads, and a shared "member" lock that lets replicas count each other. Every round
//! (`MEISA_CONSUMER_REBALANCE`) a replica hands back shards above its share and tries to take
//! free ones up to it. When the session fails, every reader stops before the next session takes
//! anything: the locks went with the old session.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Consumer, reader};

/// The high halves of the advisory lock keys (a bigint key shows in `pg_locks` as `classid`
/// and `objid`). Advisory locks are local to the mailer's database.
const MEMBER_CLASS: i64 = 0x6d61_696c; // "mail"
const SHARD_CLASS: i64 = 0x6d61_696d;

fn shard_key(shard: u32) -> i64 {
    (SHARD_CLASS << 32) | i64::from(shard)
}

struct Session {
    conn: PgConnection,
}

impl Session {
    async fn open(url: &str, rebalance: Duration) -> sqlx::Result<Session> {
        let mut conn = PgConnection::connect(url).await?;
        // A replica that falls silent (a half-open connection, a frozen process) loses its
        // shards after this, not when TCP notices, which can take hours. Each round talks, so a
        // live session is never idle this long.
        let idle = (rebalance * 3).max(Duration::from_secs(30));
        let set = format!("SET idle_session_timeout = {}", idle.as_millis());
        if let Err(e) = sqlx::query(&set).execute(&mut conn).await {
            // Before Postgres 14: a silent replica's shards wait for TCP keepalive instead.
            tracing::warn!(error = %e, "cannot bound the ownership session's idle time");
        }
        sqlx::query("SELECT pg_advisory_lock_shared($1)")
            .bind(MEMBER_CLASS << 32)
            .execute(&mut conn)
            .await?;
        Ok(Session { conn })
    }

    /// Live replicas: the sessions holding the member lock, this one included.
    async fn members(&mut self) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND objsubid = 1
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND classid = $1::bigint::oid AND objid = 0",
        )
        .bind(MEMBER_CLASS)
        .fetch_one(&mut self.conn)
        .await
    }

    async fn try_take(&mut self, shard: u32) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(shard_key(shard))
            .fetch_one(&mut self.conn)
            .await
    }

    async fn give_back(&mut self, shard: u32) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(shard_key(shard))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

struct Reader {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl Reader {
    /// Lets the batch in hand finish. The reader stays where it is until it has stopped, so a
    /// round cut short here still stops it with the others.
    async fn stop(&mut self) {
        self.stop.cancel();
        let _ = (&mut self.handle).await;
    }
}

/// A round talks to Postgres a few times; one that takes longer is on a connection that died
/// without saying so.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

/// The shards this replica holds, each with its reader.
type Held = BTreeMap<u32, Reader>;

pub(super) async fn run(c: Arc<Consumer>, shutdown: CancellationToken) {
    let mut session: Option<Session> = None;
    let mut held = Held::new();
    loop {
        let done =
            tokio::time::timeout(ROUND_TIMEOUT, round(&c, &mut session, &mut held, &shutdown))
                .await
                .unwrap_or(Err(SessionError::Stalled));
        if let Err(e) = done {
            tracing::warn!(error = %e, shards = ?held.keys().collect::<Vec<_>>(), "the shard ownership session failed; reading nothing until the database answers");
            stop_all(&mut held).await;
            // Dropping the connection ends the session, and with it its locks.
            session = None;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(c.cfg.rebalance) => {}
        }
    }
    stop_all(&mut held).await;
    if let Some(s) = session {
        // Closing ends the session: the others can take the shards on their next round.
        let _ = tokio::time::timeout(Duration::from_secs(2), s.conn.close()).await;
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("no answer within {ROUND_TIMEOUT:?}")]
    Stalled,
}

async fn round(
    c: &Arc<Consumer>,
    session: &mut Option<Session>,
    held: &mut Held,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let s = match session {
        Some(s) => s,
        None => session.insert(Session::open(c.database_url.expose(), c.cfg.rebalance).await?),
    };
    let members = s.members().await?;
    let share = share(c.cfg.shards, members);
    while held.len() > share {
        let Some(mut last) = held.last_entry() else {
            break;
        };
        let shard = *last.key();
        last.get_mut().stop().await;
        s.give_back(shard).await?;
        held.remove(&shard);
        tracing::info!(shard, members, "handed a shard back to the other replicas");
    }
    for shard in 0..c.cfg.shards {
        if held.len() >= share {
            break;
        }
        if !held.contains_key(&shard) && s.try_take(shard).await? {
            tracing::info!(shard, members, "took a shard");
            held.insert(shard, spawn(c, shard, shutdown));
        }
    }
    // A reader ends only when told to; should one end otherwise, its shard gets a new one.
    for (shard, reader) in held.iter_mut() {
        if reader.handle.is_finished() && !shutdown.is_cancelled() {
            tracing::warn!(shard, "a shard reader ended on its own; restarting it");
            *reader = spawn(c, *shard, shutdown);
        }
    }
    Ok(())
}

/// This replica's share of `shards` among `members` live replicas (this one among them).
fn share(shards: u32, members: i64) -> usize {
    // Clamped to 1..=shards, so the cast is exact.
    let members = members.clamp(1, i64::from(shards.max(1))) as u32;
    shards.div_ceil(members) as usize
}

fn spawn(c: &Arc<Consumer>, shard: u32, shutdown: &CancellationToken) -> Reader {
    let stop = shutdown.child_token();
    Reader {
        handle: tokio::spawn(reader::read(c.clone(), shard, stop.clone())),
        stop,
    }
}

async fn stop_all(held: &mut Held) {
    for reader in held.values_mut() {
        reader.stop().await;
    }
    held.clear();
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_cover_every_shard() {
        assert_eq!(super::share(16, 1), 16);
        assert_eq!(super::share(16, 3), 6);
        assert_eq!(
            super::share(16, 0),
            16,
            "this replica counts even before it shows"
        );
        assert_eq!(super::share(4, 9), 1);
    }
}
