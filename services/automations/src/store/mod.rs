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

use sqlx::{PgPool, Row, postgres::PgRow};

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

/// A postgres interval parameter from a std duration (bound as microseconds). Durations come from
/// the configuration, not from storage; one past 292,000 years is "forever".
pub fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub use meisa_runtime::db::bound as param;

/// A stored value as the type the code uses it as, or sqlx's decode error naming the column
/// (`meisa_runtime::db::stored`): never a default.
pub fn read<T, S>(column: &str, value: S) -> Result<T, sqlx::Error>
where
    S: Copy + std::fmt::Display,
    T: TryFrom<S>,
{
    Ok(meisa_runtime::db::stored(column, value)?)
}

/// A text column holding a name this code does not know (an enum written by a newer version, or
/// by hand).
pub fn unknown(column: &str, value: &str) -> sqlx::Error {
    meisa_runtime::db::Corrupt::new(column, format!("{value:?} is not a known value")).into()
}

/// `column` of `row`, an `int` that stands for a u32 (an index, a depth).
pub fn get_u32(row: &PgRow, column: &str) -> Result<u32, sqlx::Error> {
    read(column, row.try_get::<i32, _>(column)?)
}

pub fn get_opt_u32(row: &PgRow, column: &str) -> Result<Option<u32>, sqlx::Error> {
    row.try_get::<Option<i32>, _>(column)?
        .map(|v| read(column, v))
        .transpose()
}
