//! Postgres persistence. Every query is scoped by workspace.

pub mod changes;
pub mod contacts;
pub mod fields;
pub mod outbox;
pub mod upsert;

use sqlx::PgPool;

pub use fields::FieldRegistry;

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

/// FNV-1a over workspace and contact: a stable hash (unlike std's) so a contact keeps its shard
/// across releases.
pub fn shard_of(workspace_id: &str, contact_id: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in workspace_id.bytes().chain([b'/']).chain(contact_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(h % u64::from(shards.max(1))).unwrap_or(0)
}
