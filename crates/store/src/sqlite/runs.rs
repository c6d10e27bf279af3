//! Format 4's Merkle tree: closed runs of 64 leaves keep only the nodes above them.
//!
//! Leaves `64·r .. 64·r + 63` form run `r`. While a run is open its leaves have format 3's
//! rows in `tree` (the leaf and every node it completes). When its last leaf is appended,
//! in the same savepoint, the run is closed: `tree_runs` gets one row holding the nodes of
//! level 6 and above that this last leaf completes (the run's root first), and the run's 64
//! `tree` rows are deleted. A closed run's nodes below level 6 are no longer stored: they
//! are recomputed from the stored hashes of its 64 records (leaf = `record_leaf(position,
//! hash)`), which is what a proof inside the run reads. So the tree costs about one hash per
//! 64 records on disk instead of two per record, and the records themselves are what the
//! stored run root vouches for: a record rewritten with its chain re-hashed no longer matches
//! its run's root, a removed tail still leaves the tree more leaves than the log records.

use super::*;
use crate::tree::node_hash;

/// Leaves per run.
pub(super) const RUN_LEAVES: u64 = 64;
/// Level of a run's root.
pub(super) const RUN_LEVEL: u32 = 6;

/// The run whose last leaf `leaf` is, when it is one (appending it closes the run).
pub(super) fn run_closed_by(leaf: u64) -> Option<u64> {
    (leaf % RUN_LEAVES == RUN_LEAVES - 1).then_some(leaf / RUN_LEAVES)
}

/// Closes run `run`, whose last leaf's row holds `nodes` (leaf first, 32 bytes each).
pub(super) fn close_run(conn: &Connection, run: u64, nodes: &[u8]) -> Result<(), StoreError> {
    let above = nodes.get(32 * RUN_LEVEL as usize..).unwrap_or_default();
    conn.prepare_cached("INSERT INTO tree_runs (run, nodes) VALUES (?1, ?2)")?
        .execute(params![run as i64, above])?;
    let first = run * RUN_LEAVES;
    conn.prepare_cached("DELETE FROM tree WHERE leaf >= ?1 AND leaf < ?2")?
        .execute(params![first as i64, (first + RUN_LEAVES) as i64])?;
    Ok(())
}

/// Closes every complete run of a format-3 tree, inside format 4's migration transaction.
/// A run whose last row does not reach level 6 (only a damaged file has one) stays open,
/// as stored, for `verify` to report.
pub(super) fn close_stored_runs(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "INSERT INTO tree_runs (run, nodes) SELECT leaf / 64, substr(nodes, 32 * 6 + 1) \
            FROM tree WHERE leaf % 64 = 63 AND length(nodes) > 32 * 6; \
         DELETE FROM tree WHERE leaf / 64 IN (SELECT run FROM tree_runs);",
    )?;
    Ok(())
}

/// Leaves in a format-4 tree: up to the last closed run's end, or the last open leaf row.
pub(super) const RUN_LEAF_COUNT_SQL: &str = "SELECT max( \
        coalesce((SELECT max(run) + 1 FROM tree_runs), 0) * 64, \
        coalesce((SELECT max(leaf) + 1 FROM tree), 0))";

/// Every closed run, for the one-pass verify.
pub(super) fn closed_runs(conn: &Connection) -> Result<HashSet<u64>, StoreError> {
    let mut stmt = conn.prepare("SELECT run FROM tree_runs")?;
    let runs = stmt
        .query_map([], |r| r.get::<_, i64>(0))?
        .map(|r| r.map(|run| run as u64))
        .collect::<Result<_, _>>()?;
    Ok(runs)
}

fn run_row(conn: &Connection, run: u64) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT nodes FROM tree_runs WHERE run = ?1")?
        .query_row([run as i64], |r| r.get(0))
        .optional()?)
}

