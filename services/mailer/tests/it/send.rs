use std::time::Duration;

use meisa_proto::{
    common::PageRequest,
    mailer::{self as pb, MessageStatus},
};
use meisa_runtime::errors::ErrorCode;
use meisa_testkit::smtp::SmtpServer;

use crate::helpers::*;

#[tokio::test]
async fn twenty_concurrent_sends_with_one_key_make_one_message_and_one_email() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template("Hi {{ first_name }}", "<p>Hi</p>"))
        .await
        .unwrap();
    let calls =
        (0..20).map(|_| app.send("job-42", contact("ct_1", "a@b.test", Some("Ann")), &t.id));
    let results = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .expect("send")
                .message
                .as_ref()
                .unwrap()
                .id
                .clone()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one message for one key");
    assert_eq!(
        results
            .iter()
            .filter(|r| r.as_ref().unwrap().created)
            .count(),
        1
    );
    let id = ids.into_iter().next().unwrap();
    app.wait_status(&id, MessageStatus::Sent, Duration::from_secs(15))
        .await;
    app.until_nothing_queued().await;
    assert_eq!(smtp.message_count(), 1, "exactly one SMTP transaction");
    assert_eq!(smtp.mail_command_count(), 1);
    let again = app
        .send("job-42", contact("ct_1", "a@b.test", Some("Ann")), &t.id)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.message.unwrap().id, id);
}

#[tokio::test]
async fn a_missing_variable_skips_the_send_and_names_the_variable() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template(
            "Hi {{ first_name | default: \"there\" }}",
            "<p>Your plan: {{ custom_fields.tier }}</p>",
        ))
        .await
        .unwrap();
    let m = app
        .send("job-1", contact("ct_1", "a@b.test", None), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(m.status, MessageStatus::Skipped as i32);
    assert_eq!(m.reason, "missing variable: custom_fields.tier");
    let listed = app
        .list_messages(pb::ListMessagesRequest {
            contact_id: "ct_1".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(listed.messages.len(), 1);
    assert_eq!(listed.messages[0].status, MessageStatus::Skipped as i32);
    assert_eq!(
        listed.messages[0].reason,
        "missing variable: custom_fields.tier"
    );
    // A skipped message is never queued.
    app.until_nothing_queued().await;
    assert_eq!(
        smtp.mail_command_count(),
        0,
        "nothing reached the SMTP server"
    );
}

#[tokio::test]
async fn unsubscribed_contacts_and_suppressed_addresses_are_suppressed() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template("Hi", "<p>Hi {{ first_name }}</p>"))
        .await
        .unwrap();
    let mut unsubscribed = contact("ct_1", "a@b.test", Some("Ann"));
    unsubscribed.subscribed = false;
    let m = app
        .send("job-1", unsubscribed, &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(m.status, MessageStatus::Suppressed as i32);
    assert_eq!(
        m.subject, "Hi",
        "the rendered subject is kept for the record"
    );

    let mut client = app.client.clone();
    let added = client
        .add_suppression(pb::AddSuppressionRequest {
            workspace_id: WS.into(),
            email: " Blocked@B.test".into(),
            reason: 0,
            detail: "asked by phone".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(added.created);
    assert_eq!(added.suppression.unwrap().email, "blocked@b.test");
    let m = app
        .send("job-2", contact("ct_2", "blocked@b.test", Some("B")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(m.status, MessageStatus::Suppressed as i32);
    assert!(
        m.reason.contains("suppression list (manual)"),
        "{}",
        m.reason
    );

    client
        .remove_suppression(pb::RemoveSuppressionRequest {
            workspace_id: WS.into(),
            email: "blocked@b.test".into(),
        })
        .await
        .unwrap();
    let m = app
        .send("job-3", contact("ct_2", "blocked@b.test", Some("B")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(m.status, MessageStatus::Queued as i32);
    smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(smtp.messages()[0].to, vec!["blocked@b.test".to_string()]);
}

#[tokio::test]
async fn messages_are_listed_by_contact_source_and_status_with_cursors() {
    let app = spawn_app(None).await;
    let t = app
        .create_template(template("Hi", "<p>Hi {{ first_name }}</p>"))
        .await
        .unwrap();
    for i in 0..5 {
        app.send(
            &format!("job-{i}"),
            contact("ct_1", "a@b.test", Some("A")),
            &t.id,
        )
        .await
        .unwrap();
    }
    app.send("job-x", contact("ct_2", "c@d.test", None), &t.id)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .list_messages(pb::ListMessagesRequest {
                contact_id: "ct_1".into(),
                page: Some(PageRequest {
                    limit: 2,
                    cursor: cursor.clone(),
                }),
                ..Default::default()
            })
            .await;
        seen.extend(page.messages.iter().map(|m| m.id.clone()));
        assert!(
            page.messages
                .iter()
                .all(|m| m.contact_id == "ct_1"
                    && m.source.as_ref().unwrap().automation_id == "aut_1")
        );
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");

    let skipped = app
        .list_messages(pb::ListMessagesRequest {
            status: MessageStatus::Skipped as i32,
            ..Default::default()
        })
        .await;
    assert_eq!(skipped.messages.len(), 1);
    assert_eq!(skipped.messages[0].contact_id, "ct_2");
    let by_sequence = app
        .list_messages(pb::ListMessagesRequest {
            sequence_id: "seq_1".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(by_sequence.messages.len(), 6);
    let none = app
        .list_messages(pb::ListMessagesRequest {
            automation_id: "aut_other".into(),
            ..Default::default()
        })
        .await;
    assert!(none.messages.is_empty());
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = spawn_app(None).await;
    let t = app
        .create_template(template("Hi", "<p>Hi</p>"))
        .await
        .unwrap();
    let err = app
        .send("", contact("ct_1", "a@b.test", None), &t.id)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::InvalidField, Some("idempotency_key"))
    );
    let err = app
        .send("k", contact("ct_1", "not-an-email", None), &t.id)
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("contact.email"));
    let err = app
        .send("k", contact("ct_1", "a@b.test", None), "tpl_nope")
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("template_id"));
    let err = app
        .send(
            "k",
            contact("ct_1", "a@b.test", None),
            "tpl_0190a0a0a0a07a0a8a0a0a0a0a0a0a0a",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}
