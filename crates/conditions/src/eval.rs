//! Evaluating a condition against a contact, now and as time passes.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use crate::condition::{Condition, Leaf, Op, Scalar};
use crate::field::Field;
use crate::state::{Got, State};
use meisa_model::parse_date;

/// Whether `state` satisfies `condition` at `now`.
///
/// Never panics, whatever the state holds. The missing-field rule of DESIGN §3: a test on a
/// missing field is false, except `ne`, `not_exists` and `lacks_tag`, which are true. A
/// comparison whose operands do not have the same type at run time (a string where a number is
/// expected) is false, `ne` included.
pub fn evaluate(condition: &Condition, state: &State, now: DateTime<Utc>) -> bool {
    match condition {
        Condition::All(cs) => cs.iter().all(|c| evaluate(c, state, now)),
        Condition::Any(cs) => cs.iter().any(|c| evaluate(c, state, now)),
        Condition::Leaf(leaf) => evaluate_leaf(leaf, state, now),
    }
}

/// "Was false, is true": what the `condition_met` trigger fires on. `before` is `None` when the
/// contact did not exist, which counts as false. Both states are read at the same `now`, so a
/// change is credited only to the state change; a condition that becomes true by time alone is
/// found by the sweep ([`next_flip`]).
pub fn became_true(
    condition: &Condition,
    before: Option<&State>,
    after: &State,
    now: DateTime<Utc>,
) -> bool {
    let was = before.is_some_and(|b| evaluate(condition, b, now));
    !was && evaluate(condition, after, now)
}

/// Whether the condition's value can change with time alone: it has an `older_than` or
/// `within` leaf. (`before` and `after` compare with a fixed date, so they do not move.)
pub fn is_time_dependent(condition: &Condition) -> bool {
    condition.leaves().iter().any(|l| is_clock_leaf(l))
}

fn is_clock_leaf(leaf: &Leaf) -> bool {
    matches!(leaf.op, Op::OlderThan(_) | Op::Within(_))
}

/// The earliest instant after `now` at which the condition's value differs from its value at
/// `now` while the state stays as it is; `None` when time alone will never change it.
///
/// Exact, not a guess: at the returned instant [`evaluate`] gives the other answer, so a sweep
/// that stores it per contact wakes only contacts that really flip. Each `older_than d` leaf
/// on a date `t` steps at `t + d`; each `within d` leaf is true on `[t, t + d)` and steps at
/// `t` and `t + d`. The tree is evaluated at each step in order until its value changes.
pub fn next_flip(
    condition: &Condition,
    state: &State,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let leaves = condition.leaves();
    let mut steps: Vec<DateTime<Utc>> = Vec::new();
    for leaf in leaves.iter().filter(|l| is_clock_leaf(l)) {
        if leaf.field == Field::TAGS {
            continue;
        }
        let Some(t) = state.get(&leaf.field).as_date() else {
            continue;
        };
        match &leaf.op {
            Op::OlderThan(d) => steps.extend(t.checked_add_signed(d.to_chrono())),
            Op::Within(d) => {
                steps.push(t);
                steps.extend(t.checked_add_signed(d.to_chrono()));
            }
            _ => {}
        }
    }
    steps.retain(|t| *t > now);
    if steps.is_empty() {
        return None;
    }
    steps.sort_unstable();
    steps.dedup();

    // Leaves that do not move with time are evaluated once; only the clock leaves are
    // re-evaluated at each step, so the cost is the tree's size per step.
    let fixed: Vec<Option<bool>> = leaves
        .iter()
        .map(|l| (!is_clock_leaf(l)).then(|| evaluate_leaf(l, state, now)))
        .collect();
    let at = |when: DateTime<Utc>| {
        let mut i = 0;
        fold(condition, &mut |leaf: &Leaf| {
            let v = fixed
                .get(i)
                .copied()
                .flatten()
                .unwrap_or_else(|| evaluate_leaf(leaf, state, when));
            i += 1;
            v
        })
    };
    let current = at(now);
    steps.into_iter().find(|t| at(*t) != current)
}

/// Evaluates the tree visiting every leaf once, in the order of [`Condition::leaves`] (no
/// short-circuit), so a leaf's position identifies it.
fn fold(c: &Condition, leaf_value: &mut impl FnMut(&Leaf) -> bool) -> bool {
    match c {
        Condition::All(cs) => cs.iter().fold(true, |acc, c| fold(c, leaf_value) & acc),
        Condition::Any(cs) => cs.iter().fold(false, |acc, c| fold(c, leaf_value) | acc),
        Condition::Leaf(leaf) => leaf_value(leaf),
    }
}

