//! The whole system as processes: `contacts`, `mailer` and `automations` binaries, each on its own
//! fresh database, sharing one Redis under a per-test stream prefix, with the mailer delivering
//! to the testkit SMTP server. The test talks gRPC to each, like the gateway does.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Stdio,
    sync::OnceLock,
    time::{Duration, Instant},
};

use meisa_proto::{
    automations::{self as pb, automations_service_client::AutomationsServiceClient},
    common::{self, value::Kind},
    contacts::{self as cpb, contacts_service_client::ContactsServiceClient},
    mailer::{self as mpb, mailer_service_client::MailerServiceClient},
};
use meisa_runtime::errors::ApiError;
use meisa_testkit::{TestDb, free_port, redis_url, smtp::SmtpServer, unique_name};
use serde_json::Value;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

pub const WS: &str = "ws_test";

fn automations_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_automations"))
}

/// `contacts` and `mailer`, built once per test run next to `automations` (same target dir and
/// profile): cargo builds only the binaries of the package under test by itself.
fn sibling_bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = automations_bin()
            .parent()
            .expect("the automations binary has a directory")
            .to_path_buf();
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args([
            "build",
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
        let status = build
            .status()
            .expect("run cargo build for contacts and mailer");
        assert!(
            status.success(),
            "cargo build of contacts and mailer failed"
        );
        let exe = |n: &str| dir.join(format!("{n}{}", std::env::consts::EXE_SUFFIX));
        (exe("contacts"), exe("mailer"))
    })
}

/// Where a test's service logs go (kept after the test, for reading a failure).
fn log_file(prefix: &str, service: &str) -> std::fs::File {
    let dir = std::env::temp_dir().join("meisa-automations-it");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{prefix}-{service}.log"));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

async fn run_to_end(cmd: &mut Command) {
    let out = cmd.output().await.expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn connect(port: u16) -> Channel {
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..600 {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(url.clone())
            .expect("endpoint")
            .connect()
            .await
        {
            return ch;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {url}");
}

pub struct Options {
    pub shards: u32,
    /// Extra environment for the automations process.
    pub automations_env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shards: 4,
            automations_env: Vec::new(),
        }
    }
}

pub struct Stack {
    pub prefix: String,
    pub shards: u32,
    pub smtp: SmtpServer,
    pub contacts: ContactsServiceClient<Channel>,
    pub mailer: MailerServiceClient<Channel>,
    pub automations: AutomationsServiceClient<Channel>,
    pub automations_db: TestDb,
    automations_port: u16,
    automations_env: Vec<(&'static str, String)>,
    contacts_url: String,
    mailer_url: String,
    automations_proc: Option<Child>,
    _procs: Vec<Child>,
    _dbs: Vec<TestDb>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Children are killed on drop (kill_on_drop); the stream keys go with the test.
        let prefix = self.prefix.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(meisa_testkit::clean_redis(&prefix));
            }
        })
        .join();
    }
}

pub async fn stack() -> Stack {
    stack_with(Options::default()).await
}

pub async fn stack_with(opts: Options) -> Stack {
    let (contacts_bin, mailer_bin) = tokio::task::spawn_blocking(sibling_bins)
        .await
        .expect("build siblings")
        .clone();
    let prefix = unique_name("at");
    let smtp = SmtpServer::start().await;
    let contacts_db = TestDb::create("contacts").await;
    let mailer_db = TestDb::create("mailer").await;
    // Not created here: `automations migrate` creates its database when missing.
    let name = unique_name("meisa_test_automations");
    let automations_db = TestDb {
        url: format!("{}/{name}", meisa_testkit::pg_server_url()),
        name,
    };
    let (cport, mport, aport) = (free_port(), free_port(), free_port());
    let contacts_url = format!("http://127.0.0.1:{cport}");
    let mailer_url = format!("http://127.0.0.1:{mport}");

    let contacts_env = |cmd: &mut Command| {
        cmd.env("DATABASE_URL", &contacts_db.url)
            .env("REDIS_URL", redis_url())
            .env("MEISA_GRPC_ADDR", format!("127.0.0.1:{cport}"))
            .env("MEISA_STREAM_PREFIX", &prefix)
            .env("MEISA_STREAM_SHARDS", opts.shards.to_string())
            .env("MEISA_RELAY_POLL_INTERVAL", "100ms")
            .env("RUST_LOG", "warn");
    };
    let mut migrate = Command::new(&contacts_bin);
    contacts_env(migrate.arg("migrate"));
    run_to_end(&mut migrate).await;
    let mut serve = Command::new(&contacts_bin);
    contacts_env(serve.arg("serve"));
    let contacts_proc = spawn(&mut serve, &prefix, "contacts");

    run_to_end(
        Command::new(&mailer_bin)
            .arg("migrate")
            .env("DATABASE_URL", &mailer_db.url),
    )
    .await;
    let data_dir = std::env::temp_dir().join(format!("meisa-mail-{prefix}"));
    let mailer_proc = spawn(
        Command::new(&mailer_bin)
            .arg("serve")
            .env("DATABASE_URL", &mailer_db.url)
            .env("MEISA_GRPC_ADDR", format!("127.0.0.1:{mport}"))
            .env("MEISA_CONTACTS_URL", &contacts_url)
            .env("MEISA_SMTP_URL", smtp.url())
            .env("MEISA_DATA_DIR", data_dir)
            .env(
                "MEISA_UNSUBSCRIBE_SECRET",
                "automations-it-secret-0123456789",
            )
            .env("MEISA_MAIL_POLL", "100ms")
            .env("MEISA_MAIL_WORKERS", "4")
            .env("RUST_LOG", "warn"),
        &prefix,
        "mailer",
    );

    let mut stack = Stack {
        contacts: ContactsServiceClient::new(connect(cport).await)
            .max_decoding_message_size(64 * 1024 * 1024),
        mailer: MailerServiceClient::new(connect(mport).await),
        automations: AutomationsServiceClient::new(
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{aport}"))
                .expect("endpoint")
                .connect_lazy(),
        ),
        prefix,
        shards: opts.shards,
        smtp,
        automations_db,
        automations_port: aport,
        automations_env: opts.automations_env,
        contacts_url,
        mailer_url,
        automations_proc: None,
        _procs: vec![contacts_proc, mailer_proc],
        _dbs: vec![contacts_db, mailer_db],
    };
    run_to_end(
        Command::new(automations_bin())
            .arg("migrate")
            .env("DATABASE_URL", &stack.automations_db.url)
            .env("RUST_LOG", "warn"),
    )
    .await;
    stack.start_automations().await;
    stack
}

