//! Waiting for facts, never for time. [`eventually`] polls a check until it holds;
//! [`streams_caught_up`] is the stream half of "the workers are idle": every entry of every shard
//! was delivered to the group and acknowledged. A test asserts that nothing more happened only
//! after such a fact, so a slow machine makes it slower, not wrong.

use std::{future::Future, time::Duration};

use meisa_stream::Group;

/// Polls `check` every 25 ms until it answers `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether group `group` has been delivered, and acknowledged, every entry of the `shards`
/// streams under `prefix`. A shard whose stream does not exist has nothing to deliver; a stream
/// without the group has not been read yet (false, unless it is empty).
pub async fn streams_caught_up(prefix: &str, shards: u32, group: &str) -> bool {
    let Ok(client) = redis::Client::open(crate::redis_url()) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    for shard in 0..shards {
        let g = Group::new(prefix, shard, group, "test");
        match g.state(&mut conn).await {
            Ok(Some(state)) if state.is_caught_up() => {}
            Ok(None) => {
                let len: i64 = redis::cmd("XLEN")
                    .arg(meisa_stream::key(prefix, shard))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(0);
                if len > 0 {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Waits until [`streams_caught_up`] holds.
pub async fn until_streams_caught_up(prefix: &str, shards: u32, group: &str, timeout: Duration) {
    eventually(
        timeout,
        &format!("group {group} to catch up on {prefix}"),
        || async { streams_caught_up(prefix, shards, group).await.then_some(()) },
    )
    .await;
}
