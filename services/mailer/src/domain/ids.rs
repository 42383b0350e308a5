//! Prefixed identifiers (DESIGN §3): `tpl_…` and `msg_…` around a UUIDv7, so ids sort by creation
//! time (cursor pagination uses that) and a leaked id says what it names. The spelling rule is
//! `meisa_model::id`'s, shared by every service; these types add the error a caller is shown.

use std::fmt;

use uuid::Uuid;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{value:?} is not a valid {kind} id (expected {prefix}_… as returned by the API)")]
pub struct IdError {
    kind: &'static str,
    prefix: &'static str,
    value: String,
}

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn uuid(&self) -> Uuid {
                self.0
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                meisa_model::id::parse($prefix, s.trim())
                    .map(Self)
                    .ok_or_else(|| IdError {
                        kind: $kind,
                        prefix: $prefix,
                        value: s.chars().take(80).collect(),
                    })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }
    };
}

prefixed_id!(TemplateId, "tpl", "template");
prefixed_id!(MessageId, "msg", "message");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_prefixes() {
        let id = TemplateId::new();
        assert_eq!(TemplateId::parse(&id.to_string()), Ok(id));
        assert!(TemplateId::parse(&MessageId::new().to_string()).is_err());
        assert!(TemplateId::parse("tpl_xyz").is_err());
        assert!(TemplateId::parse("").is_err());
        let m = MessageId::new();
        assert!(m.to_string().starts_with("msg_"));
        assert_eq!(MessageId::parse(&m.to_string()), Ok(m));
    }
}
