//! Sequences, automations, enrollments and contact activity through the gateway, against the
//! real automations service (in-process, reading the streams the in-process contacts writes).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_error, jane, spawn_app, spawn_app_with_automations, welcome_template,
};

/// An id of the right form that no workspace has.
const NO_SEQUENCE: &str = "seq_0123456789abcdef0123456789abcdef";

async fn created(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn ok(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn template_id(app: &TestApp) -> String {
    let template = app.create_template(welcome_template()).await;
    template["id"].as_str().expect("template id").to_string()
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_string()
}

async fn create_sequence(app: &TestApp, body: Value) -> Value {
    created(app.post_json("/api/v1/sequences/", &body).await).await
}

async fn create_automation(app: &TestApp, body: Value) -> Value {
    created(app.post_json("/api/v1/automations/", &body).await).await
}

/// Polls `check` until it returns a value, or panics after 20 s with what it saw last. The system
/// is asynchronous (stream → automations → mailer → SMTP); this waits for a fact, not a time.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => panic!("{what}: still {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Removes what the server adds to an object, so it can be compared with the body that made it.
fn without_server_fields(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        for key in ["id", "created_at", "updated_at", "unseen_fields"] {
            obj.remove(key);
        }
    }
    v
}

#[tokio::test]
async fn sequences_are_created_read_listed_replaced_and_deleted() {
    let app = spawn_app_with_automations().await;
    let tpl = template_id(&app).await;
    let body = json!({"name": "Onboarding",
        "steps": [{"type": "email", "template_id": tpl},
                  {"type": "wait", "duration": "2d"},
                  {"type": "email", "template_id": tpl}],
        "exit_when": {"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]}});
    let seq = create_sequence(&app, body.clone()).await;
    let id = id_of(&seq);
    assert!(id.starts_with("seq_"), "{seq}");
    assert_eq!(
        without_server_fields(seq.clone()),
        body,
        "same shape as the input"
    );
    assert_eq!(seq["unseen_fields"], json!(["onboarding_completed"]));
    assert!(seq["created_at"].is_string() && seq["updated_at"].is_string());

    let got = ok(app.get(&format!("/api/v1/sequences/{id}")).await).await;
    assert_eq!(without_server_fields(got), body);

    // A second one, then pages of one, newest first.
    let second = create_sequence(
        &app,
        json!({"name": "Nudge", "steps": [{"type": "email", "template_id": tpl}], "exit_when": null}),
    )
    .await;
    assert_eq!(second["exit_when"], Value::Null);
    let page = ok(app.get("/api/v1/sequences/?limit=1").await).await;
    assert_eq!(page["sequences"][0]["id"], second["id"], "{page}");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let page = ok(app
        .get(&format!("/api/v1/sequences?limit=1&cursor={cursor}"))
        .await)
    .await;
    assert_eq!(page["sequences"][0]["id"], json!(id), "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    let resp = app.get("/api/v1/sequences/?cursor=nonsense").await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("cursor"),
    )
    .await;

    let replacement = json!({"name": "Onboarding v2",
        "steps": [{"type": "wait", "duration": "15m"}, {"type": "email", "template_id": tpl}],
        "exit_when": null});
    let replaced = ok(app
        .put_json(&format!("/api/v1/sequences/{id}"), &replacement)
        .await)
    .await;
    assert_eq!(without_server_fields(replaced.clone()), replacement);
    assert_eq!(replaced["created_at"], seq["created_at"]);

    let stats = ok(app.get(&format!("/api/v1/sequences/{id}/stats")).await).await;
    assert_eq!(
        stats,
        json!({"enrolled": 0, "active": 0, "completed": 0, "exited": 0, "emails_sent": 0})
    );

    let resp = app.delete(&format!("/api/v1/sequences/{id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.get(&format!("/api/v1/sequences/{id}")).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    let resp = app.delete(&format!("/api/v1/sequences/{id}")).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
}

#[tokio::test]
async fn automations_are_created_switched_replaced_and_deleted() {
    let app = spawn_app_with_automations().await;
    // The fields the conditions name are known (typed) in this workspace.
    app.upsert_ok(jane()).await;
    let tpl = template_id(&app).await;
    let seq = create_sequence(
        &app,
        json!({"name": "Pro tips", "steps": [{"type": "email", "template_id": tpl}]}),
    )
    .await;
    let seq_id = id_of(&seq);
    let body = json!({"name": "Upgrade to pro", "enabled": true,
        "trigger": {"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"},
        "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5}]},
        "actions": [{"type": "add_tag", "tag": "pro"}, {"type": "enroll", "sequence_id": seq_id}],
        "reentry": "once"});
    let automation = create_automation(&app, body.clone()).await;
    let id = id_of(&automation);
    assert!(id.starts_with("aut_"), "{automation}");
    assert_eq!(without_server_fields(automation.clone()), body);
    assert_eq!(automation["unseen_fields"], json!([]));

    let disabled = ok(app
        .post_json(&format!("/api/v1/automations/{id}/disable"), &json!({}))
        .await)
    .await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["trigger"], body["trigger"]);
    let got = ok(app.get(&format!("/api/v1/automations/{id}")).await).await;
    assert_eq!(got["enabled"], false);
    // Enable takes no body at all, too.
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/automations/{id}/enable")))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok(resp).await["enabled"], true);

    let list = ok(app.get("/api/v1/automations/").await).await;
    assert_eq!(
        list["automations"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    assert_eq!(list["automations"][0]["id"], json!(id));
    assert_eq!(list["next_cursor"], Value::Null);

    // The sequence is in use: 409 naming the automation that uses it.
    let resp = app.delete(&format!("/api/v1/sequences/{seq_id}")).await;
    let error = assert_error(resp, StatusCode::CONFLICT, "conflict", None).await;
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(&id), "{error}");
    assert!(message.contains("actions[1]"), "{error}");

    // PUT replaces everything; `from` null means "did not exist before"; enabled left out is off.
    let replacement = json!({"name": "Tagged pro",
        "trigger": {"type": "contact_updated", "field": "plan", "from": null},
        "conditions": null, "actions": [{"type": "add_tag", "tag": "pro"}],
        "reentry": "after:30d"});
    let replaced = ok(app
        .put_json(&format!("/api/v1/automations/{id}"), &replacement)
        .await)
    .await;
    assert_eq!(replaced["enabled"], false);
    assert_eq!(
        replaced["trigger"],
        json!({"type": "contact_updated", "field": "plan", "from": null})
    );
    assert_eq!(replaced["conditions"], Value::Null);
    assert_eq!(replaced["reentry"], "after:30d");

    let stats = ok(app.get(&format!("/api/v1/automations/{id}/stats")).await).await;
    assert_eq!(stats["triggered"], 0, "{stats}");
    for key in [
        "enrolled",
        "completed",
        "exited",
        "emails_sent",
        "actions_done",
        "actions_failed",
    ] {
        assert!(stats[key].is_u64(), "{key}: {stats}");
    }

    let resp = app.delete(&format!("/api/v1/automations/{id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.get(&format!("/api/v1/automations/{id}")).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    // No longer used, so the sequence can go.
    let resp = app.delete(&format!("/api/v1/sequences/{seq_id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn validation_errors_name_the_design_path() {
    let app = spawn_app_with_automations().await;
    // posts_generated is a number in this workspace from now on.
    app.upsert_ok(jane()).await;
    let tpl = template_id(&app).await;
    let automation = |conditions: Value, actions: Value| {
        json!({"name": "A", "enabled": true, "trigger": {"type": "contact_created"},
               "conditions": conditions, "actions": actions})
    };
    let cases = [
        // Judged by automations, against the workspace's fields and ids.
        (
            "/api/v1/automations/",
            automation(
                json!({"all": [{"field": "posts_generated", "op": "gte", "value": "five"}]}),
                json!([]),
            ),
            "conditions.all[0].value",
        ),
        (
            "/api/v1/automations/",
            automation(
                json!(null),
                json!([{"type": "enroll", "sequence_id": NO_SEQUENCE}]),
            ),
            "actions[0].sequence_id",
        ),
        (
            "/api/v1/automations/",
            automation(
                json!(null),
                json!([{"type": "enroll", "sequence_id": "onboarding"}]),
            ),
            "actions[0].sequence_id",
        ),
        (
            "/api/v1/automations/",
            json!({"name": "A", "trigger": {"type": "contact_updated", "field": "posts_generated", "to": "many"}}),
            "trigger.to",
        ),
        (
            "/api/v1/automations/",
            json!({"name": "A", "trigger": {"type": "contact_created"}, "reentry": "twice"}),
            "reentry",
        ),
        (
            "/api/v1/automations/",
            json!({"name": "A", "trigger": {"type": "contact_created", "tag": "x"}}),
            "trigger.tag",
        ),
        (
            "/api/v1/sequences/",
            json!({"name": "S", "steps": [{"type": "email", "template_id": tpl},
                                         {"type": "wait", "duration": "2 weeks"}]}),
            "steps[1].duration",
        ),
        (
            "/api/v1/sequences/",
            json!({"name": "S", "steps": [{"type": "email", "template_id": "tpl_0123456789abcdef0123456789abcdef"}]}),
            "steps[0].template_id",
        ),
        (
            "/api/v1/sequences/",
            json!({"name": "S", "steps": [{"type": "wait", "duration": "1d"}],
                   "exit_when": {"any": [{"field": "posts_generated", "op": "bigger", "value": 1}]}}),
            "exit_when.any[0].op",
        ),
        // Shapes, judged by the same parser.
        (
            "/api/v1/sequences/",
            json!({"name": "S", "steps": [{"type": "wait", "duration": "1d"},
                                         {"type": "wait", "duration": "1d", "foo": 1}]}),
            "steps[1].foo",
        ),
        (
            "/api/v1/automations/",
            json!({"name": "A", "trigger": {"type": "contact_updated", "feild": "plan"}}),
            "trigger.feild",
        ),
        (
            "/api/v1/automations/",
            json!({"name": "A", "trigger": {"type": "contact_created"}, "action": []}),
            "action",
        ),
        (
            "/api/v1/automations/",
            json!({"name": "A", "trigger": {"type": "contact_created"}, "enabled": "yes"}),
            "enabled",
        ),
        (
            "/api/v1/automations/",
            json!({"name": "A", "trigger": {"type": "signed_up"}}),
            "trigger.type",
        ),
    ];
    for (path, body, field) in cases {
        let resp = app.post_json(path, &body).await;
        let error = assert_error(
            resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        )
        .await;
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{error}"
        );
    }
    // Nothing was saved.
    let list = ok(app.get("/api/v1/automations/").await).await;
    assert_eq!(list["automations"], json!([]));
    let list = ok(app.get("/api/v1/sequences/").await).await;
    assert_eq!(list["sequences"], json!([]));

    // The envelope is the usual one.
    let resp = app
        .post_raw(
            "/api/v1/automations/",
            Some("application/json"),
            b"{\"name\":".to_vec(),
        )
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_json", None).await;
    let resp = app
        .post_raw("/api/v1/sequences/", Some("text/plain"), b"{}".to_vec())
        .await;
    assert_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    )
    .await;
}

#[tokio::test]
async fn unseen_fields_are_accepted_listed_and_forgotten_once_seen() {
    let app = spawn_app_with_automations().await;
    let body = json!({"name": "Trial ending", "enabled": true,
        "trigger": {"type": "condition_met"},
        "conditions": {"all": [{"field": "trial_days_left", "op": "lte", "value": 3},
                               {"field": "custom_fields.team_size", "op": "gt", "value": 1}]},
        "actions": [{"type": "add_tag", "tag": "trial-ending"}]});
    let automation = create_automation(&app, body).await;
    let id = id_of(&automation);
    assert_eq!(
        automation["unseen_fields"],
        json!(["trial_days_left", "team_size"])
    );
    let list = ok(app.get("/api/v1/automations/").await).await;
    assert_eq!(
        list["automations"][0]["unseen_fields"],
        json!(["trial_days_left", "team_size"])
    );

    // The product starts sending one of them: GET recomputes.
    let mut contact = jane();
    contact["custom_fields"]["trial_days_left"] = json!(10);
    app.upsert_ok(contact).await;
    let got = ok(app.get(&format!("/api/v1/automations/{id}")).await).await;
    assert_eq!(got["unseen_fields"], json!(["team_size"]), "{got}");

    // Now it is known, a value of another type is refused.
    let resp = app
        .post_json(
            "/api/v1/automations/",
            &json!({"name": "B", "trigger": {"type": "condition_met"},
                    "conditions": {"all": [{"field": "trial_days_left", "op": "eq", "value": "ten"}]}}),
        )
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("conditions.all[0].value"),
    )
    .await;
}

#[tokio::test]
async fn another_workspace_s_ids_are_not_found() {
    let app = spawn_app_with_automations().await;
    let contact = app.upsert_ok(jane()).await;
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let tpl = template_id(&app).await;
    let seq = create_sequence(
        &app,
        json!({"name": "S", "steps": [{"type": "email", "template_id": tpl}]}),
    )
    .await;
    let seq_id = id_of(&seq);
    let automation = create_automation(
        &app,
        json!({"name": "A", "trigger": {"type": "contact_created"},
               "actions": [{"type": "enroll", "sequence_id": seq_id}]}),
    )
    .await;
    let aut_id = id_of(&automation);

    let (_, other) = app.another_workspace().await;
    for path in [
        format!("/api/v1/sequences/{seq_id}"),
        format!("/api/v1/sequences/{seq_id}/stats"),
        format!("/api/v1/automations/{aut_id}"),
        format!("/api/v1/automations/{aut_id}/stats"),
        format!("/api/v1/contacts/{contact_id}/activity"),
        "/api/v1/automations/aut_nonsense".to_string(),
    ] {
        let resp = app.get_as(&path, &other).await;
        assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    }
    for path in [
        format!("/api/v1/automations/{aut_id}/enable"),
        format!("/api/v1/automations/{aut_id}/disable"),
    ] {
        let resp = app.post_json_as(&path, &json!({}), &other).await;
        assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    }
    let resp = app
        .http
        .put(app.url(&format!("/api/v1/sequences/{seq_id}")))
        .bearer_auth(&other)
        .json(&json!({"name": "S", "steps": [{"type": "wait", "duration": "1d"}]}))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    for path in [
        format!("/api/v1/sequences/{seq_id}"),
        format!("/api/v1/automations/{aut_id}"),
    ] {
        let resp = app
            .http
            .delete(app.url(&path))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::NOT_FOUND, "not_found", None).await;
    }
    // Its own workspace cannot enroll into this workspace's sequence either.
    let resp = app
        .post_json_as(
            "/api/v1/automations/",
            &json!({"name": "A", "trigger": {"type": "contact_created"},
                    "actions": [{"type": "enroll", "sequence_id": seq_id}]}),
            &other,
        )
        .await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("actions[0].sequence_id"),
    )
    .await;
    // Lists are the other workspace's own, i.e. empty.
    let list = ok(app.get_as("/api/v1/automations/", &other).await).await;
    assert_eq!(list["automations"], json!([]));
    let list = ok(app
        .get_as(
            &format!("/api/v1/enrollments/?sequence_id={seq_id}"),
            &other,
        )
        .await)
    .await;
    assert_eq!(list["enrollments"], json!([]));
    // And everything is still there for its owner.
    ok(app.get(&format!("/api/v1/automations/{aut_id}")).await).await;
    ok(app.get(&format!("/api/v1/sequences/{seq_id}")).await).await;
}

#[tokio::test]
async fn automations_down_is_a_503_and_readiness_reports_it() {
    let app = spawn_app().await;
    let resp = app.get("/api/v1/automations/").await;
    assert_eq!(resp.headers()["retry-after"], "2");
    let error = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable", None).await;
    assert_eq!(
        error["message"],
        "the automations service is unavailable; retry shortly"
    );
    // Definitions are judged by automations alone (one parser): without it, a write is a 503
    // to retry, never an answer the service might contradict.
    let resp = app
        .post_json("/api/v1/sequences/", &json!({"name": "S", "stepz": []}))
        .await;
    let error = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable", None).await;
    assert_eq!(
        error["message"],
        "the automations service is unavailable; retry shortly"
    );
    // Ready all the same: upserts do not need it.
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    let ready = ok(resp).await;
    assert_ne!(ready["checks"]["automations"], "ok", "{ready}");
    assert_eq!(ready["degraded"], json!(["automations"]), "{ready}");
}

/// The whole path through HTTP only: template → sequence → automation, an upsert, the email at
/// the SMTP server, and what the API then says about it.
#[tokio::test]
async fn contact_created_enrolls_and_the_email_arrives() {
    let app = spawn_app_with_automations().await;
    let ready = ok(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready["checks"]["automations"], "ok", "{ready}");
    assert_eq!(ready["degraded"], json!([]), "{ready}");

    let tpl = template_id(&app).await;
    let seq = create_sequence(
        &app,
        json!({"name": "Onboarding", "steps": [{"type": "email", "template_id": tpl}],
               "exit_when": {"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]}}),
    )
    .await;
    let seq_id = id_of(&seq);
    let automation = create_automation(
        &app,
        json!({"name": "Welcome", "enabled": true, "trigger": {"type": "contact_created"},
               "conditions": null, "actions": [{"type": "enroll", "sequence_id": seq_id}],
               "reentry": "once"}),
    )
    .await;
    let aut_id = id_of(&automation);

    let upserted = app.upsert_ok(jane()).await;
    assert_eq!(upserted["created"], true);
    let contact_id = upserted["id"].as_str().unwrap().to_string();

    let mails = app.mails(1).await;
    assert_eq!(mails[0].to, ["jane@example.com"]);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Welcome, Jane!")
    );

    let sent = eventually("the message is sent", || async {
        let list = ok(app
            .get(&format!("/api/v1/messages/?contact_id={contact_id}"))
            .await)
        .await;
        match list["messages"].as_array().map(Vec::as_slice) {
            Some([m]) if m["status"] == "sent" => Ok(m.clone()),
            _ => Err(list.to_string()),
        }
    })
    .await;
    assert_eq!(sent["source"]["sequence_id"], json!(seq_id), "{sent}");
    assert_eq!(sent["source"]["step"], 0, "{sent}");
    assert_eq!(sent["template_id"], json!(tpl));
    assert_eq!(sent["subject"], "Welcome, Jane!");

    // Up to the completion of the one-step sequence: nothing is added after it.
    let activity = eventually("the activity shows the enrollment completed", || async {
        let list = ok(app
            .get(&format!("/api/v1/contacts/{contact_id}/activity"))
            .await)
        .await;
        let kinds: Vec<&str> = list["activities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["kind"].as_str())
            .collect();
        if kinds.contains(&"step_done") && kinds.contains(&"completed") {
            Ok(list.clone())
        } else {
            Err(list.to_string())
        }
    })
    .await;
    let activities = activity["activities"].as_array().unwrap();
    let of_kind = |kind: &str| {
        activities
            .iter()
            .find(|a| a["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {activity}"))
    };
    let triggered = of_kind("triggered");
    assert_eq!(triggered["automation_id"], json!(aut_id));
    assert!(triggered["event_id"].is_string(), "{triggered}");
    let enrolled = of_kind("enrolled");
    assert_eq!(enrolled["sequence_id"], json!(seq_id));
    assert!(enrolled["enrollment_id"].is_string(), "{enrolled}");
    let step = of_kind("step_done");
    assert_eq!(step["message_id"], sent["id"], "{step}");
    assert_eq!(step["step_index"], 0);
    // Newest first (compared as instants: RFC 3339 strings with different fraction lengths do
    // not sort as text).
    let times: Vec<_> = activities
        .iter()
        .map(|a| {
            chrono::DateTime::parse_from_rfc3339(a["occurred_at"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("occurred_at of {a}: {e}"))
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{activity}");
    // Pages of one reach the same entries.
    let first = ok(app
        .get(&format!("/api/v1/contacts/{contact_id}/activity?limit=1"))
        .await)
    .await;
    assert_eq!(first["activities"][0], activities[0]);
    assert!(first["next_cursor"].is_string(), "{first}");

    let stats = eventually("the automation's counts", || async {
        let stats = ok(app
            .get(&format!("/api/v1/automations/{aut_id}/stats"))
            .await)
        .await;
        if stats["triggered"] == 1 && stats["enrolled"] == 1 && stats["emails_sent"] == 1 {
            Ok(stats)
        } else {
            Err(stats.to_string())
        }
    })
    .await;
    assert_eq!(stats["actions_failed"], 0, "{stats}");
    eventually("the sequence's counts", || async {
        let stats = ok(app.get(&format!("/api/v1/sequences/{seq_id}/stats")).await).await;
        if stats["enrolled"] == 1 && stats["completed"] == 1 && stats["emails_sent"] == 1 {
            Ok(stats)
        } else {
            Err(stats.to_string())
        }
    })
    .await;

    let enrollments = ok(app
        .get(&format!(
            "/api/v1/enrollments/?sequence_id={seq_id}&contact_id={contact_id}&status=completed"
        ))
        .await)
    .await;
    let list = enrollments["enrollments"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{enrollments}");
    assert_eq!(list[0]["automation_id"], json!(aut_id));
    assert_eq!(list[0]["current_step"], 1);
    assert!(list[0]["ended_at"].is_string());
    let none = ok(app.get("/api/v1/enrollments/?status=active").await).await;
    assert_eq!(none["enrollments"], json!([]));
    let resp = app.get("/api/v1/enrollments/?status=done").await;
    assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("status"),
    )
    .await;
}
