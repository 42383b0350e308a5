use meisa_conditions::{
    Condition, Duration, Field, MAX_DEPTH, MAX_GROUPS, MAX_IN_VALUES, MAX_LEAVES, Op, OpKind,
    Scalar,
};
use serde_json::{Value, json};

use crate::{cond, parse_err};

#[test]
fn design_examples_parse_and_serialize_back_unchanged() {
    let automation = json!({"all": [{"field": "posts_generated", "op": "gte", "value": 5}]});
    let c = cond(automation.clone());
    assert_eq!(
        c,
        Condition::All(vec![Condition::Leaf(meisa_conditions::Leaf {
            field: Field::Custom("posts_generated".into()),
            op: Op::Gte(Scalar::Number(5.into())),
        })])
    );
    assert_eq!(c.to_json(), automation);

    let exit_when = json!({"all": [{"field": "onboarding_completed", "op": "eq", "value": true}]});
    assert_eq!(
        Condition::parse(&exit_when, "exit_when").unwrap().to_json(),
        exit_when
    );
}

#[test]
fn nested_groups_round_trip_with_values_as_written() {
    let j = json!({"any": [
        {"all": [
            {"field": "plan", "op": "in", "value": ["free", "trial", 3, true]},
            {"field": "signup_date", "op": "before", "value": "2026-11-20"},
            {"field": "last_seen", "op": "after", "value": "2026-11-20T10:00:00+02:00"},
            {"field": "score", "op": "lt", "value": 5.5},
            {"field": "score", "op": "gt", "value": 5}
        ]},
        {"field": "last_seen", "op": "older_than", "value": "14d"},
        {"field": "last_seen", "op": "within", "value": "36h"},
        {"field": "tags", "op": "has_tag", "value": "pro"},
        {"field": "tags", "op": "lacks_tag", "value": "churned"},
        {"field": "email", "op": "contains", "value": "@acme.test"},
        {"field": "first_name", "op": "exists"},
        {"field": "last_name", "op": "not_exists"},
        {"field": "subscribed", "op": "ne", "value": false},
        {"field": "name", "op": "gte", "value": "M"},
        {"field": "name", "op": "lte", "value": "N"},
        {"any": []},
        {"all": []}
    ]});
    let c = cond(j.clone());
    assert_eq!(c.to_json(), j);
    assert_eq!(serde_json::to_value(&c).unwrap(), j);
    // Values keep their spelling: 5 stays 5, the date and duration keep their text.
    let text = c.to_string();
    assert!(text.contains(r#""value":5}"#), "{text}");
    assert!(text.contains("2026-11-20T10:00:00+02:00"));
    assert!(text.contains(r#""14d""#));
}

#[test]
fn a_leaf_can_be_the_root() {
    let c = cond(json!({"field": "plan", "op": "eq", "value": "pro"}));
    assert!(matches!(c, Condition::Leaf(_)));
}

#[test]
fn custom_fields_prefix_is_normalised_to_the_bare_name() {
    let c = cond(json!({"field": "custom_fields.plan", "op": "eq", "value": "pro"}));
    assert_eq!(
        c.to_json(),
        json!({"field": "plan", "op": "eq", "value": "pro"})
    );
}

#[test]
fn every_op_name_parses() {
    for kind in OpKind::ALL {
        let (field, value) = match kind {
            OpKind::Exists | OpKind::NotExists => ("plan", Value::Null),
            OpKind::In => ("plan", json!(["a"])),
            OpKind::Before | OpKind::After => ("d", json!("2026-01-01")),
            OpKind::OlderThan | OpKind::Within => ("d", json!("1d")),
            OpKind::HasTag | OpKind::LacksTag => ("tags", json!("t")),
            _ => ("plan", json!("a")),
        };
        let c = cond(json!({"field": field, "op": kind.as_str(), "value": value}));
        let Condition::Leaf(l) = c else {
            panic!("leaf")
        };
        assert_eq!(l.op.kind(), kind);
    }
}

#[test]
fn error_paths_point_into_nested_groups() {
    let e = parse_err(json!({"any": [
        {"field": "a", "op": "eq", "value": 1},
        {"field": "a", "op": "eq", "value": 1},
        {"all": [{"field": "a", "op": "gtee", "value": 1}]}
    ]}));
    assert_eq!(e.path, "conditions.any[2].all[0].op");
    assert!(e.message.starts_with(r#"unknown op "gtee" (did you mean gte?); use one of eq, ne, gt, gte, lt, lte, contains, in, exists, not_exists, before, after, older_than, within, has_tag, lacks_tag"#), "{}", e.message);
    assert_eq!(e.to_string(), format!("{}: {}", e.path, e.message));

    let e = parse_err(
        json!({"all": [{"field": "a", "op": "eq", "value": 1}, {"field": "a", "op": "eq", "value": [1]}]}),
    );
    assert_eq!(e.path, "conditions.all[1].value");
    assert!(e.message.contains("use in"), "{}", e.message);
}

#[test]
fn root_path_is_the_callers() {
    let e = Condition::parse(&json!({"all": [{"op": "eq", "value": 1}]}), "exit_when").unwrap_err();
    assert_eq!(e.path, "exit_when.all[0].field");
    let e = Condition::parse(&json!({"all": [{"op": "eq", "value": 1}]}), "").unwrap_err();
    assert_eq!(e.path, "all[0].field");
}

#[test]
fn unknown_op_without_a_near_name_lists_the_ops() {
    let e = parse_err(json!({"field": "a", "op": "matches", "value": "x"}));
    assert_eq!(e.path, "conditions.op");
    assert!(
        e.message
            .starts_with(r#"unknown op "matches"; use one of eq,"#),
        "{}",
        e.message
    );
    let e = parse_err(json!({"field": "a", "op": 3, "value": "x"}));
    assert!(e.message.contains("op is a string, got a number"));
    let e = parse_err(json!({"field": "a", "value": "x"}));
    assert_eq!(
        (
            e.path.as_str(),
            e.message.starts_with("missing op; use one of")
        ),
        ("conditions.op", true)
    );
}

#[test]
fn unknown_leaf_keys_are_named() {
    let e = parse_err(json!({"all": [{"field": "a", "op": "eq", "valu": 1, "comment": "x"}]}));
    assert_eq!(e.path, "conditions.all[0].valu");
    assert!(
        e.message.contains(r#"unknown keys "valu", "comment""#),
        "{}",
        e.message
    );
    assert!(e.message.contains("field, op and value"));
    let e = parse_err(json!({"field": "a", "op": "exists", "vaule": 1}));
    assert!(
        e.message.starts_with(r#"unknown key "vaule""#),
        "{}",
        e.message
    );
}

#[test]
fn malformed_groups() {
    let e = parse_err(json!({"all": [], "any": []}));
    assert_eq!(e.path, "conditions");
    assert!(e.message.contains("not both"));
    let e = parse_err(json!({"all": [], "note": "x"}));
    assert_eq!(e.path, "conditions.note");
    let e = parse_err(json!({"any": {"field": "a"}}));
    assert_eq!(e.path, "conditions.any");
    assert!(e.message.contains("list of conditions, got an object"));
    let e = parse_err(json!({"all": [1]}));
    assert_eq!(e.path, "conditions.all[0]");
    assert!(e.message.contains("expected a condition, got a number"));
    let e = parse_err(json!([]));
    assert_eq!(e.path, "conditions");
    let e = parse_err(json!({}));
    assert_eq!(e.path, "conditions");
    assert!(e.message.starts_with("empty condition"));
}

#[test]
fn fields_are_checked_for_shape() {
    let e = parse_err(json!({"op": "eq", "value": 1}));
    assert_eq!(e.path, "conditions.field");
    assert!(e.message.starts_with("missing field"));
    let e = parse_err(json!({"field": 3, "op": "eq", "value": 1}));
    assert!(e.message.contains("got a number"));
    let e = parse_err(json!({"field": "posts generated", "op": "eq", "value": 1}));
    assert_eq!(e.path, "conditions.field");
    let e = parse_err(json!({"field": "custom_fields.email", "op": "eq", "value": "a"}));
    assert!(e.message.contains(r#"write "email""#));
}

#[test]
fn values_are_checked_for_the_ops_shape() {
    let cases: &[(Value, &str)] = &[
        (json!({"field": "a", "op": "eq"}), "missing value; eq needs"),
        (
            json!({"field": "a", "op": "eq", "value": null}),
            "use exists or not_exists",
        ),
        (
            json!({"field": "a", "op": "eq", "value": {"x": 1}}),
            "got an object",
        ),
        (
            json!({"field": "a", "op": "gt", "value": true}),
            "booleans only compare with eq or ne",
        ),
        (
            json!({"field": "a", "op": "contains", "value": 1}),
            "needs a non-empty string",
        ),
        (
            json!({"field": "a", "op": "contains", "value": ""}),
            "value is empty",
        ),
        (
            json!({"field": "a", "op": "in", "value": "free"}),
            "to compare with one value use eq",
        ),
        (
            json!({"field": "a", "op": "in", "value": []}),
            "the list is empty",
        ),
        (
            json!({"field": "a", "op": "exists", "value": true}),
            "exists takes no value",
        ),
        (
            json!({"field": "a", "op": "not_exists", "value": 0}),
            "not_exists takes no value",
        ),
        (
            json!({"field": "a", "op": "before", "value": "soon"}),
            r#"got "soon""#,
        ),
        (
            json!({"field": "a", "op": "after", "value": "14d"}),
            "use older_than or within",
        ),
        (
            json!({"field": "a", "op": "after", "value": 20261120}),
            "got a number",
        ),
        (
            json!({"field": "a", "op": "older_than", "value": "2w"}),
            "not one of s, m, h, d",
        ),
        (
            json!({"field": "a", "op": "within", "value": "2026-11-20"}),
            "use before or after",
        ),
        (
            json!({"field": "a", "op": "within", "value": 14}),
            "a duration",
        ),
        (
            json!({"field": "a", "op": "within", "value": "99999d"}),
            "at most 36500d",
        ),
        (
            json!({"field": "tags", "op": "has_tag", "value": ""}),
            "value is empty",
        ),
        (
            json!({"field": "tags", "op": "lacks_tag", "value": ["a"]}),
            "a tag",
        ),
    ];
    for (j, want) in cases {
        let e = parse_err(j.clone());
        assert_eq!(e.path, "conditions.value", "{j}");
        assert!(
            e.message.contains(want),
            "{j}: {} does not contain {want:?}",
            e.message
        );
    }
    let e = parse_err(json!({"field": "a", "op": "in", "value": ["a", {"b": 1}]}));
    assert_eq!(e.path, "conditions.value[1]");
    assert!(e.message.contains("got an object"));
    let e = parse_err(json!({"field": "a", "op": "in", "value": ["a", null]}));
    assert_eq!(e.path, "conditions.value[1]");
    let many: Vec<usize> = (0..=MAX_IN_VALUES).collect();
    let e = parse_err(json!({"field": "a", "op": "in", "value": many}));
    assert!(e.message.contains("at most 1000 values"));
}

#[test]
fn exists_accepts_a_null_value_and_writes_none() {
    let c = cond(json!({"field": "a", "op": "exists", "value": null}));
    assert_eq!(c.to_json(), json!({"field": "a", "op": "exists"}));
}

#[test]
fn tag_ops_default_to_the_tags_field() {
    let c = cond(json!({"op": "has_tag", "value": "pro"}));
    assert_eq!(
        c.to_json(),
        json!({"field": "tags", "op": "has_tag", "value": "pro"})
    );
    let e = parse_err(json!({"field": "plan", "op": "lacks_tag", "value": "pro"}));
    assert_eq!(e.path, "conditions.field");
    assert!(
        e.message
            .contains(r#"write "field": "tags" or leave field out"#)
    );
}

#[test]
fn durations_keep_their_unit() {
    let c = cond(json!({"field": "d", "op": "within", "value": "90m"}));
    let Condition::Leaf(l) = c else { panic!() };
    assert_eq!(l.op, Op::Within(Duration::parse("90m").unwrap()));
}

fn nest(levels: usize) -> Value {
    let mut v = json!({"field": "a", "op": "exists"});
    for _ in 0..levels {
        v = json!({"all": [v]});
    }
    v
}

#[test]
fn nesting_is_bounded() {
    cond(nest(MAX_DEPTH));
    let e = parse_err(nest(MAX_DEPTH + 1));
    assert!(e.message.contains("nest at most 16"), "{}", e.message);
    // The innermost group that is one too many.
    assert_eq!(e.path, format!("conditions{}", ".all[0]".repeat(MAX_DEPTH)));
}

#[test]
fn leaf_and_group_counts_are_bounded() {
    let leaves = |n: usize| json!({"any": (0..n).map(|_| json!({"field": "a", "op": "exists"})).collect::<Vec<_>>()});
    cond(leaves(MAX_LEAVES));
    let e = parse_err(leaves(MAX_LEAVES + 1));
    assert_eq!(e.path, format!("conditions.any[{MAX_LEAVES}]"));
    assert!(e.message.contains("at most 200 leaves"));

    let groups = |n: usize| json!({"any": (0..n).map(|_| json!({"all": []})).collect::<Vec<_>>()});
    cond(groups(MAX_GROUPS - 1));
    let e = parse_err(groups(MAX_GROUPS));
    assert!(e.message.contains("at most 200 groups"));
}

#[test]
fn leaves_are_listed_in_order() {
    let c = cond(json!({"all": [
        {"field": "a", "op": "exists"},
        {"any": [{"field": "b", "op": "exists"}, {"field": "c", "op": "exists"}]}
    ]}));
    let names: Vec<&str> = c.leaves().iter().map(|l| l.field.name()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let c = cond(json!({"any": [
        {"field": "b", "op": "exists"},
        {"field": "custom_fields.a", "op": "exists"},
        {"all": [{"field": "b", "op": "eq", "value": 1}, {"op": "has_tag", "value": "x"}]}
    ]}));
    let fields: Vec<&str> = c.fields().iter().map(|f| f.name()).collect();
    assert_eq!(fields, ["b", "a", "tags"]);
}
