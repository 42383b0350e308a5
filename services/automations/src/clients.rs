//! The contacts and mailer services as this service calls them. Channels connect lazily, so the
//! service starts while a dependency is down (the calls then fail as transient and are retried),
//! and every call carries the current trace.

use std::{collections::HashMap, time::Duration};

use meisa_conditions::FieldType;
use meisa_proto::{
    common::{Causation, Contact, PageRequest},
    contacts::{self as cpb, contacts_service_client::ContactsServiceClient},
    events::ContactChanged,
    field_type_of,
    mailer::{self as mpb, mailer_service_client::MailerServiceClient},
};
use meisa_runtime::{
    client::{ChannelError, Timeouts, Traced, channel},
    traced_client,
};
use tonic::Status;

/// The bound on one call. Job and enrollment leases must be longer (checked at start).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn timeouts() -> Timeouts {
    Timeouts {
        call: CALL_TIMEOUT,
        ..Timeouts::default()
    }
}

#[derive(Clone, Debug)]
pub struct Contacts {
    client: ContactsServiceClient<Traced>,
}

/// What a contact lookup found.
pub enum Found {
    Contact(Box<Contact>),
    /// Erased, or never existed in this workspace.
    Gone,
}

impl Contacts {
    pub fn connect_lazy(url: &str) -> Result<Self, ChannelError> {
        Ok(Self {
            client: traced_client!(ContactsServiceClient, channel(url, timeouts())?),
        })
    }

    pub async fn get(&self, workspace_id: &str, id: &str) -> Result<Found, Status> {
        let r = self
            .client
            .clone()
            .get_contact(cpb::GetContactRequest {
                workspace_id: workspace_id.into(),
                by: Some(cpb::get_contact_request::By::Id(id.into())),
            })
            .await;
        match r {
            Ok(r) => Ok(r
                .into_inner()
                .contact
                .map_or(Found::Gone, |c| Found::Contact(Box::new(c)))),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(Found::Gone),
            Err(s) => Err(s),
        }
    }

    /// The workspace's custom fields and their types, by bare name.
    pub async fn field_types(
        &self,
        workspace_id: &str,
    ) -> Result<HashMap<String, FieldType>, Status> {
        let r = self
            .client
            .clone()
            .list_fields(cpb::ListFieldsRequest {
                workspace_id: workspace_id.into(),
            })
            .await?
            .into_inner();
        // A type this build does not know (a newer contacts service) leaves the field out: it
        // then counts as not seen yet, which a definition may name without a type check.
        Ok(r.fields
            .into_iter()
            .filter_map(|f| Some((f.name, field_type_of(f.r#type).ok()?)))
            .collect())
    }

    /// One page of the workspace's contacts (oldest first) and the cursor of the next ("" at the
    /// end).
    pub async fn list(
        &self,
        workspace_id: &str,
        cursor: &str,
        limit: u32,
    ) -> Result<(Vec<Contact>, String), Status> {
        let r = self
            .client
            .clone()
            .list_contacts(cpb::ListContactsRequest {
                workspace_id: workspace_id.into(),
                page: Some(PageRequest {
                    limit,
                    cursor: cursor.into(),
                }),
                tag: String::new(),
                query: String::new(),
            })
            .await?
            .into_inner();
        Ok((r.contacts, r.next_cursor))
    }

    /// Adds (`add`) or removes one tag; returns whether the tag set changed, `None` when the
    /// contact no longer exists.
    pub async fn tag(
        &self,
        workspace_id: &str,
        id: &str,
        tag: &str,
        add: bool,
        causation: Causation,
    ) -> Result<Option<bool>, Status> {
        let (workspace_id, id, tags) = (workspace_id.into(), id.into(), vec![tag.into()]);
        let causation = Some(causation);
        let mut client = self.client.clone();
        let changed = if add {
            client
                .add_tags(cpb::AddTagsRequest {
                    workspace_id,
                    id,
                    tags,
                    causation,
                })
                .await
                .map(|r| r.into_inner().changed)
        } else {
            client
                .remove_tags(cpb::RemoveTagsRequest {
                    workspace_id,
                    id,
                    tags,
                    causation,
                })
                .await
                .map(|r| r.into_inner().changed)
        };
        match changed {
            Ok(changed) => Ok(Some(!changed.is_empty())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(s),
        }
    }

    /// Published events of one shard with `from <= seq <= to`, in order; the contacts service
    /// answers at most 1,000 per call, so callers page by the last seq returned.
    pub async fn replay(
        &self,
        shard: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<ContactChanged>, Status> {
        Ok(self
            .client
            .clone()
            .replay_changes(cpb::ReplayChangesRequest {
                shard,
                from_seq: from,
                to_seq: to,
            })
            .await?
            .into_inner()
            .events)
    }
}

#[derive(Clone, Debug)]
pub struct Mailer {
    client: MailerServiceClient<Traced>,
}

impl Mailer {
    pub fn connect_lazy(url: &str) -> Result<Self, ChannelError> {
        Ok(Self {
            client: traced_client!(MailerServiceClient, channel(url, timeouts())?),
        })
    }

    /// Whether the template exists in the workspace. A malformed id is an INVALID_ARGUMENT
    /// status, which the caller reports against its own field.
    pub async fn template_exists(&self, workspace_id: &str, id: &str) -> Result<bool, Status> {
        let r = self
            .client
            .clone()
            .get_template(mpb::GetTemplateRequest {
                workspace_id: workspace_id.into(),
                id: id.into(),
            })
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
            Err(s) => Err(s),
        }
    }

    pub async fn send(&self, req: mpb::SendEmailRequest) -> Result<mpb::Message, Status> {
        let r = self.client.clone().send_email(req).await?.into_inner();
        r.message
            .ok_or_else(|| Status::internal("the mailer answered SendEmail without a message"))
    }
}

/// The mailer's status of a message, as activity records it.
pub fn message_status_name(status: i32) -> &'static str {
    match mpb::MessageStatus::try_from(status).unwrap_or(mpb::MessageStatus::Unspecified) {
        mpb::MessageStatus::Queued => "queued",
        mpb::MessageStatus::Sent => "sent",
        mpb::MessageStatus::Failed => "failed",
        mpb::MessageStatus::Suppressed => "suppressed",
        mpb::MessageStatus::Skipped => "skipped",
        mpb::MessageStatus::Unspecified => "unknown",
    }
}

/// Whether the mailer took the email for sending (as opposed to suppressing or skipping it).
pub fn message_accepted(status: i32) -> bool {
    matches!(
        mpb::MessageStatus::try_from(status),
        Ok(mpb::MessageStatus::Queued | mpb::MessageStatus::Sent)
    )
}
