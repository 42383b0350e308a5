//! The contacts service, as the mailer uses it: SetSubscribed(false) for unsubscribes, GetContact
//! for previews by contact id. The channel connects lazily, so the mailer starts (and sends) while
//! contacts is down; unsubscribes recorded meanwhile are synced later.

use std::time::Duration;

use meisa_proto::{
    common::{Causation, Contact},
    contacts::{
        GetContactRequest, SetSubscribedRequest, contacts_service_client::ContactsServiceClient,
        get_contact_request::By,
    },
};
use tonic::{
    Request, Status,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

type Interceptor = fn(Request<()>) -> Result<Request<()>, Status>;

#[derive(Clone, Debug)]
pub struct Contacts {
    client: ContactsServiceClient<InterceptedService<Channel, Interceptor>>,
}

impl Contacts {
    pub fn connect_lazy(url: &str) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url:?} is not a valid URL: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10));
        let channel = endpoint.connect_lazy();
        let interceptor: Interceptor = meisa_runtime::telemetry::propagate_trace;
        Ok(Self {
            client: ContactsServiceClient::with_interceptor(channel, interceptor),
        })
    }

    /// Sets `subscribed` to false; returns the contact's version afterwards and whether it changed.
    pub async fn unsubscribe(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<(i64, bool), Status> {
        let resp = self
            .client
            .clone()
            .set_subscribed(SetSubscribedRequest {
                workspace_id: workspace_id.into(),
                id: contact_id.into(),
                subscribed: false,
                causation: Some(Causation {
                    source: "unsubscribe".into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        let version = resp.contact.map(|c| c.version).unwrap_or(0);
        Ok((version, !resp.changed.is_empty()))
    }

    pub async fn get_contact(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Contact, Status> {
        self.client
            .clone()
            .get_contact(GetContactRequest {
                workspace_id: workspace_id.into(),
                by: Some(By::Id(contact_id.into())),
            })
            .await?
            .into_inner()
            .contact
            .ok_or_else(|| Status::not_found("contact not found"))
    }
}
