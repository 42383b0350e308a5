//! The condition language of Meisa (DESIGN §3): what automations test with `conditions`, what
//! sequences test with `exit_when`, and the `Duration` of waits and `reentry`.
//!
//! Pure: no I/O, no async, no database. The flow is
//! [`Condition::parse`] (JSON shape, with the JSON path of every error) →
//! [`validate`] (against the workspace's field types) → [`evaluate`] / [`became_true`] /
//! [`next_flip`] (against a [`State`] at an instant). See README.md for the grammar and the
//! choices made where DESIGN is silent.
#![forbid(unsafe_code)]

mod condition;
mod date;
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
pub use field::{Field, FieldType};
pub use state::State;
pub use validate::{Validation, validate};
