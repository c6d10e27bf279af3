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

/// Where the engine publishes the heads it signs by itself, for an auditor to collect (the
/// engine's own copy is no anchor: an anchor is a head kept outside the operator's reach).
pub trait HeadSink: Send + Sync + 'static {
    /// Stores one signed head durably. Errors are **retry** (the next period tries again).
    fn publish(&self, head: &SignedTreeHead) -> std::io::Result<()>;
}

/// Appends each head as one line of compact JSON to a file and syncs it to disk; `caseflow
/// verify --anchor FILE` takes the file's last head.
#[derive(Debug, Clone)]
pub struct FileHeadSink {
    path: std::path::PathBuf,
}

impl FileHeadSink {
    /// A sink appending to `path` (created if missing).
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        FileHeadSink { path: path.into() }
    }
}

impl HeadSink for FileHeadSink {
    fn publish(&self, head: &SignedTreeHead) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let line = serde_json::to_string(head).map_err(std::io::Error::other)?;
        file.write_all(format!("{line}\n").as_bytes())?;
        file.sync_all()
    }
}

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

    /// Signs the current head and hands it to `sink` (on a blocking thread: sinks do IO).
    pub async fn publish_head(
        &self,
        key: &KeyPair,
        sink: std::sync::Arc<dyn HeadSink>,
    ) -> Result<SignedTreeHead, EngineError> {
        let head = self.sign_head(key).await?;
        let published = head.clone();
        tokio::task::spawn_blocking(move || sink.publish(&published))
            .await
            .map_err(|e| EngineError::Io {
                what: "the head sink's task failed".to_owned(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|source| EngineError::Io {
                what: "cannot publish the signed tree head".to_owned(),
                source,
            })?;
        Ok(head)
    }

    /// Publishes a signed head every `every` (the first at once) until the returned task is
    /// aborted. A failed publication is logged and retried at the next period.
    pub fn spawn_head_publisher(
        &self,
        key: KeyPair,
        sink: std::sync::Arc<dyn HeadSink>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = engine.publish_head(&key, sink.clone()).await {
                    tracing::warn!(error = %e, "signed tree head not published; retrying next period");
                }
            }
        })
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
