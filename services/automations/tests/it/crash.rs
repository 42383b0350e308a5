//! SIGKILL the automations process at random points while 500 contacts go through a two-email
//! sequence: after the last restart every contact gets exactly its two emails, counted at the SMTP
//! server.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rand::Rng;
use serde_json::json;

use crate::helpers::*;

const CONTACTS: usize = 500;

#[tokio::test]
async fn killing_automations_at_random_points_sends_every_email_exactly_once() {
    let mut st = stack().await;
    let first = st.template("First", "First email").await;
    let second = st.template("Second", "Second email").await;
    let seq = st
        .sequence(json!({"name": "Two emails", "steps": [
            {"type": "email", "template_id": first},
            {"type": "wait", "duration": "1s"},
            {"type": "email", "template_id": second}]}))
        .await;
    st.automation(json!({"name": "Onboard", "enabled": true,
        "trigger": {"type": "contact_created"},
        "actions": [{"type": "enroll", "sequence_id": seq}]}))
        .await;

    // Contacts flow in from 8 concurrent clients while the automations process is killed, so
    // that kills land while events are being applied, actions run and sequences wait.
    let created = Arc::new(AtomicUsize::new(0));
    let upserts: Vec<_> = (0..8)
        .map(|lane| {
            let contacts = st.contacts.clone();
            let created = created.clone();
            tokio::spawn(async move {
                for i in (lane..CONTACTS).step_by(8) {
                    let mut c = contacts.clone();
                    c.upsert(meisa_proto::contacts::UpsertRequest {
                        workspace_id: WS.into(),
                        contact: Some(meisa_proto::contacts::ContactInput {
                            email: format!("user{i}@example.com"),
                            external_id: format!("usr_{i}"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .expect("upsert");
                    created.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    let kills = rand::rng().random_range(3..=5);
    for k in 0..kills {
        let pause = rand::rng().random_range(200..=1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        st.kill_automations().await;
        eprintln!(
            "kill {}/{kills} after {pause}ms: {} contacts created, {} emails accepted",
            k + 1,
            created.load(Ordering::Relaxed),
            st.smtp.message_count()
        );
        st.start_automations().await;
    }
    for u in upserts {
        u.await.expect("upserts");
    }

    // Coming to rest includes the killed process's leases running out (shards 2s, jobs and steps
    // 11s) and its pending entries being reclaimed.
    st.smtp
        .wait_for(2 * CONTACTS, Duration::from_secs(120))
        .await;
    st.quiesce_within(Duration::from_secs(120)).await;
    let mails = st.smtp.messages();
    let mut per: HashMap<(String, String), usize> = HashMap::new();
    for m in &mails {
        let key = (m.to.join(","), m.header("subject").unwrap_or_default());
        *per.entry(key).or_default() += 1;
    }
    let dupes: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "sent twice: {dupes:?}");
    assert_eq!(
        mails.len(),
        2 * CONTACTS,
        "every contact gets exactly two emails"
    );
    for i in 0..CONTACTS {
        let to = format!("user{i}@example.com");
        for subject in ["First email", "Second email"] {
            assert_eq!(
                per.get(&(to.clone(), subject.to_string())),
                Some(&1),
                "{to}: {subject}"
            );
        }
    }
}
