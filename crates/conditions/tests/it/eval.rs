use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use meisa_conditions::{State, became_true, evaluate};
use serde_json::{Value, json};

use crate::{cond, leaf, now};

fn state() -> State {
    State {
        email: Some("jane@example.com".into()),
        first_name: Some("Jane".into()),
        last_name: None,
        external_id: Some("usr_12345".into()),
        subscribed: Some(true),
        created_at: Some(Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap()),
        updated_at: Some(now() - TimeDelta::hours(1)),
        ..State::default()
    }
    .with_tag("pro")
    .with_tag("beta")
    .with_custom_field("plan", "pro")
    .with_custom_field("posts", 5)
    .with_custom_field("ratio", 0.5)
    .with_custom_field("done", false)
    .with_custom_field("signup_date", "2026-11-01")
    .with_custom_field("last_seen", (now() - TimeDelta::days(10)).to_rfc3339())
    .with_custom_field("cleared", Value::Null)
    .with_custom_field("blob", json!({"a": [1, 2]}))
    .with_custom_field("list", json!([1, 2]))
}

fn is(field: &str, op: &str, value: Value) -> bool {
    evaluate(&leaf(field, op, value), &state(), now())
}

fn at(field: &str, op: &str, value: Value, now: DateTime<Utc>) -> bool {
    evaluate(&leaf(field, op, value), &state(), now)
}

#[test]
fn eq_and_ne() {
    assert!(is("plan", "eq", json!("pro")));
    assert!(
        !is("plan", "eq", json!("Pro")),
        "strings compare case-sensitively"
    );
    assert!(is("posts", "eq", json!(5.0)), "5 == 5.0");
    assert!(is("ratio", "eq", json!(0.5)));
    assert!(is("done", "eq", json!(false)));
    assert!(is("subscribed", "eq", json!(true)));
    assert!(
        is("signup_date", "eq", json!("2026-11-01T00:00:00Z")),
        "dates compare as instants"
    );
    assert!(is("created_at", "eq", json!("2026-01-10")));
    assert!(
        is("email", "eq", json!("Jane@Example.COM")),
        "emails compare case-insensitively"
    );
    assert!(is("plan", "ne", json!("free")));
    assert!(!is("plan", "ne", json!("pro")));
    assert!(is("posts", "ne", json!(6)));
    assert!(!is("posts", "ne", json!(5.0)));
    assert!(is("done", "ne", json!(true)));
}

#[test]
fn missing_fields_make_comparisons_false_except_ne_not_exists_lacks_tag() {
    for field in ["nope", "cleared", "last_name"] {
        for (op, value) in [
            ("eq", json!("x")),
            ("gt", json!(1)),
            ("gte", json!(1)),
            ("lt", json!(1)),
            ("lte", json!(1)),
            ("contains", json!("x")),
            ("in", json!(["x"])),
            ("exists", Value::Null),
            ("before", json!("2030-01-01")),
            ("after", json!("2000-01-01")),
            ("older_than", json!("1s")),
            ("within", json!("36500d")),
        ] {
            assert!(!is(field, op, value), "{field} {op}");
        }
        assert!(is(field, "ne", json!("x")), "{field} ne");
        assert!(is(field, "not_exists", Value::Null), "{field} not_exists");
    }
    let untagged = State::default();
    assert!(evaluate(
        &leaf("tags", "lacks_tag", json!("pro")),
        &untagged,
        now()
    ));
    assert!(!evaluate(
        &leaf("tags", "has_tag", json!("pro")),
        &untagged,
        now()
    ));
    assert!(evaluate(
        &leaf("tags", "not_exists", Value::Null),
        &untagged,
        now()
    ));
    assert!(!evaluate(
        &leaf("tags", "exists", Value::Null),
        &untagged,
        now()
    ));
    // A contact with nothing at all.
    assert!(!evaluate(
        &leaf("email", "eq", json!("a")),
        &untagged,
        now()
    ));
    assert!(evaluate(&leaf("email", "ne", json!("a")), &untagged, now()));
}

#[test]
fn type_mismatches_are_false_never_a_panic() {
    assert!(!is("posts", "eq", json!("5")));
    assert!(
        !is("posts", "ne", json!("5")),
        "a mismatch is false, ne included"
    );
    assert!(!is("plan", "gt", json!(1)));
    assert!(!is("done", "eq", json!(0)));
    assert!(!is("done", "lt", json!(1)));
    assert!(!is("subscribed", "gte", json!(0)));
    assert!(!is("posts", "contains", json!("5")));
    assert!(!is("plan", "older_than", json!("1d")), "not a date");
    assert!(!is("plan", "before", json!("2030-01-01")));
    assert!(!is("created_at", "eq", json!("not a date")));
    assert!(!is("created_at", "eq", json!(5)));
    assert!(!is("email", "gt", json!(5)));
    for odd in ["blob", "list"] {
        for (op, value) in [
            ("eq", json!(1)),
            ("ne", json!(1)),
            ("gt", json!(1)),
            ("contains", json!("a")),
            ("in", json!([1])),
            ("within", json!("1d")),
            ("not_exists", Value::Null),
        ] {
            assert!(!is(odd, op, value), "{odd} {op}");
        }
        assert!(
            is(odd, "exists", Value::Null),
            "an object or list is present"
        );
    }
}

#[test]
fn ordering_ops() {
    assert!(is("posts", "gt", json!(4)));
    assert!(!is("posts", "gt", json!(5)));
    assert!(is("posts", "gte", json!(5)));
    assert!(is("posts", "lt", json!(5.5)));
    assert!(is("posts", "lte", json!(5)));
    assert!(!is("posts", "lte", json!(4.99)));
    assert!(is("plan", "gt", json!("free")), "strings order as text");
    assert!(is("plan", "lt", json!("zzz")));
    assert!(is("signup_date", "gt", json!("2026-10-31T23:59:59Z")));
    assert!(is("signup_date", "lte", json!("2026-11-01")));
    assert!(is("created_at", "lt", json!("2026-01-10T00:00:01Z")));
    assert!(is("created_at", "gte", json!("2026-01-10")));
}

