//! `meisa.automations.v1.AutomationsService`: definitions in as DESIGN §3 JSON text, parsed once
//! into domain types, stored rows out. Every error leaves as an `ApiError` status (ErrorInfo +
//! BadRequest with the DESIGN path).

mod audience;
mod convert;

use std::collections::HashMap;

use meisa_conditions::FieldType;
use meisa_proto::automations::{
    self as pb, EnrollmentStatus, automations_service_server::AutomationsService,
};
use meisa_runtime::{errors::ApiError, paging::Page};
use tonic::{Request, Response, Status};

use crate::{
    clients::{Contacts, Mailer},
    domain::{
        AutomationDef, Reference, SequenceDef, document,
        funnel::{finishing, funnel},
    },
    error::{Error, Result},
    store::{
        Store, activity,
        definitions::{self, AutomationRow, Saved, SequenceRow},
        enrollments::{self, Status as EnrStatus},
    },
    worker::{Wakers, fire::record_exits},
};

pub struct Api {
    store: Store,
    contacts: Contacts,
    mailer: Mailer,
    wakers: Wakers,
}

impl Api {
    pub fn new(store: Store, contacts: Contacts, mailer: Mailer, wakers: Wakers) -> Self {
        Self {
            store,
            contacts,
            mailer,
            wakers,
        }
    }

    async fn registry(&self, ws: &str, needed: bool) -> Result<HashMap<String, FieldType>> {
        if !needed {
            return Ok(HashMap::new());
        }
        self.contacts.field_types(ws).await.map_err(Error::Contacts)
    }

    /// The fields of a stored definition the workspace has still not seen: those seen since the
    /// save are no longer "unseen". `None` (the list as of the save is shown) when there were
    /// none, or when the contacts service is down.
    async fn unseen_now(
        &self,
        ws: &str,
        at_save: &[String],
        validate: impl FnOnce(&dyn Fn(&str) -> Option<FieldType>) -> Option<Vec<String>>,
    ) -> Option<Vec<String>> {
        if at_save.is_empty() {
            return None;
        }
        let registry = self.registry(ws, true).await.ok()?;
        validate(&|n: &str| registry.get(n).copied())
    }

