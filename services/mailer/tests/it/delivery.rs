use std::time::Duration;

use meisa_proto::mailer::{self as pb, MessageStatus};
use meisa_testkit::{
    eventually,
    smtp::{SmtpServer, Stage},
};

use crate::helpers::*;

const T: Duration = Duration::from_secs(15);

#[tokio::test]
async fn delivered_email_has_headers_both_parts_escaping_defaults_and_custom_fields() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template(
            "Welcome, {{ nickname | default: \"there\" }} {{ first_name }}!",
            "<p>Hi {{ first_name }}, you are on {{ plan }} / {{ custom_fields.plan }}; nps {{ custom_fields.nps | default: \"n/a\" }}.</p>\
             <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
        ))
        .await
        .unwrap();
    let sent = app
        .send(
            "job-1",
            contact(
                "ct_1",
                "Jane@Example.com",
                Some("<script>alert(1)</script>"),
            ),
            &t.id,
        )
        .await
        .unwrap();
    assert!(sent.created);
    let m = sent.message.unwrap();
    assert!(m.id.starts_with("msg_"));
    assert_eq!(m.status, MessageStatus::Queued as i32);
    assert_eq!(m.subject, "Welcome, there <script>alert(1)</script>!");

    let mails = smtp.wait_for(1, T).await;
    let mail = &mails[0];
    assert_eq!(mail.from, "hello@acme.test");
    assert_eq!(mail.to, vec!["jane@example.com".to_string()]);
    assert_eq!(
        mail.header("From").as_deref(),
        Some("Acme <hello@acme.test>")
    );
    assert_eq!(mail.header("To").as_deref(), Some("jane@example.com"));
    let subject = mail.header("Subject").unwrap();
    assert!(subject.contains("Welcome, there"), "{subject}");
    assert_eq!(
        mail.header("Message-ID").unwrap(),
        format!("<{}@acme.test>", m.id)
    );
    let lu = mail.header("List-Unsubscribe").unwrap();
    let token = token_from_header(&lu);
    assert_eq!(token.len(), 44);
    assert_eq!(
        lu,
        format!("<http://127.0.0.1:8080/u/{token}>, <mailto:unsubscribe+{token}@acme.test>")
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let raw = mail.data_str();
    assert!(raw.contains("multipart/alternative"), "{raw}");

    let html = mime_part(&raw, "text/html").expect("an html part");
    assert!(
        html.contains("Hi &lt;script&gt;alert(1)&lt;/script&gt;, you are on pro / pro; nps n/a."),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains(&format!("href=\"http://127.0.0.1:8080/u/{token}\"")),
        "{html}"
    );
    let text = mime_part(&raw, "text/plain").expect("a text part");
    assert!(
        text.contains("Hi <script>alert(1)</script>, you are on pro / pro; nps n/a."),
        "{text}"
    );
    assert!(
        text.contains(&format!("Unsubscribe (http://127.0.0.1:8080/u/{token})")),
        "{text}"
    );

    let m = app.wait_status(&m.id, MessageStatus::Sent, T).await;
    assert_eq!(m.attempts, 1);
    assert!(m.sent_at.is_some());
}

