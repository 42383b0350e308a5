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

/// A list request's page as a server serves it: the limit it will serve and the cursor to start
/// after (none on the first page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Page {
    pub fn of(request: Option<&meisa_proto::common::PageRequest>) -> Self {
        Self {
            limit: limit(request.map_or(0, |p| p.limit)),
            cursor: request
                .map(|p| p.cursor.trim().to_string())
                .filter(|c| !c.is_empty()),
        }
    }

    /// The SQL `LIMIT`: one row more than served, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        limit_plus_one(self.limit)
    }

    /// Cuts `rows` (fetched with [`Page::fetch`]) to the page, and answers the next page's
    /// cursor: `cursor_of` the last row served when a row was left over, "" on the last page.
    pub fn serve<T>(&self, mut rows: Vec<T>, cursor_of: impl Fn(&T) -> String) -> (Vec<T>, String) {
        // At most MAX_PAGE: it fits a usize on every target this builds for.
        let keep = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if rows.len() <= keep {
            return (rows, String::new());
        }
        rows.truncate(keep);
        let next = rows.last().map(cursor_of).unwrap_or_default();
        (rows, next)
    }
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

    #[test]
    fn a_page_with_a_row_left_over_has_a_next_cursor() {
        let request = meisa_proto::common::PageRequest {
            limit: 3,
            cursor: " ct_1 ".into(),
        };
        let page = Page::of(Some(&request));
        assert_eq!(page.cursor.as_deref(), Some("ct_1"));
        assert_eq!(page.fetch(), 4);
        let (rows, next) = page.serve((1..=4).collect(), u32::to_string);
        assert_eq!((rows, next.as_str()), (vec![1, 2, 3], "3"));
        let (rows, next) = page.serve((1..=3).collect(), u32::to_string);
        assert_eq!((rows.len(), next.as_str()), (3, ""));
        assert_eq!(Page::of(None).limit, DEFAULT_PAGE);
        assert_eq!(Page::of(None).cursor, None);
    }
}
