use std::net::SocketAddr;

use meisa_gateway::{Application, Config, admin, store};
use meisa_proto::contacts::{self as pb, contacts_service_client::ContactsServiceClient};
use meisa_testkit::TestDb;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A gateway on an ephemeral port in front of an in-process contacts service, each with a fresh
/// database, and a workspace with an API key ready to use.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub workspace_id: String,
    pub api_key: String,
    pub gateway_pool: PgPool,
    /// Where contacts listens (None when the test runs without it).
    pub contacts_addr: Option<SocketAddr>,
    pub stream_prefix: String,
    shutdown: CancellationToken,
    // Dropped after the services stop; dropping drops the databases.
    _gateway_db: TestDb,
    _contacts_db: Option<TestDb>,
}

pub async fn spawn_app() -> TestApp {
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
    start_gateway(Some(contacts_addr), Some(contacts_db), prefix, shutdown).await
}

/// A gateway whose contacts address has nothing listening on it.
pub async fn spawn_app_without_contacts() -> TestApp {
    start_gateway(
        None,
        None,
        meisa_testkit::unique_name("t"),
        CancellationToken::new(),
    )
    .await
}

async fn start_gateway(
    contacts_addr: Option<SocketAddr>,
    contacts_db: Option<TestDb>,
    stream_prefix: String,
    shutdown: CancellationToken,
) -> TestApp {
    let gateway_db = TestDb::create("gateway").await;
    meisa_gateway::migrate(&gateway_db.url)
        .await
        .expect("migrate gateway");
    let contacts_url = match contacts_addr {
        Some(addr) => format!("http://{addr}"),
        None => format!("http://127.0.0.1:{}", meisa_testkit::free_port()),
    };
    let app = Application::build(Config::local(gateway_db.url.clone(), contacts_url))
        .await
        .expect("build gateway");
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
        contacts_addr,
        stream_prefix,
        shutdown,
        _gateway_db: gateway_db,
        _contacts_db: contacts_db,
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

pub fn jane() -> Value {
    json!({
        "email": "jane@example.com", "external_id": "usr_12345", "first_name": "Jane",
        "last_name": "Doe", "subscribed": true,
        "custom_fields": {"plan": "free", "posts_generated": 0, "onboarding_completed": false,
                          "signup_date": "2026-11-20T10:00:00Z"}
    })
}
