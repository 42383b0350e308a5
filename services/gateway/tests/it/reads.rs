//! Reading, listing and erasing contacts.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, jane, spawn_app};

#[tokio::test]
async fn contacts_are_found_by_id_email_and_external_id() {
    let app = spawn_app().await;
    let created = app.upsert_ok(jane()).await;
    let id = created["id"].as_str().unwrap();
    let by_id = app.contact(id).await;
    let by_email: Value = app
        .contact_by_email("jane@example.com")
        .await
        .json()
        .await
        .unwrap();
    let by_external: Value = app
        .get("/api/v1/contacts/?external_id=usr_12345")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_id, by_email);
    assert_eq!(by_id, by_external);
    let keys: Vec<&str> = by_id
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "email",
            "external_id",
            "first_name",
            "last_name",
            "subscribed",
            "tags",
            "custom_fields",
            "version",
            "created_at",
            "updated_at"
        ]
    );

    assert_error(
        app.get("/api/v1/contacts/ct_nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.get("/api/v1/contacts/?external_id=usr_nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.get("/api/v1/contacts/?external_id=usr_12345&email=jane@example.com")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        None,
    )
    .await;
}

#[tokio::test]
async fn the_list_pages_with_a_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = app
            .upsert_ok(
                json!({"email": format!("u{i}@example.com"), "external_id": format!("usr_{i}")}),
            )
            .await;
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts/?limit=2&cursor={c}"),
            None => "/api/v1/contacts/?limit=2".to_string(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        pages += 1;
        let contacts = page["contacts"].as_array().unwrap();
        assert!(contacts.len() <= 2);
        seen.extend(
            contacts
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert_eq!(page["next_cursor"], Value::Null);
                break;
            }
        }
        assert!(pages < 10, "the cursor does not advance");
    }
    assert_eq!(pages, 3);
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);

    // The path without a slash is the same list.
    let all: Value = app.get("/api/v1/contacts").await.json().await.unwrap();
    assert_eq!(all["contacts"].as_array().unwrap().len(), 5);
    assert_eq!(all["next_cursor"], Value::Null);

    for bad in ["0", "501", "ten"] {
        let resp = app.get(&format!("/api/v1/contacts/?limit={bad}")).await;
        assert_error(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("limit"),
        )
        .await;
    }
}

#[tokio::test]
async fn the_list_filters_by_tag() {
    let app = spawn_app().await;
    let tagged = app
        .upsert_ok(json!({"email": "a@example.com", "external_id": "usr_a"}))
        .await;
    app.upsert_ok(json!({"email": "b@example.com", "external_id": "usr_b"}))
        .await;
    let id = tagged["id"].as_str().unwrap().to_string();
    app.contacts_grpc()
        .await
        .add_tags(meisa_proto::contacts::AddTagsRequest {
            workspace_id: app.workspace_id.clone(),
            id: id.clone(),
            tags: vec!["pro".into()],
            causation: None,
        })
        .await
        .unwrap();
    let page: Value = app
        .get("/api/v1/contacts/?tag=pro")
        .await
        .json()
        .await
        .unwrap();
    let contacts = page["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["id"], id.as_str());
    assert_eq!(contacts[0]["tags"], json!(["pro"]));
}

#[tokio::test]
async fn delete_erases_the_contact() {
    let app = spawn_app().await;
    let created = app.upsert_ok(jane()).await;
    let id = created["id"].as_str().unwrap();
    let resp = app.delete(&format!("/api/v1/contacts/{id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_error(
        app.get(&format!("/api/v1/contacts/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.contact_by_email("jane@example.com").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    // Erasing again: there is nothing left to erase.
    let resp = app.delete(&format!("/api/v1/contacts/{id}")).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    // The same person signing up again is a new contact.
    let again = app.upsert_ok(jane()).await;
    assert_eq!(again["created"], true);
    assert_ne!(again["id"], created["id"]);
}
