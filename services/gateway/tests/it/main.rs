//! Gateway integration tests: every test gets its own gateway and contacts databases, its own
//! stream prefix and its own ports, so the suite runs in parallel against one Postgres and one
//! Redis. `blackbox` runs the real binaries as processes. The mailer runs in-process too,
//! delivering to the testkit SMTP server; `automations` also runs the automations service.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod automations;
mod batch;
mod blackbox;
mod custom_fields;
mod dashboard;
mod edge;
mod helpers;
mod matching;
mod messages;
mod reads;
mod templates;
mod unsubscribe;
mod validation;
