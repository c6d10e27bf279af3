//! Heads, proofs and the full tree check over any [`EventStore`], from its stored nodes.
//! Each head or proof is one batched [`EventStore::tree_nodes`] read.

use serde::{Deserialize, Serialize};

use super::{
    ConsistencyProof, Frontier, Hash, InclusionProof, TreeHead, TreeNode, consistency_ranges,
    empty_root, fold_cover, inclusion_ranges, leaf_of, perfect_cover, verify_consistency,
};
use crate::error::StoreError;
use crate::store::EventStore;
use crate::types::VerifyReport;

/// Records read per batch by [`verify_tree`].
const VERIFY_BATCH: usize = 4096;

/// Whether a perfect node lies inside a tree of `size` leaves.
pub fn node_within(node: TreeNode, size: u64) -> bool {
    node.index
        .checked_add(1)
        .and_then(|n| n.checked_mul(1u64 << node.level.min(63)))
        .is_some_and(|end| node.level < 64 && end <= size)
}

fn too_big(what: &str, asked: u64, head: u64) -> StoreError {
    StoreError::InvalidRequest {
        reason: format!("{what} {asked} is beyond the log's {head} records"),
    }
}

async fn check_size<S: EventStore + ?Sized>(store: &S, size: u64) -> Result<(), StoreError> {
    let head = store.head_position().await?;
    if size > head {
        return Err(too_big("tree size", size, head));
    }
    Ok(())
}

/// The roots of the given leaf ranges, read in one batch of stored nodes.
async fn range_roots<S: EventStore + ?Sized>(
    store: &S,
    ranges: &[(u64, u64)],
) -> Result<Vec<Hash>, StoreError> {
    let covers: Vec<Vec<TreeNode>> = ranges.iter().map(|&(a, b)| perfect_cover(a, b)).collect();
    let wanted: Vec<TreeNode> = covers.iter().flatten().copied().collect();
    let hashes = store.tree_nodes(&wanted).await?;
    if hashes.len() != wanted.len() {
        return Err(StoreError::corrupt(format!(
            "asked for {} tree nodes, the store gave {}",
            wanted.len(),
            hashes.len()
        )));
    }
    let mut at = 0;
    Ok(covers
        .iter()
        .map(|cover| {
            let root = fold_cover(&hashes[at..at + cover.len()]).unwrap_or_else(empty_root);
            at += cover.len();
            root
        })
        .collect())
}

/// The head of the first `size` leaves.
pub async fn head_at<S: EventStore + ?Sized>(store: &S, size: u64) -> Result<TreeHead, StoreError> {
    check_size(store, size).await?;
    let root_hash = if size == 0 {
        empty_root()
    } else {
        range_roots(store, &[(0, size)]).await?[0]
    };
    Ok(TreeHead {
        tree_size: size,
        root_hash,
    })
}

/// The inclusion proof of the record at `position` in the tree of `size` leaves.
pub async fn inclusion<S: EventStore + ?Sized>(
    store: &S,
    position: u64,
    size: u64,
) -> Result<InclusionProof, StoreError> {
    if position == 0 || position > size {
        return Err(StoreError::InvalidRequest {
            reason: format!("position {position} is not inside a tree of {size} records"),
        });
    }
    check_size(store, size).await?;
    let path = range_roots(store, &inclusion_ranges(position - 1, size)).await?;
    Ok(InclusionProof {
        leaf_index: position - 1,
        tree_size: size,
        path,
    })
}

/// The consistency proof from the tree of `first` leaves to the tree of `second`.
pub async fn consistency<S: EventStore + ?Sized>(
    store: &S,
    first: u64,
    second: u64,
) -> Result<ConsistencyProof, StoreError> {
    if first > second {
        return Err(StoreError::InvalidRequest {
            reason: format!("a tree of {second} records cannot extend one of {first}"),
        });
    }
    check_size(store, second).await?;
    let path = range_roots(store, &consistency_ranges(first, second)).await?;
    Ok(ConsistencyProof {
        first,
        second,
        path,
    })
}

/// What a full walk of the log found wrong with the tree first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TreeFault {
    /// Positions are not 1, 2, 3, ...: a record was deleted, or positions were moved.
    PositionGap {
        /// The position that should come next.
        expected: u64,
        /// The position found (`None` when the log ends early).
        found: Option<u64>,
    },
    /// The record at `position` no longer hashes to the leaf stored for it: some field of
    /// it, its stream's previous hash, or its position changed.
    LeafMismatch {
        /// The record's position.
        position: u64,
        /// The leaf stored in the tree (hex).
        stored: String,
        /// The leaf recomputed from the record (hex).
        computed: String,
    },
    /// The stored tree has more or fewer leaves than the log has records: records at the
    /// end were removed (or added) without the tree.
    SizeMismatch {
        /// Records in the log (its head position).
        records: u64,
        /// Leaves in the stored tree.
        leaves: u64,
    },
    /// The root computed from the records is not the root of the stored tree.
    RootMismatch {
        /// Root of the stored nodes (hex).
        stored: String,
        /// Root recomputed from the records (hex).
        computed: String,
    },
}

