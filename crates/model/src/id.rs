//! Prefixed ids (DESIGN §3): `prefix_` and a UUIDv7 in 32 hex digits. Unique without
//! coordination, ordered by creation time (so cursor pagination by id lists newest first), and a
//! leaked id says what it names.

use uuid::Uuid;

pub fn new(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// The UUID of `s` when it is `prefix_` and the canonical 32 lower-case hex digits: one id, one
/// spelling. Anything else (another prefix, a NUL, a space) cannot name anything.
pub fn parse(prefix: &str, s: &str) -> Option<Uuid> {
    let rest = s.strip_prefix(prefix)?.strip_prefix('_')?;
    if rest.len() != 32 || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Uuid::try_parse(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_parse_and_others_do_not() {
        let id = new("ct");
        assert!(id.starts_with("ct_"));
        assert!(parse("ct", &id).is_some());
        assert!(parse("tpl", &id).is_none());
        assert!(parse("ct", "ct_\0").is_none());
        assert!(parse("ct", &id.to_uppercase()).is_none());
        assert!(parse("ct", &format!("{id}0")).is_none());
    }
}
