//! Evidence for one stream: its records with an inclusion proof each, against one tree
//! head, so a third party can check them with nothing else (no database, no trust in the
//! operator) once it trusts the head's signature.

use serde::{Deserialize, Serialize};

use super::{InclusionProof, ProofError, TreeHead, leaf_of, verify_inclusion};
use crate::error::StoreError;
use crate::hash::{GENESIS_HASH, recompute};
use crate::store::EventStore;
use crate::types::RecordedEvent;

/// The format name written into every evidence file.
pub const EVIDENCE_FORMAT: &str = "caseflow-inclusion-proof-v1";

/// Why evidence does not hold. All are **caller** errors: the file or head given is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// Not an evidence file (bad JSON, wrong format name).
    #[error("not Caseflow inclusion evidence: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The evidence was made for another head than the one given.
    #[error("the evidence is for a tree of {evidence} records, the head is of {head}")]
    OtherHead {
        /// Tree size in the evidence.
        evidence: u64,
        /// Tree size of the head.
        head: u64,
    },
    /// A record is not what its neighbours or its own hash say.
    #[error("record version {version}: {reason}")]
    Record {
        /// The record's version.
        version: u64,
        /// What does not hold.
        reason: String,
    },
    /// A record's inclusion proof does not lead to the head's root.
    #[error("record version {version} is not in the signed log: {source}")]
    NotIncluded {
        /// The record's version.
        version: u64,
        /// How the proof failed.
        source: ProofError,
    },
}

/// One record and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceEntry {
    /// The record exactly as stored.
    pub record: RecordedEvent,
    /// Its inclusion proof in the tree of the evidence's size.
    pub proof: InclusionProof,
}

/// The records of one stream, versions 1..=n, each proved to be in the tree of one head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Always [`EVIDENCE_FORMAT`].
    pub format: String,
    /// The stream.
    pub stream_id: String,
    /// The size of the tree the proofs are for (the anchor's).
    pub tree_size: u64,
    /// That tree's root, 64 hex digits.
    pub root_hash: String,
    /// The records, from version 1 on.
    pub entries: Vec<EvidenceEntry>,
}

impl Evidence {
    /// Builds the evidence of `stream_id`'s records up to `max_version` (all when `None`)
    /// that lie inside the tree of `head`. Refuses (as `Corrupt`) when the store's tree at
    /// that size is not `head`: the log changed since the head was taken, and proofs made
    /// from it would only mislead; `verify --anchor` says what changed.
    pub async fn build<S: EventStore + ?Sized>(
        store: &S,
        stream_id: &str,
        max_version: Option<u64>,
        head: &TreeHead,
    ) -> Result<Evidence, StoreError> {
        let stored = store.tree_head_at(head.tree_size).await?;
        if stored.root_hash != head.root_hash {
            return Err(StoreError::Corrupt {
                reason: format!(
                    "the log's first {} records no longer have the anchored root {} (they give {})",
                    head.tree_size,
                    hex::encode(head.root_hash),
                    hex::encode(stored.root_hash)
                ),
            });
        }
        let limit = max_version.unwrap_or(u64::MAX);
        let records = store.read_stream(stream_id, 1, usize::MAX).await?;
        let mut entries = Vec::new();
        for record in records {
            if record.version > limit || record.position > head.tree_size {
                break;
            }
            let proof = store
                .inclusion_proof(record.position, head.tree_size)
                .await?;
            entries.push(EvidenceEntry { record, proof });
        }
        Ok(Evidence {
            format: EVIDENCE_FORMAT.to_owned(),
            stream_id: stream_id.to_owned(),
            tree_size: head.tree_size,
            root_hash: hex::encode(head.root_hash),
            entries,
        })
    }

    /// Parses evidence from JSON.
    pub fn from_json(text: &str) -> Result<Evidence, EvidenceError> {
        serde_json::from_str(text).map_err(|e| EvidenceError::Malformed {
            reason: e.to_string(),
        })
    }

    /// The evidence as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every record against `head` (whose signature the caller has checked): each
    /// record hashes to its stored hash, versions run 1, 2, ... with each `prev_hash` the
    /// previous record's hash, and each inclusion proof leads from the record's leaf to the
    /// head's root. Returns the number of records proved.
    pub fn check(&self, head: &TreeHead) -> Result<usize, EvidenceError> {
        if self.format != EVIDENCE_FORMAT {
            return Err(EvidenceError::Malformed {
                reason: format!("format is {:?}, expected {EVIDENCE_FORMAT:?}", self.format),
            });
        }
        if self.tree_size != head.tree_size || self.root_hash != hex::encode(head.root_hash) {
            return Err(EvidenceError::OtherHead {
                evidence: self.tree_size,
                head: head.tree_size,
            });
        }
        let mut prev = GENESIS_HASH;
        for (i, EvidenceEntry { record, proof }) in self.entries.iter().enumerate() {
            let version = record.version;
            let bad = |reason: String| EvidenceError::Record { version, reason };
            if record.stream_id != self.stream_id {
                return Err(bad(format!("belongs to stream {:?}", record.stream_id)));
            }
            if version != i as u64 + 1 {
                return Err(bad(format!("expected version {}", i + 1)));
            }
            if record.prev_hash != prev {
                return Err(bad("its prev_hash is not the previous record's hash".into()));
            }
            if recompute(record) != record.hash {
                return Err(bad("its fields do not hash to its hash".into()));
            }
            if proof.leaf_index + 1 != record.position || proof.tree_size != head.tree_size {
                return Err(bad(format!(
                    "its proof is for leaf {} of {}, not position {} of {}",
                    proof.leaf_index, proof.tree_size, record.position, head.tree_size
                )));
            }
            verify_inclusion(proof, &leaf_of(record), &head.root_hash)
                .map_err(|source| EvidenceError::NotIncluded { version, source })?;
            prev = record.hash;
        }
        Ok(self.entries.len())
    }
}
