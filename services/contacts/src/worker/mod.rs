//! Background work: the upsert writer lanes (group commit), the outbox relay, and pruning.

pub mod relay;
pub mod writer;
