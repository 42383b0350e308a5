//! DESIGN §2 matching: by external_id first, then by email.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, jane, spawn_app};

#[tokio::test]
async fn nothing_matches_creates_a_contact_with_the_documented_body() {
    let app = spawn_app().await;
    let body = app.upsert_ok(jane()).await;
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("ct_"), "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["version"], 1);
    assert_eq!(
        body["changed"],
        json!([
            "email",
            "external_id",
            "first_name",
            "last_name",
            "subscribed",
            "custom_fields.onboarding_completed",
            "custom_fields.plan",
            "custom_fields.posts_generated",
            "custom_fields.signup_date"
        ])
    );
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "created", "version", "changed"]);

    let contact = app.contact(id).await;
    assert_eq!(contact["id"], id);
    assert_eq!(contact["email"], "jane@example.com");
    assert_eq!(contact["external_id"], "usr_12345");
    assert_eq!(contact["first_name"], "Jane");
    assert_eq!(contact["last_name"], "Doe");
    assert_eq!(contact["subscribed"], true);
    assert_eq!(contact["tags"], json!([]));
    assert_eq!(
        contact["custom_fields"],
        json!({"onboarding_completed": false, "plan": "free", "posts_generated": 0,
               "signup_date": "2026-11-20T10:00:00Z"})
    );
    // Integers come back as integers, not 0.0.
    assert!(contact["custom_fields"]["posts_generated"].is_i64());
    assert_eq!(contact["version"], 1);
    for t in ["created_at", "updated_at"] {
        let s = contact[t].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{t}: {s}");
    }
}

#[tokio::test]
async fn the_path_without_a_trailing_slash_works_too() {
    let app = spawn_app().await;
    let resp = app.post_json("/api/v1/contacts/upsert", &jane()).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unchanged_upsert_writes_nothing_and_keeps_the_version() {
    let app = spawn_app().await;
    let first = app.upsert_ok(jane()).await;
    let again = app.upsert_ok(jane()).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["version"], 1);
    assert_eq!(again["changed"], json!([]));
}

#[tokio::test]
async fn external_id_match_updates_and_changes_the_email() {
    let app = spawn_app().await;
    let first = app.upsert_ok(jane()).await;
    let updated = app
        .upsert_ok(
            json!({"email": "jane.doe@example.com", "external_id": "usr_12345",
                           "custom_fields": {"plan": "pro"}}),
        )
        .await;
    assert_eq!(updated["id"], first["id"]);
    assert_eq!(updated["created"], false);
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["changed"], json!(["email", "custom_fields.plan"]));
    let contact = app.contact(first["id"].as_str().unwrap()).await;
    assert_eq!(contact["email"], "jane.doe@example.com");
    assert_eq!(contact["first_name"], "Jane", "absent fields are kept");
    // The old address no longer finds anyone.
    let resp = app.contact_by_email("jane@example.com").await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
}

#[tokio::test]
async fn external_id_and_email_of_two_contacts_conflict_and_nothing_is_written() {
    let app = spawn_app().await;
    let a = app
        .upsert_ok(json!({"email": "a@example.com", "external_id": "usr_a"}))
        .await;
    let b = app
        .upsert_ok(json!({"email": "b@example.com", "external_id": "usr_b"}))
        .await;
    let resp = app
        .upsert(json!({"email": "b@example.com", "external_id": "usr_a", "first_name": "Changed"}))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "conflict", Some("email")).await;
    for (c, email) in [(&a, "a@example.com"), (&b, "b@example.com")] {
        let stored = app.contact(c["id"].as_str().unwrap()).await;
        assert_eq!(stored["email"], email);
        assert_eq!(stored["first_name"], serde_json::Value::Null);
        assert_eq!(stored["version"], 1);
    }
}

#[tokio::test]
async fn an_email_match_without_external_id_attaches_it() {
    let app = spawn_app().await;
    let imported = app.import_without_external_id("imported@example.com").await;
    let body = app
        .upsert_ok(json!({"email": "Imported@Example.com", "external_id": "usr_9"}))
        .await;
    assert_eq!(body["id"], imported.as_str());
    assert_eq!(body["created"], false);
    assert_eq!(body["changed"], json!(["external_id"]));
    let contact = app.contact(&imported).await;
    assert_eq!(contact["external_id"], "usr_9");
}

#[tokio::test]
async fn an_email_match_with_another_external_id_conflicts() {
    let app = spawn_app().await;
    let b = app
        .upsert_ok(json!({"email": "b@example.com", "external_id": "usr_b"}))
        .await;
    let resp = app
        .upsert(json!({"email": "b@example.com", "external_id": "usr_other"}))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "conflict", Some("email")).await;
    let stored = app.contact(b["id"].as_str().unwrap()).await;
    assert_eq!(stored["external_id"], "usr_b");
    assert_eq!(stored["version"], 1);
}

#[tokio::test]
async fn emails_are_normalized_and_matched_case_insensitively() {
    let app = spawn_app().await;
    let created = app
        .upsert_ok(json!({"email": " Jane@Example.COM ", "external_id": "usr_1"}))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(app.contact(id).await["email"], "jane@example.com");

    // A differently cased address is the same address: no change, same contact.
    let again = app
        .upsert_ok(json!({"email": "JANE@example.com", "external_id": "usr_1"}))
        .await;
    assert_eq!(again["id"], id);
    assert_eq!(again["changed"], json!([]));

    let resp = app.contact_by_email("JaNe@EXAMPLE.com").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let found: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(found["id"], id);
}

#[tokio::test]
async fn names_are_set_kept_and_cleared_with_null() {
    let app = spawn_app().await;
    let created = app.upsert_ok(jane()).await;
    let id = created["id"].as_str().unwrap();
    let body = app
        .upsert_ok(
            json!({"email": "jane@example.com", "external_id": "usr_12345", "last_name": null}),
        )
        .await;
    assert_eq!(body["changed"], json!(["last_name"]));
    let contact = app.contact(id).await;
    assert_eq!(contact["first_name"], "Jane");
    assert_eq!(contact["last_name"], serde_json::Value::Null);

    let body = app
        .upsert_ok(
            json!({"email": "jane@example.com", "external_id": "usr_12345", "subscribed": false}),
        )
        .await;
    assert_eq!(body["changed"], json!(["subscribed"]));
    assert_eq!(body["version"], 3);
}
