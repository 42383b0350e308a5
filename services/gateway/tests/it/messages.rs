//! `/api/v1/messages/…` and `/api/v1/suppressions/…`. Messages are created the way automations
//! create them: SendEmail on the mailer, with a contact snapshot and a source.

use meisa_proto::{
    common::Contact,
    contacts::{GetContactRequest, get_contact_request::By},
    mailer as pb,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, assert_error, jane, spawn_app, welcome_template},
    templates::wait_for_status,
};

/// The contact's current state, as automations read it before sending.
pub async fn snapshot(app: &TestApp, id: &str) -> Contact {
    app.contacts_grpc()
        .await
        .get_contact(GetContactRequest {
            workspace_id: app.workspace_id.clone(),
            by: Some(By::Id(id.into())),
        })
        .await
        .expect("get contact")
        .into_inner()
        .contact
        .expect("contact")
}

/// SendEmail as an automation's job would call it.
pub async fn send(
    app: &TestApp,
    key: &str,
    contact: Contact,
    template_id: &str,
    source: pb::MessageSource,
) -> Value {
    let message = app
        .mailer_grpc()
        .await
        .send_email(pb::SendEmailRequest {
            workspace_id: app.workspace_id.clone(),
            idempotency_key: key.into(),
            contact: Some(contact),
            template_id: template_id.into(),
            source: Some(source),
        })
        .await
        .expect("send email")
        .into_inner()
        .message
        .expect("message");
    json!({"id": message.id, "status": message.status})
}

fn source(automation: &str, sequence: &str, step: Option<u32>) -> pb::MessageSource {
    pb::MessageSource {
        automation_id: automation.into(),
        sequence_id: sequence.into(),
        step,
        ..Default::default()
    }
}

