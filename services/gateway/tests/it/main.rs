//! Gateway integration tests: every test gets its own gateway and contacts databases, its own
//! stream prefix and its own ports, so the suite runs in parallel against one Postgres and one
//! Redis. `blackbox` runs the real binaries as processes.

mod auth;
mod batch;
mod blackbox;
mod custom_fields;
mod edge;
mod helpers;
mod matching;
mod reads;
mod validation;
