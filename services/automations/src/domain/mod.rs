//! Plain types for what the dashboard configures (DESIGN §3) and what the change stream carries.
//! No I/O: each definition parses from its DESIGN JSON, the one grammar the HTTP API, the gRPC
//! API and storage share, with errors naming the JSON path, and says what it matches or allows.

pub mod action;
pub mod automation;
pub mod event;
pub mod funnel;
pub mod json;
pub mod reentry;
pub mod sequence;
pub mod step;
pub mod trigger;

pub use action::Action;
pub use automation::{AutomationDef, Reference};
pub use event::{EventKind, EventView};
pub use json::{DefinitionError, document};
pub use reentry::Reentry;
pub use sequence::SequenceDef;
pub use step::Step;
pub use trigger::Trigger;
