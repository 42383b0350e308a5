//! The condition builder shared by automations (`conditions`) and sequences (`exit_when`): rows
//! of field, operator and value joined by "all" or "any", as a person builds them in a form, and
//! the DESIGN §3 JSON they stand for. The JSON is judged by automations when it is saved (its
//! errors name `conditions.all[2].value`, which [`Conditions::row_of`] maps back to the row); the
//! gateway only turns form text into JSON values, typed by the field's type where it is known.
//!
//! Conditions built through the API can nest (`all` inside `any`); the builder shows one level.
//! A deeper tree is kept and shown as its JSON, with a note, rather than flattened wrongly.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The operators, in the words the builder shows, in the order it lists them.
pub const OPS: &[(&str, &str)] = &[
    ("eq", "is"),
    ("ne", "is not"),
    ("gt", "is more than"),
    ("gte", "is at least"),
    ("lt", "is less than"),
    ("lte", "is at most"),
    ("contains", "contains"),
    ("in", "is one of (comma-separated)"),
    ("exists", "is set"),
    ("not_exists", "is not set"),
    ("before", "is before the date"),
    ("after", "is after the date"),
    ("older_than", "is longer ago than"),
    ("within", "is within the last"),
    ("has_tag", "has the tag"),
    ("lacks_tag", "does not have the tag"),
];

/// The words for an operator ("is at least" for `gte`).
pub fn op_words(op: &str) -> &str {
    OPS.iter().find(|(k, _)| *k == op).map_or(op, |(_, w)| w)
}

/// Operators that take no value.
fn valueless(op: &str) -> bool {
    matches!(op, "exists" | "not_exists")
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub field: String,
    pub op: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conditions {
    /// "all" or "any".
    pub join: String,
    pub rows: Vec<Row>,
    /// A tree the rows cannot show (nested groups), kept as it was.
    pub nested: Option<Value>,
}

/// What the workspace knows of each field's type ("string", "number", "boolean", "date").
pub type FieldTypes = BTreeMap<String, String>;

impl Conditions {
    /// The rows of a saved condition tree (`null` or absent: none).
    pub fn from_json(tree: Option<&Value>) -> Self {
        let Some(Value::Object(obj)) = tree else {
            return Self {
                join: "all".into(),
                ..Self::default()
            };
        };
        let (join, items) = match (obj.get("all"), obj.get("any")) {
            (Some(Value::Array(items)), None) => ("all", items),
            (None, Some(Value::Array(items))) => ("any", items),
            _ => return Self::nested(tree),
        };
        let mut rows = Vec::new();
        for item in items {
            let Some(leaf) = item.as_object().filter(|o| o.contains_key("op")) else {
                return Self::nested(tree);
            };
            let text = |k: &str| {
                leaf.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            rows.push(Row {
                field: text("field"),
                op: text("op"),
                value: match leaf.get("value") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", "),
                    Some(other) => other.to_string(),
                },
            });
        }
        Self {
            join: join.into(),
            rows,
            nested: None,
        }
    }

    fn nested(tree: Option<&Value>) -> Self {
        Self {
            join: "all".into(),
            rows: Vec::new(),
            nested: tree.cloned(),
        }
    }

    /// The rows a form sent: one field, operator and value per row, blank rows dropped.
    pub fn from_form(join: &str, fields: &[String], ops: &[String], values: &[String]) -> Self {
        let rows = fields
            .iter()
            .enumerate()
            .map(|(i, field)| Row {
                field: field.trim().to_string(),
                op: ops.get(i).cloned().unwrap_or_default(),
                value: values
                    .get(i)
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default(),
            })
            .filter(|r| !(r.field.is_empty() && r.value.is_empty() && !r.op.starts_with("has")))
            .collect();
        Self {
            join: if join == "any" { "any" } else { "all" }.into(),
            rows,
            nested: None,
        }
    }

    /// The DESIGN §3 tree; `None` when there are no rows (no conditions).
    pub fn to_json(&self, types: &FieldTypes) -> Option<Value> {
        if let Some(tree) = &self.nested {
            return Some(tree.clone());
        }
        if self.rows.is_empty() {
            return None;
        }
        let leaves: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut leaf = Map::new();
                if !matches!(r.op.as_str(), "has_tag" | "lacks_tag") {
                    leaf.insert("field".into(), json!(r.field));
                }
                leaf.insert("op".into(), json!(r.op));
                if !valueless(&r.op) {
                    leaf.insert(
                        "value".into(),
                        typed_value(&r.op, &r.value, types.get(&r.field)),
                    );
                }
                Value::Object(leaf)
            })
            .collect();
        Some(json!({ self.join.clone(): leaves }))
    }

    /// The row an error path such as `conditions.all[2].value` points at, under `root`.
    pub fn row_of(&self, root: &str, path: &str) -> Option<usize> {
        let rest = path.strip_prefix(root)?.strip_prefix('.')?;
        let rest = rest.strip_prefix(self.join.as_str())?.strip_prefix('[')?;
        rest.split(']').next()?.parse().ok()
    }
}

