//! The whole system as processes: `contacts`, `mailer` and `automations` binaries, each on its own
//! fresh database, sharing one Redis under a per-test stream prefix, with the mailer delivering
//! to the testkit SMTP server. The test talks gRPC to each, like the gateway does. Every binary
//! listens on port 0 and announces the port it got (`meisa_testkit::Service`), so parallel tests
//! never race for a port.
//!
//! [`Stack::quiesce`] is how a test proves that nothing more happens: it waits until every part
//! of the stack is at rest, never for a fixed time.

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
use meisa_runtime::{client::MAX_MESSAGE_BYTES, errors::ApiError};
pub use meisa_testkit::eventually;
use meisa_testkit::{Service, TestDb, redis_url, smtp::SmtpServer, unique_name};
use serde_json::Value;
use sqlx::PgPool;
use tokio::process::Command;
use tonic::transport::{Channel, Endpoint};

pub const WS: &str = "ws_test";

/// The consumer group the automations service reads the change streams with.
const GROUP: &str = "automations";

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

/// Starts `cmd` on port 0 with its output in the test's log, and waits until it announced the
/// address it listens on.
async fn spawn(mut cmd: std::process::Command, prefix: &str, service: &str) -> Service {
    cmd.env("MEISA_GRPC_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file(prefix, service)))
        .stderr(Stdio::from(log_file(prefix, service)));
    Service::spawn(cmd).await
}

fn channel(service: &Service) -> Channel {
    Endpoint::from_shared(service.url("grpc"))
        .expect("endpoint")
        .connect_lazy()
}

pub struct Options {
    pub shards: u32,
    /// Extra environment for the automations process.
    pub automations_env: Vec<(&'static str, String)>,
    /// The mailer writes `.eml` files under [`Stack::mail_dir`] instead of sending over SMTP.
    pub mail_to_files: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shards: 4,
            automations_env: Vec::new(),
            mail_to_files: false,
        }
    }
}

pub struct Stack {
    pub prefix: String,
    pub shards: u32,
    pub smtp: SmtpServer,
    /// The mailer's data directory (its `.eml` files with `mail_to_files`).
    pub mail_dir: PathBuf,
    pub contacts: ContactsServiceClient<Channel>,
    pub mailer: MailerServiceClient<Channel>,
    /// Rebuilt by [`Stack::start_automations`]: a restarted process listens on another port.
    pub automations: AutomationsServiceClient<Channel>,
    launch: Launch,
    // Processes before databases: fields drop in order, and a database is dropped only after
    // the processes using it are gone.
    automations_proc: Option<Service>,
    _procs: Vec<Service>,
    automations_pool: PgPool,
    contacts_pool: PgPool,
    _dbs: Vec<TestDb>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Children are killed on drop (Service); the stream keys go with the test.
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

    // Contacts first, then the mailer (it calls contacts), then automations (it calls both).
    let mut migrate = Command::new(&contacts_bin);
    migrate.arg("migrate").env("DATABASE_URL", &contacts_db.url);
    run_to_end(&mut migrate).await;
    let mut serve = std::process::Command::new(&contacts_bin);
    serve
        .arg("serve")
        .env("DATABASE_URL", &contacts_db.url)
        .env("REDIS_URL", redis_url())
        .env("MEISA_STREAM_PREFIX", &prefix)
        .env("MEISA_STREAM_SHARDS", opts.shards.to_string())
        .env("MEISA_RELAY_POLL_INTERVAL", "100ms")
        .env("RUST_LOG", "warn");
    let contacts_proc = spawn(serve, &prefix, "contacts").await;
    let contacts_url = contacts_proc.url("grpc");

    run_to_end(
        Command::new(&mailer_bin)
            .arg("migrate")
            .env("DATABASE_URL", &mailer_db.url),
    )
    .await;
    let data_dir = std::env::temp_dir().join(format!("meisa-mail-{prefix}"));
    let mut serve = std::process::Command::new(&mailer_bin);
    serve
        .arg("serve")
        .env("DATABASE_URL", &mailer_db.url)
        .env("MEISA_CONTACTS_URL", &contacts_url)
        // The mailer erases on the same change stream automations reads.
        .env("REDIS_URL", redis_url())
        .env("MEISA_STREAM_PREFIX", &prefix)
        .env("MEISA_STREAM_SHARDS", opts.shards.to_string())
        .env("MEISA_DATA_DIR", &data_dir)
        .env(
            "MEISA_UNSUBSCRIBE_SECRET",
            "automations-it-secret-0123456789",
        )
        .env("MEISA_MAIL_POLL", "100ms")
        .env("MEISA_MAIL_WORKERS", "4")
        .env("RUST_LOG", "warn");
    if !opts.mail_to_files {
        serve.env("MEISA_SMTP_URL", smtp.url());
    }
    let mailer_proc = spawn(serve, &prefix, "mailer").await;
    let mailer_url = mailer_proc.url("grpc");

