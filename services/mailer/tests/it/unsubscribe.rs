//! The unsubscribe path end to end, against the real contacts service run in-process.

use std::time::Duration;

use meisa_proto::{
    contacts::{self as cpb, get_contact_request::By},
    mailer::{self as pb, MessageStatus},
};
use meisa_testkit::smtp::SmtpServer;

use crate::helpers::*;

#[tokio::test]
async fn the_link_in_a_received_email_unsubscribes_the_contact_at_contacts() {
    let contacts = spawn_contacts().await;
    let mut cc = contacts.client.clone();
    let created = cc
        .upsert(cpb::UpsertRequest {
            workspace_id: WS.into(),
            contact: Some(cpb::ContactInput {
                email: "jane@example.com".into(),
                external_id: "usr_1".into(),
                first_name: Some(cpb::StringPatch {
                    value: Some("Jane".into()),
                }),
                custom_fields: [("plan".to_string(), string("pro"))].into(),
                ..Default::default()
            }),
            causation: None,
            return_contact: true,
        })
        .await
        .expect("upsert")
        .into_inner();
    let snapshot = created.contact.expect("contact");
    assert!(snapshot.subscribed);

    let smtp = SmtpServer::start().await;
    let url = contacts.url.clone();
    let app = spawn_app_with(Some(&smtp), move |c| c.contacts_url = url).await;
    let t = app
        .create_template(template(
            "Hi {{ first_name }}",
            "<p>{{ plan }}</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
        ))
        .await
        .unwrap();
    app.send("job-1", snapshot.clone(), &t.id).await.unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(15)).await;
    let token = token_from_header(
        &mails[0]
            .header("List-Unsubscribe")
            .expect("List-Unsubscribe"),
    );

    let mut mc = app.client.clone();
    let described = mc
        .describe_unsubscribe_token(pb::DescribeUnsubscribeTokenRequest {
            token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.contact_id, snapshot.id);
    assert_eq!(described.workspace_id, WS);
    assert_eq!(described.masked_email, "j***@example.com");
    assert!(!described.already_unsubscribed);

    // A modified token is not found, whichever character changed.
    for pos in [0, 20, 43] {
        let mut bytes = token.clone().into_bytes();
        bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let err = mc
            .unsubscribe(pb::UnsubscribeRequest {
                token: tampered.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        let err = mc
            .describe_unsubscribe_token(pb::DescribeUnsubscribeTokenRequest { token: tampered })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
    }

    let u = mc
        .unsubscribe(pb::UnsubscribeRequest {
            token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.contact_id, snapshot.id);
    assert!(u.changed);
    let now = cc
        .get_contact(cpb::GetContactRequest {
            workspace_id: WS.into(),
            by: Some(By::Id(snapshot.id.clone())),
        })
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    assert!(!now.subscribed, "SetSubscribed(false) reached contacts");
    assert_eq!(now.version, snapshot.version + 1);

    // Again: OK, nothing changes.
    let again = mc
        .unsubscribe(pb::UnsubscribeRequest {
            token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    let described = mc
        .describe_unsubscribe_token(pb::DescribeUnsubscribeTokenRequest { token })
        .await
        .unwrap()
        .into_inner();
    assert!(described.already_unsubscribed);

    // Later sends are suppressed: with the fresh snapshot, and even with a stale one.
    let fresh = app
        .send("job-2", now.clone(), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(fresh.status, MessageStatus::Suppressed as i32);
    let stale = app
        .send("job-3", snapshot.clone(), &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(stale.status, MessageStatus::Suppressed as i32);
    assert!(
        stale.reason.contains("unsubscribe link"),
        "{}",
        stale.reason
    );

    // Resubscribing at contacts (a newer snapshot with subscribed=true) lifts it.
    let resubscribed = cc
        .set_subscribed(cpb::SetSubscribedRequest {
            workspace_id: WS.into(),
            id: snapshot.id.clone(),
            subscribed: true,
            causation: None,
        })
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    let back = app
        .send("job-4", resubscribed, &t.id)
        .await
        .unwrap()
        .message
        .unwrap();
    assert_eq!(back.status, MessageStatus::Queued as i32);
    smtp.wait_for(2, Duration::from_secs(15)).await;
    meisa_testkit::clean_redis(&contacts.prefix).await;
}

#[tokio::test]
async fn an_unsubscribe_stands_even_when_contacts_is_down() {
    // Config::local points MEISA_CONTACTS_URL at a closed port.
    let smtp = SmtpServer::start().await;
    let app = spawn_app(Some(&smtp)).await;
    let t = app
        .create_template(template("Hi", "<p>Hi</p>"))
        .await
        .unwrap();
    let c = contact("ct_1", "a@b.test", Some("A"));
    app.send("job-1", c.clone(), &t.id).await.unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(15)).await;
    let token = token_from_header(&mails[0].header("List-Unsubscribe").unwrap());
    let u = app
        .client
        .clone()
        .unsubscribe(pb::UnsubscribeRequest { token })
        .await
        .expect("the person who clicked sees no error for our outage")
        .into_inner();
    assert!(u.changed);
    let later = app.send("job-2", c, &t.id).await.unwrap().message.unwrap();
    assert_eq!(later.status, MessageStatus::Suppressed as i32);
}
