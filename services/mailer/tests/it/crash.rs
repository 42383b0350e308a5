//! SIGKILL the mailer binary while deliveries are claimed and in flight; a restarted mailer must
//! deliver every queued message, none twice.

use std::{collections::HashMap, process::Stdio, time::Duration};

use meisa_proto::mailer::{MessageStatus, mailer_service_client::MailerServiceClient};
use meisa_testkit::{
    TestDb, free_port,
    smtp::{SmtpServer, Stage},
};
use tokio::process::{Child, Command};

use crate::helpers::*;

const N: usize = 20;

fn start_mailer(db_url: &str, port: u16, smtp: &SmtpServer, workers: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mailer"))
        .arg("serve")
        .env("DATABASE_URL", db_url)
        .env("MEISA_GRPC_ADDR", format!("127.0.0.1:{port}"))
        .env("MEISA_SMTP_URL", smtp.url())
        .env("MEISA_CONTACTS_URL", "http://127.0.0.1:1")
        // serve reads the change stream; this test's prefix has none.
        .env("REDIS_URL", meisa_testkit::redis_url())
        .env("MEISA_STREAM_PREFIX", meisa_testkit::unique_name("mc"))
        .env("MEISA_UNSUBSCRIBE_SECRET", "crash-test-secret-0123456789")
        .env("MEISA_MAIL_WORKERS", workers.to_string())
        .env("MEISA_MAIL_BATCH", "5")
        // A short lease so that the killed process's claims come back quickly; it must still
        // exceed the SMTP timeout.
        .env("MEISA_MAIL_LEASE", "4s")
        .env("MEISA_SMTP_TIMEOUT", "2s")
        .env("MEISA_MAIL_POLL", "100ms")
        .env("MEISA_MAIL_RETRY_BASE", "100ms")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the mailer binary")
}

async fn connect(port: u16) -> MailerServiceClient<tonic::transport::Channel> {
    for _ in 0..200 {
        if let Ok(c) = MailerServiceClient::connect(format!("http://127.0.0.1:{port}")).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the mailer binary did not start listening on {port}");
}

#[tokio::test]
async fn a_killed_mailer_loses_no_queued_message_and_sends_none_twice() {
    let db = TestDb::create("mailer").await;
    meisa_mailer::migrate(&db.url).await.expect("migrate");
    let smtp = SmtpServer::start().await;
    // A slow server: each transaction waits in MAIL FROM, so claims are held while we kill.
    smtp.set_delay(Stage::Mail, Duration::from_millis(600));

    let port = free_port();
    // One worker: when the server holds a MAIL FROM, that worker is inside that transaction and
    // no other delivery can be between its 250 and its database update.
    let mut child = start_mailer(&db.url, port, &smtp, 1);
    let mut client = connect(port).await;
    let t = client
        .create_template(meisa_proto::mailer::CreateTemplateRequest {
            workspace_id: WS.into(),
            template: Some(template(
                "Hi {{ first_name }}",
                "<p>Hi {{ first_name }}</p>",
            )),
        })
        .await
        .expect("create template")
        .into_inner()
        .template
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..N {
        let r = client
            .send_email(meisa_proto::mailer::SendEmailRequest {
                workspace_id: WS.into(),
                idempotency_key: format!("job-{i}"),
                contact: Some(contact(
                    &format!("ct_{i}"),
                    &format!("user{i}@b.test"),
                    Some("Ann"),
                )),
                template_id: t.id.clone(),
                source: None,
            })
            .await
            .expect("send")
            .into_inner();
        ids.push(r.message.unwrap().id);
    }

    // Wait until a couple went out and the worker is inside the next (slow) transaction.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let accepted = smtp.message_count();
        if accepted >= 2 && smtp.mail_command_count() == accepted + 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    let before_restart = smtp.message_count();
    assert!(
        before_restart < N,
        "the kill came too late to test anything"
    );
    // The dead process still holds claims: they only come back when their lease runs out.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("pool");
    let (held,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM delivery_queue WHERE claimed_until > now()")
            .fetch_one(&pool)
            .await
            .expect("count claims");
    assert!(held >= 1, "the kill should leave claimed deliveries behind");
    pool.close().await;

    smtp.set_delay(Stage::Mail, Duration::ZERO);
    let mut child = start_mailer(&db.url, port, &smtp, 2);
    let _client = connect(port).await;
    let mails = smtp.wait_for(N, Duration::from_secs(30)).await;
    // Let a would-be duplicate arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails_after = smtp.messages();
    assert_eq!(
        mails_after.len(),
        N,
        "every message once: {} received",
        mails_after.len()
    );
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *per_id
            .entry(m.header("Message-ID").expect("Message-ID"))
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), N);
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");

    let mut client = connect(port).await;
    for id in &ids {
        let m = client
            .get_message(meisa_proto::mailer::GetMessageRequest {
                workspace_id: WS.into(),
                id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .message
            .unwrap();
        assert_eq!(m.status, MessageStatus::Sent as i32, "{m:?}");
    }
    child.start_kill().ok();
    let _ = child.wait().await;
}
