//! Erasure on the change stream (DESIGN §4): the mailer reads `{prefix}:changes:{shard}` with
//! consumer group `mailer`. On a `deleted` event it erases the contact's messages (bodies
//! included, so its unsubscribe links stop working), queued deliveries, `.eml` files and
//! unsubscribe record, then acknowledges the entry; every other event is acknowledged without
//! work. Whoever deletes a contact at the contacts service (the gateway, an internal caller),
//! the mailer erases its part.
//!
//! - **Ownership** ([`shards`]): a shard is read by the replica that holds its Postgres advisory
//!   lock, on one session per replica. Postgres releases the locks when that session ends, so a
//!   replica that dies or loses its database connection gives its shards up without a lease to
//!   time out; the others take them on their next round. Each replica holds at most its share
//!   (`ceil(shards / replicas)`; replicas are counted by a shared advisory lock), so shards
//!   spread as replicas come and go. One reader per shard keeps a gap in `seq` meaningful.
//! - **Correctness does not depend on ownership**: every run of entries is handled in one
//!   transaction that locks the shard's row in `stream_positions`, skips seqs at or below it,
//!   and moves it with the erasures it covers. Erasing a contact twice is a no-op. So two
//!   readers of one shard (a replica whose session broke and that has not noticed yet) cost
//!   work, never data.
//! - **Gaps** ([`apply`]): an entry above `position + 1` means Redis lost entries (a failover, a
//!   flush). The missing range is replayed from the contacts service's `ReplayChanges` before
//!   the entry is handled; seqs contacts no longer has (past its outbox retention) are recorded
//!   in `dead_letters` and logged at error level: a deletion among them cannot be honoured here.
//! - **Failures** ([`reader`]): a database or contacts outage is retried in place, the entry
//!   staying pending; nothing is acknowledged before its effects are committed. An entry that
//!   cannot be decoded goes to `dead_letters` at once, without moving the position, so its seq is
//!   replayed from contacts (the source of truth) when the next entry shows the gap. A decoded
//!   entry delivered more than `MEISA_CONSUMER_MAX_DELIVERIES` times without being handled, or a
//!   deletion that names no contact, goes to `dead_letters` and moves the position. Both are
//!   logged at error level.
//!
//! What happens if the process dies:
//! - while reading, or with entries handled but not committed: nothing is written; the entries
//!   are pending and are read again (by this replica restarted, or by the next owner, which
//!   claims them when it takes the shard);
//! - after some `.eml` files of a deletion were removed and before the commit: the rows are
//!   still there and the entry is pending; the erasure runs again, and files already gone are
//!   fine;
//! - between the commit and the XACK: the entry is read again and skipped (its seq is at or
//!   below the position);
//! - during a gap replay: each page of replayed events is committed with its position, so the
//!   replay resumes where it stopped.

mod apply;
mod reader;
mod shards;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{config::StreamConfig, service::Mailer};
use meisa_runtime::config::Secret;

/// The consumer group: one per service, as DESIGN §4 has it.
pub const GROUP: &str = "mailer";

pub struct Consumer {
    mailer: Arc<Mailer>,
    redis: redis::Client,
    /// For the ownership session, which is not a pooled connection (its locks live as long as
    /// it does).
    database_url: Secret,
    cfg: StreamConfig,
}

impl Consumer {
    pub fn new(
        mailer: Arc<Mailer>,
        cfg: StreamConfig,
        database_url: Secret,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self {
            redis: redis::Client::open(cfg.redis_url.expose())?,
            mailer,
            database_url,
            cfg,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} shards of {}:changes, group {GROUP}, consumer {}",
            self.cfg.shards, self.cfg.prefix, self.cfg.consumer
        )
    }

    fn stream(&self, shard: u32) -> String {
        meisa_stream::key(&self.cfg.prefix, shard)
    }
}

/// Runs until `shutdown`: takes its share of the shards and reads them; then stops reading,
/// finishes the batches in hand and gives the shards back.
pub async fn run(consumer: Arc<Consumer>, shutdown: CancellationToken) {
    tracing::info!(consumer = %consumer.describe(), "change consumer starting");
    shards::run(consumer, shutdown).await;
    tracing::info!("change consumer stopped");
}
