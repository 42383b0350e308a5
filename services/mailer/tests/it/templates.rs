use meisa_proto::{
    common::PageRequest,
    mailer::{
        self as pb, RenderErrorKind,
        preview_template_request::{Data, Template},
    },
};
use meisa_runtime::errors::ErrorCode;

use crate::helpers::*;

#[tokio::test]
async fn template_crud_paginates_and_scopes_by_workspace() {
    let app = spawn_app(None).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let t = app
            .create_template(template(
                &format!("Subject {i}"),
                "<p>Hi {{ first_name | default: \"there\" }}</p>",
            ))
            .await
            .unwrap();
        assert!(t.id.starts_with("tpl_"), "{}", t.id);
        assert_eq!(t.from, "Acme <hello@acme.test>");
        ids.push(t.id);
    }
    let mut client = app.client.clone();
    let got = client
        .get_template(pb::GetTemplateRequest {
            workspace_id: WS.into(),
            id: ids[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap();
    assert_eq!(got.subject, "Subject 0");

    // Another workspace's id answers NOT_FOUND.
    let err = client
        .get_template(pb::GetTemplateRequest {
            workspace_id: "ws_other".into(),
            id: ids[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // Newest first, two per page.
    let page1 = client
        .list_templates(pb::ListTemplatesRequest {
            workspace_id: WS.into(),
            page: Some(PageRequest {
                limit: 2,
                cursor: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page1
            .templates
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[1].clone()]
    );
    assert!(!page1.next_cursor.is_empty());
    let page2 = client
        .list_templates(pb::ListTemplatesRequest {
            workspace_id: WS.into(),
            page: Some(PageRequest {
                limit: 2,
                cursor: page1.next_cursor,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.templates.len(), 1);
    assert_eq!(page2.templates[0].id, ids[0]);
    assert!(page2.next_cursor.is_empty());

    let mut input = template("New subject", "<p>new</p>");
    input.text = Some("plain".into());
    let updated = client
        .update_template(pb::UpdateTemplateRequest {
            workspace_id: WS.into(),
            id: ids[1].clone(),
            template: Some(input),
        })
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap();
    assert_eq!(
        (updated.subject.as_str(), updated.text.as_deref()),
        ("New subject", Some("plain"))
    );

    client
        .delete_template(pb::DeleteTemplateRequest {
            workspace_id: WS.into(),
            id: ids[1].clone(),
        })
        .await
        .unwrap();
    let err = client
        .delete_template(pb::DeleteTemplateRequest {
            workspace_id: WS.into(),
            id: ids[1].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn templates_that_do_not_parse_are_rejected_with_line_and_column() {
    let app = spawn_app(None).await;
    let err = app
        .create_template(template("Hello", "<p>\n  Hi {{ first_name </p>"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidField);
    assert_eq!(err.field.as_deref(), Some("html"));
    assert!(err.message.contains("line 2, column"), "{}", err.message);

    let err = app
        .create_template(template("{% if %}", "<p>x</p>"))
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("subject"));

    let mut bad_text = template("Hello", "<p>x</p>");
    bad_text.text = Some("{{ x | no_such_filter }}".into());
    let err = app.create_template(bad_text).await.unwrap_err();
    assert_eq!(err.field.as_deref(), Some("text"));

    let mut bad_from = template("Hello", "<p>x</p>");
    bad_from.from = "not an address".into();
    let err = app.create_template(bad_from).await.unwrap_err();
    assert_eq!(err.field.as_deref(), Some("from"));
}

#[tokio::test]
async fn preview_renders_sample_fields_and_reports_missing_variables() {
    let app = spawn_app(None).await;
    let t = app
        .create_template(template(
            "Welcome, {{ first_name | default: \"there\" }}!",
            "<p>Hi {{ first_name }}, you are on {{ plan }} ({{ custom_fields.plan }}).</p>",
        ))
        .await
        .unwrap();
    let mut client = app.client.clone();
    let sample = pb::SampleFields {
        fields: [
            ("first_name".to_string(), string("<b>Jo</b>")),
            ("plan".to_string(), string("pro")),
        ]
        .into(),
        tags: vec![],
    };
    let r = client
        .preview_template(pb::PreviewTemplateRequest {
            workspace_id: WS.into(),
            template: Some(Template::TemplateId(t.id.clone())),
            data: Some(Data::Sample(sample)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(r.subject, "Welcome, <b>Jo</b>!");
    assert_eq!(
        r.html,
        "<p>Hi &lt;b&gt;Jo&lt;/b&gt;, you are on pro (pro).</p>"
    );
    assert_eq!(r.text, "Hi <b>Jo</b>, you are on pro (pro).");

    // A contact without a first name: the subject falls back, the body names what is missing.
    let r = client
        .preview_template(pb::PreviewTemplateRequest {
            workspace_id: WS.into(),
            template: Some(Template::TemplateId(t.id.clone())),
            data: Some(Data::Contact(contact("ct_1", "a@b.test", None))),
        })
        .await
        .unwrap()
        .into_inner();
    let e = r.error.expect("a render error");
    assert_eq!(e.kind, RenderErrorKind::MissingVariable as i32);
    assert_eq!(
        (e.field.as_str(), e.variable.as_str()),
        ("html", "first_name")
    );

    // A draft that does not parse comes back with its position.
    let r = client
        .preview_template(pb::PreviewTemplateRequest {
            workspace_id: WS.into(),
            template: Some(Template::Draft(template("ok", "line one\n{% for %}"))),
            data: None,
        })
        .await
        .unwrap()
        .into_inner();
    let e = r.error.expect("a parse error");
    assert_eq!(e.kind, RenderErrorKind::Parse as i32);
    assert_eq!((e.field.as_str(), e.line), ("html", 2));
}
