//! Batch upsert: one result per item, in order; a bad item does not fail the rest.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app};

const BATCH: &str = "/api/v1/contacts/batch-upsert/";

#[tokio::test]
async fn a_bad_item_in_the_middle_fails_alone() {
    let app = spawn_app().await;
    // Fix plan's type first, so item 3 breaks it.
    app.upsert_ok(json!({"email": "seed@example.com", "external_id": "usr_seed", "custom_fields": {"plan": "free"}}))
        .await;
    let body = json!({"contacts": [
        {"email": "a@example.com", "external_id": "usr_a", "custom_fields": {"plan": "pro"}},
        {"email": "b@example.com", "external_id": "usr_b", "nickname": "bee"},
        {"email": "c@example.com", "external_id": "usr_c", "custom_fields": {"plan": {"tier": 1}}},
        {"email": "d@example.com", "external_id": "usr_d", "custom_fields": {"plan": 3}},
        {"email": "not-an-email", "external_id": "usr_e"},
        {"email": "f@example.com", "external_id": "usr_f", "first_name": "Fay"}
    ]});
    let resp = app.post_json(BATCH, &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6, "{body}");

    for i in [0, 5] {
        assert!(
            results[i]["id"].as_str().unwrap().starts_with("ct_"),
            "{}",
            results[i]
        );
        assert_eq!(results[i]["created"], true);
        assert_eq!(results[i]["version"], 1);
    }
    let expect = [
        (1, "nickname"),
        (2, "custom_fields.plan"),
        (3, "custom_fields.plan"),
        (4, "email"),
    ];
    for (i, field) in expect {
        let error = &results[i]["error"];
        assert_eq!(error["code"], "invalid_field", "{}", results[i]);
        assert_eq!(error["field"], field, "{}", results[i]);
        assert!(results[i].get("id").is_none());
    }

    let fay: Value = app
        .contact_by_email("f@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fay["first_name"], "Fay");
    for email in ["b@example.com", "c@example.com", "d@example.com"] {
        assert_error(
            app.contact_by_email(email).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn a_conflicting_item_is_reported_in_place() {
    let app = spawn_app().await;
    app.upsert_ok(json!({"email": "b@example.com", "external_id": "usr_b"}))
        .await;
    let body = json!({"contacts": [
        {"email": "b@example.com", "external_id": "usr_other"},
        {"email": "b@example.com", "external_id": "usr_b", "first_name": "Bea"}
    ]});
    let body: Value = app
        .post_json("/api/v1/contacts/batch-upsert", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["results"][0]["error"]["code"], "conflict", "{body}");
    assert_eq!(
        body["results"][1]["changed"],
        json!(["first_name"]),
        "{body}"
    );
}

#[tokio::test]
async fn the_batch_body_itself_is_validated() {
    let app = spawn_app().await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"email": format!("u{i}@example.com"), "external_id": format!("u{i}")}))
        .collect();
    let resp = app.post_json(BATCH, &json!({ "contacts": too_many })).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("contacts"),
    )
    .await;

    let resp = app
        .post_json(BATCH, &json!({"contacts": {"email": "a@example.com"}}))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("contacts"),
    )
    .await;
    let resp = app.post_json(BATCH, &json!({})).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("contacts"),
    )
    .await;
    let resp = app
        .post_json(BATCH, &json!({"contacts": [], "mode": "fast"}))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("mode"),
    )
    .await;
    let resp = app
        .post_raw(
            BATCH,
            Some("application/json"),
            b"{\"contacts\": [".to_vec(),
        )
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_json", None).await;

    let empty: Value = app
        .post_json(BATCH, &json!({"contacts": []}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty, json!({"results": []}));
}

#[tokio::test]
async fn a_full_batch_of_1000_is_accepted() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"email": format!("u{i}@example.com"), "external_id": format!("u{i}"),
                        "custom_fields": {"n": i}})
        })
        .collect();
    let resp = app.post_json(BATCH, &json!({ "contacts": items })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    assert!(
        results.iter().all(|r| r["created"] == true),
        "{}",
        results.iter().find(|r| r["created"] != true).unwrap()
    );
    let fields = app.fields().await;
    assert_eq!(fields["fields"][0]["contacts"], 1000);
}
