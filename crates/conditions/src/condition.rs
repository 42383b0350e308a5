//! The condition tree, read from and written back to the JSON of DESIGN §3.
//!
//! Parsing checks shape only: that each op has the value it needs (a number or string for `gt`,
//! a duration for `within`, a list for `in`...). Whether the value fits the field's type is a
//! question for the workspace's field registry, answered by [`crate::validate`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::duration::Duration;
use crate::error::ConditionError;
use crate::field::Field;
use meisa_model::parse_date;

/// At most this many groups on the way from the root to any node, so evaluation's recursion
/// stays shallow whatever a config holds.
pub const MAX_DEPTH: usize = 16;
/// At most this many leaves in one tree; evaluation costs at most this many comparisons
/// (each `in` at most [`MAX_IN_VALUES`]).
pub const MAX_LEAVES: usize = 200;
/// At most this many groups in one tree, so empty groups cannot stand in for leaves to
/// make a huge tree.
pub const MAX_GROUPS: usize = 200;
/// At most this many values in one `in` list.
pub const MAX_IN_VALUES: usize = 1_000;

/// A condition: a group of conditions or one test on one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// True when every member is; `{"all": []}` is true.
    All(Vec<Condition>),
    /// True when some member is; `{"any": []}` is false.
    Any(Vec<Condition>),
    Leaf(Leaf),
}

/// `{"field": ..., "op": ..., "value": ...}`. The op carries its value, typed by what the op
/// needs, so a leaf cannot hold `within` with a number or `in` with a single value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub field: Field,
    pub op: Op,
}

/// An op and the value it compares with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Eq(Scalar),
    Ne(Scalar),
    Gt(Scalar),
    Gte(Scalar),
    Lt(Scalar),
    Lte(Scalar),
    /// Substring of a string field; on `tags`, membership (the same as `has_tag`).
    Contains(String),
    /// Equal to one of the values; on `tags`, has at least one of them.
    In(Vec<Scalar>),
    Exists,
    NotExists,
    Before(DateValue),
    After(DateValue),
    OlderThan(Duration),
    Within(Duration),
    HasTag(String),
    LacksTag(String),
}

meisa_model::spelled! {
    /// The name of an op, without its value.
    pub enum OpKind {
        Eq = "eq",
        Ne = "ne",
        Gt = "gt",
        Gte = "gte",
        Lt = "lt",
        Lte = "lte",
        Contains = "contains",
        In = "in",
        Exists = "exists",
        NotExists = "not_exists",
        Before = "before",
        After = "after",
        OlderThan = "older_than",
        Within = "within",
        HasTag = "has_tag",
        LacksTag = "lacks_tag",
    }
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Self::Eq(_) => OpKind::Eq,
            Self::Ne(_) => OpKind::Ne,
            Self::Gt(_) => OpKind::Gt,
            Self::Gte(_) => OpKind::Gte,
            Self::Lt(_) => OpKind::Lt,
            Self::Lte(_) => OpKind::Lte,
            Self::Contains(_) => OpKind::Contains,
            Self::In(_) => OpKind::In,
            Self::Exists => OpKind::Exists,
            Self::NotExists => OpKind::NotExists,
            Self::Before(_) => OpKind::Before,
            Self::After(_) => OpKind::After,
            Self::OlderThan(_) => OpKind::OlderThan,
            Self::Within(_) => OpKind::Within,
            Self::HasTag(_) => OpKind::HasTag,
            Self::LacksTag(_) => OpKind::LacksTag,
        }
    }

    /// The JSON `value` of the leaf; `None` for `exists` and `not_exists`, which take none.
    pub fn value_json(&self) -> Option<Value> {
        Some(match self {
            Self::Eq(v) | Self::Ne(v) | Self::Gt(v) | Self::Gte(v) | Self::Lt(v) | Self::Lte(v) => {
                v.to_json()
            }
            Self::Contains(s) | Self::HasTag(s) | Self::LacksTag(s) => Value::String(s.clone()),
            Self::In(vs) => Value::Array(vs.iter().map(Scalar::to_json).collect()),
            Self::Exists | Self::NotExists => return None,
            Self::Before(d) | Self::After(d) => Value::String(d.text.clone()),
            Self::OlderThan(d) | Self::Within(d) => Value::String(d.to_string()),
        })
    }
}

/// A JSON scalar a comparison is made with. Numbers keep their JSON form so that `5` is
/// returned as `5`, not `5.0`; they compare as f64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    String(String),
    Number(Number),
    Bool(bool),
}

impl Scalar {
    pub fn to_json(&self) -> Value {
        match self {
            Self::String(s) => Value::String(s.clone()),
            Self::Number(n) => Value::Number(n.clone()),
            Self::Bool(b) => Value::Bool(*b),
        }
    }

    fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(Self::String(s.clone())),
            Value::Number(n) => Some(Self::Number(n.clone())),
            Value::Bool(b) => Some(Self::Bool(*b)),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// A fixed date a leaf compares with: the text as written (returned unchanged) and the instant
/// it means (`YYYY-MM-DD` is midnight UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateValue {
    text: String,
    at: DateTime<Utc>,
}

impl DateValue {
    /// RFC 3339 or `YYYY-MM-DD`; `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        Some(Self {
            text: text.to_string(),
            at: parse_date(text)?,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }
}

impl Condition {
    /// Reads a condition from JSON. `root_path` is where it sits in the request (`"conditions"`,
    /// `"exit_when"`); every error path starts with it.
    pub fn parse(json: &Value, root_path: &str) -> Result<Self, ConditionError> {
        let mut budget = Budget::default();
        parse_node(json, root_path, 0, &mut budget)
    }

    /// The JSON form, as [`Condition::parse`] reads it. Custom fields are written by their bare
    /// name and `exists`/`not_exists` without a value; everything else is as it was written.
    pub fn to_json(&self) -> Value {
        match self {
            Self::All(cs) => group_json("all", cs),
            Self::Any(cs) => group_json("any", cs),
            Self::Leaf(leaf) => leaf.to_json(),
        }
    }

    /// Every leaf, depth first, in the order written.
    pub fn leaves(&self) -> Vec<&Leaf> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    /// The fields the condition reads, once each, in the order written. A change that touches
    /// none of them cannot change the condition's value (time aside: see
    /// [`crate::is_time_dependent`]).
    pub fn fields(&self) -> Vec<&Field> {
        let mut out: Vec<&Field> = Vec::new();
        for leaf in self.leaves() {
            if !out.contains(&&leaf.field) {
                out.push(&leaf.field);
            }
        }
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Leaf>) {
        match self {
            Self::All(cs) | Self::Any(cs) => cs.iter().for_each(|c| c.collect_leaves(out)),
            Self::Leaf(leaf) => out.push(leaf),
        }
    }
}

impl Leaf {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        // has_tag and lacks_tag always test the tag set, whatever a hand-built leaf holds.
        let field = match self.op {
            Op::HasTag(_) | Op::LacksTag(_) => Field::TAGS.name().to_string(),
            _ => self.field.name().to_string(),
        };
        m.insert("field".into(), Value::String(field));
        m.insert("op".into(), Value::String(self.op.kind().as_str().into()));
        if let Some(v) = self.op.value_json() {
            m.insert("value".into(), v);
        }
        Value::Object(m)
    }
}

