//! A stream entry, decoded once: its `seq` and its event, or why it cannot be read.

use meisa_proto::events::ContactChanged;
use prost::{
    Message,
    encoding::{WireType, encode_key, encode_varint},
};

/// The `ContactChanged` field that carries the shard sequence number.
const SEQ_FIELD: u32 = 12;

/// The event bytes as they go on the stream: the stored event (written without a `seq`, which
/// is assigned at publish time) with its `seq` appended. Protobuf reads the last occurrence of a
/// scalar field, so this is the encoding of the event with `seq` set, made by a copy and a few
/// bytes instead of a decode and an encode.
pub fn with_seq(stored: &[u8], seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + 11);
    out.extend_from_slice(stored);
    encode_key(SEQ_FIELD, WireType::Varint, &mut out);
    encode_varint(seq, &mut out);
    out
}

/// One entry as a consumer group delivered it.
#[derive(Debug)]
pub struct Entry {
    /// The stream id, `{seq}-0`.
    pub id: String,
    pub body: Result<Change, Undecodable>,
}

/// An entry that could be read: the change and the shard sequence number it was published at.
#[derive(Debug)]
pub struct Change {
    pub seq: u64,
    pub event: ContactChanged,
}

/// An entry that cannot be applied, whatever retries: the consumer dead-letters it.
#[derive(Debug)]
pub struct Undecodable {
    pub reason: String,
    /// The `event` field as read, kept for the dead letter.
    pub raw: Option<Vec<u8>>,
}

impl Entry {
    /// `fields` is `None` when the entry was deleted from the stream while pending.
    pub(crate) fn decode(id: String, fields: Option<Vec<(String, Vec<u8>)>>) -> Self {
        let body = match fields {
            None => Err(Undecodable {
                reason: "the entry was deleted from the stream".into(),
                raw: None,
            }),
            Some(fields) => decode_fields(fields),
        };
        Self { id, body }
    }

    pub fn seq(&self) -> Option<u64> {
        self.body.as_ref().ok().map(|c| c.seq)
    }
}

fn decode_fields(fields: Vec<(String, Vec<u8>)>) -> Result<Change, Undecodable> {
    let mut seq = None;
    let mut raw = None;
    for (k, v) in fields {
        match k.as_str() {
            "seq" => seq = Some(v),
            "event" => raw = Some(v),
            _ => {}
        }
    }
    let Some(bytes) = raw else {
        return Err(Undecodable {
            reason: "no `event` field".into(),
            raw: None,
        });
    };
    let seq = seq
        .as_deref()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u64>().ok());
    let Some(seq) = seq else {
        return Err(Undecodable {
            reason: "no valid `seq` field".into(),
            raw: Some(bytes),
        });
    };
    match ContactChanged::decode(bytes.as_slice()) {
        Ok(event) => Ok(Change { seq, event }),
        Err(e) => Err(Undecodable {
            reason: format!("`event` is not a ContactChanged: {e}"),
            raw: Some(bytes),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appended_seq_reads_as_the_event_with_seq_set() {
        let event = ContactChanged {
            event_id: "e1".into(),
            shard: 3,
            version: 7,
            ..Default::default()
        };
        for seq in [1, 300, u64::MAX] {
            let back = ContactChanged::decode(with_seq(&event.encode_to_vec(), seq).as_slice())
                .expect("decodes");
            assert_eq!(
                back,
                ContactChanged {
                    seq,
                    ..event.clone()
                }
            );
        }
    }

    #[test]
    fn entries_decode_once_or_say_why_not() {
        let event = ContactChanged::default().encode_to_vec();
        let ok = Entry::decode(
            "5-0".into(),
            Some(vec![
                ("seq".into(), b"5".to_vec()),
                ("event".into(), event.clone()),
            ]),
        );
        assert_eq!(ok.seq(), Some(5));
        let no_seq = Entry::decode("5-0".into(), Some(vec![("event".into(), event)]));
        assert!(no_seq.body.is_err_and(|u| u.raw.is_some()));
        let garbage = Entry::decode(
            "6-0".into(),
            Some(vec![
                ("seq".into(), b"6".to_vec()),
                ("event".into(), vec![0xff, 0xff]),
            ]),
        );
        assert!(garbage.body.is_err());
        assert!(Entry::decode("7-0".into(), None).body.is_err());
    }
}
