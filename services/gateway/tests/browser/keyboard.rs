//! The dashboard without a mouse.

use fantoccini::key::Key;

use crate::{
    Dashboard,
    app::{EMAIL, PASSWORD},
};

#[tokio::test]
async fn signing_in_takes_only_the_keyboard() {
    let Some(d) = Dashboard::start().await else {
        return;
    };
    d.visit("/login").await;
    // Wherever the focus starts (the email field has autofocus), a few Tabs reach the field.
    let mut tabs = 0;
    while d.chrome.focused().await != "email" {
        assert!(tabs < 10, "Tab never reached the email field");
        d.chrome.press(&Key::Tab).await;
        tabs += 1;
    }
    d.chrome.press(EMAIL).await;
    d.chrome.press(&Key::Tab).await;
    assert_eq!(
        d.chrome.focused().await,
        "password",
        "the password comes right after"
    );
    d.chrome.press(PASSWORD).await;
    d.chrome.press(&Key::Enter).await;
    d.until_signed_in().await;
    d.no_dialog().await;
}
