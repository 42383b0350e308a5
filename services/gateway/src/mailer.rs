//! The gRPC client for the mailer service (templates, messages, suppressions, unsubscribe,
//! erasure). Same channel rules as contacts: lazy, bounded, traced (see [`crate::grpc`]).

use meisa_proto::mailer::mailer_service_client::MailerServiceClient;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use tonic_health::pb::health_client::HealthClient;

use crate::grpc::{MAX_MESSAGE_BYTES, PROPAGATE_TRACE, TraceInterceptor};

pub type MailerClient = MailerServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The gRPC service name the mailer registers with `grpc.health.v1`.
pub const HEALTH_SERVICE: &str = "meisa.mailer.v1.MailerService";

pub fn client(channel: Channel) -> MailerClient {
    MailerServiceClient::with_interceptor(channel, PROPAGATE_TRACE)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Whether the mailer says it is serving.
pub async fn check(health: &mut HealthClient<Channel>) -> Result<(), String> {
    crate::grpc::check(health, HEALTH_SERVICE).await
}
