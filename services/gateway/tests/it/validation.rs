//! Everything a request can get wrong, each with its status, code and field.

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::helpers::{assert_error, jane, spawn_app};

fn base() -> Value {
    json!({"email": "jane@example.com", "external_id": "usr_1"})
}

fn with(key: &str, value: Value) -> Value {
    let mut body = base();
    body[key] = value;
    body
}

const UPSERT: &str = "/api/v1/contacts/upsert/";

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    let resp = app
        .post_raw(
            UPSERT,
            Some("application/json"),
            br#"{"email": "a@b.co", "#.to_vec(),
        )
        .await;
    let error = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_json", None).await;
    assert!(
        error["message"].as_str().unwrap().contains("line 1"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_a_415() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&jane()).unwrap();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let resp = app.post_raw(UPSERT, ct, body.clone()).await;
        assert_error(
            resp,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        )
        .await;
    }
    let resp = app
        .post_raw(UPSERT, Some("application/json; charset=utf-8"), body)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_over_256_kib_is_a_413() {
    let app = spawn_app().await;
    let mut fields = Map::new();
    for i in 0..70 {
        fields.insert(format!("f{i}"), json!("x".repeat(4000)));
    }
    let body = serde_json::to_vec(&with("custom_fields", Value::Object(fields))).unwrap();
    assert!(body.len() > 256 * 1024);
    let resp = app.post_raw(UPSERT, Some("application/json"), body).await;
    assert_error(
        resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    )
    .await;

    // Without Content-Length (chunked), the limit holds while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..300)
        .map(|i| {
            Ok(if i == 0 {
                b"{\"email\": \"".to_vec()
            } else {
                vec![b'a'; 1024]
            })
        })
        .collect();
    let resp = app
        .http
        .post(app.url(UPSERT))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    )
    .await;
}

#[tokio::test]
async fn unknown_top_level_keys_are_named() {
    let app = spawn_app().await;
    let resp = app.upsert(with("plan", json!("pro"))).await;
    let error = assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("plan"),
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("custom_fields"),
        "{error}"
    );
    let resp = app.upsert(with("frist_name", json!("Jane"))).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("frist_name"),
    )
    .await;
}

#[tokio::test]
async fn wrong_json_types_name_the_field() {
    let app = spawn_app().await;
    for (key, value) in [
        ("email", json!(5)),
        ("external_id", json!(12345)),
        ("first_name", json!(3)),
        ("last_name", json!(true)),
        ("subscribed", json!("yes")),
        ("custom_fields", json!(["plan"])),
        ("custom_fields", json!("plan")),
    ] {
        let resp = app.upsert(with(key, value)).await;
        assert_error(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(key),
        )
        .await;
    }
    let resp = app.upsert(json!(["not", "an", "object"])).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        None,
    )
    .await;
}

#[tokio::test]
async fn email_and_external_id_are_required() {
    let app = spawn_app().await;
    let resp = app.upsert(json!({"external_id": "usr_1"})).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("email"),
    )
    .await;
    let resp = app.upsert(json!({"email": "jane@example.com"})).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("external_id"),
    )
    .await;
    let resp = app
        .upsert(json!({"email": "jane@example.com", "external_id": ""}))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("external_id"),
    )
    .await;
    let resp = app
        .upsert(json!({"email": "", "external_id": "usr_1"}))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("email"),
    )
    .await;
}

#[tokio::test]
async fn a_bad_email_is_refused() {
    let app = spawn_app().await;
    for email in ["jane", "jane@", "Jane <jane@example.com>"] {
        let resp = app.upsert(with("email", json!(email))).await;
        assert_error(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("email"),
        )
        .await;
    }
}

#[tokio::test]
async fn limits_are_enforced_naming_the_field() {
    let app = spawn_app().await;

    let long_email = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long_email.len(), 255);
    let resp = app.upsert(with("email", json!(long_email))).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("email"),
    )
    .await;

    let resp = app.upsert(with("first_name", json!("x".repeat(257)))).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("first_name"),
    )
    .await;
    app.upsert_ok(with("first_name", json!("é".repeat(256))))
        .await;

    let many: Map<String, Value> = (0..101).map(|i| (format!("f{i}"), json!(i))).collect();
    let resp = app.upsert(with("custom_fields", Value::Object(many))).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("custom_fields"),
    )
    .await;

    let resp = app
        .upsert(with("custom_fields", json!({"bio": "x".repeat(4097)})))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("custom_fields.bio"),
    )
    .await;

    for bad in [
        "1plan",
        "plan-name",
        "_plan",
        "email",
        "tags",
        "p".repeat(65).as_str(),
    ] {
        let resp = app.upsert(with("custom_fields", json!({ bad: "x" }))).await;
        let field = format!("custom_fields.{bad}");
        assert_error(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(&field),
        )
        .await;
    }

    // Nothing above was written beyond the one valid upsert.
    let contact: Value = app
        .contact_by_email("jane@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(contact["version"], 1);
    assert_eq!(contact["custom_fields"], json!({}));
}
