//! The template editor's live preview, typed into as a person would.

use fantoccini::{Locator, key::Key};
use serde_json::json;

use crate::Dashboard;

const STATUS: &str = "return document.getElementById('preview-status').textContent";

#[tokio::test]
async fn the_preview_follows_typing_and_points_at_a_liquid_error() {
    let Some(d) = Dashboard::start().await else {
        return;
    };
    let template = d
        .app
        .template(json!({"name": "Welcome", "subject": "Hi {{ first_name }}",
            "html": "<p>Hello</p>", "text": null, "from": "Acme <hello@acme.test>",
            "reply_to": null}))
        .await;
    d.sign_in().await;
    d.visit(&format!("/templates/{template}")).await;
    let html = d.chrome.client.find(Locator::Css("#html")).await.unwrap();
    html.clear().await.unwrap();
    html.send_keys("<p>Typed in a browser, {{ first_name }}!</p>")
        .await
        .unwrap();

    let rendered = "Typed in a browser, Jane!";
    d.chrome
        .until(
            "the preview to show what was typed",
            &format!(
                "const f = document.getElementById('preview-frame');
                 const s = document.getElementById('preview-status').textContent;
                 return f.srcdoc.includes({rendered:?}) && s.startsWith('Shown as')"
            ),
        )
        .await;
    // What the reader sees inside the sandboxed frame, not only what was put into it.
    d.chrome
        .client
        .find(Locator::Css("#preview-frame"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    let shown = d.chrome.text().await;
    d.chrome.client.enter_parent_frame().await.unwrap();
    assert!(shown.contains(rendered), "the frame shows {shown:?}");
    assert_eq!(
        d.chrome
            .js("return document.getElementById('preview-subject').textContent")
            .await,
        "Hi Jane"
    );

    html.send_keys(&(Key::Enter + "{% if %}")).await.unwrap();
    let status = d
        .chrome
        .until(
            "the status to name the error's line and column",
            &format!(
                "const s = (() => {{ {STATUS} }})(); return /line 2, column \\d+/.test(s) && s"
            ),
        )
        .await;
    let bad = d
        .chrome
        .js("return document.getElementById('preview-status').classList.contains('bad')")
        .await;
    assert_eq!(bad, true, "the error is shown as one: {status}");
    d.no_dialog().await;
}