fn evaluate_leaf(leaf: &Leaf, state: &State, now: DateTime<Utc>) -> bool {
    // The tag ops test the tag set whatever field a hand-built leaf names.
    match &leaf.op {
        Op::HasTag(tag) => return state.tags.contains(tag),
        Op::LacksTag(tag) => return !state.tags.contains(tag),
        _ => {}
    }
    if leaf.field == Field::TAGS {
        return evaluate_tags(&leaf.op, state);
    }
    // The contacts service stores emails lower-cased and compares them case-insensitively
    // (DESIGN §2); a condition written with `Jane@Example.com` means the same contact.
    let fold_case = leaf.field == Field::EMAIL;
    let got = state.get(&leaf.field);
    if matches!(got, Got::Missing) {
        return matches!(leaf.op, Op::Ne(_) | Op::NotExists);
    }
    match &leaf.op {
        Op::Exists => true,
        Op::NotExists => false,
        Op::Eq(v) => compare(got, v, fold_case) == Some(Ordering::Equal),
        Op::Ne(v) => compare(got, v, fold_case).is_some_and(|o| o != Ordering::Equal),
        Op::Gt(v) => order(got, v, fold_case) == Some(Ordering::Greater),
        Op::Gte(v) => order(got, v, fold_case).is_some_and(|o| o != Ordering::Less),
        Op::Lt(v) => order(got, v, fold_case) == Some(Ordering::Less),
        Op::Lte(v) => order(got, v, fold_case).is_some_and(|o| o != Ordering::Greater),
        Op::Contains(needle) => match got {
            Got::Str(s) if fold_case => s.to_lowercase().contains(&needle.to_lowercase()),
            Got::Str(s) => s.contains(needle.as_str()),
            _ => false,
        },
        Op::In(vs) => vs
            .iter()
            .any(|v| compare(got, v, fold_case) == Some(Ordering::Equal)),
        Op::Before(d) => got.as_date().is_some_and(|t| t < d.at()),
        Op::After(d) => got.as_date().is_some_and(|t| t > d.at()),
        Op::OlderThan(d) => {
            let Some(t) = got.as_date() else { return false };
            // A cutoff before the start of representable time: nothing is that old.
            now.checked_sub_signed(d.to_chrono())
                .is_some_and(|cutoff| t <= cutoff)
        }
        Op::Within(d) => {
            let Some(t) = got.as_date() else { return false };
            // Half-open (now - d, now]: at every instant a past date is either `within d` or
            // `older_than d`, never both, and the step at t + d is an instant where the value
            // really changes (what next_flip returns). Future dates are not within: the op
            // describes recency.
            let recent_enough = now
                .checked_sub_signed(d.to_chrono())
                .is_none_or(|cutoff| t > cutoff);
            t <= now && recent_enough
        }
        Op::HasTag(_) | Op::LacksTag(_) => false,
    }
}

/// The tag set: membership for `contains` and `in`; `exists` means at least one tag.
/// Scalar comparisons on it match nothing, except `ne` on an empty set (the missing-field rule).
fn evaluate_tags(op: &Op, state: &State) -> bool {
    let tags = &state.tags;
    match op {
        Op::Contains(tag) | Op::HasTag(tag) => tags.contains(tag),
        Op::LacksTag(tag) => !tags.contains(tag),
        Op::In(vs) => vs
            .iter()
            .any(|v| matches!(v, Scalar::String(tag) if tags.contains(tag))),
        Op::Exists => !tags.is_empty(),
        Op::NotExists => tags.is_empty(),
        Op::Ne(_) => tags.is_empty(),
        _ => false,
    }
}

/// Equality-capable comparison: numbers as f64, booleans, dates as instants, strings.
fn compare(got: Got<'_>, v: &Scalar, fold_case: bool) -> Option<Ordering> {
    match (got, v) {
        (Got::Num(a), Scalar::Number(b)) => a.partial_cmp(&b.as_f64()?),
        (Got::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Got::Date(a), Scalar::String(b)) => Some(a.cmp(&parse_date(b)?)),
        (Got::Str(a), Scalar::String(b)) => {
            // Two dates compare as instants, whatever their spelling (`2026-11-20` equals
            // `2026-11-20T00:00:00Z`); other strings compare as text.
            if let (Some(da), Some(db)) = (parse_date(a), parse_date(b)) {
                return Some(da.cmp(&db));
            }
            if fold_case {
                Some(a.to_lowercase().cmp(&b.to_lowercase()))
            } else {
                Some(a.cmp(b.as_str()))
            }
        }
        _ => None,
    }
}

/// Ordering comparison: as [`compare`], but booleans have no order.
fn order(got: Got<'_>, v: &Scalar, fold_case: bool) -> Option<Ordering> {
    if matches!(got, Got::Bool(_)) || matches!(v, Scalar::Bool(_)) {
        return None;
    }
    compare(got, v, fold_case)
}
