//! The fields a condition can name: the built-ins of DESIGN §2 and custom fields.

use std::fmt;

/// The type a workspace has fixed for a custom field (DESIGN §2), as the field registry reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    String,
    Number,
    Boolean,
    Date,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
        }
    }

    /// The registry's spelling (`"string"`, `"number"`, `"boolean"`, `"date"`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "string" => Some(Self::String),
            "number" => Some(Self::Number),
            "boolean" => Some(Self::Boolean),
            "date" => Some(Self::Date),
            _ => None,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field named by a leaf. Built-in names always mean the built-in field; anything else is a
/// custom field, held by its bare name (`custom_fields.plan` is read as `plan`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Email,
    FirstName,
    LastName,
    ExternalId,
    Subscribed,
    Tags,
    CreatedAt,
    UpdatedAt,
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

const PREFIX: &str = "custom_fields.";
const MAX_NAME_LEN: usize = 64;

impl Field {
    pub const BUILT_IN: [Field; 8] = [
        Field::Email,
        Field::FirstName,
        Field::LastName,
        Field::ExternalId,
        Field::Subscribed,
        Field::Tags,
        Field::CreatedAt,
        Field::UpdatedAt,
    ];

    /// Reads a field name as a leaf writes it. The error is a message for the `.field` path.
    pub fn parse(name: &str) -> Result<Self, String> {
        if let Some(custom) = name.strip_prefix(PREFIX) {
            if let Some(builtin) = Self::built_in(custom) {
                return Err(format!(
                    "{custom} is a built-in field, not a custom field; write \"{}\"",
                    builtin.name()
                ));
            }
            return Self::custom(custom);
        }
        match Self::built_in(name) {
            Some(b) => Ok(b),
            None => Self::custom(name),
        }
    }

    fn built_in(name: &str) -> Option<Self> {
        Self::BUILT_IN.into_iter().find(|f| f.name() == name)
    }

    /// The rule of DESIGN §2 for custom field names: a name that breaks it can never be sent,
    /// so a leaf naming it is a typo (a space, a dash) that would otherwise never match.
    fn custom(name: &str) -> Result<Self, String> {
        let mut chars = name.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if name.is_empty() {
            return Err(
                "field is empty; name a built-in field (email, first_name, last_name, external_id, subscribed, tags, created_at, updated_at) or a custom field".into(),
            );
        }
        if !starts_with_letter || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{name:?} is not a field name; custom field names start with a letter followed by letters, digits or _"
            ));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(format!("field names are at most {MAX_NAME_LEN} characters"));
        }
        Ok(Self::Custom(name.to_string()))
    }

    /// The canonical name: what serialization writes and what the dashboard shows.
    pub fn name(&self) -> &str {
        match self {
            Self::Email => "email",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::ExternalId => "external_id",
            Self::Subscribed => "subscribed",
            Self::Tags => "tags",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::Custom(name) => name,
        }
    }

    pub fn is_custom(&self) -> bool {
        matches!(self, Self::Custom(_))
    }

    /// The type of a built-in field; `None` for custom fields, whose type the registry knows.
    pub(crate) fn built_in_kind(&self) -> Option<Kind> {
        Some(match self {
            Self::Email | Self::FirstName | Self::LastName | Self::ExternalId => {
                Kind::Typed(FieldType::String)
            }
            Self::Subscribed => Kind::Typed(FieldType::Boolean),
            Self::CreatedAt | Self::UpdatedAt => Kind::Typed(FieldType::Date),
            Self::Tags => Kind::Tags,
            Self::Custom(_) => return None,
        })
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
        assert_eq!(Field::parse("email"), Ok(Field::Email));
        assert_eq!(Field::parse("tags"), Ok(Field::Tags));
        assert_eq!(Field::parse("plan"), Ok(Field::Custom("plan".into())));
        assert_eq!(
            Field::parse("custom_fields.plan"),
            Ok(Field::Custom("plan".into()))
        );
        for f in Field::BUILT_IN {
            assert_eq!(Field::parse(f.name()), Ok(f.clone()));
        }
    }

    #[test]
    fn rejects_names_that_cannot_exist() {
        assert!(
            Field::parse("custom_fields.email")
                .unwrap_err()
                .contains("write \"email\"")
        );
        assert!(Field::parse("").is_err());
        assert!(Field::parse("custom_fields.").is_err());
        assert!(
            Field::parse("posts generated")
                .unwrap_err()
                .contains("start with a letter")
        );
        assert!(Field::parse("1plan").is_err());
        assert!(Field::parse("plan-type").is_err());
        assert!(
            Field::parse(&"a".repeat(65))
                .unwrap_err()
                .contains("at most 64")
        );
        assert!(Field::parse(&"a".repeat(64)).is_ok());
    }
}
