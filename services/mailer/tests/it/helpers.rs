use std::{collections::BTreeMap, time::Duration};

use meisa_contacts::{Application as ContactsApp, Config as ContactsConfig};
use meisa_mailer::{Application, Config, StreamConfig, transport::SmtpUrl};
use meisa_proto::{
    common::{Contact, Value, value::Kind},
    contacts::contacts_service_client::ContactsServiceClient,
    mailer::{self as pb, mailer_service_client::MailerServiceClient},
};
use meisa_runtime::errors::ApiError;
use meisa_testkit::{TestDb, smtp::SmtpServer};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub const WS: &str = "ws_test";

pub struct TestApp {
    pub client: MailerServiceClient<Channel>,
    pub db: TestDb,
    pub config: Config,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The mailer on its own database, sending to `smtp` (or to .eml files when None).
pub async fn spawn_app(smtp: Option<&SmtpServer>) -> TestApp {
    spawn_app_with(smtp, |_| {}).await
}

pub async fn spawn_app_with(smtp: Option<&SmtpServer>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::create("mailer").await;
    meisa_mailer::migrate(&db.url).await.expect("migrate");
    let mut config = Config::local(&db.url);
    config.smtp = smtp.map(|s| SmtpUrl::parse(&s.url()).expect("smtp url"));
    tweak(&mut config);
    let (client, shutdown, handle) = start(&config).await;
    TestApp {
        client,
        db,
        config,
        shutdown,
        handle: Some(handle),
    }
}

async fn start(
    config: &Config,
) -> (
    MailerServiceClient<Channel>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let app = Application::build(config.clone()).await.expect("build");
    let addr = app.grpc_addr();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run(token).await.expect("run");
    });
    let client = MailerServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    (client, shutdown, handle)
}

/// Reads the change stream under `prefix` (`shards` streams) from `redis_url`.
pub fn with_stream(redis_url: &str, prefix: &str, shards: u32) -> impl FnOnce(&mut Config) {
    let stream = StreamConfig::local(redis_url, prefix, shards);
    move |c| c.stream = Some(stream)
}

/// Waits until the delivery queue of the mailer on `db_url` is empty. A worker sends only a row
/// it claimed from the queue, and a row leaves the queue only once its send is over (sent,
/// failed for good, or put back for a retry later), so from then on nothing reaches the SMTP
/// server unless something new is queued: its counts are final.
pub async fn until_nothing_queued(db_url: &str) {
    let pool = sqlx::PgPool::connect(db_url).await.expect("pool");
    meisa_testkit::eventually(
        Duration::from_secs(30),
        "an empty delivery queue",
        || async {
            let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_queue")
                .fetch_one(&pool)
                .await
                .ok()?;
            (queued == 0).then_some(())
        },
    )
    .await;
    pool.close().await;
}

pub fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

pub fn contact(id: &str, email: &str, first_name: Option<&str>) -> Contact {
    Contact {
        id: id.into(),
        workspace_id: WS.into(),
        email: email.into(),
        external_id: format!("usr_{id}"),
        first_name: first_name.map(str::to_string),
        last_name: None,
        subscribed: true,
        tags: vec!["pro".into()],
        custom_fields: BTreeMap::from([("plan".to_string(), string("pro"))]),
        version: 1,
        created_at: None,
        updated_at: None,
    }
}

pub fn template(subject: &str, html: &str) -> pb::TemplateInput {
    pb::TemplateInput {
        name: "Welcome".into(),
        subject: subject.into(),
        html: html.into(),
        text: None,
        from: "Acme <hello@acme.test>".into(),
        reply_to: None,
    }
}