fn spawn(cmd: &mut Command, prefix: &str, service: &str) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log_file(prefix, service)))
        .stderr(Stdio::from(log_file(prefix, service)))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {service}: {e}"))
}

impl Stack {
    pub fn automations_log(&self) -> PathBuf {
        std::env::temp_dir()
            .join("meisa-automations-it")
            .join(format!("{}-automations.log", self.prefix))
    }

    /// Starts the automations binary (again) and waits until it answers.
    pub async fn start_automations(&mut self) {
        let mut cmd = Command::new(automations_bin());
        cmd.arg("serve")
            .env("DATABASE_URL", &self.automations_db.url)
            .env("REDIS_URL", redis_url())
            .env(
                "MEISA_GRPC_ADDR",
                format!("127.0.0.1:{}", self.automations_port),
            )
            .env("MEISA_CONTACTS_URL", &self.contacts_url)
            .env("MEISA_MAILER_URL", &self.mailer_url)
            .env("MEISA_STREAM_PREFIX", &self.prefix)
            .env("MEISA_STREAM_SHARDS", self.shards.to_string())
            .env("MEISA_SCHEDULER_POLL", "100ms")
            .env("MEISA_SWEEP_INTERVAL", "1s")
            .env("MEISA_CONSUMER_BLOCK", "500ms")
            .env("MEISA_CONSUMER_CLAIM_IDLE", "2s")
            .env("MEISA_CONSUMER_LEASE", "2s")
            .env("MEISA_JOB_LEASE", "11s")
            .env("RUST_LOG", "info");
        for (k, v) in &self.automations_env {
            cmd.env(k, v);
        }
        self.automations_proc = Some(spawn(&mut cmd, &self.prefix, "automations"));
        connect(self.automations_port).await;
    }

