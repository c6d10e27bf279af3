//! Sealing a reporter's contact under the reporter's data key, with the case and the
//! reporter handle as associated data (a sealed value cannot be moved to another case or
//! reporter unnoticed). This release writes format 3 (AES-256-GCM over the contact as two
//! length-prefixed fields, stored compactly in base64url) and still opens format 2 (the same
//! fields under XChaCha20-Poly1305) and format 1 (XChaCha20-Poly1305 over the contact's
//! JSON, in hex). docs/design.md, "The sealed contact".

use aes_gcm::Aes256Gcm;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caseflow_domain::{CaseId, ProtectedContact, ReporterHandle, SealedContact};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use zeroize::Zeroizing;

use super::error::KeyError;
use super::master::{DataKey, NONCE_BYTES};
use crate::ids::{IdGenerator, Secret};

/// The sealed-contact format this release writes.
pub const SEAL_FORMAT: u32 = 3;

/// Bytes of an AES-GCM nonce (format 3). Random 96-bit nonces are safe here by a wide
/// margin: a data key seals the contacts of one reporter only, a handful of messages, where
/// the limit for random nonces under one key is 2^32.
const GCM_NONCE_BYTES: usize = 12;

/// The authentication tag appended to a ciphertext (Poly1305's or GCM's, 16 bytes either way).
const TAG_BYTES: usize = 16;

/// The first format: the contact's JSON, hex, a textual associated data.
const FORMAT_1: u32 = 1;
/// The second format: the fields under XChaCha20-Poly1305 (read, no longer written).
const FORMAT_2: u32 = 2;

fn associated_data_v1(case_id: CaseId, reporter: ReporterHandle) -> Vec<u8> {
    format!("caseflow reporter contact v1|{case_id}|{reporter}").into_bytes()
}

/// The associated data of formats 2 and 3: a label naming the format, then the case's and
/// the reporter's 16 bytes.
fn associated_data(label: &[u8; 28], case_id: CaseId, reporter: ReporterHandle) -> [u8; 60] {
    let mut aad = [0u8; 60];
    aad[..28].copy_from_slice(label);
    aad[28..44].copy_from_slice(case_id.as_uuid().as_bytes());
    aad[44..].copy_from_slice(reporter.0.as_bytes());
    aad
}

const LABEL_V2: &[u8; 28] = b"caseflow reporter contact v2";
const LABEL_V3: &[u8; 28] = b"caseflow reporter contact v3";

/// Encrypts a contact for one case of one reporter (format 3).
pub fn seal(
    contact: &ProtectedContact,
    key_id: &str,
    key: &DataKey,
    case_id: CaseId,
    reporter: ReporterHandle,
    ids: &dyn IdGenerator,
) -> Result<SealedContact, KeyError> {
    let mut nonce = [0u8; GCM_NONCE_BYTES];
    ids.fill_secret(Secret::Nonce, &mut nonce);
    // nonce ‖ clear text in one buffer, encrypted in place and the tag appended: one
    // allocation where encrypt's own ciphertext and a copy behind the nonce took two. The
    // buffer holds the clear text until it is encrypted, so it is zeroised when dropped.
    let mut sealed = Zeroizing::new(Vec::with_capacity(
        GCM_NONCE_BYTES + clear_len(contact) + TAG_BYTES,
    ));
    sealed.extend_from_slice(&nonce);
    encode_fields_into(contact, &mut sealed);
    let cipher = Aes256Gcm::new(key.bytes.as_ref().into());
    let tag = cipher
        .encrypt_in_place_detached(
            aes_gcm::Nonce::from_slice(&nonce),
            &associated_data(LABEL_V3, case_id, reporter),
            &mut sealed[GCM_NONCE_BYTES..],
        )
        .map_err(|_| KeyError::Crypto("sealing a contact"))?;
    sealed.extend_from_slice(&tag);
    Ok(SealedContact {
        format: SEAL_FORMAT,
        key_id: key_id.to_owned(),
        nonce: String::new(),
        ciphertext: URL_SAFE_NO_PAD.encode(sealed.as_slice()),
    })
}

