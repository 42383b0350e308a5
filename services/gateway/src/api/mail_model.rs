//! The public JSON shapes of templates, messages and suppressions (DESIGN §3, §5) and their
//! mapping to and from the mailer protos. As in [`super::model`], shape errors (unknown keys,
//! wrong JSON types, missing keys) are found here, in document order, and name the field; values
//! (Liquid syntax, addresses, lengths) are the mailer's to judge, so gRPC and HTTP callers get
//! the same answers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use meisa_model::BuiltIn;
use meisa_proto::{
    common::{self, value::Kind},
    mailer::{self as pb, MessageStatus, SuppressionReason},
};
use meisa_runtime::errors::{ApiError, ErrorCode};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::json::{
    enum_filter, enum_name, non_empty, object, optional_time, reject_unknown, time, wrong_type,
};
use crate::error::BadAnswer;

pub const TEMPLATE_KEYS: &[&str] = &["name", "subject", "html", "text", "from", "reply_to"];
const REQUIRED_TEMPLATE_KEYS: &[&str] = &["name", "subject", "html", "from"];

/// The idempotency key prefix of test sends; it is how a message is known to be one.
pub const TEST_SEND_KEY_PREFIX: &str = "test-send:";
/// The id prefix of test sends' synthetic recipients, `test_…` (never a real contact's id, so a
/// test email's unsubscribe link cannot unsubscribe a real contact).
pub const TEST_CONTACT_PREFIX: &str = "test";

const MESSAGE_STATUSES: &[(&str, MessageStatus)] = &[
    ("queued", MessageStatus::Queued),
    ("sent", MessageStatus::Sent),
    ("failed", MessageStatus::Failed),
    ("suppressed", MessageStatus::Suppressed),
    ("skipped", MessageStatus::Skipped),
];
const SUPPRESSION_REASONS: &[(&str, SuppressionReason)] = &[
    ("manual", SuppressionReason::Manual),
    ("bounce", SuppressionReason::Bounce),
    ("complaint", SuppressionReason::Complaint),
];

// ------------------------------------------------------------------------------------ templates

/// The body of `POST /api/v1/templates/` and `PUT /api/v1/templates/{id}`: exactly these keys.
/// Documentation only: handlers read a raw JSON value and map it with [`template_input`].
#[derive(ToSchema)]
#[schema(example = json!({
    "name": "Welcome", "subject": "Welcome, {{ first_name | default: \"there\" }}!",
    "html": "<p>Hi {{ first_name }}, you are on {{ plan }}.</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
    "text": null, "from": "Acme <hello@acme.test>", "reply_to": null
}))]
#[allow(dead_code)]
pub struct TemplateBody {
    /// At most 200 characters.
    name: String,
    /// Liquid; one line; at most 2 KiB.
    subject: String,
    /// Liquid; values are HTML-escaped; at most 256 KiB.
    html: String,
    /// Liquid; null or absent derives the text part from the rendered HTML.
    text: Option<String>,
    /// "Acme <hello@acme.test>" or "hello@acme.test".
    from: String,
    reply_to: Option<String>,
}

