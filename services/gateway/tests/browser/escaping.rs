//! Markup in what contacts and templates hold is shown as text on every page that shows it, and
//! never runs: no dialog opens, no element with an event handler appears.

use fantoccini::Locator;
use serde_json::json;

use crate::{Dashboard, chrome::Chrome};

const XSS: &str = "<img src=x onerror=alert(1)>";

#[tokio::test]
async fn markup_in_a_contact_or_a_template_is_shown_as_text_and_never_runs() {
    let Some(d) = Dashboard::start().await else {
        return;
    };
    let contact = d
        .app
        .upsert(json!({"email": "mallory@example.com", "external_id": "usr_x", "first_name": XSS}))
        .await;
    let template = d
        .app
        .template(
            json!({"name": XSS, "subject": XSS, "html": "<p>Hi</p>", "text": null,
            "from": "Acme <hello@acme.test>", "reply_to": null}),
        )
        .await;
    d.sign_in().await;
    assert_eq!(
        d.path().await,
        "/contacts",
        "a workspace with contacts opens on them"
    );
    for path in [
        "/contacts".to_string(),
        format!("/contacts/{contact}"),
        "/templates".to_string(),
        format!("/templates/{template}"),
    ] {
        d.visit(&path).await;
        d.no_dialog().await;
        assert!(
            d.chrome.text().await.contains(XSS),
            "{path} shows the markup as text"
        );
        let handlers = d
            .chrome
            .js("return document.querySelectorAll('[onerror]').length")
            .await;
        assert_eq!(handlers, 0, "{path} has no element made of the markup");
    }
    // The editor's input holds it as its value, and the preview shows it as the subject.
    let name = d.chrome.client.find(Locator::Css("#name")).await.unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some(XSS));
    d.chrome
        .until(
            "the preview to show the subject",
            "return document.getElementById('preview-subject').textContent",
        )
        .await;
    assert_eq!(
        d.chrome
            .js("return document.getElementById('preview-subject').textContent")
            .await,
        XSS
    );
    d.no_dialog().await;
}

/// The check above is only worth something if it sees a dialog that did open.
#[tokio::test]
async fn the_dialog_check_sees_a_dialog_that_opened() {
    if !crate::chrome::installed() {
        return;
    }
    let chrome = Chrome::start().await;
    chrome
        .goto("data:text/html,%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        .await;
    assert_eq!(chrome.dialog().await.as_deref(), Some("1"));
    chrome.client.accept_alert().await.unwrap();
    chrome.goto("data:text/html,%3Cp%3Equiet%3C%2Fp%3E").await;
    assert_eq!(chrome.dialog().await, None);
}
