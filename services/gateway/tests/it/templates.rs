//! `/api/v1/templates/…` against the real mailer: CRUD, save-time parse errors with line and
//! column, body shape errors, previews, test sends that arrive at an SMTP server.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, jane, spawn_app, welcome_template};

#[tokio::test]
async fn templates_are_created_read_listed_replaced_patched_and_deleted() {
    let app = spawn_app().await;
    let created = app.create_template(welcome_template()).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("tpl_"), "{created}");
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "subject",
            "html",
            "text",
            "from",
            "reply_to",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(created["name"], "Welcome");
    assert_eq!(created["text"], Value::Null);
    assert_eq!(created["from"], "Acme <hello@acme.test>");

    let path = format!("/api/v1/templates/{id}");
    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got, created);

    // A second one, then the list: newest first, paged.
    let mut second = welcome_template();
    second["name"] = json!("Second");
    let second = app.create_template(second).await;
    let page: Value = app.get("/api/v1/templates/").await.json().await.unwrap();
    let names: Vec<&str> = page["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Second", "Welcome"]);
    assert_eq!(page["next_cursor"], Value::Null);
    let first: Value = app
        .get("/api/v1/templates?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["templates"][0]["id"], second["id"]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest: Value = app
        .get(&format!("/api/v1/templates/?limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["templates"][0]["id"], id.as_str());
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_error(
        app.get("/api/v1/templates/?limit=101").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("limit"),
    )
    .await;
    assert_error(
        app.get("/api/v1/templates/?cursor=nonsense").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("cursor"),
    )
    .await;

    // PUT replaces everything: keys left out are cleared.
    let replaced: Value = {
        let resp = app
            .put_json(
                &path,
                &json!({"name": "Welcome v2", "subject": "Hello", "html": "<p>Hello</p>",
                        "text": "Hello", "from": "hello@acme.test", "reply_to": "help@acme.test"}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    };
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["text"], "Hello");
    assert_eq!(replaced["reply_to"], "help@acme.test");
    assert_eq!(replaced["created_at"], created["created_at"]);
    let resp = app
        .put_json(&path, &json!({"name": "x", "subject": "y", "html": "z"}))
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("from"),
    )
    .await;

    // PATCH changes what it names and keeps the rest; null clears an optional part.
    let resp = app
        .patch_json(
            &path,
            &json!({"subject": "Hi {{ first_name | default: \"you\" }}", "text": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["subject"], "Hi {{ first_name | default: \"you\" }}");
    assert_eq!(patched["text"], Value::Null);
    assert_eq!(patched["name"], "Welcome v2");
    assert_eq!(patched["reply_to"], "help@acme.test");
    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got, patched);
    let resp = app.patch_json(&path, &json!({"html": "{% if %}"})).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("html"),
    )
    .await;
    let resp = app.patch_json(&path, &json!({"nmae": "typo"})).await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("nmae"),
    )
    .await;

    let resp = app.delete(&path).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_error(
        app.get(&path).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.delete(&path).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.patch_json(&path, &json!({"name": "x"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
}

#[tokio::test]
async fn a_template_that_does_not_parse_is_a_422_with_the_part_line_and_column() {
    let app = spawn_app().await;
    let mut body = welcome_template();
    body["html"] = json!("<p>Hello</p>\n<p>{{ first_name </p>");
    let error = assert_error(
        app.post_json("/api/v1/templates/", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("html"),
    )
    .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("line 2, column"), "{message}");

    let mut body = welcome_template();
    body["subject"] = json!("Hi {% if first_name %}");
    let error = assert_error(
        app.post_json("/api/v1/templates/", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("subject"),
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("line 1"),
        "{error}"
    );

    let mut body = welcome_template();
    body["text"] = json!("{{ }}");
    assert_error(
        app.post_json("/api/v1/templates/", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("text"),
    )
    .await;

    let mut body = welcome_template();
    body["from"] = json!("not an address");
    assert_error(
        app.post_json("/api/v1/templates/", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("from"),
    )
    .await;
    // Nothing was saved.
    let page: Value = app.get("/api/v1/templates/").await.json().await.unwrap();
    assert_eq!(page["templates"], json!([]));
}

#[tokio::test]
async fn template_bodies_are_checked_key_by_key() {
    let app = spawn_app().await;
    let mut body = welcome_template();
    body["body"] = json!("<p>typo for html</p>");
    let error = assert_error(
        app.post_json("/api/v1/templates/", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("body"),
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("reply_to"),
        "{error}"
    );

    for (key, value) in [
        ("name", json!(5)),
        ("html", json!(null)),
        ("text", json!(false)),
        ("reply_to", json!(["a@b.test"])),
    ] {
        let mut body = welcome_template();
        body[key] = value;
        assert_error(
            app.post_json("/api/v1/templates/", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(key),
        )
        .await;
    }
    let mut body = welcome_template();
    body.as_object_mut().unwrap().remove("subject");
    assert_error(
        app.post_json("/api/v1/templates/", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("subject"),
    )
    .await;
    assert_error(
        app.post_raw("/api/v1/templates/", Some("text/plain"), b"{}".to_vec())
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    )
    .await;
    assert_error(
        app.post_raw(
            "/api/v1/templates/",
            Some("application/json"),
            b"{\"name\": ".to_vec(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
        None,
    )
    .await;
    let resp = app
        .http
        .post(app.url("/api/v1/templates/"))
        .json(&welcome_template())
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
}

#[tokio::test]
async fn previews_render_with_sample_fields_and_with_a_contact() {
    let app = spawn_app().await;
    let template = app.create_template(welcome_template()).await;
    let preview = format!(
        "/api/v1/templates/{}/preview",
        template["id"].as_str().unwrap()
    );

    let resp = app
        .post_json(
            &preview,
            &json!({"sample": {"first_name": "<b>Jane</b>", "plan": "pro"}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rendered: Value = resp.json().await.unwrap();
    assert_eq!(
        rendered["subject"], "Welcome, <b>Jane</b>!",
        "the subject is not HTML"
    );
    let html = rendered["html"].as_str().unwrap();
    assert!(
        html.contains("Hi &lt;b&gt;Jane&lt;/b&gt;, you are on pro."),
        "{html}"
    );
    let text = rendered["text"].as_str().unwrap();
    assert!(text.contains("Hi <b>Jane</b>, you are on pro."), "{text}");
    assert!(
        text.contains("Unsubscribe ("),
        "derived from the HTML: {text}"
    );

    // Custom fields may also come inside custom_fields.
    let resp = app
        .post_json(
            &preview,
            &json!({"sample": {"first_name": "Jo", "custom_fields": {"plan": "team"}}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rendered: Value = resp.json().await.unwrap();
    assert!(
        rendered["html"]
            .as_str()
            .unwrap()
            .contains("you are on team")
    );

    // A real contact's current state.
    let contact = app.upsert_ok(jane()).await;
    let resp = app
        .post_json(&preview, &json!({"contact_id": contact["id"]}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rendered: Value = resp.json().await.unwrap();
    assert_eq!(rendered["subject"], "Welcome, Jane!");
    assert!(
        rendered["html"]
            .as_str()
            .unwrap()
            .contains("Hi Jane, you are on free.")
    );
}

#[tokio::test]
async fn a_preview_names_the_missing_variable() {
    let app = spawn_app().await;
    let template = app.create_template(welcome_template()).await;
    let preview = format!(
        "/api/v1/templates/{}/preview",
        template["id"].as_str().unwrap()
    );

    // The subject has a default; the HTML's first_name has none.
    let error = assert_error(
        app.post_json(&preview, &json!({"sample": {"plan": "pro"}}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("html"),
    )
    .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("missing variable first_name"), "{message}");
    assert!(message.contains("default"), "says how to fix it: {message}");

    let error = assert_error(
        app.post_json(&preview, &json!({"sample": {"first_name": "Jane"}}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("html"),
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("plan"),
        "{error}"
    );

    // An empty body renders with no data: it shows the first variable the template needs.
    assert_error(
        app.post_json(&preview, &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("html"),
    )
    .await;

    // Bad bodies.
    assert_error(
        app.post_json(&preview, &json!({"contact_id": "ct_x", "sample": {}}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        None,
    )
    .await;
    assert_error(
        app.post_json(&preview, &json!({"sample": {"plan": {"nested": 1}}}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("sample.plan"),
    )
    .await;
    assert_error(
        app.post_json(&preview, &json!({"contact": "ct_x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("contact"),
    )
    .await;
    assert_error(
        app.post_json(&preview, &json!({"contact_id": "ct_nobody"}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        Some("contact_id"),
    )
    .await;
}

#[tokio::test]
async fn another_workspace_s_template_is_not_found() {
    let app = spawn_app().await;
    let template = app.create_template(welcome_template()).await;
    let id = template["id"].as_str().unwrap();
    let (_, other_key) = app.another_workspace().await;
    let path = format!("/api/v1/templates/{id}");
    assert_error(
        app.get_as(&path, &other_key).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.post_json_as(
            &format!("{path}/preview"),
            &json!({"sample": {}}),
            &other_key,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.post_json_as(
            &format!("{path}/test-send"),
            &json!({"to": "me@acme.test"}),
            &other_key,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    let resp = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    let page: Value = app
        .get_as("/api/v1/templates/", &other_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["templates"], json!([]));
    // Still there for its owner.
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
    // An id that is not a template id names nothing either.
    for bad in ["tpl_nope", "msg_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6", "x"] {
        assert_error(
            app.get(&format!("/api/v1/templates/{bad}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn a_test_send_arrives_with_the_unsubscribe_headers() {
    let app = spawn_app().await;
    let template = app.create_template(welcome_template()).await;
    let test_send = format!(
        "/api/v1/templates/{}/test-send",
        template["id"].as_str().unwrap()
    );
    let resp = app
        .post_json(
            &test_send,
            &json!({"to": "Me@Acme.test", "sample": {"first_name": "Jane", "plan": "pro"}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let message: Value = resp.json().await.unwrap();
    assert!(
        message["id"].as_str().unwrap().starts_with("msg_"),
        "{message}"
    );
    assert_eq!(message["status"], "queued");
    assert_eq!(message["to"], "me@acme.test");
    assert_eq!(message["subject"], "Welcome, Jane!");
    assert_eq!(message["template_id"], template["id"]);
    assert_eq!(message["source"]["test"], true);
    assert!(message["contact_id"].as_str().unwrap().starts_with("test_"));

    let mails = app.mails(1).await;
    let mail = &mails[0];
    assert_eq!(mail.to, ["me@acme.test"]);
    assert_eq!(mail.from, "hello@acme.test");
    assert_eq!(mail.header("Subject").as_deref(), Some("Welcome, Jane!"));
    let list_unsubscribe = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(
        list_unsubscribe.contains("<http://meisa.test/u/") && list_unsubscribe.contains("<mailto:"),
        "{list_unsubscribe}"
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // It shows as sent, with its bodies.
    let id = message["id"].as_str().unwrap();
    let detail = wait_for_status(&app, id, "sent").await;
    assert!(
        detail["html"]
            .as_str()
            .unwrap()
            .contains("Hi Jane, you are on pro.")
    );
    assert!(detail["sent_at"].is_string(), "{detail}");
    assert_eq!(detail["attempts"], 1);

    // With a contact's data: the email still goes only to `to`.
    let contact = app.upsert_ok(jane()).await;
    let resp = app
        .post_json(
            &test_send,
            &json!({"to": "me@acme.test", "contact_id": contact["id"]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let mails = app.mails(2).await;
    assert_eq!(mails[1].to, ["me@acme.test"]);
    assert_eq!(
        mails[1].header("Subject").as_deref(),
        Some("Welcome, Jane!")
    );
    // And it is not part of the contact's history.
    let history: Value = app
        .get(&format!(
            "/api/v1/messages/?contact_id={}",
            contact["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"], json!([]));

    // A template that does not render with the data sends nothing.
    let error = assert_error(
        app.post_json(&test_send, &json!({"to": "me@acme.test"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("html"),
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("first_name"),
        "{error}"
    );
    assert_error(
        app.post_json(
            &test_send,
            &json!({"to": "not an address", "sample": {"first_name": "J", "plan": "p"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("to"),
    )
    .await;
    assert_error(
        app.post_json(&test_send, &json!({"sample": {}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("to"),
    )
    .await;
    assert_eq!(app.smtp().message_count(), 2, "nothing more was sent");
    // The mailer records a message before it answers a send, so its list proves that the
    // rejected sends queued nothing that could still be delivered later.
    let sent: Value = app
        .get(&format!(
            "/api/v1/messages/?template_id={}",
            template["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent["messages"].as_array().map(Vec::len), Some(2), "{sent}");
}

/// Polls `GET /api/v1/messages/{id}` until the message has `status` (delivery is asynchronous).
pub async fn wait_for_status(app: &crate::helpers::TestApp, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let resp = app.get(&format!("/api/v1/messages/{id}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let message: Value = resp.json().await.unwrap();
        if message["status"] == status {
            return message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {id} did not become {status}: {message}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
