//! Erasure (DESIGN §2, issue 7 item 6): contacts' DeleteContact is the erasure, and automations
//! erases its own data when it consumes the `deleted` event. Afterwards nothing the service keeps
//! names the contact (rows kept for counts are anonymised), and handling the event again, as a
//! redelivery after a crash would, erases again without failing.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use meisa_proto::{
    contacts as cpb,
    events::{ChangeKind, ContactChanged},
    mailer as mpb,
};
use prost::Message;
use serde_json::json;

use crate::helpers::*;

/// Every table of the automations database that holds a contact id.
const CONTACT_TABLES: [&str; 6] = [
    "action_jobs",
    "enrollments",
    "activity",
    "projections",
    "reentry",
    "firings",
];

async fn rows_naming(st: &Stack, contact_id: &str) -> Vec<(String, i64)> {
    let pool = st.automations_pool().await;
    let mut out = Vec::new();
    for table in CONTACT_TABLES {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE contact_id = $1"
        ))
        .bind(contact_id)
        .fetch_one(&pool)
        .await
        .expect("count rows");
        if n > 0 {
            out.push((table.to_string(), n));
        }
    }
    out
}

#[tokio::test]
async fn erasure_leaves_nothing_naming_the_contact_and_can_run_again() {
    let st = stack_with(Options {
        shards: 1,
        ..Options::default()
    })
    .await;
    let tpl = st.template("Later", "Later").await;
    let seq = st
        .sequence(
            json!({"name": "Slow", "steps": [{"type": "wait", "duration": "1h"},
                                                    {"type": "email", "template_id": tpl}]}),
        )
        .await;
    // Something in every table: a firing and reentry memory, jobs, an enrollment, activity, and
    // (a clock-driven condition) a projection holding a field value.
    let aut = st
        .automation(json!({"name": "Enroll", "enabled": true,
            "trigger": {"type": "contact_created"},
            "actions": [{"type": "add_tag", "tag": "new"},
                        {"type": "enroll", "sequence_id": seq}]}))
        .await;
    st.automation(json!({"name": "Inactive", "enabled": true,
        "trigger": {"type": "condition_met"},
        "conditions": {"all": [{"field": "last_active", "op": "older_than", "value": "30d"}]},
        "actions": [{"type": "add_tag", "tag": "inactive"}]}))
        .await;
    let stamp = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let jane = st
        .upsert("jane@example.com", &[("last_active", json!(stamp))])
        .await;
    st.quiesce().await;
    assert_eq!(st.enrollments(&jane.id).await.len(), 1);
    assert!(!st.activity(&jane.id).await.is_empty());
    assert_eq!(
        rows_naming(&st, &jane.id)
            .await
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>(),
        CONTACT_TABLES,
        "the setup leaves a row naming jane in every table"
    );

    st.contacts
        .clone()
        .delete_contact(cpb::DeleteContactRequest {
            workspace_id: WS.into(),
            id: jane.id.clone(),
            causation: None,
        })
        .await
        .expect("erase");
    eventually(Duration::from_secs(15), "the enrollment to end", || async {
        (st.automation_stats(&aut).await.exited == 1).then_some(())
    })
    .await;
    st.quiesce().await;
    assert!(st.enrollments(&jane.id).await.is_empty());
    assert!(st.activity(&jane.id).await.is_empty());
    assert_eq!(rows_naming(&st, &jane.id).await, []);
    // What is kept for counts names nobody.
    let kept = st.sequence_enrollments(&seq).await;
    assert_eq!(kept.len(), 1);
    assert!(kept[0].contact_id.is_empty());
    assert_eq!(kept[0].exit_reason, "contact_deleted");
    let exits_before = st.automation_stats(&aut).await.exited;

    // The deleted event handled again, as after a crash between the commit and the XACK with
    // its bookkeeping lost: the erasure runs a second time, harmlessly.
    let key = format!("{}:changes:0", st.prefix);
    let mut conn = redis::Client::open(meisa_testkit::redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("xrange");
    let (seq_field, payload, event) = entries
        .ids
        .iter()
        .find_map(|e| {
            let payload: Vec<u8> = e.get("event")?;
            let event = ContactChanged::decode(payload.as_slice()).ok()?;
            let seq: String = e.get("seq")?;
            (event.kind == ChangeKind::Deleted as i32 && event.contact_id == jane.id)
                .then_some((seq, payload, event))
        })
        .expect("the deleted event is on the stream");
    let pool = st.automations_pool().await;
    sqlx::query("DELETE FROM processed_events WHERE event_id = $1")
        .bind(&event.event_id)
        .execute(&pool)
        .await
        .expect("forget the event");
    let seq_number: i64 = seq_field.parse().expect("a numeric seq");
    sqlx::query("UPDATE consumer_shards SET last_seq = $1")
        .bind(seq_number - 1)
        .execute(&pool)
        .await
        .expect("move the shard back");
    let _: String = redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("seq")
        .arg(&seq_field)
        .arg("event")
        .arg(payload.as_slice())
        .query_async(&mut conn)
        .await
        .expect("xadd");
    st.quiesce().await;
    let processed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM processed_events WHERE event_id = $1 AND NOT dead",
    )
    .bind(&event.event_id)
    .fetch_one(&pool)
    .await
    .expect("processed");
    assert_eq!(processed, 1, "the redelivered deletion was applied");
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&pool)
        .await
        .expect("dead letters");
    assert_eq!(dead, 0, "erasing again is not an error");
    assert_eq!(rows_naming(&st, &jane.id).await, []);
    assert_eq!(
        st.automation_stats(&aut).await.exited,
        exits_before,
        "nothing ended twice"
    );
}