/// A value typed as the field's type says; for a field not seen yet, what the text looks like
/// (`5` a number, `true` a boolean, anything else text). Durations, dates and tags stay text.
pub fn typed_value(op: &str, text: &str, field_type: Option<&String>) -> Value {
    if matches!(
        op,
        "older_than" | "within" | "has_tag" | "lacks_tag" | "before" | "after" | "contains"
    ) {
        return json!(text);
    }
    if op == "in" {
        return Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| scalar(s, field_type))
                .collect(),
        );
    }
    scalar(text, field_type)
}

fn scalar(text: &str, field_type: Option<&String>) -> Value {
    let as_number = || {
        text.parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| text.parse::<f64>().ok().map(Value::from))
    };
    let as_bool = || match text {
        "true" | "yes" => Some(Value::Bool(true)),
        "false" | "no" => Some(Value::Bool(false)),
        _ => None,
    };
    match field_type.map(String::as_str) {
        Some("string") | Some("date") => json!(text),
        Some("number") => as_number().unwrap_or_else(|| json!(text)),
        Some("boolean") => as_bool().unwrap_or_else(|| json!(text)),
        _ => as_number().or_else(as_bool).unwrap_or_else(|| json!(text)),
    }
}

/// Every field a condition can name and its type: the built-ins (`meisa_model::BuiltIn`), then
/// the workspace's custom fields as contacts has seen them. `tags` has no scalar type.
pub fn field_types(custom: impl IntoIterator<Item = (String, String)>) -> FieldTypes {
    meisa_model::BuiltIn::ALL
        .into_iter()
        .map(|b| {
            let kind = b.field_type().map_or("tags", |t| t.as_str());
            (b.name().to_string(), kind.to_string())
        })
        .chain(custom)
        .collect()
}

/// The workspace's fields and their types, asked of contacts.
pub async fn workspace_fields(
    state: &crate::state::AppState,
    workspace_id: &str,
) -> Result<FieldTypes, crate::error::AppError> {
    let fields = state
        .contacts()
        .list_fields(meisa_proto::contacts::ListFieldsRequest {
            workspace_id: workspace_id.into(),
        })
        .await
        .map_err(crate::error::AppError::contacts)?
        .into_inner()
        .fields;
    Ok(field_types(fields.into_iter().map(|f| {
        let kind = meisa_proto::field_type_of(f.r#type).map_or("unknown", |t| t.as_str());
        (f.name, kind.to_string())
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> FieldTypes {
        [("plan", "string"), ("posts", "number"), ("beta", "boolean")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn form_rows_become_typed_json_and_back() {
        let c = Conditions::from_form(
            "all",
            &strings(&["posts", "plan", "", "signup", "x"]),
            &strings(&["gte", "in", "has_tag", "within", "exists"]),
            &strings(&["5", "free, pro", "vip", "7d", "ignored"]),
        );
        let tree = c.to_json(&types()).unwrap();
        assert_eq!(
            tree,
            json!({"all": [
                {"field": "posts", "op": "gte", "value": 5},
                {"field": "plan", "op": "in", "value": ["free", "pro"]},
                {"op": "has_tag", "value": "vip"},
                {"field": "signup", "op": "within", "value": "7d"},
                {"field": "x", "op": "exists"},
            ]})
        );
        let back = Conditions::from_json(Some(&tree));
        assert_eq!(back.rows.len(), 5);
        assert_eq!(back.rows[1].value, "free, pro");
        assert_eq!(back.rows[0].value, "5");
        assert_eq!(back.to_json(&types()), Some(tree));
    }

    #[test]
    fn a_string_field_keeps_numbers_as_text_and_an_unknown_one_guesses() {
        assert_eq!(scalar("5", Some(&"string".to_string())), json!("5"));
        assert_eq!(scalar("5", None), json!(5));
        assert_eq!(scalar("2.5", None), json!(2.5));
        assert_eq!(scalar("true", None), json!(true));
        assert_eq!(scalar("yes", Some(&"boolean".to_string())), json!(true));
        assert_eq!(scalar("pro", None), json!("pro"));
    }

    #[test]
    fn no_rows_is_no_condition_and_blank_rows_are_dropped() {
        let c = Conditions::from_form(
            "any",
            &strings(&["", ""]),
            &strings(&["eq", "eq"]),
            &strings(&["", ""]),
        );
        assert_eq!(c.to_json(&types()), None);
        assert_eq!(Conditions::from_json(None).rows.len(), 0);
        assert_eq!(
            Conditions::from_json(Some(&Value::Null)).to_json(&types()),
            None
        );
    }

    #[test]
    fn nested_trees_are_kept_whole() {
        let tree = json!({"any": [{"all": [{"field": "a", "op": "exists"}]}]});
        let c = Conditions::from_json(Some(&tree));
        assert!(c.rows.is_empty());
        assert_eq!(c.to_json(&types()), Some(tree));
    }

    #[test]
    fn an_error_path_names_its_row() {
        let c = Conditions::from_form(
            "any",
            &strings(&["a", "b"]),
            &strings(&["eq", "eq"]),
            &strings(&["1", "2"]),
        );
        assert_eq!(c.row_of("conditions", "conditions.any[1].value"), Some(1));
        assert_eq!(c.row_of("exit_when", "exit_when.any[0].op"), Some(0));
        assert_eq!(c.row_of("conditions", "trigger.field"), None);
        assert_eq!(c.row_of("conditions", "conditions.all[0].op"), None);
    }
}
