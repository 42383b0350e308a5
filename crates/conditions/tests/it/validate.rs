use meisa_conditions::{Condition, ConditionError, FieldType, Validation, validate};
use serde_json::{Value, json};

use crate::cond;

/// The registry of a workspace that has seen these custom fields.
fn registry(name: &str) -> Option<FieldType> {
    match name {
        "plan" => Some(FieldType::String),
        "posts_generated" => Some(FieldType::Number),
        "onboarding_completed" => Some(FieldType::Boolean),
        "signup_date" => Some(FieldType::Date),
        _ => None,
    }
}

fn check(j: Value) -> Result<Validation, ConditionError> {
    validate(&cond(j), &registry, "conditions")
}

fn wrong(j: Value, path: &str, want: &str) {
    match check(j.clone()) {
        Ok(v) => panic!("{j} should be refused, got {v:?}"),
        Err(e) => {
            assert_eq!(e.path, path, "{j}: {}", e.message);
            assert!(
                e.message.contains(want),
                "{j}: {:?} lacks {want:?}",
                e.message
            );
        }
    }
}

fn one(field: &str, op: &str, value: Value) -> Value {
    json!({"all": [{"field": field, "op": op, "value": value}]})
}

#[test]
fn fitting_conditions_pass_with_nothing_unseen() {
    let ok = [
        one("posts_generated", "gte", json!(5)),
        one("posts_generated", "in", json!([1, 2.5])),
        one("plan", "eq", json!("pro")),
        one("plan", "contains", json!("pr")),
        one("plan", "gt", json!("a")),
        one("onboarding_completed", "eq", json!(true)),
        one("onboarding_completed", "ne", json!(false)),
        one("signup_date", "before", json!("2026-11-20")),
        one("signup_date", "eq", json!("2026-11-20T10:00:00Z")),
        one("signup_date", "gte", json!("2026-11-20")),
        one("signup_date", "older_than", json!("14d")),
        one("signup_date", "within", json!("2h")),
        one("signup_date", "in", json!(["2026-11-20"])),
        one("custom_fields.plan", "eq", json!("pro")),
        one("email", "contains", json!("@acme.test")),
        one("external_id", "in", json!(["usr_1"])),
        one("subscribed", "eq", json!(true)),
        one("created_at", "after", json!("2026-01-01")),
        one("updated_at", "within", json!("30m")),
        one("tags", "contains", json!("pro")),
        one("tags", "in", json!(["pro", "trial"])),
        one("tags", "has_tag", json!("pro")),
        one("tags", "exists", Value::Null),
        one("plan", "not_exists", Value::Null),
    ];
    for j in ok {
        assert_eq!(check(j.clone()), Ok(Validation::default()), "{j}");
    }
}

#[test]
fn a_value_of_the_wrong_type_points_at_value() {
    wrong(
        one("posts_generated", "eq", json!("5")),
        "conditions.all[0].value",
        "posts_generated is a number field, got a string; write a number without quotes",
    );
    wrong(
        one("plan", "eq", json!(5)),
        "conditions.all[0].value",
        "plan is a string field, got a number; write the value in quotes",
    );
    wrong(
        one("onboarding_completed", "eq", json!("true")),
        "conditions.all[0].value",
        "is a boolean field, got a string; write true or false",
    );
    wrong(
        one("signup_date", "eq", json!("soon")),
        "conditions.all[0].value",
        "signup_date is a date field, got a string that is not a date",
    );
    wrong(
        one("signup_date", "lt", json!(3)),
        "conditions.all[0].value",
        "is a date field, got a number",
    );
    wrong(
        one("subscribed", "ne", json!(1)),
        "conditions.all[0].value",
        "subscribed is a boolean field",
    );
    wrong(
        one("created_at", "gt", json!("yesterday")),
        "conditions.all[0].value",
        "created_at is a date field",
    );
    wrong(
        one("email", "eq", json!(3)),
        "conditions.all[0].value",
        "email is a string field",
    );
    wrong(
        one("posts_generated", "in", json!([1, "2"])),
        "conditions.all[0].value[1]",
        "is a number field, got a string",
    );
    wrong(
        one("tags", "in", json!(["pro", 3])),
        "conditions.all[0].value[1]",
        "tags are strings",
    );
}

#[test]
fn an_op_that_cannot_apply_points_at_op() {
    wrong(
        one("onboarding_completed", "gt", json!(1)),
        "conditions.all[0].op",
        "gt orders values, and onboarding_completed is a boolean field; use eq or ne",
    );
    wrong(
        one("subscribed", "lte", json!(1)),
        "conditions.all[0].op",
        "boolean field",
    );
    wrong(
        one("plan", "older_than", json!("14d")),
        "conditions.all[0].op",
        "older_than compares dates, and plan is a string field",
    );
    wrong(
        one("posts_generated", "before", json!("2026-11-20")),
        "conditions.all[0].op",
        "before compares dates, and posts_generated is a number field",
    );
    wrong(
        one("email", "within", json!("1d")),
        "conditions.all[0].op",
        "within compares dates",
    );
    wrong(
        one("posts_generated", "contains", json!("5")),
        "conditions.all[0].op",
        "contains looks for text in a string field, and posts_generated is a number field",
    );
    wrong(
        one("signup_date", "contains", json!("2026")),
        "conditions.all[0].op",
        "use before, after",
    );
    wrong(
        one("onboarding_completed", "contains", json!("t")),
        "conditions.all[0].op",
        "use eq, ne, exists or not_exists",
    );
    wrong(
        one("tags", "eq", json!("pro")),
        "conditions.all[0].op",
        "eq does not apply to tags",
    );
    wrong(
        one("tags", "older_than", json!("1d")),
        "conditions.all[0].op",
        "use has_tag, lacks_tag",
    );
}

#[test]
fn paths_follow_nesting() {
    let j = json!({"any": [
        {"field": "plan", "op": "eq", "value": "pro"},
        {"all": [{"field": "posts_generated", "op": "gte", "value": "5"}]}
    ]});
    wrong(j, "conditions.any[1].all[0].value", "number field");
    let e = validate(&cond(one("plan", "eq", json!(1))), &registry, "exit_when").unwrap_err();
    assert_eq!(e.path, "exit_when.all[0].value");
}

#[test]
fn unseen_fields_are_accepted_and_listed_once_in_order() {
    let j = json!({"all": [
        {"field": "trial_ends_at", "op": "within", "value": "3d"},
        {"field": "plan", "op": "eq", "value": "pro"},
        {"field": "seats", "op": "gt", "value": 3},
        {"field": "custom_fields.trial_ends_at", "op": "exists"},
        {"any": [{"field": "seats", "op": "contains", "value": "x"}]}
    ]});
    assert_eq!(
        check(j).unwrap().unseen_fields,
        vec!["trial_ends_at".to_string(), "seats".to_string()]
    );
}

#[test]
fn the_registry_is_asked_by_bare_name_and_never_for_built_ins() {
    let asked = std::cell::RefCell::new(Vec::new());
    let lookup = |name: &str| {
        asked.borrow_mut().push(name.to_string());
        registry(name)
    };
    let c: Condition = cond(json!({"all": [
        {"field": "custom_fields.plan", "op": "eq", "value": "pro"},
        {"field": "email", "op": "exists"},
        {"field": "tags", "op": "has_tag", "value": "x"}
    ]}));
    validate(&c, &lookup, "conditions").unwrap();
    assert_eq!(*asked.borrow(), vec!["plan".to_string()]);
}
