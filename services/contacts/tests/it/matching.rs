//! DESIGN §2: matching, merge, type fixing, no-ops, isolation.

use meisa_proto::common::value::Kind;
use meisa_runtime::errors::ErrorCode;

use crate::*;

#[tokio::test]
async fn create_then_update_by_external_id() {
    let app = spawn_app().await;
    let mut c = with_fields(contact("jane@example.com", "usr_1"), &[("plan", s("free"))]);
    c.first_name = name("Jane");
    let created = app.upsert(WS, c).await.unwrap();
    assert!(created.created);
    assert_eq!(created.version, 1);
    assert!(created.id.starts_with("ct_"));
    assert!(created.changed.contains(&"first_name".to_string()));
    assert!(created.changed.contains(&"custom_fields.plan".to_string()));

    let updated = app
        .upsert(
            WS,
            with_fields(contact("jane@example.com", "usr_1"), &[("plan", s("pro"))]),
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.id.as_str(), updated.created, updated.version),
        (created.id.as_str(), false, 2)
    );
    assert_eq!(updated.changed, ["custom_fields.plan"]);
    let stored = app.get(WS, &created.id).await.unwrap();
    assert_eq!(
        stored.first_name.as_deref(),
        Some("Jane"),
        "fields not sent are kept"
    );
}

#[tokio::test]
async fn a_new_email_on_a_known_external_id_is_an_email_change() {
    let app = spawn_app().await;
    let a = app
        .upsert(WS, contact("old@example.com", "usr_1"))
        .await
        .unwrap();
    let r = app
        .upsert(WS, contact("new@example.com", "usr_1"))
        .await
        .unwrap();
    assert_eq!(r.id, a.id);
    assert_eq!(r.changed, ["email"]);
    assert_eq!(app.get(WS, &a.id).await.unwrap().email, "new@example.com");
}

#[tokio::test]
async fn external_id_of_one_and_email_of_another_is_a_conflict_that_writes_nothing() {
    let app = spawn_app().await;
    let a = app
        .upsert(WS, contact("a@example.com", "usr_a"))
        .await
        .unwrap();
    let b = app
        .upsert(WS, contact("b@example.com", "usr_b"))
        .await
        .unwrap();
    let mut c = contact("b@example.com", "usr_a");
    c.first_name = name("Changed");
    let e = assert_rejected(app.upsert(WS, c).await, ErrorCode::Conflict, "email");
    assert!(e.message.contains(&b.id), "{}", e.message);
    let a_now = app.get(WS, &a.id).await.unwrap();
    assert_eq!((a_now.version, a_now.first_name), (1, None));
    assert_eq!(app.events_for(&a.id).await.len(), 1);
}

#[tokio::test]
async fn email_of_a_contact_without_external_id_attaches_it() {
    let app = spawn_app().await;
    // Internal callers (imports) may create contacts without an external id.
    let b = app.upsert(WS, contact("b@example.com", "")).await.unwrap();
    let r = app
        .upsert(WS, contact("B@Example.com", "usr_b"))
        .await
        .unwrap();
    assert_eq!(
        (r.id.as_str(), r.created, r.version),
        (b.id.as_str(), false, 2)
    );
    assert_eq!(r.changed, ["external_id"]);
    assert_eq!(app.get(WS, &b.id).await.unwrap().external_id, "usr_b");
}

#[tokio::test]
async fn email_of_a_contact_with_another_external_id_is_a_conflict() {
    let app = spawn_app().await;
    let b = app
        .upsert(WS, contact("b@example.com", "usr_b"))
        .await
        .unwrap();
    assert_rejected(
        app.upsert(WS, contact("b@example.com", "usr_other")).await,
        ErrorCode::Conflict,
        "email",
    );
    assert_eq!(app.get(WS, &b.id).await.unwrap().external_id, "usr_b");
}