impl TestApp {
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    /// Stops the mailer and starts it again on the same database and files (a new process).
    pub async fn restart(&mut self) {
        self.stop().await;
        let (client, shutdown, handle) = start(&self.config).await;
        self.client = client;
        self.shutdown = shutdown;
        self.handle = Some(handle);
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.db.url).await.expect("pool")
    }

    /// See [`until_nothing_queued`].
    pub async fn until_nothing_queued(&self) {
        until_nothing_queued(&self.db.url).await;
    }

    pub async fn create_template(
        &self,
        input: pb::TemplateInput,
    ) -> Result<pb::Template, ApiError> {
        self.client
            .clone()
            .create_template(pb::CreateTemplateRequest {
                workspace_id: WS.into(),
                template: Some(input),
            })
            .await
            .map(|r| r.into_inner().template.expect("template"))
            .map_err(|s| ApiError::from_status(&s))
    }

    pub async fn send(
        &self,
        key: &str,
        contact: Contact,
        template_id: &str,
    ) -> Result<pb::SendEmailResponse, ApiError> {
        self.client
            .clone()
            .send_email(pb::SendEmailRequest {
                workspace_id: WS.into(),
                idempotency_key: key.into(),
                contact: Some(contact),
                template_id: template_id.into(),
                source: Some(pb::MessageSource {
                    automation_id: "aut_1".into(),
                    sequence_id: "seq_1".into(),
                    step: Some(0),
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::from_status(&s))
    }

    pub async fn message(&self, id: &str) -> pb::Message {
        self.client
            .clone()
            .get_message(pb::GetMessageRequest {
                workspace_id: WS.into(),
                id: id.into(),
            })
            .await
            .expect("get message")
            .into_inner()
            .message
            .expect("message")
    }

    /// Polls until the message reaches `status` (the workers run on their own schedule).
    pub async fn wait_status(
        &self,
        id: &str,
        status: pb::MessageStatus,
        timeout: Duration,
    ) -> pb::Message {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = self.message(id).await;
            if m.status == status as i32 {
                return m;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("message {id} did not reach {status:?} within {timeout:?}: {m:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn list_messages(&self, req: pb::ListMessagesRequest) -> pb::ListMessagesResponse {
        self.client
            .clone()
            .list_messages(pb::ListMessagesRequest {
                workspace_id: WS.into(),
                ..req
            })
            .await
            .expect("list messages")
            .into_inner()
    }

    pub async fn suppressions(&self) -> Vec<pb::Suppression> {
        self.client
            .clone()
            .list_suppressions(pb::ListSuppressionsRequest {
                workspace_id: WS.into(),
                page: None,
            })
            .await
            .expect("list suppressions")
            .into_inner()
            .suppressions
    }
}

/// The real contacts service, in-process, on its own database and stream prefix.
pub struct Contacts {
    pub client: ContactsServiceClient<tonic::transport::Channel>,
    pub url: String,
    shutdown: CancellationToken,
    pub prefix: String,
    /// How many shards its relay publishes to.
    pub shards: u32,
    _db: TestDb,
}

impl Drop for Contacts {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_contacts() -> Contacts {
    let db = TestDb::create("contacts").await;
    meisa_contacts::migrate(&db.url)
        .await
        .expect("migrate contacts");
    let prefix = meisa_testkit::unique_name("mt");
    let cfg = ContactsConfig::local(db.url.clone(), meisa_testkit::redis_url(), prefix.clone());
    let shards = cfg.shards;
    let app = ContactsApp::build(cfg).await.expect("build contacts");
    let addr = app.grpc_addr();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = app.run(token).await;
    });
    let url = format!("http://{addr}");
    let client = ContactsServiceClient::connect(url.clone())
        .await
        .expect("connect contacts");
    Contacts {
        client,
        url,
        shutdown,
        prefix,
        shards,
        _db: db,
    }
}

/// The token of a received email's `List-Unsubscribe: <…/u/TOKEN>, <mailto:unsubscribe+TOKEN@…>`.
pub fn token_from_header(header: &str) -> String {
    let start = header
        .find("/u/")
        .expect("an https link in List-Unsubscribe")
        + 3;
    header[start..]
        .split('>')
        .next()
        .expect("closing >")
        .to_string()
}

/// The decoded body of the MIME part with this content type (quoted-printable or base64 or plain).
pub fn mime_part(raw: &str, content_type: &str) -> Option<String> {
    let idx = raw.find(&format!("Content-Type: {content_type}"))?;
    let part = &raw[idx..];
    let (head, body) = part.split_once("\r\n\r\n")?;
    let body = body.split("\r\n--").next().unwrap_or("");
    let encoding = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    Some(match encoding.as_str() {
        "quoted-printable" => decode_qp(body),
        "base64" => decode_b64(&body.replace("\r\n", "")),
        _ => body.to_string(),
    })
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_b64(s: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
