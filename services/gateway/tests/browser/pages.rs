//! Every page of [`PAGES`]: no serious or critical axe violation, and a screenshot at each width.

use crate::{Dashboard, PAGES, Page, app::Seeded, chrome::Chrome};

/// Visits every page of [`PAGES`] in turn (signed out first, then signed in) and hands each to
/// `check` once it is open; fails when a page sent the browser elsewhere (e.g. to sign in).
async fn each_page(d: &Dashboard, seeded: &Seeded, check: impl AsyncFn(&Page)) {
    for signed_in in [false, true] {
        if signed_in {
            d.sign_in().await;
        }
        for page in PAGES.iter().filter(|p| p.signed_in == signed_in) {
            let path = page.path(seeded);
            d.visit(&path).await;
            assert_eq!(
                d.path().await,
                path,
                "{} stays on its own address",
                page.name
            );
            if let Some(css) = page.ready {
                d.chrome
                    .until(
                        &format!("{} to show {css}", page.name),
                        &format!("return document.querySelector({css:?}) !== null"),
                    )
                    .await;
            }
            d.no_dialog().await;
            check(page).await;
        }
    }
}

#[tokio::test]
async fn no_page_has_a_serious_accessibility_violation() {
    let Some(d) = Dashboard::start().await else {
        return;
    };
    let seeded = d.app.seed().await;
    let found = std::cell::RefCell::new(Vec::new());
    each_page(&d, &seeded, async |page| {
        let bad = d.chrome.axe().await;
        if !bad.is_empty() {
            found.borrow_mut().push(format!(
                "{} ({}):\n{}",
                page.name,
                page.path(&seeded),
                bad.join("\n")
            ));
        }
    })
    .await;
    let found = found.into_inner();
    assert!(
        found.is_empty(),
        "axe: serious or critical violations on {} page(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[tokio::test]
async fn every_page_is_photographed_at_desktop_and_phone_width() {
    let Some(d) = Dashboard::start().await else {
        return;
    };
    let seeded = d.app.seed().await;
    each_page(&d, &seeded, async |page| d.shot(page.name).await).await;
    let dir = crate::screenshots_dir();
    for page in PAGES {
        for width in [crate::chrome::WIDTH, crate::chrome::PHONE_WIDTH] {
            let file = dir.join(format!("{}-{width}.png", page.name));
            let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            // The PNG header's width (bytes 16..20 of IHDR): the page was shot at this width.
            let got = u32::from_be_bytes(png[16..20].try_into().unwrap());
            assert_eq!(got, width, "{}", file.display());
        }
    }
}

/// The check above is only worth something if axe runs and reports: a page with an image
/// without a text alternative and a button without a name has two critical violations.
#[tokio::test]
async fn axe_reports_a_page_that_breaks_its_rules() {
    if !crate::chrome::installed() {
        return;
    }
    let chrome = Chrome::start().await;
    chrome
        .goto("data:text/html,%3Chtml%20lang%3Den%3E%3Ctitle%3Ex%3C%2Ftitle%3E%3Cmain%3E%3Cimg%20src%3Dx.png%3E%3Cbutton%3E%3C%2Fbutton%3E%3C%2Fmain%3E%3C%2Fhtml%3E")
        .await;
    let bad = chrome.axe().await;
    for rule in ["image-alt (critical)", "button-name (critical)"] {
        assert!(bad.iter().any(|v| v.contains(rule)), "{rule} in {bad:#?}");
    }
}
