//! Headless Chromium over WebDriver: Debian's `chromedriver` as a child process on a port of its
//! own, one browser session per test, and what the tests ask of a page (its text, a dialog, an
//! axe report, a screenshot). Everything that waits polls a condition with a deadline.

use std::{
    cell::RefCell,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{
    Client, ClientBuilder, Locator,
    actions::{InputSource, KeyAction, KeyActions},
};
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The window every page is first shown in; [`Chrome::shot`] also takes a phone width.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 900;
pub const PHONE_WIDTH: u32 = 390;
/// How long a page may take to show what a test waits for: a debug build of five services and
/// a browser share two cores while the suite runs in parallel.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Pinned by `package-lock.json` beside this file; installed by `scripts/ensure-browser.sh`.
fn axe_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js")
}

/// Whether the browser tests can run here. Outside CI a machine without Chromium, chromedriver or
/// axe-core skips them (saying so); under `CI` that is a failure, so CI cannot pass by skipping.
pub fn installed() -> bool {
    let axe = axe_script();
    let missing: Vec<String> = [Path::new(CHROMIUM), Path::new(CHROMEDRIVER), axe.as_path()]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("missing {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and the browser tests cannot run: {why}; run scripts/ensure-browser.sh");
    }
    // Straight to stderr: libtest captures print!/eprint! of passing tests, and a skip that
    // nobody sees is a pass that nobody earned.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {why}; run scripts/ensure-browser.sh"
    );
    false
}

