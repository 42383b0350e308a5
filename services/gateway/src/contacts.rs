//! The gRPC client for the contacts service (see [`crate::grpc`] for the channel it runs on).

use meisa_proto::contacts::contacts_service_client::ContactsServiceClient;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use tonic_health::pb::health_client::HealthClient;

pub use crate::grpc::channel;
use crate::grpc::{MAX_MESSAGE_BYTES, PROPAGATE_TRACE, TraceInterceptor};

pub type ContactsClient = ContactsServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The gRPC service name contacts registers with `grpc.health.v1`.
pub const HEALTH_SERVICE: &str = "meisa.contacts.v1.ContactsService";

pub fn client(channel: Channel) -> ContactsClient {
    ContactsServiceClient::with_interceptor(channel, PROPAGATE_TRACE)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Whether contacts says it is serving.
pub async fn check(health: &mut HealthClient<Channel>) -> Result<(), String> {
    crate::grpc::check(health, HEALTH_SERVICE).await
}
