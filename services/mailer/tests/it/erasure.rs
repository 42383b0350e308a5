//! Erasure on the change stream, against real Redis and Postgres: a `deleted` event removes the
//! contact's messages, `.eml` files and unsubscribe links (whoever deleted the contact), leaves
//! every other contact's alone, survives redelivery, a gap and Redis being down. Each test waits
//! until group `mailer` has acknowledged every entry before it asserts what did (not) happen.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use meisa_proto::{
    common::Contact,
    contacts as cpb,
    events::{ChangeKind, ContactChanged},
    mailer::{self as pb, MessageStatus},
};
use meisa_stream::{Group, Published, Publisher};
use meisa_testkit::{eventually, redis_url, streams_caught_up, until_streams_caught_up};
use prost::Message;
use redis::aio::MultiplexedConnection;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

const SHARDS: u32 = 2;
const T: Duration = Duration::from_secs(30);

async fn redis() -> MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("tests need Redis (run `make test`, which starts it)")
}

/// What the contacts relay would publish when `contact_id` is erased.
fn deleted(contact_id: &str) -> ContactChanged {
    ContactChanged {
        event_id: meisa_testkit::unique_name("ev"),
        workspace_id: WS.into(),
        contact_id: contact_id.into(),
        version: 2,
        kind: ChangeKind::Deleted as i32,
        ..Default::default()
    }
}

async fn publish(prefix: &str, shard: u32, seq: u64, event: &ContactChanged) {
    let stored = event.encode_to_vec();
    let added = Publisher::new(prefix, 1000)
        .publish(
            &mut redis().await,
            shard,
            &[Published {
                seq,
                stored: &stored,
            }],
        )
        .await
        .expect("publish");
    assert_eq!(added, 1);
}

/// One delivered message of a contact, and the traces of it that erasure must remove.
struct Sent {
    message: pb::Message,
    eml: PathBuf,
    token: String,
}

async fn sent(app: &TestApp, template_id: &str, key: &str, contact: Contact) -> Sent {
    let m = app
        .send(key, contact, template_id)
        .await
        .unwrap()
        .message
        .unwrap();
    let message = app.wait_status(&m.id, MessageStatus::Sent, T).await;
    let eml = app.config.data_dir.join(format!("{}.eml", m.id));
    let raw = std::fs::read_to_string(&eml).expect("eml written");
    let token = token_from_header(
        raw.lines()
            .find(|l| l.starts_with("List-Unsubscribe:"))
            .expect("header"),
    );
    Sent {
        message,
        eml,
        token,
    }
}

async fn messages_of(app: &TestApp, contact_id: &str) -> Vec<pb::Message> {
    app.list_messages(pb::ListMessagesRequest {
        contact_id: contact_id.into(),
        ..Default::default()
    })
    .await
    .messages
}