#[test]
fn contains_and_in() {
    assert!(is("plan", "contains", json!("ro")));
    assert!(!is("plan", "contains", json!("RO")));
    assert!(
        is("email", "contains", json!("@EXAMPLE")),
        "email is case-insensitive"
    );
    assert!(
        is("tags", "contains", json!("beta")),
        "contains on tags is membership"
    );
    assert!(
        !is("tags", "contains", json!("bet")),
        "not a substring of a tag"
    );
    assert!(is("plan", "in", json!(["free", "pro"])));
    assert!(!is("plan", "in", json!(["free", 5])));
    assert!(is("posts", "in", json!(["5", 5.0])));
    assert!(is("done", "in", json!([false])));
    assert!(is("signup_date", "in", json!(["2026-11-01T00:00:00Z"])));
    assert!(
        is("tags", "in", json!(["gold", "pro"])),
        "in on tags: has any of them"
    );
    assert!(!is("tags", "in", json!(["gold", 1])));
}

#[test]
fn exists_and_not_exists() {
    assert!(is("plan", "exists", Value::Null));
    assert!(is("first_name", "exists", Value::Null));
    assert!(!is("first_name", "not_exists", Value::Null));
    assert!(is("tags", "exists", Value::Null));
    assert!(!is("tags", "not_exists", Value::Null));
}

#[test]
fn before_and_after_are_strict() {
    assert!(is("signup_date", "before", json!("2026-11-02")));
    assert!(!is("signup_date", "before", json!("2026-11-01")));
    assert!(is("signup_date", "after", json!("2026-10-31T23:59:59Z")));
    assert!(!is("signup_date", "after", json!("2026-11-01T00:00:00Z")));
    assert!(is(
        "created_at",
        "before",
        json!("2026-01-10T00:00:00.001Z")
    ));
    assert!(
        is("created_at", "after", json!("2026-01-10T00:00:00+01:00")),
        "offsets are honoured"
    );
}

#[test]
fn older_than_and_within() {
    // last_seen is now - 10d.
    assert!(
        is("last_seen", "older_than", json!("10d")),
        "boundary is inclusive"
    );
    assert!(is("last_seen", "older_than", json!("9d")));
    assert!(!is("last_seen", "older_than", json!("11d")));
    assert!(is("last_seen", "within", json!("11d")));
    assert!(
        !is("last_seen", "within", json!("10d")),
        "within is (now - d, now]"
    );
    assert!(!is("last_seen", "within", json!("9d")));
    assert!(is("updated_at", "within", json!("2h")));
    assert!(is("updated_at", "older_than", json!("30m")));
    assert!(
        is("signup_date", "older_than", json!("0s")),
        "older_than 0s: the date has passed"
    );
    // A date in the future is not within any window and not older than anything.
    let earlier = now() - TimeDelta::days(20);
    assert!(!at("last_seen", "within", json!("30d"), earlier));
    assert!(!at("last_seen", "older_than", json!("0s"), earlier));
    // The same date is `within d` until exactly d has passed, then `older_than d`.
    let seen = now() - TimeDelta::days(10);
    let d14 = seen + TimeDelta::days(14);
    assert!(at(
        "last_seen",
        "within",
        json!("14d"),
        d14 - TimeDelta::nanoseconds(1)
    ));
    assert!(!at("last_seen", "within", json!("14d"), d14));
    assert!(at("last_seen", "older_than", json!("14d"), d14));
    assert!(
        at("last_seen", "within", json!("14d"), seen),
        "the instant itself is within"
    );
}

#[test]
fn tag_ops() {
    assert!(is("tags", "has_tag", json!("pro")));
    assert!(!is("tags", "has_tag", json!("Pro")));
    assert!(!is("tags", "lacks_tag", json!("pro")));
    assert!(is("tags", "lacks_tag", json!("gold")));
    let s = state();
    assert!(evaluate(
        &cond(json!({"op": "has_tag", "value": "beta"})),
        &s,
        now()
    ));
}

#[test]
fn groups() {
    let yes = json!({"field": "plan", "op": "eq", "value": "pro"});
    let no = json!({"field": "plan", "op": "eq", "value": "free"});
    let ev = |j: Value| evaluate(&cond(j), &state(), now());
    assert!(ev(json!({"all": []})), "all of nothing is true");
    assert!(!ev(json!({"any": []})), "any of nothing is false");
    assert!(ev(json!({"all": [yes, yes]})));
    assert!(!ev(json!({"all": [yes, no]})));
    assert!(ev(json!({"any": [no, yes]})));
    assert!(!ev(json!({"any": [no, no]})));
    assert!(ev(json!({"any": [no, {"all": [yes, {"any": [yes]}]}]})));
}

#[test]
fn became_true_is_false_then_true() {
    let c = leaf("posts", "gte", json!(5));
    let four = State::new().with_custom_field("posts", 4);
    let five = State::new().with_custom_field("posts", 5);
    let six = State::new().with_custom_field("posts", 6);
    assert!(became_true(&c, Some(&four), &five, now()));
    assert!(
        became_true(&c, None, &five, now()),
        "a new contact was false before"
    );
    assert!(!became_true(&c, None, &four, now()));
    assert!(!became_true(&c, Some(&five), &six, now()), "already true");
    assert!(!became_true(&c, Some(&five), &four, now()), "became false");
    assert!(!became_true(&c, Some(&four), &four, now()));
}
