//! Postgres persistence. Every query is scoped by workspace where a workspace owns the row.
//!
//! Each write path is one transaction, so a process that dies half-way leaves either all of a
//! write or none of it; what each worker does across several transactions (and the calls between
//! them) is described in its module.

pub mod activity;
pub mod consumer;
pub mod definitions;
pub mod effects;
pub mod enrollments;
pub mod jobs;
pub mod projections;

use sqlx::PgPool;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct Store {
    pub pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// A postgres interval parameter from a std duration (bound as microseconds).
pub fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
