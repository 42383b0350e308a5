//! One integration binary (`cargo test -p meisa-automations`): every service as a process on its
//! own databases and stream prefix, so the tests run in parallel against one Postgres and Redis.

mod api;
mod consumer;
mod crash;
mod e2e;
mod helpers;
mod sweep;
