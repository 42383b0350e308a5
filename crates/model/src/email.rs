//! Email addresses: one rule set for every address Meisa stores, compares or mails (DESIGN §2):
//! trimmed, lower-cased (addresses compare case-insensitively), at most 254 bytes, a plain
//! `local@domain` with a dotted domain: no display name, no `[IP]` literal.

pub const MAX_EMAIL_BYTES: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is required")]
    Empty,
    #[error("at most {MAX_EMAIL_BYTES} bytes, got {0}")]
    TooLong(usize),
    /// `shown` is the input cut to 80 characters; `reason` what the syntax check said.
    #[error("{shown:?} is not a valid email address ({reason})")]
    Invalid { shown: String, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > MAX_EMAIL_BYTES {
            return Err(EmailError::TooLong(s.len()));
        }
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_display_text: false,
            allow_domain_literal: false,
            ..Default::default()
        };
        email_address::EmailAddress::parse_with_options(&s, options).map_err(|e| {
            EmailError::Invalid {
                shown: raw.chars().take(80).collect(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self(s))
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
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

crate::text_newtype!(EmailAddress);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_lowercases_and_masks() {
        let e = EmailAddress::parse("  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "jane.doe@example.com");
        assert_eq!(e.domain(), "example.com");
        assert_eq!(e.masked(), "j***@example.com");
    }

    #[test]
    fn refuses_what_cannot_be_mailed() {
        assert_eq!(EmailAddress::parse("  "), Err(EmailError::Empty));
        for bad in [
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "Jane <j@x.com>",
            "j@[127.0.0.1]",
        ] {
            assert!(
                matches!(EmailAddress::parse(bad), Err(EmailError::Invalid { .. })),
                "{bad}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(matches!(
            EmailAddress::parse(&long),
            Err(EmailError::TooLong(262))
        ));
    }
}