impl std::fmt::Display for TreeFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeFault::PositionGap {
                expected,
                found: Some(found),
            } => write!(
                f,
                "expected position {expected}, found {found}: records are missing or moved"
            ),
            TreeFault::PositionGap {
                expected,
                found: None,
            } => write!(
                f,
                "the log ends before position {expected}, which its head claims"
            ),
            TreeFault::LeafMismatch {
                position,
                stored,
                computed,
            } => write!(
                f,
                "the record at position {position} hashes to leaf {computed}, the tree holds {stored}"
            ),
            TreeFault::SizeMismatch { records, leaves } => write!(
                f,
                "the log has {records} records but its tree {leaves} leaves: records at the end were removed or added behind the store"
            ),
            TreeFault::RootMismatch { stored, computed } => write!(
                f,
                "the records give root {computed}, the stored tree gives {stored}"
            ),
        }
    }
}

/// What [`verify_tree`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeReport {
    /// Records read and hashed into leaves.
    pub leaves_checked: u64,
    /// The tree recomputed from the records as they are now (size and root).
    pub computed: TreeHead,
    /// The tree recomputed from the first `n` records, when asked for (an anchor's size)
    /// and the log has that many.
    pub prefix: Option<TreeHead>,
    /// The first fault, or `None` when records and stored tree agree.
    pub first_fault: Option<TreeFault>,
    /// How many faults were found in all (the walk never stops at one).
    pub faults: u64,
}

impl TreeReport {
    /// True when the records and the stored tree agree.
    pub fn is_intact(&self) -> bool {
        self.first_fault.is_none()
    }

    fn fault(&mut self, fault: TreeFault) {
        self.faults += 1;
        if self.first_fault.is_none() {
            self.first_fault = Some(fault);
        }
    }
}

/// Every check of the log a full verify makes (see [`EventStore::verify_log`]), each result
/// on its own: a check that cannot run does not hide what the other found.
#[derive(Debug)]
pub struct LogVerification {
    /// [`EventStore::verify_all`]: every stream's chain, the command-id ledger, the file.
    pub chains: Result<VerifyReport, StoreError>,
    /// [`verify_tree_with_prefix`]: every leaf recomputed, the sizes and the roots.
    pub tree: Result<TreeReport, StoreError>,
}

impl LogVerification {
    /// The two walks one after the other: what [`EventStore::verify_log`] gives by default.
    pub async fn in_two_walks<S: EventStore + ?Sized>(store: &S, prefix_size: Option<u64>) -> Self {
        LogVerification {
            chains: store.verify_all().await,
            tree: verify_tree_with_prefix(store, prefix_size).await,
        }
    }
}

/// [`verify_tree_with_prefix`] without a prefix.
pub async fn verify_tree<S: EventStore + ?Sized>(store: &S) -> Result<TreeReport, StoreError> {
    verify_tree_with_prefix(store, None).await
}

/// Reads the whole log in position order, recomputes every leaf from the record's fields
/// (never from a stored hash) and compares it with the stored leaf, then the sizes and
/// roots. It never stops at a fault: it counts them, keeps the first, and goes on building
/// the tree of the records as they are, so `computed` (and `prefix`, the root of the first
/// `prefix_size` records) is always what the records say now.
pub async fn verify_tree_with_prefix<S: EventStore + ?Sized>(
    store: &S,
    prefix_size: Option<u64>,
) -> Result<TreeReport, StoreError> {
    let head = store.head_position().await?;
    let leaves = store.stored_tree_size().await?;
    let mut walk = TreeWalk::new(head, prefix_size);
    let mut from = 1u64;
    loop {
        let batch = store.read_all(from, VERIFY_BATCH).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        let stored = stored_leaves(store, walk.records_seen(), batch.len(), head).await?;
        for (e, stored) in batch.iter().zip(stored) {
            walk.record(e.position, leaf_of(e), stored);
        }
    }
    let stored = head_at(store, head).await?;
    Ok(walk.finish(leaves, stored.root_hash))
}

/// The state of a [`verify_tree_with_prefix`] walk, which a backend that reads the log its
/// own way (in one pass with the chains) feeds record by record, so both give one report.
pub(crate) struct TreeWalk {
    head: u64,
    prefix_size: Option<u64>,
    frontier: Frontier,
    report: TreeReport,
}

impl TreeWalk {
    /// A walk of a log whose head position is `head`.
    pub(crate) fn new(head: u64, prefix_size: Option<u64>) -> Self {
        let empty = TreeHead {
            tree_size: 0,
            root_hash: empty_root(),
        };
        TreeWalk {
            head,
            prefix_size,
            frontier: Frontier::new(),
            report: TreeReport {
                leaves_checked: 0,
                computed: empty,
                prefix: (prefix_size == Some(0)).then_some(empty),
                first_fault: None,
                faults: 0,
            },
        }
    }

