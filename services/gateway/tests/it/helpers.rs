use std::{net::SocketAddr, sync::Arc, time::Duration};

use meisa_gateway::{Application, Config, admin, store};
use meisa_proto::{
    contacts::{self as pb, contacts_service_client::ContactsServiceClient},
    mailer::mailer_service_client::MailerServiceClient,
};
use meisa_testkit::{
    TestDb,
    smtp::{ReceivedMail, SmtpServer},
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// What the mailer puts before `/u/{token}` in the tests. The gateway's port is only known after
/// the mailer is built (the gateway needs the mailer's address first), so the links point at a
/// stand-in host; tests take the token from a link and call the gateway with it.
pub const PUBLIC_URL: &str = "http://meisa.test";

/// A gateway on an ephemeral port in front of in-process contacts and mailer services (and, with
/// [`spawn_app_with_automations`], automations), each with a fresh database, the mailer delivering
/// to a test SMTP server, and a workspace with an API key ready to use.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub workspace_id: String,
    pub api_key: String,
    pub gateway_pool: PgPool,
    /// Where contacts listens (None when the test runs without it).
    pub contacts_addr: Option<SocketAddr>,
    /// The gateway's MEISA_MAILER_URL (where nothing listens when the test runs without it).
    pub mailer_url: String,
    /// What the mailer delivered (None when the test runs without it).
    pub smtp: Option<Arc<SmtpServer>>,
    pub stream_prefix: String,
    shutdown: CancellationToken,
    // Dropped after the services stop; dropping drops the databases.
    _gateway_db: TestDb,
    _contacts_db: Option<TestDb>,
    _mailer_db: Option<TestDb>,
    _automations_db: Option<TestDb>,
}

/// The services a gateway under test talks to.
#[derive(Default)]
struct Backends {
    contacts_addr: Option<SocketAddr>,
    contacts_db: Option<TestDb>,
    mailer_addr: Option<SocketAddr>,
    mailer_db: Option<TestDb>,
    smtp: Option<Arc<SmtpServer>>,
    automations_addr: Option<SocketAddr>,
    automations_db: Option<TestDb>,
}

/// Which services run behind the gateway.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Services {
    Contacts,
    ContactsAndMailer,
    /// Contacts, the mailer and automations: the whole system. Automations reads the streams
    /// contacts writes (same prefix, same shard count: both `Config::local`s use 4).
    All,
}

/// Contacts and the mailer; the automations address has nothing listening on it (most tests do
/// not need it, and its workers would only add load).
pub async fn spawn_app() -> TestApp {
    spawn(Services::ContactsAndMailer).await
}

/// Contacts runs; the mailer's address has nothing listening on it.
pub async fn spawn_app_without_mailer() -> TestApp {
    spawn(Services::Contacts).await
}

/// Every service: contacts, the mailer and automations.
pub async fn spawn_app_with_automations() -> TestApp {
    spawn(Services::All).await
}

async fn spawn(services: Services) -> TestApp {
    let contacts_db = TestDb::create("contacts").await;
    meisa_contacts::migrate(&contacts_db.url)
        .await
        .expect("migrate contacts");
    let prefix = meisa_testkit::unique_name("t");
    let shutdown = CancellationToken::new();
    let contacts = meisa_contacts::Application::build(meisa_contacts::Config::local(
        contacts_db.url.clone(),
        meisa_testkit::redis_url(),
        prefix.clone(),
    ))
    .await
    .expect("build contacts");
    let contacts_addr = contacts.grpc_addr();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = contacts.run(token).await;
    });

    if services == Services::Contacts {
        let backends = Backends {
            contacts_addr: Some(contacts_addr),
            contacts_db: Some(contacts_db),
            ..Backends::default()
        };
        return start_gateway(backends, prefix, shutdown).await;
    }
    let smtp = Arc::new(SmtpServer::start().await);
    let mailer_db = TestDb::create("mailer").await;
    meisa_mailer::migrate(&mailer_db.url)
        .await
        .expect("migrate mailer");
    let mut mailer_config = meisa_mailer::Config::local(&mailer_db.url);
    mailer_config.contacts_url = format!("http://{contacts_addr}");
    mailer_config.smtp =
        Some(meisa_mailer::transport::SmtpUrl::parse(&smtp.url()).expect("smtp url"));
    mailer_config.public_url = PUBLIC_URL.into();
    mailer_config.db_max_connections = 4;
    // The mailer erases on the change stream contacts writes (4 shards in Config::local).
    mailer_config.stream = Some(meisa_mailer::StreamConfig::local(
        &meisa_testkit::redis_url(),
        &prefix,
        4,
    ));
    let mailer = meisa_mailer::Application::build(mailer_config)
        .await
        .expect("build mailer");
    let mailer_addr = mailer.grpc_addr();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = mailer.run(token).await;
    });

    let mut backends = Backends {
        contacts_addr: Some(contacts_addr),
        contacts_db: Some(contacts_db),
        mailer_addr: Some(mailer_addr),
        mailer_db: Some(mailer_db),
        smtp: Some(smtp),
        ..Backends::default()
    };
    if services == Services::All {
        let automations_db = TestDb::create("automations").await;
        meisa_automations::migrate(&automations_db.url)
            .await
            .expect("migrate automations");
        let config = meisa_automations::Config::local(
            automations_db.url.clone(),
            meisa_testkit::redis_url(),
            prefix.clone(),
            format!("http://{contacts_addr}"),
            format!("http://{mailer_addr}"),
        );
        let automations = meisa_automations::Application::build(config)
            .await
            .expect("build automations");
        backends.automations_addr = Some(automations.grpc_addr());
        backends.automations_db = Some(automations_db);
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = automations.run(token).await;
        });
    }
    start_gateway(backends, prefix, shutdown).await
}

