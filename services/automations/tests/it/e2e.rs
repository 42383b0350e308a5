//! The examples of the issue, end to end: upserts into the contacts process, automations firing in
//! the automations process, emails accepted by the SMTP server through the mailer process.

use std::time::{Duration, Instant};

use meisa_proto::{
    automations::{ActivityKind, EnrollmentStatus},
    contacts as cpb,
};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn contact_created_enrolls_in_onboarding_and_sends_the_second_email_after_the_wait() {
    let st = stack().await;
    let welcome = st.template("Welcome", "Welcome, {{ first_name }}!").await;
    let day_two = st
        .template("Day two", "How is it going, {{ first_name }}?")
        .await;
    let onboarding = st
        .sequence(json!({"name": "Onboarding", "steps": [
            {"type": "email", "template_id": welcome},
            {"type": "wait", "duration": "2s"},
            {"type": "email", "template_id": day_two}]}))
        .await;
    let aut = st
        .automation(json!({"name": "Onboard new contacts", "enabled": true,
            "trigger": {"type": "contact_created"},
            "actions": [{"type": "enroll", "sequence_id": onboarding}]}))
        .await;

    let started = Instant::now();
    let jane = st
        .upsert("jane@example.com", &[("plan", json!("free"))])
        .await;
    let first = st.smtp.wait_for(1, Duration::from_secs(15)).await;
    let first_at = started.elapsed();
    assert_eq!(first[0].to, ["jane@example.com"]);
    assert_eq!(
        first[0].header("subject").as_deref(),
        Some("Welcome, jane!")
    );

    let both = st.smtp.wait_for(2, Duration::from_secs(15)).await;
    let second_at = started.elapsed();
    assert_eq!(
        both[1].header("subject").as_deref(),
        Some("How is it going, jane?")
    );
    assert!(
        second_at >= first_at + Duration::from_millis(1500),
        "the second email came {second_at:?} after the upsert, the first {first_at:?}: the 2s wait was not kept"
    );

    let enrollment = eventually(
        Duration::from_secs(5),
        "the enrollment to complete",
        || async {
            st.enrollments(&jane.id)
                .await
                .into_iter()
                .find(|e| e.status == EnrollmentStatus::Completed as i32)
        },
    )
    .await;
    assert_eq!(enrollment.sequence_id, onboarding);
    assert_eq!(enrollment.automation_id, aut);
    assert_eq!(enrollment.current_step, 3);

    let stats = st.automation_stats(&aut).await;
    assert_eq!(
        (
            stats.triggered,
            stats.enrolled,
            stats.completed,
            stats.emails_sent
        ),
        (1, 1, 1, 2)
    );
    let kinds: Vec<i32> = st.activity(&jane.id).await.iter().map(|a| a.kind).collect();
    // Newest first.
    assert_eq!(
        kinds,
        [
            ActivityKind::Completed,
            ActivityKind::StepDone,
            ActivityKind::StepDone,
            ActivityKind::StepDone,
            ActivityKind::ActionDone,
            ActivityKind::Enrolled,
            ActivityKind::Triggered,
        ]
        .map(|k| k as i32)
    );
    st.quiesce().await;
    let subjects: Vec<_> = st
        .smtp
        .messages()
        .iter()
        .map(|m| m.header("subject"))
        .collect();
    assert_eq!(
        subjects.len(),
        2,
        "{subjects:?}; log: {}",
        st.automations_log().display()
    );
}

#[tokio::test]
async fn plan_free_to_pro_tags_the_contact_and_enrolls_it() {
    let st = stack().await;
    let tpl = st.template("Pro", "Welcome to pro").await;
    let pro_seq = st
        .sequence(json!({"name": "Pro", "steps": [{"type": "email", "template_id": tpl}]}))
        .await;
    let aut = st
        .automation(json!({"name": "Upgrade to pro", "enabled": true,
            "trigger": {"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"},
            "actions": [{"type": "add_tag", "tag": "pro"},
                        {"type": "enroll", "sequence_id": pro_seq}]}))
        .await;
    // A second automation writes the field as custom_fields.plan: the same field.
    let aut2 = st
        .automation(json!({"name": "Upgrade (prefixed)", "enabled": true,
            "trigger": {"type": "contact_updated", "field": "custom_fields.plan", "to": "pro"},
            "actions": [{"type": "add_tag", "tag": "upgraded"}]}))
        .await;

    let jane = st
        .upsert("jane@example.com", &[("plan", json!("free"))])
        .await;
    let joe = st
        .upsert("joe@example.com", &[("plan", json!("trial"))])
        .await;
    st.upsert("jane@example.com", &[("plan", json!("pro"))])
        .await;
    // trial → pro is not free → pro.
    st.upsert("joe@example.com", &[("plan", json!("pro"))])
        .await;

    let tags = eventually(
        Duration::from_secs(10),
        "jane to be tagged pro and upgraded",
        || async {
            let c = st.contact(&jane.id).await;
            (c.tags.contains(&"pro".to_string()) && c.tags.contains(&"upgraded".to_string()))
                .then_some(c.tags)
        },
    )
    .await;
    assert_eq!(tags, ["pro", "upgraded"]);
    let enrollments = st.enrollments(&jane.id).await;
    assert_eq!(enrollments.len(), 1);
    assert_eq!(enrollments[0].sequence_id, pro_seq);
    st.smtp.wait_for(1, Duration::from_secs(10)).await;

    eventually(
        Duration::from_secs(10),
        "joe to be tagged upgraded",
        || async {
            st.contact(&joe.id)
                .await
                .tags
                .contains(&"upgraded".to_string())
                .then_some(())
        },
    )
    .await;
    st.quiesce().await;
    assert_eq!(st.contact(&joe.id).await.tags, ["upgraded"]);
    assert!(st.enrollments(&joe.id).await.is_empty());
    assert_eq!(st.automation_stats(&aut).await.triggered, 1);
    assert_eq!(st.automation_stats(&aut2).await.triggered, 2);
    assert_eq!(st.smtp.message_count(), 1);
}

