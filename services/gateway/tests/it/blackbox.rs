//! The real binaries as an operator runs them: `contacts migrate/serve`, `gateway admin
//! create-workspace` on a fresh database, `gateway serve`, configured by environment only, and a
//! product backend's first upsert over plain HTTP. Both servers bind port 0 and announce the
//! port they got (`MEISA_ADDR_FILE`), so no port is chosen before the process binds it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::Duration,
};

use meisa_testkit::{Service, TestDb, eventually, redis_url, unique_name};
use serde_json::{Value, json};

fn gateway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gateway"))
}

/// The `contacts` binary, built once per test run next to `gateway` (same target dir and
/// profile); cargo only builds binaries of the package under test by itself.
fn contacts_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let gateway = gateway_bin();
        let dir = gateway
            .parent()
            .expect("gateway binary has a directory")
            .to_path_buf();
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "meisa-contacts", "--bin", "contacts"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build for contacts");
        assert!(status.success(), "cargo build -p meisa-contacts failed");
        let bin = dir.join(format!("contacts{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Starts a server and waits until it announced where it listens; killed when dropped.
async fn serve(mut cmd: Command) -> Service {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Service::spawn(cmd).await
}

#[tokio::test]
async fn the_binaries_serve_the_first_upsert() {
    let contacts_bin = tokio::task::spawn_blocking(contacts_bin).await.unwrap();
    let gateway_db = TestDb::create("gateway_bb").await;
    let contacts_db = TestDb::create("contacts_bb").await;
    let prefix = unique_name("bb");

    // RUST_LOG stays at its default: meisa_runtime::telemetry applies the log filter to the
    // OpenTelemetry layer too, so `warn` would disable the spans that carry the trace.
    let contacts_env = |cmd: &mut Command| {
        cmd.env("DATABASE_URL", &contacts_db.url)
            .env("REDIS_URL", redis_url())
            .env("MEISA_GRPC_ADDR", "127.0.0.1:0")
            .env("MEISA_STREAM_PREFIX", &prefix);
    };
    let mut migrate = Command::new(contacts_bin);
    migrate.arg("migrate");
    contacts_env(&mut migrate);
    run(&mut migrate);
    let mut contacts_serve = Command::new(contacts_bin);
    contacts_serve.arg("serve");
    contacts_env(&mut contacts_serve);
    let contacts = serve(contacts_serve).await;

    // On a database nobody has migrated: the admin command migrates first.
    let out = run(Command::new(gateway_bin())
        .args(["admin", "create-workspace", "--name", "Acme"])
        .env("DATABASE_URL", &gateway_db.url));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "exactly one line: {stdout:?}");
    let created: Value = serde_json::from_str(stdout.trim()).unwrap();
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["workspace_id", "api_key"]);
    assert!(created["workspace_id"].as_str().unwrap().starts_with("ws_"));
    let api_key = created["api_key"].as_str().unwrap().to_string();
    assert!(api_key.starts_with("meisa_sk_") && api_key.len() >= 9 + 32);
    // Migrating again is a no-op.
    run(Command::new(gateway_bin())
        .arg("migrate")
        .env("DATABASE_URL", &gateway_db.url)
        .env("RUST_LOG", "warn"));

    let mut gateway_serve = Command::new(gateway_bin());
    gateway_serve
        .arg("serve")
        .env("DATABASE_URL", &gateway_db.url)
        .env("MEISA_CONTACTS_URL", contacts.url("grpc"))
        .env("MEISA_HTTP_PORT", "0");
    let gateway = serve(gateway_serve).await;
    let base = gateway.url("http");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;

    let payload = r#"{"email": "jane@example.com", "external_id": "usr_12345", "first_name": "Jane",
       "custom_fields": {"plan": "free"}}"#;
    let send = || {
        http.post(format!("{base}/api/v1/contacts/upsert/"))
            .header("Authorization", format!("Bearer {api_key}"))
            .header("Content-Type", "application/json")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(payload)
            .send()
    };
    // The product backend's trace continues through the gateway into contacts and the event.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("ct_"), "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["version"], 1);
    assert_eq!(
        body["changed"],
        json!([
            "email",
            "external_id",
            "first_name",
            "subscribed",
            "custom_fields.plan"
        ])
    );

    let resp = send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let again: Value = resp.json().await.unwrap();
    assert_eq!(
        again,
        json!({"id": body["id"], "created": false, "version": 1, "changed": []})
    );

    let event_traceparent = first_event_traceparent(&prefix).await;
    assert!(
        event_traceparent.contains(trace_id),
        "the change event's traceparent {event_traceparent:?} is not in the caller's trace"
    );

    // A revoked key stops working (the CLI, then the served API after the cache's TTL).
    let prefix_arg: String = api_key.chars().take(17).collect();
    let out = run(Command::new(gateway_bin())
        .args(["admin", "revoke-key", "--key-prefix", &prefix_arg])
        .env("DATABASE_URL", &gateway_db.url));
    let revoked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(revoked["revoked"]["workspace_id"], created["workspace_id"]);

    meisa_testkit::clean_redis(&prefix).await;
}

#[test]
fn a_missing_variable_is_named() {
    let out = Command::new(gateway_bin())
        .arg("serve")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");

    let out = Command::new(gateway_bin())
        .arg("serve")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x")
        .env("MEISA_HTTP_PORT", "eighty")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MEISA_HTTP_PORT"), "{stderr}");
}

/// The `traceparent` of the first change event the relay publishes under `prefix`.
async fn first_event_traceparent(prefix: &str) -> String {
    use prost::Message;
    let client = redis::Client::open(redis_url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let what = format!("a change event published under {prefix}");
    eventually(Duration::from_secs(20), &what, || {
        let mut conn = conn.clone();
        async move {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:changes:*"))
                .query_async(&mut conn)
                .await
                .unwrap();
            for key in keys {
                let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                for entry in entries.ids {
                    if let Some(redis::Value::BulkString(bytes)) = entry.map.get("event") {
                        let event =
                            meisa_proto::events::ContactChanged::decode(bytes.as_slice()).unwrap();
                        return Some(event.traceparent);
                    }
                }
            }
            None
        }
    })
    .await
}

/// A debug build starting while the machine is busy can take a while to reach contacts.
async fn wait_ready(http: &reqwest::Client, base: &str) {
    eventually(
        Duration::from_secs(60),
        "gateway and contacts to be ready",
        || async {
            let resp = http.get(format!("{base}/readyz")).send().await.ok()?;
            (resp.status() == 200).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn create_workspace_works_on_a_database_that_does_not_exist_yet() {
    let name = unique_name("meisa_test_gateway_fresh");
    // Dropped (with the database) when the test ends.
    let db = TestDb {
        url: format!("{}/{name}", meisa_testkit::pg_server_url()),
        name,
    };
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        run(Command::new(gateway_bin())
            .args(["admin", "create-workspace", "--name", "Fresh"])
            .env("DATABASE_URL", url))
    })
    .await
    .unwrap();
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        created["api_key"]
            .as_str()
            .unwrap()
            .starts_with("meisa_sk_")
    );

    let pool = meisa_gateway::store::connect(&db.url, 1).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    pool.close().await;
}
