//! What the mailer does, independent of gRPC: template CRUD with save-time validation, previews,
//! SendEmail (render, decide, enqueue; idempotent), suppressions, and token unsubscribes.

use meisa_runtime::db::Corrupt;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use meisa_model::EmailAddress;
use meisa_proto::common::Contact;
use meisa_runtime::errors::{ApiError, ErrorCode};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    contacts::Contacts,
    domain::{
        ids::{MessageId, TemplateId},
        message::{Reason, Status},
        template::{Compiled, ParseError, RenderError, Rendered, Sources, Variables},
        token::TokenSigner,
        variables,
    },
    error::{Error, Result},
    store::{
        MessageFilter, MessageRow, NewMessage, Store, SuppressionRow, TemplateFields, TemplateRow,
    },
    transport::from_domain,
};

const MAX_KEY: usize = 256;
const CACHE_MAX: usize = 2_000;

/// Where a send came from, as given.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub automation_id: String,
    pub sequence_id: String,
    pub step: Option<u32>,
    pub enrollment_id: String,
    pub event_id: String,
}

pub struct SendInput {
    pub workspace_id: String,
    pub idempotency_key: String,
    pub contact: Contact,
    pub template_id: TemplateId,
    pub source: Source,
}

/// The data a preview renders with.
pub enum PreviewData {
    Contact(Box<Contact>),
    ContactId(String),
    Sample {
        fields: std::collections::BTreeMap<String, meisa_proto::common::Value>,
        tags: Vec<String>,
    },
}

pub enum PreviewTemplate {
    Stored(TemplateId),
    Draft {
        subject: String,
        html: String,
        text: Option<String>,
    },
}

pub enum PreviewOutcome {
    Rendered(Rendered),
    Parse(ParseError),
    Render(RenderError),
}

pub struct Unsubscribed {
    pub workspace_id: String,
    pub contact_id: String,
    pub changed: bool,
}

pub struct TokenInfo {
    pub workspace_id: String,
    pub contact_id: String,
    pub masked_email: String,
    pub already_unsubscribed: bool,
}

/// (workspace, template id) → (the row's updated_at, its compiled form).
type TemplateCache = HashMap<(String, Uuid), (DateTime<Utc>, Arc<Compiled>)>;

pub struct Mailer {
    pub(crate) store: Store,
    pub(crate) signer: TokenSigner,
    public_url: String,
    pub(crate) contacts: Contacts,
    /// Compiled templates by (workspace, id), valid while `updated_at` matches the row.
    cache: Mutex<TemplateCache>,
    /// Wakes an idle delivery worker when a message is queued.
    pub(crate) wake: Arc<Notify>,
    /// Where the files transport writes `.eml` files (erasure removes them).
    pub(crate) eml_dir: Option<std::path::PathBuf>,
}

pub fn workspace(ws: &str) -> Result<&str, ApiError> {
    let ws = ws.trim();
    if ws.is_empty() {
        return Err(ApiError::field("workspace_id", "is required"));
    }
    if ws.len() > 64 {
        return Err(ApiError::field(
            "workspace_id",
            "is longer than 64 characters",
        ));
    }
    Ok(ws)
}

fn parse_error(e: ParseError) -> ApiError {
    ApiError {
        code: ErrorCode::InvalidField,
        message: e.message,
        field: Some(e.part.as_str().into()),
    }
}

/// "Acme <hello@acme.test>" or "hello@acme.test", as lettre will accept it.
fn check_mailbox(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::field(
            field,
            "is required, e.g. \"Acme <hello@acme.test>\"",
        ));
    }
    v.parse::<lettre::message::Mailbox>().map_err(|_| {
        ApiError::field(
            field,
            format!("{v:?} is not an address like \"Acme <hello@acme.test>\""),
        )
    })?;
    Ok(v.to_string())
}

