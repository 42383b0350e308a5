//! Page sizes of every list, over gRPC and HTTP alike: a request without a limit gets
//! [`DEFAULT_PAGE`], and none gets more than [`MAX_PAGE`].

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

/// What a server serves for a requested limit (0: none given).
pub fn limit(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// The same as an SQL `LIMIT`, with one row more to learn whether another page follows.
pub fn limit_plus_one(requested: u32) -> i64 {
    i64::from(limit(requested)) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_caps() {
        assert_eq!(limit(0), DEFAULT_PAGE);
        assert_eq!(limit(7), 7);
        assert_eq!(limit(10_000), MAX_PAGE);
        assert_eq!(limit_plus_one(0), 51);
    }
}