async fn list(app: &TestApp, query: &str) -> Value {
    let resp = app.get(&format!("/api/v1/messages/{query}")).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn messages_are_listed_with_filters() {
    let app = spawn_app().await;
    let template = app.create_template(welcome_template()).await;
    let template_id = template["id"].as_str().unwrap();
    let jane_id = app.upsert_ok(jane()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bob_id = app
        .upsert_ok(json!({"email": "bob@example.com", "external_id": "usr_2", "first_name": "Bob"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let to_jane = send(
        &app,
        "job-1",
        snapshot(&app, &jane_id).await,
        template_id,
        source("aut_1", "seq_1", Some(0)),
    )
    .await;
    // Bob has no plan: the template needs one, so his message is skipped.
    let to_bob = send(
        &app,
        "job-2",
        snapshot(&app, &bob_id).await,
        template_id,
        source("aut_2", "", None),
    )
    .await;
    wait_for_status(&app, to_jane["id"].as_str().unwrap(), "sent").await;

    let all = list(&app, "").await;
    assert_eq!(
        ids(&all),
        [
            to_bob["id"].as_str().unwrap(),
            to_jane["id"].as_str().unwrap()
        ],
        "newest first"
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let jane_msg = &all["messages"][1];
    assert_eq!(jane_msg["contact_id"], jane_id.as_str());
    assert_eq!(jane_msg["to"], "jane@example.com");
    assert_eq!(jane_msg["template_id"], template_id);
    assert_eq!(
        jane_msg["source"],
        json!({"automation_id": "aut_1", "sequence_id": "seq_1", "step": 0, "test": false})
    );
    assert_eq!(jane_msg["status"], "sent");
    assert_eq!(jane_msg["reason"], Value::Null);
    assert_eq!(jane_msg["subject"], "Welcome, Jane!");
    assert_eq!(jane_msg["attempts"], 1);
    assert!(jane_msg["created_at"].is_string() && jane_msg["sent_at"].is_string());
    assert!(
        jane_msg.get("html").is_none(),
        "bodies only on the single message"
    );
    let bob_msg = &all["messages"][0];
    assert_eq!(bob_msg["status"], "skipped");
    assert_eq!(bob_msg["reason"], "missing variable: plan");
    assert_eq!(bob_msg["sent_at"], Value::Null);
    assert_eq!(
        bob_msg["source"],
        json!({"automation_id": "aut_2", "sequence_id": null, "step": null, "test": false})
    );

    let app_ref = &app;
    let by = |q: String| async move { ids(&list(app_ref, &q).await) };
    assert_eq!(
        by(format!("?contact_id={jane_id}")).await,
        [to_jane["id"].as_str().unwrap()]
    );
    assert_eq!(
        by("?automation_id=aut_2".into()).await,
        [to_bob["id"].as_str().unwrap()]
    );
    assert_eq!(
        by("?sequence_id=seq_1".into()).await,
        [to_jane["id"].as_str().unwrap()]
    );
    assert_eq!(
        by("?status=skipped".into()).await,
        [to_bob["id"].as_str().unwrap()]
    );
    assert_eq!(
        by(format!(
            "?status=sent&contact_id={jane_id}&automation_id=aut_1"
        ))
        .await,
        [to_jane["id"].as_str().unwrap()]
    );
    assert!(
        by(format!("?status=failed&contact_id={jane_id}"))
            .await
            .is_empty()
    );
    assert_eq!(by(format!("?template_id={template_id}")).await.len(), 2);

    // Pages.
    let first = list(&app, "?limit=1").await;
    assert_eq!(ids(&first), [to_bob["id"].as_str().unwrap()]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = list(&app, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(ids(&second), [to_jane["id"].as_str().unwrap()]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Bad filters name themselves.
    for (query, field) in [
        ("?status=delivered", "status"),
        ("?limit=0", "limit"),
        ("?cursor=nonsense", "cursor"),
        ("?template_id=nonsense", "template_id"),
    ] {
        assert_error(
            app.get(&format!("/api/v1/messages/{query}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        )
        .await;
    }

    // One message, with its bodies.
    let resp = app
        .get(&format!(
            "/api/v1/messages/{}",
            to_jane["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let detail: Value = resp.json().await.unwrap();
    assert_eq!(detail["subject"], "Welcome, Jane!");
    assert!(
        detail["html"]
            .as_str()
            .unwrap()
            .contains("Hi Jane, you are on free.")
    );
    assert!(
        detail["text"]
            .as_str()
            .unwrap()
            .contains("Hi Jane, you are on free.")
    );
    assert!(
        detail["message_id_header"]
            .as_str()
            .unwrap()
            .ends_with("@acme.test>")
    );
    let skipped: Value = app
        .get(&format!(
            "/api/v1/messages/{}",
            to_bob["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        skipped["html"],
        Value::Null,
        "nothing rendered, nothing kept"
    );

    // Another workspace sees none of it.
    let (_, other_key) = app.another_workspace().await;
    let theirs: Value = app
        .get_as("/api/v1/messages/", &other_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["messages"], json!([]));
    assert_error(
        app.get_as(
            &format!("/api/v1/messages/{}", to_jane["id"].as_str().unwrap()),
            &other_key,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    assert_error(
        app.get("/api/v1/messages/msg_nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
}

#[tokio::test]
async fn suppressions_are_added_listed_and_removed() {
    let app = spawn_app().await;
    let resp = app
        .post_json(
            "/api/v1/suppressions/",
            &json!({"email": " Jane@Example.com ", "detail": "asked by phone"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["email"], "jane@example.com");
    assert_eq!(created["reason"], "manual");
    assert_eq!(created["detail"], "asked by phone");
    assert!(created["created_at"].is_string());

    // Again: already there, the stored entry comes back.
    let resp = app
        .post_json(
            "/api/v1/suppressions",
            &json!({"email": "jane@example.com", "reason": "complaint"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let again: Value = resp.json().await.unwrap();
    assert_eq!(again, created);

    let resp = app
        .post_json(
            "/api/v1/suppressions/",
            &json!({"email": "bounced@example.com", "reason": "bounce"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    for (body, field) in [
        (json!({"email": "not an address"}), Some("email")),
        (
            json!({"email": "a@b.test", "reason": "asked"}),
            Some("reason"),
        ),
        (json!({"email": "a@b.test", "note": "x"}), Some("note")),
        (json!({}), Some("email")),
        (json!(["a@b.test"]), None),
    ] {
        assert_error(
            app.post_json("/api/v1/suppressions/", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            field,
        )
        .await;
    }

    let page: Value = app.get("/api/v1/suppressions/").await.json().await.unwrap();
    let emails: Vec<&str> = page["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 2);
    assert!(emails.contains(&"jane@example.com") && emails.contains(&"bounced@example.com"));
    let first: Value = app
        .get("/api/v1/suppressions/?limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest: Value = app
        .get(&format!("/api/v1/suppressions/?limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["suppressions"].as_array().unwrap().len(), 1);
    assert_ne!(rest["suppressions"][0], first["suppressions"][0]);

    // A suppressed address gets no test email either: the message says why.
    let template = app.create_template(welcome_template()).await;
    let resp = app
        .post_json(
            &format!(
                "/api/v1/templates/{}/test-send",
                template["id"].as_str().unwrap()
            ),
            &json!({"to": "jane@example.com", "sample": {"first_name": "J", "plan": "p"}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let message: Value = resp.json().await.unwrap();
    assert_eq!(message["status"], "suppressed");
    assert!(
        message["reason"]
            .as_str()
            .unwrap()
            .contains("suppression list"),
        "{message}"
    );

    // Other workspaces have their own list.
    let (_, other_key) = app.another_workspace().await;
    let theirs: Value = app
        .get_as("/api/v1/suppressions/", &other_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["suppressions"], json!([]));

    // Removal, case-insensitively, with the @ encoded or not.
    let resp = app.delete("/api/v1/suppressions/JANE%40example.com").await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.delete("/api/v1/suppressions/jane@example.com").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    let resp = app.delete("/api/v1/suppressions/bounced@example.com").await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let page: Value = app.get("/api/v1/suppressions/").await.json().await.unwrap();
    assert_eq!(page["suppressions"], json!([]));
    assert_eq!(page["next_cursor"], Value::Null);
}