impl Mailer {
    pub fn new(
        store: Store,
        signer: TokenSigner,
        public_url: String,
        contacts: Contacts,
        eml_dir: Option<std::path::PathBuf>,
    ) -> Self {
        Self {
            eml_dir,
            store,
            signer,
            public_url,
            contacts,
            cache: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn unsubscribe_url(&self, message: MessageId) -> String {
        format!("{}/u/{}", self.public_url, self.signer.sign(message))
    }

    // ------------------------------------------------------------------------------- templates

    /// Validates a template as the dashboard saves it: every part must parse (422 with the part
    /// as the field and the line and column in the message).
    pub fn validate_template(
        name: &str,
        subject: &str,
        html: &str,
        text: Option<&str>,
        from: &str,
        reply_to: Option<&str>,
    ) -> Result<(TemplateFields, Compiled), ApiError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ApiError::field("name", "is required"));
        }
        if name.chars().count() > 200 {
            return Err(ApiError::field("name", "is longer than 200 characters"));
        }
        if subject.trim().is_empty() {
            return Err(ApiError::field("subject", "is required"));
        }
        let from = check_mailbox("from", from)?;
        let reply_to = reply_to
            .filter(|r| !r.trim().is_empty())
            .map(|r| check_mailbox("reply_to", r))
            .transpose()?;
        let compiled = Compiled::compile(Sources {
            subject,
            html,
            text,
        })
        .map_err(parse_error)?;
        Ok((
            TemplateFields {
                name: name.to_string(),
                subject: subject.to_string(),
                html: html.to_string(),
                text: text.map(str::to_string),
                from,
                reply_to,
            },
            compiled,
        ))
    }

    pub async fn create_template(&self, ws: &str, fields: TemplateFields) -> Result<TemplateRow> {
        Ok(self
            .store
            .insert_template(ws, TemplateId::new().uuid(), &fields)
            .await?)
    }

    pub async fn get_template(&self, ws: &str, id: TemplateId) -> Result<TemplateRow> {
        self.store
            .get_template(ws, id.uuid())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("template {id} not found")).into())
    }

    pub async fn update_template(
        &self,
        ws: &str,
        id: TemplateId,
        fields: TemplateFields,
    ) -> Result<TemplateRow> {
        self.store
            .update_template(ws, id.uuid(), &fields)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("template {id} not found")).into())
    }

    pub async fn delete_template(&self, ws: &str, id: TemplateId) -> Result<()> {
        if self.store.delete_template(ws, id.uuid()).await? {
            self.lock_cache().remove(&(ws.to_string(), id.uuid()));
            Ok(())
        } else {
            Err(ApiError::not_found(format!("template {id} not found")).into())
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, TemplateCache> {
        // A panic while holding this lock leaves a valid map: keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The compiled form of a stored template, from the cache while the row is unchanged.
    fn compiled(&self, row: &TemplateRow) -> Result<Arc<Compiled>> {
        let key = (row.workspace_id.clone(), row.id);
        if let Some((at, c)) = self.lock_cache().get(&key)
            && *at == row.updated_at
        {
            return Ok(c.clone());
        }
        let compiled = Compiled::compile(Sources {
            subject: &row.subject,
            html: &row.html,
            text: row.text_body.as_deref(),
        })
        .map_err(|e| {
            // Stored templates were validated at save; a rule that got stricter since shows here.
            ApiError::field(
                e.part.as_str(),
                format!("the stored template no longer parses: {}", e.message),
            )
        })?;
        let compiled = Arc::new(compiled);
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (row.updated_at, compiled.clone()));
        Ok(compiled)
    }

    // ------------------------------------------------------------------------------- preview

    pub async fn preview(
        &self,
        ws: &str,
        template: PreviewTemplate,
        data: PreviewData,
    ) -> Result<PreviewOutcome> {
        let compiled = match template {
            PreviewTemplate::Stored(id) => {
                let row = self.get_template(ws, id).await?;
                self.compiled(&row)?
            }
            PreviewTemplate::Draft {
                subject,
                html,
                text,
            } => {
                match Compiled::compile(Sources {
                    subject: &subject,
                    html: &html,
                    text: text.as_deref(),
                }) {
                    Ok(c) => Arc::new(c),
                    Err(e) => return Ok(PreviewOutcome::Parse(e)),
                }
            }
        };
        // No message exists for a preview: the link is a placeholder of the real one's shape.
        let url = format!("{}/u/preview", self.public_url);
        let vars = match data {
            PreviewData::Contact(c) => variables::from_contact(&c, &url),
            PreviewData::ContactId(id) => {
                let c = self
                    .contacts
                    .get_contact(ws, &id)
                    .await
                    .map_err(Error::Contacts)?;
                variables::from_contact(&c, &url)
            }
            PreviewData::Sample { fields, tags } => variables::from_sample(&fields, &tags, &url),
        };
        Ok(match render(compiled, vars).await? {
            Ok(r) => PreviewOutcome::Rendered(r),
            Err(e) => PreviewOutcome::Render(e),
        })
    }

    // ------------------------------------------------------------------------------- sending

    /// Renders and records one message; queues it for delivery unless it is suppressed or
    /// skipped. Idempotent on (workspace, idempotency key).
    pub async fn send_email(&self, input: SendInput) -> Result<(MessageRow, bool)> {
        let ws = workspace(&input.workspace_id)?.to_string();
        let key = input.idempotency_key.trim();
        if key.is_empty() {
            return Err(ApiError::field("idempotency_key", "is required").into());
        }
        if key.len() > MAX_KEY {
            return Err(ApiError::field(
                "idempotency_key",
                format!("is longer than {MAX_KEY} bytes"),
            )
            .into());
        }
        let step = input
            .source
            .step
            .map(i32::try_from)
            .transpose()
            .map_err(|_| ApiError::field("source.step", format!("is above {}", i32::MAX)))?;
        let contact = &input.contact;
        if contact.id.trim().is_empty() {
            return Err(ApiError::field("contact.id", "is required").into());
        }
        let email = EmailAddress::parse(&contact.email)
            .map_err(|e| ApiError::field("contact.email", e.to_string()))?;
        // A repeated key is not looked up first: repeats are rare, and the insert below answers
        // the stored message for them. The template and the suppression state are read
        // concurrently.
        let (row, gate) = tokio::try_join!(self.get_template(&ws, input.template_id), async {
            self.store
                .send_gate(&ws, email.as_str(), &contact.id)
                .await
                .map_err(Error::from)
        },)?;
        let compiled = self.compiled(&row)?;

        let id = MessageId::new();
        // Checked when the template was saved.
        let domain = from_domain(&row.from_addr).map_err(|_| {
            Error::Corrupt(Corrupt::new(
                "template from address",
                format!("{:?} is not a mailbox", row.from_addr),
            ))
        })?;
        let vars = variables::from_contact(contact, &self.unsubscribe_url(id));
        let rendered = render(compiled, vars).await?;

        // Suppression first: an unsubscribed contact is "suppressed" even if the template would
        // not have rendered for them.
        let resubscribed = gate
            .unsubscribed_version
            .is_some_and(|v| contact.subscribed && contact.version > v);
        let suppressed = if !contact.subscribed {
            Some("contact is unsubscribed".to_string())
        } else if gate.unsubscribed.unwrap_or(false) && !resubscribed {
            Some("contact unsubscribed through an unsubscribe link".to_string())
        } else {
            gate.suppression
                .map(|r| format!("address is on the suppression list ({r})"))
        };
        let (status, reason) = match (&suppressed, &rendered) {
            (Some(why), _) => (Status::Suppressed, why.clone()),
            (None, Ok(_)) => (Status::Queued, String::new()),
            (None, Err(RenderError::MissingVariable { name, .. })) => {
                (Status::Skipped, format!("missing variable: {name}"))
            }
            (None, Err(e @ RenderError::Failed { .. })) => {
                (Status::Failed, format!("render failed: {e}"))
            }
        };
        let rendered = rendered.ok();
        let message = NewMessage {
            workspace_id: ws.clone(),
            id: id.uuid(),
            idempotency_key: key.to_string(),
            contact_id: contact.id.clone(),
            to_email: email.to_string(),
            template_id: Some(input.template_id.uuid()),
            source_automation_id: input.source.automation_id,
            source_sequence_id: input.source.sequence_id,
            source_step: step,
            source_enrollment_id: input.source.enrollment_id,
            source_event_id: input.source.event_id,
            status: status.as_str(),
            reason,
            subject: rendered
                .as_ref()
                .map(|r| r.subject.clone())
                .unwrap_or_default(),
            // Bodies are kept only for what is (to be) sent.
            html: rendered
                .as_ref()
                .filter(|_| status == Status::Queued)
                .map(|r| r.html.clone())
                .unwrap_or_default(),
            text: rendered
                .as_ref()
                .filter(|_| status == Status::Queued)
                .map(|r| r.text.clone())
                .unwrap_or_default(),
            from_addr: row.from_addr.clone(),
            reply_to: row.reply_to.clone(),
            message_id_header: format!("<{id}@{domain}>"),
        };
        let (stored, created) = self.store.insert_message(&message).await?;
        if created && status == Status::Queued {
            self.wake.notify_one();
        }
        Ok((stored, created))
    }

    pub async fn get_message(&self, ws: &str, id: MessageId) -> Result<MessageRow> {
        self.store
            .get_message(ws, id.uuid())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("message {id} not found")).into())
    }

    pub async fn list_messages(
        &self,
        ws: &str,
        filter: &MessageFilter,
        before: Option<MessageId>,
        limit: i64,
    ) -> Result<Vec<MessageRow>> {
        Ok(self
            .store
            .list_messages(ws, filter, before.map(|m| m.uuid()), limit)
            .await?)
    }

    // ------------------------------------------------------------------------------- suppressions

    pub async fn add_suppression(
        &self,
        ws: &str,
        email: &str,
        reason: Reason,
        detail: &str,
    ) -> Result<(SuppressionRow, bool)> {
        let email =
            EmailAddress::parse(email).map_err(|e| ApiError::field("email", e.to_string()))?;
        if detail.len() > 1024 {
            return Err(ApiError::field("detail", "is longer than 1024 bytes").into());
        }
        Ok(self
            .store
            .add_suppression(ws, email.as_str(), reason.as_str(), detail)
            .await?)
    }

    pub async fn remove_suppression(&self, ws: &str, email: &str) -> Result<()> {
        let email =
            EmailAddress::parse(email).map_err(|e| ApiError::field("email", e.to_string()))?;
        if self.store.remove_suppression(ws, email.as_str()).await? {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("{email} is not on the suppression list")).into())
        }
    }

    // ------------------------------------------------------------------------------- unsubscribe

    async fn token_message(&self, token: &str) -> Result<MessageRow> {
        let not_found = || Error::from(ApiError::not_found("this unsubscribe link is not valid"));
        let id = self.signer.verify(token.trim()).ok_or_else(not_found)?;
        self.store
            .message_by_id(id.uuid())
            .await?
            .ok_or_else(not_found)
    }

    pub async fn describe_token(&self, token: &str) -> Result<TokenInfo> {
        let m = self.token_message(token).await?;
        let already = self
            .store
            .get_unsubscribe(&m.workspace_id, &m.contact_id)
            .await?
            .is_some();
        // Checked when the message was sent.
        let masked = EmailAddress::parse(&m.to_email)
            .map_err(|_| {
                Error::Corrupt(Corrupt::new(
                    "message recipient",
                    // Not the address: logs carry no personal data.
                    "not an email address",
                ))
            })?
            .masked();
        Ok(TokenInfo {
            workspace_id: m.workspace_id,
            contact_id: m.contact_id,
            masked_email: masked,
            already_unsubscribed: already,
        })
    }

    /// Records the unsubscribe (from then on sends to the contact are suppressed), then tells
    /// contacts. If contacts cannot be reached the unsubscribe still stands and the background
    /// sync retries: a person who clicked "unsubscribe" never sees an error for our outage.
    pub async fn unsubscribe(&self, token: &str) -> Result<Unsubscribed> {
        let m = self.token_message(token).await?;
        let new = self
            .store
            .record_unsubscribe(&m.workspace_id, &m.contact_id, m.id)
            .await?;
        let changed = match self.sync_unsubscribe(&m.workspace_id, &m.contact_id).await {
            Ok(contact_changed) => new || contact_changed,
            Err(()) => new,
        };
        tracing::info!(workspace_id = %m.workspace_id, contact_id = %m.contact_id, changed, "unsubscribed through a link");
        Ok(Unsubscribed {
            workspace_id: m.workspace_id,
            contact_id: m.contact_id,
            changed,
        })
    }

    /// SetSubscribed(false) at contacts, recording the outcome. Ok(changed) when contacts has it.
    pub(crate) async fn sync_unsubscribe(&self, ws: &str, contact_id: &str) -> Result<bool, ()> {
        let call = tokio::time::timeout(
            Duration::from_secs(5),
            self.contacts.unsubscribe(ws, contact_id),
        )
        .await;
        let outcome = match call {
            Ok(Ok((version, changed))) => Ok((version, changed)),
            // An erased contact will never be mailed again: nothing left to sync.
            Ok(Err(s)) if s.code() == tonic::Code::NotFound => Ok((i64::MAX, false)),
            Ok(Err(s)) => Err(format!("{}: {}", s.code(), s.message())),
            Err(_) => Err("timed out".to_string()),
        };
        match outcome {
            Ok((version, changed)) => {
                if let Err(e) = self
                    .store
                    .mark_unsubscribe_synced(ws, contact_id, version)
                    .await
                {
                    tracing::warn!(error = %e, "recording the unsubscribe sync failed; it will be retried");
                }
                Ok(changed)
            }
            Err(e) => {
                tracing::warn!(workspace_id = %ws, contact_id = %contact_id, error = %e, "contacts did not take the unsubscribe yet; will retry");
                let _ = self
                    .store
                    .mark_unsubscribe_sync_failed(ws, contact_id, &e)
                    .await;
                Err(())
            }
        }
    }
}

/// Renders on the blocking pool: the render budget bounds the work, and the async workers stay
/// free while it runs.
async fn render(compiled: Arc<Compiled>, vars: Variables) -> Result<Result<Rendered, RenderError>> {
    Ok(tokio::task::spawn_blocking(move || compiled.render(&vars)).await?)
}
