//! Reentry (DESIGN §3): whether an automation may fire again for a contact it fired for before.

use chrono::{DateTime, Utc};
use meisa_conditions::Duration;

use super::json::{DefinitionError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reentry {
    /// At most once per contact, ever (the default).
    Once,
    Always,
    /// Not again within this long of the last firing.
    After(Duration),
}

impl Reentry {
    /// `None` (key absent or empty) is `once`.
    pub fn parse(s: Option<&str>, path: &str) -> Result<Self> {
        const HOW: &str = "use \"once\", \"always\" or \"after:<duration>\" (e.g. \"after:30d\")";
        match s.map(str::trim) {
            None | Some("") | Some("once") => Ok(Self::Once),
            Some("always") => Ok(Self::Always),
            Some(other) => match other.strip_prefix("after:") {
                Some(d) => Duration::parse(d.trim())
                    .map(Self::After)
                    .map_err(|e| DefinitionError::new(path, format!("{e}; {HOW}"))),
                None => Err(DefinitionError::new(
                    path,
                    format!("unknown reentry {other:?}; {HOW}"),
                )),
            },
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Self::Once => "once".into(),
            Self::Always => "always".into(),
            Self::After(d) => format!("after:{d}"),
        }
    }

    /// Whether the automation may fire at `now` for a contact it last fired for at `last`
    /// (`None`: never).
    pub fn allows(&self, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        match (self, last) {
            (_, None) | (Self::Always, _) => true,
            (Self::Once, Some(_)) => false,
            (Self::After(d), Some(t)) => now - t >= d.to_chrono(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn parses_the_three_forms_and_names_the_path() {
        assert_eq!(Reentry::parse(None, "reentry"), Ok(Reentry::Once));
        assert_eq!(Reentry::parse(Some(""), "reentry"), Ok(Reentry::Once));
        assert_eq!(
            Reentry::parse(Some("always"), "reentry"),
            Ok(Reentry::Always)
        );
        let r = Reentry::parse(Some("after:30d"), "reentry").unwrap();
        assert_eq!(r.as_string(), "after:30d");
        let e = Reentry::parse(Some("after:3w"), "reentry").unwrap_err();
        assert_eq!(e.path, "reentry");
        assert!(e.message.contains("s, m, h"), "{e}");
        let e = Reentry::parse(Some("twice"), "reentry").unwrap_err();
        assert!(e.message.contains("unknown reentry \"twice\""), "{e}");
    }

    #[test]
    fn once_always_and_after() {
        let now = Utc::now();
        let hour_ago = now - TimeDelta::hours(1);
        assert!(Reentry::Once.allows(None, now));
        assert!(!Reentry::Once.allows(Some(hour_ago), now));
        assert!(Reentry::Always.allows(Some(now), now));
        let after_2h = Reentry::parse(Some("after:2h"), "reentry").unwrap();
        assert!(after_2h.allows(None, now));
        assert!(!after_2h.allows(Some(hour_ago), now));
        assert!(after_2h.allows(Some(now - TimeDelta::hours(2)), now));
        assert!(after_2h.allows(Some(now - TimeDelta::days(1)), now));
    }
}
