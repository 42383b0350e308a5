use chrono::{DateTime, TimeDelta, Utc};
use meisa_conditions::{State, evaluate, is_time_dependent, next_flip};
use serde_json::json;

use crate::{cond, leaf, now};

fn seen(ago_days: i64) -> (DateTime<Utc>, State) {
    let t = now() - TimeDelta::days(ago_days);
    (
        t,
        State::new().with_custom_field("last_active", t.to_rfc3339()),
    )
}

#[test]
fn older_than_flips_when_the_date_is_old_enough() {
    let (last_active, s) = seen(10);
    let c = leaf("last_active", "older_than", json!("14d"));
    let flip = next_flip(&c, &s, now()).unwrap();
    assert_eq!(flip, last_active + TimeDelta::days(14));
    assert!(!evaluate(&c, &s, flip - TimeDelta::nanoseconds(1)));
    assert!(evaluate(&c, &s, flip));
    // Once true it stays true.
    assert_eq!(next_flip(&c, &s, flip), None);
    assert_eq!(next_flip(&c, &s, flip + TimeDelta::days(400)), None);
}

#[test]
fn within_flips_false_when_the_window_passes_and_true_when_a_future_date_arrives() {
    let (last_active, s) = seen(10);
    let c = leaf("last_active", "within", json!("14d"));
    assert!(evaluate(&c, &s, now()));
    let flip = next_flip(&c, &s, now()).unwrap();
    assert_eq!(flip, last_active + TimeDelta::days(14));
    assert!(!evaluate(&c, &s, flip));

    let trial_ends = now() + TimeDelta::hours(5);
    let s = State::new().with_custom_field("trial_ends_at", trial_ends.to_rfc3339());
    let c = leaf("trial_ends_at", "within", json!("1d"));
    assert!(!evaluate(&c, &s, now()));
    assert_eq!(next_flip(&c, &s, now()), Some(trial_ends));
    assert_eq!(
        next_flip(&c, &s, trial_ends),
        Some(trial_ends + TimeDelta::days(1))
    );
}

#[test]
fn built_in_dates_and_calendar_dates_move_too() {
    let created = now() - TimeDelta::hours(1);
    let s = State {
        created_at: Some(created),
        ..State::default()
    };
    let c = leaf("created_at", "older_than", json!("2h"));
    assert_eq!(
        next_flip(&c, &s, now()),
        Some(created + TimeDelta::hours(2))
    );

    let s = State::new().with_custom_field("renewal", "2026-11-21");
    let c = leaf("renewal", "older_than", json!("0s"));
    assert_eq!(
        next_flip(&c, &s, now()).map(|t| t.to_rfc3339()),
        Some("2026-11-21T00:00:00+00:00".into())
    );
}

#[test]
fn no_flip_without_clock_leaves_or_dates() {
    let (_, s) = seen(10);
    assert_eq!(
        next_flip(
            &leaf("last_active", "before", json!("2030-01-01")),
            &s,
            now()
        ),
        None
    );
    assert_eq!(
        next_flip(&leaf("last_active", "older_than", json!("1d")), &s, now()),
        None,
        "already true"
    );
    assert_eq!(
        next_flip(&leaf("missing", "older_than", json!("1d")), &s, now()),
        None
    );
    let s = State::new().with_custom_field("last_active", "not a date");
    assert_eq!(
        next_flip(&leaf("last_active", "within", json!("1d")), &s, now()),
        None
    );
}

#[test]
fn a_group_flips_only_when_its_value_changes() {
    let (last_active, s) = seen(10);
    let s = s
        .with_custom_field("plan", "free")
        .with_custom_field("signup", (now() - TimeDelta::days(1)).to_rfc3339());
    // The clock leaf flips, but the other member is false for good: nothing to wake for.
    let c = cond(json!({"all": [
        {"field": "last_active", "op": "older_than", "value": "14d"},
        {"field": "plan", "op": "eq", "value": "pro"}
    ]}));
    assert_eq!(next_flip(&c, &s, now()), None);

    // any: the earliest clock leaf decides.
    let c = cond(json!({"any": [
        {"field": "last_active", "op": "older_than", "value": "14d"},
        {"field": "signup", "op": "older_than", "value": "3d"}
    ]}));
    assert_eq!(next_flip(&c, &s, now()), Some(now() + TimeDelta::days(2)));

    // all: true only once both are; the first step (signup + 3d) changes nothing.
    let c = cond(json!({"all": [
        {"field": "last_active", "op": "older_than", "value": "14d"},
        {"field": "signup", "op": "older_than", "value": "3d"}
    ]}));
    assert_eq!(
        next_flip(&c, &s, now()),
        Some(last_active + TimeDelta::days(14))
    );

    // A window that closes before another leaf becomes true: the group never holds.
    let c = cond(json!({"all": [
        {"field": "signup", "op": "within", "value": "2d"},
        {"field": "last_active", "op": "older_than", "value": "14d"}
    ]}));
    assert_eq!(next_flip(&c, &s, now()), None);
}

#[test]
fn time_dependence_is_structural() {
    assert!(is_time_dependent(&leaf("a", "older_than", json!("1d"))));
    assert!(is_time_dependent(&cond(json!({"any": [
        {"field": "a", "op": "eq", "value": 1},
        {"all": [{"field": "a", "op": "within", "value": "1h"}]}
    ]}))));
    assert!(!is_time_dependent(&leaf(
        "a",
        "before",
        json!("2026-01-01")
    )));
    assert!(!is_time_dependent(&leaf("a", "after", json!("2026-01-01"))));
    assert!(!is_time_dependent(&cond(json!({"all": []}))));
}