#[tokio::test]
async fn a_4xx_is_retried_with_backoff_and_delivered_once() {
    let smtp = SmtpServer::start().await;
    smtp.script(Stage::DataEnd, "451 4.3.0 try again later", 2);
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template("Hi", "<p>Hi</p>"))
        .await
        .unwrap();
    let m = app
        .send("job-1", contact("ct_1", "a@b.test", Some("A")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    let m = app.wait_status(&m.id, MessageStatus::Sent, T).await;
    assert_eq!(m.attempts, 3);
    assert_eq!(smtp.data_end_replies(), vec!["451", "451", "250"]);
    assert_eq!(smtp.message_count(), 1);
    // Nothing left that could send a stray duplicate: count again.
    app.until_nothing_queued().await;
    assert_eq!(smtp.message_count(), 1);
}

#[tokio::test]
async fn a_5xx_on_the_recipient_fails_suppresses_the_address_and_is_not_retried() {
    let smtp = SmtpServer::start().await;
    smtp.reject_rcpt("gone@b.test", "550 5.1.1 no such user");
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template("Hi", "<p>Hi</p>"))
        .await
        .unwrap();
    let m = app
        .send("job-1", contact("ct_1", "gone@b.test", Some("A")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    let m = app.wait_status(&m.id, MessageStatus::Failed, T).await;
    assert_eq!(m.attempts, 1);
    assert!(m.reason.contains("550"), "{}", m.reason);
    let s = app.suppressions().await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].email, "gone@b.test");
    assert_eq!(s[0].reason, pb::SuppressionReason::Bounce as i32);
    // A retry would need the queue row, which the permanent failure took away.
    app.until_nothing_queued().await;
    assert_eq!(
        smtp.mail_command_count(),
        1,
        "no retry after a permanent failure"
    );
    assert_eq!(smtp.message_count(), 0);

    // The next send to the address is suppressed without touching SMTP.
    let next = app
        .send("job-2", contact("ct_1", "gone@b.test", Some("A")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(next.status, MessageStatus::Suppressed as i32);
    assert!(next.reason.contains("suppression list"), "{}", next.reason);
}

#[tokio::test]
async fn a_5xx_after_data_fails_without_suppressing() {
    let smtp = SmtpServer::start().await;
    smtp.script(Stage::DataEnd, "554 5.7.1 message rejected as spam", 1);
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template("Hi", "<p>Hi</p>"))
        .await
        .unwrap();
    let m = app
        .send("job-1", contact("ct_1", "a@b.test", Some("A")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    let m = app.wait_status(&m.id, MessageStatus::Failed, T).await;
    assert!(m.last_error.contains("554"), "{}", m.last_error);
    assert!(app.suppressions().await.is_empty());
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let smtp = SmtpServer::start().await;
    smtp.script(Stage::Mail, "421 4.3.2 service not available", 1000);
    let app = spawn_app_with(Some(&smtp), |c| {
        c.delivery.retry_deadline = Duration::from_millis(400);
        c.delivery.retry_base = Duration::from_millis(50);
        c.delivery.retry_max = Duration::from_millis(100);
    })
    .await;
    let t = app
        .create_template(template("Hi", "<p>Hi</p>"))
        .await
        .unwrap();
    let m = app
        .send("job-1", contact("ct_1", "a@b.test", Some("A")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    let m = app.wait_status(&m.id, MessageStatus::Failed, T).await;
    assert!(m.attempts >= 2, "{m:?}");
    assert!(m.reason.starts_with("gave up after"), "{}", m.reason);
    assert_eq!(smtp.message_count(), 0);
}

#[tokio::test]
async fn without_an_smtp_url_messages_are_written_as_eml_files() {
    let app = spawn_app(None).await;
    let t = app
        .create_template(template(
            "Hi {{ first_name }}",
            "<p>Hi {{ first_name }}</p>",
        ))
        .await
        .unwrap();
    let m = app
        .send("job-1", contact("ct_1", "a@b.test", Some("Ann")), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    app.wait_status(&m.id, MessageStatus::Sent, T).await;
    let path = app.config.data_dir.join(format!("{}.eml", m.id));
    let raw = std::fs::read_to_string(&path).expect("the .eml file");
    assert!(raw.contains("Subject: Hi Ann"), "{raw}");
    assert!(
        raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{raw}"
    );
    assert!(
        raw.contains(&format!("Message-ID: <{}@acme.test>", m.id)),
        "{raw}"
    );
    let _ = std::fs::remove_dir_all(&app.config.data_dir);
}

#[tokio::test]
async fn shutdown_finishes_the_delivery_in_hand_and_releases_the_other_claims() {
    let smtp = SmtpServer::start().await;
    smtp.set_delay(Stage::Mail, Duration::from_millis(300));
    let mut app = spawn_app_with(Some(&smtp), |c| {
        c.delivery.workers = 1;
        c.delivery.batch_size = 10;
    })
    .await;
    let t = app
        .create_template(template("Hi", "<p>Hi</p>"))
        .await
        .unwrap();
    for i in 0..5 {
        app.send(
            &format!("job-{i}"),
            contact(&format!("ct_{i}"), &format!("u{i}@b.test"), Some("A")),
            &t.id,
        )
        .await
        .unwrap();
    }
    // Stop while the worker is inside a transaction with more claimed behind it.
    eventually(T, "a MAIL FROM", || async {
        (smtp.mail_command_count() > 0).then_some(())
    })
    .await;
    app.stop().await;
    let delivered = smtp.message_count();
    assert!(delivered >= 1, "the delivery in hand was finished");
    assert!(delivered < 5);
    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let (queued, held): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE claimed_until IS NOT NULL) FROM delivery_queue",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(queued as usize, 5 - delivered);
    assert_eq!(held, 0, "unsent claims were released");
    pool.close().await;
}
