//! `meisa.mailer.v1.MailerService`: proto ↔ domain at the boundary; every error leaves as an
//! `ApiError` status (ErrorInfo + BadRequest field).

use std::sync::Arc;

use meisa_proto::{
    mailer::{
        self as pb, MessageStatus, RenderErrorKind, SuppressionReason,
        mailer_service_server::MailerService,
    },
    timestamp,
};
use meisa_runtime::{errors::ApiError, paging::Page};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        ids::{MessageId, TemplateId},
        message::{Reason, Status as MsgStatus},
        template::RenderError,
    },
    error::{Error, stored, stored_word},
    service::{self, Mailer, PreviewData, PreviewOutcome, PreviewTemplate, SendInput, Source},
    store::{MessageFilter, MessageRow, SuppressionRow, TemplateRow},
};

pub struct Api {
    mailer: Arc<Mailer>,
}

impl Api {
    pub fn new(mailer: Arc<Mailer>) -> Self {
        Self { mailer }
    }
}

fn bad_cursor() -> ApiError {
    ApiError::field("page.cursor", "is not a cursor returned by this list")
}

fn template_id(field: &str, s: &str) -> Result<TemplateId, ApiError> {
    TemplateId::parse(s).map_err(|e| ApiError::field(field, e.to_string()))
}

fn message_id(field: &str, s: &str) -> Result<MessageId, ApiError> {
    MessageId::parse(s).map_err(|e| ApiError::field(field, e.to_string()))
}

fn template_pb(r: TemplateRow) -> pb::Template {
    pb::Template {
        id: TemplateId::from_uuid(r.id).to_string(),
        workspace_id: r.workspace_id,
        name: r.name,
        subject: r.subject,
        html: r.html,
        text: r.text_body,
        from: r.from_addr,
        reply_to: r.reply_to,
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
    }
}

fn message_pb(r: MessageRow) -> Result<pb::Message, Error> {
    let status = stored_word("message status", &r.status, MsgStatus::parse)?;
    Ok(pb::Message {
        id: MessageId::from_uuid(r.id).to_string(),
        workspace_id: r.workspace_id,
        contact_id: r.contact_id,
        to: r.to_email,
        template_id: r
            .template_id
            .map(|t| TemplateId::from_uuid(t).to_string())
            .unwrap_or_default(),
        source: Some(pb::MessageSource {
            automation_id: r.source_automation_id,
            sequence_id: r.source_sequence_id,
            step: r
                .source_step
                .map(|s| stored("message source step", s))
                .transpose()?,
            enrollment_id: r.source_enrollment_id,
            event_id: r.source_event_id,
        }),
        status: status.to_proto() as i32,
        subject: r.subject,
        reason: r.reason,
        attempts: stored("message attempts", r.attempts)?,
        last_error: r.last_error,
        message_id_header: r.message_id_header,
        idempotency_key: r.idempotency_key,
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
        sent_at: r.sent_at.map(timestamp),
        html: r.html_body,
        text: r.text_body,
    })
}

fn suppression_pb(r: SuppressionRow) -> Result<pb::Suppression, Error> {
    let reason = stored_word("suppression reason", &r.reason, Reason::parse)?;
    Ok(pb::Suppression {
        workspace_id: r.workspace_id,
        email: r.email,
        reason: reason.to_proto() as i32,
        detail: r.detail,
        created_at: Some(timestamp(r.created_at)),
    })
}

