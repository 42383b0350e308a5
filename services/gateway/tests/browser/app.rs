//! The whole system in-process, as `tests/it/helpers.rs` starts it with
//! `spawn_app_with_automations`: contacts, the mailer (delivering to the testkit SMTP server),
//! automations and the gateway, each with a fresh database, on one stream prefix. Only what the
//! browser tests need is here; the `it` helpers stay the reference. (The spawning cannot move to
//! `meisa-testkit`: the service crates' own tests depend on testkit, so testkit cannot depend on
//! them.)

use std::{sync::Arc, time::Duration};

use meisa_gateway::{Application, Config, admin, store};
use meisa_proto::contacts::{AddTagsRequest, contacts_service_client::ContactsServiceClient};
use meisa_testkit::{TestDb, smtp::SmtpServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The dashboard user every test signs in as.
pub const EMAIL: &str = "jane.admin@example.com";
pub const PASSWORD: &str = "correct horse battery";

pub struct App {
    pub base: String,
    pub api_key: String,
    pub smtp: Arc<SmtpServer>,
    workspace_id: String,
    contacts_url: String,
    http: reqwest::Client,
    stream_prefix: String,
    shutdown: CancellationToken,
    // Dropped after the services stop; dropping drops the databases.
    _dbs: Vec<TestDb>,
}

impl App {
    /// Every service, a workspace with an API key, and a dashboard user ([`EMAIL`]).
    pub async fn spawn() -> App {
        let prefix = meisa_testkit::unique_name("t");
        let shutdown = CancellationToken::new();

        let contacts_db = TestDb::create("contacts").await;
        meisa_contacts::migrate(&contacts_db.url)
            .await
            .expect("migrate contacts");
        let contacts = meisa_contacts::Application::build(meisa_contacts::Config::local(
            contacts_db.url.clone(),
            meisa_testkit::redis_url(),
            prefix.clone(),
        ))
        .await
        .expect("build contacts");
        let contacts_url = format!("http://{}", contacts.grpc_addr());
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = contacts.run(token).await;
        });

        let smtp = Arc::new(SmtpServer::start().await);
        let mailer_db = TestDb::create("mailer").await;
        meisa_mailer::migrate(&mailer_db.url)
            .await
            .expect("migrate mailer");
        let mut mailer_config = meisa_mailer::Config::local(&mailer_db.url);
        mailer_config.contacts_url = contacts_url.clone();
        mailer_config.smtp =
            Some(meisa_mailer::transport::SmtpUrl::parse(&smtp.url()).expect("smtp url"));
        mailer_config.public_url = "http://meisa.test".into();
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
        let mailer_url = format!("http://{}", mailer.grpc_addr());
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = mailer.run(token).await;
        });

        let automations_db = TestDb::create("automations").await;
        meisa_automations::migrate(&automations_db.url)
            .await
            .expect("migrate automations");
        let automations = meisa_automations::Application::build(meisa_automations::Config::local(
            automations_db.url.clone(),
            meisa_testkit::redis_url(),
            prefix.clone(),
            contacts_url.clone(),
            mailer_url.clone(),
        ))
        .await
        .expect("build automations");
        let automations_url = format!("http://{}", automations.grpc_addr());
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = automations.run(token).await;
        });

        let gateway_db = TestDb::create("gateway").await;
        meisa_gateway::migrate(&gateway_db.url)
            .await
            .expect("migrate gateway");
        let mut config = Config::local(gateway_db.url.clone(), contacts_url.clone());
        config.mailer.url = mailer_url;
        config.automations.url = automations_url;
        let gateway = Application::build(config).await.expect("build gateway");
        let base = format!("http://127.0.0.1:{}", gateway.port());
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = gateway.run(token).await;
        });

        let pool: PgPool = store::connect(&gateway_db.url, 2)
            .await
            .expect("gateway pool");
        let created = admin::create_workspace(&pool, "Test workspace")
            .await
            .expect("create workspace");
        admin::create_user(&pool, &created.workspace_id, EMAIL, Some(PASSWORD))
            .await
            .expect("create dashboard user");
        pool.close().await;

        App {
            base,
            api_key: created.api_key,
            smtp,
            workspace_id: created.workspace_id,
            contacts_url,
            http: reqwest::Client::new(),
            stream_prefix: prefix,
            shutdown,
            _dbs: vec![gateway_db, automations_db, mailer_db, contacts_db],
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs to the JSON API with the workspace's key; returns the body of the expected status.
    pub async fn post(&self, path: &str, body: Value, expect: StatusCode) -> Value {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .expect("send");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert_eq!(status, expect, "POST {path}: {text}");
        serde_json::from_str(&text).expect("a JSON body")
    }

    /// Upserts a contact through the public API; returns its id.
    pub async fn upsert(&self, contact: Value) -> String {
        let body = self
            .post("/api/v1/contacts/upsert/", contact, StatusCode::OK)
            .await;
        id_of(&body)
    }

    /// Creates a template through the public API; returns its id.
    pub async fn template(&self, template: Value) -> String {
        let body = self
            .post("/api/v1/templates/", template, StatusCode::CREATED)
            .await;
        id_of(&body)
    }

    /// What every page of [`crate::PAGES`] shows: a contact with fields, tags, a timeline, an
    /// email sent and a sequence under way; and a template.
    pub async fn seed(&self) -> Seeded {
        let template = self
            .template(json!({"name": "Welcome", "subject": "Hi {{ first_name }}",
                "html": "<p>Hello {{ first_name }}</p>", "text": null,
                "from": "Acme <hello@acme.test>", "reply_to": null}))
            .await;
        let sequence = self
            .post(
                "/api/v1/sequences/",
                json!({"name": "Onboarding", "steps": [
                    {"type": "email", "template_id": template},
                    {"type": "wait", "duration": "3d"},
                    {"type": "email", "template_id": template}
                ]}),
                StatusCode::CREATED,
            )
            .await;
        let automation = self
            .post(
                "/api/v1/automations/",
                json!({"name": "Enroll new", "enabled": true,
                "trigger": {"type": "contact_created"},
                "actions": [{"type": "enroll", "sequence_id": sequence["id"]}]}),
                StatusCode::CREATED,
            )
            .await;
        let jane = json!({"email": "jane@example.com", "external_id": "usr_12345",
            "first_name": "Jane", "last_name": "Doe", "subscribed": true,
            "custom_fields": {"plan": "free", "posts_generated": 0}});
        let contact = self.upsert(jane.clone()).await;
        let mut changed = jane;
        changed["custom_fields"]["plan"] = json!("pro");
        self.upsert(changed).await;
        // Tags have no public API yet: straight to contacts, as automations would.
        ContactsServiceClient::connect(self.contacts_url.clone())
            .await
            .expect("connect contacts")
            .add_tags(AddTagsRequest {
                workspace_id: self.workspace_id.clone(),
                id: contact.clone(),
                tags: vec!["beta".into()],
                causation: None,
            })
            .await
            .expect("add a tag");
        self.upsert(
            json!({"email": "bob@example.org", "external_id": "usr_67890",
            "first_name": "Bob", "subscribed": false}),
        )
        .await;
        // The contact page shows the email the sequence sent: wait until it went out.
        self.smtp.wait_for(1, Duration::from_secs(30)).await;
        let messages = self
            .http
            .get(format!("{}/api/v1/messages/", self.base))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("list messages")
            .json::<Value>()
            .await
            .expect("a JSON body");
        Seeded {
            contact,
            template,
            sequence: id_of(&sequence),
            automation: id_of(&automation),
            message: id_of(&messages["messages"][0]),
        }
    }
}

/// What the paths of [`crate::PAGES`] name.
pub struct Seeded {
    pub contact: String,
    pub template: String,
    pub sequence: String,
    pub automation: String,
    pub message: String,
}

fn id_of(body: &Value) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .to_string()
}

impl Drop for App {
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
