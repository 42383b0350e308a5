//! The unsubscribe link end to end (DESIGN §5, RFC 8058): an email sent the way automations send
//! it arrives at an SMTP server, its `List-Unsubscribe` link is followed through the gateway, and
//! contacts ends up with `subscribed: false`. Also erasure, which reaches the mailer.

use std::{net::SocketAddr, sync::Arc};

use meisa_testkit::{TestDb, smtp::SmtpServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    helpers::{
        PUBLIC_URL, TestApp, assert_error, jane, spawn_app, spawn_app_without_mailer,
        token_from_header, welcome_template,
    },
    messages::{send, snapshot},
    templates::wait_for_status,
};

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

async fn one_click(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/u/{token}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(ONE_CLICK)
        .send()
        .await
        .unwrap()
}

async fn page(app: &TestApp, token: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let resp = app
        .http
        .get(app.url(&format!("/u/{token}")))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// Jane, a template, and one email to her delivered; returns (contact id, message id, token).
async fn jane_gets_an_email(app: &TestApp) -> (String, String, String) {
    let contact_id = app.upsert_ok(jane()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let template = app.create_template(welcome_template()).await;
    let sent = send(
        app,
        &format!("job-{contact_id}"),
        snapshot(app, &contact_id).await,
        template["id"].as_str().unwrap(),
        Default::default(),
    )
    .await;
    let message_id = sent["id"].as_str().unwrap().to_string();
    let mails = app.mails(1).await;
    let header = mails[0]
        .header("List-Unsubscribe")
        .expect("List-Unsubscribe");
    assert!(header.starts_with(&format!("<{PUBLIC_URL}/u/")), "{header}");
    (contact_id, message_id, token_from_header(&header))
}

#[tokio::test]
async fn the_link_in_a_received_email_unsubscribes_the_contact() {
    let app = spawn_app().await;
    let (contact_id, _, token) = jane_gets_an_email(&app).await;

    // GET shows the page, without a key, and unsubscribes nobody.
    let (status, headers, html) = page(&app, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(html.contains("j***@example.com"), "{html}");
    assert!(
        !html.contains("jane@example.com"),
        "the whole address leaks: {html}"
    );
    assert!(!html.contains(&contact_id), "the contact id leaks: {html}");
    assert!(!html.contains(&token), "the page need not repeat the token");
    assert_eq!(html.matches("<form method=\"post\">").count(), 1, "{html}");
    assert!(html.contains(">Unsubscribe</button>"), "{html}");
    assert_eq!(app.contact(&contact_id).await["subscribed"], true);

    // The one-click POST of RFC 8058.
    let resp = one_click(&app, &token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(app.contact(&contact_id).await["subscribed"], false);

    // Again: still 200.
    assert_eq!(one_click(&app, &token).await.status(), StatusCode::OK);
    // The page now says it is done, and offers no button.
    let (status, _, html) = page(&app, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("You are unsubscribed"), "{html}");
    assert!(html.contains("j***@example.com"));
    assert!(!html.contains("<form"), "{html}");
    // The page's own button (a browser form post) gets a page.
    let resp = app
        .http
        .post(app.url(&format!("/u/{token}")))
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("You are unsubscribed"));

    // A tampered or made-up token is a 404: a page for GET, and for POST too.
    let mut bytes = token.clone().into_bytes();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    for bad in [tampered.as_str(), "abc", &"x".repeat(300), "a.b"] {
        let (status, headers, html) = page(&app, bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(html.contains("not valid"), "{html}");
        assert_eq!(one_click(&app, bad).await.status(), StatusCode::NOT_FOUND);
    }

    // The unsubscribe shows in what is sent next: nothing.
    let template = app.create_template(welcome_template()).await;
    let next = send(
        &app,
        "job-after",
        snapshot(&app, &contact_id).await,
        template["id"].as_str().unwrap(),
        Default::default(),
    )
    .await;
    let next = wait_for_status(&app, next["id"].as_str().unwrap(), "suppressed").await;
    assert!(
        next["reason"].as_str().unwrap().contains("unsubscribed"),
        "{next}"
    );
}

#[tokio::test]
async fn erasing_a_contact_erases_its_mail_and_stops_its_links() {
    let app = spawn_app().await;
    let (contact_id, message_id, token) = jane_gets_an_email(&app).await;
    wait_for_status(&app, &message_id, "sent").await;

    let resp = app.delete(&format!("/api/v1/contacts/{contact_id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Contacts erased at once and announced it; the mailer erases when it has read that.
    mailer_caught_up(&app).await;
    let history: Value = app
        .get(&format!("/api/v1/messages/?contact_id={contact_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"], json!([]));
    assert_error(
        app.get(&format!("/api/v1/messages/{message_id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    let (status, _, _) = page(&app, &token).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the erased message's link names nothing"
    );
}

/// The mailer has read, and acted on, every change contacts committed.
async fn mailer_caught_up(app: &TestApp) {
    app.until_changes_published().await;
    meisa_testkit::until_streams_caught_up(
        &app.stream_prefix,
        4,
        "mailer",
        std::time::Duration::from_secs(30),
    )
    .await;
}

/// A mailer on a chosen address and database, that a test can stop and start again.
struct Mailer {
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Mailer {
    async fn start(
        db: &TestDb,
        addr: SocketAddr,
        contacts: SocketAddr,
        smtp: &SmtpServer,
        stream_prefix: &str,
    ) -> Self {
        let mut config = meisa_mailer::Config::local(&db.url);
        config.stream = Some(meisa_mailer::StreamConfig::local(
            &meisa_testkit::redis_url(),
            stream_prefix,
            4,
        ));
        config.grpc_addr = addr.to_string();
        config.contacts_url = format!("http://{contacts}");
        config.smtp = Some(meisa_mailer::transport::SmtpUrl::parse(&smtp.url()).expect("smtp"));
        config.public_url = PUBLIC_URL.into();
        config.db_max_connections = 4;
        let app = meisa_mailer::Application::build(config)
            .await
            .expect("build mailer");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            let _ = app.run(token).await;
        });
        Self { shutdown, handle }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.await;
    }
}

#[tokio::test]
async fn with_the_mailer_down_erasure_answers_at_once_and_the_mailer_finishes_it_when_back() {
    let app = spawn_app_without_mailer().await;
    let addr: SocketAddr = app
        .mailer_url
        .trim_start_matches("http://")
        .parse()
        .expect("the gateway's mailer address");
    let contacts = app.contacts_addr.expect("contacts runs");
    let db = TestDb::create("mailer").await;
    meisa_mailer::migrate(&db.url)
        .await
        .expect("migrate mailer");
    let smtp = Arc::new(SmtpServer::start().await);

    // Jane gets an email while the mailer is up.
    let mailer = Mailer::start(&db, addr, contacts, &smtp, &app.stream_prefix).await;
    let contact_id = app.upsert_ok(jane()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let template = app.create_template(welcome_template()).await;
    let sent = send(
        &app,
        "job-1",
        snapshot(&app, &contact_id).await,
        template["id"].as_str().unwrap(),
        Default::default(),
    )
    .await;
    smtp.wait_for(1, std::time::Duration::from_secs(20)).await;
    mailer.stop().await;

    // Down: readiness stays green (the mailer is reported, not required), mail endpoints are
    // 503s, the unsubscribe page asks to come back.
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(ready["checks"]["contacts"], "ok", "{ready}");
    assert_ne!(ready["checks"]["mailer"], "ok", "{ready}");
    // (This app runs no automations service, so that is reported too.)
    assert_eq!(ready["degraded"], json!(["mailer", "automations"]));
    let resp = app.get("/api/v1/templates/").await;
    assert_eq!(resp.headers()["retry-after"], "2");
    let error = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable", None).await;
    assert_eq!(
        error["message"],
        "the mailer service is unavailable; retry shortly"
    );
    let (status, headers, _) = page(&app, &"A".repeat(44)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "2");

    // Erasure does not wait for the mailer: contacts erases and announces it in one
    // transaction, so the answer is 204 and the contact is gone at once.
    let path = format!("/api/v1/contacts/{contact_id}");
    let resp = app.delete(&path).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get(&path).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    // A retry finds nothing left to erase here.
    let resp = app.delete(&path).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;

    // Back up: the mailer reads the deletion it missed and erases the mail.
    let mailer = Mailer::start(&db, addr, contacts, &smtp, &app.stream_prefix).await;
    mailer_caught_up(&app).await;
    assert_error(
        app.get(&format!(
            "/api/v1/messages/{}",
            sent["id"].as_str().unwrap()
        ))
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    mailer.stop().await;
}