fn render_error_pb(e: RenderError) -> pb::RenderError {
    match e {
        RenderError::MissingVariable { part, name } => pb::RenderError {
            kind: RenderErrorKind::MissingVariable as i32,
            field: part.as_str().into(),
            message: format!(
                "{}: missing variable {name}; add a default, e.g. {{{{ {name} | default: \"…\" }}}}",
                part.as_str()
            ),
            variable: name,
            line: 0,
            column: 0,
        },
        RenderError::Failed { part, message } => pb::RenderError {
            kind: RenderErrorKind::Render as i32,
            field: part.as_str().into(),
            message: format!("{}: {message}", part.as_str()),
            ..Default::default()
        },
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn input_fields(
    t: Option<pb::TemplateInput>,
) -> Result<
    (
        crate::store::TemplateFields,
        crate::domain::template::Compiled,
    ),
    ApiError,
> {
    let t = t.ok_or_else(|| ApiError::field("template", "is required"))?;
    Mailer::validate_template(
        &t.name,
        &t.subject,
        &t.html,
        t.text.as_deref(),
        &t.from,
        t.reply_to.as_deref(),
    )
}

#[tonic::async_trait]
impl MailerService for Api {
    #[tracing::instrument(skip_all, err)]
    async fn create_template(
        &self,
        req: Request<pb::CreateTemplateRequest>,
    ) -> Reply<pb::CreateTemplateResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let (fields, _) = input_fields(req.template)?;
        let row = self.mailer.create_template(ws, fields).await?;
        Ok(Response::new(pb::CreateTemplateResponse {
            template: Some(template_pb(row)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_template(
        &self,
        req: Request<pb::GetTemplateRequest>,
    ) -> Reply<pb::GetTemplateResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let id = template_id("id", &req.id)?;
        let row = self.mailer.get_template(ws, id).await?;
        Ok(Response::new(pb::GetTemplateResponse {
            template: Some(template_pb(row)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_templates(
        &self,
        req: Request<pb::ListTemplatesRequest>,
    ) -> Reply<pb::ListTemplatesResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let page = Page::of(req.page.as_ref());
        let before = page
            .cursor
            .as_deref()
            .map(|c| TemplateId::parse(c).map_err(|_| bad_cursor()))
            .transpose()?;
        let rows = self
            .mailer
            .store
            .list_templates(ws, before.map(|b| b.uuid()), page.fetch())
            .await
            .map_err(Error::from)?;
        let (rows, next) = page.serve(rows, |r| TemplateId::from_uuid(r.id).to_string());
        Ok(Response::new(pb::ListTemplatesResponse {
            templates: rows.into_iter().map(template_pb).collect(),
            next_cursor: next,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn update_template(
        &self,
        req: Request<pb::UpdateTemplateRequest>,
    ) -> Reply<pb::UpdateTemplateResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let id = template_id("id", &req.id)?;
        let (fields, _) = input_fields(req.template)?;
        let row = self.mailer.update_template(ws, id, fields).await?;
        Ok(Response::new(pb::UpdateTemplateResponse {
            template: Some(template_pb(row)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn delete_template(
        &self,
        req: Request<pb::DeleteTemplateRequest>,
    ) -> Reply<pb::DeleteTemplateResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let id = template_id("id", &req.id)?;
        self.mailer.delete_template(ws, id).await?;
        Ok(Response::new(pb::DeleteTemplateResponse {}))
    }

    #[tracing::instrument(skip_all, err)]
    async fn preview_template(
        &self,
        req: Request<pb::PreviewTemplateRequest>,
    ) -> Reply<pb::PreviewTemplateResponse> {
        use pb::preview_template_request::{Data, Template};
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let template = match req.template {
            Some(Template::TemplateId(id)) => {
                PreviewTemplate::Stored(template_id("template_id", &id)?)
            }
            Some(Template::Draft(d)) => PreviewTemplate::Draft {
                subject: d.subject,
                html: d.html,
                text: d.text,
            },
            None => {
                return Err(
                    ApiError::field("template_id", "a template_id or a draft is required").into(),
                );
            }
        };
        let data = match req.data {
            Some(Data::Contact(c)) => PreviewData::Contact(Box::new(c)),
            Some(Data::ContactId(id)) if !id.trim().is_empty() => PreviewData::ContactId(id),
            Some(Data::Sample(s)) => PreviewData::Sample {
                fields: s.fields,
                tags: s.tags,
            },
            Some(Data::ContactId(_)) | None => PreviewData::Sample {
                fields: Default::default(),
                tags: vec![],
            },
        };
        let resp = match self.mailer.preview(ws, template, data).await? {
            PreviewOutcome::Rendered(r) => pb::PreviewTemplateResponse {
                subject: r.subject,
                html: r.html,
                text: r.text,
                error: None,
            },
            PreviewOutcome::Render(e) => pb::PreviewTemplateResponse {
                error: Some(render_error_pb(e)),
                ..Default::default()
            },
            PreviewOutcome::Parse(e) => pb::PreviewTemplateResponse {
                error: Some(pb::RenderError {
                    kind: RenderErrorKind::Parse as i32,
                    field: e.part.as_str().into(),
                    message: e.message,
                    variable: String::new(),
                    line: e.line,
                    column: e.column,
                }),
                ..Default::default()
            },
        };
        Ok(Response::new(resp))
    }

    #[tracing::instrument(skip_all, err, fields(workspace_id = %req.get_ref().workspace_id))]
    async fn send_email(&self, req: Request<pb::SendEmailRequest>) -> Reply<pb::SendEmailResponse> {
        let req = req.into_inner();
        let contact = req
            .contact
            .ok_or_else(|| ApiError::field("contact", "is required"))?;
        let template_id = template_id("template_id", &req.template_id)?;
        let source = req.source.unwrap_or_default();
        let (row, created) = self
            .mailer
            .send_email(SendInput {
                workspace_id: req.workspace_id,
                idempotency_key: req.idempotency_key,
                contact,
                template_id,
                source: Source {
                    automation_id: source.automation_id,
                    sequence_id: source.sequence_id,
                    step: source.step,
                    enrollment_id: source.enrollment_id,
                    event_id: source.event_id,
                },
            })
            .await?;
        Ok(Response::new(pb::SendEmailResponse {
            message: Some(message_pb(row)?),
            created,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_message(
        &self,
        req: Request<pb::GetMessageRequest>,
    ) -> Reply<pb::GetMessageResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let id = message_id("id", &req.id)?;
        let row = self.mailer.get_message(ws, id).await?;
        Ok(Response::new(pb::GetMessageResponse {
            message: Some(message_pb(row)?),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_messages(
        &self,
        req: Request<pb::ListMessagesRequest>,
    ) -> Reply<pb::ListMessagesResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let page = Page::of(req.page.as_ref());
        let before = page
            .cursor
            .as_deref()
            .map(|c| MessageId::parse(c).map_err(|_| bad_cursor()))
            .transpose()?;
        let non_empty = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let status = MessageStatus::try_from(req.status)
            .map_err(|_| ApiError::field("status", "is not a known message status"))?;
        let filter = MessageFilter {
            contact_id: non_empty(req.contact_id),
            automation_id: non_empty(req.automation_id),
            sequence_id: non_empty(req.sequence_id),
            status: MsgStatus::from_proto(status).map(MsgStatus::as_str),
            template_id: non_empty(req.template_id)
                .map(|t| template_id("template_id", &t))
                .transpose()?
                .map(|t| t.uuid()),
        };
        let rows = self
            .mailer
            .list_messages(ws, &filter, before, page.fetch())
            .await?;
        let (rows, next) = page.serve(rows, |r| MessageId::from_uuid(r.id).to_string());
        Ok(Response::new(pb::ListMessagesResponse {
            messages: rows.into_iter().map(message_pb).collect::<Result<_, _>>()?,
            next_cursor: next,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn add_suppression(
        &self,
        req: Request<pb::AddSuppressionRequest>,
    ) -> Reply<pb::AddSuppressionResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let reason = SuppressionReason::try_from(req.reason)
            .map(Reason::from_proto)
            .map_err(|_| ApiError::field("reason", "is not a known suppression reason"))?;
        let (row, created) = self
            .mailer
            .add_suppression(ws, &req.email, reason, &req.detail)
            .await?;
        Ok(Response::new(pb::AddSuppressionResponse {
            suppression: Some(suppression_pb(row)?),
            created,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_suppressions(
        &self,
        req: Request<pb::ListSuppressionsRequest>,
    ) -> Reply<pb::ListSuppressionsResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        let page = Page::of(req.page.as_ref());
        let after = page.cursor.as_deref();
        let rows = self
            .mailer
            .store
            .list_suppressions(ws, after, page.fetch())
            .await
            .map_err(Error::from)?;
        let (rows, next) = page.serve(rows, |r| r.email.clone());
        Ok(Response::new(pb::ListSuppressionsResponse {
            suppressions: rows
                .into_iter()
                .map(suppression_pb)
                .collect::<Result<_, _>>()?,
            next_cursor: next,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn remove_suppression(
        &self,
        req: Request<pb::RemoveSuppressionRequest>,
    ) -> Reply<pb::RemoveSuppressionResponse> {
        let req = req.into_inner();
        let ws = service::workspace(&req.workspace_id)?;
        self.mailer.remove_suppression(ws, &req.email).await?;
        Ok(Response::new(pb::RemoveSuppressionResponse {}))
    }

    #[tracing::instrument(skip_all, err)]
    async fn describe_unsubscribe_token(
        &self,
        req: Request<pb::DescribeUnsubscribeTokenRequest>,
    ) -> Reply<pb::DescribeUnsubscribeTokenResponse> {
        let info = self.mailer.describe_token(&req.into_inner().token).await?;
        Ok(Response::new(pb::DescribeUnsubscribeTokenResponse {
            workspace_id: info.workspace_id,
            contact_id: info.contact_id,
            masked_email: info.masked_email,
            already_unsubscribed: info.already_unsubscribed,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn unsubscribe(
        &self,
        req: Request<pb::UnsubscribeRequest>,
    ) -> Reply<pb::UnsubscribeResponse> {
        let u = self.mailer.unsubscribe(&req.into_inner().token).await?;
        Ok(Response::new(pb::UnsubscribeResponse {
            workspace_id: u.workspace_id,
            contact_id: u.contact_id,
            changed: u.changed,
        }))
    }
}
