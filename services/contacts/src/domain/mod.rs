//! The contact domain as plain Rust types: input is parsed into these types once, at the edge,
//! and everything behind the edge can trust them.

pub mod contact;
pub mod fields;
pub mod input;

pub use contact::{Contact, Edit, FieldChange, Patch};
pub use fields::{FieldName, FieldType, FieldValue};
pub use input::{ContactInput, TagName};
pub use meisa_model::EmailAddress;
