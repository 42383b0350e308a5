//! The gateway's own tables: workspaces, the API keys that act for them, and the dashboard's
//! accounts, sessions and sign-in throttle.

pub mod accounts;
pub mod keys;
pub mod sessions;
pub mod settings;
pub mod sign_in_failures;
pub mod workspaces;

use std::time::Duration;

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    /// The database could not be reached (as opposed to a query that is wrong): the caller gets a
    /// 503 and retries rather than a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(e) => meisa_runtime::db::is_unavailable(e),
        }
    }
}

pub fn connect_options(database_url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    database_url.parse()
}

pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        // An API call waits at most this long for a connection, then answers 503.
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(connect_options(database_url)?)
        .await
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
