//! The field registry: every custom field with its type, when it was first seen and how many
//! contacts have it; and the fields automations or sequences use that no contact has sent yet
//! (accepted at save time so a team can prepare before the product sends the data).

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use meisa_proto::{
    automations::{ListAutomationsRequest, ListSequencesRequest},
    common::PageRequest,
    contacts::ListFieldsRequest,
};

use super::{
    contacts::when,
    form::{definition, name_of},
    page::{Frame, InFrame, PageResult},
    session::SignedIn,
};
use crate::{api::json::time, error::AppError, state::AppState};

pub struct FieldRow {
    pub name: String,
    pub kind: String,
    pub first_seen: String,
    pub contacts: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "fields.html")]
pub struct FieldsPage {
    frame: Frame,
    rows: Vec<FieldRow>,
    /// Fields nobody sent yet, with the automations and sequences that use them.
    awaited: BTreeMap<String, Vec<(String, String)>>,
}

pub async fn list(State(state): State<AppState>, user: SignedIn) -> PageResult<Response> {
    let frame = Frame::new(&user, "fields");
    let ws = user.workspace().to_string();
    let page = || {
        Some(PageRequest {
            limit: 500,
            cursor: String::new(),
        })
    };
    let (mut contacts, mut automations, mut sequences) =
        (state.contacts(), state.automations(), state.automations());
    let (fields, automations, sequences) = tokio::join!(
        contacts.list_fields(ListFieldsRequest {
            workspace_id: ws.clone(),
        }),
        automations.list_automations(ListAutomationsRequest {
            workspace_id: ws.clone(),
            page: page(),
        }),
        sequences.list_sequences(ListSequencesRequest {
            workspace_id: ws.clone(),
            page: page(),
        }),
    );
    let fields = fields
        .map_err(AppError::contacts)
        .in_frame(&frame)?
        .into_inner()
        .fields;
    let mut rows = Vec::new();
    for f in fields {
        let first_seen = time("first_seen_at", f.first_seen_at).in_frame(&frame)?;
        rows.push(FieldRow {
            kind: meisa_proto::field_type_of(f.r#type)
                .map_or("unknown", |t| t.as_str())
                .into(),
            name: f.name,
            first_seen: when(first_seen),
            contacts: f.contacts,
        });
    }
    // Awaited fields are a hint; when automations does not answer, the registry still shows.
    let mut awaited: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    if let Ok(resp) = automations {
        for a in resp.into_inner().automations {
            let name = name_of(&definition(&a.definition));
            for field in a.unseen_fields {
                awaited
                    .entry(field)
                    .or_default()
                    .push((format!("/automations/{}", a.id), name.clone()));
            }
        }
    }
    if let Ok(resp) = sequences {
        for s in resp.into_inner().sequences {
            let name = name_of(&definition(&s.definition));
            for field in s.unseen_fields {
                awaited
                    .entry(field)
                    .or_default()
                    .push((format!("/sequences/{}", s.id), name.clone()));
            }
        }
    }
    // "Unseen" is as of each definition's last save: a field sent since is not awaited any more.
    awaited.retain(|name, _| !rows.iter().any(|r| &r.name == name));
    Ok(FieldsPage {
        frame,
        rows,
        awaited,
    }
    .into_response())
}
