//! The runtime every Meisa service shares. Each module is one concern: configuration from the
//! environment, telemetry, shutdown, serving gRPC and calling it, page sizes, the database's
//! setup and health, metrics, and the one table that maps error kinds to gRPC codes and HTTP
//! statuses.

pub mod announce;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod errors;
pub mod grpc;
pub mod metrics;
pub mod paging;
pub mod shutdown;
pub mod telemetry;