/// `chromedriver` on a loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Driver {
        // chromedriver cannot be told to pick its own port and say which, so a free port is
        // picked first; if another process takes it meanwhile, chromedriver exits and we retry.
        for _ in 0..5 {
            let port = meisa_testkit::free_port();
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
            let status = format!("http://127.0.0.1:{port}/status");
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                if let Ok(resp) = reqwest::get(&status).await
                    && let Ok(body) = resp.json::<Value>().await
                    && body["value"]["ready"] == true
                {
                    return Driver { child, port };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    let _ = child.kill();
                    panic!("{CHROMEDRIVER} did not answer on port {port} within {PATIENCE:?}");
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        panic!("{CHROMEDRIVER} exited five times on start (ports taken?)");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session.
pub struct Chrome {
    pub client: Client,
    session: Option<String>,
    /// The last address opened: while a dialog is open the browser answers no question, not
    /// even where it is.
    opened: RefCell<String>,
    driver: Driver,
}

impl Chrome {
    pub async fn start() -> Chrome {
        let driver = Driver::start().await;
        let caps = json!({
            "browserName": "chrome",
            // Leave a dialog open and make every other command fail while it is: a dialog that
            // opened can then be asked for (see `dialog`) instead of being dismissed unseen.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         format!("--window-size={WIDTH},{HEIGHT}")],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        // Plain HTTP to chromedriver on loopback: no TLS, so neither OpenSSL nor a second
        // rustls crypto provider beside the workspace's ring (see the root Cargo.toml).
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a Chromium session");
        let session = client.session_id().await.ok().flatten();
        let chrome = Chrome {
            client,
            session,
            opened: RefCell::default(),
            driver,
        };
        chrome.resize(WIDTH, HEIGHT).await;
        chrome
    }

    /// Opens `url`. A dialog opened while it loads is left for [`Chrome::no_dialog`] to report.
    pub async fn goto(&self, url: &str) {
        self.opened.replace(url.to_string());
        match self.client.goto(url).await {
            Ok(()) => {}
            Err(e) if e.is_unexpected_alert_open() => {}
            Err(e) => panic!("cannot open {url}: {e}"),
        }
    }

    /// The text of an open `alert()`/`confirm()`/`prompt()` dialog, if one is open.
    pub async fn dialog(&self) -> Option<String> {
        // A page's `onerror` fires before its load event: once the document is complete, a
        // dialog it opened is open (or the script asking fails because one is).
        meisa_testkit::eventually(PATIENCE, "the page to finish loading", || async {
            match self
                .client
                .execute("return document.readyState", vec![])
                .await
            {
                Ok(state) => (state == "complete").then_some(()),
                Err(e) if e.is_unexpected_alert_open() => Some(()),
                Err(_) => None,
            }
        })
        .await;
        match self.client.get_alert_text().await {
            Ok(text) => Some(text),
            Err(e) if e.is_no_such_alert() => None,
            Err(e) => panic!("cannot ask whether a dialog is open: {e}"),
        }
    }

    /// Fails when a dialog is open on the current page.
    pub async fn no_dialog(&self) {
        if let Some(text) = self.dialog().await {
            let url = self.opened.borrow().clone();
            panic!("a dialog opened on {url} (or after) saying {text:?}: something ran a script");
        }
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns something other than null, false, 0 or ""; returns it.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        meisa_testkit::eventually(PATIENCE, what, || async {
            let v = self.client.execute(script, vec![]).await.ok()?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            truthy.then_some(v)
        })
        .await
    }

    /// The text of the page, as a reader gets it (markup in it shown as characters).
    pub async fn text(&self) -> String {
        let v = self.js("return document.body.textContent").await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Types `keys` into whatever has the focus, as key presses ([`fantoccini::key::Key`]
    /// characters for Tab, Enter…).
    pub async fn press(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".into());
        for c in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client
            .perform_actions(actions)
            .await
            .unwrap_or_else(|e| panic!("cannot type {keys:?}: {e}"));
    }

    /// The id of the focused element ("" for none or one without an id).
    pub async fn focused(&self) -> String {
        let v = self
            .js("return document.activeElement ? document.activeElement.id : ''")
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Resizes the window so that the page's viewport is `width` × `height` CSS pixels.
    async fn resize(&self, width: u32, height: u32) {
        // The window's outer size includes whatever frame the browser draws; measure it once and
        // add it, so a screenshot is exactly `width` wide.
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("cannot resize the window to {width}×{height}: {e}"));
        let inner = self
            .js("return [window.innerWidth, window.innerHeight]")
            .await;
        let dw = width.saturating_sub(inner[0].as_u64().unwrap_or(width.into()) as u32);
        let dh = height.saturating_sub(inner[1].as_u64().unwrap_or(height.into()) as u32);
        if dw > 0 || dh > 0 {
            self.client
                .set_window_size(width + dw, height + dh)
                .await
                .unwrap_or_else(|e| panic!("cannot resize the window: {e}"));
        }
        self.until(
            &format!("a viewport {width} wide"),
            &format!("return window.innerWidth === {width}"),
        )
        .await;
    }

    /// Saves the whole current page as `<dir>/<name>-1280.png` and `<dir>/<name>-390.png`.
    pub async fn shot(&self, dir: &Path, name: &str) {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        for width in [WIDTH, PHONE_WIDTH] {
            self.resize(width, HEIGHT).await;
            // As tall as the page at this width (bounded: a runaway page is not a poster).
            let tall = self
                .js("return document.documentElement.scrollHeight")
                .await
                .as_u64()
                .unwrap_or(HEIGHT.into())
                .clamp(HEIGHT.into(), 6000) as u32;
            self.resize(width, tall).await;
            let png = self
                .client
                .screenshot()
                .await
                .unwrap_or_else(|e| panic!("cannot take a screenshot of {name}: {e}"));
            let file = dir.join(format!("{name}-{width}.png"));
            std::fs::write(&file, png)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        }
        self.resize(WIDTH, HEIGHT).await;
    }

    /// Runs the pinned axe-core on the current page; returns every violation of impact
    /// "serious" or "critical", one line each: rule, impact, what it means, the first elements.
    pub async fn axe(&self) -> Vec<String> {
        let file = axe_script();
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let url = self.opened.borrow().clone();
        // Injected on every call: each navigation starts a fresh window object.
        self.js(&format!("{source}\nreturn typeof window.axe;"))
            .await;
        let report = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ["violations"] })
                  .then((r) => done({ violations: r.violations.map((v) => ({
                      id: v.id, impact: v.impact, help: v.help,
                      targets: v.nodes.slice(0, 3).map((n) => n.target) })) }))
                  .catch((e) => done({ error: String(e) }));"#,
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("axe did not run on {url}: {e}"));
        if let Some(error) = report.get("error") {
            panic!("axe failed on {url}: {error}");
        }
        report["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .map(|v| {
                format!(
                    "  {} ({}): {} at {}",
                    v["id"].as_str().unwrap_or("?"),
                    v["impact"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or(""),
                    v["targets"]
                )
            })
            .collect()
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium (and delete its profile); killing
        // chromedriver alone could leave the browser running. Drop cannot await the async client
        // (its connection lives on the test's runtime), so this is one blocking request.
        if let Some(id) = &self.session {
            let _ = end_session(self.driver.port, id);
        }
    }
}

fn end_session(port: u16, id: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    // chromedriver answers once the browser has quit.
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}