async fn assert_erased(app: &TestApp, s: &Sent) {
    let mut client = app.client.clone();
    let err = client
        .get_message(pb::GetMessageRequest {
            workspace_id: WS.into(),
            id: s.message.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(messages_of(app, &s.message.contact_id).await.is_empty());
    assert!(!s.eml.exists(), "the .eml file is gone");
    let err = client
        .describe_unsubscribe_token(pb::DescribeUnsubscribeTokenRequest {
            token: s.token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::NotFound,
        "the link no longer works"
    );
}

async fn assert_kept(app: &TestApp, s: &Sent) {
    assert_eq!(
        app.message(&s.message.id).await.contact_id,
        s.message.contact_id
    );
    assert!(s.eml.exists(), "another contact's .eml file stays");
    let described = app
        .client
        .clone()
        .describe_unsubscribe_token(pb::DescribeUnsubscribeTokenRequest {
            token: s.token.clone(),
        })
        .await
        .expect("another contact's link still works")
        .into_inner();
    assert_eq!(described.contact_id, s.message.contact_id);
}

async fn dead_letters(app: &TestApp) -> Vec<(Option<String>, String)> {
    let pool = app.pool().await;
    let rows = sqlx::query_as("SELECT stream_id, error FROM dead_letters ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

async fn position(app: &TestApp, stream: &str) -> Option<i64> {
    let pool = app.pool().await;
    let p = sqlx::query_scalar("SELECT last_seq FROM stream_positions WHERE stream = $1")
        .bind(stream)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    p
}

/// A mailer reading the streams under a new prefix from `redis_url`, with two contacts that have
/// one delivered message each: ct_1, which the test erases, and ct_2, which stays.
async fn two_contacts(redis_url: &str) -> (String, TestApp, Sent, Sent) {
    let prefix = meisa_testkit::unique_name("me");
    let app = spawn_app_with(None, with_stream(redis_url, &prefix, SHARDS)).await;
    let t = app
        .create_template(template("Hi", "<p>Hi {{ first_name }}</p>"))
        .await
        .unwrap();
    let erased = sent(&app, &t.id, "job-1", contact("ct_1", "a@b.test", Some("A"))).await;
    let other = sent(&app, &t.id, "job-2", contact("ct_2", "c@d.test", Some("C"))).await;
    (prefix, app, erased, other)
}

async fn caught_up(prefix: &str, shards: u32) {
    until_streams_caught_up(prefix, shards, "mailer", T).await;
}

#[tokio::test]
async fn a_deleted_event_erases_the_contacts_messages_files_and_links() {
    let (prefix, app, erased, other) = two_contacts(&redis_url()).await;
    assert_eq!(messages_of(&app, "ct_1").await.len(), 1);

    publish(&prefix, 1, 1, &deleted("ct_1")).await;
    caught_up(&prefix, SHARDS).await;

    // The one message of ct_1 is gone (the old EraseContact answered messages_deleted = 1).
    assert_erased(&app, &erased).await;
    // Other contacts are untouched.
    assert_kept(&app, &other).await;
    assert!(dead_letters(&app).await.is_empty());
    let _ = std::fs::remove_dir_all(&app.config.data_dir);
    meisa_testkit::clean_redis(&prefix).await;
}

#[tokio::test]
async fn a_redelivered_deleted_event_is_harmless() {
    let (prefix, mut app, erased, other) = two_contacts(&redis_url()).await;
    let event = deleted("ct_1");
    publish(&prefix, 0, 1, &event).await;
    caught_up(&prefix, SHARDS).await;
    assert_erased(&app, &erased).await;

    // A copy of the same event at a later seq (a relay retry, a replay).
    publish(&prefix, 0, 2, &event).await;
    caught_up(&prefix, SHARDS).await;

    // A consumer that read the next copy and died before acknowledging it: the restarted mailer
    // takes the pending entry over when it takes the shard.
    app.stop().await;
    publish(&prefix, 0, 3, &event).await;
    let dead = Group::new(&prefix, 0, "mailer", "dead");
    let taken = dead
        .read_new(&mut redis().await, 10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert!(!streams_caught_up(&prefix, SHARDS, "mailer").await);
    app.restart().await;
    caught_up(&prefix, SHARDS).await;

    assert_erased(&app, &erased).await;
    assert_kept(&app, &other).await;
    assert!(dead_letters(&app).await.is_empty());
    assert_eq!(
        position(&app, &meisa_stream::key(&prefix, 0)).await,
        Some(3)
    );
    let _ = std::fs::remove_dir_all(&app.config.data_dir);
    meisa_testkit::clean_redis(&prefix).await;
}

#[tokio::test]
async fn an_undecodable_entry_is_dead_lettered_and_acknowledged() {
    let (prefix, app, one, other) = two_contacts(&redis_url()).await;
    let _: String = redis::cmd("XADD")
        .arg(meisa_stream::key(&prefix, 1))
        .arg("1-0")
        .arg("seq")
        .arg("1")
        .arg("event")
        .arg(vec![0xffu8, 0xff, 0xff])
        .query_async(&mut redis().await)
        .await
        .unwrap();
    caught_up(&prefix, SHARDS).await;

    let dead = dead_letters(&app).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0.as_deref(), Some("1-0"));
    assert!(dead[0].1.contains("ContactChanged"), "{}", dead[0].1);
    // Its seq is not taken as handled: the next entry shows the gap, replayed from contacts.
    assert_eq!(
        position(&app, &meisa_stream::key(&prefix, 1)).await,
        Some(0)
    );
    assert_kept(&app, &one).await;
    assert_kept(&app, &other).await;
    let _ = std::fs::remove_dir_all(&app.config.data_dir);
    meisa_testkit::clean_redis(&prefix).await;
}

async fn upsert(
    client: &mut cpb::contacts_service_client::ContactsServiceClient<tonic::transport::Channel>,
    external_id: &str,
    first_name: &str,
) -> Contact {
    client
        .upsert(cpb::UpsertRequest {
            workspace_id: WS.into(),
            contact: Some(cpb::ContactInput {
                email: format!("{external_id}@example.com"),
                external_id: external_id.into(),
                first_name: Some(cpb::StringPatch {
                    value: Some(first_name.into()),
                }),
                ..Default::default()
            }),
            causation: None,
            return_contact: true,
        })
        .await
        .expect("upsert")
        .into_inner()
        .contact
        .expect("contact")
}

/// The id of the entry on `key` whose event satisfies `pred`, once the relay has published it.
async fn published(key: &str, pred: impl Fn(&ContactChanged) -> bool) -> String {
    eventually(T, &format!("an entry on {key}"), || async {
        let range: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .query_async(&mut redis().await)
            .await
            .ok()?;
        range.ids.into_iter().find_map(|e| {
            let bytes: Vec<u8> = redis::from_redis_value(e.map.get("event")?.clone()).ok()?;
            let event = ContactChanged::decode(bytes.as_slice()).ok()?;
            pred(&event).then_some(e.id)
        })
    })
    .await
}

#[tokio::test]
async fn a_deletion_redis_lost_is_replayed_from_contacts() {
    let contacts = spawn_contacts().await;
    let mut cc = contacts.client.clone();
    let (url, prefix, shards) = (
        contacts.url.clone(),
        contacts.prefix.clone(),
        contacts.shards,
    );
    let mut app = spawn_app_with(None, |c| {
        c.contacts_url = url;
        with_stream(&redis_url(), &prefix, shards)(c);
    })
    .await;
    let t = app
        .create_template(template("Hi", "<p>Hi {{ first_name }}</p>"))
        .await
        .unwrap();
    let a = upsert(&mut cc, "usr_a", "Ann").await;
    let shard = meisa_contacts::store::shard_of(WS, &a.id, shards);
    // Another contact on A's shard, whose next change comes after the lost one.
    let mut d = None;
    for i in 0..200 {
        let c = upsert(&mut cc, &format!("usr_d{i}"), "Dee").await;
        if meisa_contacts::store::shard_of(WS, &c.id, shards) == shard {
            d = Some(c);
            break;
        }
    }
    let d = d.expect("a contact on the same shard");
    let erased = sent(&app, &t.id, "job-a", a.clone()).await;
    let kept = sent(&app, &t.id, "job-d", d.clone()).await;
    caught_up(&prefix, shards).await;

    // Redis loses the deletion: published while the mailer is down, gone before it reads it.
    app.stop().await;
    cc.delete_contact(cpb::DeleteContactRequest {
        workspace_id: WS.into(),
        id: a.id.clone(),
        causation: None,
    })
    .await
    .expect("delete at contacts");
    let key = meisa_stream::key(&prefix, shard);
    let lost = published(&key, |e| {
        e.contact_id == a.id && e.kind == ChangeKind::Deleted as i32
    })
    .await;
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg(&lost)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    upsert(&mut cc, &d.external_id, "Dee Dee").await;
    published(&key, |e| {
        e.contact_id == d.id && e.kind == ChangeKind::Updated as i32
    })
    .await;

    app.restart().await;
    caught_up(&prefix, shards).await;
    assert_erased(&app, &erased).await;
    assert_kept(&app, &kept).await;
    assert!(dead_letters(&app).await.is_empty());
    let _ = std::fs::remove_dir_all(&app.config.data_dir);
    meisa_testkit::clean_redis(&prefix).await;
}

/// A TCP proxy to the test Redis that refuses service (closes every connection) until `up`.
async fn redis_proxy(up: Arc<AtomicBool>) -> String {
    let target = url::Url::parse(&redis_url()).unwrap();
    let target = format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(6379)
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !up.load(Ordering::SeqCst) {
                continue;
            }
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    format!("redis://{addr}")
}

#[tokio::test]
async fn started_while_redis_is_down_it_serves_and_erases_when_redis_returns() {
    let up = Arc::new(AtomicBool::new(false));
    let proxy = redis_proxy(up.clone()).await;
    // gRPC and delivery work without Redis.
    let (prefix, app, erased, other) = two_contacts(&proxy).await;
    publish(&prefix, 1, 1, &deleted("ct_1")).await;
    assert!(!streams_caught_up(&prefix, SHARDS, "mailer").await);

    up.store(true, Ordering::SeqCst);
    caught_up(&prefix, SHARDS).await;
    assert_erased(&app, &erased).await;
    assert_kept(&app, &other).await;
    let _ = std::fs::remove_dir_all(&app.config.data_dir);
    meisa_testkit::clean_redis(&prefix).await;
}

/// How many shards each replica's ownership session holds, largest first.
async fn shares(app: &TestApp) -> Vec<i64> {
    let pool = app.pool().await;
    let counts = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid = x'6d61696d'::bigint::oid
         GROUP BY pid ORDER BY 1 DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    counts
}

#[tokio::test]
async fn replicas_share_the_shards_and_take_over_from_one_that_stops() {
    const SHARDS: u32 = 4;
    let prefix = meisa_testkit::unique_name("me");
    let app = spawn_app_with(None, with_stream(&redis_url(), &prefix, SHARDS)).await;
    let mut second_config = app.config.clone();
    if let Some(s) = second_config.stream.as_mut() {
        s.consumer = "second".into();
    }
    let second = meisa_mailer::Application::build(second_config)
        .await
        .unwrap();
    let stop_second = tokio_util::sync::CancellationToken::new();
    let second = tokio::spawn(second.run(stop_second.clone()));
    eventually(T, "two replicas holding two shards each", || async {
        (shares(&app).await == [2, 2]).then_some(())
    })
    .await;

    let t = app
        .create_template(template("Hi", "<p>Hi {{ first_name }}</p>"))
        .await
        .unwrap();
    let mut all = Vec::new();
    for i in 0..5 {
        let id = format!("ct_{i}");
        let email = format!("u{i}@b.test");
        all.push(
            sent(
                &app,
                &t.id,
                &format!("job-{i}"),
                contact(&id, &email, Some("A")),
            )
            .await,
        );
    }
    for shard in 0..SHARDS {
        publish(&prefix, shard, 1, &deleted(&format!("ct_{shard}"))).await;
    }
    caught_up(&prefix, SHARDS).await;
    for s in &all[..4] {
        assert_erased(&app, s).await;
    }

    stop_second.cancel();
    second.await.unwrap().unwrap();
    eventually(T, "the remaining replica holding every shard", || async {
        (shares(&app).await == [4]).then_some(())
    })
    .await;
    for shard in 0..SHARDS {
        publish(&prefix, shard, 2, &deleted("ct_4")).await;
    }
    caught_up(&prefix, SHARDS).await;
    assert_erased(&app, &all[4]).await;
    assert!(dead_letters(&app).await.is_empty());
    let _ = std::fs::remove_dir_all(&app.config.data_dir);
    meisa_testkit::clean_redis(&prefix).await;
}
