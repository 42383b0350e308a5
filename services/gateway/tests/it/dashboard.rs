//! The dashboard's pages and forms, over HTTP against the real services: sign-in and its
//! throttle, sessions and CSRF, the first-run page, the contact list and page, invitations, and
//! that nothing a contact holds is ever written into a page as markup.

use meisa_gateway::{
    accounts,
    store::{accounts as users, keys},
};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with_automations};

const PASSWORD: &str = "correct horse battery";

/// A browser: keeps cookies, does not follow redirects (the tests look at them).
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    html: String,
    headers: header::HeaderMap,
}

impl Page {
    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.html.find(marker).expect("a form with a csrf token") + marker.len();
        let end = self.html[start..].find('"').unwrap() + start;
        self.html[start..end].to_string()
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Self {
            app,
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar,
        }
    }

    /// The session token this browser holds.
    fn session_token(&self) -> String {
        use reqwest::cookie::CookieStore;
        let url = self.app.url("/").parse().unwrap();
        let cookies = self.jar.cookies(&url).expect("cookies");
        cookies
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("meisa_session="))
            .expect("a session cookie")
            .to_string()
    }

    async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status();
        let headers = resp.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        Page {
            status,
            location,
            html: resp.text().await.unwrap(),
            headers,
        }
    }

    async fn get(&self, path: &str) -> Page {
        Self::page(self.http.get(self.app.url(path)).send().await.unwrap()).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(self.app.url(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn sign_in(&self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK);
        self.post(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf", &form.csrf()),
                ("next", "/contacts"),
            ],
        )
        .await
    }

    /// Signs in as a new user of the app's workspace and returns their address.
    async fn signed_in(app: &'a TestApp) -> (Self, String) {
        let email = format!("{}@example.com", meisa_testkit::unique_name("u"));
        create_user(app, &app.workspace_id, &email).await;
        let browser = Self::new(app);
        let page = browser.sign_in(&email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        (browser, email)
    }
}

async fn create_user(app: &TestApp, workspace_id: &str, email: &str) {
    meisa_gateway::admin::create_user(&app.gateway_pool, workspace_id, email, Some(PASSWORD))
        .await
        .unwrap();
}

async fn key_count(app: &TestApp) -> usize {
    keys::list(&app.gateway_pool, &app.workspace_id)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn every_page_needs_a_session_and_sends_you_back_after_sign_in() {
    let app = spawn_app().await;
    let browser = Browser::new(&app);
    for path in ["/", "/contacts", "/contacts/ct_1", "/welcome"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location.as_deref().unwrap().starts_with("/login"),
            "{path}: {:?}",
            page.location
        );
    }
    assert_eq!(
        browser.get("/contacts?tag=pro").await.location.as_deref(),
        Some("/login?next=%2Fcontacts%3Ftag%3Dpro")
    );
    // A form posted without a session changes nothing and goes to sign-in.
    let before = key_count(&app).await;
    let page = browser.post("/welcome/key", &[("csrf", "x")]).await;
    assert_eq!(page.location.as_deref(), Some("/login"));
    assert_eq!(key_count(&app).await, before);

    let email = "jane@example.com";
    create_user(&app, &app.workspace_id, email).await;
    let page = browser.sign_in("Jane@Example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(page.location.as_deref(), Some("/contacts"));
    let cookie = page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("meisa_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http locally: {cookie}");
    let page = browser.get("/contacts").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(email), "the page says who is signed in");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_get_the_same_answer() {
    let app = spawn_app().await;
    create_user(&app, &app.workspace_id, "jane@example.com").await;
    let browser = Browser::new(&app);
    let wrong = browser
        .sign_in("jane@example.com", "not the password")
        .await;
    let unknown = browser.sign_in("nobody@example.com", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.html.contains("do not match an account"),
            "{}",
            page.html
        );
        assert!(page.location.is_none());
    }
    assert_eq!(browser.get("/contacts").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_with_retry_after_even_for_the_right_password() {
    let app = spawn_app().await;
    create_user(&app, &app.workspace_id, "jane@example.com").await;
    let browser = Browser::new(&app);
    let limit = accounts::SignInLimits::default().per_account;
    for _ in 0..limit {
        let page = browser
            .sign_in("jane@example.com", "guess guess guess")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = browser.sign_in("jane@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.html);
    let retry: u64 = page.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    assert!(page.html.contains("Too many failed attempts"));
    assert!(page.location.is_none(), "no session while throttled");
    // Another account is not locked out by Jane's guesser.
    create_user(&app, &app.workspace_id, "bob@example.com").await;
    let page = Browser::new(&app)
        .sign_in("bob@example.com", PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_change_nothing() {
    let app = spawn_app().await;
    create_user(&app, &app.workspace_id, "jane@example.com").await;
    let browser = Browser::new(&app);
    // Sign-in: no token, a made-up one.
    browser.get("/login").await;
    for csrf in ["", "forged"] {
        let page = browser
            .post(
                "/login",
                &[
                    ("email", "jane@example.com"),
                    ("password", PASSWORD),
                    ("csrf", csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(page.html.contains("Nothing was changed"));
    }
    assert_eq!(browser.get("/contacts").await.status, StatusCode::SEE_OTHER);

    let page = browser.sign_in("jane@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let before = key_count(&app).await;
    for form in [&[][..], &[("csrf", "forged")][..]] {
        let page = browser.post("/welcome/key", form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let page = browser.post("/logout", form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(key_count(&app).await, before, "no key was created");
    assert_eq!(
        browser.get("/contacts").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn signing_in_rotates_the_session_and_signing_out_ends_it() {
    let app = spawn_app().await;
    let (browser, email) = Browser::signed_in(&app).await;
    let first = browser.get("/contacts").await;
    assert_eq!(first.status, StatusCode::OK);
    // The same browser signs in again: a new session, and the old token is dead.
    let old_token = browser.session_token();
    let page = browser.sign_in(&email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let new_token = browser.session_token();
    assert_ne!(old_token, new_token);
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/contacts"))
        .header(header::COOKIE, format!("meisa_session={old_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        StatusCode::SEE_OTHER,
        "the old session is gone"
    );

    let csrf = browser.get("/contacts").await.csrf();
    let page = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.location.as_deref(), Some("/login"));
    assert_eq!(browser.get("/contacts").await.status, StatusCode::SEE_OTHER);
}

const XSS: &str = "<img src=x onerror=alert(1)>";

#[tokio::test]
async fn contacts_are_listed_searched_and_shown_with_their_fields_and_timeline() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let jane = app
        .upsert_ok(json!({"email": "jane@example.com", "external_id": "user_1",
            "first_name": XSS, "custom_fields": {"plan": "free", "posts": 3}}))
        .await;
    app.upsert_ok(json!({"email": "jane@example.com", "external_id": "user_1",
        "first_name": XSS, "custom_fields": {"plan": "pro", "posts": 3}}))
        .await;
    app.upsert_ok(json!({"email": "bob@example.org", "external_id": "user_2"}))
        .await;
    let jane_id = jane["id"].as_str().unwrap();
    app.contacts_grpc()
        .await
        .add_tags(meisa_proto::contacts::AddTagsRequest {
            workspace_id: app.workspace_id.clone(),
            id: jane_id.into(),
            tags: vec!["beta".into()],
            causation: None,
        })
        .await
        .unwrap();

    let list = browser.get("/contacts").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains("jane@example.com") && list.html.contains("bob@example.org"));
    let found = browser.get("/contacts?q=EXAMPLE.ORG").await;
    assert!(found.html.contains("bob@example.org"));
    assert!(!found.html.contains("jane@example.com"), "search narrows");
    let tagged = browser.get("/contacts?tag=beta").await;
    assert!(tagged.html.contains("jane@example.com"));
    assert!(!tagged.html.contains("bob@example.org"), "tag filter");
    let none = browser.get("/contacts?q=nobody-at-all").await;
    assert!(none.html.contains("No contact matches"));
    // A search the service refuses is said next to the box, not a 500.
    let bad = browser.get("/contacts?q=a%00b").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.html.contains("id=\"q-error\""), "{}", bad.html);

    let page = browser.get(&format!("/contacts/{jane_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in ["plan", "string", "pro", "posts", "number", "beta", "user_1"] {
        assert!(page.html.contains(expected), "{expected} missing");
    }
    // The timeline, newest first: plan free → pro comes before the creation.
    let updated = page
        .html
        .find("<strong>Updated</strong>")
        .expect("an update");
    let created = page
        .html
        .find("<strong>Created</strong>")
        .expect("the creation");
    assert!(updated < created, "newest first");
    assert!(
        page.html
            .contains("<span class=\"old\">free</span> → <span class=\"new\">pro</span>")
    );

    // The name is text on every page, never markup.
    for html in [&list.html, &page.html] {
        assert!(!html.contains(XSS), "unescaped contact name");
        assert!(
            html.contains("&#60;img src=x onerror=alert(1)&#62;")
                || html.contains("&lt;img src=x onerror=alert(1)&gt;")
        );
    }
}

#[tokio::test]
async fn another_workspaces_contact_is_not_found() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let other = meisa_gateway::admin::create_workspace(&app.gateway_pool, "Other")
        .await
        .unwrap();
    let theirs: serde_json::Value = app
        .post_json_as(
            "/api/v1/contacts/upsert/",
            &json!({"email": "secret@other.example", "external_id": "o1"}),
            &other.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let id = theirs["id"].as_str().unwrap();
    for path in [
        format!("/contacts/{id}"),
        "/contacts/ct_nonsense".into(),
        "/contacts/%00".into(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.html.contains("secret@other.example"));
        assert!(page.html.contains("Contacts"), "the navigation stays");
    }
    let list = browser.get("/contacts").await;
    assert!(!list.html.contains("secret@other.example"));
}

#[tokio::test]
async fn the_first_run_page_makes_a_key_that_works_and_sees_the_first_contact() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let home = browser.get("/").await;
    assert_eq!(
        home.status,
        StatusCode::OK,
        "no contacts yet: the first-run page"
    );
    assert!(home.html.contains("Waiting for your first contact"));
    let waiting: serde_json::Value = browser
        .http
        .get(app.url("/welcome/first-contact"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(waiting["contact"], serde_json::Value::Null);

    let page = browser
        .post("/welcome/key", &[("csrf", &home.csrf())])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let start = page
        .html
        .find("Bearer meisa_sk_")
        .expect("the key in the snippet")
        + 7;
    let key = &page.html[start..start + 49];
    assert!(page.html.contains("shown only this once"));
    let resp = app
        .post_json_as(
            "/api/v1/contacts/upsert/",
            &json!({"email": "first@example.com", "external_id": "u1"}),
            key,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "the snippet's key works");

    let arrived: serde_json::Value = browser
        .http
        .get(app.url("/welcome/first-contact"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(arrived["contact"]["email"], "first@example.com");
    assert!(
        arrived["contact"]["url"]
            .as_str()
            .unwrap()
            .starts_with("/contacts/ct_")
    );
    assert_eq!(
        browser.get("/").await.location.as_deref(),
        Some("/contacts")
    );
    // Shown once: the page does not show it again.
    assert!(!browser.get("/welcome").await.html.contains(key));
}

#[tokio::test]
async fn an_invitation_link_works_once_and_asks_for_a_real_password() {
    let app = spawn_app().await;
    let (token, hash) = accounts::token();
    let inviter = meisa_gateway::admin::create_user(
        &app.gateway_pool,
        &app.workspace_id,
        "owner@example.com",
        Some(PASSWORD),
    )
    .await
    .unwrap();
    users::create_invite(
        &app.gateway_pool,
        &app.workspace_id,
        &meisa_model::EmailAddress::parse("new@example.com").unwrap(),
        &inviter.user_id,
        &hash,
        chrono::Utc::now() + chrono::Duration::days(1),
    )
    .await
    .unwrap();
    let browser = Browser::new(&app);
    let path = format!("/invite/{token}");
    let form = browser.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.html.contains("new@example.com"));
    let short = browser
        .post(&path, &[("password", "short"), ("csrf", &form.csrf())])
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short.html.contains("id=\"password-error\""),
        "the error is next to the input"
    );
    assert!(short.html.contains("at least 10 characters"));
    let done = browser
        .post(&path, &[("password", PASSWORD), ("csrf", &form.csrf())])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(
        browser.get("/contacts").await.status,
        StatusCode::OK,
        "signed in"
    );
    assert_eq!(
        browser.get(&path).await.status,
        StatusCode::NOT_FOUND,
        "used up"
    );
    assert_eq!(
        Browser::new(&app).get("/invite/not-a-token").await.status,
        StatusCode::NOT_FOUND
    );
    let page = Browser::new(&app)
        .sign_in("new@example.com", PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

/// Onboarding (email, wait 3 days, email) that every new contact enters, and Jane, who got the
/// first email and now stands in the wait. Returns the template, the sequence and Jane.
async fn jane_in_the_onboarding_wait(app: &TestApp) -> (Value, Value, Value) {
    let template = app
        .create_template(json!({"name": "Welcome", "subject": "Hi {{ first_name }}",
            "html": "<p>Hello</p>", "text": "Hello", "from": "hello@acme.test"}))
        .await;
    let resp = app
        .post_json(
            "/api/v1/sequences/",
            &json!({"name": "Onboarding", "steps": [
                {"type": "email", "template_id": template["id"]},
                {"type": "wait", "duration": "3d"},
                {"type": "email", "template_id": template["id"]}
            ]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let sequence: Value = resp.json().await.unwrap();
    let resp = app
        .post_json(
            "/api/v1/automations/",
            &json!({"name": "Enroll new", "enabled": true,
                "trigger": {"type": "contact_created"},
                "actions": [{"type": "enroll", "sequence_id": sequence["id"]}]}),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
    let jane = app
        .upsert_ok(json!({"email": "jane@example.com", "external_id": "u1", "first_name": "Jane"}))
        .await;
    let smtp = app.smtp.as_ref().unwrap();
    smtp.wait_for(1, std::time::Duration::from_secs(20)).await;
    (template, sequence, jane)
}

#[tokio::test]
async fn the_contact_page_shows_the_sequences_and_messages_of_the_contact() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let (_, _, jane) = jane_in_the_onboarding_wait(&app).await;
    let path = format!("/contacts/{}", jane["id"].as_str().unwrap());
    let page = meisa_testkit::eventually(
        std::time::Duration::from_secs(20),
        "the contact page to show the sent email",
        || async {
            let page = browser.get(&path).await;
            // The first email is sent and the wait has begun: step 3 runs next, in 3 days.
            (page.html.contains("Hi Jane")
                && page.html.contains("badge sent")
                && page.html.contains("next step 3 on"))
            .then_some(page)
        },
    )
    .await;
    assert!(page.html.contains("Onboarding"), "the sequence by name");
    // The why view: which automation fired on which change, and what followed.
    let why = page
        .html
        .find("What automations did")
        .expect("the why view");
    let why = &page.html[why..];
    assert!(
        why.contains("Enroll new fired on the change email jane@example.com"),
        "{why}"
    );
    assert!(why.contains("Enrolled in Onboarding"), "{why}");
    assert!(why.contains("Onboarding, step 1 (email)"), "{why}");
}

fn template_form<'a>(csrf: &'a str, name: &'a str, html: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", name),
        ("from", "Acme <hello@acme.test>"),
        ("subject", "Hi {{ first_name }}"),
        ("html", html),
        ("text", ""),
    ]
}

#[tokio::test]
async fn templates_are_written_in_the_editor_with_errors_next_to_their_field() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let empty = browser.get("/templates").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("No templates yet"));
    let editor = browser.get("/templates/new").await;
    assert_eq!(editor.status, StatusCode::OK);
    let csrf = editor.csrf();
    for id in [
        "name",
        "from",
        "reply_to",
        "subject",
        "html",
        "text",
        "preview_as",
    ] {
        assert!(
            editor.html.contains(&format!("<label for=\"{id}\"")),
            "input {id} has a label"
        );
    }

    // No sender: refused, the error next to "From", what was typed kept.
    let mut form = template_form(&csrf, "Welcome", "<p>Hi</p>");
    form.retain(|(k, _)| *k != "from");
    let refused = browser.post("/templates/new", &form).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.html.contains("id=\"from-error\""),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("aria-describedby=\"from-error\""));
    assert!(
        refused.html.contains("&lt;p&gt;Hi&lt;/p&gt;")
            || refused.html.contains("&#60;p&#62;Hi&#60;/p&#62;")
    );
    // A Liquid syntax error names its line and column, next to the HTML.
    let broken = browser
        .post(
            "/templates/new",
            &template_form(&csrf, "Welcome", "<p>ok</p>\n{% if %}"),
        )
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.html.contains("id=\"html-error\""), "{}", broken.html);
    assert!(broken.html.contains("line 2"), "{}", broken.html);
    assert!(
        browser
            .get("/templates")
            .await
            .html
            .contains("No templates yet"),
        "nothing saved"
    );

    // Without the token: nothing saved either.
    let forged = browser
        .post(
            "/templates/new",
            &template_form("forged", "Welcome", "<p>Hi</p>"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let saved = browser
        .post(
            "/templates/new",
            &template_form(&csrf, XSS, "<p>Hi {{ first_name }}</p>"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let path = saved.location.unwrap();
    assert!(path.starts_with("/templates/tpl_"), "{path}");
    let edit = browser.get(&path).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.html.contains("Saved."));
    let list = browser.get("/templates").await;
    for html in [&edit.html, &list.html] {
        assert!(!html.contains(XSS), "a template name is text, never markup");
    }
    // Edit: a new subject sticks.
    let id_path = path.split('?').next().unwrap().to_string();
    let mut form = template_form(&csrf, "Welcome", "<p>Hi {{ first_name }}</p>");
    form.retain(|(k, _)| *k != "subject");
    form.push(("subject", "Welcome aboard"));
    let updated = browser.post(&id_path, &form).await;
    assert_eq!(updated.status, StatusCode::SEE_OTHER, "{}", updated.html);
    assert!(
        browser
            .get("/templates")
            .await
            .html
            .contains("Welcome aboard")
    );
}

#[tokio::test]
async fn the_preview_renders_the_draft_as_a_sample_or_a_contact_and_points_at_errors() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    app.upsert_ok(
        json!({"email": "bob@example.com", "external_id": "u2", "first_name": "Bob",
        "custom_fields": {"plan": "pro"}}),
    )
    .await;
    let csrf = browser.get("/templates/new").await.csrf();
    let preview = |form: Vec<(&'static str, String)>| {
        let http = browser.http.clone();
        let url = app.url("/templates/preview");
        async move {
            let resp = http.post(url).form(&form).send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let base = |html: &str, preview_as: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Draft".to_string()),
            ("from", "hello@acme.test".to_string()),
            ("subject", "Hi {{ first_name }}".to_string()),
            ("html", html.to_string()),
            ("preview_as", preview_as.to_string()),
        ]
    };
    let (status, body) = preview(base(
        "<p>Plan: {{ custom_fields.plan | default: \"none\" }}</p>",
        "",
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["subject"], "Hi Jane", "the sample person");
    assert!(body["html"].as_str().unwrap().contains("Plan: none"));

    let (_, body) = preview(base(
        "<p>Plan: {{ custom_fields.plan }}</p>",
        "bob@example.com",
    ))
    .await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["subject"], "Hi Bob");
    assert!(body["html"].as_str().unwrap().contains("Plan: pro"));

    let (_, body) = preview(base("<p>one</p>\n<p>{% if %}</p>", "")).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["field"], "html");
    assert_eq!(body["error"]["line"], 2, "{body}");
    assert!(body["error"]["column"].as_u64().unwrap() > 0);

    // A variable the sample lacks is named before anything is saved.
    let (_, body) = preview(base("<p>{{ custom_fields.plan }}</p>", "")).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["variable"], "custom_fields.plan", "{body}");

    let (_, body) = preview(base("<p>x</p>", "nobody@example.com")).await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["field"], "preview_as");

    let mut forged = base("<p>x</p>", "");
    forged[0].1 = "forged".into();
    let (status, _) = preview(forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn another_workspaces_template_is_not_found_and_cannot_be_edited() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let other = meisa_gateway::admin::create_workspace(&app.gateway_pool, "Other")
        .await
        .unwrap();
    let theirs: serde_json::Value = app
        .post_json_as(
            "/api/v1/templates/",
            &json!({"name": "Secret plan", "subject": "s", "html": "<p>s</p>", "from": "a@b.test"}),
            &other.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/templates/{}", theirs["id"].as_str().unwrap());
    let page = browser.get(&path).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.html.contains("Secret plan"));
    let csrf = browser.get("/templates").await.csrf();
    let page = browser
        .post(&path, &template_form(&csrf, "Mine now", "<p>x</p>"))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        browser.get("/templates/tpl_%00").await.status,
        StatusCode::NOT_FOUND
    );
    let still: serde_json::Value = app
        .get_as(
            &format!("/api/v1/templates/{}", theirs["id"].as_str().unwrap()),
            &other.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["name"], "Secret plan", "unchanged");
}

/// The fields of a sequence editor form: name, steps (kind, template, amount, unit), the exit
/// builder's rows (field, op, value) and the button pressed.
fn sequence_form(
    csrf: &str,
    name: &str,
    steps: &[(&str, &str, &str, &str)],
    exit: &[(&str, &str, &str)],
    op: &str,
) -> Vec<(String, String)> {
    let mut form = vec![
        ("csrf".to_string(), csrf.to_string()),
        ("name".into(), name.into()),
        ("c_join".into(), "all".into()),
    ];
    for (kind, template, amount, unit) in steps {
        form.push(("step_kind".into(), (*kind).into()));
        form.push(("step_template".into(), (*template).into()));
        form.push(("step_amount".into(), (*amount).into()));
        form.push(("step_unit".into(), (*unit).into()));
    }
    for (field, cop, value) in exit {
        form.push(("c_field".into(), (*field).into()));
        form.push(("c_op".into(), (*cop).into()));
        form.push(("c_value".into(), (*value).into()));
    }
    form.push(("op".into(), op.into()));
    form
}

impl Browser<'_> {
    async fn post_pairs(&self, path: &str, form: &[(String, String)]) -> Page {
        Self::page(
            self.http
                .post(self.app.url(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn a_sequence_is_built_step_by_step_with_buttons_and_saved() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let tpl = app
        .create_template(
            json!({"name": "Day one", "subject": "Hi", "html": "<p>Hi</p>",
            "from": "hello@acme.test"}),
        )
        .await;
    let tpl = tpl["id"].as_str().unwrap();
    let editor = browser.get("/sequences/new").await;
    assert_eq!(editor.status, StatusCode::OK);
    assert!(editor.html.contains("Day one"), "templates to choose from");
    let csrf = editor.csrf();

    // "Add a wait" re-renders the form with one more step and saves nothing.
    let added = browser
        .post_pairs(
            "/sequences/new",
            &sequence_form(
                &csrf,
                "Onboarding",
                &[("email", tpl, "", "")],
                &[],
                "add:wait",
            ),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK);
    assert!(added.html.contains("Step 2"));
    assert!(added.html.contains("Move step 2 up"));
    // Move the wait above the email, then back down.
    let steps = [("email", tpl, "", ""), ("wait", "", "2", "d")];
    let moved = browser
        .post_pairs(
            "/sequences/new",
            &sequence_form(&csrf, "Onboarding", &steps, &[], "up:1"),
        )
        .await;
    let wait_at = moved.html.find("name=\"step_amount\" value=\"2\"").unwrap();
    let email_at = moved.html.find("Send the email").unwrap();
    assert!(wait_at < email_at, "the wait comes first now");
    let with_row = browser
        .post_pairs(
            "/sequences/new",
            &sequence_form(&csrf, "Onboarding", &steps, &[], "add:condition"),
        )
        .await;
    assert!(
        with_row.html.contains("id=\"c_field_0\""),
        "a condition row to fill"
    );
    assert!(
        browser
            .get("/sequences")
            .await
            .html
            .contains("No sequences yet"),
        "nothing saved"
    );

    // A wait without a number: refused, the error at that step.
    let bad = browser
        .post_pairs(
            "/sequences/new",
            &sequence_form(
                &csrf,
                "Onboarding",
                &[("email", tpl, "", ""), ("wait", "", "", "d")],
                &[],
                "save",
            ),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("id=\"step_error_1\""), "{}", bad.html);

    let steps = [
        ("email", tpl, "", ""),
        ("wait", "", "2", "d"),
        ("email", tpl, "", ""),
    ];
    let saved = browser
        .post_pairs(
            "/sequences/new",
            &sequence_form(
                &csrf,
                "Onboarding",
                &steps,
                &[("onboarding_completed", "eq", "true")],
                "save",
            ),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let path = saved.location.unwrap();
    let id = path
        .trim_start_matches("/sequences/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let api: serde_json::Value = app
        .get(&format!("/api/v1/sequences/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        api["steps"],
        json!([{"type": "email", "template_id": tpl}, {"type": "wait", "duration": "2d"},
               {"type": "email", "template_id": tpl}])
    );
    assert_eq!(
        api["exit_when"],
        json!({"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]}),
        "the builder typed the value"
    );
    let page = browser.get(&path).await;
    assert!(page.html.contains("Saved."));
    assert!(page.html.contains("onboarding_completed"), "{}", page.html);
    assert!(
        page.html.contains("No contact has sent"),
        "an unseen field is marked"
    );
    assert!(page.html.contains("Enrolled"), "the numbers");
    assert!(browser.get("/sequences").await.html.contains("Onboarding"));

    // Deleting needs the token; with it the sequence is gone.
    let id_path = format!("/sequences/{id}");
    let forged = browser
        .post(&format!("{id_path}/delete"), &[("csrf", "x")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let gone = browser
        .post(&format!("{id_path}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(gone.location.as_deref(), Some("/sequences"));
    assert_eq!(browser.get(&id_path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_live_sequence_shows_its_funnel_and_warns_before_an_edit_moves_contacts() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let (template, sequence, _) = jane_in_the_onboarding_wait(&app).await;
    let (tpl, id) = (
        template["id"].as_str().unwrap(),
        sequence["id"].as_str().unwrap(),
    );
    let path = format!("/sequences/{id}");
    let page = meisa_testkit::eventually(
        std::time::Duration::from_secs(20),
        "the funnel to show Jane inside the wait",
        || async {
            let page = browser.get(&path).await;
            page.html
                .contains(r#"<tr data-step="2">"#)
                .then_some(page)
                .filter(|p| funnel_cell(&p.html, 2, "here_now") == "1")
        },
    )
    .await;
    assert_eq!(funnel_cell(&page.html, 1, "entered"), "1");
    assert_eq!(funnel_cell(&page.html, 1, "sent"), "1");
    assert_eq!(funnel_cell(&page.html, 3, "entered"), "0");
    assert!(page.html.contains("1 contact is in this sequence now"));
    let csrf = page.csrf();

    // Swapping the wait and the last email: Jane would get the wait where she expects the email.
    let swapped = [
        ("email", tpl, "", ""),
        ("email", tpl, "", ""),
        ("wait", "", "3", "d"),
    ];
    let warned = browser
        .post_pairs(
            &path,
            &sequence_form(&csrf, "Onboarding", &swapped, &[], "save"),
        )
        .await;
    assert_eq!(warned.status, StatusCode::OK, "{}", warned.html);
    assert!(
        warned
            .html
            .contains("1 contact will next get step 3: Wait 3 days instead of Email “Welcome”."),
        "{}",
        warned.html
    );
    let api: Value = app
        .get(&format!("/api/v1/sequences/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["steps"][2]["type"], "email", "nothing saved yet");

    // An edit that moves nobody saves at once; "Save anyway" saves the warned one.
    let renamed = [
        ("email", tpl, "", ""),
        ("wait", "", "3", "d"),
        ("email", tpl, "", ""),
    ];
    let saved = browser
        .post_pairs(
            &path,
            &sequence_form(&csrf, "Onboarding v2", &renamed, &[], "save"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let anyway = browser
        .post_pairs(
            &path,
            &sequence_form(&csrf, "Onboarding", &swapped, &[], "save:anyway"),
        )
        .await;
    assert_eq!(anyway.status, StatusCode::SEE_OTHER, "{}", anyway.html);
    let api: Value = app
        .get(&format!("/api/v1/sequences/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["steps"][2]["type"], "wait");
}

/// The text of one funnel cell: step `number` (1-based), column `count`.
fn funnel_cell(html: &str, number: usize, count: &str) -> String {
    let row = &html[html.find(&format!(r#"<tr data-step="{number}">"#)).unwrap()..];
    let cell = &row[row.find(&format!(r#"data-count="{count}">"#)).unwrap()..];
    cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()].to_string()
}

#[tokio::test]
async fn another_workspaces_sequence_is_not_found() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let other = meisa_gateway::admin::create_workspace(&app.gateway_pool, "Other")
        .await
        .unwrap();
    let theirs: serde_json::Value = app
        .post_json_as(
            "/api/v1/sequences/",
            &json!({"name": "Their secret", "steps": [{"type": "wait", "duration": "1d"}]}),
            &other.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/sequences/{}", theirs["id"].as_str().unwrap());
    let page = browser.get(&path).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.html.contains("Their secret"));
    let csrf = browser.get("/sequences").await.csrf();
    let page = browser
        .post_pairs(
            &path,
            &sequence_form(&csrf, "Mine", &[("wait", "", "1", "d")], &[], "save"),
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = browser
        .post(&format!("{path}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        browser.get("/sequences/seq_%00").await.status,
        StatusCode::NOT_FOUND
    );
}

/// An automation editor form: (key, value) pairs in the order a browser sends them.
fn automation_form(csrf: &str, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once(("csrf".to_string(), csrf.to_string()))
        .chain(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        )
        .collect()
}

#[tokio::test]
async fn the_design_examples_are_built_in_the_automation_editor_and_their_emails_arrive() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let tips = app
        .create_template(
            json!({"name": "Pro tips", "subject": "Tips for {{ first_name }}",
            "html": "<p>Pro tips</p>", "from": "hello@acme.test"}),
        )
        .await;
    let five = app
        .create_template(
            json!({"name": "Five posts", "subject": "Five posts, {{ first_name }}!",
            "html": "<p>Well done</p>", "from": "hello@acme.test"}),
        )
        .await;
    let seq: serde_json::Value = app
        .post_json(
            "/api/v1/sequences/",
            &json!({"name": "Pro onboarding", "steps": [{"type": "email", "template_id": tips["id"]}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let seq_id = seq["id"].as_str().unwrap();
    let editor = browser.get("/automations/new").await;
    assert_eq!(editor.status, StatusCode::OK);
    assert!(
        editor.html.contains("Pro onboarding"),
        "sequences to choose from"
    );
    let csrf = editor.csrf();

    // "Add an action" and "Add a condition" re-render without saving.
    let grown = browser
        .post_pairs(
            "/automations/new",
            &automation_form(
                &csrf,
                &[
                    ("name", "Upgrade to pro"),
                    ("trigger_type", "contact_updated"),
                    ("action_type", "add_tag"),
                    ("action_tag", "pro"),
                    ("action_sequence", ""),
                    ("action_template", ""),
                    ("op", "add:action"),
                ],
            ),
        )
        .await;
    assert_eq!(grown.status, StatusCode::OK);
    assert!(grown.html.contains("id=\"action_type_1\""));

    // Example 2: plan free → pro with posts_generated ≥ 5: tag pro, enroll.
    let upgrade = [
        ("name", "Upgrade to pro"),
        ("trigger_type", "contact_updated"),
        ("trigger_field", "plan"),
        ("trigger_from", "free"),
        ("trigger_to", "pro"),
        ("trigger_tag", ""),
        ("c_join", "all"),
        ("c_field", "posts_generated"),
        ("c_op", "gte"),
        ("c_value", "5"),
        ("action_type", "add_tag"),
        ("action_tag", "pro"),
        ("action_sequence", ""),
        ("action_template", ""),
        ("action_type", "enroll"),
        ("action_tag", ""),
        ("action_sequence", seq_id),
        ("action_template", ""),
        ("reentry", "once"),
        ("reentry_amount", "30"),
        ("reentry_unit", "d"),
        ("enabled", "on"),
        ("op", "save"),
    ];
    let saved = browser
        .post_pairs("/automations/new", &automation_form(&csrf, &upgrade))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let page = browser.get(saved.location.as_deref().unwrap()).await;
    assert!(
        page.html.contains(
            "When plan changes from free to pro, and posts_generated is at least 5: tag pro, then enroll in Pro onboarding"
        ),
        "the plain-language summary: {}",
        page.html
    );
    assert!(page.html.contains("Turn off"), "it is on");

    // Example 3: posts_generated ≥ 5 becomes true → send an email.
    let five_id = five["id"].as_str().unwrap();
    let milestone = [
        ("name", "Five posts"),
        ("trigger_type", "condition_met"),
        ("trigger_field", ""),
        ("trigger_from", ""),
        ("trigger_to", ""),
        ("trigger_tag", ""),
        ("c_join", "all"),
        ("c_field", "posts_generated"),
        ("c_op", "gte"),
        ("c_value", "5"),
        ("action_type", "send_email"),
        ("action_tag", ""),
        ("action_sequence", ""),
        ("action_template", five_id),
        ("reentry", "once"),
        ("reentry_amount", ""),
        ("reentry_unit", "d"),
        ("enabled", "on"),
        ("op", "save"),
    ];
    let saved = browser
        .post_pairs("/automations/new", &automation_form(&csrf, &milestone))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let list = browser.get("/automations").await;
    assert!(
        list.html
            .contains("When posts_generated is at least 5 becomes true: send Five posts"),
        "{}",
        list.html
    );

    app.upsert_ok(
        json!({"email": "jane@example.com", "external_id": "u1", "first_name": "Jane",
        "custom_fields": {"plan": "free", "posts_generated": 7}}),
    )
    .await;
    app.upsert_ok(json!({"email": "jane@example.com", "external_id": "u1",
        "custom_fields": {"plan": "pro", "posts_generated": 7}}))
        .await;
    let mails = app.mails(2).await;
    let subjects: Vec<String> = mails
        .iter()
        .map(|m| m.header("Subject").unwrap_or_default())
        .collect();
    assert!(
        subjects.iter().any(|s| s == "Five posts, Jane!"),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s == "Tips for Jane"),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn the_automation_editor_puts_refusals_at_their_input_and_switches_on_and_off() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let csrf = browser.get("/automations/new").await.csrf();
    // A number field compared with a date: automations refuses, the error at that row.
    app.upsert_ok(
        json!({"email": "a@example.com", "external_id": "a", "custom_fields": {"posts": 1}}),
    )
    .await;
    let form = [
        ("name", "Bad"),
        ("trigger_type", "contact_created"),
        ("trigger_field", ""),
        ("trigger_from", ""),
        ("trigger_to", ""),
        ("trigger_tag", ""),
        ("c_join", "all"),
        ("c_field", "posts"),
        ("c_op", "before"),
        ("c_value", "2026-01-01"),
        ("action_type", "add_tag"),
        ("action_tag", "x"),
        ("action_sequence", ""),
        ("action_template", ""),
        ("reentry", "once"),
        ("reentry_amount", ""),
        ("reentry_unit", "d"),
        ("op", "save"),
    ];
    let refused = browser
        .post_pairs("/automations/new", &automation_form(&csrf, &form))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains("id=\"c_error_0\""),
        "{}",
        refused.html
    );
    assert!(
        browser
            .get("/automations")
            .await
            .html
            .contains("No automations yet")
    );

    let mut good = form.to_vec();
    good[8] = ("c_op", "gte");
    good[9] = ("c_value", "1");
    let saved = browser
        .post_pairs("/automations/new", &automation_form(&csrf, &good))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let path = saved
        .location
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    assert!(
        browser.get(&path).await.html.contains("Turn on"),
        "saved off: a draft"
    );
    let on = browser
        .post(&format!("{path}/enable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(on.location.as_deref(), Some(path.as_str()));
    assert!(browser.get(&path).await.html.contains("Turn off"));
    let forged = browser
        .post(&format!("{path}/disable"), &[("csrf", "x")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        browser.get(&path).await.html.contains("Turn off"),
        "still on"
    );
    browser
        .post(&format!("{path}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(browser.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        browser.get("/automations/aut_%00").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn messages_say_what_was_sent_skipped_and_why_with_the_rendered_email() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let tpl = app
        .create_template(json!({"name": "Plan", "subject": "Your plan: {{ plan }}",
            "html": "<p>You are on <b>{{ plan }}</b></p>", "from": "hello@acme.test"}))
        .await;
    let resp = app
        .post_json(
            "/api/v1/automations/",
            &json!({"name": "Say the plan", "enabled": true, "trigger": {"type": "contact_created"},
                "actions": [{"type": "send_email", "template_id": tpl["id"]}]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    app.upsert_ok(
        json!({"email": "pro@example.com", "external_id": "p", "custom_fields": {"plan": "pro"}}),
    )
    .await;
    app.upsert_ok(json!({"email": "none@example.com", "external_id": "n"}))
        .await;
    app.mails(1).await;
    let list = meisa_testkit::eventually(
        std::time::Duration::from_secs(20),
        "both messages to be listed",
        || async {
            let page = browser.get("/messages").await;
            (page.html.contains("badge sent") && page.html.contains("badge skipped"))
                .then_some(page)
        },
    )
    .await;
    assert!(list.html.contains("Your plan: pro"));
    assert!(
        list.html.contains("plan"),
        "the skip names the missing variable"
    );
    let skipped = browser.get("/messages?status=skipped").await;
    assert!(skipped.html.contains("none@example.com"));
    assert!(
        !skipped.html.contains("pro@example.com"),
        "the filter holds"
    );

    let mut detail = None;
    // The sent one's page shows the email, escaped into the sandboxed frame.
    for id in list
        .html
        .split("href=\"/messages/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
    {
        let page = browser.get(&format!("/messages/{id}")).await;
        if page.html.contains("badge sent") {
            detail = Some(page);
        }
    }
    let detail = detail.expect("the sent message's page");
    assert!(detail.html.contains("sandbox=\"\""));
    assert!(
        detail.html.contains("srcdoc=\"&#60;p&#62;You are on")
            || detail.html.contains("srcdoc=\"&lt;p&gt;You are on"),
        "{}",
        detail.html
    );
    assert!(detail.html.contains("automation"), "who sent it");
    assert_eq!(
        browser.get("/messages/msg_%00").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        browser
            .get("/messages/msg_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn fields_show_their_type_and_count_and_the_ones_automations_await() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    app.upsert_ok(json!({"email": "a@example.com", "external_id": "a", "custom_fields": {"plan": "pro", "posts": 3}}))
        .await;
    app.upsert_ok(
        json!({"email": "b@example.com", "external_id": "b", "custom_fields": {"plan": "free"}}),
    )
    .await;
    let resp = app
        .post_json(
            "/api/v1/automations/",
            &json!({"name": "Onboarded", "trigger": {"type": "condition_met"},
                "conditions": {"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]},
                "actions": [{"type": "add_tag", "tag": "done"}]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let page = browser.get("/fields").await;
    assert_eq!(page.status, StatusCode::OK);
    let plan = page
        .html
        .find("<code>plan</code></td><td>string</td>")
        .expect("plan, a string");
    assert!(
        page.html[plan..].contains("<td>2</td>"),
        "two contacts have plan"
    );
    assert!(page.html.contains("<code>posts</code></td><td>number</td>"));
    let awaited = page
        .html
        .find("Waiting for data")
        .expect("the awaited section");
    assert!(page.html[awaited..].contains("onboarding_completed"));
    assert!(
        page.html[awaited..].contains("Onboarded"),
        "names what uses it"
    );
}

#[tokio::test]
async fn api_keys_are_made_listed_and_revoked_in_settings_within_the_workspace() {
    let app = spawn_app().await;
    let (browser, email) = Browser::signed_in(&app).await;
    let settings = browser.get("/settings").await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(
        settings.html.contains("an operator"),
        "the workspace's first key, made by admin"
    );
    let csrf = settings.csrf();
    assert_eq!(
        browser
            .post("/settings/keys", &[("csrf", "x")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let made = browser.post("/settings/keys", &[("csrf", &csrf)]).await;
    assert_eq!(made.status, StatusCode::OK);
    let start = made.html.find("Bearer meisa_sk_").unwrap() + 7;
    let key = made.html[start..start + 49].to_string();
    assert!(made.html.contains("shown only this once"));
    let upsert = |key: String| {
        let app = &app;
        async move {
            app.post_json_as(
                "/api/v1/contacts/upsert/",
                &json!({"email": "k@example.com", "external_id": "k"}),
                &key,
            )
            .await
            .status()
        }
    };
    assert_eq!(upsert(key.clone()).await, StatusCode::OK);
    let listed = browser.get("/settings").await;
    assert!(!listed.html.contains(&key), "never shown again");
    assert!(listed.html.contains(&email), "who made it");
    let info = keys::list(&app.gateway_pool, &app.workspace_id)
        .await
        .unwrap();
    let mine = info
        .iter()
        .find(|k| k.created_by.as_deref() == Some(email.as_str()))
        .unwrap();
    assert!(mine.last_used_at.is_some(), "the use was recorded");

    // Another workspace's key cannot be revoked from here.
    let other = meisa_gateway::admin::create_workspace(&app.gateway_pool, "Other")
        .await
        .unwrap();
    let theirs = &keys::list(&app.gateway_pool, &other.workspace_id)
        .await
        .unwrap()[0];
    let page = browser
        .post(
            &format!("/settings/keys/{}/revoke", theirs.key_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        upsert(other.api_key.clone()).await,
        StatusCode::OK,
        "still works"
    );

    let page = browser
        .post(
            &format!("/settings/keys/{}/revoke", mine.key_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/settings"));
    assert_eq!(upsert(key).await, StatusCode::UNAUTHORIZED, "revoked");
    assert!(browser.get("/settings").await.html.contains("Revoked"));
}

#[tokio::test]
async fn teammates_are_invited_with_a_link_and_removed() {
    let app = spawn_app().await;
    let (browser, email) = Browser::signed_in(&app).await;
    let csrf = browser.get("/settings").await.csrf();
    let taken = browser
        .post("/settings/team", &[("csrf", &csrf), ("email", &email)])
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.html.contains("id=\"invite-error\""), "{}", taken.html);
    let bad = browser
        .post(
            "/settings/team",
            &[("csrf", &csrf), ("email", "not an address")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.html.contains("id=\"invite-error\""));

    let invited = browser
        .post(
            "/settings/team",
            &[("csrf", &csrf), ("email", "Sam@Example.com")],
        )
        .await;
    assert_eq!(invited.status, StatusCode::OK);
    let start = invited.html.find("/invite/").unwrap();
    let end = invited.html[start..].find('"').unwrap() + start;
    let link = invited.html[start..end].to_string();
    assert!(
        browser
            .get("/settings")
            .await
            .html
            .contains("sam@example.com"),
        "listed as invited"
    );

    let sam = Browser::new(&app);
    let form = sam.get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    let done = sam
        .post(&link, &[("password", PASSWORD), ("csrf", &form.csrf())])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(sam.get("/contacts").await.status, StatusCode::OK);

    // Oneself: refused. Sam: removed, and signed out at once.
    let me = users::list(&app.gateway_pool, &app.workspace_id)
        .await
        .unwrap();
    let my_id = &me.iter().find(|u| u.email == email).unwrap().id;
    let sam_id = &me.iter().find(|u| u.email == "sam@example.com").unwrap().id;
    let refused = browser
        .post(
            &format!("/settings/team/{my_id}/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let forged = browser
        .post(&format!("/settings/team/{sam_id}/remove"), &[("csrf", "x")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let removed = browser
        .post(
            &format!("/settings/team/{sam_id}/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(removed.location.as_deref(), Some("/settings"));
    assert_eq!(
        sam.get("/contacts").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );

    // Another workspace's user cannot be removed from here.
    let other = meisa_gateway::admin::create_workspace(&app.gateway_pool, "Other")
        .await
        .unwrap();
    let stranger = meisa_gateway::admin::create_user(
        &app.gateway_pool,
        &other.workspace_id,
        "x@other.example",
        Some(PASSWORD),
    )
    .await
    .unwrap();
    let page = browser
        .post(
            &format!("/settings/team/{}/remove", stranger.user_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        Browser::new(&app)
            .sign_in("x@other.example", PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn sender_defaults_start_new_templates_and_addresses_are_suppressed_and_allowed() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let csrf = browser.get("/settings").await.csrf();
    let saved = browser
        .post(
            "/settings/sender",
            &[
                ("csrf", &csrf),
                ("from", "Acme <hello@acme.test>"),
                ("reply_to", "help@acme.test"),
            ],
        )
        .await;
    assert_eq!(saved.location.as_deref(), Some("/settings"));
    let editor = browser.get("/templates/new").await;
    assert!(
        editor
            .html
            .contains("value=\"Acme &#60;hello@acme.test&#62;\"")
            || editor
                .html
                .contains("value=\"Acme &lt;hello@acme.test&gt;\""),
        "{}",
        editor.html
    );
    assert!(editor.html.contains("value=\"help@acme.test\""));

    let bad = browser
        .post(
            "/settings/suppressions",
            &[("csrf", &csrf), ("email", "nope")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.html.contains("id=\"suppression-error\""),
        "{}",
        bad.html
    );
    let added = browser
        .post(
            "/settings/suppressions",
            &[
                ("csrf", &csrf),
                ("email", "Gone@Example.com"),
                ("detail", "asked us"),
            ],
        )
        .await;
    assert_eq!(
        added.location.as_deref(),
        Some("/settings"),
        "{}",
        added.html
    );
    let page = browser.get("/settings").await;
    assert!(page.html.contains("gone@example.com") && page.html.contains("asked us"));
    let allowed = browser
        .post(
            "/settings/suppressions/remove",
            &[("csrf", &csrf), ("email", "gone@example.com")],
        )
        .await;
    assert_eq!(allowed.location.as_deref(), Some("/settings"));
    assert!(
        !browser
            .get("/settings")
            .await
            .html
            .contains("gone@example.com")
    );
}

#[tokio::test]
async fn contacts_are_filtered_by_the_condition_builder() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    for (email, posts) in [
        ("many@example.com", 9),
        ("few@example.com", 2),
        ("five@example.com", 5),
    ] {
        app.upsert_ok(json!({"email": email, "external_id": email, "custom_fields": {"posts_generated": posts}}))
            .await;
    }
    let page = browser
        .get("/contacts?c_join=all&c_field=posts_generated&c_op=gte&c_value=5")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("many@example.com") && page.html.contains("five@example.com"));
    assert!(
        !page.html.contains("few@example.com"),
        "the condition holds for the list"
    );
    assert!(
        page.html.contains("value=\"posts_generated\""),
        "the builder keeps its rows"
    );
    // "Add a condition" redraws the builder with one more row.
    let more = browser
        .get("/contacts?c_join=all&c_field=posts_generated&c_op=gte&c_value=5&op=add:condition")
        .await;
    assert!(more.html.contains("id=\"c_field_1\""));
    // A test that does not fit the field is said at its row.
    let bad = browser
        .get("/contacts?c_join=all&c_field=posts_generated&c_op=nope&c_value=5")
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.html.contains("id=\"c_error_0\""), "{}", bad.html);
}

#[tokio::test]
async fn the_audience_preview_counts_who_matches_now_without_saving() {
    let app = spawn_app_with_automations().await;
    let (browser, _) = Browser::signed_in(&app).await;
    for (email, posts) in [
        ("a@example.com", 9),
        ("b@example.com", 2),
        ("c@example.com", 5),
    ] {
        app.upsert_ok(json!({"email": email, "external_id": email, "custom_fields": {"posts_generated": posts}}))
            .await;
    }
    let csrf = browser.get("/automations/new").await.csrf();
    let form = [
        ("name", "Five posts"),
        ("trigger_type", "condition_met"),
        ("trigger_field", ""),
        ("trigger_from", ""),
        ("trigger_to", ""),
        ("trigger_tag", ""),
        ("c_join", "all"),
        ("c_field", "posts_generated"),
        ("c_op", "gte"),
        ("c_value", "5"),
        ("action_type", "add_tag"),
        ("action_tag", "x"),
        ("action_sequence", ""),
        ("action_template", ""),
        ("reentry", "once"),
        ("reentry_amount", ""),
        ("reentry_unit", "d"),
        ("op", "preview"),
    ];
    let page = browser
        .post_pairs("/automations/new", &automation_form(&csrf, &form))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("<strong>2</strong> of 3"),
        "{}",
        page.html
    );
    assert!(page.html.contains("a@example.com") && page.html.contains("c@example.com"));
    assert!(!page.html.contains("b@example.com"));
    assert!(
        browser
            .get("/automations")
            .await
            .html
            .contains("No automations yet"),
        "nothing saved"
    );
}

#[tokio::test]
async fn a_saved_template_is_test_sent_from_the_editor() {
    let app = spawn_app().await;
    let (browser, _) = Browser::signed_in(&app).await;
    let tpl = app
        .create_template(json!({"name": "Hello", "subject": "Hello {{ first_name }}",
            "html": "<p>Hi</p>", "from": "hello@acme.test"}))
        .await;
    let path = format!("/templates/{}", tpl["id"].as_str().unwrap());
    let csrf = browser.get(&path).await.csrf();
    let bad = browser
        .post(
            &format!("{path}/test-send"),
            &[("csrf", &csrf), ("to", "not an address")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("id=\"to-error\""), "{}", bad.html);
    let forged = browser
        .post(
            &format!("{path}/test-send"),
            &[("csrf", "x"), ("to", "me@example.com")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let sent = browser
        .post(
            &format!("{path}/test-send"),
            &[("csrf", &csrf), ("to", "me@example.com")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.html);
    assert!(sent.html.contains("A test went to me@example.com"));
    let mail = app.mails(1).await;
    assert_eq!(
        mail.len(),
        1,
        "one test, and only after the token checked out"
    );
    assert_eq!(mail[0].header("Subject").as_deref(), Some("Hello Jane"));
}
