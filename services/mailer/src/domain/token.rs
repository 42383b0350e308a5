//! Unsubscribe tokens (DESIGN §5, §6): signed, url-safe, and revealing nothing about the contact.
//!
//! Format: base64url (no padding) of 33 bytes = version (1) ‖ message UUID (16) ‖ the first 16
//! bytes of HMAC-SHA256(secret, "meisa-unsubscribe" ‖ version ‖ message UUID). 44 characters,
//! which fits a mailto local part (`unsubscribe+{token}@…`, 64 at most) and has no padding bits,
//! so every character change changes the bytes and fails the check.
//!
//! The token names the *message* (a random v7 UUID), not the contact: the mailer looks the
//! message up to learn the workspace and contact. So the link shows neither the contact id nor the
//! address, and stays valid for as long as the message record exists (erasing a contact erases
//! its messages, and with them its links, which is what erasure should do).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ids::MessageId;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = 1 + 16 + TAG_LEN;
const DOMAIN: &[u8] = b"meisa-unsubscribe";

#[derive(Clone)]
pub struct TokenSigner {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(***)")
    }
}

impl TokenSigner {
    /// HMAC takes keys of any length, so this does not fail today; the error is the MAC
    /// crate's, should a key ever be refused.
    pub fn new(secret: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self {
            mac: Hmac::<Sha256>::new_from_slice(secret)?,
        })
    }

    fn tag(&self, version: u8, id: &[u8; 16]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(&[version]);
        mac.update(id);
        mac.finalize().into_bytes().into()
    }

    pub fn sign(&self, message: MessageId) -> String {
        let id = *message.uuid().as_bytes();
        let tag = self.tag(VERSION, &id);
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..17].copy_from_slice(&id);
        raw[17..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The message a token was made for; None for anything that was not made with this secret.
    pub fn verify(&self, token: &str) -> Option<MessageId> {
        if token.len() != 44 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token.as_bytes()).ok()?;
        if raw.len() != RAW_LEN || raw[0] != VERSION {
            return None;
        }
        let id: [u8; 16] = raw[1..17].try_into().ok()?;
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(&[raw[0]]);
        mac.update(&id);
        // Constant-time comparison of the truncated tag.
        mac.verify_truncated_left(&raw[17..]).ok()?;
        Some(MessageId::from_uuid(uuid::Uuid::from_bytes(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(b"test secret that is long enough").unwrap()
    }

    #[test]
    fn tokens_are_url_safe_and_short() {
        let t = signer().sign(MessageId::new());
        assert_eq!(t.len(), 44);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn another_secret_does_not_verify() {
        let id = MessageId::new();
        let t = signer().sign(id);
        assert_eq!(signer().verify(&t), Some(id));
        assert_eq!(TokenSigner::new(b"other").unwrap().verify(&t), None);
        assert_eq!(signer().verify(""), None);
        assert_eq!(signer().verify(&format!("{t}A")), None);
    }

    proptest! {
        #[test]
        fn round_trips(bytes in any::<[u8; 16]>()) {
            let id = MessageId::from_uuid(uuid::Uuid::from_bytes(bytes));
            let s = signer();
            prop_assert_eq!(s.verify(&s.sign(id)), Some(id));
        }

        #[test]
        fn any_single_byte_tamper_is_rejected(bytes in any::<[u8; 16]>(), pos in 0usize..44, replacement in any::<u8>()) {
            let id = MessageId::from_uuid(uuid::Uuid::from_bytes(bytes));
            let s = signer();
            let token = s.sign(id);
            let mut tampered = token.clone().into_bytes();
            prop_assume!(tampered[pos] != replacement);
            tampered[pos] = replacement;
            let tampered = String::from_utf8_lossy(&tampered).into_owned();
            prop_assert_eq!(s.verify(&tampered), None);
        }

        #[test]
        fn any_single_raw_byte_tamper_is_rejected(bytes in any::<[u8; 16]>(), pos in 0usize..RAW_LEN, flip in 1u8..=255) {
            let id = MessageId::from_uuid(uuid::Uuid::from_bytes(bytes));
            let s = signer();
            let mut raw = URL_SAFE_NO_PAD.decode(s.sign(id)).unwrap();
            raw[pos] ^= flip;
            prop_assert_eq!(s.verify(&URL_SAFE_NO_PAD.encode(raw)), None);
        }
    }
}
