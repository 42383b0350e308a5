//! The contacts service, as the mailer uses it: SetSubscribed(false) for unsubscribes, GetContact
//! for previews by contact id, ReplayChanges for a gap in the change stream. The channel connects
//! lazily, so the mailer starts (and sends) while contacts is down; unsubscribes recorded
//! meanwhile are synced later, and a gap is replayed when contacts answers again.

use meisa_proto::{
    common::{Causation, Contact},
    contacts::{
        GetContactRequest, ReplayChangesRequest, SetSubscribedRequest,
        contacts_service_client::ContactsServiceClient, get_contact_request::By,
    },
    events::ContactChanged,
};
use meisa_runtime::client::{self, ChannelError, Timeouts, Traced};
use tonic::Status;

#[derive(Clone, Debug)]
pub struct Contacts {
    client: ContactsServiceClient<Traced>,
}

impl Contacts {
    pub fn connect_lazy(url: &str) -> Result<Self, ChannelError> {
        let channel = client::channel(url, Timeouts::default())?;
        Ok(Self {
            client: meisa_runtime::traced_client!(ContactsServiceClient, channel),
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
        let contact = resp
            .contact
            .ok_or_else(|| Status::internal("SetSubscribed answered without the contact"))?;
        Ok((contact.version, !resp.changed.is_empty()))
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

    /// The published events of `shard` with `from ..= to`, in seq order. Contacts answers a
    /// bounded page: fewer events than asked for means "ask again from after the last one";
    /// none means contacts no longer has them (past its outbox retention).
    pub async fn replay(
        &self,
        shard: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<ContactChanged>, Status> {
        Ok(self
            .client
            .clone()
            .replay_changes(ReplayChangesRequest {
                shard,
                from_seq: from,
                to_seq: to,
            })
            .await?
            .into_inner()
            .events)
    }
}
