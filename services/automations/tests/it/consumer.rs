//! The change consumer against the real stream: duplicates have their effects once, a gap in
//! `seq` is replayed from the contacts service, and an unreadable entry goes to the dead letters.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

fn redis() -> redis::Client {
    redis::Client::open(meisa_testkit::redis_url()).expect("redis url")
}

async fn conn() -> redis::aio::MultiplexedConnection {
    redis()
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

/// The group's delivery cursor and pending count on the stream.
async fn group_state(key: &str) -> (String, usize) {
    let mut c = conn().await;
    let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("xinfo groups");
    let g = info
        .groups
        .into_iter()
        .find(|g| g.name == "automations")
        .expect("the automations group exists");
    (g.last_delivered_id, g.pending)
}

/// Waits until the group has delivered and acknowledged everything up to `id`.
async fn consumed(key: &str, id: &str) {
    let key = key.to_string();
    let id = id.to_string();
    eventually(
        Duration::from_secs(15),
        "the entry to be consumed and acked",
        || {
            let (key, id) = (key.clone(), id.clone());
            async move {
                let (last, pending) = group_state(&key).await;
                (last == id && pending == 0).then_some(())
            }
        },
    )
    .await;
}

async fn entries(key: &str) -> Vec<redis::streams::StreamId> {
    let mut c = conn().await;
    let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .expect("xrange");
    r.ids
}

async fn tag_automation(st: &Stack) -> String {
    // reentry always, so that a duplicate that got through would fire again.
    st.automation(json!({"name": "Welcome tag", "enabled": true,
        "trigger": {"type": "contact_created"},
        "actions": [{"type": "add_tag", "tag": "welcomed"}],
        "reentry": "always"}))
        .await
}

async fn triggered(st: &Stack, aut: &str, n: u64) {
    eventually(Duration::from_secs(15), &format!("{n} firings"), || async {
        (st.automation_stats(aut).await.triggered == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_event_delivered_twice_has_its_effects_once() {
    let mut st = stack_with(Options {
        shards: 1,
        ..Options::default()
    })
    .await;
    let key = format!("{}:changes:0", st.prefix);
    let aut = tag_automation(&st).await;
    st.upsert("jane@example.com", &[]).await;
    triggered(&st, &aut, 1).await;

    let original = entries(&key).await.remove(0);
    let seq: String = original.get("seq").expect("seq");
    let event: Vec<u8> = original.get("event").expect("event");
    // A copy under a new stream id (a producer retry): same seq, same event.
    let mut c = conn().await;
    let copy: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("seq")
        .arg(&seq)
        .arg("event")
        .arg(event.as_slice())
        .query_async(&mut c)
        .await
        .expect("xadd");
    consumed(&key, &copy).await;
    st.quiesce().await;
    assert_eq!(st.automation_stats(&aut).await.triggered, 1);

    // The shard's progress lost (as if the seq check could not help): the event id still stops it.
    let pool = st.automations_pool().await;
    sqlx::query("UPDATE consumer_shards SET last_seq = 0")
        .execute(&pool)
        .await
        .expect("reset progress");
    let copy: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("seq")
        .arg(&seq)
        .arg("event")
        .arg(event.as_slice())
        .query_async(&mut c)
        .await
        .expect("xadd");
    consumed(&key, &copy).await;
    st.quiesce().await;
    assert_eq!(st.automation_stats(&aut).await.triggered, 1);
    let last: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM consumer_shards")
        .fetch_one(&pool)
        .await
        .expect("progress");
    assert_eq!(last, Some(1));

    // A consumer that died holding a copy: the entry is pending for it until the next reader of
    // the shard claims it (XAUTOCLAIM) and delivers it again.
    st.stop_automations().await;
    let held: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("seq")
        .arg(&seq)
        .arg("event")
        .arg(event.as_slice())
        .query_async(&mut c)
        .await
        .expect("xadd");
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("automations")
        .arg("ghost")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query_async(&mut c)
        .await
        .expect("xreadgroup as ghost");
    assert_eq!(group_state(&key).await, (held.clone(), 1));
    st.start_automations().await;
    consumed(&key, &held).await;
    st.quiesce().await;
    assert_eq!(st.automation_stats(&aut).await.triggered, 1);
}

#[tokio::test]
async fn a_gap_in_seq_is_replayed_from_the_contacts_service() {
    let mut st = stack_with(Options {
        shards: 1,
        ..Options::default()
    })
    .await;
    let key = format!("{}:changes:0", st.prefix);
    let aut = tag_automation(&st).await;
    let a = st.upsert("a@example.com", &[]).await;
    triggered(&st, &aut, 1).await;
    // a's creation is seq 1 and its tag seq 2.
    eventually(
        Duration::from_secs(10),
        "a's tag change on the stream",
        || async {
            let tagged = st
                .contact(&a.id)
                .await
                .tags
                .contains(&"welcomed".to_string());
            (tagged && entries(&key).await.len() == 2).then_some(())
        },
    )
    .await;

    st.stop_automations().await;
    let b = st.upsert("b@example.com", &[]).await;
    let c = st.upsert("c@example.com", &[]).await;
    eventually(
        Duration::from_secs(10),
        "seq 3 and 4 on the stream",
        || async { (entries(&key).await.len() == 4).then_some(()) },
    )
    .await;
    // Redis loses them.
    let mut r = conn().await;
    let deleted: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg("3-0")
        .arg("4-0")
        .query_async(&mut r)
        .await
        .expect("xdel");
    assert_eq!(deleted, 2);
    st.upsert("d@example.com", &[]).await;
    eventually(Duration::from_secs(10), "seq 5 on the stream", || async {
        entries(&key)
            .await
            .iter()
            .any(|e| e.id == "5-0")
            .then_some(())
    })
    .await;

    st.start_automations().await;
    triggered(&st, &aut, 4).await;
    for id in [&b.id, &c.id] {
        eventually(
            Duration::from_secs(10),
            "the replayed contacts to be tagged",
            || async {
                st.contact(id)
                    .await
                    .tags
                    .contains(&"welcomed".to_string())
                    .then_some(())
            },
        )
        .await;
    }
    let log = std::fs::read_to_string(st.automations_log()).unwrap_or_default();
    assert!(
        log.contains("gap in the change stream"),
        "the replay is logged"
    );
}

#[tokio::test]
async fn an_unreadable_entry_goes_to_the_dead_letters_and_the_stream_moves_on() {
    let st = stack_with(Options {
        shards: 1,
        ..Options::default()
    })
    .await;
    let key = format!("{}:changes:0", st.prefix);
    let aut = tag_automation(&st).await;
    let a = st.upsert("a@example.com", &[]).await;
    triggered(&st, &aut, 1).await;
    // The tag is a change too: wait until it is on the stream (seq 2).
    eventually(
        Duration::from_secs(10),
        "the tag change on the stream",
        || async {
            let tagged = st
                .contact(&a.id)
                .await
                .tags
                .contains(&"welcomed".to_string());
            (tagged && entries(&key).await.len() == 2).then_some(())
        },
    )
    .await;

    // A corrupt entry where seq 3 belongs (stream id 3-0, as the relay would write it).
    let mut c = conn().await;
    let bad: String = redis::cmd("XADD")
        .arg(&key)
        .arg("3-0")
        .arg("seq")
        .arg("3")
        .arg("event")
        .arg(&b"not a protobuf \xff\xff"[..])
        .query_async(&mut c)
        .await
        .expect("xadd");
    consumed(&key, &bad).await;
    let pool = st.automations_pool().await;
    let (n, error): (i64, String) = sqlx::query_as("SELECT count(*), max(error) FROM dead_letters")
        .fetch_one(&pool)
        .await
        .expect("dead letters");
    assert_eq!(n, 1);
    assert!(error.contains("ContactChanged"), "{error}");
    // The real seq 3 cannot reach the stream any more (its id is taken); seq 4 shows the gap and
    // seq 3 is replayed from the contacts service.
    let b = st.upsert("b@example.com", &[]).await;
    st.upsert("c@example.com", &[]).await;
    triggered(&st, &aut, 3).await;
    assert!(
        st.contact(&b.id)
            .await
            .tags
            .contains(&"welcomed".to_string())
    );
    let log = std::fs::read_to_string(st.automations_log()).unwrap_or_default();
    assert!(log.contains("dead letters"));
}
