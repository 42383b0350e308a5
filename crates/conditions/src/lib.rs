//! The condition language of Meisa (DESIGN §3): what automations test with `conditions`, what
//! sequences test with `exit_when`, and the `Duration` of waits and `reentry`.
//!
//! Pure: no I/O, no async, no database. The flow is
//! [`Condition::parse`] (JSON shape, with the JSON path of every error) →
//! [`validate`] (against the workspace's field types) → [`evaluate`] / [`became_true`] /
//! [`next_flip`] (against a [`State`] at an instant). See README.md for the grammar and the
//! choices made where DESIGN is silent.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use meisa_conditions::{Condition, FieldType, State, evaluate, next_flip, validate};
//! use serde_json::json;
//!
//! let json = json!({"all": [
//!     {"field": "posts_generated", "op": "gte", "value": 5},
//!     {"field": "last_active", "op": "older_than", "value": "14d"}
//! ]});
//! let condition = Condition::parse(&json, "conditions")?;
//! let registry = |name: &str| (name == "posts_generated").then_some(FieldType::Number);
//! let checked = validate(&condition, &registry, "conditions")?;
//! assert_eq!(checked.unseen_fields, ["last_active"]);
//!
//! let now = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
//! let contact = State::new()
//!     .with_custom_field("posts_generated", 7)
//!     .with_custom_field("last_active", "2026-11-10T10:00:00Z");
//! assert!(!evaluate(&condition, &contact, now));
//! let due = next_flip(&condition, &contact, now).unwrap();
//! assert_eq!(due.to_rfc3339(), "2026-11-24T10:00:00+00:00");
//! assert!(evaluate(&condition, &contact, due));
//! assert_eq!(condition.to_json(), json);
//! # Ok::<(), meisa_conditions::ConditionError>(())
//! ```
#![forbid(unsafe_code)]

mod condition;
mod duration;
mod error;
mod eval;
mod field;
mod state;
mod validate;

pub use condition::{
    Condition, DateValue, Leaf, MAX_DEPTH, MAX_GROUPS, MAX_IN_VALUES, MAX_LEAVES, Op, OpKind,
    Scalar,
};
pub use duration::{Duration, DurationError, MAX_SECONDS, Unit};
pub use error::ConditionError;
pub use eval::{became_true, evaluate, is_time_dependent, next_flip};
pub use field::Field;
pub use meisa_model::{BuiltIn, FieldType};
pub use state::State;
pub use validate::{Validation, validate};
