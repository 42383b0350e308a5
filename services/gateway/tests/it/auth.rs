//! API keys: bearer auth, revocation, workspace isolation.

use meisa_gateway::admin;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, jane, spawn_app};

const UPSERT: &str = "/api/v1/contacts/upsert/";

#[tokio::test]
async fn a_missing_key_is_a_401() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url(UPSERT))
        .json(&jane())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
    let resp = app
        .http
        .get(app.url("/api/v1/fields/"))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
}

#[tokio::test]
async fn a_bad_key_is_a_401() {
    let app = spawn_app().await;
    let forged = format!("meisa_sk_{}", "A".repeat(40));
    for key in ["nonsense", "meisa_sk_short", forged.as_str()] {
        let resp = app.post_json_as(UPSERT, &jane(), key).await;
        assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
    }
    let resp = app
        .http
        .get(app.url("/api/v1/fields/"))
        .header("authorization", format!("Basic {}", app.api_key))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
}

#[tokio::test]
async fn auth_is_checked_before_the_body() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url(UPSERT))
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
}

#[tokio::test]
async fn a_revoked_key_is_a_401_and_other_keys_keep_working() {
    let app = spawn_app().await;
    let second = admin::create_key(&app.gateway_pool, &app.workspace_id)
        .await
        .unwrap();
    let resp = app.post_json(UPSERT, &jane()).await;
    assert_eq!(resp.status(), StatusCode::OK);

    let prefix: String = app.api_key.chars().take(17).collect();
    let revoked = admin::revoke_key(&app.gateway_pool, &prefix).await.unwrap();
    assert_eq!(revoked.revoked.workspace_id, app.workspace_id);

    let resp = app.post_json(UPSERT, &jane()).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
    let resp = app.post_json_as(UPSERT, &jane(), &second.api_key).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Revoking twice finds nothing to revoke.
    assert!(admin::revoke_key(&app.gateway_pool, &prefix).await.is_err());
    let keys = admin::list_keys(&app.gateway_pool, &app.workspace_id)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.revoked_at.is_some()).count(), 1);
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT key_prefix, key_hash FROM api_keys")
        .fetch_all(&app.gateway_pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(app.api_key.starts_with(&rows[0].0));
    assert!(rows[0].0.len() < app.api_key.len());
    assert_eq!(rows[0].1.len(), 32);
}

#[tokio::test]
async fn another_workspaces_contacts_are_not_found() {
    let app = spawn_app().await;
    let created = app.upsert_ok(jane()).await;
    let id = created["id"].as_str().unwrap();
    let (_, other_key) = app.another_workspace().await;

    let resp = app
        .get_as(&format!("/api/v1/contacts/{id}"), &other_key)
        .await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/contacts/{id}")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    let resp = app
        .http
        .get(app.url("/api/v1/contacts/"))
        .query(&[("email", "jane@example.com")])
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    let list: Value = app
        .get_as("/api/v1/contacts/", &other_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["contacts"], serde_json::json!([]));

    // The same external_id in the other workspace is another contact.
    let theirs: Value = app
        .post_json_as(UPSERT, &jane(), &other_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["created"], true);
    assert_ne!(theirs["id"], created["id"]);
    // And the first workspace still sees its own, untouched.
    assert_eq!(app.contact(id).await["version"], 1);
}