    /// SIGKILL: no cleanup, no lease released, entries and jobs left claimed.
    pub async fn kill_automations(&mut self) {
        if let Some(mut c) = self.automations_proc.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// SIGTERM, and waits for a clean exit.
    pub async fn stop_automations(&mut self) {
        if let Some(mut c) = self.automations_proc.take() {
            if let Some(pid) = c.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let status = tokio::time::timeout(Duration::from_secs(20), c.wait())
                .await
                .expect("automations exits within 20s of SIGTERM")
                .expect("wait");
            assert!(status.success(), "automations exited with {status}");
        }
    }

    pub async fn automations_pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.automations_db.url)
            .await
            .expect("automations db")
    }

    // ------------------------------------------------------------------ contacts

    pub async fn upsert(&self, email: &str, fields: &[(&str, Value)]) -> cpb::UpsertResponse {
        self.try_upsert(email, fields).await.expect("upsert")
    }

    pub async fn try_upsert(
        &self,
        email: &str,
        fields: &[(&str, Value)],
    ) -> Result<cpb::UpsertResponse, ApiError> {
        self.contacts
            .clone()
            .upsert(cpb::UpsertRequest {
                workspace_id: WS.into(),
                contact: Some(cpb::ContactInput {
                    email: email.into(),
                    external_id: format!("usr_{email}"),
                    first_name: Some(cpb::StringPatch {
                        value: Some(email.split('@').next().unwrap_or("x").into()),
                    }),
                    custom_fields: fields
                        .iter()
                        .map(|(k, v)| (k.to_string(), value(v)))
                        .collect::<BTreeMap<_, _>>(),
                    ..Default::default()
                }),
                causation: None,
                return_contact: true,
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::from_status(&s))
    }

    pub async fn contact(&self, id: &str) -> common::Contact {
        self.contacts
            .clone()
            .get_contact(cpb::GetContactRequest {
                workspace_id: WS.into(),
                by: Some(cpb::get_contact_request::By::Id(id.into())),
            })
            .await
            .expect("get contact")
            .into_inner()
            .contact
            .expect("contact")
    }

    /// Every change of a contact, newest first.
    pub async fn changes(&self, id: &str) -> Vec<cpb::Change> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = self
                .contacts
                .clone()
                .list_changes(cpb::ListChangesRequest {
                    workspace_id: WS.into(),
                    contact_id: id.into(),
                    page: Some(common::PageRequest {
                        limit: 500,
                        cursor: cursor.clone(),
                    }),
                })
                .await
                .expect("list changes")
                .into_inner();
            out.extend(r.changes);
            if r.next_cursor.is_empty() {
                return out;
            }
            cursor = r.next_cursor;
        }
    }

    // ------------------------------------------------------------------ mailer

    pub async fn template(&self, name: &str, subject: &str) -> String {
        self.mailer
            .clone()
            .create_template(mpb::CreateTemplateRequest {
                workspace_id: WS.into(),
                template: Some(mpb::TemplateInput {
                    name: name.into(),
                    subject: subject.into(),
                    html: format!("<p>{name} for {{{{ email }}}}</p><a href=\"{{{{ unsubscribe_url }}}}\">Unsubscribe</a>"),
                    text: None,
                    from: "Acme <hello@acme.test>".into(),
                    reply_to: None,
                }),
            })
            .await
            .expect("create template")
            .into_inner()
            .template
            .expect("template")
            .id
    }

    // ------------------------------------------------------------------ automations

    pub async fn create_sequence(&self, json: Value) -> Result<pb::Sequence, ApiError> {
        self.automations
            .clone()
            .create_sequence(pb::CreateSequenceRequest {
                workspace_id: WS.into(),
                definition: json.to_string(),
            })
            .await
            .map(|r| r.into_inner().sequence.expect("sequence"))
            .map_err(|s| ApiError::from_status(&s))
    }

    pub async fn sequence(&self, json: Value) -> String {
        self.create_sequence(json)
            .await
            .expect("create sequence")
            .id
    }

    pub async fn create_automation(&self, json: Value) -> Result<pb::Automation, ApiError> {
        self.automations
            .clone()
            .create_automation(pb::CreateAutomationRequest {
                workspace_id: WS.into(),
                definition: json.to_string(),
            })
            .await
            .map(|r| r.into_inner().automation.expect("automation"))
            .map_err(|s| ApiError::from_status(&s))
    }

    pub async fn automation(&self, json: Value) -> String {
        self.create_automation(json)
            .await
            .expect("create automation")
            .id
    }

    pub async fn automation_stats(&self, id: &str) -> pb::AutomationStats {
        self.automations
            .clone()
            .get_automation_stats(pb::GetAutomationStatsRequest {
                workspace_id: WS.into(),
                id: id.into(),
            })
            .await
            .expect("stats")
            .into_inner()
            .stats
            .expect("stats")
    }

    pub async fn enrollments(&self, contact_id: &str) -> Vec<pb::Enrollment> {
        self.automations
            .clone()
            .list_enrollments(pb::ListEnrollmentsRequest {
                workspace_id: WS.into(),
                contact_id: contact_id.into(),
                ..Default::default()
            })
            .await
            .expect("list enrollments")
            .into_inner()
            .enrollments
    }

    pub async fn activity(&self, contact_id: &str) -> Vec<pb::Activity> {
        self.automations
            .clone()
            .list_contact_activity(pb::ListContactActivityRequest {
                workspace_id: WS.into(),
                contact_id: contact_id.into(),
                page: None,
            })
            .await
            .expect("list activity")
            .into_inner()
            .activities
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn value(v: &Value) -> common::Value {
    common::Value {
        kind: Some(match v {
            Value::Null => Kind::NullValue(true),
            Value::Bool(b) => Kind::BoolValue(*b),
            Value::String(s) => Kind::StringValue(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Kind::IntValue(i),
                None => Kind::DoubleValue(n.as_f64().unwrap_or_default()),
            },
            other => panic!("not a field value: {other}"),
        }),
    }
}

/// An answered definition back as JSON, to compare with what was sent.
pub fn definition(json: &str) -> Value {
    serde_json::from_str(json).expect("automations answers definitions as JSON")
}
