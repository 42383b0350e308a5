//! render + enqueue + deliver throughput: N SendEmail calls over gRPC (64 in flight), each
//! rendering a Liquid template and queueing the message, while the delivery workers send them to
//! a local SMTP sink (meisa_testkit's server on loopback). The clock stops when the sink has
//! accepted all N.
//!
//! `cargo bench -p meisa-mailer --bench throughput` (MEISA_BENCH_EMAILS changes N, default 5000).
//! Needs Postgres like the tests (MEISA_TEST_PG).

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use meisa_mailer::{Application, Config, transport::SmtpUrl};
use meisa_proto::{
    common::{Contact, Value, value::Kind},
    mailer::{self as pb, mailer_service_client::MailerServiceClient},
};
use meisa_testkit::{TestDb, smtp::SmtpServer};
use tokio_util::sync::CancellationToken;

const WS: &str = "ws_bench";

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("MEISA_BENCH_EMAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let smtp = SmtpServer::start().await;
    let db = TestDb::create("mailer_bench").await;
    meisa_mailer::migrate(&db.url).await.expect("migrate");
    let mut config = Config::local(&db.url);
    config.smtp = Some(SmtpUrl::parse(&smtp.url()).expect("smtp url"));
    config.delivery.workers = std::env::var("MEISA_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    config.delivery.batch_size = 50;
    config.db_max_connections = 16;
    let app = Application::build(config).await.expect("build");
    let addr = app.grpc_addr();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(app.run(shutdown.clone()));

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let client = MailerServiceClient::new(channel);
    let template = client
        .clone()
        .create_template(pb::CreateTemplateRequest {
            workspace_id: WS.into(),
            template: Some(pb::TemplateInput {
                name: "Welcome".into(),
                subject: "Welcome, {{ first_name | default: \"there\" }}!".into(),
                html: "<html><body><h1>Hi {{ first_name }}</h1><p>You are on the {{ plan }} plan \
                       ({{ custom_fields.posts_generated }} posts so far).</p>\
                       {% for t in tags %}<span>{{ t | upcase }}</span>{% endfor %}\
                       <p><a href=\"https://acme.test/start\">Get started</a></p>\
                       <p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></body></html>"
                    .into(),
                text: None,
                from: "Acme <hello@acme.test>".into(),
                reply_to: None,
            }),
        })
        .await
        .expect("create template")
        .into_inner()
        .template
        .expect("template");

    let started = Instant::now();
    let sends = futures::stream::iter(0..n)
        .map(|i| {
            let mut c = client.clone();
            let template_id = template.id.clone();
            async move {
                c.send_email(pb::SendEmailRequest {
                    workspace_id: WS.into(),
                    idempotency_key: format!("bench-{i}"),
                    contact: Some(contact(i)),
                    template_id,
                    source: Some(pb::MessageSource {
                        automation_id: "aut_bench".into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|r| r.into_inner())
            }
        })
        .buffer_unordered(64);
    let queued = sends
        .fold(0usize, |acc, r| async move {
            match r {
                Ok(r)
                    if r.message
                        .as_ref()
                        .is_some_and(|m| m.status == pb::MessageStatus::Queued as i32) =>
                {
                    acc + 1
                }
                Ok(r) => panic!("unexpected: {r:?}"),
                Err(e) => panic!("send failed: {e}"),
            }
        })
        .await;
    assert_eq!(queued, n);
    let enqueued_in = started.elapsed();
    smtp.wait_for(n, Duration::from_secs(600)).await;
    let total = started.elapsed();
    eprintln!(
        "(render+enqueue alone: {n} in {:.2} s = {:.0}/s; SMTP connections: {})",
        enqueued_in.as_secs_f64(),
        n as f64 / enqueued_in.as_secs_f64(),
        smtp.connection_count()
    );
    println!(
        "mailer render+enqueue+deliver: {n} emails in {:.2} s = {:.0} emails/s",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    shutdown.cancel();
    let _ = run.await;
}

fn contact(i: usize) -> Contact {
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.into())),
    };
    Contact {
        id: format!("ct_{i}"),
        workspace_id: WS.into(),
        email: format!("user{i}@example.com"),
        external_id: format!("usr_{i}"),
        first_name: Some(format!("User {i}")),
        last_name: None,
        subscribed: true,
        tags: vec!["beta".into(), "pro".into()],
        custom_fields: [
            ("plan".to_string(), s("pro")),
            (
                "posts_generated".to_string(),
                Value {
                    kind: Some(Kind::IntValue(i as i64)),
                },
            ),
        ]
        .into(),
        version: 1,
        created_at: None,
        updated_at: None,
    }
}
