//! Tree heads and signed tree heads (Ed25519, `ed25519-dalek`).
//!
//! The signed message is 69 bytes: `b"caseflow-tree-head-v1"` (21 bytes) || tree size (u64
//! BE) || timestamp in milliseconds since the Unix epoch (i64 BE) || root hash (32 bytes).
//! The JSON form ([`SignedTreeHead`]) carries the same fields plus the public key and the
//! signature, hex-encoded; docs/design.md gives it byte by byte.

use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::Hash;
use super::proof::hex32;

/// Domain tag of the signed message; a change of the message form must change it.
pub const HEAD_TAG: &[u8] = b"caseflow-tree-head-v1";

/// The format name written into every signed head's JSON.
pub const HEAD_FORMAT: &str = "caseflow-signed-tree-head-v1";

/// Why a head cannot be trusted. All are **caller** errors: the head, key or file given is
/// wrong; retrying does not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The text is not a signed head (bad JSON, wrong format name, bad hex, bad lengths).
    #[error("not a signed tree head: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The key text is not an Ed25519 key (64 hex digits).
    #[error("not an Ed25519 key: {reason}")]
    BadKey {
        /// What is wrong with it.
        reason: String,
    },
    /// The head was signed by another key than the one the auditor trusts.
    #[error("head is signed by key {found}, not by the trusted key {trusted}")]
    WrongKey {
        /// The trusted public key (hex).
        trusted: String,
        /// The key in the head (hex).
        found: String,
    },
    /// The signature does not verify: the head was changed after signing, or forged.
    #[error("signature does not verify over the head's size, time and root")]
    BadSignature,
}

/// An unsigned tree head: the log's size and root at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Leaves in the tree (= the head position of the log).
    pub tree_size: u64,
    /// RFC 9162 root of the first `tree_size` leaves.
    #[serde(with = "hex32")]
    pub root_hash: Hash,
}

/// An Ed25519 public key (32 bytes; 64 hex digits in text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, HeadError> {
        let bad = |reason: String| HeadError::BadKey { reason };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|e| bad(format!("expected 64 hex digits: {e}")))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| bad(e.to_string()))
    }

    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

/// An Ed25519 signing key. The store never makes randomness: the caller passes the 32-byte
/// seed (from the operating system's generator, in `caseflow keygen`).
pub struct KeyPair(SigningKey);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_tuple("KeyPair")
            .field(&self.public().to_hex())
            .finish()
    }
}

impl KeyPair {
    /// The key pair of a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        KeyPair(SigningKey::from_bytes(&seed))
    }

    /// Parses a secret key file's text: 64 hex digits of the seed.
    pub fn from_hex(text: &str) -> Result<Self, HeadError> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|e| HeadError::BadKey {
            reason: format!("secret key: expected 64 hex digits: {e}"),
        })?;
        Ok(KeyPair::from_seed(seed))
    }

    /// The secret seed as 64 hex digits (what a key file holds).
    pub fn secret_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `head` as of `at` (kept to the millisecond, as signed).
    pub fn sign(&self, head: TreeHead, at: DateTime<Utc>) -> SignedTreeHead {
        let timestamp_ms = at.timestamp_millis();
        let message = signed_message(&head, timestamp_ms);
        SignedTreeHead {
            format: HEAD_FORMAT.to_owned(),
            tree_size: head.tree_size,
            root_hash: hex::encode(head.root_hash),
            timestamp: millis_to_time(timestamp_ms)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            timestamp_ms,
            public_key: self.public().to_hex(),
            signature: hex::encode(self.0.sign(&message).to_bytes()),
        }
    }
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The 69 signed bytes of a head.
pub fn signed_message(head: &TreeHead, timestamp_ms: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEAD_TAG.len() + 8 + 8 + 32);
    m.extend_from_slice(HEAD_TAG);
    m.extend_from_slice(&head.tree_size.to_be_bytes());
    m.extend_from_slice(&timestamp_ms.to_be_bytes());
    m.extend_from_slice(&head.root_hash);
    m
}

/// A signed tree head as an auditor keeps it (`head.json`). Fields are text so a person can
/// read and compare them; [`SignedTreeHead::verify`] parses and checks them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTreeHead {
    /// Always [`HEAD_FORMAT`].
    pub format: String,
    /// Leaves in the tree.
    pub tree_size: u64,
    /// Root hash, 64 hex digits.
    pub root_hash: String,
    /// The signing time for people (RFC 3339, UTC, milliseconds); not signed itself, it must
    /// say the same instant as `timestamp_ms`.
    pub timestamp: String,
    /// The signed time: milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The signer's Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// Ed25519 signature over [`signed_message`], 128 hex digits.
    pub signature: String,
}

impl SignedTreeHead {
    /// Parses a head from its JSON text (does not check the signature; see [`Self::verify`]).
    pub fn from_json(text: &str) -> Result<Self, HeadError> {
        serde_json::from_str(text).map_err(|e| HeadError::Malformed {
            reason: e.to_string(),
        })
    }

    /// The head as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The signing time.
    pub fn signed_at(&self) -> DateTime<Utc> {
        millis_to_time(self.timestamp_ms)
    }

    /// Checks the head's form and signature. With `trusted`, the head must be signed by that
    /// key; without, the key inside the head is used (it then proves only that the head was
    /// not changed since someone holding that key signed it). Returns the checked head.
    pub fn verify(&self, trusted: Option<&PublicKey>) -> Result<TreeHead, HeadError> {
        let malformed = |reason: String| HeadError::Malformed { reason };
        if self.format != HEAD_FORMAT {
            return Err(malformed(format!(
                "format is {:?}, expected {HEAD_FORMAT:?}",
                self.format
            )));
        }
        let mut root_hash = [0u8; 32];
        hex::decode_to_slice(&self.root_hash, &mut root_hash)
            .map_err(|e| malformed(format!("root_hash: {e}")))?;
        let stated = DateTime::parse_from_rfc3339(&self.timestamp)
            .map_err(|e| malformed(format!("timestamp: {e}")))?;
        if stated.timestamp_millis() != self.timestamp_ms {
            return Err(malformed(format!(
                "timestamp {} is not timestamp_ms {}",
                self.timestamp, self.timestamp_ms
            )));
        }
        let key = PublicKey::from_hex(&self.public_key)?;
        if let Some(trusted) = trusted {
            if *trusted != key {
                return Err(HeadError::WrongKey {
                    trusted: trusted.to_hex(),
                    found: key.to_hex(),
                });
            }
        }
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sig)
            .map_err(|e| malformed(format!("signature: {e}")))?;
        let head = TreeHead {
            tree_size: self.tree_size,
            root_hash,
        };
        key.0
            .verify_strict(
                &signed_message(&head, self.timestamp_ms),
                &Signature::from_bytes(&sig),
            )
            .map_err(|_| HeadError::BadSignature)?;
        Ok(head)
    }
}