fn group_json(key: &str, cs: &[Condition]) -> Value {
    let mut m = Map::new();
    m.insert(
        key.into(),
        Value::Array(cs.iter().map(Condition::to_json).collect()),
    );
    Value::Object(m)
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl fmt::Display for Condition {
    /// Compact JSON, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[derive(Default)]
struct Budget {
    leaves: usize,
    groups: usize,
}

/// `conditions` + `all[1]` → `conditions.all[1]`; an empty root gives `all[1]`.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

const SHAPES: &str =
    r#"write {"all": [...]}, {"any": [...]} or a leaf {"field": "...", "op": "...", "value": ...}"#;

fn parse_node(
    json: &Value,
    path: &str,
    depth: usize,
    budget: &mut Budget,
) -> Result<Condition, ConditionError> {
    let Value::Object(obj) = json else {
        return Err(ConditionError::new(
            path,
            format!("expected a condition, got {}; {SHAPES}", describe(json)),
        ));
    };
    let group_key = match (obj.contains_key("all"), obj.contains_key("any")) {
        (true, true) => {
            return Err(ConditionError::new(
                path,
                "a group has all or any, not both; put one group inside the other",
            ));
        }
        (true, false) => Some("all"),
        (false, true) => Some("any"),
        (false, false) => None,
    };
    let Some(key) = group_key else {
        budget.leaves += 1;
        if budget.leaves > MAX_LEAVES {
            return Err(ConditionError::new(
                path,
                format!(
                    "a condition has at most {MAX_LEAVES} leaves; split it or use in with a list of values"
                ),
            ));
        }
        return parse_leaf(obj, path).map(Condition::Leaf);
    };

    if let Some(other) = obj.keys().find(|k| k.as_str() != key) {
        return Err(ConditionError::new(
            join(path, other),
            format!(
                "unknown key {other:?} in a group; a group is {{\"{key}\": [...]}} and nothing else"
            ),
        ));
    }
    // Depth counts groups: the root group is 1.
    if depth + 1 > MAX_DEPTH {
        return Err(ConditionError::new(
            path,
            format!("groups nest at most {MAX_DEPTH} deep; flatten the condition"),
        ));
    }
    budget.groups += 1;
    if budget.groups > MAX_GROUPS {
        return Err(ConditionError::new(
            path,
            format!("a condition has at most {MAX_GROUPS} groups; flatten it"),
        ));
    }
    let list_path = join(path, key);
    let Some(items) = obj.get(key).and_then(Value::as_array) else {
        let got = obj.get(key).map_or("nothing", describe);
        return Err(ConditionError::new(
            list_path,
            format!("{key} holds a list of conditions, got {got}"),
        ));
    };
    let mut children = Vec::with_capacity(items.len().min(MAX_LEAVES));
    for (i, item) in items.iter().enumerate() {
        children.push(parse_node(
            item,
            &format!("{list_path}[{i}]"),
            depth + 1,
            budget,
        )?);
    }
    Ok(if key == "all" {
        Condition::All(children)
    } else {
        Condition::Any(children)
    })
}

fn op_list() -> String {
    OpKind::ALL.map(OpKind::as_str).join(", ")
}

fn parse_leaf(obj: &Map<String, Value>, path: &str) -> Result<Leaf, ConditionError> {
    let unknown: Vec<&String> = obj
        .keys()
        .filter(|k| !matches!(k.as_str(), "field" | "op" | "value"))
        .collect();
    if let Some(first) = unknown.first() {
        let names = unknown
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let noun = if unknown.len() == 1 { "key" } else { "keys" };
        return Err(ConditionError::new(
            join(path, first),
            format!("unknown {noun} {names}; a leaf has only field, op and value"),
        ));
    }
    let op_path = join(path, "op");
    let op_name = match obj.get("op") {
        None => {
            let message = if obj.is_empty() {
                format!("empty condition; {SHAPES}")
            } else {
                format!("missing op; use one of {}", op_list())
            };
            return Err(ConditionError::new(
                if obj.is_empty() {
                    path.to_string()
                } else {
                    op_path
                },
                message,
            ));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(ConditionError::new(
                op_path,
                format!(
                    "op is a string, got {}; use one of {}",
                    describe(other),
                    op_list()
                ),
            ));
        }
    };
    let Some(kind) = OpKind::parse(op_name) else {
        let hint = closest_op(op_name)
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        return Err(ConditionError::new(
            op_path,
            format!("unknown op {op_name:?}{hint}; use one of {}", op_list()),
        ));
    };
    let field = parse_field(obj.get("field"), kind, &join(path, "field"))?;
    let op = parse_value(kind, obj.get("value"), &join(path, "value"))?;
    Ok(Leaf { field, op })
}

fn parse_field(v: Option<&Value>, kind: OpKind, path: &str) -> Result<Field, ConditionError> {
    let tag_op = matches!(kind, OpKind::HasTag | OpKind::LacksTag);
    let name = match v {
        // has_tag and lacks_tag can only mean the tag set, so the field may be left out.
        None if tag_op => return Ok(Field::TAGS),
        None => {
            return Err(ConditionError::new(
                path,
                "missing field; name a built-in field (email, first_name, last_name, external_id, subscribed, tags, created_at, updated_at) or a custom field",
            ));
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ConditionError::new(
                path,
                format!("field is a field name (a string), got {}", describe(other)),
            ));
        }
    };
    let field = Field::parse(name).map_err(|m| ConditionError::new(path, m))?;
    if tag_op && field != Field::TAGS {
        return Err(ConditionError::new(
            path,
            format!(
                "{kind} tests the contact's tags; write \"field\": \"tags\" or leave field out"
            ),
        ));
    }
    Ok(field)
}

fn parse_value(kind: OpKind, v: Option<&Value>, path: &str) -> Result<Op, ConditionError> {
    let err = |m: String| Err(ConditionError::new(path, m));
    // Ops without a value: exists and not_exists. `"value": null` is what a form sends for an
    // empty input, so it is accepted; any other value means the author expected it to be used.
    if matches!(kind, OpKind::Exists | OpKind::NotExists) {
        return match v {
            None | Some(Value::Null) => Ok(if kind == OpKind::Exists {
                Op::Exists
            } else {
                Op::NotExists
            }),
            Some(_) => err(format!(
                "{kind} takes no value; remove \"value\" (to compare with a value use eq)"
            )),
        };
    }
    let Some(v) = v else {
        return err(format!("missing value; {kind} needs {}", needs(kind)));
    };
    if v.is_null() {
        return err(format!(
            "value is null; {kind} needs {}. To test whether a field is set use exists or not_exists",
            needs(kind)
        ));
    }
    match kind {
        OpKind::Eq | OpKind::Ne | OpKind::Gt | OpKind::Gte | OpKind::Lt | OpKind::Lte => {
            let Some(s) = Scalar::from_json(v) else {
                let hint = if v.is_array() && kind == OpKind::Eq {
                    "; to match any of several values use in"
                } else {
                    ""
                };
                return err(format!(
                    "{kind} needs {}, got {}{hint}",
                    needs(kind),
                    describe(v)
                ));
            };
            if matches!(s, Scalar::Bool(_)) && !matches!(kind, OpKind::Eq | OpKind::Ne) {
                return err(format!(
                    "{kind} orders numbers, dates and strings; booleans only compare with eq or ne"
                ));
            }
            Ok(match kind {
                OpKind::Eq => Op::Eq(s),
                OpKind::Ne => Op::Ne(s),
                OpKind::Gt => Op::Gt(s),
                OpKind::Gte => Op::Gte(s),
                OpKind::Lt => Op::Lt(s),
                _ => Op::Lte(s),
            })
        }
        OpKind::Contains | OpKind::HasTag | OpKind::LacksTag => {
            let Some(s) = v.as_str() else {
                return err(format!("{kind} needs {}, got {}", needs(kind), describe(v)));
            };
            // An empty substring matches every string and no contact has an empty tag: either
            // way the leaf would not test anything.
            if s.is_empty() {
                return err(format!("value is empty; {kind} needs {}", needs(kind)));
            }
            Ok(match kind {
                OpKind::Contains => Op::Contains(s.to_string()),
                OpKind::HasTag => Op::HasTag(s.to_string()),
                _ => Op::LacksTag(s.to_string()),
            })
        }
        OpKind::In => {
            let Some(items) = v.as_array() else {
                return err(format!(
                    "in needs {}, got {}; to compare with one value use eq",
                    needs(kind),
                    describe(v)
                ));
            };
            // Nothing is in an empty list: the leaf could never be true.
            if items.is_empty() {
                return err("the list is empty; in needs at least one value".into());
            }
            if items.len() > MAX_IN_VALUES {
                return err(format!("in takes at most {MAX_IN_VALUES} values"));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match Scalar::from_json(item) {
                    Some(s) => out.push(s),
                    None => {
                        return Err(ConditionError::new(
                            format!("{path}[{i}]"),
                            format!(
                                "in lists strings, numbers or booleans, got {}",
                                describe(item)
                            ),
                        ));
                    }
                }
            }
            Ok(Op::In(out))
        }
        OpKind::Before | OpKind::After => {
            let date = v.as_str().and_then(DateValue::parse);
            let Some(date) = date else {
                let hint = if v.as_str().is_some_and(|s| Duration::parse(s).is_ok()) {
                    "; to compare with a time relative to now use older_than or within"
                } else {
                    ""
                };
                return err(format!(
                    "{kind} needs {}, got {}{hint}",
                    needs(kind),
                    shown(v)
                ));
            };
            Ok(if kind == OpKind::Before {
                Op::Before(date)
            } else {
                Op::After(date)
            })
        }
        OpKind::OlderThan | OpKind::Within => {
            let Some(s) = v.as_str() else {
                return err(format!("{kind} needs {}, got {}", needs(kind), describe(v)));
            };
            let d = Duration::parse(s).map_err(|e| {
                let hint = if parse_date(s).is_some() {
                    "; to compare with a fixed date use before or after"
                } else {
                    ""
                };
                ConditionError::new(path, format!("{e}{hint}"))
            })?;
            Ok(if kind == OpKind::OlderThan {
                Op::OlderThan(d)
            } else {
                Op::Within(d)
            })
        }
        // Handled before the match; kept exhaustive so a new op must choose its value here.
        OpKind::Exists | OpKind::NotExists => err(format!("{kind} takes no value")),
    }
}

/// A value as a message can show it: strings quoted (shortened), the rest by kind.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() <= 40 => format!("{s:?}"),
        Value::String(_) => "a string that is not a date".into(),
        other => describe(other).into(),
    }
}

fn needs(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Eq | OpKind::Ne => "a string, number, boolean or date",
        OpKind::Gt | OpKind::Gte | OpKind::Lt | OpKind::Lte => "a number, a date or a string",
        OpKind::Contains => "a non-empty string",
        OpKind::HasTag | OpKind::LacksTag => "a tag (a non-empty string)",
        OpKind::In => "a list of values, e.g. [\"free\", \"trial\"]",
        OpKind::Before | OpKind::After => {
            "a date: RFC 3339 (2026-11-20T10:00:00Z) or YYYY-MM-DD (2026-11-20)"
        }
        OpKind::OlderThan | OpKind::Within => {
            "a duration: an integer and a unit s, m, h or d (30s, 15m, 2h, 14d)"
        }
        OpKind::Exists | OpKind::NotExists => "no value",
    }
}

/// The op an unknown name most likely meant: within two edits, the nearest one.
fn closest_op(name: &str) -> Option<OpKind> {
    // Long inputs are not typos of a short op name; skipping them bounds the work.
    if name.len() > 32 {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    OpKind::ALL
        .into_iter()
        .map(|k| (edit_distance(&lower, k.as_str()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
