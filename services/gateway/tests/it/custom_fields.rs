//! Custom fields: merge, removal with null, type fixing, date detection.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app};

fn with_fields(fields: Value) -> Value {
    json!({"email": "jane@example.com", "external_id": "usr_1", "custom_fields": fields})
}

#[tokio::test]
async fn fields_merge_and_null_removes_one() {
    let app = spawn_app().await;
    let created = app
        .upsert_ok(with_fields(
            json!({"plan": "free", "posts": 1, "beta": true}),
        ))
        .await;
    let id = created["id"].as_str().unwrap();

    let body = app
        .upsert_ok(with_fields(
            json!({"posts": 2, "beta": null, "team": "acme"}),
        ))
        .await;
    assert_eq!(body["version"], 2);
    assert_eq!(
        body["changed"],
        json!([
            "custom_fields.beta",
            "custom_fields.posts",
            "custom_fields.team"
        ])
    );
    let contact = app.contact(id).await;
    assert_eq!(
        contact["custom_fields"],
        json!({"plan": "free", "posts": 2, "team": "acme"})
    );

    // Removing a field that is not there changes nothing.
    let body = app.upsert_ok(with_fields(json!({"beta": null}))).await;
    assert_eq!(body["changed"], json!([]));
    assert_eq!(body["version"], 2);
}

#[tokio::test]
async fn numbers_keep_their_integer_ness() {
    let app = spawn_app().await;
    let created = app
        .upsert_ok(with_fields(
            json!({"posts": 0, "ratio": 0.5, "big": 9007199254740993_i64}),
        ))
        .await;
    let contact = app.contact(created["id"].as_str().unwrap()).await;
    assert!(contact["custom_fields"]["posts"].is_i64());
    assert_eq!(contact["custom_fields"]["posts"], 0);
    assert_eq!(contact["custom_fields"]["ratio"], 0.5);
    assert_eq!(contact["custom_fields"]["big"], 9007199254740993_i64);
    // An integer and a float are both numbers: the type fixed by the first value accepts both.
    let body = app
        .upsert_ok(with_fields(json!({"posts": 1.5, "ratio": 2})))
        .await;
    assert_eq!(body["version"], 2);
}

#[tokio::test]
async fn the_first_value_fixes_the_type_and_a_mismatch_writes_nothing() {
    let app = spawn_app().await;
    let created = app
        .upsert_ok(with_fields(
            json!({"plan": "free", "posts": 1, "done": false}),
        ))
        .await;
    let id = created["id"].as_str().unwrap();

    for (name, value, message) in [
        (
            "plan",
            json!(5),
            "custom_fields.plan: field is a string, got a number",
        ),
        (
            "posts",
            json!("many"),
            "custom_fields.posts: field is a number, got a string",
        ),
        (
            "done",
            json!("yes"),
            "custom_fields.done: field is a boolean, got a string",
        ),
        (
            "posts",
            json!(true),
            "custom_fields.posts: field is a number, got a boolean",
        ),
    ] {
        // Another, valid change rides along: it must not be written either.
        let resp = app
            .upsert(with_fields(json!({"team": "acme", name: value})))
            .await;
        let field = format!("custom_fields.{name}");
        let error = assert_error(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(&field),
        )
        .await;
        assert_eq!(error["message"], message);
    }
    let contact = app.contact(id).await;
    assert_eq!(contact["version"], 1);
    assert_eq!(
        contact["custom_fields"],
        json!({"done": false, "plan": "free", "posts": 1})
    );

    // The type is the workspace's: another contact cannot send another type either.
    let resp = app
        .upsert(json!({"email": "other@example.com", "external_id": "usr_2", "custom_fields": {"plan": 1}}))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("custom_fields.plan"),
    )
    .await;
    assert_error(
        app.contact_by_email("other@example.com").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
}

#[tokio::test]
async fn dates_are_detected_from_the_first_value() {
    let app = spawn_app().await;
    app.upsert_ok(with_fields(json!({
        "signup_date": "2026-11-20T10:00:00Z",
        "birthday": "2026-11-20",
        "plan": "free",
        "posts": 3,
        "done": true
    })))
    .await;
    let fields = app.fields().await;
    let types: Vec<(String, String)> = fields["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (name, ty) in [
        ("signup_date", "date"),
        ("birthday", "date"),
        ("plan", "string"),
        ("posts", "number"),
        ("done", "boolean"),
    ] {
        assert!(
            types.contains(&(name.to_string(), ty.to_string())),
            "{name}: {fields}"
        );
    }
    for f in fields["fields"].as_array().unwrap() {
        assert_eq!(f["contacts"], 1, "{f}");
        assert!(chrono::DateTime::parse_from_rfc3339(f["first_seen_at"].as_str().unwrap()).is_ok());
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "type", "first_seen_at", "contacts"]);
    }

    // A date field takes only dates afterwards.
    let resp = app
        .upsert(with_fields(json!({"signup_date": "soon"})))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("custom_fields.signup_date"),
    )
    .await;
    app.upsert_ok(with_fields(json!({"signup_date": "2026-12-01"})))
        .await;
}

#[tokio::test]
async fn objects_and_arrays_are_refused_naming_the_field() {
    let app = spawn_app().await;
    for value in [json!({"tier": "pro"}), json!(["a", "b"])] {
        let resp = app.upsert(with_fields(json!({"plan": value}))).await;
        let error = assert_error(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("custom_fields.plan"),
        )
        .await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("string, number or boolean"),
            "{error}"
        );
    }
    assert_error(
        app.contact_by_email("jane@example.com").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
}
