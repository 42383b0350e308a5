//! DESIGN §4: every change lands on its shard stream once, in order, even across crashes.

use std::{process::Stdio, time::Duration};

use meisa_proto::{
    common::value::Kind,
    contacts::{self as pb, contacts_service_client::ContactsServiceClient},
    events::ChangeKind,
};

use meisa_proto::events::ContactChanged;
use prost::Message;

use crate::*;

#[tokio::test]
async fn an_event_carries_old_and_new_values_and_the_state_after() {
    let app = spawn_app().await;
    let a = app
        .upsert(
            WS,
            with_fields(contact("a@example.com", "u"), &[("plan", s("free"))]),
        )
        .await
        .unwrap();
    app.upsert(
        WS,
        with_fields(contact("a@example.com", "u"), &[("plan", s("pro"))]),
    )
    .await
    .unwrap();
    let events = app.events_for(&a.id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, ChangeKind::Created as i32);
    let update = &events[1];
    assert_eq!(update.kind, ChangeKind::Updated as i32);
    assert_eq!(update.version, 2);
    assert_eq!(update.workspace_id, WS);
    assert_eq!(update.changes.len(), 1);
    let ch = &update.changes[0];
    assert_eq!(ch.path, "custom_fields.plan");
    assert_eq!(
        ch.old.as_ref().and_then(|v| v.kind.clone()),
        Some(s("free"))
    );
    assert_eq!(ch.new.as_ref().and_then(|v| v.kind.clone()), Some(s("pro")));
    let state = update.state.as_ref().unwrap();
    assert_eq!(state.email, "a@example.com");
    assert_eq!(state.version, 2);
    assert!(!update.event_id.is_empty());
    assert!(update.occurred_at.is_some());
}

#[tokio::test]
async fn seq_is_contiguous_per_shard() {
    let app = spawn_app().await;
    let items: Vec<pb::ContactInput> = (0..200)
        .map(|i| contact(&format!("c{i}@example.com"), &format!("u{i}")))
        .collect();
    let r = app
        .client
        .clone()
        .batch_upsert(pb::BatchUpsertRequest {
            workspace_id: WS.into(),
            contacts: items,
            causation: None,
            return_contacts: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results.len(), 200);
    app.wait_published().await;
    let events = app.stream_events().await;
    assert_eq!(events.len(), 200);
    for shard in 0..app.config.shards {
        let seqs: Vec<u64> = events
            .iter()
            .filter(|e| e.shard == shard)
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "shard {shard}"
        );
    }
}

