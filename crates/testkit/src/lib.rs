//! Every integration test gets its own Postgres database and its own Redis key prefix, so the
//! whole suite runs in parallel against one Postgres and one Redis. Databases are dropped when the
//! [`TestDb`] is dropped (kept when `MEISA_TEST_KEEP_DB=1`, for debugging).
//!
//! `MEISA_TEST_PG` (default `postgres://postgres@127.0.0.1:5432`) and `MEISA_TEST_REDIS`
//! (default `redis://127.0.0.1:6379`) point the tests elsewhere.

// Test support: a failure here is a failed test, so it panics with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::{Connection, Executor, PgConnection};

pub mod process;
pub mod smtp;
pub mod wait;

pub use process::Service;
pub use wait::{eventually, streams_caught_up, until_streams_caught_up};

pub fn pg_server_url() -> String {
    std::env::var("MEISA_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("MEISA_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A short unique name, e.g. for a stream prefix: `t_3f2a9c1b0d4e`.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Creates an empty database; the caller runs its service's migrations on `url`.
    pub async fn create(service: &str) -> TestDb {
        let name = unique_name(&format!("meisa_test_{service}"));
        let server = pg_server_url();
        let mut conn = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| {
                panic!("tests need Postgres at {server} (run `make test`, which starts it): {e}")
            });
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create test database");
        TestDb {
            url: format!("{server}/{name}"),
            name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var("MEISA_TEST_KEEP_DB").is_ok_and(|v| v == "1") {
            return;
        }
        let name = self.name.clone();
        let server = pg_server_url();
        // Drop runs inside or outside a runtime; a thread with its own runtime works in both.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&format!("{server}/postgres")).await {
                    let _ = conn
                        .execute(
                            format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

/// Deletes every Redis key under `prefix:`; call at the end of a test that used a stream prefix.
pub async fn clean_redis(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// A port on loopback that was free a moment ago. Not for starting services (they bind port 0
/// and announce what they got, see [`Service`]): only for an address where nothing listens (a
/// dependency that is down), or one a test must reuse after a restart.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}
