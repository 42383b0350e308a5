//! What the gateway's gRPC clients share: lazily connecting channels (the gateway starts, and
//! answers 503 with `Retry-After`, while a service is still coming up), the interceptor that
//! carries the current trace to the server, and the `grpc.health.v1` check behind `/readyz`.

use std::time::Duration;

use tonic::{
    Request, Status,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub type TraceInterceptor = fn(Request<()>) -> Result<Request<()>, Status>;

/// The interceptor every client is built with.
pub const PROPAGATE_TRACE: TraceInterceptor = meisa_runtime::telemetry::propagate_trace;

/// A batch of 1,000 contacts with their full state, or a page of templates with their sources,
/// can exceed tonic's 4 MiB default.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub fn channel(
    url: &str,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect_lazy())
}

/// Whether the server says `service` is serving. A server that does not know the service name
/// (an older build, or one that only reports the overall status) is asked for the overall status
/// instead.
pub async fn check(health: &mut HealthClient<Channel>, service: &str) -> Result<(), String> {
    let status = match health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
    {
        Ok(r) => r.into_inner().status,
        Err(s) if s.code() == tonic::Code::NotFound => {
            health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|s| describe(&s))?
                .into_inner()
                .status
        }
        Err(s) => return Err(describe(&s)),
    };
    if status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(format!(
            "not serving ({})",
            ServingStatus::try_from(status).map_or("unknown", |s| s.as_str_name())
        ))
    }
}

fn describe(s: &Status) -> String {
    match s.code() {
        tonic::Code::Unavailable => "unreachable".into(),
        code => format!("health check failed: {code:?}"),
    }
}
