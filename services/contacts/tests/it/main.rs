//! Integration tests of the contacts service on real Postgres and Redis. Each test gets its own
//! database and stream prefix, so they run in parallel.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod matching;
mod ops;
mod outbox;
mod reads;

pub use helpers::*;
