//! The OpenAPI entries of the failures many endpoints share, written once: a handler's
//! `#[utoipa::path]` names the sets it can answer (`ById<TemplateView>`, `BodyErrors`) and spells out
//! only what is its own (its success, a 422 that says which fields, a 409).
//!
//! Every failure body is the one error shape, [`crate::error::ErrorBody`].

use std::{collections::BTreeMap, marker::PhantomData};

use utoipa::{
    IntoResponses,
    openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, response::Response},
};

/// What one of a resource is called, implemented by its view: "no such template in this
/// workspace".
pub trait Noun {
    const NOUN: &'static str;
}

/// A resource named by the id in the path: 401, 404 (no such one in this workspace), 503.
pub struct ById<N>(PhantomData<N>);

/// A list without filters: 401, 422 (a bad limit or cursor), 503.
pub struct PageErrors;

/// Any call with an API key: 401, 503.
pub struct Errors;

/// A JSON body: 400 (malformed), 413 (too large), 415 (not `application/json`).
pub struct BodyErrors;

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn responses<const N: usize>(entries: [(&str, &str); N]) -> BTreeMap<String, RefOr<Response>> {
    entries
        .into_iter()
        .map(|(status, description)| (status.to_string(), error(description)))
        .collect()
}

impl<N: Noun> IntoResponses for ById<N> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let not_found = format!("no such {} in this workspace", N::NOUN);
        responses([("401", ""), ("404", &not_found), ("503", "")])
    }
}

impl IntoResponses for PageErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([("401", ""), ("422", "a bad limit or cursor"), ("503", "")])
    }
}

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([("401", ""), ("503", "")])
    }
}

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([("400", ""), ("413", ""), ("415", "")])
    }
}
