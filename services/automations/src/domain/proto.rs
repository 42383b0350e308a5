//! Definitions ↔ protobuf. A request is turned into the DESIGN §3 JSON it mirrors and read by the
//! one JSON parser, so a gRPC caller and the gateway's JSON caller get the same errors with the
//! same paths. Condition trees travel as JSON text.

use meisa_conditions::Condition;
use meisa_proto::{
    automations::{self as pb, ActionType, StepType, TriggerType},
    common::{self, value::Kind},
};
use serde_json::{Map, Value, json};

use super::{
    action::Action,
    automation::AutomationDef,
    event::json_of,
    json::{DefinitionError, Result},
    sequence::SequenceDef,
    step::Step,
    trigger::{Trigger, ValueMatch},
};

impl AutomationDef {
    pub fn from_proto(input: &pb::AutomationInput) -> Result<Self> {
        Self::parse(&automation_json(input)?)
    }
}

impl SequenceDef {
    pub fn from_proto(input: &pb::SequenceInput) -> Result<Self> {
        Self::parse(&sequence_json(input)?)
    }
}

fn condition_text(text: &str, path: &str) -> Result<Option<Value>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|e| {
        DefinitionError::new(
            path,
            format!(
                "is not valid JSON (line {}, column {}): write a condition such as {{\"all\": [{{\"field\": \"plan\", \"op\": \"eq\", \"value\": \"pro\"}}]}}",
                e.line(),
                e.column()
            ),
        )
    })
}

fn enum_name(value: i32, name: Option<&str>, prefix: &str, path: &str) -> Result<Option<String>> {
    match name {
        _ if value == 0 => Ok(None),
        Some(n) => Ok(Some(
            n.strip_prefix(prefix).unwrap_or(n).to_ascii_lowercase(),
        )),
        None => Err(DefinitionError::new(
            path,
            format!("unknown enum value {value}"),
        )),
    }
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        m.insert(key.into(), json!(v));
    }
}

fn value_json(v: &common::Value) -> Value {
    json_of(v).unwrap_or(Value::Null)
}

fn trigger_json(t: &pb::Trigger) -> Result<Value> {
    let mut m = Map::new();
    let ty = TriggerType::try_from(t.r#type).ok();
    if let Some(n) = enum_name(
        t.r#type,
        ty.map(|t| t.as_str_name()),
        "TRIGGER_TYPE_",
        "trigger.type",
    )? {
        m.insert("type".into(), json!(n));
    }
    put_str(&mut m, "field", &t.field);
    if let Some(v) = &t.from {
        m.insert("from".into(), value_json(v));
    }
    if let Some(v) = &t.to {
        m.insert("to".into(), value_json(v));
    }
    put_str(&mut m, "tag", &t.tag);
    Ok(Value::Object(m))
}

fn automation_json(a: &pb::AutomationInput) -> Result<Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(a.name));
    m.insert("enabled".into(), json!(a.enabled));
    if let Some(t) = &a.trigger {
        m.insert("trigger".into(), trigger_json(t)?);
    }
    if let Some(c) = condition_text(&a.conditions, "conditions")? {
        m.insert("conditions".into(), c);
    }
    let mut actions = Vec::with_capacity(a.actions.len());
    for (i, act) in a.actions.iter().enumerate() {
        let mut am = Map::new();
        let ty = ActionType::try_from(act.r#type).ok();
        if let Some(n) = enum_name(
            act.r#type,
            ty.map(|t| t.as_str_name()),
            "ACTION_TYPE_",
            &format!("actions[{i}].type"),
        )? {
            am.insert("type".into(), json!(n));
        }
        put_str(&mut am, "tag", &act.tag);
        put_str(&mut am, "sequence_id", &act.sequence_id);
        put_str(&mut am, "template_id", &act.template_id);
        actions.push(Value::Object(am));
    }
    m.insert("actions".into(), Value::Array(actions));
    put_str(&mut m, "reentry", &a.reentry);
    Ok(Value::Object(m))
}

fn sequence_json(s: &pb::SequenceInput) -> Result<Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(s.name));
    let mut steps = Vec::with_capacity(s.steps.len());
    for (i, st) in s.steps.iter().enumerate() {
        let mut sm = Map::new();
        let ty = StepType::try_from(st.r#type).ok();
        if let Some(n) = enum_name(
            st.r#type,
            ty.map(|t| t.as_str_name()),
            "STEP_TYPE_",
            &format!("steps[{i}].type"),
        )? {
            sm.insert("type".into(), json!(n));
        }
        put_str(&mut sm, "template_id", &st.template_id);
        put_str(&mut sm, "duration", &st.duration);
        steps.push(Value::Object(sm));
    }
    m.insert("steps".into(), Value::Array(steps));
    if let Some(c) = condition_text(&s.exit_when, "exit_when")? {
        m.insert("exit_when".into(), c);
    }
    Ok(Value::Object(m))
}

