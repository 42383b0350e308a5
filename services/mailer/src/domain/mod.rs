//! The mailer's domain: ids, templates and their variables, messages, unsubscribe
//! tokens, the derived text part, and what a change event asks of the mailer. No I/O here.

pub mod change;
pub mod ids;
pub mod message;
pub mod template;
pub mod text;
pub mod token;
pub mod variables;