#[tokio::test]
async fn posts_generated_reaching_five_sends_exactly_one_email() {
    let st = stack().await;
    let tpl = st.template("Milestone", "Five posts!").await;
    // reentry always: what keeps 5 → 6 quiet is condition_met itself, not reentry.
    let aut = st
        .automation(json!({"name": "Five posts", "enabled": true,
            "trigger": {"type": "condition_met"},
            "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5}]},
            "actions": [{"type": "send_email", "template_id": tpl}],
            "reentry": "always"}))
        .await;
    st.upsert("jane@example.com", &[("posts_generated", json!(4))])
        .await;
    st.quiesce().await;
    assert_eq!(st.smtp.message_count(), 0, "4 posts is not 5");
    st.upsert("jane@example.com", &[("posts_generated", json!(5))])
        .await;
    let mails = st.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].header("subject").as_deref(), Some("Five posts!"));
    st.upsert("jane@example.com", &[("posts_generated", json!(6))])
        .await;
    st.quiesce().await;
    assert_eq!(st.smtp.message_count(), 1);
    assert_eq!(st.automation_stats(&aut).await.triggered, 1);
    assert_eq!(st.automation_stats(&aut).await.emails_sent, 1);
}

/// The contact's enrollment, once it has exited.
async fn exited(st: &Stack, contact_id: &str) -> meisa_proto::automations::Enrollment {
    eventually(
        Duration::from_secs(15),
        "the enrollment to exit",
        || async {
            st.enrollments(contact_id)
                .await
                .into_iter()
                .find(|e| e.status == EnrollmentStatus::Exited as i32)
        },
    )
    .await
}

async fn wait_sequence(st: &Stack, exit_when: Option<serde_json::Value>) -> String {
    let first = st.template("First", "First email").await;
    let second = st.template("Second", "Second email").await;
    let mut def = json!({"name": "Onboarding", "steps": [
        {"type": "email", "template_id": first},
        {"type": "wait", "duration": "2s"},
        {"type": "email", "template_id": second}]});
    if let Some(c) = exit_when {
        def["exit_when"] = c;
    }
    let seq = st.sequence(def).await;
    st.automation(json!({"name": "Onboard", "enabled": true,
        "trigger": {"type": "contact_created"},
        "actions": [{"type": "enroll", "sequence_id": seq}]}))
        .await;
    seq
}