// ------------------------------------------------------------------------- domain → proto

fn value_proto(v: &Value) -> common::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(true),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or_default()),
        },
        // Parsing accepts only scalars and null here.
        Value::Array(_) | Value::Object(_) => Kind::NullValue(true),
    };
    common::Value { kind: Some(kind) }
}

fn match_proto(m: &ValueMatch) -> common::Value {
    match m {
        ValueMatch::Absent => value_proto(&Value::Null),
        ValueMatch::Is(v) => value_proto(v),
    }
}

pub fn trigger_proto(t: &Trigger) -> pb::Trigger {
    match t {
        Trigger::ContactCreated => pb::Trigger {
            r#type: TriggerType::ContactCreated as i32,
            ..Default::default()
        },
        Trigger::ConditionMet => pb::Trigger {
            r#type: TriggerType::ConditionMet as i32,
            ..Default::default()
        },
        Trigger::TagAdded { tag } => pb::Trigger {
            r#type: TriggerType::TagAdded as i32,
            tag: tag.clone(),
            ..Default::default()
        },
        Trigger::ContactUpdated { field, from, to } => pb::Trigger {
            r#type: TriggerType::ContactUpdated as i32,
            field: field
                .as_ref()
                .map(|f| f.written.clone())
                .unwrap_or_default(),
            from: from.as_ref().map(match_proto),
            to: to.as_ref().map(match_proto),
            tag: String::new(),
        },
    }
}

pub fn action_proto(a: &Action) -> pb::Action {
    let mut out = pb::Action::default();
    match a {
        Action::AddTag { tag } => {
            out.r#type = ActionType::AddTag as i32;
            out.tag = tag.clone();
        }
        Action::RemoveTag { tag } => {
            out.r#type = ActionType::RemoveTag as i32;
            out.tag = tag.clone();
        }
        Action::Enroll { sequence_id } => {
            out.r#type = ActionType::Enroll as i32;
            out.sequence_id = sequence_id.clone();
        }
        Action::Exit { sequence_id } => {
            out.r#type = ActionType::Exit as i32;
            out.sequence_id = sequence_id.clone();
        }
        Action::SendEmail { template_id } => {
            out.r#type = ActionType::SendEmail as i32;
            out.template_id = template_id.clone();
        }
    }
    out
}

pub fn step_proto(s: &Step) -> pb::Step {
    match s {
        Step::Email { template_id } => pb::Step {
            r#type: StepType::Email as i32,
            template_id: template_id.clone(),
            duration: String::new(),
        },
        Step::Wait(d) => pb::Step {
            r#type: StepType::Wait as i32,
            template_id: String::new(),
            duration: d.to_string(),
        },
    }
}

pub fn condition_text_of(c: &Option<Condition>) -> String {
    c.as_ref()
        .map(|c| c.to_json().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_as_the_json_it_mirrors() {
        let input = pb::AutomationInput {
            name: "Upgrade".into(),
            enabled: true,
            trigger: Some(pb::Trigger {
                r#type: TriggerType::ContactUpdated as i32,
                field: "plan".into(),
                from: Some(value_proto(&json!("free"))),
                to: Some(value_proto(&json!("pro"))),
                tag: String::new(),
            }),
            conditions: r#"{"all": [{"field": "posts_generated", "op": "gte", "value": 5}]}"#
                .into(),
            actions: vec![pb::Action {
                r#type: ActionType::AddTag as i32,
                tag: "pro".into(),
                ..Default::default()
            }],
            reentry: String::new(),
        };
        let def = AutomationDef::from_proto(&input).unwrap();
        assert_eq!(
            def.to_json()["trigger"],
            json!({"type": "contact_updated", "field": "plan", "from": "free", "to": "pro"})
        );
        let back = trigger_proto(&def.trigger);
        assert_eq!(back, input.trigger.clone().unwrap());

        let mut bad = input.clone();
        bad.conditions = r#"{"all": [{"field": "plan", "op": "eq", "value": }]}"#.into();
        let e = AutomationDef::from_proto(&bad).unwrap_err();
        assert_eq!(e.path, "conditions");
        let mut bad = input.clone();
        bad.actions[0].r#type = 0;
        let e = AutomationDef::from_proto(&bad).unwrap_err();
        assert_eq!(e.path, "actions[0].type");
        let mut bad = input;
        bad.trigger = None;
        assert_eq!(AutomationDef::from_proto(&bad).unwrap_err().path, "trigger");
    }
}