    run_to_end(
        Command::new(automations_bin())
            .arg("migrate")
            .env("DATABASE_URL", &automations_db.url)
            .env("RUST_LOG", "warn"),
    )
    .await;
    let pool = |url: &str| {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy(url)
            .expect("database url")
    };
    let launch = Launch {
        database_url: automations_db.url.clone(),
        contacts_url,
        mailer_url,
        prefix: prefix.clone(),
        shards: opts.shards,
        env: opts.automations_env,
    };
    let (automations_proc, automations) = launch.start().await;
    Stack {
        contacts: ContactsServiceClient::new(channel(&contacts_proc))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        mailer: MailerServiceClient::new(channel(&mailer_proc)),
        automations,
        prefix,
        shards: opts.shards,
        smtp,
        mail_dir: data_dir,
        launch,
        automations_proc: Some(automations_proc),
        _procs: vec![contacts_proc, mailer_proc],
        automations_pool: pool(&automations_db.url),
        contacts_pool: pool(&contacts_db.url),
        _dbs: vec![contacts_db, mailer_db, automations_db],
    }
}

/// How the automations process is started, again after a kill.
struct Launch {
    database_url: String,
    contacts_url: String,
    mailer_url: String,
    prefix: String,
    shards: u32,
    env: Vec<(&'static str, String)>,
}

impl Launch {
    async fn start(&self) -> (Service, AutomationsServiceClient<Channel>) {
        let mut cmd = std::process::Command::new(automations_bin());
        cmd.arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", redis_url())
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
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let proc = spawn(cmd, &self.prefix, "automations").await;
        let client = AutomationsServiceClient::new(channel(&proc));
        (proc, client)
    }
}

/// What the stack is doing at one instant, as far as a test can see it: the work still in hand
/// (`busy`, empty when there is none) and counters that every step of work moves (`progress`).
#[derive(Debug)]
struct Snapshot {
    busy: Vec<String>,
    progress: Vec<String>,
}

impl Stack {
    pub fn automations_log(&self) -> PathBuf {
        std::env::temp_dir()
            .join("meisa-automations-it")
            .join(format!("{}-automations.log", self.prefix))
    }

    /// Starts the automations binary again and waits until it announced its port.
    pub async fn start_automations(&mut self) {
        let (proc, client) = self.launch.start().await;
        self.automations = client;
        self.automations_proc = Some(proc);
    }

    /// SIGKILL: no cleanup, no lease released, entries and jobs left claimed.
    pub async fn kill_automations(&mut self) {
        if let Some(mut p) = self.automations_proc.take() {
            p.kill();
        }
    }

    /// SIGTERM, and waits for a clean exit.
    pub async fn stop_automations(&mut self) {
        let Some(mut p) = self.automations_proc.take() else {
            return;
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(p.child.id()).expect("pid")),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM automations");
        let status = eventually(
            Duration::from_secs(20),
            "automations to exit after SIGTERM",
            || {
                let exited = p.child.try_wait().expect("wait for automations");
                async move { exited }
            },
        )
        .await;
        assert!(status.success(), "automations exited with {status}");
    }

    pub async fn automations_pool(&self) -> PgPool {
        self.automations_pool.clone()
    }

    /// Waits until the stack is at rest, so that a test may assert that nothing more happened:
    /// every shard's stream delivered to the `automations` group and acknowledged, the contacts
    /// outbox fully published, no action job pending or running, no enrollment and no
    /// clock-driven check due now, no backfill pending, no message queued at the mailer.
    ///
    /// Each of those is read at a different instant, so one look could miss work on its way from
    /// a place not yet read to one already read. Two looks in a row must therefore both find
    /// nothing in hand AND the same progress (stream ids, outbox and activity counts, last update
    /// times, emails received): every step of work moves one of them, so equal progress means no
    /// step happened while the looks were taken, and nothing in hand means nothing was left to
    /// take one.
    ///
    /// What is due later (a `wait` step, a condition time makes true tomorrow) is not work in
    /// hand; a test about it waits for the fact it expects.
    pub async fn quiesce(&self) {
        self.quiesce_within(Duration::from_secs(60)).await;
    }

    pub async fn quiesce_within(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut before = self.snapshot().await;
        loop {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let now = self.snapshot().await;
            if before.busy.is_empty() && now.busy.is_empty() && before.progress == now.progress {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the stack did not come to rest within {timeout:?}; still in hand: {:?}; log: {}",
                now.busy,
                self.automations_log().display()
            );
            before = now;
        }
    }

