//! Reading DESIGN §3 JSON with the path of every error (`actions[1].sequence_id`), so that what a
//! caller sent and what the error names are the same thing.

use meisa_runtime::errors::ApiError;
use serde_json::{Map, Value};

/// A definition that cannot be saved: where in the JSON, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DefinitionError {
    pub path: String,
    pub message: String,
}

impl DefinitionError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl From<DefinitionError> for ApiError {
    fn from(e: DefinitionError) -> Self {
        ApiError::field(e.path, e.message)
    }
}

impl From<meisa_conditions::ConditionError> for DefinitionError {
    fn from(e: meisa_conditions::ConditionError) -> Self {
        Self::new(e.path, e.message)
    }
}

pub type Result<T> = std::result::Result<T, DefinitionError>;

/// A definition as it arrives over gRPC: its DESIGN §3 JSON text. Text that is not JSON at all
/// is an error at `definition` (the gateway has already refused malformed HTTP bodies).
pub fn document(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        DefinitionError::new(
            "definition",
            format!(
                "is not valid JSON (line {}, column {}); send the DESIGN §3 JSON object",
                e.line(),
                e.column()
            ),
        )
    })
}

/// `trigger` + `tag` → `trigger.tag`; an empty root gives `tag`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being read, with its path.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    pub path: String,
}

impl<'a> Obj<'a> {
    /// `what` says what was expected, for the message ("a trigger").
    pub fn new(v: &'a Value, path: &str, what: &str) -> Result<Self> {
        match v {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_string(),
            }),
            other => Err(DefinitionError::new(
                path,
                format!("expected {what} (an object), got {}", describe(other)),
            )),
        }
    }

    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `key`; JSON `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The raw value, `null` included (where `null` means something, e.g. trigger `from`).
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// Refuses keys outside `allowed`, naming the first one, so that typos surface at save time.
    /// `context` completes "… takes only …" (e.g. "an add_tag action").
    pub fn only(&self, allowed: &[&str], context: &str) -> Result<()> {
        if let Some(k) = self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(DefinitionError::new(
                self.at(k),
                format!(
                    "unknown key {k:?} in {context}; it takes only {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(())
    }

    pub fn str_opt(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(DefinitionError::new(
                self.at(key),
                format!("expected a string, got {}", describe(other)),
            )),
        }
    }

    /// A required, non-blank string.
    pub fn str_req(&self, key: &str, hint: &str) -> Result<&'a str> {
        match self.str_opt(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(DefinitionError::new(
                self.at(key),
                format!("cannot be empty; {hint}"),
            )),
            None => Err(DefinitionError::new(
                self.at(key),
                format!("is required; {hint}"),
            )),
        }
    }

    pub fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(DefinitionError::new(
                self.at(key),
                format!("expected true or false, got {}", describe(other)),
            )),
        }
    }

    pub fn array_opt(&self, key: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(DefinitionError::new(
                self.at(key),
                format!("expected a list, got {}", describe(other)),
            )),
        }
    }
}

/// A display name: trimmed, non-empty, at most 200 characters.
pub fn name(obj: &Obj<'_>) -> Result<String> {
    let n = obj
        .str_req("name", "give it a name the dashboard can show")?
        .trim();
    if n.chars().count() > 200 {
        return Err(DefinitionError::new(
            obj.at("name"),
            "at most 200 characters",
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(DefinitionError::new(
            obj.at("name"),
            "cannot contain control characters",
        ));
    }
    Ok(n.to_string())
}

/// An id of the form `{prefix}` + 32 lower-case hex digits, as this service and the mailer issue
/// them. Checked here so a typo is reported against its field before any lookup.
pub fn prefixed_id(v: &str, prefix: &str, path: &str, kind: &str) -> Result<String> {
    let ok = v
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        let shown: String = v.chars().take(60).collect();
        return Err(DefinitionError::new(
            path,
            format!("{shown:?} is not a {kind} id; use the id the API returned ({prefix}…)"),
        ));
    }
    Ok(v.to_string())
}