/// A gateway whose contacts and mailer addresses have nothing listening on them.
pub async fn spawn_app_without_contacts() -> TestApp {
    start_gateway(
        Backends::default(),
        meisa_testkit::unique_name("t"),
        CancellationToken::new(),
    )
    .await
}

async fn start_gateway(
    backends: Backends,
    stream_prefix: String,
    shutdown: CancellationToken,
) -> TestApp {
    let gateway_db = TestDb::create("gateway").await;
    meisa_gateway::migrate(&gateway_db.url)
        .await
        .expect("migrate gateway");
    // A service the test runs without is "down": an address where nothing listens. The one place
    // a port is picked before anything binds it, on purpose: a test that brings the service back
    // (the mailer in `unsubscribe.rs`) starts it on this very address, which the gateway keeps
    // calling. A port bound and dropped is free now and unlikely to be taken again soon.
    let url_or_nothing = |addr: Option<SocketAddr>| match addr {
        Some(addr) => format!("http://{addr}"),
        None => format!("http://127.0.0.1:{}", meisa_testkit::free_port()),
    };
    let mut config = Config::local(
        gateway_db.url.clone(),
        url_or_nothing(backends.contacts_addr),
    );
    config.mailer.url = url_or_nothing(backends.mailer_addr);
    config.automations.url = url_or_nothing(backends.automations_addr);
    let mailer_url = config.mailer.url.clone();
    let app = Application::build(config).await.expect("build gateway");
    let base = format!("http://127.0.0.1:{}", app.port());
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = app.run(token).await;
    });
    let gateway_pool = store::connect(&gateway_db.url, 2)
        .await
        .expect("gateway pool");
    let created = admin::create_workspace(&gateway_pool, "Test workspace")
        .await
        .expect("create workspace");
    TestApp {
        base,
        http: reqwest::Client::new(),
        workspace_id: created.workspace_id,
        api_key: created.api_key,
        gateway_pool,
        contacts_addr: backends.contacts_addr,
        mailer_url,
        smtp: backends.smtp,
        stream_prefix,
        shutdown,
        _gateway_db: gateway_db,
        _contacts_db: backends.contacts_db,
        _mailer_db: backends.mailer_db,
        _automations_db: backends.automations_db,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let prefix = self.stream_prefix.clone();
        // Drop may run inside the test's runtime; a thread with its own runtime works anywhere.
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

impl TestApp {
    /// Waits until the contacts relay has published every committed change (the outbox has no
    /// unpublished row): from then on, a consumer that caught up on the streams has seen them.
    pub async fn until_changes_published(&self) {
        let url = &self
            ._contacts_db
            .as_ref()
            .expect("this test runs contacts")
            .url;
        let pool = PgPool::connect(url).await.expect("contacts database");
        meisa_testkit::eventually(
            std::time::Duration::from_secs(30),
            "the relay to publish every change",
            || async {
                let unpublished: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                (unpublished == 0).then_some(())
            },
        )
        .await;
        pool.close().await;
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn upsert(&self, body: Value) -> Response {
        self.post_json("/api/v1/contacts/upsert/", &body).await
    }

    /// Upserts and returns the 200 body; panics with the error body otherwise.
    pub async fn upsert_ok(&self, body: Value) -> Value {
        let resp = self.upsert(body).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json body");
        assert_eq!(status, StatusCode::OK, "upsert failed: {body}");
        body
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post_json_as(path, body, &self.api_key).await
    }

    pub async fn post_json_as(&self, path: &str, body: &Value, key: &str) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut req = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.api_key)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.expect("send")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_as(path, &self.api_key).await
    }

    pub async fn get_as(&self, path: &str, key: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("send")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("send")
    }

    /// The contact object, or panics.
    pub async fn contact(&self, id: &str) -> Value {
        let resp = self.get(&format!("/api/v1/contacts/{id}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("json")
    }

    pub async fn contact_by_email(&self, email: &str) -> Response {
        self.http
            .get(self.url("/api/v1/contacts/"))
            .query(&[("email", email)])
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("send")
    }

    pub async fn fields(&self) -> Value {
        let resp = self.get("/api/v1/fields/").await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("json")
    }

    /// Another workspace with its own key, in the same deployment.
    pub async fn another_workspace(&self) -> (String, String) {
        let created = admin::create_workspace(&self.gateway_pool, "Other")
            .await
            .expect("create workspace");
        (created.workspace_id, created.api_key)
    }

    /// A gRPC client straight to contacts, for what the public API cannot do (e.g. a contact
    /// imported without an external_id).
    pub async fn contacts_grpc(&self) -> ContactsServiceClient<tonic::transport::Channel> {
        let addr = self.contacts_addr.expect("this test app runs contacts");
        ContactsServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect contacts")
    }

    /// A gRPC client straight to the mailer (wherever the gateway expects it), for what only
    /// automations do (SendEmail).
    pub async fn mailer_grpc(&self) -> MailerServiceClient<tonic::transport::Channel> {
        MailerServiceClient::connect(self.mailer_url.clone())
            .await
            .expect("connect mailer")
    }

    pub fn smtp(&self) -> &SmtpServer {
        self.smtp.as_deref().expect("this test app runs the mailer")
    }

    /// Waits until the SMTP server has received `n` messages in all; returns them.
    pub async fn mails(&self, n: usize) -> Vec<ReceivedMail> {
        self.smtp().wait_for(n, Duration::from_secs(20)).await
    }

    /// Creates a template through the API; returns the 201 body.
    pub async fn create_template(&self, body: Value) -> Value {
        let resp = self.post_json("/api/v1/templates/", &body).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json body");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "create template failed: {body}"
        );
        body
    }

    pub async fn import_without_external_id(&self, email: &str) -> String {
        self.contacts_grpc()
            .await
            .upsert(pb::UpsertRequest {
                workspace_id: self.workspace_id.clone(),
                contact: Some(pb::ContactInput {
                    email: email.into(),
                    ..Default::default()
                }),
                causation: None,
                return_contact: true,
            })
            .await
            .expect("import")
            .into_inner()
            .id
    }
}

/// Asserts the status and the error body shape; returns the `error` object.
pub async fn assert_error(
    resp: Response,
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) -> Value {
    let got = resp.status();
    let body: Value = resp.json().await.expect("error responses are JSON");
    assert_eq!(got, status, "body: {body}");
    let error = body
        .get("error")
        .cloned()
        .unwrap_or_else(|| panic!("no error object: {body}"));
    assert_eq!(error["code"], code, "body: {body}");
    assert_eq!(
        error["field"],
        field.map_or(Value::Null, |f| json!(f)),
        "body: {body}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    error
}

/// A template with every kind of variable: a default, a built-in, a custom field, the link.
pub fn welcome_template() -> Value {
    json!({
        "name": "Welcome",
        "subject": "Welcome, {{ first_name | default: \"there\" }}!",
        "html": "<p>Hi {{ first_name }}, you are on {{ plan }}.</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
        "text": null,
        "from": "Acme <hello@acme.test>",
        "reply_to": null
    })
}

/// The token of a received email's `List-Unsubscribe: <…/u/TOKEN>, <mailto:…>`.
pub fn token_from_header(header: &str) -> String {
    let start = header
        .find("/u/")
        .unwrap_or_else(|| panic!("no https link in List-Unsubscribe: {header}"))
        + 3;
    header[start..]
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn jane() -> Value {
    json!({
        "email": "jane@example.com", "external_id": "usr_12345", "first_name": "Jane",
        "last_name": "Doe", "subscribed": true,
        "custom_fields": {"plan": "free", "posts_generated": 0, "onboarding_completed": false,
                          "signup_date": "2026-11-20T10:00:00Z"}
    })
}
