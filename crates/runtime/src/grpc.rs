//! Serving gRPC the same way in every service: `grpc.health.v1` (NotServing until the service
//! says it is ready), reflection from the generated descriptor set, a span per call that continues
//! the caller's trace, and a graceful stop on the shutdown token.

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::server::HealthReporter;

use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("gRPC reflection could not load the descriptor set: {0}")]
    Reflection(String),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Routes with health and reflection already added; add the service's own with `add_service`.
pub fn base_routes() -> Result<(RoutesBuilder, HealthReporter), GrpcError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(meisa_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| GrpcError::Reflection(e.to_string()))?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(health).add_service(reflection);
    Ok((routes, reporter))
}

/// Serves until `shutdown` is cancelled, then lets in-flight calls finish.
pub async fn serve(
    routes: Routes,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), GrpcError> {
    tonic::transport::Server::builder()
        .trace_fn(|req| {
            let span = tracing::info_span!("grpc", rpc = %req.uri().path());
            telemetry::set_parent_from_headers(&span, req.headers());
            span
        })
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await?;
    Ok(())
}
