//! What a platform team relies on: clear start-up errors, health, metrics.

use std::process::Stdio;

use meisa_proto::contacts::{UpsertRequest, contacts_service_client::ContactsServiceClient};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::*;

#[test]
fn a_missing_variable_is_named_and_the_process_exits_non_zero() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("REDIS_URL", "redis://127.0.0.1:6379")
        .output()
        .expect("run contacts");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"))
        .arg("serve")
        .env("DATABASE_URL", "postgres://nowhere")
        .env("REDIS_URL", "redis://127.0.0.1:6379")
        .env("MEISA_STREAM_SHARDS", "many")
        .output()
        .expect("run contacts");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MEISA_STREAM_SHARDS=\"many\" is not valid")
    );
}

#[tokio::test]
async fn the_process_reports_health_and_serves_metrics() {
    let app = spawn_app_with(|c| c.relay_enabled = false).await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"));
    cmd.arg("serve")
        .env("DATABASE_URL", &app.db.url)
        .env("REDIS_URL", meisa_testkit::redis_url())
        .env("MEISA_GRPC_ADDR", "127.0.0.1:0")
        .env("MEISA_METRICS_ADDR", "127.0.0.1:0")
        .env("MEISA_STREAM_PREFIX", &app.prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let service = meisa_testkit::Service::spawn(cmd).await;
    let url = service.url("grpc");
    let mut client = ContactsServiceClient::connect(url.clone())
        .await
        .expect("contacts started");
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "meisa.contacts.v1.ContactsService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    client
        .upsert(UpsertRequest {
            workspace_id: WS.into(),
            contact: Some(contact("m@example.com", "m")),
            causation: None,
            return_contact: false,
        })
        .await
        .unwrap();
    let body = reqwest::get(format!("{}/metrics", service.url("metrics")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    drop(service);
    assert!(
        body.contains(r#"meisa_contacts_upserts_total{service="contacts",outcome="created"} 1"#),
        "{body}"
    );
    assert!(body.contains("meisa_contacts_commit_seconds"), "{body}");
}
