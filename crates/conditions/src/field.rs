//! The fields a condition can name: a built-in of DESIGN §2 or a custom field (the vocabulary is
//! meisa-model's; this is how a leaf spells and reads it).

use std::fmt;

use meisa_model::{BuiltIn, CUSTOM_PREFIX, FieldName, FieldNameError, FieldType};

/// A field named by a leaf. Built-in names always mean the built-in field; anything else is a
/// custom field, held by its bare name (`custom_fields.plan` is read as `plan`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    BuiltIn(BuiltIn),
    Custom(String),
}

/// What a field holds, as far as the condition language is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A scalar of this type.
    Typed(FieldType),
    /// The tag set: membership ops only.
    Tags,
}

impl Field {
    pub const TAGS: Field = Field::BuiltIn(BuiltIn::Tags);
    pub const EMAIL: Field = Field::BuiltIn(BuiltIn::Email);

    /// Reads a field name as a leaf writes it. The error is a message for the `.field` path.
    pub fn parse(name: &str) -> Result<Self, String> {
        let custom = match name.strip_prefix(CUSTOM_PREFIX) {
            Some(custom) => custom,
            None => match BuiltIn::parse(name) {
                Some(b) => return Ok(Self::BuiltIn(b)),
                None => name,
            },
        };
        // A name that breaks the custom field rule can never be sent, so a leaf naming it is a
        // typo (a space, a dash) that would otherwise never match.
        FieldName::parse(custom)
            .map(|n| Self::Custom(n.into_string()))
            .map_err(|e| match e {
                FieldNameError::Empty => format!(
                    "field is empty; name a built-in field ({}) or a custom field",
                    BuiltIn::list()
                ),
                FieldNameError::Syntax => format!(
                    "{custom:?} is not a field name; custom field names start with a letter followed by letters, digits or _"
                ),
                FieldNameError::TooLong => e.to_string(),
                FieldNameError::BuiltIn(b) => format!(
                    "{custom} is a built-in field, not a custom field; write \"{}\"",
                    b.name()
                ),
            })
    }

    /// The canonical name: what serialization writes and what the dashboard shows.
    pub fn name(&self) -> &str {
        match self {
            Self::BuiltIn(b) => b.name(),
            Self::Custom(name) => name,
        }
    }

    pub fn is_custom(&self) -> bool {
        matches!(self, Self::Custom(_))
    }

    /// The type of a built-in field; `None` for custom fields, whose type the registry knows.
    pub(crate) fn built_in_kind(&self) -> Option<Kind> {
        match self {
            Self::BuiltIn(b) => Some(b.field_type().map_or(Kind::Tags, Kind::Typed)),
            Self::Custom(_) => None,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_and_custom_names() {
        assert_eq!(Field::parse("email"), Ok(Field::EMAIL));
        assert_eq!(Field::parse("tags"), Ok(Field::TAGS));
        assert_eq!(Field::parse("plan"), Ok(Field::Custom("plan".into())));
        assert_eq!(
            Field::parse("custom_fields.plan"),
            Ok(Field::Custom("plan".into()))
        );
        for b in BuiltIn::ALL {
            assert_eq!(Field::parse(b.name()), Ok(Field::BuiltIn(b)));
        }
    }

    #[test]
    fn rejects_names_that_cannot_exist() {
        // (name, what the message says), one line each.
        let cases = [
            ("custom_fields.email", "write \"email\""),
            ("", "field is empty"),
            ("custom_fields.", "field is empty"),
            ("posts generated", "start with a letter"),
            ("1plan", "start with a letter"),
            ("plan-type", "start with a letter"),
        ];
        for (name, says) in cases {
            let message = Field::parse(name).unwrap_err();
            assert!(message.contains(says), "{name:?}: {message}");
        }
        let long = "a".repeat(65);
        assert!(Field::parse(&long).unwrap_err().contains("at most 64"));
        assert!(Field::parse(&"a".repeat(64)).is_ok());
    }
}
