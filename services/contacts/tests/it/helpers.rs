use std::{collections::BTreeMap, time::Duration};

use meisa_contacts::{Application, Config, worker::relay::RELAY_LOCK_KEY};
use meisa_proto::{
    common::{self, value::Kind},
    contacts::{self as pb, contacts_service_client::ContactsServiceClient},
    events::ContactChanged,
};
use meisa_runtime::errors::{ApiError, ErrorCode};
use meisa_testkit::TestDb;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub const WS: &str = "ws_test";

pub struct TestApp {
    pub client: ContactsServiceClient<Channel>,
    pub db: TestDb,
    pub pool: sqlx::PgPool,
    pub prefix: String,
    pub config: Config,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    // The service's own warnings and errors, shown with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let db = TestDb::create("contacts").await;
    meisa_contacts::migrate(&db.url).await.expect("migrate");
    let prefix = meisa_testkit::unique_name("t");
    let mut config = Config::local(db.url.clone(), meisa_testkit::redis_url(), prefix.clone());
    tweak(&mut config);
    let pool = sqlx::PgPool::connect(&db.url).await.expect("pool");
    let (client, shutdown, handle) = start(config.clone()).await;
    TestApp {
        client,
        db,
        pool,
        prefix,
        config,
        shutdown,
        handle: Some(handle),
    }
}

async fn start(
    config: Config,
) -> (
    ContactsServiceClient<Channel>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let app = Application::build(config).await.expect("build");
    let addr = app.grpc_addr();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run(token).await.expect("run");
    });
    let client = ContactsServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    (client, shutdown, handle)
}

/// Another process of the same service on the same database (a Kubernetes replica).
pub struct Replica {
    pub client: ContactsServiceClient<Channel>,
    shutdown: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub async fn spawn_replica(&self, tweak: impl FnOnce(&mut Config)) -> Replica {
        let mut config = self.config.clone();
        tweak(&mut config);
        let (client, shutdown, _handle) = start(config).await;
        Replica { client, shutdown }
    }

    /// Stops the service gracefully and starts it again on the same database.
    pub async fn restart_with(&mut self, tweak: impl FnOnce(&mut Config)) {
        self.stop().await;
        tweak(&mut self.config);
        let (client, shutdown, handle) = start(self.config.clone()).await;
        self.client = client;
        self.shutdown = shutdown;
        self.handle = Some(handle);
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    pub async fn upsert(
        &self,
        ws: &str,
        input: pb::ContactInput,
    ) -> Result<pb::UpsertResponse, ApiError> {
        self.client
            .clone()
            .upsert(pb::UpsertRequest {
                workspace_id: ws.into(),
                contact: Some(input),
                causation: None,
                // No test reads it back from here: the hot path, as the gateway calls it.
                return_contact: false,
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::from_status(&s))
    }

    pub async fn get(&self, ws: &str, id: &str) -> Result<common::Contact, ApiError> {
        self.client
            .clone()
            .get_contact(pb::GetContactRequest {
                workspace_id: ws.into(),
                by: Some(pb::get_contact_request::By::Id(id.into())),
            })
            .await
            .map(|r| r.into_inner().contact.unwrap_or_default())
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Every event on every shard stream of this test, in stream order per shard.
    pub async fn stream_events(&self) -> Vec<ContactChanged> {
        let client = redis::Client::open(meisa_testkit::redis_url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let mut out = Vec::new();
        for shard in 0..self.config.shards {
            let key = meisa_stream::key(&self.prefix, shard);
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query_async(&mut conn)
                .await
                .expect("xrange");
            for entry in reply.ids {
                let bytes: Vec<u8> = entry.get("event").expect("event field");
                let seq: u64 = entry.get("seq").expect("seq field");
                let ev = ContactChanged::decode(bytes.as_slice()).expect("decode");
                assert_eq!(ev.seq, seq);
                assert_eq!(entry.id, format!("{seq}-0"));
                out.push(ev);
            }
        }
        out
    }

    /// Waits until the relay has published everything in the outbox.
    pub async fn wait_published(&self) {
        meisa_testkit::eventually(
            Duration::from_secs(10),
            "the relay to publish the outbox",
            || async {
                let pending: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                        .fetch_one(&self.pool)
                        .await
                        .expect("count");
                (pending == 0).then_some(())
            },
        )
        .await;
    }

    /// Whether a relay (of any process on this database) holds the lead.
    pub async fn relay_leads(&self) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND classid::bigint = ($1 >> 32) AND objid::bigint = ($1 & 4294967295)
               AND objsubid = 1)",
        )
        .bind(RELAY_LOCK_KEY)
        .fetch_one(&self.pool)
        .await
        .expect("pg_locks")
    }

    /// Waits until a relay took the lead: from then on, a commit is published promptly.
    pub async fn until_relay_leads(&self) {
        meisa_testkit::eventually(Duration::from_secs(10), "a relay to lead", || async {
            self.relay_leads().await.then_some(())
        })
        .await;
    }

    pub async fn events_for(&self, contact_id: &str) -> Vec<ContactChanged> {
        self.wait_published().await;
        let mut evs: Vec<_> = self
            .stream_events()
            .await
            .into_iter()
            .filter(|e| e.contact_id == contact_id)
            .collect();
        evs.sort_by_key(|e| e.seq);
        evs
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
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

/// A contact input the way a product backend sends one.
pub fn contact(email: &str, external_id: &str) -> pb::ContactInput {
    pb::ContactInput {
        email: email.into(),
        external_id: external_id.into(),
        ..Default::default()
    }
}

pub fn with_fields(mut c: pb::ContactInput, fields: &[(&str, Kind)]) -> pb::ContactInput {
    for (k, v) in fields {
        c.custom_fields.insert(
            (*k).to_string(),
            common::Value {
                kind: Some(v.clone()),
            },
        );
    }
    c
}

pub fn name(v: &str) -> Option<pb::StringPatch> {
    Some(pb::StringPatch {
        value: Some(v.into()),
    })
}

pub fn s(v: &str) -> Kind {
    Kind::StringValue(v.into())
}

pub fn fields_of(c: &common::Contact) -> BTreeMap<String, Option<Kind>> {
    c.custom_fields
        .iter()
        .map(|(k, v)| (k.clone(), v.kind.clone()))
        .collect()
}

pub fn assert_rejected(
    r: Result<impl std::fmt::Debug, ApiError>,
    code: ErrorCode,
    field: &str,
) -> ApiError {
    let e = r.expect_err("expected an error");
    assert_eq!(e.code, code, "{e:?}");
    assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
    e
}
