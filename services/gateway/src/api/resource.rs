//! The one way the configuration resources (templates, sequences, automations, suppressions)
//! answer: which service a resource's calls go to and how its errors read, how the object a
//! service answers becomes the JSON view, and the status codes: 201 with the object for a create,
//! 200 with it for a read or a replace, 204 for a delete, a page with `next_cursor` (null on the
//! last page) for a list. An id the service cannot parse is the same 404 as one it does not have.
//!
//! A resource file declares its [`Resource`] once and keeps only what is its own: its paths and
//! documentation, its requests, and which field of each answer holds the object.
//!
//! ```ignore
//! let request = pb::GetSequenceRequest { workspace_id, id };
//! SEQUENCES.found(state.automations().get_sequence(request), |r| r.sequence).await
//! ```

use std::future::Future;

use axum::{Json, http::StatusCode};
use serde::Serialize;
use tonic::Status;

use crate::{
    clients::Service,
    error::{AppError, BadAnswer, FieldIs},
};

use super::{docs::Noun, json::non_empty, paging::CURSOR};

/// A gRPC call in flight. It borrows the client it was made on, so it is made inside the
/// statement that awaits it: `SEQUENCES.found(state.automations().get_sequence(request), …)`.
pub trait Call<T>: Future<Output = Result<tonic::Response<T>, Status>> {}

impl<T, F: Future<Output = Result<tonic::Response<T>, Status>>> Call<T> for F {}

/// One resource: `Item` is its proto, `View` its JSON (named by its [`Noun`]).
pub struct Resource<Item, View> {
    /// The service that owns the resource and judges what is sent to it.
    pub service: Service,
    /// The request fields that hold the path's id, as the service names them in an
    /// `invalid_field` error.
    pub path_id: &'static [(&'static str, FieldIs<'static>)],
    pub to_view: fn(Item) -> Result<View, BadAnswer>,
}

impl<Item, View: Serialize + Noun> Resource<Item, View> {
    /// The answer of one call on the resource whose id is in the path.
    pub async fn call<T>(&self, call: impl Call<T>) -> Result<T, AppError> {
        answer(self.service, self.path_id, call).await
    }

    /// The object an answer exists to carry.
    pub fn item(&self, item: Option<Item>) -> Result<Item, BadAnswer> {
        item.ok_or_else(|| self.missing(&format!("the {}", View::NOUN)))
    }

    pub fn view(&self, item: Item) -> Result<View, BadAnswer> {
        (self.to_view)(item)
    }

    /// What an answer lacks: `what` is "the template", "the stats".
    pub fn missing(&self, what: &str) -> BadAnswer {
        BadAnswer::missing(self.service, what)
    }

    /// 201 with the object created.
    pub async fn created<T>(
        &self,
        call: impl Call<T>,
        item: impl FnOnce(T) -> Option<Item>,
    ) -> Result<(StatusCode, Json<View>), AppError> {
        let answer = answer(self.service, &[], call).await?;
        let view = self.view(self.item(item(answer))?)?;
        Ok((StatusCode::CREATED, Json(view)))
    }

    /// 200 with the object read, replaced or switched.
    pub async fn found<T>(
        &self,
        call: impl Call<T>,
        item: impl FnOnce(T) -> Option<Item>,
    ) -> Result<Json<View>, AppError> {
        let answer = self.call(call).await?;
        Ok(Json(self.view(self.item(item(answer))?)?))
    }

    /// 204: deleted.
    pub async fn deleted<T>(&self, call: impl Call<T>) -> Result<StatusCode, AppError> {
        self.call(call).await?;
        Ok(StatusCode::NO_CONTENT)
    }

    /// One page: the views, and the cursor of the next page (`None` on the last one).
    pub async fn page<T>(
        &self,
        call: impl Call<T>,
        items: impl FnOnce(T) -> (Vec<Item>, String),
    ) -> Result<(Vec<View>, Option<String>), AppError> {
        let (items, next_cursor) = items(answer(self.service, CURSOR, call).await?);
        let views = items
            .into_iter()
            .map(self.to_view)
            .collect::<Result<_, _>>()?;
        Ok((views, non_empty(next_cursor)))
    }
}

/// The answer of a call to `service`, or its error in the caller's terms (see
/// [`AppError::renaming`]).
pub async fn answer<T>(
    service: Service,
    fields: &[(&str, FieldIs<'_>)],
    call: impl Call<T>,
) -> Result<T, AppError> {
    match call.await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(AppError::Service { service, status }.renaming(fields)),
    }
}