    /// Records walked so far: the index of the stored leaf the next record is compared with.
    pub(crate) fn records_seen(&self) -> u64 {
        self.frontier.size()
    }

    /// Whether the next record has a stored leaf to compare with (it lies inside the head).
    pub(crate) fn next_has_stored_leaf(&self) -> bool {
        self.frontier.size() < self.head
    }

    /// The next record in position order: its position, its leaf recomputed from its fields,
    /// and the stored leaf at its index (`None` beyond the head).
    pub(crate) fn record(&mut self, position: u64, leaf: Hash, stored: Option<Hash>) {
        let expected = self.frontier.size() + 1;
        if position != expected {
            self.report.fault(TreeFault::PositionGap {
                expected,
                found: Some(position),
            });
        }
        if let Some(stored) = stored.filter(|s| *s != leaf) {
            self.report.fault(TreeFault::LeafMismatch {
                position,
                stored: hex::encode(stored),
                computed: hex::encode(leaf),
            });
        }
        self.frontier.push(leaf, |_, _| {});
        self.report.leaves_checked += 1;
        if Some(self.frontier.size()) == self.prefix_size {
            self.report.prefix = Some(TreeHead {
                tree_size: self.frontier.size(),
                root_hash: self.frontier.root(),
            });
        }
    }

    /// After the last record: the sizes (`leaves` in the stored tree) and the root of the
    /// stored tree of `head` leaves.
    pub(crate) fn finish(mut self, leaves: u64, stored_root: Hash) -> TreeReport {
        let head = self.head;
        self.report.computed = TreeHead {
            tree_size: self.frontier.size(),
            root_hash: self.frontier.root(),
        };
        if self.frontier.size() < head {
            self.report.fault(TreeFault::PositionGap {
                expected: self.frontier.size() + 1,
                found: None,
            });
        }
        if leaves != head {
            self.report.fault(TreeFault::SizeMismatch {
                records: head,
                leaves,
            });
        }
        if stored_root != self.report.computed.root_hash {
            self.report.fault(TreeFault::RootMismatch {
                stored: hex::encode(stored_root),
                computed: hex::encode(self.report.computed.root_hash),
            });
        }
        self.report
    }
}

/// The stored leaves `first..first + count` that lie inside the tree of `head` leaves
/// (`None` for those beyond it, which a deleted record's successors can be).
async fn stored_leaves<S: EventStore + ?Sized>(
    store: &S,
    first: u64,
    count: usize,
    head: u64,
) -> Result<Vec<Option<Hash>>, StoreError> {
    let within = (head.saturating_sub(first)).min(count as u64);
    let nodes: Vec<TreeNode> = (first..first + within)
        .map(|index| TreeNode { level: 0, index })
        .collect();
    let mut out: Vec<Option<Hash>> = store
        .tree_nodes(&nodes)
        .await?
        .into_iter()
        .map(Some)
        .collect();
    out.resize(count, None);
    Ok(out)
}

/// Why the log does not extend an anchored head, given a walk made with the anchor's size
/// as prefix ([`verify_tree_with_prefix`]); empty when it does. Two independent checks: the
/// first `tree_size` records as they are now must hash to the anchored root (whatever the
/// stored tree says), and the store's consistency proof from the anchored tree must lead
/// to the root of all records now.
pub async fn anchor_findings<S: EventStore + ?Sized>(
    store: &S,
    anchored: &TreeHead,
    report: &TreeReport,
) -> Vec<String> {
    let mut findings = Vec::new();
    let size = anchored.tree_size;
    let current = report.computed;
    match report.prefix {
        None => findings.push(format!(
            "the log holds {} records, fewer than the {size} the anchor signed: records were removed",
            current.tree_size
        )),
        Some(prefix) if prefix.root_hash != anchored.root_hash => findings.push(format!(
            "the first {size} records hash to root {}, not to the anchored {}: a record at or \
             before position {size} was changed, removed, added or moved",
            hex::encode(prefix.root_hash),
            hex::encode(anchored.root_hash)
        )),
        Some(_) => {}
    }
    if current.tree_size < size {
        return findings;
    }
    match consistency(store, size, current.tree_size).await {
        Ok(proof) => {
            if let Err(e) = verify_consistency(&proof, &anchored.root_hash, &current.root_hash) {
                findings.push(format!(
                    "the store's consistency proof from {size} to {} records does not hold \
                     against the records: {e}",
                    current.tree_size
                ));
            }
        }
        Err(e) => findings.push(format!(
            "the store cannot give a consistency proof from {size} to {} records: {e}",
            current.tree_size
        )),
    }
    findings
}
