//! Whole flows as a person clicks them: templates, a sequence and automations built in the
//! editors with the keyboard and the editors' own buttons, then contacts sent through the JSON
//! API, and what follows seen twice: in the dashboard and at the real SMTP server.

use std::collections::BTreeSet;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::{Dashboard, chrome::PATIENCE};

/// Empties the input or textarea `css` and types `text` into it, key by key.
async fn type_into(d: &Dashboard, css: &str, text: &str) {
    let input = d
        .chrome
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    input.clear().await.unwrap();
    input
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
}

/// Picks, in the select `css`, the option that reads `label`.
async fn choose(d: &Dashboard, css: &str, label: &str) {
    d.chrome
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .select_by_label(label)
        .await
        .unwrap_or_else(|e| panic!("no option {label:?} in {css}: {e}"));
}

/// Clicks the submit button `css` and waits until the page it sent the browser to has loaded:
/// the same form re-rendered with the change (the editors' buttons), or where a save went.
async fn submit(d: &Dashboard, css: &str) {
    d.chrome.js("window.meisaLeft = true; return true").await;
    d.chrome.click(css).await;
    d.chrome
        .until(
            &format!("the page after pressing {css}"),
            "return !window.meisaLeft && document.readyState === 'complete'",
        )
        .await;
    d.no_dialog().await;
}

/// Presses the editor button `op` (`add:wait`, `add:condition`, …): the form comes back with it.
async fn op(d: &Dashboard, op: &str) {
    submit(d, &format!("button[name=op][value='{op}']")).await;
}

/// Presses the save button `label` and returns the id the editor redirected to
/// (`/{kind}/{id}?saved=1`); fails with what the form said when it did not save.
async fn save(d: &Dashboard, label: &str, kind: &str) -> String {
    let button = d
        .chrome
        .client
        .find(Locator::XPath(&format!("//button[.='{label}']")))
        .await
        .unwrap_or_else(|e| panic!("no {label:?} button: {e}"));
    d.chrome.js("window.meisaLeft = true; return true").await;
    button.click().await.unwrap();
    d.chrome
        .until(
            &format!("the page after {label:?}"),
            "return !window.meisaLeft && document.readyState === 'complete'",
        )
        .await;
    let path = d.path().await;
    let id = path
        .strip_prefix(&format!("/{kind}/"))
        .and_then(|rest| rest.strip_suffix("?saved=1"));
    match id {
        Some(id) => id.to_string(),
        None => {
            let errors = d
                .chrome
                .js("return [...document.querySelectorAll('.error')].map(e => e.textContent).join('; ')")
                .await;
            panic!("{label:?} did not save: on {path}, the form says {errors}");
        }
    }
}

/// The template editor filled in by typing, and saved; returns the template's id.
async fn write_template(d: &Dashboard, name: &str, subject: &str, html: &str) -> String {
    d.visit("/templates/new").await;
    for (css, text) in [
        ("#name", name),
        ("#from", "Acme <hello@acme.test>"),
        ("#subject", subject),
        ("#html", html),
    ] {
        type_into(d, css, text).await;
    }
    let id = save(d, "Save template", "templates").await;
    assert!(id.starts_with("tpl_"), "a template id: {id}");
    id
}

/// Opens `path` again and again until `script` returns something truthy there; returns it.
/// For what other services do meanwhile, which a page shows only when it is loaded again.
async fn until_shown(d: &Dashboard, path: &str, what: &str, script: &str) -> Value {
    meisa_testkit::eventually(PATIENCE, what, || async {
        d.visit(path).await;
        let v = d.chrome.client.execute(script, vec![]).await.ok()?;
        let truthy = match &v {
            Value::Null | Value::Bool(false) => false,
            Value::Array(a) => !a.is_empty(),
            _ => true,
        };
        truthy.then_some(v)
    })
    .await
}

