//! Sealing a reporter's contact: XChaCha20-Poly1305 under the reporter's data key, over the
//! contact's JSON, with the case and the reporter handle as associated data (a sealed value
//! cannot be moved to another case or reporter unnoticed). Format 1; docs/design.md.

use caseflow_domain::{CaseId, ProtectedContact, ReporterHandle, SealedContact};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::error::KeyError;
use super::master::{DataKey, NONCE_BYTES};
use crate::ids::{IdGenerator, Secret};

/// The sealed-contact format this release writes.
pub const SEAL_FORMAT: u32 = 1;

fn associated_data(case_id: CaseId, reporter: ReporterHandle) -> Vec<u8> {
    format!("caseflow reporter contact v{SEAL_FORMAT}|{case_id}|{reporter}").into_bytes()
}

/// Encrypts a contact for one case of one reporter.
pub fn seal(
    contact: &ProtectedContact,
    key_id: &str,
    key: &DataKey,
    case_id: CaseId,
    reporter: ReporterHandle,
    ids: &dyn IdGenerator,
) -> Result<SealedContact, KeyError> {
    let clear = Zeroizing::new(
        serde_json::to_vec(contact).map_err(|_| KeyError::Crypto("serialising a contact"))?,
    );
    let mut nonce = [0u8; NONCE_BYTES];
    ids.fill_secret(Secret::Nonce, &mut nonce);
    let cipher = XChaCha20Poly1305::new(key.bytes.as_ref().into());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &clear,
                aad: &associated_data(case_id, reporter),
            },
        )
        .map_err(|_| KeyError::Crypto("sealing a contact"))?;
    Ok(SealedContact {
        format: SEAL_FORMAT,
        key_id: key_id.to_owned(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    })
}

/// Decrypts a sealed contact; an error when the key is not its key or the bytes changed.
pub fn open(
    sealed: &SealedContact,
    key: &DataKey,
    case_id: CaseId,
    reporter: ReporterHandle,
) -> Result<ProtectedContact, KeyError> {
    let unreadable = || KeyError::ContactUnreadable { case_id };
    if sealed.format != SEAL_FORMAT {
        return Err(unreadable());
    }
    let nonce = hex::decode(&sealed.nonce).map_err(|_| unreadable())?;
    let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| unreadable())?;
    if nonce.len() != NONCE_BYTES {
        return Err(unreadable());
    }
    let cipher = XChaCha20Poly1305::new(key.bytes.as_ref().into());
    let clear = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &associated_data(case_id, reporter),
                },
            )
            .map_err(|_| unreadable())?,
    );
    serde_json::from_slice(&clear).map_err(|_| unreadable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RandomIds;
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
        assert!(!sealed.ciphertext.contains("13800000000"));
        assert_eq!(
            open(&sealed, &key(1), case, reporter).expect("opens"),
            contact
        );
        assert!(open(&sealed, &key(2), case, reporter).is_err());
        let other_case = CaseId::new(Uuid::from_u128(3));
        assert!(open(&sealed, &key(1), other_case, reporter).is_err());
        let mut altered = sealed.clone();
        altered.ciphertext.replace_range(0..2, "00");
        if altered != sealed {
            assert!(open(&altered, &key(1), case, reporter).is_err());
        }
    }
}
