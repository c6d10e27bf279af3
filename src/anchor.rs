//! The engine's face of the store's Merkle log: tree heads signed with Ed25519, anchors an
//! auditor keeps outside the system and checks the log against, and inclusion evidence for
//! one case that a third party can check offline.
//!
//! An anchor check never trusts the stored tree alone: it recomputes the root of the first
//! `tree_size` records from their fields and compares it with the signed root, and it
//! checks the store's consistency proof from the anchored tree to the tree the records
//! give now. Byte formats: docs/design.md, "The Merkle log".

use caseflow_domain::CaseId;
use caseflow_projections::case_stream_id;
use caseflow_store::tree::{
    self, Evidence, KeyPair, PublicKey, SignedTreeHead, TreeHead, TreeReport,
};
use serde::Serialize;

use crate::engine::Engine;
use crate::error::EngineError;

/// What checking the log against one anchor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorCheck {
    /// The anchored (signed) head.
    pub anchored: TreeHead,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// The key that signed it (hex).
    pub public_key: String,
    /// Whether the key was the one the auditor passed (`--pubkey`), not just the head's own.
    pub key_trusted: bool,
    /// Records in the log now.
    pub current_size: u64,
    /// What does not hold; empty when the log extends the anchored one.
    pub findings: Vec<String>,
}

impl AnchorCheck {
    /// True when the current log extends the anchored one.
    pub fn holds(&self) -> bool {
        self.findings.is_empty()
    }
}

impl Engine {
    /// The current head of the log's Merkle tree.
    pub async fn tree_head(&self) -> Result<TreeHead, EngineError> {
        Ok(self.inner.store.tree_head().await?)
    }

    /// Signs the current head with `key` at the engine clock's now.
    pub async fn sign_head(&self, key: &KeyPair) -> Result<SignedTreeHead, EngineError> {
        let head = self.tree_head().await?;
        Ok(key.sign(head, self.now()))
    }

    /// Walks the whole log and compares it with the stored tree; with `prefix_size`, also
    /// gives the root of the first `prefix_size` records as they are now.
    pub async fn check_tree(&self, prefix_size: Option<u64>) -> Result<TreeReport, EngineError> {
        Ok(tree::verify_tree_with_prefix(&*self.inner.store, prefix_size).await?)
    }

    /// Checks the signed head, then that the log now extends the anchored log: the first
    /// `tree_size` records still hash to the anchored root, and the store's consistency
    /// proof leads from it to the root of all records. A bad signature or key is an error
    /// (the anchor cannot be used at all); a log that does not extend it is findings.
    pub async fn check_anchor(
        &self,
        anchor: &SignedTreeHead,
        trusted: Option<&PublicKey>,
    ) -> Result<AnchorCheck, EngineError> {
        let anchored = anchor.verify(trusted)?;
        let report = self.check_tree(Some(anchored.tree_size)).await?;
        self.anchor_check_from(anchor, trusted, &report).await
    }

    /// The anchor check from a tree walk already made with the anchor's size as prefix.
    pub(crate) async fn anchor_check_from(
        &self,
        anchor: &SignedTreeHead,
        trusted: Option<&PublicKey>,
        report: &TreeReport,
    ) -> Result<AnchorCheck, EngineError> {
        let anchored = anchor.verify(trusted)?;
        let findings = tree::anchor_findings(&*self.inner.store, &anchored, report).await;
        Ok(AnchorCheck {
            anchored,
            signed_at: anchor.timestamp.clone(),
            public_key: anchor.public_key.clone(),
            key_trusted: trusted.is_some(),
            current_size: report.computed.tree_size,
            findings,
        })
    }

    /// Inclusion evidence for a case's events (up to `max_version`, else all) that lie
    /// inside the anchored tree, after checking the anchor's signature. Refuses when the
    /// log no longer extends the anchor (the evidence would prove nothing).
    pub async fn prove_case(
        &self,
        case_id: CaseId,
        max_version: Option<u64>,
        anchor: &SignedTreeHead,
        trusted: Option<&PublicKey>,
    ) -> Result<Evidence, EngineError> {
        let anchored = anchor.verify(trusted)?;
        let stream = case_stream_id(case_id);
        if self.inner.store.stream_version(&stream).await?.is_none() {
            return Err(EngineError::CaseNotFound(case_id));
        }
        Ok(Evidence::build(&*self.inner.store, &stream, max_version, &anchored).await?)
    }
}
