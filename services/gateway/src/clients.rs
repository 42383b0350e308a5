//! The gRPC clients of the three services the gateway calls, on `meisa_runtime::client`
//! channels: lazy (the gateway starts, and answers 503 with `Retry-After`, while a service is
//! still coming up), bounded per call, traced, with the shared message limit. The JSON API and
//! the dashboard use the same clients.

use std::fmt;

use meisa_proto::{
    automations::{
        automations_service_client::AutomationsServiceClient, automations_service_server,
    },
    contacts::{contacts_service_client::ContactsServiceClient, contacts_service_server},
    mailer::{mailer_service_client::MailerServiceClient, mailer_service_server},
};
use meisa_runtime::{
    client::{ChannelError, Traced, channel, check_health},
    traced_client,
};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

use crate::config::Upstream;

pub type ContactsClient = ContactsServiceClient<Traced>;
pub type MailerClient = MailerServiceClient<Traced>;
pub type AutomationsClient = AutomationsServiceClient<Traced>;

/// A service the gateway calls: what its errors and health checks are labelled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Contacts,
    Mailer,
    Automations,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Mailer => "mailer",
            Self::Automations => "automations",
        }
    }

    /// The name the service registers with `grpc.health.v1`.
    fn health_name(self) -> &'static str {
        match self {
            Self::Contacts => contacts_service_server::SERVICE_NAME,
            Self::Mailer => mailer_service_server::SERVICE_NAME,
            Self::Automations => automations_service_server::SERVICE_NAME,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The clients are handles on shared channels: cloning one is cheap, and each call takes its
/// own (tonic's calls need `&mut`), so the accessors hand out clones.
#[derive(Clone)]
pub struct Clients {
    contacts: ContactsClient,
    mailer: MailerClient,
    automations: AutomationsClient,
    contacts_health: HealthClient<Channel>,
    mailer_health: HealthClient<Channel>,
    automations_health: HealthClient<Channel>,
}

impl Clients {
    /// Prepares the channels; nothing is connected until the first call.
    pub fn new(
        contacts: &Upstream,
        mailer: &Upstream,
        automations: &Upstream,
    ) -> Result<Self, (Service, ChannelError)> {
        let open = |service: Service, upstream: &Upstream| {
            channel(&upstream.url, upstream.timeouts).map_err(|e| (service, e))
        };
        let contacts = open(Service::Contacts, contacts)?;
        let mailer = open(Service::Mailer, mailer)?;
        let automations = open(Service::Automations, automations)?;
        Ok(Self {
            contacts: traced_client!(ContactsServiceClient, contacts.clone()),
            mailer: traced_client!(MailerServiceClient, mailer.clone()),
            automations: traced_client!(AutomationsServiceClient, automations.clone()),
            contacts_health: HealthClient::new(contacts),
            mailer_health: HealthClient::new(mailer),
            automations_health: HealthClient::new(automations),
        })
    }

    pub fn contacts(&self) -> ContactsClient {
        self.contacts.clone()
    }

    pub fn mailer(&self) -> MailerClient {
        self.mailer.clone()
    }

    pub fn automations(&self) -> AutomationsClient {
        self.automations.clone()
    }

    /// Whether `service` says it is serving; the error says why not, for a readiness report.
    pub async fn check(&self, service: Service) -> Result<(), String> {
        let mut health = match service {
            Service::Contacts => self.contacts_health.clone(),
            Service::Mailer => self.mailer_health.clone(),
            Service::Automations => self.automations_health.clone(),
        };
        check_health(&mut health, service.health_name()).await
    }
}
