//! The master key: the operator's secret that wraps every reporter's data key. It never
//! enters the event log or the key store; the key store keeps only its fingerprint, so a
//! wrong key is told apart from a damaged store.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::KeyError;

/// The environment variable holding the master key itself (64 hex digits).
pub const MASTER_KEY_ENV: &str = "CASEFLOW_MASTER_KEY";
/// The environment variable naming a master key file.
pub const MASTER_KEY_FILE_ENV: &str = "CASEFLOW_MASTER_KEY_FILE";

/// Bytes of a key (master or data): 256 bits.
pub const KEY_BYTES: usize = 32;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_BYTES: usize = 24;

/// A 256-bit key-wrapping key. Wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.fingerprint())
    }
}

impl MasterKey {
    /// A fresh random master key from the operating system's random source.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        MasterKey { bytes }
    }

    /// Parses 64 hex digits (surrounding whitespace ignored). `source` names where the text
    /// came from, for the error.
    pub fn from_hex(text: &str, source: &str) -> Result<MasterKey, KeyError> {
        let mut decoded = Zeroizing::new(Vec::new());
        *decoded = hex::decode(text.trim()).map_err(|_| KeyError::MasterKeyMalformed {
            source_name: source.to_owned(),
        })?;
        let bytes: [u8; KEY_BYTES] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::MasterKeyMalformed {
                    source_name: source.to_owned(),
                })?;
        Ok(MasterKey {
            bytes: Zeroizing::new(bytes),
        })
    }

    /// Reads a master key file (64 hex digits and an optional newline).
    pub fn from_file(path: &Path) -> Result<MasterKey, KeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            KeyError::MasterKeyFile {
                path: path.to_owned(),
                source,
            }
        })?);
        MasterKey::from_hex(&text, &path.display().to_string())
    }

    /// The master key from the environment: [`MASTER_KEY_ENV`] (the key itself) or
    /// [`MASTER_KEY_FILE_ENV`] (a file holding it). `Ok(None)` when neither is set.
    pub fn from_env() -> Result<Option<MasterKey>, KeyError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            let text = Zeroizing::new(text);
            return MasterKey::from_hex(&text, MASTER_KEY_ENV).map(Some);
        }
        match std::env::var_os(MASTER_KEY_FILE_ENV) {
            Some(path) => MasterKey::from_file(Path::new(&path)).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a new random master key to `path`, readable by its owner only. Refuses to
    /// overwrite an existing file: replacing a master key without rotating the key store
    /// would make every stored contact unreadable.
    pub fn create_file(path: &Path) -> Result<MasterKey, KeyError> {
        let key = MasterKey::generate();
        key.write_new_file(path)?;
        Ok(key)
    }

    /// Writes this key to a new file (owner-only permissions); refuses to overwrite.
    pub fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::MasterKeyFile {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        let mut text = Zeroizing::new(hex::encode(self.bytes.as_ref()));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// A short public fingerprint of the key (the first 8 bytes of SHA-256 over a label and
    /// the key, hex). The key store records it so that a wrong master key is named as such.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"caseflow master key fingerprint v1");
        hasher.update(self.bytes.as_ref());
        hex::encode(&hasher.finalize()[..8])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.as_ref().into())
    }

    /// Wraps a data key: XChaCha20-Poly1305 under the master key with a fresh random nonce,
    /// bound to the key's id (so a wrapped key cannot be moved to another id). Returns the
    /// nonce and the ciphertext. (Format-1 key stores and PostgreSQL: one key per row.)
    pub(crate) fn wrap(
        &self,
        key_id: &str,
        data_key: &DataKey,
    ) -> Result<([u8; NONCE_BYTES], Vec<u8>), KeyError> {
        self.wrap_bytes(key_id.as_bytes(), data_key.bytes.as_ref())
    }

    /// Unwraps a data key; `None` when the master key is not the one that wrapped it (or
    /// the wrapped bytes were altered).
    pub(crate) fn unwrap(&self, key_id: &str, nonce: &[u8], wrapped: &[u8]) -> Option<DataKey> {
        let clear = self.unwrap_bytes(key_id.as_bytes(), nonce, wrapped)?;
        let bytes: [u8; KEY_BYTES] = clear.as_slice().try_into().ok()?;
        Some(DataKey {
            bytes: Zeroizing::new(bytes),
        })
    }

    /// Wraps any key material (one key, or a key store's batch of keys) with a fresh random
    /// nonce, bound to `associated` (what the material may be read as).
    pub(crate) fn wrap_bytes(
        &self,
        associated: &[u8],
        clear: &[u8],
    ) -> Result<([u8; NONCE_BYTES], Vec<u8>), KeyError> {
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let wrapped = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: clear,
                    aad: associated,
                },
            )
            .map_err(|_| KeyError::Crypto("wrapping key material"))?;
        Ok((nonce, wrapped))
    }

    /// Unwraps what [`MasterKey::wrap_bytes`] wrapped under the same associated data; `None`
    /// for another master key, other associated data or altered bytes. The clear bytes are
    /// wiped when dropped.
    pub(crate) fn unwrap_bytes(
        &self,
        associated: &[u8],
        nonce: &[u8],
        wrapped: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        if nonce.len() != NONCE_BYTES {
            return None;
        }
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: wrapped,
                    aad: associated,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }
}

