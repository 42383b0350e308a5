//! Calling another Meisa service: a channel that connects lazily (a service starts, and answers
//! "unavailable, retry" rather than failing, while a dependency is still coming up), a bound on
//! every call, the interceptor that carries the current trace to the server, and one message
//! size limit on both sides of every call.
//!
//! ```text
//! let channel = meisa_runtime::client::channel(&url, Timeouts::default())?;
//! let contacts = meisa_runtime::traced_client!(ContactsServiceClient, channel);
//! ```

use std::time::Duration;

use tonic::{
    Request, Status,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The largest gRPC message any Meisa server accepts or client reads. A batch of 1,000 contacts,
/// or a page of templates with their sources, can exceed tonic's 4 MiB default.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub type TraceInterceptor = fn(Request<()>) -> Result<Request<()>, Status>;

/// The interceptor every client is built with.
pub const PROPAGATE_TRACE: TraceInterceptor = crate::telemetry::propagate_trace;

/// A channel through the trace interceptor: what every generated client is built on.
pub type Traced = InterceptedService<Channel, TraceInterceptor>;

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// The bound on one call, connecting included.
    pub call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            call: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{url:?} is not a usable gRPC address: {source}")]
pub struct ChannelError {
    pub url: String,
    #[source]
    pub source: tonic::transport::Error,
}

pub fn channel(url: &str, timeouts: Timeouts) -> Result<Channel, ChannelError> {
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|source| ChannelError {
        url: url.to_string(),
        source,
    })?;
    Ok(endpoint
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.call)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect_lazy())
}

/// The channel with the trace interceptor, for `XClient::new`-style constructors.
pub fn traced(channel: Channel) -> Traced {
    InterceptedService::new(channel, PROPAGATE_TRACE)
}

/// Builds a generated client on a channel: traced, with [`MAX_MESSAGE_BYTES`] both ways.
#[macro_export]
macro_rules! traced_client {
    ($client:ident, $channel:expr) => {
        $client::new($crate::client::traced($channel))
            .max_decoding_message_size($crate::client::MAX_MESSAGE_BYTES)
            .max_encoding_message_size($crate::client::MAX_MESSAGE_BYTES)
    };
}

/// Whether the server says `service` is serving. A server that does not know the service name
/// (an older build, or one that reports only the overall status) is asked for the overall
/// status instead. The error says why, in words for a readiness report.
pub async fn check_health(health: &mut HealthClient<Channel>, service: &str) -> Result<(), String> {
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
