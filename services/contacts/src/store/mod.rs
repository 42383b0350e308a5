//! Postgres persistence. Every query is scoped by workspace.

pub mod changes;
pub mod contacts;
pub mod fields;
pub mod outbox;
pub mod plan;
pub mod write;

use sqlx::PgPool;

pub use fields::FieldRegistry;

/// What reading or writing the store fails with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

impl StoreError {
    /// Two transactions raced for the same rows (a deadlock, a serialization failure, two
    /// creations of one email): running the work again resolves it.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => {
                meisa_runtime::db::lost_race(e)
                    || matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
            }
            Self::Corrupt(_) => false,
        }
    }
}

// A value read back that does not fit its type is a `Corrupt` error naming the column
// (`meisa_runtime::db`): the operation fails, never a default.
pub(crate) use meisa_runtime::db::{Corrupt, stored};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The NOTIFY channel that wakes the relay when a transaction wrote outbox rows.
pub const OUTBOX_CHANNEL: &str = "meisa_contacts_outbox";

#[derive(Clone)]
pub struct Store {
    pub pool: PgPool,
    pub shards: u32,
    pub registry: FieldRegistry,
    pub wake: std::sync::Arc<changes::RelayWake>,
}

impl Store {
    pub fn new(pool: PgPool, shards: u32) -> Self {
        Self {
            pool,
            shards,
            registry: FieldRegistry::default(),
            wake: Default::default(),
        }
    }
}

/// FNV-1a over a workspace and a key: a stable hash (unlike std's), so a contact keeps its shard
/// across releases.
pub fn stable_hash(workspace_id: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in workspace_id.bytes().chain([b'/']).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The stream shard of a contact (DESIGN §4).
pub fn shard_of(workspace_id: &str, contact_id: &str, shards: u32) -> u32 {
    // The remainder is below `shards`, a u32, so the cast keeps every bit.
    (stable_hash(workspace_id, contact_id) % u64::from(shards.max(1))) as u32
}
