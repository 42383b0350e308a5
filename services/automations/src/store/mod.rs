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

use std::fmt::Display;

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

/// A value read back from `column` as the type the code uses it as (a seq, a shard, a step
/// index, a count). One that does not fit was not written by this code: it is an error naming
/// the column, never a silent default.
pub fn read<T, S>(column: &str, value: S) -> Result<T, sqlx::Error>
where
    S: Copy + Display,
    T: TryFrom<S>,
{
    T::try_from(value).map_err(|_| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("{value} does not fit a {}", std::any::type_name::<T>()).into(),
    })
}

/// A text column holding a name this code does not know (an enum written by a newer version, or
/// by hand).
pub fn unknown(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("{value:?} is not a known value").into(),
    }
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

/// A value as the column type it is written to; one that does not fit is refused rather than
/// clamped (a clamped seq or index would name another row).
pub fn param<T, S>(name: &str, value: S) -> Result<T, sqlx::Error>
where
    S: Copy + Display,
    T: TryFrom<S>,
{
    T::try_from(value).map_err(|_| {
        sqlx::Error::Encode(format!("{name} = {value} does not fit its column").into())
    })
}
