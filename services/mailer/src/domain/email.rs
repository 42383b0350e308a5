//! Addresses as the mailer handles them: trimmed, lower-cased (DESIGN §2 compares email
//! case-insensitively), syntax-checked and at most 254 bytes.

use std::{fmt, str::FromStr};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 254 bytes")]
    TooLong,
    #[error("{0:?} is not a valid email address")]
    Invalid(String),
}

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, EmailError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let lower = s.to_lowercase();
        email_address::EmailAddress::from_str(&lower)
            .map_err(|_| EmailError::Invalid(s.chars().take(80).collect()))?;
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// "j***@example.com": enough for a person to recognise their address on a page, not enough
    /// to harvest it.
    pub fn masked(&self) -> String {
        match self.0.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        }
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lowercases_and_masks() {
        let e = EmailAddress::parse("  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "jane.doe@example.com");
        assert_eq!(e.domain(), "example.com");
        assert_eq!(e.masked(), "j***@example.com");
        assert_eq!(EmailAddress::parse(""), Err(EmailError::Empty));
        assert!(EmailAddress::parse("not an email").is_err());
        assert!(EmailAddress::parse(&format!("{}@x.test", "a".repeat(260))).is_err());
    }
}
