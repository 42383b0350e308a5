//! Tags, subscription, lists, history and replay.

use meisa_proto::{common::PageRequest, contacts as pb};
use meisa_runtime::errors::ErrorCode;

use crate::*;

#[tokio::test]
async fn tags_and_subscription_are_changes_with_events() {
    let app = spawn_app().await;
    let a = app.upsert(WS, contact("a@example.com", "u")).await.unwrap();
    let mut client = app.client.clone();
    let r = client
        .add_tags(pb::AddTagsRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
            tags: vec!["pro".into(), "beta".into()],
            causation: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.changed, ["tags"]);
    assert_eq!(r.contact.unwrap().tags, ["beta", "pro"]);
    let again = client
        .add_tags(pb::AddTagsRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
            tags: vec!["pro".into()],
            causation: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.changed.is_empty(), "adding a tag twice is no change");
    client
        .remove_tags(pb::RemoveTagsRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
            tags: vec!["beta".into()],
            causation: None,
        })
        .await
        .unwrap();
    let causation = meisa_proto::common::Causation {
        source: "unsubscribe".into(),
        ..Default::default()
    };
    let unsub = client
        .set_subscribed(pb::SetSubscribedRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
            subscribed: false,
            causation: Some(causation),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unsub.changed, ["subscribed"]);

    let events = app.events_for(&a.id).await;
    assert_eq!(events.len(), 4);
    assert_eq!(events[1].changes[0].tags_added, ["beta", "pro"]);
    assert_eq!(events[2].changes[0].tags_removed, ["beta"]);
    assert_eq!(events[3].causation.as_ref().unwrap().source, "unsubscribe");

    let bad = client
        .add_tags(pb::AddTagsRequest {
            workspace_id: WS.into(),
            id: a.id.clone(),
            tags: vec!["  ".into()],
            causation: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        meisa_runtime::errors::ApiError::from_status(&bad)
            .field
            .as_deref(),
        Some("tags[0]")
    );
}

