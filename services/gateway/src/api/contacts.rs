//! `/api/v1/contacts/…`: upsert (single and batch), read, list, erase. Every call passes the
//! key's workspace to contacts, which scopes everything by it, so another workspace's contact id
//! is simply not found.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use meisa_proto::{
    common::Causation,
    contacts::{
        self as pb, BatchUpsertRequest, DeleteContactRequest, GetContactRequest,
        ListContactsRequest, UpsertRequest, batch_upsert_result, get_contact_request::By,
    },
};
use meisa_runtime::{
    errors::{ApiError, ErrorCode},
    paging::MAX_PAGE,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    body::{BATCH_LIMIT, JsonBody, UPSERT_LIMIT, too_large},
    docs::{ById, Errors, Noun},
    json::{non_empty, views},
    model::{
        BatchItemResult, BatchUpsertBody, BatchUpsertResult, ContactList, ContactView,
        UpsertContactBody, UpsertResult, contact_input, item_error,
    },
    paging,
};
use crate::{
    auth::Workspace,
    error::{AppError, BadAnswer, ErrorBody},
    state::AppState,
};

pub const MAX_BATCH: usize = 1_000;

/// What one is called in errors and in the documentation.
impl Noun for ContactView {
    const NOUN: &'static str = "contact";
}

fn api_causation() -> Option<Causation> {
    Some(Causation {
        source: "api".into(),
        ..Default::default()
    })
}

/// Creates or updates one contact, matched by `external_id`, then by `email` (DESIGN §2).
#[utoipa::path(
    post, path = "/api/v1/contacts/upsert/", tag = "contacts",
    security(("api_key" = [])),
    request_body(content = UpsertContactBody, content_type = "application/json"),
    responses(
        (status = 200, body = UpsertResult, description = "created, updated, or unchanged (`changed` is empty)"),
        (status = 400, body = ErrorBody, description = "malformed JSON"),
        (status = 401, body = ErrorBody, description = "missing, invalid or revoked API key"),
        (status = 409, body = ErrorBody, description = "external_id and email point to different contacts"),
        (status = 413, body = ErrorBody, description = "body over 256 KiB"),
        (status = 415, body = ErrorBody, description = "Content-Type is not application/json"),
        (status = 422, body = ErrorBody, description = "a field is invalid; `field` names it"),
        (status = 503, body = ErrorBody, description = "a dependency is down; see Retry-After"),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn upsert(
    State(state): State<AppState>,
    ws: Workspace,
    JsonBody(body): JsonBody<UPSERT_LIMIT>,
) -> Result<Json<UpsertResult>, AppError> {
    let contact = contact_input(body)?;
    let resp = state
        .contacts()
        .upsert(UpsertRequest {
            workspace_id: ws.id(),
            contact: Some(contact),
            causation: api_causation(),
            return_contact: false,
        })
        .await
        .map_err(AppError::contacts)?
        .into_inner();
    Ok(Json(UpsertResult::from(resp)))
}

/// Up to 1,000 upserts in one call. Each item gets its own result, in order; a bad item is
/// reported in its place and does not fail the others.
#[utoipa::path(
    post, path = "/api/v1/contacts/batch-upsert/", tag = "contacts",
    security(("api_key" = [])),
    request_body(content = BatchUpsertBody, content_type = "application/json"),
    responses(
        (status = 200, body = BatchUpsertResult),
        (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "body over 16 MiB"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the body is not {\"contacts\": [...]} or has more than 1,000 items"),
        Errors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn batch_upsert(
    State(state): State<AppState>,
    ws: Workspace,
    JsonBody(body): JsonBody<BATCH_LIMIT>,
) -> Result<Json<BatchUpsertResult>, AppError> {
    let items = batch_items(body)?;
    let mut results: Vec<Option<BatchItemResult>> = Vec::with_capacity(items.len());
    let mut inputs = Vec::new();
    for item in items {
        match batch_item(item) {
            Ok(input) => {
                inputs.push(input);
                results.push(None);
            }
            Err(e) => results.push(Some(BatchItemResult::error(&e))),
        }
    }
    if !inputs.is_empty() {
        let sent = inputs.len();
        let resp = state
            .contacts()
            .batch_upsert(BatchUpsertRequest {
                workspace_id: ws.id(),
                contacts: inputs,
                causation: api_causation(),
                return_contacts: false,
            })
            .await
            .map_err(AppError::contacts)?
            .into_inner();
        if resp.results.len() != sent {
            return Err(BadAnswer(format!(
                "contacts answered {} batch results for {sent} items",
                resp.results.len()
            ))
            .into());
        }
        let mut answers = resp.results.into_iter();
        for slot in results.iter_mut().filter(|r| r.is_none()) {
            *slot = answers.next().map(|r| match r.result {
                Some(batch_upsert_result::Result::Ok(ok)) => BatchItemResult::Ok(ok.into()),
                Some(batch_upsert_result::Result::Error(e)) => {
                    BatchItemResult::error(&item_error(e))
                }
                None => BatchItemResult::error(&ApiError::internal()),
            });
        }
    }
    Ok(Json(BatchUpsertResult {
        results: results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| BatchItemResult::error(&ApiError::internal())))
            .collect(),
    }))
}

fn batch_items(body: Value) -> Result<Vec<Value>, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "the body must be a JSON object: {\"contacts\": [upsert bodies]}",
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "contacts") {
        return Err(ApiError::field(
            unknown.clone(),
            "unknown field; the body is {\"contacts\": [upsert bodies]}",
        ));
    }
    match obj.remove("contacts") {
        Some(Value::Array(items)) if items.len() > MAX_BATCH => Err(ApiError::field(
            "contacts",
            format!(
                "at most {MAX_BATCH} contacts per batch, got {}",
                items.len()
            ),
        )),
        Some(Value::Array(items)) => Ok(items),
        None | Some(Value::Null) => Err(ApiError::field("contacts", "is required")),
        Some(_) => Err(ApiError::field(
            "contacts",
            "must be an array of upsert bodies",
        )),
    }
}

