//! Postgres access. Every query is scoped by workspace, except the two that start from an
//! unsubscribe token (which names a message) and the delivery queue (which serves all workspaces).

pub mod changes;
mod messages;
mod suppressions;
mod templates;
mod unsubscribes;

pub use messages::{Job, MessageFilter, MessageRow, NewMessage, SendGate};
pub use suppressions::SuppressionRow;
pub use templates::{TemplateFields, TemplateRow};
pub use unsubscribes::{PendingUnsubscribe, UnsubscribeRow};

use sqlx::PgPool;

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
