//! Contact created → welcome email accepted by an SMTP server (DESIGN §9), at 200 upserts/s.
//!
//! Every service runs as its release binary (`contacts`, `mailer`, `automations`, on their own
//! fresh databases, default settings except ports, stream prefix and the SMTP URL); the SMTP
//! server is meisa_testkit's, in this process. An automation `contact_created → enroll` puts each
//! new contact in a one-step sequence (the welcome email, no waits); upserts go to the contacts
//! service over gRPC at a fixed rate (open loop: a slow system does not slow the load down). The
//! latency of a contact is from just before its Upsert call to the moment this process sees its
//! email accepted by the SMTP server (polled every millisecond).
//!
//! `cargo bench -p meisa-automations --bench latency`. MEISA_BENCH_RATE (default 200 upserts/s),
//! MEISA_BENCH_SECONDS (default 10) and MEISA_BENCH_PATH (`sequence`, default, or `action`: a
//! send_email action instead of the sequence) change it. The services inherit this process's
//! environment, so their own settings can be changed the same way (e.g. MEISA_MAIL_WORKERS=8).
//! Needs Postgres and Redis like the tests (MEISA_TEST_PG, MEISA_TEST_REDIS).

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use meisa_proto::{
    automations::{self as pb, automations_service_client::AutomationsServiceClient},
    contacts::{self as cpb, contacts_service_client::ContactsServiceClient},
    mailer::{self as mpb, mailer_service_client::MailerServiceClient},
};
use meisa_testkit::{Service, TestDb, eventually, redis_url, smtp::SmtpServer, unique_name};
use serde_json::json;
use tokio::process::Command;
use tonic::transport::{Channel, Endpoint};

