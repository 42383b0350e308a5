//! The gRPC client for the automations service (automations, sequences, enrollments, stats,
//! contact activity). Same channel rules as contacts and the mailer: lazy, bounded, traced (see
//! [`crate::grpc`]).

use meisa_proto::automations::automations_service_client::AutomationsServiceClient;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use tonic_health::pb::health_client::HealthClient;

use crate::grpc::{MAX_MESSAGE_BYTES, PROPAGATE_TRACE, TraceInterceptor};

pub type AutomationsClient =
    AutomationsServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The gRPC service name automations registers with `grpc.health.v1`.
pub const HEALTH_SERVICE: &str = "meisa.automations.v1.AutomationsService";

pub fn client(channel: Channel) -> AutomationsClient {
    AutomationsServiceClient::with_interceptor(channel, PROPAGATE_TRACE)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Whether automations says it is serving.
pub async fn check(health: &mut HealthClient<Channel>) -> Result<(), String> {
    crate::grpc::check(health, HEALTH_SERVICE).await
}