/// Decrypts a sealed contact of any format; an error when the key is not its key or the
/// bytes changed.
pub fn open(
    sealed: &SealedContact,
    key: &DataKey,
    case_id: CaseId,
    reporter: ReporterHandle,
) -> Result<ProtectedContact, KeyError> {
    let unreadable = || KeyError::ContactUnreadable { case_id };
    match sealed.format {
        FORMAT_1 => {
            let cipher = XChaCha20Poly1305::new(key.bytes.as_ref().into());
            let nonce = hex::decode(&sealed.nonce).map_err(|_| unreadable())?;
            let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| unreadable())?;
            if nonce.len() != NONCE_BYTES {
                return Err(unreadable());
            }
            let aad = associated_data_v1(case_id, reporter);
            let clear = decrypt(&cipher, &nonce, &ciphertext, &aad).ok_or_else(unreadable)?;
            serde_json::from_slice(&clear).map_err(|_| unreadable())
        }
        FORMAT_2 => {
            let cipher = XChaCha20Poly1305::new(key.bytes.as_ref().into());
            let bytes = compact_bytes(sealed, NONCE_BYTES).ok_or_else(unreadable)?;
            let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
            let aad = associated_data(LABEL_V2, case_id, reporter);
            let clear = decrypt(&cipher, nonce, ciphertext, &aad).ok_or_else(unreadable)?;
            decode_fields(&clear).ok_or_else(unreadable)
        }
        SEAL_FORMAT => {
            let cipher = Aes256Gcm::new(key.bytes.as_ref().into());
            let bytes = compact_bytes(sealed, GCM_NONCE_BYTES).ok_or_else(unreadable)?;
            let (nonce, ciphertext) = bytes.split_at(GCM_NONCE_BYTES);
            let aad = associated_data(LABEL_V3, case_id, reporter);
            let clear = decrypt(&cipher, nonce, ciphertext, &aad).ok_or_else(unreadable)?;
            decode_fields(&clear).ok_or_else(unreadable)
        }
        _ => Err(unreadable()),
    }
}

/// The bytes of a compact sealed value (nonce ‖ ciphertext ‖ tag), if it is one and holds
/// at least a nonce of `nonce_bytes`.
fn compact_bytes(sealed: &SealedContact, nonce_bytes: usize) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(&sealed.ciphertext).ok()?;
    (sealed.nonce.is_empty() && bytes.len() >= nonce_bytes).then_some(bytes)
}

