//! The gRPC edge: `meisa.contacts.v1.ContactsService`. Converts protobuf to domain types (the
//! only place input is parsed) and errors to `tonic::Status` (the only place they are mapped).

use meisa_proto::{
    common, contacts as pb, contacts::contacts_service_server::ContactsService, events,
};
use meisa_runtime::{errors::ApiError, paging::Page, telemetry};
use tonic::{Request, Response, Status};

use crate::{
    convert,
    domain::{ContactInput, Edit, input::parse_tags},
    error::ContactsError,
    store::{
        Store,
        changes::{self, ChangeMeta},
        contacts::{self, Lookup},
        fields, outbox,
        plan::{Outcome, Saved, Write, WriteItem},
    },
    worker::writer::Writer,
};

pub const MAX_BATCH_ITEMS: usize = 1000;

pub struct ContactsApi {
    store: Store,
    writer: Writer,
}

impl ContactsApi {
    pub fn new(store: Store, writer: Writer) -> Self {
        Self { store, writer }
    }

    /// An edit of one existing contact, through the writer like every write: its state after
    /// and what changed.
    async fn edit(
        &self,
        workspace_id: &str,
        id: &str,
        causation: Option<common::Causation>,
        edit: Edit,
    ) -> Result<(Option<common::Contact>, Vec<String>), Status> {
        let item = WriteItem {
            workspace_id: workspace(workspace_id)?,
            write: Write::Edit {
                id: contact_id(id)?.to_string(),
                edit,
            },
            meta: meta(causation),
        };
        let saved = saved(self.writer.write(item).await?)?;
        Ok((Some(convert::contact(&saved.contact)), saved.changed))
    }
}

/// The search text of a list, as an ILIKE pattern that matches it anywhere: its own `%`, `_` and
/// `\\` are escaped, so a search for "50%" finds "50%" and not everything.
fn search_query(raw: &str) -> Result<Option<String>, Status> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > 200 {
        return Err(ApiError::field("query", "at most 200 characters").into());
    }
    if text.contains('\0') {
        return Err(ApiError::field("query", "must not contain a NUL character").into());
    }
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(Some(pattern))
}

fn workspace(id: &str) -> Result<String, Status> {
    if id.trim().is_empty() {
        return Err(ApiError::field("workspace_id", "required").into());
    }
    Ok(id.to_string())
}

fn contact_id(id: &str) -> Result<&str, Status> {
    if id.is_empty() {
        return Err(ApiError::field("id", "required").into());
    }
    Ok(id)
}

fn meta(causation: Option<common::Causation>) -> ChangeMeta {
    ChangeMeta {
        causation,
        traceparent: telemetry::current_traceparent(),
    }
}

/// The contact's state is built only for a caller that asked for it: the public upsert answers
/// without it, and a batch of 1,000 full contacts is most of a 64 MiB message.
fn upsert_response(o: Saved, return_contact: bool) -> pb::UpsertResponse {
    pb::UpsertResponse {
        contact: return_contact.then(|| convert::contact(&o.contact)),
        id: o.contact.id,
        created: o.created,
        version: o.contact.version,
        changed: o.changed,
    }
}

/// What an upsert or an edit answers; only an erasure answers `Erased`.
fn saved(o: Outcome) -> Result<Saved, ApiError> {
    match o {
        Outcome::Saved(s) => Ok(s),
        Outcome::Erased => {
            tracing::error!("a write that is not an erasure answered as one");
            Err(ApiError::internal())
        }
    }
}

