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