/// The body of `PATCH /api/v1/templates/{id}`: any of the template's keys; the others are kept.
/// `null` clears `text` or `reply_to`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TemplatePatchBody {
    name: Option<String>,
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
    from: Option<String>,
    reply_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    #[schema(example = "tpl_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    pub id: String,
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    pub from: String,
    pub reply_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<pb::Template> for TemplateView {
    type Error = BadAnswer;

    fn try_from(t: pb::Template) -> Result<Self, BadAnswer> {
        Ok(Self {
            id: t.id,
            name: t.name,
            subject: t.subject,
            html: t.html,
            text: t.text,
            from: t.from,
            reply_to: t.reply_to,
            created_at: time("created_at", t.created_at)?,
            updated_at: time("updated_at", t.updated_at)?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    /// Newest first.
    pub templates: Vec<TemplateView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Sets one template key from its JSON value, or says what is wrong with it.
fn apply_template_key(
    input: &mut pb::TemplateInput,
    key: &str,
    value: Value,
) -> Result<(), ApiError> {
    let required = |value: Value| match value {
        Value::String(s) => Ok(s),
        Value::Null => Err(ApiError::field(key, "is required")),
        other => Err(wrong_type(key, "a string", &other)),
    };
    let optional = |value: Value| match value {
        Value::String(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        other => Err(wrong_type(key, "a string or null", &other)),
    };
    match key {
        "name" => input.name = required(value)?,
        "subject" => input.subject = required(value)?,
        "html" => input.html = required(value)?,
        "from" => input.from = required(value)?,
        "text" => input.text = optional(value)?,
        "reply_to" => input.reply_to = optional(value)?,
        // reject_unknown ran first.
        _ => {}
    }
    Ok(())
}

/// A whole template (create, replace): `name`, `subject`, `html` and `from` are required; `text`
/// and `reply_to` may be null or left out.
pub fn template_input(body: Value) -> Result<pb::TemplateInput, ApiError> {
    let obj = object(body, "with name, subject, html, text, from and reply_to")?;
    reject_unknown(&obj, TEMPLATE_KEYS, "")?;
    // Keys present are checked in document order first; a missing key has no position in the
    // document, so it is reported after them.
    let missing = REQUIRED_TEMPLATE_KEYS
        .iter()
        .find(|k| !obj.contains_key(**k))
        .copied();
    let mut input = pb::TemplateInput::default();
    for (key, value) in obj {
        apply_template_key(&mut input, &key, value)?;
    }
    match missing {
        Some(key) => Err(ApiError::field(key, "is required")),
        None => Ok(input),
    }
}

/// A PATCH merged into the stored template: keys sent replace the stored values, the others are
/// kept. `None` when the body changes nothing (an empty object).
pub fn merge_template(
    current: &pb::Template,
    body: Value,
) -> Result<Option<pb::TemplateInput>, ApiError> {
    let obj = object(
        body,
        "with any of name, subject, html, text, from and reply_to",
    )?;
    reject_unknown(&obj, TEMPLATE_KEYS, "")?;
    if obj.is_empty() {
        return Ok(None);
    }
    let mut input = pb::TemplateInput {
        name: current.name.clone(),
        subject: current.subject.clone(),
        html: current.html.clone(),
        text: current.text.clone(),
        from: current.from.clone(),
        reply_to: current.reply_to.clone(),
    };
    for (key, value) in obj {
        apply_template_key(&mut input, &key, value)?;
    }
    Ok(Some(input))
}

// ------------------------------------------------------------------------------------ previews

/// The body of `POST /api/v1/templates/{id}/preview`: a contact id, or sample fields, or neither
/// (an empty object renders with no data, which shows every variable the template needs).
#[derive(ToSchema)]
#[schema(example = json!({"sample": {"first_name": "Jane", "plan": "pro", "tags": ["pro"]}}))]
#[allow(dead_code)]
pub struct PreviewBody {
    /// Render with this contact's current state.
    #[schema(example = "ct_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    contact_id: Option<String>,
    /// Render with these fields: built-in fields by name (`first_name`, `email`…), custom fields
    /// by bare name (or inside `custom_fields`), `tags` as an array of strings.
    #[schema(value_type = Option<Object>)]
    sample: Option<Map<String, Value>>,
}

/// The body of `POST /api/v1/templates/{id}/test-send`.
#[derive(ToSchema)]
#[schema(example = json!({"to": "me@acme.test", "sample": {"first_name": "Jane", "plan": "pro"}}))]
#[allow(dead_code)]
pub struct TestSendBody {
    /// Where the test email goes.
    to: String,
    /// Render with this contact's current state (the email still goes to `to` only).
    contact_id: Option<String>,
    /// Or render with these fields (as in a preview).
    #[schema(value_type = Option<Object>)]
    sample: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Where a preview's or test send's data comes from.
#[derive(Debug, PartialEq)]
pub enum DataSource {
    ContactId(String),
    Sample(Sample),
    Nothing,
}

/// Sample fields as the mailer takes them.
#[derive(Debug, Default, PartialEq)]
pub struct Sample {
    pub fields: BTreeMap<String, common::Value>,
    pub tags: Vec<String>,
}

impl Sample {
    pub fn into_proto(self) -> pb::SampleFields {
        pb::SampleFields {
            fields: self.fields.into_iter().collect(),
            tags: self.tags,
        }
    }

    /// A contact snapshot carrying these fields, for a test send (which needs a contact).
    /// `email`, `subscribed` and the id are the caller's to set.
    pub fn into_contact(self) -> Result<common::Contact, ApiError> {
        let mut contact = common::Contact {
            tags: self.tags,
            ..Default::default()
        };
        for (name, value) in self.fields {
            let text = match &value.kind {
                Some(Kind::StringValue(s)) => Some(s.clone()),
                _ => None,
            };
            let time = || {
                text.as_deref()
                    .map(|t| {
                        DateTime::parse_from_rfc3339(t)
                            .map(|t| meisa_proto::timestamp(t.with_timezone(&Utc)))
                            .map_err(|_| {
                                ApiError::field(
                                    format!("sample.{name}"),
                                    format!("must be an RFC 3339 time, got {t:?}"),
                                )
                            })
                    })
                    .transpose()
            };
            match BuiltIn::parse(&name) {
                Some(BuiltIn::FirstName) => contact.first_name = text,
                Some(BuiltIn::LastName) => contact.last_name = text,
                Some(BuiltIn::ExternalId) => contact.external_id = text.unwrap_or_default(),
                Some(BuiltIn::CreatedAt) => contact.created_at = time()?,
                Some(BuiltIn::UpdatedAt) => contact.updated_at = time()?,
                // A test send goes to its `to`, and is always sent (the caller sets both);
                // `sample` keeps tags apart from the fields.
                Some(BuiltIn::Email | BuiltIn::Subscribed | BuiltIn::Tags) => {}
                None => {
                    contact.custom_fields.insert(name, value);
                }
            }
        }
        Ok(contact)
    }
}

fn scalar(path: &str, v: &Value) -> Result<common::Value, ApiError> {
    meisa_proto::json_to_value(v)
        .ok_or_else(|| wrong_type(path, "a string, number, boolean or null", v))
}

/// `sample` of a preview or test send: an object of field names to values, `tags` an array of
/// strings, and optionally `custom_fields` (an object) as in a contact.
pub fn sample(value: Value) -> Result<Sample, ApiError> {
    let Value::Object(obj) = value else {
        return Err(wrong_type(
            "sample",
            "an object of field names to values",
            &value,
        ));
    };
    let mut out = Sample::default();
    for (name, value) in obj {
        let path = format!("sample.{name}");
        match (name.as_str(), BuiltIn::parse(&name)) {
            (_, Some(BuiltIn::Tags)) => {
                let Value::Array(items) = value else {
                    return Err(wrong_type(&path, "an array of strings", &value));
                };
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(t) => out.tags.push(t),
                        other => {
                            return Err(wrong_type(&format!("{path}[{i}]"), "a string", &other));
                        }
                    }
                }
            }
            ("custom_fields", _) => {
                let Value::Object(fields) = value else {
                    return Err(wrong_type(
                        &path,
                        "an object of field names to values",
                        &value,
                    ));
                };
                for (field, value) in fields {
                    let v = scalar(&format!("{path}.{field}"), &value)?;
                    out.fields.insert(field, v);
                }
            }
            ("unsubscribe_url", _) => {
                return Err(ApiError::field(
                    path,
                    "is set by Meisa for every email; leave it out",
                ));
            }
            (_, Some(BuiltIn::Subscribed)) => match value {
                Value::Bool(_) | Value::Null => {
                    out.fields.insert(name, scalar(&path, &value)?);
                }
                other => return Err(wrong_type(&path, "true, false or null", &other)),
            },
            // The other built-ins are text (dates as RFC 3339).
            (_, Some(_)) => match value {
                Value::String(_) | Value::Null => {
                    out.fields.insert(name, scalar(&path, &value)?);
                }
                other => return Err(wrong_type(&path, "a string or null", &other)),
            },
            _ => {
                let v = scalar(&path, &value)?;
                out.fields.insert(name, v);
            }
        }
    }
    Ok(out)
}

/// `contact_id` or `sample` (at most one) out of a body whose other keys the caller takes first.
pub fn data_source(obj: &mut Map<String, Value>) -> Result<DataSource, ApiError> {
    let contact_id = obj.remove("contact_id");
    let sample_value = obj.remove("sample");
    match (contact_id, sample_value) {
        (Some(c), Some(s)) if !c.is_null() && !s.is_null() => Err(ApiError::new(
            ErrorCode::InvalidField,
            "send contact_id or sample, not both",
        )),
        (Some(Value::String(id)), _) => {
            if id.trim().is_empty() {
                Err(ApiError::field("contact_id", "cannot be empty"))
            } else {
                Ok(DataSource::ContactId(id))
            }
        }
        (Some(other), _) if !other.is_null() => Err(wrong_type("contact_id", "a string", &other)),
        (_, Some(s)) if !s.is_null() => sample(s).map(DataSource::Sample),
        _ => Ok(DataSource::Nothing),
    }
}

pub fn preview_body(body: Value) -> Result<DataSource, ApiError> {
    let mut obj = object(body, "with contact_id or sample")?;
    reject_unknown(&obj, &["contact_id", "sample"], "")?;
    data_source(&mut obj)
}

#[derive(Debug)]
pub struct TestSend {
    pub to: String,
    pub data: DataSource,
}

pub fn test_send_body(body: Value) -> Result<TestSend, ApiError> {
    let mut obj = object(body, "with to and optionally contact_id or sample")?;
    reject_unknown(&obj, &["to", "contact_id", "sample"], "")?;
    let to = match obj.remove("to") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(ApiError::field(
                "to",
                "is required: the address to send the test to",
            ));
        }
        Some(other) => return Err(wrong_type("to", "a string", &other)),
    };
    Ok(TestSend {
        to,
        data: data_source(&mut obj)?,
    })
}

/// A render problem the mailer reported in a preview, as the 422 the caller gets. The mailer's
/// message already names the part and says how to fix it ("html: missing variable first_name;
/// add a default…", "html: line 2, column 7: …").
pub fn render_error(e: pb::RenderError) -> ApiError {
    let field = Some(e.field).filter(|f| !f.is_empty());
    let message = if e.message.is_empty() {
        "the template could not be rendered".to_string()
    } else {
        e.message
    };
    ApiError {
        code: ErrorCode::InvalidField,
        message,
        field,
    }
}

// ------------------------------------------------------------------------------------ messages

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageSourceView {
    /// The automation that sent it; null when none.
    pub automation_id: Option<String>,
    pub sequence_id: Option<String>,
    /// 0-based step index within the sequence.
    pub step: Option<u32>,
    /// True for an email sent with `POST /api/v1/templates/{id}/test-send`.
    pub test: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageView {
    #[schema(example = "msg_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6")]
    pub id: String,
    /// The contact it was for (`test_…` for a test send).
    pub contact_id: String,
    /// The recipient address.
    pub to: String,
    pub template_id: Option<String>,
    pub source: MessageSourceView,
    /// queued, sent, failed, suppressed or skipped.
    #[schema(example = "sent")]
    pub status: String,
    /// Why it was skipped, suppressed or failed; null otherwise.
    pub reason: Option<String>,
    /// The rendered subject; null when nothing was rendered (skipped).
    pub subject: Option<String>,
    /// Delivery attempts so far.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One message with what only `GET /api/v1/messages/{id}` returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: MessageView,
    /// The RFC 5322 Message-ID header, e.g. `<msg_…@acme.test>`.
    pub message_id_header: Option<String>,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// The rendered bodies; null when none was kept (suppressed or skipped messages).
    pub html: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    /// Newest first.
    pub messages: Vec<MessageView>,
    pub next_cursor: Option<String>,
}

/// `status` of a message list; none: every status.
pub fn status_filter(s: Option<&str>) -> Result<MessageStatus, ApiError> {
    enum_filter(MESSAGE_STATUSES, "status", s, MessageStatus::Unspecified)
}

impl TryFrom<pb::Message> for MessageDetail {
    type Error = BadAnswer;

    fn try_from(m: pb::Message) -> Result<Self, BadAnswer> {
        // A message without an automation or a sequence (a test send) has an empty source.
        let source = m.source.unwrap_or_default();
        let test = m.idempotency_key.starts_with(TEST_SEND_KEY_PREFIX);
        Ok(Self {
            message: MessageView {
                id: m.id,
                contact_id: m.contact_id,
                to: m.to,
                template_id: non_empty(m.template_id),
                source: MessageSourceView {
                    automation_id: non_empty(source.automation_id),
                    sequence_id: non_empty(source.sequence_id),
                    step: source.step,
                    test,
                },
                status: enum_name(MESSAGE_STATUSES, "status", m.status)?.into(),
                reason: non_empty(m.reason),
                subject: non_empty(m.subject),
                attempts: m.attempts,
                created_at: time("created_at", m.created_at)?,
                updated_at: time("updated_at", m.updated_at)?,
                sent_at: optional_time("sent_at", m.sent_at)?,
            },
            message_id_header: non_empty(m.message_id_header),
            last_error: non_empty(m.last_error),
            html: non_empty(m.html),
            text: non_empty(m.text),
        })
    }
}

impl TryFrom<pb::Message> for MessageView {
    type Error = BadAnswer;

    fn try_from(m: pb::Message) -> Result<Self, BadAnswer> {
        MessageDetail::try_from(m).map(|d| d.message)
    }
}

// ------------------------------------------------------------------------------------ suppressions

/// The body of `POST /api/v1/suppressions/`.
#[derive(ToSchema)]
#[schema(example = json!({"email": "jane@example.com", "reason": "manual", "detail": "asked by phone"}))]
#[allow(dead_code)]
pub struct SuppressionBody {
    email: String,
    /// manual (the default), bounce or complaint.
    reason: Option<String>,
    /// A free-text note, at most 1,024 bytes.
    detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    /// Lower-cased.
    pub email: String,
    /// manual, bounce or complaint.
    #[schema(example = "manual")]
    pub reason: String,
    /// A note, or for a bounce the receiving server's reply.
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<pb::Suppression> for SuppressionView {
    type Error = BadAnswer;

    fn try_from(s: pb::Suppression) -> Result<Self, BadAnswer> {
        Ok(Self {
            reason: enum_name(SUPPRESSION_REASONS, "reason", s.reason)?.into(),
            created_at: time("created_at", s.created_at)?,
            email: s.email,
            detail: non_empty(s.detail),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionList {
    /// In address order.
    pub suppressions: Vec<SuppressionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug)]
pub struct NewSuppression {
    pub email: String,
    pub reason: SuppressionReason,
    pub detail: String,
}

pub fn suppression_body(body: Value) -> Result<NewSuppression, ApiError> {
    let obj = object(body, "with email and optionally reason and detail")?;
    reject_unknown(&obj, &["email", "reason", "detail"], "")?;
    let mut out = NewSuppression {
        email: String::new(),
        reason: SuppressionReason::Manual,
        detail: String::new(),
    };
    let mut has_email = false;
    for (key, value) in obj {
        match (key.as_str(), value) {
            ("email", Value::String(s)) => {
                out.email = s;
                has_email = true;
            }
            ("email", Value::Null) => return Err(ApiError::field("email", "is required")),
            ("email", other) => return Err(wrong_type("email", "a string", &other)),
            ("reason", Value::Null) => {}
            ("reason", Value::String(r)) => {
                let r = r.trim();
                out.reason = SUPPRESSION_REASONS
                    .iter()
                    .find(|(name, _)| *name == r)
                    .map(|(_, reason)| *reason)
                    .ok_or_else(|| {
                        ApiError::field(
                            "reason",
                            format!(
                                "must be manual, bounce or complaint, got {r:?}; put a note in detail"
                            ),
                        )
                    })?;
            }
            ("reason", other) => {
                return Err(wrong_type("reason", "manual, bounce or complaint", &other));
            }
            ("detail", Value::Null) => {}
            ("detail", Value::String(d)) => out.detail = d,
            ("detail", other) => return Err(wrong_type("detail", "a string or null", &other)),
            _ => {}
        }
    }
    if !has_email {
        return Err(ApiError::field("email", "is required"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({"name": "Welcome", "subject": "Hi", "html": "<p>Hi</p>", "text": null,
               "from": "Acme <hello@acme.test>", "reply_to": null})
    }

    #[test]
    fn a_full_template_body_maps_to_the_proto() {
        let input = template_input(full()).unwrap();
        assert_eq!(input.name, "Welcome");
        assert_eq!(input.text, None);
        assert_eq!(input.from, "Acme <hello@acme.test>");
        let mut body = full();
        body.as_object_mut().unwrap().remove("text");
        body.as_object_mut().unwrap().remove("reply_to");
        assert!(
            template_input(body).is_ok(),
            "text and reply_to may be left out"
        );
    }

    #[test]
    fn template_shape_errors_name_the_field() {
        let mut body = full();
        body["subjekt"] = json!("typo");
        assert_eq!(
            template_input(body).unwrap_err().field.as_deref(),
            Some("subjekt")
        );
        for (key, value) in [
            ("name", json!(1)),
            ("html", json!(null)),
            ("text", json!(["x"])),
            ("reply_to", json!(false)),
        ] {
            let mut body = full();
            body[key] = value;
            let e = template_input(body).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField);
            assert_eq!(e.field.as_deref(), Some(key), "{}", e.message);
        }
        let mut body = full();
        body.as_object_mut().unwrap().remove("from");
        assert_eq!(
            template_input(body).unwrap_err().field.as_deref(),
            Some("from")
        );
        assert_eq!(template_input(json!([])).unwrap_err().field, None);
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name() {
        let current = pb::Template {
            id: "tpl_1".into(),
            name: "Welcome".into(),
            subject: "Hi".into(),
            html: "<p>Hi</p>".into(),
            text: Some("Hi".into()),
            from: "a@acme.test".into(),
            reply_to: Some("r@acme.test".into()),
            ..Default::default()
        };
        let merged = merge_template(&current, json!({"subject": "Hello", "text": null}))
            .unwrap()
            .unwrap();
        assert_eq!(merged.subject, "Hello");
        assert_eq!(merged.text, None);
        assert_eq!(merged.name, "Welcome");
        assert_eq!(merged.reply_to.as_deref(), Some("r@acme.test"));
        assert_eq!(merge_template(&current, json!({})).unwrap(), None);
        let e = merge_template(&current, json!({"name": null})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
    }

    #[test]
    fn samples_keep_types_and_name_bad_values() {
        let s = sample(
            json!({"first_name": "Jane", "posts": 5, "ratio": 0.5, "pro": true,
                              "tags": ["a"], "custom_fields": {"plan": "pro"}}),
        )
        .unwrap();
        assert_eq!(s.tags, ["a"]);
        assert_eq!(s.fields["posts"].kind, Some(Kind::IntValue(5)));
        assert_eq!(s.fields["plan"].kind, Some(Kind::StringValue("pro".into())));
        for (body, field) in [
            (json!({"plan": {"a": 1}}), "sample.plan"),
            (json!({"tags": "pro"}), "sample.tags"),
            (json!({"tags": [1]}), "sample.tags[0]"),
            (json!({"first_name": 3}), "sample.first_name"),
            (
                json!({"custom_fields": {"x": [1]}}),
                "sample.custom_fields.x",
            ),
            (json!({"unsubscribe_url": "x"}), "sample.unsubscribe_url"),
        ] {
            assert_eq!(sample(body).unwrap_err().field.as_deref(), Some(field));
        }
        assert_eq!(
            sample(json!([])).unwrap_err().field.as_deref(),
            Some("sample")
        );
    }

    #[test]
    fn a_sample_becomes_a_contact_snapshot() {
        let c = sample(
            json!({"first_name": "Jane", "email": "x@y.test", "plan": "pro",
                              "created_at": "2026-01-02T03:04:05Z", "tags": ["pro"]}),
        )
        .unwrap()
        .into_contact()
        .unwrap();
        assert_eq!(c.first_name.as_deref(), Some("Jane"));
        assert_eq!(c.email, "", "the caller sets the address");
        assert_eq!(c.tags, ["pro"]);
        assert!(c.custom_fields.contains_key("plan"));
        assert!(!c.custom_fields.contains_key("email"));
        assert!(c.created_at.is_some());
        let e = sample(json!({"created_at": "yesterday"}))
            .unwrap()
            .into_contact()
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sample.created_at"));
    }

    #[test]
    fn preview_and_test_send_bodies() {
        assert_eq!(preview_body(json!({})).unwrap(), DataSource::Nothing);
        assert_eq!(
            preview_body(json!({"contact_id": "ct_1"})).unwrap(),
            DataSource::ContactId("ct_1".into())
        );
        assert!(preview_body(json!({"contact_id": "ct_1", "sample": {}})).is_err());
        assert_eq!(
            preview_body(json!({"contact": "ct_1"}))
                .unwrap_err()
                .field
                .as_deref(),
            Some("contact")
        );
        assert_eq!(
            test_send_body(json!({})).unwrap_err().field.as_deref(),
            Some("to")
        );
        let t = test_send_body(json!({"to": " me@acme.test ", "sample": {"a": 1}})).unwrap();
        assert_eq!(t.to, "me@acme.test");
        assert!(matches!(t.data, DataSource::Sample(_)));
    }

    #[test]
    fn suppression_bodies() {
        let s = suppression_body(json!({"email": "a@b.test"})).unwrap();
        assert_eq!(s.reason, pb::SuppressionReason::Manual);
        let s = suppression_body(json!({"email": "a@b.test", "reason": "bounce", "detail": "550"}))
            .unwrap();
        assert_eq!(s.reason, pb::SuppressionReason::Bounce);
        assert_eq!(s.detail, "550");
        for (body, field) in [
            (json!({}), "email"),
            (json!({"email": "a@b.test", "reason": "asked"}), "reason"),
            (json!({"email": "a@b.test", "why": "x"}), "why"),
        ] {
            assert_eq!(
                suppression_body(body).unwrap_err().field.as_deref(),
                Some(field)
            );
        }
    }

    #[test]
    fn test_sends_are_marked_in_the_message_view() {
        let at = Some(meisa_proto::timestamp(chrono::DateTime::UNIX_EPOCH));
        let m = MessageView::try_from(pb::Message {
            id: "msg_1".into(),
            idempotency_key: format!("{TEST_SEND_KEY_PREFIX}abc"),
            status: pb::MessageStatus::Queued as i32,
            created_at: at,
            updated_at: at,
            ..Default::default()
        })
        .unwrap();
        assert!(m.source.test);
        assert_eq!(m.status, "queued");
        // A status the gateway does not know is the mailer's bug or a newer mailer: an error,
        // not "unknown".
        let unknown = pb::Message {
            status: 99,
            created_at: at,
            updated_at: at,
            ..Default::default()
        };
        assert!(MessageView::try_from(unknown).is_err());
        assert_eq!(m.reason, None);
        assert_eq!(m.template_id, None);
    }
}