/// The rows of the first table matching `css` (`table` or a section's), each as its cells' text.
fn table(css: &str) -> String {
    format!(
        "const t = document.querySelector({css:?});
         return t && [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
}

/// Rows whose subject (first cell) is one of `subjects` and whose status (third) is sent,
/// once there are as many as `subjects`.
fn all_sent(rows: &Value, subjects: &[&str]) -> bool {
    let sent: BTreeSet<String> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r[2].as_str().is_some_and(|s| s.starts_with("sent")))
        .filter_map(|r| r[0].as_str().map(str::to_string))
        .collect();
    subjects.iter().all(|s| sent.contains(*s))
}

/// A sequence's or automation's "So far" numbers, by their words.
const STATS: &str = "const o = {};
    for (const d of document.querySelectorAll('dl.stats > div'))
      o[d.querySelector('dt').textContent.trim()] = Number(d.querySelector('dd').textContent);
    return Object.keys(o).length ? o : null";

/// (recipient, subject) of everything the SMTP test server accepted.
fn received(d: &Dashboard) -> BTreeSet<(String, String)> {
    d.app
        .smtp
        .messages()
        .iter()
        .map(|m| {
            (
                m.to.join(","),
                m.header("Subject").expect("a Subject header"),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn onboarding_built_by_clicking_sends_both_emails_of_its_sequence() {
    let Some(d) = Dashboard::start().await else {
        return;
    };
    d.sign_in().await;

    let first = write_template(
        &d,
        "Welcome",
        "Welcome, {{ first_name }}",
        "<p>Hello {{ first_name }}, glad you are here.</p>",
    )
    .await;
    let second = write_template(
        &d,
        "Day two",
        "Day two for {{ first_name }}",
        "<p>Here is what to try next, {{ first_name }}.</p>",
    )
    .await;
    assert_ne!(first, second);

    // The sequence: it starts with one email step; a wait and a second email are added with the
    // editor's buttons, each press bringing the form back with what was already chosen.
    d.visit("/sequences/new").await;
    type_into(&d, "#name", "Onboarding").await;
    choose(&d, "#step_template_0", "Welcome").await;
    op(&d, "add:wait").await;
    type_into(&d, "#step_amount_1", "3").await;
    choose(&d, "#step_unit_1", "seconds").await;
    op(&d, "add:email").await;
    choose(&d, "#step_template_2", "Day two").await;
    let kept = d
        .chrome
        .js("return [document.getElementById('name').value,
                     document.getElementById('step_template_0').value,
                     document.getElementById('step_amount_1').value,
                     document.getElementById('step_unit_1').value]")
        .await;
    assert_eq!(
        kept,
        json!(["Onboarding", first, "3", "s"]),
        "presses keep what was chosen"
    );
    let sequence = save(&d, "Save sequence", "sequences").await;
    assert!(sequence.starts_with("seq_"), "a sequence id: {sequence}");

    d.visit("/automations/new").await;
    type_into(&d, "#name", "Enroll new contacts").await;
    choose(&d, "#trigger_type", "A contact is created").await;
    choose(&d, "#action_type_0", "Enroll in a sequence").await;
    choose(&d, "#action_sequence_0", "Onboarding").await;
    choose(&d, "#reentry", "once, ever").await;
    d.chrome.click("#enabled").await;
    let automation = save(&d, "Save automation", "automations").await;
    assert!(
        automation.starts_with("aut_"),
        "an automation id: {automation}"
    );
    assert_eq!(
        d.chrome
            .js("return document.getElementById('summary').textContent")
            .await,
        "When a contact is created: enroll in Onboarding"
    );
    assert_eq!(
        d.chrome
            .js("return document.querySelector('.heading .badge').textContent")
            .await,
        "On"
    );

    let contact = d
        .app
        .upsert(json!({"email": "ada@example.com", "external_id": "usr_ada",
            "first_name": "Ada", "subscribed": true}))
        .await;

    // The contact in the list, and a click through to its page.
    until_shown(
        &d,
        "/contacts",
        "Ada in the contact list",
        &format!("return document.querySelector(\"a[href='/contacts/{contact}']\")?.textContent"),
    )
    .await;
    submit(&d, &format!("a[href='/contacts/{contact}']")).await;
    assert_eq!(d.path().await, format!("/contacts/{contact}"));
    let timeline = d
        .chrome
        .js("return document.querySelector('section[aria-labelledby=timeline]').textContent")
        .await;
    let timeline = timeline.as_str().unwrap();
    assert!(
        timeline.contains("Created") && timeline.contains("ada@example.com"),
        "the timeline shows the creation: {timeline}"
    );

    // The first email goes out at once, the second once the 3 s wait is over.
    let subjects = ["Welcome, Ada", "Day two for Ada"];
    let path = format!("/contacts/{contact}");
    until_shown(
        &d,
        &path,
        "both emails listed as sent on the contact's page",
        &format!(
            "const rows = (() => {{ {} }})();
             const sent = (rows || []).filter(r => r[2].startsWith('sent')).map(r => r[0]);
             return {subjects:?}.every(s => sent.includes(s)) && rows",
            table("section[aria-labelledby=sequences] table")
        ),
    )
    .await;
    let why = d
        .chrome
        .js("return document.querySelector('section[aria-labelledby=why]').textContent")
        .await;
    assert!(
        why.as_str().unwrap().contains("Enrolled in Onboarding"),
        "the why view says the contact was enrolled: {why}"
    );

    let mail = d.app.smtp.wait_for(2, PATIENCE).await;
    assert_eq!(mail.len(), 2, "exactly the sequence's two emails");
    // The second came after the wait (Date has whole seconds: 3 s apart is at least 2).
    let sent_at = |subject: &str| {
        let m = mail
            .iter()
            .find(|m| m.header("Subject").as_deref() == Some(subject))
            .unwrap_or_else(|| panic!("no email {subject:?}"));
        chrono::DateTime::parse_from_rfc2822(&m.header("Date").expect("a Date header")).unwrap()
    };
    let apart = sent_at(subjects[1]) - sent_at(subjects[0]);
    assert!(
        apart >= chrono::TimeDelta::seconds(2),
        "the second email waited: {apart}"
    );
    assert_eq!(
        received(&d),
        pairs(&[
            ("ada@example.com", subjects[0]),
            ("ada@example.com", subjects[1])
        ])
    );

    let stats = until_shown(
        &d,
        &format!("/sequences/{sequence}"),
        "the sequence's numbers to count the two emails",
        &format!(
            "const o = (() => {{ {STATS} }})(); return o && o['Emails sent'] === 2 && o['Finished'] === 1 && o"
        ),
    )
    .await;
    assert_eq!(stats["Enrolled"], 1, "{stats}");
    assert_eq!(stats["In progress"], 0, "{stats}");
    assert_eq!(stats["Left early"], 0, "{stats}");
    // The step funnel, as the page shows it: Ada reached every step and got both emails.
    let funnel = d
        .chrome
        .client
        .execute(FUNNEL, vec![])
        .await
        .expect("the sequence page shows a funnel");
    assert_eq!(
        funnel,
        serde_json::json!([
            {"entered": "1", "here_now": "0", "sent": "1", "skipped": "0", "left": "0"},
            {"entered": "1", "here_now": "0", "sent": "–", "skipped": "0", "left": "0"},
            {"entered": "1", "here_now": "0", "sent": "1", "skipped": "0", "left": "0"}
        ]),
        "{funnel}"
    );
    d.no_dialog().await;
}

/// The step funnel table: per step, its counts by column.
const FUNNEL: &str = "const rows = [...document.querySelectorAll('table.funnel tbody tr')];
    return rows.length ? rows.map(r => {
      const o = {};
      for (const c of r.querySelectorAll('td[data-count]'))
        if (c.dataset.count !== 'failed') o[c.dataset.count] = c.textContent.trim();
      return o;
    }) : null";

#[tokio::test]
async fn the_design_examples_two_and_three_built_by_clicking_send_their_emails() {
    let Some(d) = Dashboard::start().await else {
        return;
    };
    // The sequence and templates the automations use are not what is tested here: the API makes
    // them (the test above builds both in their editors).
    let pro = d
        .app
        .template(
            json!({"name": "Pro welcome", "subject": "You are on Pro, {{ first_name }}",
            "html": "<p>Thanks for upgrading, {{ first_name }}.</p>", "text": null,
            "from": "Acme <hello@acme.test>", "reply_to": null}),
        )
        .await;
    d.app
        .template(
            json!({"name": "Five posts", "subject": "Five posts, {{ first_name }}!",
            "html": "<p>You wrote five posts.</p>", "text": null,
            "from": "Acme <hello@acme.test>", "reply_to": null}),
        )
        .await;
    d.app
        .post(
            "/api/v1/sequences/",
            json!({"name": "Pro onboarding", "steps": [{"type": "email", "template_id": pro}]}),
            reqwest::StatusCode::CREATED,
        )
        .await;
    d.sign_in().await;

    // Example 2. The trigger's kind first: only then are its field, from and to shown.
    d.visit("/automations/new").await;
    type_into(&d, "#name", "Upgrade to pro").await;
    choose(&d, "#trigger_type", "A contact changes").await;
    type_into(&d, "#trigger_field", "plan").await;
    type_into(&d, "#trigger_from", "free").await;
    type_into(&d, "#trigger_to", "pro").await;
    op(&d, "add:condition").await;
    type_into(&d, "#c_field_0", "posts_generated").await;
    choose(&d, "#c_op_0", "is at least").await;
    type_into(&d, "#c_value_0", "5").await;
    choose(&d, "#action_type_0", "Add a tag").await;
    type_into(&d, "#action_tag_0", "pro").await;
    op(&d, "add:action").await;
    choose(&d, "#action_type_1", "Enroll in a sequence").await;
    choose(&d, "#action_sequence_1", "Pro onboarding").await;
    choose(&d, "#reentry", "once, ever").await;
    d.chrome.click("#enabled").await;
    let hidden = d
        .chrome
        .js(
            "return ['#trigger_tag', '#action_sequence_0', '#action_tag_1']
                 .map(s => document.querySelector(s).offsetParent === null)",
        )
        .await;
    assert_eq!(
        hidden,
        json!([true, true, true]),
        "inputs that do not apply are hidden"
    );
    let upgrade = save(&d, "Save automation", "automations").await;
    let summary = "return document.getElementById('summary').textContent";
    assert_eq!(
        d.chrome.js(summary).await,
        "When plan changes from free to pro, and posts_generated is at least 5: \
         tag pro, then enroll in Pro onboarding"
    );

    // Example 3.
    d.visit("/automations/new").await;
    type_into(&d, "#name", "Five posts").await;
    choose(&d, "#trigger_type", "The conditions below become true").await;
    op(&d, "add:condition").await;
    type_into(&d, "#c_field_0", "posts_generated").await;
    choose(&d, "#c_op_0", "is at least").await;
    type_into(&d, "#c_value_0", "5").await;
    choose(&d, "#action_type_0", "Send an email").await;
    choose(&d, "#action_template_0", "Five posts").await;
    d.chrome.click("#enabled").await;
    let five = save(&d, "Save automation", "automations").await;
    assert_eq!(
        d.chrome.js(summary).await,
        "When posts_generated is at least 5 becomes true: send Five posts"
    );
    assert_ne!(upgrade, five);

    // Jane upgrades with seven posts: tagged pro and enrolled (example 2), and her posts make
    // example 3's condition true as well. Sam reaches five posts, then six: one email.
    let jane = d
        .app
        .upsert(
            json!({"email": "jane@example.com", "external_id": "usr_12345",
            "first_name": "Jane", "subscribed": true,
            "custom_fields": {"plan": "free", "posts_generated": 0}}),
        )
        .await;
    d.app
        .upsert(
            json!({"email": "jane@example.com", "external_id": "usr_12345",
            "custom_fields": {"plan": "pro", "posts_generated": 7}}),
        )
        .await;
    for posts in [3, 5, 6] {
        d.app
            .upsert(json!({"email": "sam@example.com", "external_id": "usr_777",
                "first_name": "Sam", "custom_fields": {"plan": "free", "posts_generated": posts}}))
            .await;
    }

    let expected = [
        ("jane@example.com", "You are on Pro, Jane"),
        ("jane@example.com", "Five posts, Jane!"),
        ("sam@example.com", "Five posts, Sam!"),
    ];
    d.app.smtp.wait_for(expected.len(), PATIENCE).await;
    assert_eq!(received(&d), pairs(&expected));

    let rows = until_shown(
        &d,
        "/messages",
        "the three emails listed as sent",
        &format!(
            "const rows = (() => {{ {} }})();
             return rows && rows.filter(r => r[2].startsWith('sent')).length >= 3 && rows",
            table("table")
        ),
    )
    .await;
    let subjects: Vec<&str> = expected.iter().map(|(_, s)| *s).collect();
    assert!(all_sent(&rows, &subjects), "/messages lists {rows}");
    for (to, subject) in expected {
        assert!(
            rows.as_array()
                .unwrap()
                .iter()
                .any(|r| r[0] == subject && r[1] == to),
            "/messages has {subject:?} to {to}: {rows}"
        );
    }

    // Jane's page: the tag the automation added, and who added it.
    d.visit(&format!("/contacts/{jane}")).await;
    let tags = d
        .chrome
        .js("return [...document.querySelectorAll('section[aria-labelledby=about] .tag')].map(t => t.textContent)")
        .await;
    assert_eq!(tags, json!(["pro"]));
    let timeline = d
        .chrome
        .js("return document.querySelector('section[aria-labelledby=timeline]').textContent")
        .await;
    assert!(
        timeline
            .as_str()
            .unwrap()
            .contains("by automation Upgrade to pro"),
        "the timeline names the automation that tagged her: {timeline}"
    );

    // The editor of example 2 as saved, with its numbers: the README shows this screenshot.
    let stats = until_shown(
        &d,
        &format!("/automations/{upgrade}"),
        "the upgrade automation's numbers",
        &format!(
            "const o = (() => {{ {STATS} }})(); return o && o['Triggered'] === 1 && o['Enrolled'] === 1 && o"
        ),
    )
    .await;
    assert_eq!(stats["Actions failed"], 0, "{stats}");
    d.shot("automation-upgrade").await;
    let file = crate::screenshots_dir().join("automation-upgrade-1280.png");
    let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, crate::chrome::WIDTH, "{}", file.display());
    d.no_dialog().await;
}
