//! The runtime every Meisa service shares. Each module is one concern:
//! configuration from the environment, telemetry, shutdown, gRPC serving, and the one table that
//! maps error kinds to gRPC codes and HTTP statuses.

pub mod config;
pub mod db;
pub mod errors;
pub mod grpc;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
