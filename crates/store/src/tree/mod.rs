//! The Merkle tree over the whole log (RFC 9162, §2.1).
//!
//! Every record is one leaf, in global position order: leaf index `i` is the record at
//! position `i + 1`. The leaf input binds the record's position to its chain hash (which
//! covers the stream, version, event id, time, type, schema version, payload, metadata and
//! the stream's previous hash), so the tree sees what per-stream chains cannot: the order
//! across streams, whole streams deleted, and truncation.
//!
//! Hashing (RFC 9162 §2.1.1, SHA-256):
//! - `leaf_hash(d) = SHA-256(0x00 || d)`, with `d = b"caseflow-leaf-v1" || position (u64 BE)
//!   || record hash (32 bytes)` (56 bytes) for a record;
//! - `node_hash(l, r) = SHA-256(0x01 || l || r)`;
//! - the root of the empty tree is `SHA-256("")`.
//!
//! Storage: a backend keeps every *perfect* subtree root, [`TreeNode`] `(level, index)`
//! covering leaves `[index·2^level, (index+1)·2^level)`. An append adds the leaf and the
//! perfect nodes it completes (amortised two, at most `log₂ n + 1`), computed from the
//! [`Frontier`] (one node per set bit of the size) kept in memory. Every subtree the RFC's
//! proofs need is a short list of perfect nodes ([`perfect_cover`]), so a head or a proof is
//! one batched read of `O(log² n)` nodes at most, never a scan.

mod evidence;
mod head;
mod proof;
pub mod read;

pub use evidence::{EVIDENCE_FORMAT, Evidence, EvidenceEntry, EvidenceError};
pub use head::{
    HEAD_FORMAT, HEAD_TAG, HeadError, KeyPair, PublicKey, SignedTreeHead, TreeHead, signed_message,
};
pub use proof::{
    ConsistencyProof, InclusionProof, ProofError, consistency_ranges, inclusion_ranges,
    verify_consistency, verify_inclusion,
};
pub use read::{
    LogVerification, TreeFault, TreeReport, anchor_findings, verify_tree, verify_tree_with_prefix,
};

use sha2::{Digest, Sha256};

use crate::hash::recompute;
use crate::types::RecordedEvent;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Domain tag that starts every record's leaf input; a change of the leaf form must change it.
pub const LEAF_TAG: &[u8] = b"caseflow-leaf-v1";

/// RFC 9162 leaf hash: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 9162 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The leaf hash of the record at `position` whose chain hash is `record_hash`.
pub fn record_leaf(position: u64, record_hash: &Hash) -> Hash {
    let mut data = [0u8; 56];
    data[..16].copy_from_slice(LEAF_TAG);
    data[16..24].copy_from_slice(&position.to_be_bytes());
    data[24..].copy_from_slice(record_hash);
    leaf_hash(&data)
}

/// The leaf hash of a stored record, recomputed from its fields (never from its stored
/// hash), so a changed field changes the leaf even when the stored hash was left alone.
pub fn leaf_of(event: &RecordedEvent) -> Hash {
    record_leaf(event.position, &recompute(event))
}

/// A perfect subtree: `2^level` leaves starting at leaf `index << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreeNode {
    /// Height above the leaves (0 = a leaf).
    pub level: u32,
    /// Index among the nodes of this level.
    pub index: u64,
}

/// The perfect subtrees that make up the leaf range `[start, end)`, left to right.
///
/// Valid for the ranges RFC 9162's recursion produces (`start` is a multiple of the
/// smallest power of two ≥ `end - start`): one node per set bit of the range's length,
/// largest first.
pub fn perfect_cover(start: u64, end: u64) -> Vec<TreeNode> {
    let mut nodes = Vec::new();
    let mut at = start;
    let len = end.saturating_sub(start);
    for level in (0..64u32).rev() {
        if len & (1u64 << level) != 0 {
            nodes.push(TreeNode {
                level,
                index: at >> level,
            });
            at += 1u64 << level;
        }
    }
    nodes
}

/// RFC 9162's `MTH` of a range from the hashes of its [`perfect_cover`], in cover order:
/// the right-hand subtrees fold first (`MTH(D[k:n])`), then join each larger left one.
pub fn fold_cover(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right)),
    )
}

/// The largest power of two strictly smaller than `n` (`n ≥ 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtree roots of a tree of some size, one per set bit of the size, largest
/// (leftmost) first: all an append needs to extend the tree and to give its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, leftmost (highest level) first.
    roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// The nodes a backend reads to rebuild the frontier of a tree of `size` leaves.
    pub fn nodes_for(size: u64) -> Vec<TreeNode> {
        perfect_cover(0, size)
    }

    /// Rebuilds the frontier from the hashes of [`Frontier::nodes_for`]`(size)`, in order.
    pub fn from_nodes(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Frontier {
            size,
            roots: hashes,
        })
    }

    /// The perfect subtree roots, leftmost first (what [`Frontier::from_nodes`] takes back):
    /// a backend shared by several processes stores them with its log head.
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root (RFC 9162 `MTH`).
    pub fn root(&self) -> Hash {
        fold_cover(&self.roots).unwrap_or_else(empty_root)
    }

    /// Appends a leaf; calls `store(node, hash)` for the leaf and every perfect node it
    /// completes, bottom-up.
    pub fn push(&mut self, leaf: Hash, mut store: impl FnMut(TreeNode, Hash)) {
        let index = self.size;
        let mut hash = leaf;
        store(TreeNode { level: 0, index }, hash);
        let mut level = 0u32;
        // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        while index & (1u64 << level) != 0 {
            // The bit is set, so the frontier holds its subtree root as its last entry.
            let left = self.roots.pop().unwrap_or_else(empty_root);
            hash = node_hash(&left, &hash);
            level += 1;
            store(
                TreeNode {
                    level,
                    index: index >> level,
                },
                hash,
            );
        }
        self.roots.push(hash);
        self.size += 1;
    }
}

#[cfg(test)]
mod tests;