/// One reporter's data key: encrypts that reporter's contacts. Lives in the key store,
/// wrapped by the master key; destroying it erases every contact sealed with it.
#[derive(Clone)]
pub struct DataKey {
    pub(crate) bytes: Zeroizing<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<secret>)")
    }
}

impl DataKey {
    /// A data key from 32 bytes of key material.
    pub(crate) fn from_bytes(bytes: [u8; KEY_BYTES]) -> DataKey {
        DataKey {
            bytes: Zeroizing::new(bytes),
        }
    }
}

/// The default master key file of a demo store (`cases.db` -> `cases.master.key`).
pub fn demo_master_key_path(store_path: &Path) -> PathBuf {
    let stem = store_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "caseflow".to_owned());
    store_path.with_file_name(format!("{stem}.master.key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_with_its_master_only_and_only_under_its_id() {
        let master = MasterKey::generate();
        let data = DataKey::from_bytes([7; KEY_BYTES]);
        let (nonce, wrapped) = master.wrap("k1", &data).expect("wrap");
        let back = master.unwrap("k1", &nonce, &wrapped).expect("unwraps");
        assert_eq!(back.bytes.as_ref(), data.bytes.as_ref());
        assert!(master.unwrap("k2", &nonce, &wrapped).is_none());
        assert!(
            MasterKey::generate()
                .unwrap("k1", &nonce, &wrapped)
                .is_none()
        );
    }

    #[test]
    fn master_keys_parse_from_hex_and_refuse_anything_else() {
        let key = MasterKey::generate();
        let text = hex::encode(key.bytes.as_ref());
        let parsed = MasterKey::from_hex(&format!(" {text}\n"), "test").expect("parses");
        assert_eq!(parsed.fingerprint(), key.fingerprint());
        for bad in ["", "zz", &text[..62]] {
            assert!(matches!(
                MasterKey::from_hex(bad, "test"),
                Err(KeyError::MasterKeyMalformed { .. })
            ));
        }
        assert!(!format!("{key:?}").contains(&text));
    }

    #[test]
    fn a_master_key_file_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.key");
        let key = MasterKey::create_file(&path).expect("creates");
        assert_eq!(
            MasterKey::from_file(&path).expect("reads").fingerprint(),
            key.fingerprint()
        );
        assert!(matches!(
            MasterKey::create_file(&path),
            Err(KeyError::MasterKeyFile { .. })
        ));
    }
}
