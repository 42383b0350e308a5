//! What a change event (DESIGN §4) asks of the mailer: to erase a deleted contact's data. Every
//! other kind of change is acknowledged without work.

use meisa_proto::events::{ChangeKind, ContactChanged};

#[derive(Debug, PartialEq, Eq)]
pub enum Effect<'a> {
    Erase {
        workspace_id: &'a str,
        contact_id: &'a str,
    },
    Nothing,
}

/// A deletion that does not say whose: nothing can be erased by it, however often it is retried.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a deletion without a {0}: nothing to erase by")]
pub struct NoSubject(&'static str);

impl<'a> Effect<'a> {
    pub fn of(event: &'a ContactChanged) -> Result<Self, NoSubject> {
        if event.kind != ChangeKind::Deleted as i32 {
            return Ok(Effect::Nothing);
        }
        let given = |v: &'a str, name| Some(v).filter(|v| !v.is_empty()).ok_or(NoSubject(name));
        Ok(Effect::Erase {
            workspace_id: given(&event.workspace_id, "workspace_id")?,
            contact_id: given(&event.contact_id, "contact_id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_deletion_erases_and_it_must_name_the_contact() {
        let mut e = ContactChanged {
            workspace_id: "ws_1".into(),
            contact_id: "ct_1".into(),
            kind: ChangeKind::Updated as i32,
            ..Default::default()
        };
        assert_eq!(Effect::of(&e), Ok(Effect::Nothing));
        e.kind = 42;
        assert_eq!(
            Effect::of(&e),
            Ok(Effect::Nothing),
            "a kind from the future"
        );
        e.kind = ChangeKind::Deleted as i32;
        assert_eq!(
            Effect::of(&e),
            Ok(Effect::Erase {
                workspace_id: "ws_1",
                contact_id: "ct_1"
            })
        );
        e.contact_id.clear();
        assert_eq!(Effect::of(&e), Err(NoSubject("contact_id")));
    }
}