/// Opens `ciphertext` (with its tag) under any of the formats' AEADs; `None` when it does
/// not authenticate. The clear text is wiped when dropped.
fn decrypt<C: Aead>(
    cipher: &C,
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    cipher
        .decrypt(
            chacha20poly1305::aead::Nonce::<C>::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Format 2's clear text: the name, then the phone, each as a LEB128 length and UTF-8,
/// appended to `out`.
fn encode_fields_into(contact: &ProtectedContact, out: &mut Vec<u8>) {
    for field in [contact.expose_name(), contact.expose_phone()] {
        put_length(out, field.len());
        out.extend_from_slice(field.as_bytes());
    }
}

/// Room for format 2's clear text: enough for fields under 16 KiB (a length prefix of two
/// bytes at most each); a longer field's prefix grows the buffer.
fn clear_len(contact: &ProtectedContact) -> usize {
    contact.expose_name().len() + contact.expose_phone().len() + 4
}

fn put_length(out: &mut Vec<u8>, mut length: usize) {
    loop {
        let low = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn decode_fields(mut clear: &[u8]) -> Option<ProtectedContact> {
    let name = take_field(&mut clear)?;
    let phone = take_field(&mut clear)?;
    clear.is_empty().then(|| ProtectedContact::new(name, phone))
}

fn take_field<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let mut length = 0usize;
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        length |= usize::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift >= usize::BITS {
            return None;
        }
    }
    if length > input.len() {
        return None;
    }
    let (field, rest) = input.split_at(length);
    *input = rest;
    std::str::from_utf8(field).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RandomIds;
    use caseflow_domain::Reporter;
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes([byte; 32])
    }

    #[test]
    fn a_sealed_contact_opens_only_with_its_key_case_and_reporter() {
        let contact = ProtectedContact::new("王某", "13800000000");
        let case = CaseId::new(Uuid::from_u128(1));
        let reporter = ReporterHandle(Uuid::from_u128(2));
        let sealed = seal(&contact, "dk-1", &key(1), case, reporter, &RandomIds).expect("seals");
        assert_eq!(sealed.format, SEAL_FORMAT);
        assert!(!sealed.ciphertext.contains("13800000000"));
        assert_eq!(
            open(&sealed, &key(1), case, reporter).expect("opens"),
            contact
        );
        assert!(open(&sealed, &key(2), case, reporter).is_err());
        let other_case = CaseId::new(Uuid::from_u128(3));
        assert!(open(&sealed, &key(1), other_case, reporter).is_err());
        let other_reporter = ReporterHandle(Uuid::from_u128(4));
        assert!(open(&sealed, &key(1), case, other_reporter).is_err());
        let mut altered = sealed.clone();
        let flipped = if altered.ciphertext.starts_with('A') {
            "B"
        } else {
            "A"
        };
        altered.ciphertext.replace_range(0..1, flipped);
        assert!(open(&altered, &key(1), case, reporter).is_err());
    }

    #[test]
    fn long_and_empty_fields_round_trip() {
        let case = CaseId::new(Uuid::from_u128(1));
        let reporter = ReporterHandle(Uuid::from_u128(2));
        for contact in [
            ProtectedContact::new("", ""),
            ProtectedContact::new("名".repeat(300), "1".repeat(20_000)),
        ] {
            let sealed = seal(&contact, "k", &key(1), case, reporter, &RandomIds).expect("seals");
            assert_eq!(
                open(&sealed, &key(1), case, reporter).expect("opens"),
                contact
            );
        }
    }

    #[test]
    fn clear_text_that_is_not_two_fields_is_refused() {
        assert!(decode_fields(&[3, b'a']).is_none());
        assert!(decode_fields(&[1, b'a', 1, b'b', 0]).is_none());
        assert!(decode_fields(&[0xff; 12]).is_none());
        assert!(decode_fields(&[1, 0xff, 0]).is_none());
    }

    /// Stored sealed contacts, made outside this crate (an independent XChaCha20-Poly1305:
    /// HChaCha20 in Python over `cryptography`'s ChaCha20-Poly1305) with the data key
    /// `[7; 32]`, the nonce 0x40..0x57, case 0x11 and reporter 0x22. A change that stops
    /// them opening breaks every store already written.
    const GOLDEN_FORMAT_1: &str = r#"{"type":"sealed","contact":{"format":1,"key_id":"dk-golden","nonce":"404142434445464748494a4b4c4d4e4f5051525354555657","ciphertext":"3f0c5e760911980bc86513045023608ee774818ab527145d5446d3d05cedd4a02642283111ce70129f540bc86a07f0e8ce4cc29120551e6acd331ab4"}}"#;
    const GOLDEN_FORMAT_2: &str = r#"{"type":"sealed","contact":"2.kgolden.QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXTcm-nILrKtd1EpC-hYTdWEjUk4unZ0wCdAfheAFdpaXp3pMEKKQUDg"}"#;
    /// Format 3, made outside this crate with Python `cryptography`'s AESGCM: key `[7; 32]`,
    /// nonce 0x40..0x4b, associated data `caseflow reporter contact v3` ‖ case ‖ reporter.
    const GOLDEN_FORMAT_3: &str = r#"{"type":"sealed","contact":"3.kgolden.QEFCQ0RFRkdISUpLpDdKQbevayipHcur_kLWpQNqb1qO53lNXQODJ6p4EkxS642kOSQ8Lg"}"#;

    fn golden_case() -> (CaseId, ReporterHandle) {
        (
            CaseId::new(Uuid::from_u128(0x11)),
            ReporterHandle(Uuid::from_u128(0x22)),
        )
    }

    fn sealed_of(json: &str) -> SealedContact {
        match serde_json::from_str::<Reporter>(json).expect("decodes") {
            Reporter::Sealed(sealed) => sealed,
            other => panic!("not sealed: {other:?}"),
        }
    }

    #[test]
    fn golden_sealed_contacts_of_every_format_open_and_re_serialise_unchanged() {
        let (case, reporter) = golden_case();
        let expected = ProtectedContact::new("王某某", "138-0000-0000");
        for (json, format) in [
            (GOLDEN_FORMAT_1, 1),
            (GOLDEN_FORMAT_2, 2),
            (GOLDEN_FORMAT_3, 3),
        ] {
            let sealed = sealed_of(json);
            assert_eq!(sealed.format, format);
            assert_eq!(
                open(&sealed, &key(7), case, reporter).expect("opens"),
                expected
            );
            let again = serde_json::to_string(&Reporter::Sealed(sealed)).expect("encodes");
            assert_eq!(again, json);
        }
    }

    /// Nonces 0x40, 0x41, … (the golden fixtures' nonce), for a byte-exact seal.
    #[derive(Debug)]
    struct CountingNonce;

    impl IdGenerator for CountingNonce {
        fn next_id(&self, _now: DateTime<Utc>) -> Uuid {
            Uuid::nil()
        }
        fn next_u64(&self) -> u64 {
            0
        }
        fn fill_secret(&self, _kind: Secret, out: &mut [u8]) {
            for (byte, value) in out.iter_mut().zip(0x40u8..) {
                *byte = value;
            }
        }
    }

    #[test]
    fn this_release_seals_exactly_the_golden_format_3() {
        let (case, reporter) = golden_case();
        let contact = ProtectedContact::new("王某某", "138-0000-0000");
        let sealed =
            seal(&contact, "kgolden", &key(7), case, reporter, &CountingNonce).expect("seals");
        assert_eq!(sealed, sealed_of(GOLDEN_FORMAT_3));
    }
}