    async fn snapshot(&self) -> Snapshot {
        let mut busy = Vec::new();
        let mut progress = Vec::new();

        // Contacts: every committed change is on its stream. The test owns the contacts
        // database, and the outbox is where "committed, not yet published" is a fact rather than
        // a guess from how often the relay polls.
        let (unpublished, last_row): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE published_at IS NULL), max(id) FROM outbox",
        )
        .fetch_one(&self.contacts_pool)
        .await
        .expect("read the contacts outbox");
        if unpublished > 0 {
            busy.push(format!("{unpublished} outbox rows not published"));
        }
        progress.push(format!("outbox {last_row:?}"));

        // The streams: everything delivered to the group and acknowledged.
        let client = redis::Client::open(redis_url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        for shard in 0..self.shards {
            let group = meisa_stream::Group::new(&self.prefix, shard, GROUP, "quiesce");
            match group.state(&mut conn).await.expect("stream group state") {
                Some(state) => {
                    if !state.is_caught_up() {
                        busy.push(format!("shard {shard}: {state:?}"));
                    }
                    progress.push(format!("shard {shard}: {state:?}"));
                }
                None => {
                    let len: i64 = redis::cmd("XLEN")
                        .arg(meisa_stream::key(&self.prefix, shard))
                        .query_async(&mut conn)
                        .await
                        .expect("xlen");
                    if len > 0 {
                        busy.push(format!("shard {shard}: {len} entries, group not created"));
                    }
                    progress.push(format!("shard {shard}: {len} entries"));
                }
            }
        }

        // Automations: nothing to run now.
        let row: (i64, i64, i64, i64, i64, i64, Option<String>) = sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM action_jobs WHERE status IN ('pending', 'running')),
               (SELECT count(*) FROM enrollments WHERE status = 'active' AND next_run_at <= now()),
               (SELECT count(*) FROM projections WHERE next_check_at <= now()),
               (SELECT count(*) FROM automations WHERE backfill_pending),
               (SELECT count(*) FROM activity),
               (SELECT count(*) FROM processed_events),
               concat_ws(' ', (SELECT max(updated_at) FROM action_jobs),
                              (SELECT max(updated_at) FROM enrollments),
                              (SELECT max(updated_at) FROM projections))",
        )
        .fetch_one(&self.automations_pool)
        .await
        .expect("read the automations database");
        let (jobs, due, checks, backfills, activity, processed, updated) = row;
        for (n, what) in [
            (jobs, "action jobs pending or running"),
            (due, "enrollments due"),
            (checks, "clock-driven checks due"),
            (backfills, "backfills pending"),
        ] {
            if n > 0 {
                busy.push(format!("{n} {what}"));
            }
        }
        progress.push(format!(
            "activity {activity}, processed {processed}, updated {updated:?}"
        ));

        // The mailer: nothing waiting to be delivered.
        let queued = self
            .mailer
            .clone()
            .list_messages(mpb::ListMessagesRequest {
                workspace_id: WS.into(),
                page: Some(common::PageRequest {
                    limit: 1,
                    cursor: String::new(),
                }),
                status: mpb::MessageStatus::Queued as i32,
                ..Default::default()
            })
            .await
            .expect("list queued messages")
            .into_inner()
            .messages;
        if !queued.is_empty() {
            busy.push("messages queued at the mailer".into());
        }
        progress.push(format!("emails received {}", self.smtp.message_count()));

        Snapshot { busy, progress }
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

    pub async fn sequence_stats(&self, id: &str) -> pb::SequenceStats {
        self.automations
            .clone()
            .get_sequence_stats(pb::GetSequenceStatsRequest {
                workspace_id: WS.into(),
                id: id.into(),
            })
            .await
            .expect("sequence stats")
            .into_inner()
            .stats
            .expect("sequence stats")
    }

    pub async fn enrollments(&self, contact_id: &str) -> Vec<pb::Enrollment> {
        self.list_enrollments(pb::ListEnrollmentsRequest {
            workspace_id: WS.into(),
            contact_id: contact_id.into(),
            ..Default::default()
        })
        .await
    }

    /// Every enrollment of the sequence, erased contacts' included (they name nobody).
    pub async fn sequence_enrollments(&self, sequence_id: &str) -> Vec<pb::Enrollment> {
        self.list_enrollments(pb::ListEnrollmentsRequest {
            workspace_id: WS.into(),
            sequence_id: sequence_id.into(),
            ..Default::default()
        })
        .await
    }

    async fn list_enrollments(&self, request: pb::ListEnrollmentsRequest) -> Vec<pb::Enrollment> {
        self.automations
            .clone()
            .list_enrollments(request)
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