#[tokio::test]
async fn contacts_list_by_cursor_and_by_tag() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            app.upsert(WS, contact(&format!("c{i}@example.com"), &format!("u{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    app.upsert("ws_other", contact("x@example.com", "x"))
        .await
        .unwrap();
    let mut client = app.client.clone();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .list_contacts(pb::ListContactsRequest {
                workspace_id: WS.into(),
                page: Some(PageRequest { limit: 3, cursor }),
                tag: String::new(),
                query: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.contacts.into_iter().map(|c| c.id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(
        seen, ids,
        "every contact once, oldest first, no other workspace"
    );

    client
        .add_tags(pb::AddTagsRequest {
            workspace_id: WS.into(),
            id: ids[2].clone(),
            tags: vec!["vip".into()],
            causation: None,
        })
        .await
        .unwrap();
    let vip = client
        .list_contacts(pb::ListContactsRequest {
            workspace_id: WS.into(),
            page: None,
            tag: "vip".into(),
            query: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        vip.contacts
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>(),
        [ids[2].clone()]
    );
}

#[tokio::test]
async fn contacts_are_found_by_part_of_their_email_name_or_external_id() {
    let app = spawn_app().await;
    let jane = app
        .upsert(WS, contact("jane.doe@example.com", "user_50%_off"))
        .await
        .unwrap()
        .id;
    let bob = app
        .upsert(WS, contact("bob@example.org", "user_2"))
        .await
        .unwrap()
        .id;
    app.upsert("ws_other", contact("jane.doe@example.com", "user_9"))
        .await
        .unwrap();
    let search = |query: &str| {
        let mut client = app.client.clone();
        let request = pb::ListContactsRequest {
            workspace_id: WS.into(),
            page: None,
            tag: String::new(),
            query: query.into(),
        };
        async move {
            client.list_contacts(request).await.map(|r| {
                r.into_inner()
                    .contacts
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            })
        }
    };
    assert_eq!(
        search("JANE.D").await.unwrap(),
        std::slice::from_ref(&jane),
        "case-insensitive, this workspace only"
    );
    assert_eq!(
        search("example.org").await.unwrap(),
        std::slice::from_ref(&bob)
    );
    assert_eq!(
        search("50%").await.unwrap(),
        std::slice::from_ref(&jane),
        "% is a character, not a wildcard"
    );
    assert_eq!(search("user_").await.unwrap().len(), 2);
    assert!(search("nobody").await.unwrap().is_empty());
    assert_eq!(
        search("  ").await.unwrap().len(),
        2,
        "blank means no filter"
    );
    let err = search("a\0b").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("query"), "{}", err.message());
}

#[tokio::test]
async fn a_contacts_history_lists_its_changes_newest_first() {
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
    app.upsert(
        WS,
        with_fields(contact("a@example.com", "u"), &[("plan", s("team"))]),
    )
    .await
    .unwrap();
    let mut client = app.client.clone();
    let first = client
        .list_changes(pb::ListChangesRequest {
            workspace_id: WS.into(),
            contact_id: a.id.clone(),
            page: Some(PageRequest {
                limit: 2,
                cursor: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.changes.iter().map(|c| c.version).collect::<Vec<_>>(),
        [3, 2]
    );
    let rest = client
        .list_changes(pb::ListChangesRequest {
            workspace_id: WS.into(),
            contact_id: a.id.clone(),
            page: Some(PageRequest {
                limit: 2,
                cursor: first.next_cursor,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rest.changes.iter().map(|c| c.version).collect::<Vec<_>>(),
        [1]
    );
    assert!(rest.next_cursor.is_empty());
    let other = client
        .list_changes(pb::ListChangesRequest {
            workspace_id: "ws_other".into(),
            contact_id: a.id.clone(),
            page: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        meisa_runtime::errors::ApiError::from_status(&other).code,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn a_consumer_can_replay_a_range_of_a_shard() {
    let app = spawn_app().await;
    for i in 0..20 {
        app.upsert(WS, contact(&format!("c{i}@example.com"), &format!("u{i}")))
            .await
            .unwrap();
    }
    app.wait_published().await;
    let streamed = app.stream_events().await;
    let shard = streamed[0].shard;
    let on_shard: Vec<_> = streamed.iter().filter(|e| e.shard == shard).collect();
    let replayed = app
        .client
        .clone()
        .replay_changes(pb::ReplayChangesRequest {
            shard,
            from_seq: 1,
            to_seq: on_shard.len() as u64,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(replayed.len(), on_shard.len());
    for (r, s) in replayed.iter().zip(on_shard) {
        assert_eq!((r.seq, &r.event_id), (s.seq, &s.event_id));
    }
}

#[tokio::test]
async fn batch_upsert_answers_each_item_and_one_bad_item_fails_alone() {
    let app = spawn_app().await;
    let items = vec![
        contact("a@example.com", "a"),
        contact("bad", "b"),
        contact("c@example.com", "c"),
    ];
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
    use pb::batch_upsert_result::Result as R;
    match (
        &r.results[0].result,
        &r.results[1].result,
        &r.results[2].result,
    ) {
        (Some(R::Ok(a)), Some(R::Error(b)), Some(R::Ok(c))) => {
            assert!(a.created && c.created);
            assert_eq!(
                (b.code.as_str(), b.field.as_str()),
                ("invalid_field", "email")
            );
        }
        other => panic!("unexpected results {other:?}"),
    }
}

#[tokio::test]
async fn a_chain_of_email_changes_in_one_batch_is_applied_in_order() {
    // One lane, so both items share a transaction: B gives up y, then A takes it. A set-based
    // update may trip the unique index mid-statement; the batch then runs item by item.
    let app = spawn_app_with(|c| c.writer_lanes = 1).await;
    let a = app.upsert(WS, contact("x@example.com", "a")).await.unwrap();
    let b = app.upsert(WS, contact("y@example.com", "b")).await.unwrap();
    let r = app
        .client
        .clone()
        .batch_upsert(pb::BatchUpsertRequest {
            workspace_id: WS.into(),
            contacts: vec![contact("z@example.com", "b"), contact("y@example.com", "a")],
            causation: None,
            return_contacts: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.results
            .iter()
            .all(|r| matches!(r.result, Some(pb::batch_upsert_result::Result::Ok(_)))),
        "{r:?}"
    );
    assert_eq!(app.get(WS, &a.id).await.unwrap().email, "y@example.com");
    assert_eq!(app.get(WS, &b.id).await.unwrap().email, "z@example.com");
    assert_eq!(app.events_for(&a.id).await.len(), 2);
    assert_eq!(app.events_for(&b.id).await.len(), 2);
}

/// A stored value that does not fit its type is an internal error, never a silent default: a
/// history row that does not decode is not skipped, custom fields that are not an object of
/// scalars are not read as empty.
#[tokio::test]
async fn a_corrupt_row_is_an_internal_error_not_a_default() {
    let app = spawn_app().await;
    let a = app.upsert(WS, contact("a@example.com", "u")).await.unwrap();
    sqlx::query("UPDATE contact_changes SET payload = '\\xffff'::bytea WHERE contact_id = $1")
        .bind(&a.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let history = app
        .client
        .clone()
        .list_changes(pb::ListChangesRequest {
            workspace_id: WS.into(),
            contact_id: a.id.clone(),
            page: None,
        })
        .await
        .unwrap_err();
    let e = meisa_runtime::errors::ApiError::from_status(&history);
    assert_eq!(e.code, ErrorCode::Internal, "{e:?}");
    assert!(
        !e.message.contains("contact_changes"),
        "no internals: {e:?}"
    );

    sqlx::query("UPDATE contacts SET custom_fields = '{\"plan\": [1]}' WHERE id = $1")
        .bind(&a.id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.get(WS, &a.id).await.unwrap_err().code,
        ErrorCode::Internal
    );
}
