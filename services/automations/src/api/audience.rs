//! Which contacts match a condition tree now: read page by page from contacts and evaluated with
//! the same `meisa-conditions` evaluator the triggers use, so the dashboard's filter and audience
//! preview agree with what an automation would do. Each call reads at most `max_scan` contacts;
//! the answer says where to resume.

use chrono::Utc;
use meisa_conditions::{Condition, evaluate};
use meisa_proto::common::Contact;
use tonic::Status;

use crate::{clients::Contacts, domain::event::state_from_contact};

pub const DEFAULT_MATCHES: u32 = 50;
pub const MAX_MATCHES: u32 = 500;
pub const MAX_SCAN: u32 = 20_000;
/// Contacts read per call to the contacts service.
const PAGE: u32 = 500;

pub struct Scan {
    pub contacts: Vec<Contact>,
    pub next_cursor: String,
    pub matched: u64,
    pub scanned: u64,
}

pub async fn scan(
    contacts: &Contacts,
    workspace_id: &str,
    condition: &Condition,
    mut cursor: String,
    want: u32,
    count_all: bool,
    max_scan: u32,
) -> Result<Scan, Status> {
    let now = Utc::now();
    let mut found = Scan {
        contacts: Vec::new(),
        next_cursor: String::new(),
        matched: 0,
        scanned: 0,
    };
    loop {
        let room = u64::from(max_scan).saturating_sub(found.scanned);
        if room == 0 {
            found.next_cursor = cursor;
            return Ok(found);
        }
        let limit = PAGE.min(u32::try_from(room).unwrap_or(PAGE));
        let (page, next) = contacts.list(workspace_id, &cursor, limit).await?;
        for contact in page {
            found.scanned += 1;
            // A contact whose stored state cannot be read matches nothing, as in the triggers.
            let holds = state_from_contact(&contact)
                .map(|state| evaluate(condition, &state, now))
                .unwrap_or(false);
            if holds {
                found.matched += 1;
                if found.contacts.len() < want as usize {
                    found.contacts.push(contact);
                } else if !count_all {
                    // Enough for this page: the next one starts after the last match returned.
                    found.matched -= 1;
                    found.next_cursor = found
                        .contacts
                        .last()
                        .map_or_else(String::new, |c| c.id.clone());
                    return Ok(found);
                }
            }
        }
        if next.is_empty() {
            return Ok(found);
        }
        cursor = next;
    }
}