#[tokio::test]
async fn a_change_committed_while_the_relay_is_down_is_published_once_after_restart() {
    let mut app = spawn_app_with(|c| c.relay_enabled = false).await;
    let a = app.upsert(WS, contact("a@example.com", "u")).await.unwrap();
    // Facts, not a pause: the change is committed (the upsert answered), no relay leads, and its
    // outbox row was never numbered nor published.
    assert!(!app.relay_leads().await, "no relay runs");
    let (numbered, published): (i64, i64) =
        sqlx::query_as("SELECT count(seq), count(published_at) FROM outbox")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((numbered, published), (0, 0));
    assert!(
        app.stream_events().await.is_empty(),
        "nothing published without a relay"
    );

    app.restart_with(|c| c.relay_enabled = true).await;
    let events = app.events_for(&a.id).await;
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_relay_that_died_after_publishing_does_not_publish_twice() {
    let mut app = spawn_app().await;
    let a = app.upsert(WS, contact("a@example.com", "u")).await.unwrap();
    assert_eq!(app.events_for(&a.id).await.len(), 1);
    app.stop().await;
    // The crash window: the entry is in Redis but the row was never marked published.
    sqlx::query("UPDATE outbox SET published_at = NULL")
        .execute(&app.pool)
        .await
        .unwrap();

    app.restart_with(|_| {}).await;
    app.wait_published().await;
    app.upsert(WS, contact("b@example.com", "v")).await.unwrap();
    app.wait_published().await;
    assert_eq!(
        app.events_for(&a.id).await.len(),
        1,
        "published exactly once"
    );
    assert_eq!(app.stream_events().await.len(), 2);
}

/// Kills the real `contacts` process with SIGKILL after a commit it could not publish (Redis
/// unreachable), then restarts it: the event is published, once.
#[tokio::test]
async fn killing_the_process_between_commit_and_publish_loses_nothing() {
    let app = spawn_app_with(|c| c.relay_enabled = false).await;
    let spawn = |redis_url: String| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_contacts"));
        cmd.arg("serve")
            .env("DATABASE_URL", &app.db.url)
            .env("REDIS_URL", redis_url)
            .env("MEISA_GRPC_ADDR", "127.0.0.1:0")
            .env("MEISA_STREAM_PREFIX", &app.prefix)
            .env("MEISA_STREAM_SHARDS", app.config.shards.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        meisa_testkit::Service::spawn(cmd)
    };
    // A Redis URL where nothing listens: a port that was free a moment ago. Should another test
    // bind it meanwhile, it would not speak Redis either, so the relay still cannot publish.
    let mut service = spawn(format!("redis://127.0.0.1:{}", meisa_testkit::free_port())).await;
    let a = ContactsServiceClient::connect(service.url("grpc"))
        .await
        .expect("contacts started")
        .upsert(pb::UpsertRequest {
            workspace_id: WS.into(),
            contact: Some(contact("a@example.com", "u")),
            causation: None,
            return_contact: false,
        })
        .await
        .unwrap()
        .into_inner();
    // SIGKILL (what `Child::kill` sends on Unix): no shutdown path runs.
    service.kill();
    assert!(app.stream_events().await.is_empty());

    let service = spawn(meisa_testkit::redis_url()).await;
    let events = app.events_for(&a.id).await;
    drop(service);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, ChangeKind::Created as i32);
}

#[tokio::test]
async fn erasure_removes_the_contact_its_history_and_personal_data_in_the_outbox() {
    let app = spawn_app().await;
    let mut c = with_fields(contact("secret@example.com", "u"), &[("plan", s("free"))]);
    c.first_name = name("Secret");
    let a = app.upsert(WS, c).await.unwrap();
    app.upsert(
        WS,
        with_fields(
            contact("secret@example.com", "u"),
            &[("n", Kind::IntValue(1))],
        ),
    )
    .await
    .unwrap();
    app.client
        .clone()
        .delete_contact(pb::DeleteContactRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
            causation: None,
        })
        .await
        .unwrap();
    assert_eq!(
        app.get(WS, &a.id).await.unwrap_err().code,
        meisa_runtime::errors::ErrorCode::NotFound
    );
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_changes")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(history, 0);
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for p in payloads {
        assert!(
            !String::from_utf8_lossy(&p).contains("secret@example.com"),
            "outbox keeps no personal data"
        );
        assert!(!String::from_utf8_lossy(&p).contains("Secret"));
    }
    let events = app.events_for(&a.id).await;
    let last = events.last().unwrap();
    assert_eq!((last.kind, last.version), (ChangeKind::Deleted as i32, 3));
    assert!(last.state.is_none());
    // The address can sign up again, as a new contact.
    assert!(
        app.upsert(WS, contact("secret@example.com", "u"))
            .await
            .unwrap()
            .created
    );
}