#[tokio::test]
async fn custom_fields_merge_and_null_removes() {
    let app = spawn_app().await;
    let a = app
        .upsert(
            WS,
            with_fields(
                contact("a@example.com", "u"),
                &[("plan", s("free")), ("posts", Kind::IntValue(0))],
            ),
        )
        .await
        .unwrap();
    let r = app
        .upsert(
            WS,
            with_fields(
                contact("a@example.com", "u"),
                &[
                    ("plan", Kind::NullValue(true)),
                    ("beta", Kind::BoolValue(true)),
                ],
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.changed, ["custom_fields.beta", "custom_fields.plan"]);
    let fields = fields_of(&app.get(WS, &a.id).await.unwrap());
    assert_eq!(
        fields.get("posts"),
        Some(&Some(Kind::IntValue(0))),
        "integers stay integers"
    );
    assert_eq!(fields.get("beta"), Some(&Some(Kind::BoolValue(true))));
    assert!(!fields.contains_key("plan"));
}

#[tokio::test]
async fn an_upsert_that_changes_nothing_writes_and_emits_nothing() {
    let app = spawn_app().await;
    let c = with_fields(
        contact("a@example.com", "u"),
        &[("posts", Kind::IntValue(5))],
    );
    let a = app.upsert(WS, c.clone()).await.unwrap();
    let again = app.upsert(WS, c).await.unwrap();
    assert_eq!((again.created, again.version), (false, 1));
    assert!(again.changed.is_empty());
    // 5 and 5.0 are the same number.
    let float = with_fields(
        contact("a@example.com", "u"),
        &[("posts", Kind::DoubleValue(5.0))],
    );
    assert!(app.upsert(WS, float).await.unwrap().changed.is_empty());
    assert_eq!(app.events_for(&a.id).await.len(), 1);
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_changes")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(history, 1);
}

#[tokio::test]
async fn the_first_value_fixes_the_type_and_a_mismatch_writes_nothing() {
    let app = spawn_app().await;
    let a = app
        .upsert(
            WS,
            with_fields(contact("a@example.com", "u"), &[("plan", s("free"))]),
        )
        .await
        .unwrap();
    let cases = [
        (
            "plan",
            Kind::IntValue(3),
            "custom_fields.plan: field is a string, got a number",
        ),
        (
            "plan",
            Kind::BoolValue(true),
            "custom_fields.plan: field is a string, got a boolean",
        ),
    ];
    for (field, value, message) in cases {
        let mut c = with_fields(
            contact("a@example.com", "u"),
            &[(field, value), ("other", s("x"))],
        );
        c.first_name = name("Not written");
        let e = assert_rejected(
            app.upsert(WS, c).await,
            ErrorCode::InvalidField,
            "custom_fields.plan",
        );
        assert_eq!(e.message, message);
    }
    app.upsert(
        WS,
        with_fields(contact("b@example.com", "v"), &[("n", Kind::IntValue(1))]),
    )
    .await
    .unwrap();
    let e = assert_rejected(
        app.upsert(
            WS,
            with_fields(contact("b@example.com", "v"), &[("n", s("one"))]),
        )
        .await,
        ErrorCode::InvalidField,
        "custom_fields.n",
    );
    assert_eq!(
        e.message,
        "custom_fields.n: field is a number, got a string"
    );
    let stored = app.get(WS, &a.id).await.unwrap();
    assert_eq!((stored.version, stored.first_name.clone()), (1, None));
    assert!(
        !fields_of(&stored).contains_key("other"),
        "nothing of a rejected upsert is written"
    );
}

#[tokio::test]
async fn a_date_string_seen_first_makes_a_date_field() {
    let app = spawn_app().await;
    app.upsert(
        WS,
        with_fields(
            contact("a@example.com", "u"),
            &[
                ("signup_date", s("2026-11-20T10:00:00Z")),
                ("birthday", s("1990-04-01")),
            ],
        ),
    )
    .await
    .unwrap();
    let fields = app
        .client
        .clone()
        .list_fields(meisa_proto::contacts::ListFieldsRequest {
            workspace_id: WS.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .fields;
    let ty = |n: &str| fields.iter().find(|f| f.name == n).map(|f| f.r#type);
    let date = meisa_proto::common::FieldType::Date as i32;
    assert_eq!(
        (ty("signup_date"), ty("birthday")),
        (Some(date), Some(date))
    );
    assert_eq!(fields[0].contacts, 1);
    // A later value must be a date too.
    let e = assert_rejected(
        app.upsert(
            WS,
            with_fields(
                contact("a@example.com", "u"),
                &[("signup_date", s("yesterday"))],
            ),
        )
        .await,
        ErrorCode::InvalidField,
        "custom_fields.signup_date",
    );
    assert!(e.message.contains("RFC 3339"), "{}", e.message);
    app.upsert(
        WS,
        with_fields(
            contact("a@example.com", "u"),
            &[("signup_date", s("2026-12-01"))],
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = spawn_app().await;
    assert_rejected(
        app.upsert(WS, contact("not-an-email", "u")).await,
        ErrorCode::InvalidField,
        "email",
    );
    assert_rejected(
        app.upsert(WS, contact("", "u")).await,
        ErrorCode::InvalidField,
        "email",
    );
    let mut long = contact("a@example.com", "u");
    long.last_name = name(&"x".repeat(257));
    assert_rejected(
        app.upsert(WS, long).await,
        ErrorCode::InvalidField,
        "last_name",
    );
    assert_rejected(
        app.upsert(
            WS,
            with_fields(contact("a@example.com", "u"), &[("9lives", s("x"))]),
        )
        .await,
        ErrorCode::InvalidField,
        "custom_fields.9lives",
    );
    assert_rejected(
        app.upsert(
            WS,
            with_fields(
                contact("a@example.com", "u"),
                &[("bio", s(&"x".repeat(4097)))],
            ),
        )
        .await,
        ErrorCode::InvalidField,
        "custom_fields.bio",
    );
    let many: Vec<(String, Kind)> = (0..101)
        .map(|i| (format!("f{i}"), Kind::IntValue(i)))
        .collect();
    let refs: Vec<(&str, Kind)> = many.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    assert_rejected(
        app.upsert(WS, with_fields(contact("a@example.com", "u"), &refs))
            .await,
        ErrorCode::InvalidField,
        "custom_fields",
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn emails_are_normalized_and_matched_case_insensitively() {
    let app = spawn_app().await;
    let a = app
        .upsert(WS, contact("  Jane@Example.COM ", "u"))
        .await
        .unwrap();
    assert_eq!(app.get(WS, &a.id).await.unwrap().email, "jane@example.com");
    let again = app
        .upsert(WS, contact("JANE@example.com", "u"))
        .await
        .unwrap();
    assert!(again.changed.is_empty());
}

#[tokio::test]
async fn one_workspace_never_sees_another_workspaces_contacts() {
    let app = spawn_app().await;
    let a = app
        .upsert("ws_a", contact("a@example.com", "u"))
        .await
        .unwrap();
    assert_eq!(
        app.get("ws_b", &a.id).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    // The same person in another workspace is another contact.
    let b = app
        .upsert("ws_b", contact("a@example.com", "u"))
        .await
        .unwrap();
    assert!(b.created);
    assert_ne!(a.id, b.id);
    let del = app
        .client
        .clone()
        .delete_contact(meisa_proto::contacts::DeleteContactRequest {
            workspace_id: "ws_b".into(),
            id: a.id.clone(),
            causation: None,
        })
        .await;
    assert_eq!(del.unwrap_err().code(), tonic::Code::NotFound);
    assert!(app.get("ws_a", &a.id).await.is_ok());
}

#[tokio::test]
async fn fifty_concurrent_upserts_of_one_contact_lose_nothing() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            let c = with_fields(
                contact("race@example.com", "usr_race"),
                &[(&format!("f{i}"), Kind::IntValue(i))],
            );
            client
                .clone()
                .upsert(meisa_proto::contacts::UpsertRequest {
                    workspace_id: WS.into(),
                    contact: Some(c),
                    causation: None,
                    return_contact: false,
                })
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 1, "one contact");
    let id = ids.into_iter().next().unwrap();
    let stored = app.get(WS, &id).await.unwrap();
    assert_eq!(stored.custom_fields.len(), 50, "every field kept");
    assert_eq!(stored.version, 50, "one version per effective change");
    let events = app.events_for(&id).await;
    assert_eq!(events.len(), 50);
    let versions: Vec<i64> = events.iter().map(|e| e.version).collect();
    assert_eq!(
        versions,
        (1..=50).collect::<Vec<_>>(),
        "events in version order"
    );
}

/// Upserts are routed by external id, tag changes by contact id, so they run in different lanes:
/// the row lock orders them, and no change is lost or out of version order.
#[tokio::test]
async fn concurrent_upserts_and_tag_changes_of_one_contact_lose_nothing() {
    let app = spawn_app().await;
    let id = app
        .upsert(WS, contact("mix@example.com", "usr_mix"))
        .await
        .unwrap()
        .id;
    let mut tasks = Vec::new();
    for i in 0..25 {
        let mut client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            let c = with_fields(
                contact("mix@example.com", "usr_mix"),
                &[(&format!("f{i}"), Kind::IntValue(i))],
            );
            client
                .upsert(meisa_proto::contacts::UpsertRequest {
                    workspace_id: WS.into(),
                    contact: Some(c),
                    causation: None,
                    return_contact: false,
                })
                .await
                .map(|r| r.into_inner().changed)
        }));
        let mut client = app.client.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            client
                .add_tags(meisa_proto::contacts::AddTagsRequest {
                    workspace_id: WS.into(),
                    id,
                    tags: vec![format!("t{i}")],
                    causation: None,
                })
                .await
                .map(|r| r.into_inner().changed)
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().len(),
            1,
            "each write is one change"
        );
    }
    let stored = app.get(WS, &id).await.unwrap();
    assert_eq!(stored.custom_fields.len(), 25, "every field kept");
    assert_eq!(stored.tags.len(), 25, "every tag kept");
    assert_eq!(stored.version, 51, "one version per change");
    let versions: Vec<i64> = app
        .events_for(&id)
        .await
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(
        versions,
        (1..=51).collect::<Vec<_>>(),
        "events in version order"
    );
}

#[tokio::test]
async fn an_upsert_answers_with_the_contact_only_when_asked() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let upsert = |return_contact: bool| {
        let mut client = client.clone();
        async move {
            client
                .upsert(meisa_proto::contacts::UpsertRequest {
                    workspace_id: WS.into(),
                    contact: Some(with_fields(
                        contact("ask@example.com", "usr_ask"),
                        &[("plan", s("free"))],
                    )),
                    causation: None,
                    return_contact,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let plain = upsert(false).await;
    assert!(plain.contact.is_none());
    let asked = upsert(true).await;
    let c = asked.contact.expect("asked for the contact");
    assert_eq!(
        (c.id.as_str(), c.email.as_str()),
        (plain.id.as_str(), "ask@example.com")
    );
    assert_eq!(fields_of(&c).get("plan"), Some(&Some(s("free"))));

    let batch = |return_contacts: bool| meisa_proto::contacts::BatchUpsertRequest {
        workspace_id: WS.into(),
        contacts: vec![contact("ask@example.com", "usr_ask")],
        causation: None,
        return_contacts,
    };
    use meisa_proto::contacts::batch_upsert_result::Result as R;
    for (asked, want) in [(false, false), (true, true)] {
        let r = client
            .batch_upsert(batch(asked))
            .await
            .unwrap()
            .into_inner();
        match &r.results[0].result {
            Some(R::Ok(o)) => assert_eq!(o.contact.is_some(), want, "{o:?}"),
            other => panic!("unexpected result {other:?}"),
        }
    }
}
