//! The publish and consumer-group halves against a real Redis (`MEISA_TEST_REDIS`, default
//! `redis://127.0.0.1:6379`), each test under its own key prefix.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use meisa_proto::events::ContactChanged;
use meisa_stream::{DeadLetterPolicy, Group, Published, Publisher, Verdict};
use prost::Message;

async fn conn() -> redis::aio::MultiplexedConnection {
    let url = std::env::var("MEISA_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("tests need Redis (run `make test`, which starts it)")
}

fn prefix() -> String {
    format!(
        "t_stream_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn clean(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let _: () = redis::cmd("DEL")
        .arg(meisa_stream::key(prefix, 0))
        .query_async(conn)
        .await
        .expect("DEL");
}

#[tokio::test]
async fn publishing_twice_adds_once_and_a_group_reads_acks_and_catches_up() {
    let mut c = conn().await;
    let prefix = prefix();
    let events: Vec<Vec<u8>> = (1..=3)
        .map(|v| {
            ContactChanged {
                event_id: format!("e{v}"),
                version: v,
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect();
    let entries: Vec<Published> = events
        .iter()
        .enumerate()
        .map(|(i, e)| Published {
            seq: i as u64 + 1,
            stored: e,
        })
        .collect();
    let publisher = Publisher::new(&prefix, 1000);
    assert_eq!(publisher.publish(&mut c, 0, &entries).await.unwrap(), 3);
    // A relay that died before marking its rows published sends them again.
    assert_eq!(publisher.publish(&mut c, 0, &entries).await.unwrap(), 0);

    let group = Group::new(&prefix, 0, "g", "me");
    group.create(&mut c).await.unwrap();
    group.create(&mut c).await.unwrap();
    let read = group
        .read_new(&mut c, 10, Duration::from_millis(10))
        .await
        .unwrap();
    let seqs: Vec<u64> = read.iter().filter_map(|e| e.seq()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let first = read[0].body.as_ref().unwrap();
    assert_eq!(
        first.event.seq, 1,
        "the event carries the seq it was published at"
    );
    assert_eq!(first.event.event_id, "e1");
    assert!(!group.state(&mut c).await.unwrap().unwrap().is_caught_up());

    // Unacknowledged entries come back as pending, delivered once so far.
    let pending = group.read_pending(&mut c, 10).await.unwrap();
    assert_eq!(pending.len(), 3);
    let counts = group.delivery_counts(&mut c, &pending).await.unwrap();
    assert_eq!(counts, [2, 2, 2]);
    let policy = DeadLetterPolicy { max_deliveries: 1 };
    assert!(matches!(
        policy.judge(&pending[0], counts[0]),
        Verdict::DeadLetter(_)
    ));
    assert_eq!(
        DeadLetterPolicy { max_deliveries: 5 }.judge(&pending[0], 2),
        Verdict::Apply
    );

    group
        .ack(&mut c, read.iter().map(|e| e.id.as_str()))
        .await
        .unwrap();
    assert!(group.state(&mut c).await.unwrap().unwrap().is_caught_up());
    clean(&mut c, &prefix).await;
}

#[tokio::test]
async fn a_consumer_takes_over_what_a_dead_one_left_pending() {
    let mut c = conn().await;
    let prefix = prefix();
    let e = ContactChanged::default().encode_to_vec();
    Publisher::new(&prefix, 1000)
        .publish(&mut c, 0, &[Published { seq: 1, stored: &e }])
        .await
        .unwrap();
    let dead = Group::new(&prefix, 0, "g", "dead");
    dead.create(&mut c).await.unwrap();
    assert_eq!(
        dead.read_new(&mut c, 10, Duration::from_millis(10))
            .await
            .unwrap()
            .len(),
        1
    );

    let heir = Group::new(&prefix, 0, "g", "heir");
    assert_eq!(heir.reclaim(&mut c, Duration::ZERO, 10).await.unwrap(), 1);
    let pending = heir.read_pending(&mut c, 10).await.unwrap();
    assert_eq!(
        pending.iter().filter_map(|e| e.seq()).collect::<Vec<_>>(),
        [1]
    );
    clean(&mut c, &prefix).await;
}

#[tokio::test]
async fn a_group_on_a_stream_nobody_published_to_has_no_state() {
    let mut c = conn().await;
    let group = Group::new(&prefix(), 0, "g", "me");
    assert_eq!(group.state(&mut c).await.unwrap(), None);
}
