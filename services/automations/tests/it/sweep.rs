//! Conditions that time makes true: fired by the sweep, with no upsert.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn last_active_older_than_fires_for_a_contact_never_upserted_again() {
    let st = stack().await;
    let tpl = st.template("We miss you", "We miss you").await;
    let aut = st
        .automation(json!({"name": "Inactive", "enabled": true,
            "trigger": {"type": "condition_met"},
            "conditions": {"all": [{"field": "last_active", "op": "older_than", "value": "5s"}]},
            "actions": [{"type": "send_email", "template_id": tpl}]}))
        .await;
    let now = Utc::now();
    let started = Instant::now();
    let jane = st
        .upsert(
            "jane@example.com",
            &[(
                "last_active",
                json!(now.to_rfc3339_opts(SecondsFormat::Millis, true)),
            )],
        )
        .await;
    // Nothing before 5s; then within the sweep interval (1s) and some slack.
    let mails = st.smtp.wait_for(1, Duration::from_secs(5 + 1 + 4)).await;
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(4500),
        "fired after {after:?}, before last_active was 5s old"
    );
    assert_eq!(mails[0].to, ["jane@example.com"]);
    // Once true, `older_than` stays true: nothing is left to check (no next_check_at), so at rest
    // nothing can fire again.
    st.quiesce().await;
    assert_eq!(st.smtp.message_count(), 1, "fires once");
    let stats = st.automation_stats(&aut).await;
    assert_eq!(stats.triggered, 1);
    let activity = st.activity(&jane.id).await;
    let fired = activity.last().expect("activity");
    assert!(fired.event_id.starts_with("sweep:"), "{fired:?}");
}

#[tokio::test]
async fn an_automation_created_after_its_contacts_exist_is_backfilled_and_fires() {
    let st = stack().await;
    let tpl = st.template("Nudge", "Nudge").await;
    let now = Utc::now();
    let stamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    for i in 0..3 {
        st.upsert(
            &format!("u{i}@example.com"),
            &[("last_active", json!(stamp))],
        )
        .await;
    }
    // Already true when the automation appears: recorded as true, not fired.
    st.upsert(
        "old@example.com",
        &[("last_active", json!("2020-01-01T00:00:00Z"))],
    )
    .await;
    // The consumer has seen the contacts first, so the projections can only come from the backfill.
    st.quiesce().await;
    st.automation(json!({"name": "Inactive", "enabled": true,
        "trigger": {"type": "condition_met"},
        "conditions": {"field": "last_active", "op": "older_than", "value": "4s"},
        "actions": [{"type": "send_email", "template_id": tpl}]}))
        .await;
    let mails = st.smtp.wait_for(3, Duration::from_secs(4 + 1 + 6)).await;
    let mut to: Vec<String> = mails.iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(to, ["u0@example.com", "u1@example.com", "u2@example.com"]);
    st.quiesce().await;
    assert_eq!(st.smtp.message_count(), 3);
}
