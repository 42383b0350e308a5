//! Background work: the writer lanes (group commit of every write to a contact), the outbox
//! relay, and pruning.

pub mod relay;
pub mod writer;
