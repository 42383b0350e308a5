//! Fields: the built-ins of DESIGN §2, the rule for custom field names, and field types.

use std::fmt;

crate::spelled! {
    /// The type a workspace fixes for a custom field the first time it sees it (DESIGN §2),
    /// spelled as the API and storage write it.
    pub enum FieldType {
        String = "string",
        Number = "number",
        Boolean = "boolean",
        Date = "date",
    }
}

/// The built-in fields of every contact. Their names are never custom field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltIn {
    Email,
    FirstName,
    LastName,
    ExternalId,
    Subscribed,
    Tags,
    CreatedAt,
    UpdatedAt,
}

impl BuiltIn {
    pub const ALL: [BuiltIn; 8] = [
        Self::Email,
        Self::FirstName,
        Self::LastName,
        Self::ExternalId,
        Self::Subscribed,
        Self::Tags,
        Self::CreatedAt,
        Self::UpdatedAt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::ExternalId => "external_id",
            Self::Subscribed => "subscribed",
            Self::Tags => "tags",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The scalar type the field holds; `None` for `tags`, a set of strings.
    pub fn field_type(self) -> Option<FieldType> {
        match self {
            Self::Email | Self::FirstName | Self::LastName | Self::ExternalId => {
                Some(FieldType::String)
            }
            Self::Subscribed => Some(FieldType::Boolean),
            Self::CreatedAt | Self::UpdatedAt => Some(FieldType::Date),
            Self::Tags => None,
        }
    }

    /// "email, first_name, …": for messages that list what can be named.
    pub fn list() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for BuiltIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Custom fields are addressed as `custom_fields.<name>` in paths and templates.
pub const CUSTOM_PREFIX: &str = "custom_fields.";
pub const MAX_FIELD_NAME_LEN: usize = 64;

/// Why a name cannot be a custom field's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldNameError {
    #[error("field names cannot be empty")]
    Empty,
    #[error("field names start with a letter followed by letters, digits or _")]
    Syntax,
    #[error("field names are at most {MAX_FIELD_NAME_LEN} characters")]
    TooLong,
    #[error("{0} is a built-in field, not a custom field")]
    BuiltIn(BuiltIn),
}

/// A custom field name (DESIGN §2): a letter, then letters, digits or `_`, at most 64, and not
/// the name of a built-in field.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldName(String);

impl FieldName {
    pub fn parse(name: &str) -> Result<Self, FieldNameError> {
        let mut chars = name.chars();
        match chars.next() {
            None => return Err(FieldNameError::Empty),
            Some(c) if !c.is_ascii_alphabetic() => return Err(FieldNameError::Syntax),
            Some(_) => {}
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(FieldNameError::Syntax);
        }
        if name.len() > MAX_FIELD_NAME_LEN {
            return Err(FieldNameError::TooLong);
        }
        if let Some(b) = BuiltIn::parse(name) {
            return Err(FieldNameError::BuiltIn(b));
        }
        Ok(Self(name.to_string()))
    }

    /// `custom_fields.<name>`: the field's path in the API.
    pub fn path(&self) -> String {
        format!("{CUSTOM_PREFIX}{}", self.0)
    }
}

crate::text_newtype!(FieldName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(FieldName::parse("plan").is_ok());
        assert!(FieldName::parse("posts_generated2").is_ok());
        assert_eq!(FieldName::parse(""), Err(FieldNameError::Empty));
        for bad in ["2fast", "_x", "has-dash", "has space", "é"] {
            assert_eq!(FieldName::parse(bad), Err(FieldNameError::Syntax), "{bad}");
        }
        assert_eq!(
            FieldName::parse("email"),
            Err(FieldNameError::BuiltIn(BuiltIn::Email))
        );
        assert!(FieldName::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            FieldName::parse(&"a".repeat(65)),
            Err(FieldNameError::TooLong)
        );
    }

    #[test]
    fn every_built_in_has_one_name_and_type_spellings_round_trip() {
        for b in BuiltIn::ALL {
            assert_eq!(BuiltIn::parse(b.name()), Some(b));
        }
        for t in FieldType::ALL {
            assert_eq!(FieldType::parse(t.as_str()), Some(t));
        }
        assert_eq!(BuiltIn::Tags.field_type(), None);
    }
}