/// [`read_tree_nodes`] for format 4.
pub(super) fn read_run_rows(
    conn: &Connection,
    nodes: &[TreeNode],
    missing: impl Fn(TreeNode) -> StoreError,
) -> Result<Vec<Hash>, StoreError> {
    read_by_leaf_runs(
        nodes,
        |first, count, out| read_leaves(conn, first, count as u64, out, &missing),
        |node| read_node(conn, node, &missing),
    )
}

/// One node: from its closed run's row (level ≥ 6), recomputed from the records of a
/// closed run (below level 6), or from the `tree` row of the leaf that completed it.
fn read_node(
    conn: &Connection,
    node: TreeNode,
    missing: &impl Fn(TreeNode) -> StoreError,
) -> Result<Hash, StoreError> {
    let last = ((node.index + 1) << node.level) - 1;
    let run = run_row(conn, last / RUN_LEAVES)?;
    match run {
        Some(row) if node.level >= RUN_LEVEL => {
            let from = 32 * (node.level - RUN_LEVEL) as usize;
            let hash = row.get(from..from + 32).ok_or_else(|| missing(node))?;
            blob_hash(hash, "tree node hash")
        }
        Some(_) => {
            let width = 1u64 << node.level;
            let mut leaves = Vec::with_capacity(width as usize);
            record_leaves(conn, node.index * width, width, &mut leaves, missing)?;
            Ok(perfect_root(leaves))
        }
        None => leaf_row_node(conn, node, missing),
    }
}

/// The root of a perfect subtree from its leaves (a power of two of them).
fn perfect_root(mut level: Vec<Hash>) -> Hash {
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

/// A node from the `tree` row of the leaf that completed it (an open run's).
pub(super) fn leaf_row_node(
    conn: &Connection,
    node: TreeNode,
    missing: &impl Fn(TreeNode) -> StoreError,
) -> Result<Hash, StoreError> {
    let row = ((node.index + 1) << node.level) - 1;
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT nodes FROM tree WHERE leaf = ?1")?
        .query_row([row as i64], |r| r.get(0))
        .optional()?;
    let from = 32 * node.level as usize;
    match blob.as_deref().and_then(|b| b.get(from..from + 32)) {
        Some(h) => blob_hash(h, "tree node hash"),
        None => Err(missing(node)),
    }
}

/// Leaves `first..first + count`, run by run: a closed run's from its records, an open
/// run's from its `tree` rows.
fn read_leaves(
    conn: &Connection,
    first: u64,
    count: u64,
    out: &mut Vec<Hash>,
    missing: &impl Fn(TreeNode) -> StoreError,
) -> Result<(), StoreError> {
    let end = first + count;
    let mut at = first;
    while at < end {
        let run = at / RUN_LEAVES;
        let stop = end.min((run + 1) * RUN_LEAVES);
        if run_row(conn, run)?.is_some() {
            record_leaves(conn, at, stop - at, out, missing)?;
        } else {
            read_leaf_run(conn, at, (stop - at) as usize, out, missing)?;
        }
        at = stop;
    }
    Ok(())
}

/// Leaves `first..first + count` recomputed from the stored hashes of the records at
/// positions `first + 1 ..= first + count`; a position without its record is a missing leaf.
fn record_leaves(
    conn: &Connection,
    first: u64,
    count: u64,
    out: &mut Vec<Hash>,
    missing: &impl Fn(TreeNode) -> StoreError,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, hash FROM events WHERE position > ?1 AND position <= ?2 \
         ORDER BY position",
    )?;
    let mut rows = stmt.query(params![first as i64, (first + count) as i64])?;
    let mut expected = first + 1;
    let gap = |position: u64| {
        missing(TreeNode {
            level: 0,
            index: position - 1,
        })
    };
    while let Some(row) = rows.next()? {
        let position = row.get::<_, i64>(0)? as u64;
        if position != expected {
            return Err(gap(expected));
        }
        let hash = blob_hash(row.get_ref(1)?.as_blob()?, "record hash")?;
        out.push(record_leaf(position, &hash));
        expected += 1;
    }
    if expected != first + count + 1 {
        return Err(gap(expected));
    }
    Ok(())
}
