//! Integration tests: each test gets its own Postgres database, a real SMTP server on loopback
//! (meisa_testkit::smtp) and the mailer on port 0.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod delivery;
mod erasure;
mod helpers;
mod send;
mod templates;
mod unsubscribe;