#[tokio::test]
async fn completing_onboarding_during_a_wait_means_the_next_email_is_never_sent() {
    let st = stack().await;
    wait_sequence(
        &st,
        Some(json!({"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]})),
    )
    .await;
    let jane = st
        .upsert(
            "jane@example.com",
            &[("onboarding_completed", json!(false))],
        )
        .await;
    st.smtp.wait_for(1, Duration::from_secs(10)).await;
    st.upsert("jane@example.com", &[("onboarding_completed", json!(true))])
        .await;
    // The fact that ends the wait: the enrollment exits (on the change, or at the step after the
    // wait at the latest). An exited enrollment runs no step, so once the stack is at rest
    // nothing can send the second email any more.
    let e = exited(&st, &jane.id).await;
    st.quiesce().await;
    assert_eq!(
        st.smtp.message_count(),
        1,
        "the email after the wait was sent"
    );
    assert_eq!(e.status, EnrollmentStatus::Exited as i32);
    assert_eq!(e.exit_reason, "exit_when");
    // The funnel: she left at the wait, and never reached the email after it.
    let stats = st.sequence_stats(&e.sequence_id).await;
    assert_eq!(reasons(&stats.steps[1].exited), [("exit_when", 1)]);
    assert_eq!(stats.steps[2].entered, 0);
    assert_eq!(stats.steps[0].sent, 1);
}

/// (reason, count) pairs of a funnel column.
fn reasons(r: &[meisa_proto::automations::ReasonCount]) -> Vec<(&str, u64)> {
    r.iter().map(|r| (r.reason.as_str(), r.count)).collect()
}

#[tokio::test]
async fn the_funnel_counts_every_step_where_contacts_stand_and_why_an_email_was_not_sent() {
    let st = stack().await;
    let first = st.template("First", "First email").await;
    let second = st.template("Second", "Second email").await;
    let seq = st
        .sequence(json!({"name": "Onboarding", "steps": [
            {"type": "email", "template_id": first},
            {"type": "wait", "duration": "1h"},
            {"type": "email", "template_id": second}]}))
        .await;
    st.automation(json!({"name": "Onboard", "enabled": true,
        "trigger": {"type": "contact_created"},
        "actions": [{"type": "enroll", "sequence_id": seq}]}))
        .await;
    st.mailer
        .clone()
        .add_suppression(meisa_proto::mailer::AddSuppressionRequest {
            workspace_id: WS.into(),
            email: "bob@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("suppress bob");
    st.upsert("jane@example.com", &[]).await;
    st.upsert("bob@example.com", &[]).await;
    let stats = eventually(
        Duration::from_secs(15),
        "both contacts inside the wait",
        || async {
            let s = st.sequence_stats(&seq).await;
            (s.steps.get(1).map(|w| w.here_now) == Some(2)).then_some(s)
        },
    )
    .await;
    st.quiesce().await;
    let [email, wait, last] = &stats.steps[..] else {
        panic!("one funnel per step: {stats:?}");
    };
    assert_eq!((email.entered, email.here_now, email.sent), (2, 0, 1));
    assert_eq!(reasons(&email.skipped), [("suppressed", 1)]);
    assert_eq!((wait.entered, wait.here_now), (2, 2));
    // Inside the wait they have not reached the last email, which is what they run next.
    assert_eq!((last.entered, last.here_now, last.next), (0, 0, 2));
    assert_eq!(st.smtp.message_count(), 1);
}

#[tokio::test]
async fn unsubscribing_during_a_wait_means_nothing_more_is_sent() {
    let st = stack().await;
    wait_sequence(&st, None).await;
    let jane = st
        .upsert("jane@example.com", &[("plan", json!("free"))])
        .await;
    st.smtp.wait_for(1, Duration::from_secs(10)).await;
    st.contacts
        .clone()
        .set_subscribed(cpb::SetSubscribedRequest {
            workspace_id: WS.into(),
            id: jane.id.clone(),
            subscribed: false,
            causation: None,
        })
        .await
        .expect("unsubscribe");
    let e = exited(&st, &jane.id).await;
    st.quiesce().await;
    assert_eq!(st.smtp.message_count(), 1);
    assert_eq!(e.status, EnrollmentStatus::Exited as i32);
    assert_eq!(e.exit_reason, "unsubscribed");
}

#[tokio::test]
async fn reentry_once_means_a_second_trigger_does_nothing() {
    let st = stack().await;
    let tpl = st.template("Plan", "Your plan changed").await;
    let once = st
        .automation(json!({"name": "Plan changed", "enabled": true,
            "trigger": {"type": "contact_updated", "field": "plan"},
            "actions": [{"type": "send_email", "template_id": tpl}]}))
        .await;
    let always = st
        .automation(json!({"name": "Plan changed (always)", "enabled": true,
            "trigger": {"type": "contact_updated", "field": "plan"},
            "actions": [{"type": "add_tag", "tag": "plan_changed"}],
            "reentry": "always"}))
        .await;
    st.upsert("jane@example.com", &[("plan", json!("free"))])
        .await;
    st.upsert("jane@example.com", &[("plan", json!("pro"))])
        .await;
    st.smtp.wait_for(1, Duration::from_secs(10)).await;
    st.upsert("jane@example.com", &[("plan", json!("team"))])
        .await;
    eventually(
        Duration::from_secs(10),
        "the always automation to fire twice",
        || async { (st.automation_stats(&always).await.triggered == 2).then_some(()) },
    )
    .await;
    st.quiesce().await;
    assert_eq!(st.smtp.message_count(), 1);
    assert_eq!(st.automation_stats(&once).await.triggered, 1);
}

#[tokio::test]
async fn automations_that_trigger_each_other_stop_at_the_depth_limit() {
    let st = stack().await;
    // A tags when the tags change and `loop` is missing; B untags when `loop` is added; B's
    // untagging changes the tags, which triggers A again.
    st.automation(json!({"name": "A tags", "enabled": true,
        "trigger": {"type": "contact_updated", "field": "tags"},
        "conditions": {"all": [{"field": "tags", "op": "lacks_tag", "value": "loop"}]},
        "actions": [{"type": "add_tag", "tag": "loop"}],
        "reentry": "always"}))
        .await;
    st.automation(json!({"name": "B untags", "enabled": true,
        "trigger": {"type": "tag_added", "tag": "loop"},
        "actions": [{"type": "remove_tag", "tag": "loop"}],
        "reentry": "always"}))
        .await;
    let jane = st.upsert("jane@example.com", &[]).await;
    st.contacts
        .clone()
        .add_tags(cpb::AddTagsRequest {
            workspace_id: WS.into(),
            id: jane.id.clone(),
            tags: vec!["go".into()],
            causation: None,
        })
        .await
        .expect("add tag");

    // The loop has run its course when the stack is at rest: every change consumed, every job
    // (each tag change is one) done.
    st.quiesce().await;
    let mut depths = st
        .changes(&jane.id)
        .await
        .iter()
        .filter(|c| {
            c.causation
                .as_ref()
                .is_some_and(|k| k.source == "automation")
                && c.changes.iter().any(|f| f.path == "tags")
        })
        .map(|c| c.causation.as_ref().map_or(0, |k| k.depth))
        .collect::<Vec<u32>>();
    depths.sort_unstable();
    // depth 1 (A), 2 (B), 3 (A), 4 (B), 5 (A); the change at depth 5 triggers nothing.
    assert_eq!(
        depths,
        [1, 2, 3, 4, 5],
        "automation-made tag changes by causation depth"
    );
    assert!(
        st.contact(&jane.id)
            .await
            .tags
            .contains(&"loop".to_string())
    );
    let log = std::fs::read_to_string(st.automations_log()).unwrap_or_default();
    assert!(
        log.contains("loop guard"),
        "the loop guard logs what it stopped"
    );
}

#[tokio::test]
async fn an_exit_action_ends_the_enrollment() {
    let st = stack().await;
    let tpl = st.template("Later", "Later").await;
    let seq = st
        .sequence(
            json!({"name": "Slow", "steps": [{"type": "wait", "duration": "1h"},
                                                  {"type": "email", "template_id": tpl}]}),
        )
        .await;
    st.automation(json!({"name": "Enroll", "enabled": true,
        "trigger": {"type": "contact_created"},
        "actions": [{"type": "enroll", "sequence_id": seq}]}))
        .await;
    let stop = st
        .automation(json!({"name": "Stop", "enabled": true,
            "trigger": {"type": "tag_added", "tag": "stop"},
            "actions": [{"type": "exit", "sequence_id": seq}]}))
        .await;
    let jane = st.upsert("jane@example.com", &[]).await;
    eventually(Duration::from_secs(10), "jane enrolled", || async {
        (!st.enrollments(&jane.id).await.is_empty()).then_some(())
    })
    .await;
    st.contacts
        .clone()
        .add_tags(cpb::AddTagsRequest {
            workspace_id: WS.into(),
            id: jane.id.clone(),
            tags: vec!["stop".into()],
            causation: None,
        })
        .await
        .expect("add tag");
    let e = eventually(
        Duration::from_secs(10),
        "the enrollment to exit",
        || async {
            st.enrollments(&jane.id)
                .await
                .into_iter()
                .find(|e| e.status == EnrollmentStatus::Exited as i32)
        },
    )
    .await;
    assert_eq!(e.exit_reason, "exit_action");
    assert_eq!(st.automation_stats(&stop).await.actions_done, 1);
    assert_eq!(st.smtp.message_count(), 0);
}

#[tokio::test]
async fn at_rest_means_every_effect_of_a_chain_has_happened() {
    // What the other tests rely on when they assert after `quiesce`: a change, a tag it causes
    // (a second change, through the contacts outbox and the stream again), an email that tag
    // causes, delivered. None of it is waited for but through `quiesce`.
    let st = stack().await;
    let tpl = st.template("Tagged", "You are tagged").await;
    st.automation(json!({"name": "Tag", "enabled": true,
        "trigger": {"type": "contact_created"},
        "actions": [{"type": "add_tag", "tag": "new"}]}))
        .await;
    let mail = st
        .automation(json!({"name": "Mail the tagged", "enabled": true,
            "trigger": {"type": "tag_added", "tag": "new"},
            "actions": [{"type": "send_email", "template_id": tpl}]}))
        .await;
    let jane = st.upsert("jane@example.com", &[]).await;
    st.quiesce().await;
    assert_eq!(st.contact(&jane.id).await.tags, ["new"]);
    assert_eq!(st.automation_stats(&mail).await.emails_sent, 1);
    assert_eq!(st.smtp.message_count(), 1, "delivered, not only queued");
}