#[tonic::async_trait]
impl ContactsService for ContactsApi {
    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn upsert(
        &self,
        req: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let req = req.into_inner();
        let workspace_id = workspace(&req.workspace_id)?;
        let input = ContactInput::parse(&req.contact.unwrap_or_default())?;
        let outcome = self
            .writer
            .write(WriteItem {
                workspace_id,
                write: Write::Upsert(input),
                meta: meta(req.causation),
            })
            .await?;
        Ok(Response::new(upsert_response(
            saved(outcome)?,
            req.return_contact,
        )))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn batch_upsert(
        &self,
        req: Request<pb::BatchUpsertRequest>,
    ) -> Result<Response<pb::BatchUpsertResponse>, Status> {
        let req = req.into_inner();
        let workspace_id = workspace(&req.workspace_id)?;
        if req.contacts.len() > MAX_BATCH_ITEMS {
            return Err(ApiError::field(
                "contacts",
                format!(
                    "at most {MAX_BATCH_ITEMS} contacts per batch, got {}",
                    req.contacts.len()
                ),
            )
            .into());
        }
        let meta = meta(req.causation);
        // Per input, in order: its parse error, or None when it went to the writer.
        let mut rejected = Vec::with_capacity(req.contacts.len());
        let mut items = Vec::with_capacity(req.contacts.len());
        for c in &req.contacts {
            match ContactInput::parse(c) {
                Ok(input) => {
                    items.push(WriteItem {
                        workspace_id: workspace_id.clone(),
                        write: Write::Upsert(input),
                        meta: meta.clone(),
                    });
                    rejected.push(None);
                }
                Err(e) => rejected.push(Some(e)),
            }
        }
        let mut done = self.writer.write_many(items).await.into_iter();
        let results = rejected
            .into_iter()
            .map(|p| {
                let r = match p {
                    Some(e) => Err(e),
                    None => match done.next() {
                        Some(Ok(o)) => saved(o),
                        Some(Err(ContactsError::Rejected(e))) => Err(e),
                        Some(Err(_)) | None => Err(ApiError::unavailable(
                            "the contacts service is restarting; retry this item",
                        )),
                    },
                };
                pb::BatchUpsertResult {
                    result: Some(match r {
                        Ok(o) => pb::batch_upsert_result::Result::Ok(upsert_response(
                            o,
                            req.return_contacts,
                        )),
                        Err(e) => pb::batch_upsert_result::Result::Error(pb::ItemError {
                            code: e.code.as_str().to_string(),
                            message: e.message,
                            field: e.field.unwrap_or_default(),
                        }),
                    }),
                }
            })
            .collect();
        Ok(Response::new(pb::BatchUpsertResponse { results }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn get_contact(
        &self,
        req: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::GetContactResponse>, Status> {
        let req = req.into_inner();
        let workspace_id = workspace(&req.workspace_id)?;
        use pb::get_contact_request::By;
        let (by, what) = match &req.by {
            Some(By::Id(id)) => (Lookup::Id(id), format!("id {id}")),
            Some(By::Email(e)) => (Lookup::Email(e), format!("email {e}")),
            Some(By::ExternalId(x)) => (Lookup::ExternalId(x), format!("external_id {x}")),
            None => {
                return Err(ApiError::field("by", "give an id, an email or an external_id").into());
            }
        };
        let contact = contacts::get(&self.store.pool, &workspace_id, by)
            .await
            .map_err(ContactsError::from)?
            .ok_or_else(|| {
                ApiError::not_found(format!("no contact with {what} in this workspace"))
            })?;
        Ok(Response::new(pb::GetContactResponse {
            contact: Some(convert::contact(&contact)),
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn list_contacts(
        &self,
        req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        let req = req.into_inner();
        let workspace_id = workspace(&req.workspace_id)?;
        let page = Page::of(req.page.as_ref());
        let tag = Some(req.tag.as_str()).filter(|t| !t.is_empty());
        let query = search_query(&req.query)?;
        let rows = contacts::list(
            &self.store.pool,
            &workspace_id,
            tag,
            query.as_deref(),
            page.cursor.as_deref(),
            page.fetch(),
        )
        .await
        .map_err(ContactsError::from)?;
        let (rows, next_cursor) = page.serve(rows, |c| c.id.clone());
        Ok(Response::new(pb::ListContactsResponse {
            contacts: rows.iter().map(convert::contact).collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn delete_contact(
        &self,
        req: Request<pb::DeleteContactRequest>,
    ) -> Result<Response<pb::DeleteContactResponse>, Status> {
        let req = req.into_inner();
        let workspace_id = workspace(&req.workspace_id)?;
        let id = contact_id(&req.id)?.to_string();
        self.writer
            .write(WriteItem {
                workspace_id,
                write: Write::Erase { id },
                meta: meta(req.causation),
            })
            .await?;
        Ok(Response::new(pb::DeleteContactResponse {}))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn add_tags(
        &self,
        req: Request<pb::AddTagsRequest>,
    ) -> Result<Response<pb::AddTagsResponse>, Status> {
        let r = req.into_inner();
        let edit = Edit::AddTags(parse_tags(&r.tags)?);
        let (contact, changed) = self.edit(&r.workspace_id, &r.id, r.causation, edit).await?;
        Ok(Response::new(pb::AddTagsResponse { contact, changed }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn remove_tags(
        &self,
        req: Request<pb::RemoveTagsRequest>,
    ) -> Result<Response<pb::RemoveTagsResponse>, Status> {
        let r = req.into_inner();
        let edit = Edit::RemoveTags(parse_tags(&r.tags)?);
        let (contact, changed) = self.edit(&r.workspace_id, &r.id, r.causation, edit).await?;
        Ok(Response::new(pb::RemoveTagsResponse { contact, changed }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn set_subscribed(
        &self,
        req: Request<pb::SetSubscribedRequest>,
    ) -> Result<Response<pb::SetSubscribedResponse>, Status> {
        let r = req.into_inner();
        let edit = Edit::SetSubscribed(r.subscribed);
        let (contact, changed) = self.edit(&r.workspace_id, &r.id, r.causation, edit).await?;
        Ok(Response::new(pb::SetSubscribedResponse {
            contact,
            changed,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn list_fields(
        &self,
        req: Request<pb::ListFieldsRequest>,
    ) -> Result<Response<pb::ListFieldsResponse>, Status> {
        let workspace_id = workspace(&req.get_ref().workspace_id)?;
        let rows = fields::list(&self.store.pool, &workspace_id)
            .await
            .map_err(ContactsError::from)?;
        Ok(Response::new(pb::ListFieldsResponse {
            fields: rows
                .into_iter()
                .map(|f| pb::Field {
                    name: f.name,
                    r#type: meisa_proto::field_type(f.ty) as i32,
                    first_seen_at: Some(meisa_proto::timestamp(f.first_seen_at)),
                    contacts: f.contacts,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn list_changes(
        &self,
        req: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        let req = req.into_inner();
        let workspace_id = workspace(&req.workspace_id)?;
        let id = contact_id(&req.contact_id)?;
        let exists = contacts::get(&self.store.pool, &workspace_id, Lookup::Id(id))
            .await
            .map_err(ContactsError::from)?
            .is_some();
        if !exists {
            return Err(ApiError::not_found(format!("no contact {id} in this workspace")).into());
        }
        let page = Page::of(req.page.as_ref());
        let before =
            match &page.cursor {
                None => None,
                Some(c) => Some(c.parse::<i64>().map_err(|_| {
                    ApiError::field("page.cursor", "not a cursor this API returned")
                })?),
            };
        let rows = changes::history(&self.store.pool, &workspace_id, id, before, page.fetch())
            .await
            .map_err(ContactsError::from)?;
        let (rows, next_cursor) = page.serve(rows, |e| e.version.to_string());
        Ok(Response::new(pb::ListChangesResponse {
            changes: rows
                .into_iter()
                .map(|e: events::ContactChanged| pb::Change {
                    event_id: e.event_id,
                    version: e.version,
                    kind: e.kind,
                    changes: e.changes,
                    causation: e.causation,
                    occurred_at: e.occurred_at,
                })
                .collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn replay_changes(
        &self,
        req: Request<pb::ReplayChangesRequest>,
    ) -> Result<Response<pb::ReplayChangesResponse>, Status> {
        let req = req.into_inner();
        if req.to_seq < req.from_seq {
            return Err(ApiError::field("to_seq", "must not be below from_seq").into());
        }
        let events = outbox::replay(&self.store.pool, req.shard, req.from_seq, req.to_seq, 1000)
            .await
            .map_err(ContactsError::from)?;
        Ok(Response::new(pb::ReplayChangesResponse { events }))
    }
}
