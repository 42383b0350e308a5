//! One integration binary for the crate (STYLE: `tests/it/main.rs`).

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eval;
mod flip;
mod parse;
mod properties;
mod validate;

use chrono::{DateTime, TimeZone, Utc};
use meisa_conditions::{Condition, ConditionError};
use serde_json::Value;

pub fn cond(json: Value) -> Condition {
    match Condition::parse(&json, "conditions") {
        Ok(c) => c,
        Err(e) => panic!("{json} should parse: {e}"),
    }
}

pub fn parse_err(json: Value) -> ConditionError {
    match Condition::parse(&json, "conditions") {
        Ok(c) => panic!("{json} should not parse, got {c:?}"),
        Err(e) => e,
    }
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
}

/// A leaf in a one-leaf `all`, the shape the dashboard saves.
pub fn leaf(field: &str, op: &str, value: Value) -> Condition {
    cond(serde_json::json!({"field": field, "op": op, "value": value}))
}
