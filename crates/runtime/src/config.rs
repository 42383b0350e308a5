//! Configuration is environment only (DESIGN §7). Every failure names the variable and says how to
//! fix it, so a service that cannot start tells the operator exactly why.

use std::{fmt::Display, str::FromStr, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing { name: String, hint: String },
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// A required variable; `hint` tells the operator what to put there.
pub fn required(name: &str, hint: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing {
            name: name.into(),
            hint: hint.into(),
        }),
    }
}

pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An optional variable parsed with `FromStr`, falling back to `default`.
pub fn parsed<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match optional(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name: name.into(),
            value: v,
            reason: e.to_string(),
        }),
    }
}

/// Durations as the product writes them everywhere: an integer and a unit (`500ms`, `30s`, `15m`,
/// `2h`, `7d`).
pub fn duration(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match optional(name) {
        None => Ok(default),
        Some(v) => parse_duration(&v).map_err(|reason| ConfigError::Invalid {
            name: name.into(),
            value: v,
            reason,
        }),
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit; write e.g. 30s, 15m, 2h or 7d"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} must start with a whole number, e.g. 30s"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unit {unit:?} is not one of ms, s, m, h, d")),
    };
    Ok(Duration::from_secs(secs))
}

/// `{POD_NAME or HOSTNAME}-{8 random hex}`, for a stream consumer (`MEISA_CONSUMER_NAME` when
/// set): two replicas never share a name, and a restarted process never inherits the pending
/// entries of its previous life under the same name (a reclaimer hands those over once idle).
pub fn consumer_name(service: &str) -> String {
    if let Some(name) = optional("MEISA_CONSUMER_NAME") {
        return name;
    }
    let host = optional("POD_NAME")
        .or_else(|| optional("HOSTNAME"))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| service.into());
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    format!("{host}-{suffix:08x}")
}

/// A secret read from the environment; its `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("3").is_err());
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("s").is_err());
    }
}