const WS: &str = "ws_bench";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bins() -> (PathBuf, PathBuf, PathBuf) {
    let automations = PathBuf::from(env!("CARGO_BIN_EXE_automations"));
    let dir = automations
        .parent()
        .expect("binary directory")
        .to_path_buf();
    let mut build = std::process::Command::new(env!("CARGO"));
    build.args([
        "build",
        "-q",
        "-p",
        "meisa-contacts",
        "--bin",
        "contacts",
        "-p",
        "meisa-mailer",
        "--bin",
        "mailer",
    ]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    assert!(
        build.status().expect("cargo build").success(),
        "building contacts and mailer failed"
    );
    (dir.join("contacts"), dir.join("mailer"), automations)
}

async fn run_to_end(cmd: &mut Command) {
    let out = cmd.output().await.expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a service on port 0 and waits until it announced the port it got.
async fn spawn(mut cmd: std::process::Command) -> Service {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "warn")
        .env("MEISA_GRPC_ADDR", "127.0.0.1:0");
    Service::spawn(cmd).await
}

fn channel(service: &Service) -> Channel {
    Endpoint::from_shared(service.url("grpc"))
        .expect("endpoint")
        .tcp_nodelay(true)
        .connect_lazy()
}

#[tokio::main]
async fn main() {
    let rate: u64 = env_or("MEISA_BENCH_RATE", 200);
    let seconds: u64 = env_or("MEISA_BENCH_SECONDS", 10);
    let path: String = env_or("MEISA_BENCH_PATH", "sequence".to_string());
    let n = usize::try_from(rate * seconds).expect("count");

    let (contacts_bin, mailer_bin, automations_bin) =
        tokio::task::spawn_blocking(bins).await.expect("build");
    let smtp = SmtpServer::start().await;
    let prefix = unique_name("bench");
    let contacts_db = TestDb::create("contacts_bench").await;
    let mailer_db = TestDb::create("mailer_bench").await;
    let automations_db = TestDb::create("automations_bench").await;

    run_to_end(
        Command::new(&contacts_bin)
            .arg("migrate")
            .env("DATABASE_URL", &contacts_db.url),
    )
    .await;
    let mut serve = std::process::Command::new(&contacts_bin);
    serve
        .arg("serve")
        .env("DATABASE_URL", &contacts_db.url)
        .env("REDIS_URL", redis_url())
        .env("MEISA_STREAM_PREFIX", &prefix);
    let contacts_proc = spawn(serve).await;
    run_to_end(
        Command::new(&mailer_bin)
            .arg("migrate")
            .env("DATABASE_URL", &mailer_db.url),
    )
    .await;
    let mut serve = std::process::Command::new(&mailer_bin);
    serve
        .arg("serve")
        .env("DATABASE_URL", &mailer_db.url)
        .env("MEISA_CONTACTS_URL", contacts_proc.url("grpc"))
        .env("REDIS_URL", redis_url())
        .env("MEISA_STREAM_PREFIX", &prefix)
        .env("MEISA_SMTP_URL", smtp.url())
        .env(
            "MEISA_UNSUBSCRIBE_SECRET",
            "bench-unsubscribe-secret-0123456789",
        );
    let mailer_proc = spawn(serve).await;
    run_to_end(
        Command::new(&automations_bin)
            .arg("migrate")
            .env("DATABASE_URL", &automations_db.url),
    )
    .await;
    let mut serve = std::process::Command::new(&automations_bin);
    serve
        .arg("serve")
        .env("DATABASE_URL", &automations_db.url)
        .env("REDIS_URL", redis_url())
        .env("MEISA_CONTACTS_URL", contacts_proc.url("grpc"))
        .env("MEISA_MAILER_URL", mailer_proc.url("grpc"))
        .env("MEISA_STREAM_PREFIX", &prefix);
    let automations_proc = spawn(serve).await;

    let contacts = ContactsServiceClient::new(channel(&contacts_proc));
    let mut mailer = MailerServiceClient::new(channel(&mailer_proc));
    let mut automations = AutomationsServiceClient::new(channel(&automations_proc));

    let template = mailer
        .create_template(mpb::CreateTemplateRequest {
            workspace_id: WS.into(),
            template: Some(mpb::TemplateInput {
                name: "Welcome".into(),
                subject: "Welcome, {{ first_name | default: \"there\" }}!".into(),
                html: "<p>Hi {{ first_name }}, you are on {{ plan }}.</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>".into(),
                text: None,
                from: "Acme <hello@acme.test>".into(),
                reply_to: None,
            }),
        })
        .await
        .expect("template")
        .into_inner()
        .template
        .expect("template")
        .id;
    let action = if path == "action" {
        json!({"type": "send_email", "template_id": template})
    } else {
        let sequence = automations
            .create_sequence(pb::CreateSequenceRequest {
                workspace_id: WS.into(),
                definition: json!({"name": "Welcome",
                    "steps": [{"type": "email", "template_id": template}]})
                .to_string(),
            })
            .await
            .expect("sequence")
            .into_inner()
            .sequence
            .expect("sequence")
            .id;
        json!({"type": "enroll", "sequence_id": sequence})
    };
    automations
        .create_automation(pb::CreateAutomationRequest {
            workspace_id: WS.into(),
            definition: json!({"name": "Welcome", "enabled": true,
                "trigger": {"type": "contact_created"}, "actions": [action]})
            .to_string(),
        })
        .await
        .expect("automation");
    // The clock starts once the consumer reads every shard: a reader creates its group on the
    // shard's stream when it takes the shard.
    let shards: u32 = env_or("MEISA_STREAM_SHARDS", 16);
    let redis = redis::Client::open(redis_url()).expect("redis url");
    eventually(
        Duration::from_secs(60),
        "the consumer to read every shard",
        || async {
            let mut conn = redis.get_multiplexed_async_connection().await.ok()?;
            for shard in 0..shards {
                let group = meisa_stream::Group::new(&prefix, shard, "automations", "bench");
                group.state(&mut conn).await.ok()??;
            }
            Some(())
        },
    )
    .await;

    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watcher = {
        let started = started.clone();
        tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
            let mut seen = 0;
            let deadline = Instant::now() + Duration::from_secs(seconds + 120);
            while seen < n && Instant::now() < deadline {
                let new = smtp.messages_since(seen);
                let now = Instant::now();
                for m in &new {
                    let to = m.to.join(",");
                    if let Some(t0) = started.lock().expect("lock").get(&to) {
                        let us =
                            u64::try_from(now.duration_since(*t0).as_micros()).unwrap_or(u64::MAX);
                        hist.saturating_record(us.max(1));
                    }
                }
                seen += new.len();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (hist, seen)
        })
    };

    let interval = Duration::from_micros(1_000_000 / rate.max(1));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let load_started = Instant::now();
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let mut client = contacts.clone();
        let started = started.clone();
        calls.push(tokio::spawn(async move {
            let email = format!("user{i}@bench.test");
            let t0 = Instant::now();
            started.lock().expect("lock").insert(email.clone(), t0);
            let r = client
                .upsert(cpb::UpsertRequest {
                    workspace_id: WS.into(),
                    contact: Some(cpb::ContactInput {
                        email: email.clone(),
                        external_id: format!("usr_{i}"),
                        first_name: Some(cpb::StringPatch {
                            value: Some(format!("User {i}")),
                        }),
                        custom_fields: [(
                            "plan".to_string(),
                            meisa_proto::common::Value {
                                kind: Some(meisa_proto::common::value::Kind::StringValue(
                                    "free".into(),
                                )),
                            },
                        )]
                        .into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .map(|_| ());
            (r, t0.elapsed())
        }));
    }
    let offered = load_started.elapsed();
    let mut failed = 0;
    let mut upserts = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
    for c in calls {
        match c.await {
            Ok((Ok(()), took)) => {
                upserts
                    .saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            _ => failed += 1,
        }
    }
    let (hist, seen) = watcher.await.expect("watcher");
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    eprintln!(
        "upsert calls: p50 {:.1} ms, p99 {:.1} ms",
        upserts.value_at_quantile(0.5) as f64 / 1000.0,
        upserts.value_at_quantile(0.99) as f64 / 1000.0
    );
    eprintln!(
        "{n} upserts offered in {:.1}s ({failed} failed), {seen} welcome emails accepted; path: {path}; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        offered.as_secs_f64(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        hist.max() as f64 / 1000.0
    );
    println!(
        "| created → welcome email accepted, {rate} upserts/s | p50 {:.0} ms, p99 {:.0} ms | p50 ≤ 100 ms, p99 ≤ 500 ms |",
        ms(0.5),
        ms(0.99)
    );
    let _ = meisa_testkit::clean_redis(&prefix).await;
}
