//! One integration binary (`cargo test -p meisa-automations`): every service as a process on its
//! own databases and stream prefix, so the tests run in parallel against one Postgres and Redis.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod consumer;
mod crash;
mod e2e;
mod erasure;
mod helpers;
mod sweep;
