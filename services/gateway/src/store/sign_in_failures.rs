//! Failed sign-ins, counted per key ("account:…", "address:…") over a sliding window, in the
//! gateway's database so that every replica sees the same count.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::StoreError;

/// How many failures `key` had within `window`, and when the oldest of them happened (the count
/// drops by one when it leaves the window).
pub async fn recent(
    pool: &PgPool,
    key: &str,
    window: Duration,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    let row = sqlx::query(
        "SELECT count(*) AS n, min(at) AS oldest FROM sign_in_failures \
         WHERE key = $1 AND at > now() - make_interval(secs => $2)",
    )
    .bind(key)
    .bind(window.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok((row.try_get("n")?, row.try_get("oldest")?))
}

/// Records one failure against each key, and forgets those of the keys that left the window.
pub async fn record(pool: &PgPool, keys: &[String], window: Duration) -> Result<(), StoreError> {
    sqlx::query(
        "WITH gone AS (DELETE FROM sign_in_failures \
           WHERE key = ANY($1) AND at <= now() - make_interval(secs => $2)) \
         INSERT INTO sign_in_failures (key) SELECT unnest($1::text[])",
    )
    .bind(keys)
    .bind(window.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// A good password clears the account's count (not the address's: one success must not reset
/// the limit for someone trying many accounts from one place).
pub async fn clear(pool: &PgPool, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sign_in_failures WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
