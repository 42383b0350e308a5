//! What a batch read from a shard means to the mailer: hand it to [`apply`] and acknowledge what
//! it handled. The read loop is `meisa_stream`'s ([`read_until_stopped`]: connect, take over
//! what a previous owner left pending, pending entries before new ones, Redis being down retried
//! with backoff); the mailer serves gRPC and sends mail meanwhile.

use std::{sync::Arc, time::Duration};

use meisa_stream::{Batches, Entry, Group, Handled, ReadOptions, StreamError, read_until_stopped};
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use super::{
    Consumer, GROUP,
    apply::{self, Failure},
};

/// How long one read waits for new entries. A stop does not wait for it.
const BLOCK: Duration = Duration::from_secs(2);

pub(super) async fn read(c: Arc<Consumer>, shard: u32, stop: CancellationToken) {
    let group = Group::new(&c.cfg.prefix, shard, GROUP, &c.cfg.consumer);
    let options = ReadOptions {
        batch: c.cfg.batch,
        block: BLOCK,
        claim_idle: c.cfg.claim_idle,
    };
    read_until_stopped(&c.redis, &group, &options, &*c, shard, &stop).await;
}

impl Batches for Consumer {
    type Error = StreamError;

    async fn handle(
        &self,
        shard: u32,
        group: &Group,
        conn: &mut MultiplexedConnection,
        entries: Vec<Entry>,
        deliveries: Vec<usize>,
        stop: &CancellationToken,
    ) -> Result<Handled, StreamError> {
        let handled = apply::handle(self, shard, &entries, &deliveries, stop).await;
        let done = entries.get(..handled.done).unwrap_or(&entries);
        group.ack(conn, done.iter().map(|e| e.id.as_str())).await?;
        Ok(match handled.failure {
            None => Handled::All,
            Some(Failure::Stopped) => Handled::Stopped,
            Some(Failure::Failed(e)) => {
                let at = entries.get(handled.done).map_or("?", |e| e.id.as_str());
                tracing::warn!(shard, entry = at, error = %e, "change not handled; it will be delivered again");
                Handled::Failed
            }
        })
    }
}
