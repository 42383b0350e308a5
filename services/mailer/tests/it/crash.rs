//! SIGKILL the mailer binary while deliveries are claimed and in flight; a restarted mailer must
//! deliver every queued message, none twice.

use std::{collections::HashMap, process::Stdio, time::Duration};

use meisa_proto::mailer::{MessageStatus, mailer_service_client::MailerServiceClient};
use meisa_testkit::{
    Service, TestDb, eventually,
    smtp::{SmtpServer, Stage},
};

use crate::helpers::*;

const N: usize = 20;

/// The mailer binary on a port it picks, once it listens. `prefix` names its change streams:
/// serve reads them, and this test publishes none.
async fn start_mailer(db_url: &str, prefix: &str, smtp: &SmtpServer, workers: usize) -> Service {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mailer"));
    cmd.arg("serve")
        .env("DATABASE_URL", db_url)
        .env("MEISA_GRPC_ADDR", "127.0.0.1:0")
        .env("MEISA_SMTP_URL", smtp.url())
        .env("MEISA_CONTACTS_URL", "http://127.0.0.1:1")
        .env("REDIS_URL", meisa_testkit::redis_url())
        .env("MEISA_STREAM_PREFIX", prefix)
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
        .stderr(Stdio::inherit());
    Service::spawn(cmd).await
}

async fn connect(mailer: &Service) -> MailerServiceClient<tonic::transport::Channel> {
    MailerServiceClient::connect(mailer.url("grpc"))
        .await
        .expect("connect to the mailer it announced")
}

#[tokio::test]
async fn a_killed_mailer_loses_no_queued_message_and_sends_none_twice() {
    let db = TestDb::create("mailer").await;
    meisa_mailer::migrate(&db.url).await.expect("migrate");
    let smtp = SmtpServer::start().await;
    // A slow server: each transaction waits in MAIL FROM, so claims are held while we kill.
    smtp.set_delay(Stage::Mail, Duration::from_millis(600));

    let prefix = meisa_testkit::unique_name("mc");
    // One worker: when the server holds a MAIL FROM, that worker is inside that transaction and
    // no other delivery can be between its 250 and its database update.
    let mut mailer = start_mailer(&db.url, &prefix, &smtp, 1).await;
    let mut client = connect(&mailer).await;
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
    eventually(Duration::from_secs(20), "deliveries to start", || async {
        let accepted = smtp.message_count();
        (accepted >= 2 && smtp.mail_command_count() == accepted + 1).then_some(())
    })
    .await;
    mailer.kill();
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
    let mailer = start_mailer(&db.url, &prefix, &smtp, 2).await;
    let mails = smtp.wait_for(N, Duration::from_secs(30)).await;
    // Nothing queued is left, so nothing more can arrive: count.
    until_nothing_queued(&db.url).await;
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

    let mut client = connect(&mailer).await;
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
    drop(mailer);
    meisa_testkit::clean_redis(&prefix).await;
}
