//! The vocabulary of DESIGN §2 that more than one service speaks, defined once so that a contact
//! the contacts service accepts is the contact conditions evaluate and templates render:
//!
//! - [`FieldType`]: the type a workspace fixes for a custom field;
//! - [`BuiltIn`]: the built-in fields and their names;
//! - [`FieldName`]: the rule for custom field names;
//! - [`parse_date`]: what counts as a date (RFC 3339 or `YYYY-MM-DD`);
//! - [`EmailAddress`]: one syntax rule for every address Meisa stores or mails;
//! - [`id`]: prefixed, time-ordered ids (`ct_…`, `tpl_…`).
//!
//! Each type parses (it is constructed only from valid input) and reports errors as values, not
//! messages in one caller's words: each service says them in its own (a field path, a hint).
#![forbid(unsafe_code)]

mod date;
mod email;
mod field;
pub mod id;
mod spelled;

pub use date::{is_date, parse_date};
pub use email::{EmailAddress, EmailError, MAX_EMAIL_BYTES};
pub use field::{BuiltIn, CUSTOM_PREFIX, FieldName, FieldNameError, FieldType, MAX_FIELD_NAME_LEN};
