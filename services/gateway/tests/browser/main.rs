//! The dashboard in a real browser: headless Chromium driven over WebDriver (`fantoccini`) against
//! the whole system in-process (every service, real Postgres, Redis and SMTP). What only a
//! browser can tell: that markup in data never runs, that the live parts work with keyboard
//! input, that axe finds no serious accessibility problem, and what the pages look like (a
//! screenshot of each at 1280 and 390 px wide).
//!
//! Needs `/usr/bin/chromium`, `/usr/bin/chromedriver` and the pinned axe-core in
//! `tests/browser/node_modules` (`scripts/ensure-browser.sh` installs them; `make test` runs
//! it). Without them the tests say "skipped" and pass, except under `CI`, where they fail.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod chrome;
mod editor;
mod escaping;
mod flows;
mod keyboard;
mod pages;

use std::path::PathBuf;

use app::{App, EMAIL, PASSWORD, Seeded};
use chrome::{Chrome, PATIENCE};
use fantoccini::Locator;

/// Every page of the dashboard: `pages.rs` runs axe on each and takes its screenshots. A new page
/// is one line here; a path may name what [`App::seed`] created (`{contact}`, `{template}`, `{sequence}`,
/// `{automation}`, `{message}`).
pub const PAGES: &[Page] = &[
    Page::signed_out("sign-in", "/login"),
    Page::signed_in("welcome", "/welcome"),
    Page::signed_in("contacts", "/contacts"),
    Page::signed_in("contact", "/contacts/{contact}"),
    Page::signed_in("templates", "/templates"),
    // The editors are checked once their live preview has rendered.
    Page::signed_in("template-new", "/templates/new").when("#preview-frame[srcdoc]"),
    Page::signed_in("template", "/templates/{template}").when("#preview-frame[srcdoc]"),
    Page::signed_in("fields", "/fields"),
    Page::signed_in("sequences", "/sequences"),
    Page::signed_in("sequence-new", "/sequences/new"),
    Page::signed_in("sequence", "/sequences/{sequence}"),
    Page::signed_in("automations", "/automations"),
    Page::signed_in("automation-new", "/automations/new"),
    Page::signed_in("automation", "/automations/{automation}"),
    Page::signed_in("messages", "/messages"),
    Page::signed_in("message", "/messages/{message}"),
    Page::signed_in("settings", "/settings"),
];

pub struct Page {
    /// Also the screenshots' file name.
    pub name: &'static str,
    path: &'static str,
    pub signed_in: bool,
    /// A CSS selector that matches once the page's scripts have done their first work.
    pub ready: Option<&'static str>,
}

impl Page {
    const fn signed_in(name: &'static str, path: &'static str) -> Page {
        Page {
            name,
            path,
            signed_in: true,
            ready: None,
        }
    }

    const fn signed_out(name: &'static str, path: &'static str) -> Page {
        Page {
            name,
            path,
            signed_in: false,
            ready: None,
        }
    }

    const fn when(self, ready: &'static str) -> Page {
        Page {
            ready: Some(ready),
            ..self
        }
    }

    pub fn path(&self, seeded: &Seeded) -> String {
        self.path
            .replace("{contact}", &seeded.contact)
            .replace("{template}", &seeded.template)
            .replace("{sequence}", &seeded.sequence)
            .replace("{automation}", &seeded.automation)
            .replace("{message}", &seeded.message)
    }
}

/// Where [`Dashboard::shot`] saves: `MEISA_SCREENSHOTS`, or `target/dashboard-screenshots/` of
/// the repository (whatever `CARGO_TARGET_DIR` says, so they are easy to find).
pub fn screenshots_dir() -> PathBuf {
    std::env::var_os("MEISA_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
        })
}

/// The system and a browser looking at its dashboard.
pub struct Dashboard {
    pub app: App,
    pub chrome: Chrome,
}

impl Dashboard {
    /// None (after saying "skipped") when the browser is not installed and `CI` is unset.
    pub async fn start() -> Option<Dashboard> {
        if !chrome::installed() {
            return None;
        }
        let app = App::spawn().await;
        let chrome = Chrome::start().await;
        Some(Dashboard { app, chrome })
    }

    pub async fn visit(&self, path: &str) {
        self.chrome.goto(&self.app.url(path)).await;
    }

    /// The current page's path and query.
    pub async fn path(&self) -> String {
        let url = self
            .chrome
            .client
            .current_url()
            .await
            .expect("the current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Signs in as [`EMAIL`] through the sign-in form; returns once the browser left it.
    pub async fn sign_in(&self) {
        self.visit("/login").await;
        let c = &self.chrome.client;
        for (field, value) in [("#email", EMAIL), ("#password", PASSWORD)] {
            let input = c.find(Locator::Css(field)).await.expect("a sign-in field");
            input.clear().await.unwrap();
            input.send_keys(value).await.unwrap();
        }
        self.chrome
            .click("form[action='/login'] button[type=submit]")
            .await;
        self.until_signed_in().await;
    }

    /// Waits until the sign-in form was left for a signed-in page; fails with the form's error.
    pub async fn until_signed_in(&self) {
        let outcome = meisa_testkit::eventually(PATIENCE, "sign-in to finish", || async {
            let error = self
                .chrome
                .client
                .execute(
                    "const e = document.getElementById('sign-in-error'); return e && e.textContent",
                    vec![],
                )
                .await
                .ok()?;
            if let Some(e) = error.as_str() {
                return Some(Err(e.to_string()));
            }
            let path = self.path().await;
            let who = self
                .chrome
                .client
                .execute(
                    "const w = document.querySelector('.who'); return w && w.textContent",
                    vec![],
                )
                .await
                .ok()?;
            (!path.starts_with("/login") && who == EMAIL).then_some(Ok(()))
        })
        .await;
        if let Err(e) = outcome {
            panic!("sign-in refused: {e}");
        }
    }

    pub async fn no_dialog(&self) {
        self.chrome.no_dialog().await;
    }

    /// Screenshots of the current page at both widths, named `name`.
    pub async fn shot(&self, name: &str) {
        self.chrome.shot(&screenshots_dir(), name).await;
    }

    /// Opens `path` and fails on any serious or critical axe violation there.
    pub async fn axe(&self, path: &str) {
        self.visit(path).await;
        let bad = self.chrome.axe().await;
        assert!(
            bad.is_empty(),
            "axe: serious or critical violations on {path}:\n{}",
            bad.join("\n")
        );
    }
}
