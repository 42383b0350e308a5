//! The change stream (DESIGN §4): `{prefix}:changes:{shard}`, one Redis stream per shard, each
//! entry `seq` (the shard's sequence number, contiguous) and `event` (a protobuf
//! `ContactChanged`). The contacts relay publishes with [`publish`]; consumers read through a
//! [`Group`] and get each entry decoded once, as an [`Entry`]; [`DeadLetterPolicy`] says when
//! an entry is given up on; [`read_until_stopped`] is every consumer's read loop of a shard.
//!
//! What is not here belongs to each consumer: how it applies an entry, where it records what it
//! applied, and what it does about a gap in `seq`.
#![forbid(unsafe_code)]

mod entry;
mod group;
mod publish;
mod read;

pub use entry::{Change, Entry, Undecodable, with_seq};
pub use group::{DeadLetterPolicy, Group, GroupState, Verdict};
pub use publish::{Published, Publisher};
pub use read::{Batches, Handled, ReadOptions, read_until_stopped};

/// The stream of one shard.
pub fn key(prefix: &str, shard: u32) -> String {
    format!("{prefix}:changes:{shard}")
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}

impl StreamError {
    /// Redis down or a connection lost: retry later, nothing is wrong with the data.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
            }
            Self::Reply(_) => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, StreamError>;