/// A payload that cannot be decoded may still hold personal data: erasure replaces it by an event
/// made of its row's columns, never skips it.
#[tokio::test]
async fn erasure_replaces_an_outbox_payload_it_cannot_decode() {
    let app = spawn_app_with(|c| c.relay_enabled = false).await;
    let mut c = contact("unreadable@example.com", "u");
    c.first_name = name("Unreadable");
    let a = app.upsert(WS, c).await.unwrap();
    let (shard, event_id): (i32, uuid::Uuid) =
        sqlx::query_as("SELECT shard, event_id FROM outbox WHERE contact_id = $1")
            .bind(&a.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // Not a ContactChanged (0xff is no valid field key), with personal data in it.
    let mut garbage = vec![0xff, 0xff, 0xff];
    garbage.extend_from_slice(b"unreadable@example.com Unreadable");
    assert!(ContactChanged::decode(garbage.as_slice()).is_err());
    let broken_id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (shard, event_id, workspace_id, contact_id, payload)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(shard)
    .bind(broken_id)
    .bind(WS)
    .bind(&a.id)
    .bind(&garbage)
    .execute(&app.pool)
    .await
    .unwrap();

    app.client
        .clone()
        .delete_contact(pb::DeleteContactRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
            causation: None,
        })
        .await
        .unwrap();

    let rows: Vec<(uuid::Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT event_id, payload FROM outbox WHERE contact_id = $1 ORDER BY id")
            .bind(&a.id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3, "created, the broken row, deleted: {rows:?}");
    for (_, payload) in &rows {
        let text = String::from_utf8_lossy(payload);
        assert!(!text.contains("unreadable@example.com"), "{text}");
        assert!(!text.contains("Unreadable"), "{text}");
    }
    assert_eq!(rows[0].0, event_id);
    let (id, payload) = &rows[1];
    assert_eq!(*id, broken_id);
    let replaced = ContactChanged::decode(payload.as_slice()).expect("the row decodes now");
    assert_eq!(replaced.event_id, broken_id.to_string());
    assert_eq!(
        (replaced.workspace_id.as_str(), replaced.contact_id.as_str()),
        (WS, a.id.as_str())
    );
    assert_eq!(i64::from(replaced.shard), i64::from(shard));
    assert_eq!(replaced.kind, ChangeKind::Unspecified as i32);
    assert!(replaced.state.is_none() && replaced.changes.is_empty());
    assert!(replaced.occurred_at.is_some());
}

#[tokio::test]
async fn published_rows_are_pruned_after_retention_and_seq_continues() {
    let app = spawn_app_with(|c| {
        c.shards = 1;
        c.outbox_retention = Duration::from_millis(300);
    })
    .await;
    app.upsert(WS, contact("a@example.com", "a")).await.unwrap();
    app.wait_published().await;
    // Time itself is the subject here: the first row must outlive the retention window.
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.upsert(WS, contact("b@example.com", "b")).await.unwrap();
    app.wait_published().await;
    let mut left = 2;
    for _ in 0..100 {
        left = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if left == 1 {
            break;
        }
        app.upsert(WS, contact("b@example.com", "b")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 1, "the old row is pruned, the recent one kept");
    app.upsert(WS, contact("c@example.com", "c")).await.unwrap();
    app.wait_published().await;
    let seqs: Vec<u64> = app.stream_events().await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "numbering survives pruning");
}

/// With a 30s poll, only a wake-up explains a prompt publish.
async fn published_within(app: &TestApp, contact_id: &str, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if app
            .stream_events()
            .await
            .iter()
            .any(|e| e.contact_id == contact_id)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn the_leading_relay_is_woken_in_process_after_commit() {
    let app = spawn_app_with(|c| c.relay_poll_interval = Duration::from_secs(30)).await;
    app.until_relay_leads().await;
    let a = app.upsert(WS, contact("a@example.com", "a")).await.unwrap();
    assert!(published_within(&app, &a.id, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_replica_whose_relay_does_not_lead_wakes_the_leader_with_notify() {
    let app = spawn_app_with(|c| c.relay_poll_interval = Duration::from_secs(30)).await;
    app.until_relay_leads().await;
    let replica = app.spawn_replica(|c| c.relay_enabled = false).await;
    let r = replica
        .client
        .clone()
        .upsert(pb::UpsertRequest {
            workspace_id: WS.into(),
            contact: Some(contact("b@example.com", "b")),
            causation: None,
            return_contact: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(published_within(&app, &r.id, Duration::from_secs(3)).await);
}
