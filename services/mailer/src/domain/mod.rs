//! The mailer's domain: ids, templates and their variables, messages, unsubscribe
//! tokens, and the derived text part. No I/O here.

pub mod ids;
pub mod message;
pub mod template;
pub mod text;
pub mod token;
pub mod variables;
