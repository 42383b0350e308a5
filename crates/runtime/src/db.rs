//! Database setup every service shares: `<service> migrate` creates its database when missing,
//! so it works on a fresh Postgres server and as a Kubernetes Job.

use sqlx::{migrate::MigrateDatabase, postgres::PgPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot reach or create the database (DATABASE_URL): {0}")]
    Connect(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The database could not be reached or is going away (as opposed to a query that is wrong): the
/// caller gets "unavailable, retry" rather than an internal error, and work is retried.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections: a server
        // restarting or full, not a bad query.
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            Some("57P01" | "57P02" | "57P03" | "53300")
        ),
        _ => false,
    }
}

/// Worth running again as it was: the database is unavailable, or the transaction lost a
/// serialization or deadlock race (40001, 40P01) to another one touching the same rows.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    is_unavailable(e) || lost_race(e)
}

/// The transaction lost a serialization or deadlock race (40001, 40P01): running it again,
/// alone, succeeds.
pub fn lost_race(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
}

/// A value read back from storage that does not fit its type: a negative `seq`, a status no
/// release wrote, a payload that does not decode. Not the caller's fault and not mended by a
/// retry, and never read as a default (a `seq` of 0 would republish, a dropped row would hide a
/// change): the operation fails and the caller gets an internal error, with this in the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stored {column} is not valid: {problem}")]
pub struct Corrupt {
    /// `table.column`, or what the value is.
    pub column: String,
    pub problem: String,
}

impl Corrupt {
    pub fn new(column: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            problem: problem.into(),
        }
    }
}

/// Code that reads rows with sqlx can answer a corrupt value as sqlx's own decode error.
impl From<Corrupt> for sqlx::Error {
    fn from(c: Corrupt) -> Self {
        sqlx::Error::ColumnDecode {
            index: c.column,
            source: c.problem.into(),
        }
    }
}

/// A stored number as the type the code uses it as (a seq, a shard, an index, a count).
pub fn stored<T, S>(column: &str, value: S) -> Result<T, Corrupt>
where
    S: Copy + std::fmt::Display,
    T: TryFrom<S>,
{
    T::try_from(value).map_err(|_| {
        Corrupt::new(
            column,
            format!("{value} does not fit a {}", std::any::type_name::<T>()),
        )
    })
}

/// A stored word (a status, a kind) as the type it spells.
pub fn stored_word<T>(
    column: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, Corrupt> {
    parse(value).ok_or_else(|| Corrupt::new(column, format!("{value:?} is not a known value")))
}

/// A value as the column type it is written to; one that does not fit is refused rather than
/// clamped (a clamped seq or index would name another row).
pub fn bound<T, S>(column: &str, value: S) -> Result<T, sqlx::Error>
where
    S: Copy + std::fmt::Display,
    T: TryFrom<S>,
{
    T::try_from(value).map_err(|_| {
        sqlx::Error::Encode(format!("{column} = {value} does not fit its column").into())
    })
}

/// Creates the database named in `database_url` when it does not exist yet. A role without
/// CREATEDB gets an error only when the database is really missing.
pub async fn ensure_database(database_url: &str) -> Result<(), sqlx::Error> {
    if sqlx::Postgres::database_exists(database_url).await? {
        return Ok(());
    }
    tracing::info!("creating the database");
    match sqlx::Postgres::create_database(database_url).await {
        Ok(()) => Ok(()),
        // Someone else (a second replica's migrate Job, a parallel test) created it meanwhile.
        Err(e)
            if sqlx::Postgres::database_exists(database_url)
                .await
                .unwrap_or(false) =>
        {
            tracing::debug!(error = %e, "database appeared while creating it");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Creates the database if needed, then applies `migrator`'s migrations.
pub async fn migrate(
    database_url: &str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), MigrateError> {
    ensure_database(database_url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    migrator.run(&pool).await?;
    pool.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_do_not_fit_are_errors_naming_the_column() {
        assert_eq!(stored::<u64, i64>("outbox.seq", 7), Ok(7));
        let e = stored::<u64, i64>("outbox.seq", -1).unwrap_err();
        assert_eq!(e.column, "outbox.seq");
        assert!(e.to_string().contains("-1"), "{e}");
        assert!(stored_word("messages.status", "sent", |w| (w == "sent").then_some(1)).is_ok());
        assert!(stored_word("messages.status", "lost", |w| (w == "sent").then_some(1)).is_err());
        assert!(bound::<i64, u64>("seq", u64::MAX).is_err());
        assert!(matches!(
            sqlx::Error::from(Corrupt::new("a.b", "bad")),
            sqlx::Error::ColumnDecode { .. }
        ));
    }
}
