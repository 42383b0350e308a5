//! Integration tests: each test gets its own Postgres database, a real SMTP server on loopback
//! (meisa_testkit::smtp) and the mailer on port 0.

mod crash;
mod delivery;
mod helpers;
mod send;
mod templates;
mod unsubscribe;
