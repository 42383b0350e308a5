//! Durations as the configuration API writes them: an integer and a unit (DESIGN §3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The units DESIGN §3 allows. Milliseconds, weeks or months are deliberately absent: the
/// dashboard and the API speak the same four units, so anything else is a typo to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Minutes => "m",
            Self::Hours => "h",
            Self::Days => "d",
        }
    }

    pub fn seconds(self) -> u64 {
        match self {
            Self::Seconds => 1,
            Self::Minutes => 60,
            Self::Hours => 3_600,
            Self::Days => 86_400,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "s" => Some(Self::Seconds),
            "m" => Some(Self::Minutes),
            "h" => Some(Self::Hours),
            "d" => Some(Self::Days),
            _ => None,
        }
    }
}

/// A duration such as `30s`, `15m`, `2h` or `3d`.
///
/// It keeps the amount and the unit as written, so that `2d` is saved and returned as `2d` and
/// not as `172800s`; compare lengths with [`Duration::as_secs`], not with `==`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Duration {
    amount: u64,
    unit: Unit,
}

/// The longest duration accepted: 100 years. Nothing in lifecycle email waits longer, and the
/// bound keeps every `now ± duration` inside the range chrono can represent.
pub const MAX_SECONDS: u64 = 36_500 * 86_400;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

impl Duration {
    /// Builds a duration; `None` when it is longer than [`MAX_SECONDS`].
    pub fn new(amount: u64, unit: Unit) -> Option<Self> {
        let secs = amount.checked_mul(unit.seconds())?;
        (secs <= MAX_SECONDS).then_some(Self { amount, unit })
    }

    pub fn parse(s: &str) -> Result<Self, DurationError> {
        const HOW: &str = "write an integer and a unit: s, m, h or d (30s, 15m, 2h, 3d)";
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(DurationError(format!("{s:?} is not a duration; {HOW}")));
        }
        if unit.is_empty() {
            return Err(DurationError(format!("{s:?} has no unit; {HOW}")));
        }
        let unit = Unit::parse(unit).ok_or_else(|| {
            DurationError(format!(
                "unit {unit:?} in {s:?} is not one of s, m, h, d; {HOW}"
            ))
        })?;
        // Only ASCII digits are left, so the one way to fail is an amount beyond u64.
        let too_long = || {
            DurationError(format!(
                "{s:?} is too long; durations are at most {}d",
                MAX_SECONDS / 86_400
            ))
        };
        let amount: u64 = digits.parse().map_err(|_| too_long())?;
        Self::new(amount, unit).ok_or_else(too_long)
    }

    pub fn amount(self) -> u64 {
        self.amount
    }

    pub fn unit(self) -> Unit {
        self.unit
    }

    pub fn as_secs(self) -> u64 {
        // Cannot overflow: `new` checked the product.
        self.amount * self.unit.seconds()
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.as_secs())
    }

    pub fn to_chrono(self) -> chrono::TimeDelta {
        // `as_secs` is at most MAX_SECONDS, far inside i64 and TimeDelta's range.
        chrono::TimeDelta::seconds(self.as_secs() as i64)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.as_str())
    }
}

impl FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Serialized as its text (`"2d"`), so a sequence's wait step can hold a `Duration` directly.
impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_units() {
        assert_eq!(Duration::parse("30s").map(Duration::as_secs), Ok(30));
        assert_eq!(Duration::parse("15m").map(Duration::as_secs), Ok(900));
        assert_eq!(Duration::parse("2h").map(Duration::as_secs), Ok(7_200));
        assert_eq!(Duration::parse("3d").map(Duration::as_secs), Ok(259_200));
        assert_eq!(Duration::parse("0s").map(Duration::as_secs), Ok(0));
    }

    #[test]
    fn keeps_the_text_it_was_written_as() {
        let d = Duration::parse("14d").unwrap();
        assert_eq!(d.to_string(), "14d");
        assert_eq!(d.amount(), 14);
        assert_eq!(d.unit(), Unit::Days);
        assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!("14d"));
        let back: Duration = serde_json::from_value(serde_json::json!("14d")).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn rejects_what_is_not_integer_and_unit() {
        for bad in [
            "", "d", "3", "3w", "3ms", "3D", " 3d", "3d ", "3 d", "-3d", "1.5h", "+3d", "3dd",
        ] {
            let err = Duration::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("s, m, h") || err.contains("s, m, h or d"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn rejects_overlong_durations() {
        assert!(Duration::parse("36500d").is_ok());
        assert!(
            Duration::parse("36501d")
                .unwrap_err()
                .to_string()
                .contains("at most 36500d")
        );
        assert!(Duration::parse("99999999999999999999999s").is_err());
        assert!(serde_json::from_value::<Duration>(serde_json::json!("2w")).is_err());
    }
}