    /// Template and sequence ids must exist (DESIGN §3); a missing one is a 422 naming its path.
    async fn check_references(&self, ws: &str, refs: &[Reference]) -> Result<()> {
        let sequence_ids: Vec<String> = refs
            .iter()
            .filter_map(|r| match r {
                Reference::Sequence { id, .. } => Some(id.clone()),
                Reference::Template { .. } => None,
            })
            .collect();
        let existing = if sequence_ids.is_empty() {
            Vec::new()
        } else {
            definitions::existing_sequences(&self.store.pool, ws, &sequence_ids).await?
        };
        let mut templates_seen: Vec<&str> = Vec::new();
        for r in refs {
            match r {
                Reference::Sequence { path, id } => {
                    if !existing.contains(id) {
                        return Err(ApiError::field(
                            path.clone(),
                            format!("no sequence {id} in this workspace; create it first"),
                        )
                        .into());
                    }
                }
                Reference::Template { path, id } => {
                    if templates_seen.contains(&id.as_str()) {
                        continue;
                    }
                    match self.mailer.template_exists(ws, id).await {
                        Ok(true) => templates_seen.push(id),
                        Ok(false) => {
                            return Err(ApiError::field(
                                path.clone(),
                                format!("no template {id} in this workspace; create it first"),
                            )
                            .into());
                        }
                        Err(s) if crate::error::status_transient(&s) => {
                            return Err(Error::Mailer(s));
                        }
                        Err(s) => return Err(ApiError::field(path.clone(), s.message()).into()),
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses, validates against the workspace's fields and checks references.
    async fn automation_input(
        &self,
        ws: &str,
        definition: &str,
    ) -> Result<(AutomationDef, Vec<String>)> {
        let def = document(definition)
            .and_then(|v| AutomationDef::parse(&v))
            .map_err(ApiError::from)?;
        let registry = self.registry(ws, def.names_custom_fields()).await?;
        let unseen = def
            .validate(&|n: &str| registry.get(n).copied())
            .map_err(ApiError::from)?;
        self.check_references(ws, &def.references()).await?;
        Ok((def, unseen))
    }

    async fn sequence_input(
        &self,
        ws: &str,
        definition: &str,
    ) -> Result<(SequenceDef, Vec<String>)> {
        let def = document(definition)
            .and_then(|v| SequenceDef::parse(&v))
            .map_err(ApiError::from)?;
        let registry = self.registry(ws, def.names_custom_fields()).await?;
        let unseen = def
            .validate(&|n: &str| registry.get(n).copied())
            .map_err(ApiError::from)?;
        self.check_references(ws, &def.references()).await?;
        Ok((def, unseen))
    }

    /// The saved automation or sequence, or the 404 that names it.
    async fn saved<S: Saved>(&self, ws: &str, id: &str) -> Result<S> {
        let mut conn = self.store.pool.acquire().await?;
        definitions::get::<S>(&mut conn, ws, id)
            .await?
            .ok_or_else(|| not_found(S::NOUN, id))
    }

    async fn set_enabled(&self, ws: &str, id: &str, enabled: bool) -> Result<pb::Automation> {
        let mut tx = self.store.pool.begin().await?;
        let row = definitions::set_enabled(&mut tx, ws, id, enabled)
            .await?
            .ok_or_else(|| not_found("automation", id))?;
        tx.commit().await?;
        if row.time_dependent {
            self.wakers.sweep.notify_one();
        }
        tracing::info!(automation = id, enabled, "automation switched");
        Ok(convert::automation(&row, None))
    }
}

fn not_found(what: &str, id: &str) -> Error {
    ApiError::not_found(format!("no {what} {id} in this workspace")).into()
}

fn workspace(id: &str) -> Result<&str, Status> {
    if id.trim().is_empty() {
        return Err(ApiError::field("workspace_id", "is required").into());
    }
    Ok(id)
}

fn required<'a>(field: &str, v: &'a str) -> Result<&'a str, Status> {
    if v.trim().is_empty() {
        return Err(ApiError::field(field, "is required").into());
    }
    Ok(v.trim())
}

/// The page's cursor when it is an id with `prefix` (the lists page by id).
fn id_cursor<'a>(page: &'a Page, prefix: &str) -> Result<Option<&'a str>, Status> {
    match page.cursor.as_deref() {
        None => Ok(None),
        Some(c) if c.starts_with(prefix) => Ok(Some(c)),
        Some(_) => Err(cursor_error()),
    }
}

fn cursor_error() -> Status {
    ApiError::field("page.cursor", "not a cursor this API returned").into()
}

type Rpc<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl AutomationsService for Api {
    #[tracing::instrument(skip_all, err)]
    async fn create_automation(
        &self,
        req: Request<pb::CreateAutomationRequest>,
    ) -> Rpc<pb::CreateAutomationResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let (def, unseen) = self.automation_input(ws, &req.definition).await?;
        let id = meisa_model::id::new("aut");
        let row = definitions::insert_automation(&self.store.pool, ws, &id, &def, &unseen).await?;
        if row.time_dependent && row.def.enabled {
            self.wakers.sweep.notify_one();
        }
        tracing::info!(automation = %id, trigger = def.trigger.type_name(), "automation created");
        Ok(Response::new(pb::CreateAutomationResponse {
            automation: Some(convert::automation(&row, None)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_automation(
        &self,
        req: Request<pb::GetAutomationRequest>,
    ) -> Rpc<pb::GetAutomationResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        let row = self.saved::<AutomationRow>(ws, id).await?;
        let unseen = self
            .unseen_now(ws, &row.unseen_fields, |types| {
                row.def.validate(&types).ok()
            })
            .await;
        Ok(Response::new(pb::GetAutomationResponse {
            automation: Some(convert::automation(&row, unseen)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_automations(
        &self,
        req: Request<pb::ListAutomationsRequest>,
    ) -> Rpc<pb::ListAutomationsResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let page = Page::of(req.page.as_ref());
        let cursor = id_cursor(&page, "aut_")?;
        let rows =
            definitions::list::<AutomationRow>(&self.store.pool, ws, cursor, page.fetch()).await?;
        let (rows, next_cursor) = page.serve(rows, |r| r.id.clone());
        Ok(Response::new(pb::ListAutomationsResponse {
            automations: rows.iter().map(|r| convert::automation(r, None)).collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn update_automation(
        &self,
        req: Request<pb::UpdateAutomationRequest>,
    ) -> Rpc<pb::UpdateAutomationResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        // 404 before validation errors: an unknown id is the first thing to fix.
        self.saved::<AutomationRow>(ws, id).await?;
        let (def, unseen) = self.automation_input(ws, &req.definition).await?;
        let mut tx = self.store.pool.begin().await.map_err(Error::from)?;
        let row = definitions::update_automation(&mut tx, ws, id, &def, &unseen)
            .await?
            .ok_or_else(|| not_found("automation", id))?;
        tx.commit().await.map_err(Error::from)?;
        if row.time_dependent && row.def.enabled {
            self.wakers.sweep.notify_one();
        }
        Ok(Response::new(pb::UpdateAutomationResponse {
            automation: Some(convert::automation(&row, None)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn delete_automation(
        &self,
        req: Request<pb::DeleteAutomationRequest>,
    ) -> Rpc<pb::DeleteAutomationResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        let mut tx = self.store.pool.begin().await.map_err(Error::from)?;
        if !definitions::delete_automation(&mut tx, ws, id).await? {
            return Err(not_found("automation", id).into());
        }
        tx.commit().await.map_err(Error::from)?;
        tracing::info!(automation = id, "automation deleted");
        Ok(Response::new(pb::DeleteAutomationResponse {}))
    }

    #[tracing::instrument(skip_all, err)]
    async fn enable_automation(
        &self,
        req: Request<pb::EnableAutomationRequest>,
    ) -> Rpc<pb::EnableAutomationResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        let automation = self.set_enabled(ws, id, true).await?;
        Ok(Response::new(pb::EnableAutomationResponse {
            automation: Some(automation),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn disable_automation(
        &self,
        req: Request<pb::DisableAutomationRequest>,
    ) -> Rpc<pb::DisableAutomationResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        let automation = self.set_enabled(ws, id, false).await?;
        Ok(Response::new(pb::DisableAutomationResponse {
            automation: Some(automation),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_automation_stats(
        &self,
        req: Request<pb::GetAutomationStatsRequest>,
    ) -> Rpc<pb::GetAutomationStatsResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        self.saved::<AutomationRow>(ws, id).await?;
        let c = activity::automation_counts(&self.store.pool, ws, id)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::GetAutomationStatsResponse {
            stats: Some(pb::AutomationStats {
                triggered: c.triggered,
                enrolled: c.enrolled,
                completed: c.completed,
                exited: c.exited,
                emails_sent: c.emails_sent,
                actions_done: c.actions_done,
                actions_failed: c.actions_failed,
            }),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn create_sequence(
        &self,
        req: Request<pb::CreateSequenceRequest>,
    ) -> Rpc<pb::CreateSequenceResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let (def, unseen) = self.sequence_input(ws, &req.definition).await?;
        let id = meisa_model::id::new("seq");
        let row = definitions::insert_sequence(&self.store.pool, ws, &id, &def, &unseen).await?;
        tracing::info!(sequence = %id, steps = def.steps.len(), "sequence created");
        Ok(Response::new(pb::CreateSequenceResponse {
            sequence: Some(convert::sequence(&row, None)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_sequence(
        &self,
        req: Request<pb::GetSequenceRequest>,
    ) -> Rpc<pb::GetSequenceResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        let row: SequenceRow = self.saved(ws, id).await?;
        let unseen = self
            .unseen_now(ws, &row.unseen_fields, |types| {
                row.def.validate(&types).ok()
            })
            .await;
        Ok(Response::new(pb::GetSequenceResponse {
            sequence: Some(convert::sequence(&row, unseen)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_sequences(
        &self,
        req: Request<pb::ListSequencesRequest>,
    ) -> Rpc<pb::ListSequencesResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let page = Page::of(req.page.as_ref());
        let cursor = id_cursor(&page, "seq_")?;
        let rows =
            definitions::list::<SequenceRow>(&self.store.pool, ws, cursor, page.fetch()).await?;
        let (rows, next_cursor) = page.serve(rows, |r| r.id.clone());
        Ok(Response::new(pb::ListSequencesResponse {
            sequences: rows.iter().map(|r| convert::sequence(r, None)).collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn update_sequence(
        &self,
        req: Request<pb::UpdateSequenceRequest>,
    ) -> Rpc<pb::UpdateSequenceResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        self.saved::<SequenceRow>(ws, id).await?;
        let (def, unseen) = self.sequence_input(ws, &req.definition).await?;
        let row = definitions::update_sequence(&self.store.pool, ws, id, &def, &unseen)
            .await?
            .ok_or_else(|| not_found("sequence", id))?;
        Ok(Response::new(pb::UpdateSequenceResponse {
            sequence: Some(convert::sequence(&row, None)),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn delete_sequence(
        &self,
        req: Request<pb::DeleteSequenceRequest>,
    ) -> Rpc<pb::DeleteSequenceResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        let mut tx = self.store.pool.begin().await.map_err(Error::from)?;
        let users = definitions::sequence_users(&mut tx, ws, id).await?;
        if let Some((automation, index)) = users.first() {
            return Err(ApiError::conflict(format!(
                "sequence {id} is used by automation {automation} (actions[{index}]); remove that action or the automation first"
            ))
            .into());
        }
        if !definitions::delete_sequence(&mut tx, ws, id).await? {
            return Err(not_found("sequence", id).into());
        }
        let ended = enrollments::exit_sequence(&mut tx, ws, id)
            .await
            .map_err(Error::from)?;
        for (e, contact) in &ended {
            record_exits(
                &mut tx,
                ws,
                contact.as_deref(),
                std::slice::from_ref(e),
                "sequence_deleted",
            )
            .await?;
        }
        tx.commit().await.map_err(Error::from)?;
        tracing::info!(sequence = id, exited = ended.len(), "sequence deleted");
        Ok(Response::new(pb::DeleteSequenceResponse {}))
    }

    #[tracing::instrument(skip_all, err)]
    async fn get_sequence_stats(
        &self,
        req: Request<pb::GetSequenceStatsRequest>,
    ) -> Rpc<pb::GetSequenceStatsResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let id = required("id", &req.id)?;
        let sequence = self.saved::<SequenceRow>(ws, id).await?;
        let pool = &self.store.pool;
        let (c, groups, outcomes) = tokio::try_join!(
            activity::sequence_counts(pool, ws, id),
            enrollments::funnel_groups(pool, ws, id),
            activity::step_groups(pool, ws, id),
        )
        .map_err(Error::from)?;
        let steps = funnel(&sequence.def.steps, &groups, &outcomes);
        let finishing = finishing(&sequence.def.steps, &groups);
        Ok(Response::new(pb::GetSequenceStatsResponse {
            stats: Some(pb::SequenceStats {
                enrolled: c.enrolled,
                active: c.active,
                completed: c.completed,
                exited: c.exited,
                emails_sent: c.emails_sent,
                steps: (0u32..).zip(steps).map(convert::step_stats).collect(),
                finishing,
            }),
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_enrollments(
        &self,
        req: Request<pb::ListEnrollmentsRequest>,
    ) -> Rpc<pb::ListEnrollmentsResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let page = Page::of(req.page.as_ref());
        let cursor = id_cursor(&page, "enr_")?;
        let status = match EnrollmentStatus::try_from(req.status) {
            Ok(EnrollmentStatus::Unspecified) => None,
            Ok(EnrollmentStatus::Active) => Some(EnrStatus::Active),
            Ok(EnrollmentStatus::Completed) => Some(EnrStatus::Completed),
            Ok(EnrollmentStatus::Exited) => Some(EnrStatus::Exited),
            Err(_) => return Err(ApiError::field("status", "unknown enrollment status").into()),
        };
        let non_empty = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
        let (sequence_id, contact_id) = (non_empty(&req.sequence_id), non_empty(&req.contact_id));
        let filter = enrollments::Filter {
            sequence_id: sequence_id.as_deref(),
            contact_id: contact_id.as_deref(),
            status,
        };
        let rows = enrollments::list(&self.store.pool, ws, &filter, cursor, page.fetch())
            .await
            .map_err(Error::from)?;
        let (rows, next_cursor) = page.serve(rows, |e| e.id.clone());
        Ok(Response::new(pb::ListEnrollmentsResponse {
            enrollments: rows.iter().map(convert::enrollment).collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn list_contact_activity(
        &self,
        req: Request<pb::ListContactActivityRequest>,
    ) -> Rpc<pb::ListContactActivityResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let contact = required("contact_id", &req.contact_id)?;
        let page = Page::of(req.page.as_ref());
        let before = match page.cursor.as_deref() {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| cursor_error())?),
        };
        let rows = activity::list_for_contact(&self.store.pool, ws, contact, before, page.fetch())
            .await
            .map_err(Error::from)?;
        let (rows, next_cursor) = page.serve(rows, |r| r.id.to_string());
        Ok(Response::new(pb::ListContactActivityResponse {
            activities: rows.iter().map(convert::activity).collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, err)]
    async fn match_contacts(
        &self,
        req: Request<pb::MatchContactsRequest>,
    ) -> Rpc<pb::MatchContactsResponse> {
        let req = req.into_inner();
        let ws = workspace(&req.workspace_id)?;
        let text = required("conditions", &req.conditions)?;
        let tree = serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            ApiError::field(
                "conditions",
                format!(
                    "is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let condition = meisa_conditions::Condition::parse(&tree, "conditions")
            .map_err(|e| ApiError::field(e.path, e.message))?;
        let want = match req.page.as_ref().map_or(0, |p| p.limit) {
            0 => audience::DEFAULT_MATCHES,
            n => n.min(audience::MAX_MATCHES),
        };
        let max_scan = match req.max_scan {
            0 => audience::MAX_SCAN,
            n => n.min(audience::MAX_SCAN),
        };
        let cursor = req.page.map(|p| p.cursor).unwrap_or_default();
        let found = audience::scan(
            &self.contacts,
            ws,
            &condition,
            cursor,
            want,
            req.count_all,
            max_scan,
        )
        .await
        .map_err(Error::Contacts)?;
        Ok(Response::new(pb::MatchContactsResponse {
            contacts: found.contacts,
            next_cursor: found.next_cursor,
            matched: found.matched,
            scanned: found.scanned,
        }))
    }
}