/// Erasure works whoever asks for it: an internal service calls contacts' DeleteContact over
/// gRPC directly (no gateway), and afterwards no service holds anything of the contact: no
/// message at the mailer, no `.eml` file, no enrollment and no activity at automations.
#[tokio::test]
async fn one_delete_contact_call_erases_the_contact_in_every_service() {
    let st = stack_with(Options {
        shards: 2,
        mail_to_files: true,
        ..Options::default()
    })
    .await;
    let tpl = st.template("Welcome", "Welcome").await;
    let seq = st
        .sequence(json!({"name": "Onboarding", "steps": [
            {"type": "email", "template_id": tpl},
            {"type": "wait", "duration": "1h"},
            {"type": "email", "template_id": tpl}]}))
        .await;
    st.automation(json!({"name": "Onboarding", "enabled": true,
        "trigger": {"type": "contact_created"},
        "actions": [{"type": "enroll", "sequence_id": seq},
                    {"type": "send_email", "template_id": tpl}]}))
        .await;
    let jane = st.upsert("jane@example.com", &[]).await;
    let sam = st.upsert("sam@example.com", &[]).await;
    st.quiesce().await;

    let messages = |contact_id: String| {
        let mut mailer = st.mailer.clone();
        async move {
            mailer
                .list_messages(mpb::ListMessagesRequest {
                    workspace_id: WS.into(),
                    contact_id,
                    ..Default::default()
                })
                .await
                .expect("list messages")
                .into_inner()
                .messages
        }
    };
    let eml = |id: &str| st.mail_dir.join(format!("{id}.eml"));
    let janes = messages(jane.id.clone()).await;
    assert_eq!(janes.len(), 2, "the welcome step and the send_email action");
    for m in &janes {
        assert!(eml(&m.id).exists(), "{} was written as a file", m.id);
    }
    assert!(!st.enrollments(&jane.id).await.is_empty());
    assert!(!st.activity(&jane.id).await.is_empty());

    st.contacts
        .clone()
        .delete_contact(cpb::DeleteContactRequest {
            workspace_id: WS.into(),
            id: jane.id.clone(),
            causation: None,
        })
        .await
        .expect("erase over gRPC");
    // Quiescent: the deletion is on the stream and automations has applied it; then the
    // mailer, the stream's other consumer, has read (and acted on) it too.
    st.quiesce().await;
    meisa_testkit::until_streams_caught_up(
        &st.prefix,
        st.shards,
        "mailer",
        Duration::from_secs(30),
    )
    .await;

    assert_eq!(
        messages(jane.id.clone()).await.len(),
        0,
        "no message of jane"
    );
    for m in &janes {
        assert!(!eml(&m.id).exists(), "{}.eml is gone", m.id);
    }
    assert!(
        st.enrollments(&jane.id).await.is_empty(),
        "no enrollment of jane"
    );
    assert!(
        st.activity(&jane.id).await.is_empty(),
        "no activity of jane"
    );
    assert_eq!(rows_naming(&st, &jane.id).await, []);
    let gone = st
        .contacts
        .clone()
        .get_contact(cpb::GetContactRequest {
            workspace_id: WS.into(),
            by: Some(cpb::get_contact_request::By::Id(jane.id.clone())),
        })
        .await
        .expect_err("jane is gone");
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Sam is untouched everywhere.
    let sams = messages(sam.id.clone()).await;
    assert_eq!(sams.len(), 2);
    for m in &sams {
        assert!(eml(&m.id).exists());
    }
    assert!(!st.enrollments(&sam.id).await.is_empty());
    let _ = std::fs::remove_dir_all(&st.mail_dir);
}