/// Each item is held to the single upsert's size limit, so a batch is never a way around it.
fn batch_item(item: Value) -> Result<pb::ContactInput, ApiError> {
    let size = serde_json::to_vec(&item).map_or(usize::MAX, |b| b.len());
    if size > UPSERT_LIMIT {
        return Err(too_large(UPSERT_LIMIT));
    }
    contact_input(item)
}

#[utoipa::path(
    get, path = "/api/v1/contacts/{id}", tag = "contacts",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The contact id, ct_…")),
    responses(
        (status = 200, body = ContactView),
        ById<ContactView>,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn get_contact(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, AppError> {
    find(&state, &ws, By::Id(id)).await.map(Json)
}

/// Erasure (DESIGN §2): the contact, its history and its personal data in every service.
/// Answers 204 with no body. Contacts erases its own data at once and announces the erasure on
/// the change stream; the mailer (messages, their bodies and `.eml` files, the unsubscribe
/// record) and automations (enrollments, activity) erase theirs when they read it, retrying
/// until they have, whoever asked for the erasure.
#[utoipa::path(
    delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The contact id, ct_…")),
    responses(
        (status = 204, description = "erased"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such contact in this workspace"),
        (status = 503, body = ErrorBody, description = "contacts is unavailable; retry the DELETE"),
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn delete_contact(
    State(state): State<AppState>,
    ws: Workspace,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state
        .contacts()
        .delete_contact(DeleteContactRequest {
            workspace_id: ws.id(),
            id,
            causation: api_causation(),
        })
        .await
        .map_err(AppError::contacts)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// Look one contact up by email (case-insensitive); answers the contact object or 404.
    email: Option<String>,
    /// Look one contact up by external_id; answers the contact object or 404.
    external_id: Option<String>,
    /// Page size for the list, 1 to 500 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only contacts carrying this tag.
    tag: Option<String>,
}

/// `GET /api/v1/contacts/`: a lookup when `email` or `external_id` is given, a page otherwise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ContactsAnswer {
    One(Box<ContactView>),
    Page(ContactList),
}

/// With `email` or `external_id`: that one contact (404 when none). Without: a page of contacts,
/// with `next_cursor` for the next page (null on the last one).
#[utoipa::path(
    get, path = "/api/v1/contacts/", tag = "contacts",
    security(("api_key" = [])),
    params(ContactsQuery),
    responses(
        (status = 200, body = ContactsAnswer),
        (status = 404, body = ErrorBody, description = "lookup: no contact with that email or external_id"),
        (status = 422, body = ErrorBody, description = "a bad query parameter; `field` names it"),
        Errors,
    )
)]
#[tracing::instrument(skip_all, fields(workspace = %ws.0))]
pub async fn list_or_find(
    State(state): State<AppState>,
    ws: Workspace,
    query: Result<Query<ContactsQuery>, QueryRejection>,
) -> Result<Json<ContactsAnswer>, AppError> {
    let q = paging::query(query)?;
    match (q.email, q.external_id) {
        (Some(_), Some(_)) => Err(ApiError::new(
            ErrorCode::InvalidField,
            "look up by email or by external_id, not both",
        )
        .into()),
        (Some(email), None) => Ok(Json(ContactsAnswer::One(Box::new(
            find(&state, &ws, By::Email(email)).await?,
        )))),
        (None, Some(external_id)) => Ok(Json(ContactsAnswer::One(Box::new(
            find(&state, &ws, By::ExternalId(external_id)).await?,
        )))),
        (None, None) => {
            let resp = state
                .contacts()
                .list_contacts(ListContactsRequest {
                    workspace_id: ws.id(),
                    page: Some(paging::page(q.limit, q.cursor, MAX_PAGE)?),
                    tag: q.tag.unwrap_or_default(),
                    query: String::new(),
                })
                .await
                .map_err(AppError::contacts)?
                .into_inner();
            Ok(Json(ContactsAnswer::Page(ContactList {
                contacts: views(resp.contacts)?,
                next_cursor: non_empty(resp.next_cursor),
            })))
        }
    }
}

async fn find(state: &AppState, ws: &Workspace, by: By) -> Result<ContactView, AppError> {
    let resp = state
        .contacts()
        .get_contact(GetContactRequest {
            workspace_id: ws.id(),
            by: Some(by),
        })
        .await
        .map_err(AppError::contacts)?
        .into_inner();
    let contact = resp
        .contact
        .ok_or_else(|| ApiError::not_found("contact not found"))?;
    Ok(ContactView::try_from(contact)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_bodies_are_checked_before_items() {
        let e = batch_items(json!({"contacts": [], "extra": 1})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("extra"));
        let e = batch_items(json!({"contacts": {}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("contacts"));
        let many: Vec<Value> = (0..=MAX_BATCH).map(|_| json!({})).collect();
        let e = batch_items(json!({ "contacts": many })).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("contacts"));
        assert_eq!(batch_items(json!({"contacts": [{}, {}]})).unwrap().len(), 2);
    }

    #[test]
    fn an_oversized_item_is_its_own_413() {
        let big = "x".repeat(UPSERT_LIMIT);
        let e =
            batch_item(json!({"email": "a@b.co", "external_id": "u", "custom_fields": {"a": big}}))
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    }
}
