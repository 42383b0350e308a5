//! The gRPC surface: validation at save time names the DESIGN path, references must exist, unseen
//! fields are accepted and reported, definitions come back as saved.

use meisa_proto::automations as pb;
use meisa_runtime::errors::ErrorCode;
use serde_json::{Value, json};

use crate::helpers::*;

const MISSING_TPL: &str = "tpl_0190f0f0f0f07000800000000000beef";
const MISSING_SEQ: &str = "seq_0190f0f0f0f07000800000000000beef";

#[tokio::test]
async fn definitions_are_checked_against_fields_and_references_at_save_time() {
    let st = stack().await;
    // The workspace's fields: plan is a string, posts_generated a number.
    st.upsert(
        "jane@example.com",
        &[("plan", json!("free")), ("posts_generated", json!(3))],
    )
    .await;
    let tpl = st.template("Hi", "Hi").await;
    let seq = st
        .sequence(json!({"name": "S", "steps": [{"type": "email", "template_id": tpl}]}))
        .await;
    let base = |extra: Value| {
        let mut v = json!({"name": "A", "enabled": true, "trigger": {"type": "contact_created"},
                           "actions": [{"type": "add_tag", "tag": "x"}]});
        for (k, x) in extra.as_object().expect("object") {
            v[k] = x.clone();
        }
        v
    };
    let cases = [
        (
            base(
                json!({"conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": "5"}]}}),
            ),
            "conditions.all[0].value",
        ),
        (
            base(json!({"conditions": {"any": [{"field": "plan", "op": "gt", "value": 5}]}})),
            "conditions.any[0].value",
        ),
        (
            base(json!({"trigger": {"type": "contact_updated", "field": "plan", "to": 5}})),
            "trigger.to",
        ),
        (
            base(json!({"actions": [{"type": "add_tag", "tag": "x"},
                                    {"type": "enroll", "sequence_id": MISSING_SEQ}]})),
            "actions[1].sequence_id",
        ),
        (
            base(json!({"actions": [{"type": "send_email", "template_id": MISSING_TPL}]})),
            "actions[0].template_id",
        ),
        (
            base(json!({"actions": [{"type": "send_email", "template_id": "welcome"}]})),
            "actions[0].template_id",
        ),
        (base(json!({"reentry": "after:soon"})), "reentry"),
        (
            base(json!({"trigger": {"type": "condition_met"}})),
            "conditions",
        ),
        (
            base(json!({"trigger": {"type": "tag_added"}})),
            "trigger.tag",
        ),
    ];
    for (def, path) in cases {
        let e = st
            .create_automation(def.clone())
            .await
            .expect_err("rejected");
        assert_eq!(e.code, ErrorCode::InvalidField, "{def}: {e:?}");
        assert_eq!(e.field.as_deref(), Some(path), "{def}: {e:?}");
        assert!(e.message.starts_with(path), "{e:?}");
    }

    let e = st
        .create_sequence(
            json!({"name": "S", "steps": [{"type": "email", "template_id": tpl},
                                                       {"type": "wait", "duration": "2w"}]}),
        )
        .await
        .expect_err("rejected");
    assert_eq!(e.field.as_deref(), Some("steps[1].duration"));
    let e = st
        .create_sequence(
            json!({"name": "S", "steps": [{"type": "email", "template_id": MISSING_TPL}]}),
        )
        .await
        .expect_err("rejected");
    assert_eq!(e.field.as_deref(), Some("steps[0].template_id"));
    let e = st
        .create_sequence(
            json!({"name": "S", "steps": [{"type": "wait", "duration": "1s"}],
            "exit_when": {"all": [{"field": "posts_generated", "op": "eq", "value": true}]}}),
        )
        .await
        .expect_err("rejected");
    assert_eq!(e.field.as_deref(), Some("exit_when.all[0].value"));

    // Accepted, with the field the workspace has not seen reported, and returned as saved.
    let def = json!({"name": "Upgrade to pro", "enabled": true,
        "trigger": {"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"},
        "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5},
                               {"field": "company_size", "op": "gt", "value": 10}]},
        "actions": [{"type": "add_tag", "tag": "pro"}, {"type": "enroll", "sequence_id": seq}],
        "reentry": "after:30d"});
    let a = st.create_automation(def.clone()).await.expect("accepted");
    assert!(a.id.starts_with("aut_"));
    assert_eq!(a.unseen_fields, ["company_size"]);
    let saved = definition(&a.definition);
    assert_eq!(saved["trigger"], def["trigger"]);
    assert_eq!(saved["actions"], def["actions"]);
    assert_eq!(saved["reentry"], "after:30d");
    assert_eq!(saved["conditions"], def["conditions"]);

    // Once the product sends the field, it is no longer unseen.
    st.upsert("jane@example.com", &[("company_size", json!(12))])
        .await;
    let got = st
        .automations
        .clone()
        .get_automation(pb::GetAutomationRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .automation
        .expect("automation");
    assert!(got.unseen_fields.is_empty());

    // A sequence in use cannot be deleted.
    let e = st
        .automations
        .clone()
        .delete_sequence(pb::DeleteSequenceRequest {
            workspace_id: WS.into(),
            id: seq.clone(),
        })
        .await
        .map_err(|s| meisa_runtime::errors::ApiError::from_status(&s))
        .expect_err("in use");
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains(&a.id), "{e:?}");

    // Another workspace sees nothing.
    let e = st
        .automations
        .clone()
        .get_automation(pb::GetAutomationRequest {
            workspace_id: "ws_other".into(),
            id: a.id.clone(),
        })
        .await
        .expect_err("not found");
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn automations_list_update_disable_and_delete() {
    let st = stack().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            st.automation(
                json!({"name": format!("A{i}"), "trigger": {"type": "contact_created"},
                "actions": [{"type": "add_tag", "tag": "t"}]}),
            )
            .await,
        );
    }
    let mut client = st.automations.clone();
    let page = |cursor: String| pb::ListAutomationsRequest {
        workspace_id: WS.into(),
        page: Some(meisa_proto::common::PageRequest { limit: 2, cursor }),
    };
    let first = client
        .list_automations(page(String::new()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(first.automations.len(), 2);
    assert_eq!(first.automations[0].id, ids[2], "newest first");
    let second = client
        .list_automations(page(first.next_cursor.clone()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(second.automations.len(), 1);
    assert!(second.next_cursor.is_empty());

    // New automations start disabled unless `enabled` says otherwise.
    assert_eq!(
        definition(&first.automations[0].definition)["enabled"],
        false
    );
    let enabled = client
        .enable_automation(pb::EnableAutomationRequest {
            workspace_id: WS.into(),
            id: ids[0].clone(),
        })
        .await
        .expect("enable")
        .into_inner()
        .automation
        .expect("automation");
    assert_eq!(definition(&enabled.definition)["enabled"], true);
    let updated = client
        .update_automation(pb::UpdateAutomationRequest {
            workspace_id: WS.into(),
            id: ids[0].clone(),
            definition: json!({"name": "Renamed",
                "trigger": {"type": "tag_added", "tag": "vip"},
                "actions": [{"type": "remove_tag", "tag": "t"}]})
            .to_string(),
        })
        .await
        .expect("update")
        .into_inner()
        .automation
        .expect("automation");
    let updated = definition(&updated.definition);
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["enabled"], false, "update replaces enabled too");
    client
        .delete_automation(pb::DeleteAutomationRequest {
            workspace_id: WS.into(),
            id: ids[0].clone(),
        })
        .await
        .expect("delete");
    let e = client
        .delete_automation(pb::DeleteAutomationRequest {
            workspace_id: WS.into(),
            id: ids[0].clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn a_disabled_automation_does_nothing_and_erasure_ends_enrollments() {
    let st = stack().await;
    let tpl = st.template("Hi", "Hi").await;
    let seq = st
        .sequence(
            json!({"name": "Slow", "steps": [{"type": "wait", "duration": "1h"},
                                                  {"type": "email", "template_id": tpl}]}),
        )
        .await;
    let aut = st
        .automation(json!({"name": "Enroll", "enabled": false,
            "trigger": {"type": "contact_created"},
            "actions": [{"type": "enroll", "sequence_id": seq}]}))
        .await;
    let early = st.upsert("early@example.com", &[]).await;
    st.quiesce().await;
    assert!(
        st.enrollments(&early.id).await.is_empty(),
        "disabled: nothing"
    );
    st.automations
        .clone()
        .enable_automation(pb::EnableAutomationRequest {
            workspace_id: WS.into(),
            id: aut.clone(),
        })
        .await
        .expect("enable");
    let jane = st.upsert("jane@example.com", &[]).await;
    eventually(
        std::time::Duration::from_secs(10),
        "jane enrolled",
        || async { (!st.enrollments(&jane.id).await.is_empty()).then_some(()) },
    )
    .await;

    st.contacts
        .clone()
        .delete_contact(meisa_proto::contacts::DeleteContactRequest {
            workspace_id: WS.into(),
            id: jane.id.clone(),
            causation: None,
        })
        .await
        .expect("erase");
    eventually(
        std::time::Duration::from_secs(10),
        "the enrollment to end",
        || async {
            let stats = st.automation_stats(&aut).await;
            (stats.exited == 1).then_some(())
        },
    )
    .await;
    // Nothing names the contact any more.
    assert!(st.enrollments(&jane.id).await.is_empty());
    assert!(st.activity(&jane.id).await.is_empty());
    let all = st.sequence_enrollments(&seq).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, pb::EnrollmentStatus::Exited as i32);
    assert_eq!(all[0].exit_reason, "contact_deleted");
    assert!(all[0].contact_id.is_empty());
}

#[tokio::test]
async fn contacts_matching_a_condition_are_found_paged_and_counted() {
    let st = stack().await;
    for (i, posts) in [7, 1, 5, 9, 2].into_iter().enumerate() {
        st.upsert(
            &format!("c{i}@example.com"),
            &[("posts_generated", json!(posts))],
        )
        .await;
    }
    let ask = |conditions: &str, limit: u32, cursor: &str, count_all: bool| {
        let mut client = st.automations.clone();
        let request = pb::MatchContactsRequest {
            workspace_id: WS.into(),
            conditions: conditions.into(),
            page: Some(meisa_proto::common::PageRequest {
                limit,
                cursor: cursor.into(),
            }),
            count_all,
            max_scan: 0,
        };
        async move { client.match_contacts(request).await.map(|r| r.into_inner()) }
    };
    let at_least_5 = r#"{"all": [{"field": "posts_generated", "op": "gte", "value": 5}]}"#;
    let emails = |r: &pb::MatchContactsResponse| {
        r.contacts
            .iter()
            .map(|c| c.email.clone())
            .collect::<Vec<_>>()
    };
    // A page of two, then the rest from where it stopped.
    let first = ask(at_least_5, 2, "", false).await.unwrap();
    assert_eq!(emails(&first), ["c0@example.com", "c2@example.com"]);
    assert!(!first.next_cursor.is_empty());
    let rest = ask(at_least_5, 2, &first.next_cursor, false).await.unwrap();
    assert_eq!(emails(&rest), ["c3@example.com"]);
    assert_eq!(rest.next_cursor, "", "the scan reached the end");
    // An audience preview: a sample of one, every match counted.
    let preview = ask(at_least_5, 1, "", true).await.unwrap();
    assert_eq!(preview.contacts.len(), 1);
    assert_eq!(preview.matched, 3);
    assert_eq!(preview.scanned, 5);
    // A bad tree names its path, as when an automation is saved.
    let err = ask(r#"{"all": [{"field": "x", "op": "nope"}]}"#, 1, "", false)
        .await
        .unwrap_err();
    let api = meisa_runtime::errors::ApiError::from_status(&err);
    assert_eq!(api.code, ErrorCode::InvalidField);
    assert_eq!(api.field.as_deref(), Some("conditions.all[0].op"));
}
