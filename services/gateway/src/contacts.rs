//! The gRPC client for the contacts service. The channel connects lazily, so the gateway starts
//! (and answers 503 with `Retry-After`) while contacts is still coming up; every call carries the
//! current trace to the server.

use std::time::Duration;

use meisa_proto::contacts::contacts_service_client::ContactsServiceClient;
use tonic::{
    Request, Status,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub type TraceInterceptor = fn(Request<()>) -> Result<Request<()>, Status>;
pub type ContactsClient = ContactsServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The gRPC service name contacts registers with `grpc.health.v1`.
pub const HEALTH_SERVICE: &str = "meisa.contacts.v1.ContactsService";

/// A batch of 1,000 contacts with their full state can exceed tonic's 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

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

pub fn client(channel: Channel) -> ContactsClient {
    ContactsServiceClient::with_interceptor(
        channel,
        meisa_runtime::telemetry::propagate_trace as TraceInterceptor,
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Whether contacts says it is serving. A server that does not know the service name (an older
/// build, or one that only reports the overall status) is asked for the overall status instead.
pub async fn check(health: &mut HealthClient<Channel>) -> Result<(), String> {
    let status = match health
        .check(HealthCheckRequest {
            service: HEALTH_SERVICE.into(),
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
