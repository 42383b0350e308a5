//! Dates as DESIGN §2 accepts them: RFC 3339 or `YYYY-MM-DD` (midnight UTC). The contacts
//! service fixes a field as a date with this rule and conditions read dates with it, so a value
//! that made a field a date is a date everywhere.

use chrono::{DateTime, NaiveDate, Utc};

pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // The length check keeps chrono from accepting `2026-1-5` or `+2026-01-05`.
    if s.len() != 10 {
        return None;
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

pub fn is_date(s: &str) -> bool {
    parse_date(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc3339_and_calendar_dates() {
        let t = parse_date("2026-11-20T10:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-20T08:00:00+00:00");
        let d = parse_date("2026-11-20").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-20T00:00:00+00:00");
        assert!(parse_date("2026-11-20 10:00").is_none());
        assert!(parse_date("2026-1-5").is_none());
        assert!(parse_date("2026-13-40").is_none());
        assert!(parse_date("soon").is_none());
        assert!(parse_date("").is_none());
    }
}
