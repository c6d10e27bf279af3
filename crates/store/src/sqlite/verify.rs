//! [`EventStore::verify_log`] for SQLite: every chain and the Merkle tree from one read of
//! the log in position order, in one snapshot.
//!
//! The two walks it replaces read every record twice (once per stream through
//! `events_by_stream`, once in position order), decoded each into an owned
//! [`RecordedEvent`] and hashed each twice (its chain hash, then again for its leaf). This
//! walk borrows each row's fields from SQLite, hashes the record once and checks both its
//! chain link (against the last record of its stream seen so far) and its leaf.
//!
//! **Same report.** Its result is exactly what `verify_all` and `verify_tree_with_prefix`
//! give, because it only answers where the answer cannot differ:
//! - a stream whose records come in position order as versions 1, 2, 3, ... with every link
//!   holding is that same sequence in version order, so its chain holds and its records are
//!   counted; any other stream (a link broken, versions out of order, a row that does not
//!   decode) is walked again afterwards in version order by the very function `verify_all`
//!   uses, which names its first broken link as before;
//! - the tree's checks are [`TreeWalk`]'s, fed record by record as `verify_tree` feeds it;
//! - anything else out of the ordinary (a record of no stream, a row or stored leaf that
//!   does not decode, an older file format, any read error) gives `None`, and the caller
//!   runs the two walks, whose errors and findings are then the report.

use super::*;
use crate::hash::{HashInput, MetadataRef, record_hash};
use crate::sqlite_ledger::{LedgerMerge, Slot};
use crate::tree::read::TreeWalk;
use crate::tree::{empty_root, fold_cover, perfect_cover};

/// The chain state of one stream in a walk in position order.
#[derive(Clone)]
struct StreamWalk {
    expected_version: u64,
    prev_hash: Hash,
    events: u64,
    /// Something did not follow on: the stream is walked again in version order.
    again: bool,
}

impl StreamWalk {
    fn new() -> Self {
        StreamWalk {
            expected_version: 1,
            prev_hash: GENESIS_HASH,
            events: 0,
            again: false,
        }
    }

    /// The next record of the stream in position order, with the hash recomputed from it.
    fn follow(&mut self, row: &RowView<'_>, computed: &Hash) {
        let follows = row.version == self.expected_version
            && row.prev_hash == self.prev_hash
            && *computed == row.hash;
        if self.again || !follows {
            self.again = true;
            return;
        }
        self.expected_version += 1;
        self.prev_hash = row.hash;
        self.events += 1;
    }
}

/// One `events` row (columns in [`EVENT_COLUMNS`] order) borrowed from SQLite, validated
/// as [`decode_row`] validates it.
struct RowView<'r> {
    position: u64,
    stream_key: i64,
    version: u64,
    event_id: Uuid,
    recorded_at_ns: i64,
    event_type: &'r str,
    schema_version: u32,
    payload: &'r [u8],
    metadata: MetadataRef<'r>,
    prev_hash: Hash,
    hash: Hash,
}

fn row_view<'r>(row: &'r Row<'_>) -> Result<RowView<'r>, StoreError> {
    let position = row.get_ref(0)?.as_i64()?;
    let version = row.get_ref(2)?.as_i64()?;
    let schema_version = row.get_ref(6)?.as_i64()?;
    let schema_version = u32::try_from(schema_version).ok().filter(|v| *v >= 1);
    let (Some(schema_version), true) = (schema_version, position >= 1 && version >= 1) else {
        return Err(StoreError::corrupt(format!(
            "record at position {position} does not decode"
        )));
    };
    let payload = match row.get_ref(7)? {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b,
        _ => return Err(StoreError::corrupt("a payload is neither BLOB nor TEXT")),
    };
    let command_id = opt_uuid_at(row, 9, "command id")?;
    Ok(RowView {
        position: position as u64,
        stream_key: row.get_ref(1)?.as_i64()?,
        version: version as u64,
        event_id: blob_uuid(row.get_ref(3)?.as_blob()?, "event id")?,
        recorded_at_ns: row.get_ref(4)?.as_i64()?,
        event_type: row.get_ref(5)?.as_str()?,
        schema_version,
        payload,
        metadata: MetadataRef {
            actor: row.get_ref(8)?.as_str()?,
            command_id,
            correlation_id: correlation_at(row, 10, command_id)?,
            causation_id: opt_uuid_at(row, 11, "causation id")?,
        },
        prev_hash: blob_hash(row.get_ref(12)?.as_blob()?, "prev_hash")?,
        hash: blob_hash(row.get_ref(13)?.as_blob()?, "hash")?,
    })
}

impl RowView<'_> {
    /// The fields the ledger rules look at.
    fn ledger_slot(&self) -> Slot {
        Slot {
            position: self.position as i64,
            stream_key: self.stream_key,
            version: self.version as i64,
            command_id: self.metadata.command_id.map(Uuid::into_bytes),
        }
    }

    /// The record's chain hash recomputed from its fields and its stored `prev_hash`.
    fn recompute(&self, stream_id: &str) -> Hash {
        record_hash(
            &self.prev_hash,
            &HashInput {
                stream_id,
                version: self.version,
                event_id: self.event_id,
                recorded_at_ns: self.recorded_at_ns,
                event_type: self.event_type,
                schema_version: self.schema_version,
                payload: self.payload,
                metadata: self.metadata,
            },
        )
    }
}

/// Both checks of the log in one pass, or `None` when the two walks must give the report
/// (see the module documentation). `head` is the store's head position, as the tree walk
/// reads it.
pub(super) fn log_in_one_pass(
    conn: &Connection,
    shared: &Shared,
    head: u64,
    prefix_size: Option<u64>,
) -> Option<LogVerification> {
    if shared.tree_layout == TreeLayout::NodeRows || stores_stream_heads(shared.format) {
        return None;
    }
    conn.execute_batch("BEGIN").ok()?;
    let result = one_pass(conn, shared, head, prefix_size);
    let _ = conn.execute_batch("COMMIT");
    result.ok()
}

fn one_pass(
    conn: &Connection,
    shared: &Shared,
    head: u64,
    prefix_size: Option<u64>,
) -> Result<LogVerification, StoreError> {
    let streams = streams_to_verify(conn, shared.format, None)?;
    let slots: HashMap<i64, usize, BuildKeyHasher> = streams
        .iter()
        .enumerate()
        .map(|(slot, (key, _, _))| (*key, slot))
        .collect();
    let mut chains = vec![StreamWalk::new(); streams.len()];
    let mut tree = TreeWalk::new(head, prefix_size);
    let mut ledger_rows = LedgerMerge::statement(conn)?;
    let mut ledger = LedgerMerge::new(&mut ledger_rows)?;
    let closed = match shared.tree_layout {
        TreeLayout::ClosedRuns => closed_runs(conn)?,
        _ => HashSet::new(),
    };
    let mut records = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS} FROM events ORDER BY position"
    ))?;
    let mut leaves = conn.prepare("SELECT leaf, nodes FROM tree WHERE leaf >= 0 ORDER BY leaf")?;
    let mut records = records.query([])?;
    let mut leaves = leaves.query([])?;
    while let Some(row) = records.next()? {
        let row = row_view(row)?;
        let Some(&slot) = slots.get(&row.stream_key) else {
            return Err(StoreError::corrupt("a record belongs to no stream"));
        };
        let computed = row.recompute(&streams[slot].1);
        chains[slot].follow(&row, &computed);
        ledger.record(&row.ledger_slot())?;
        let index = tree.records_seen();
        let leaf = record_leaf(row.position, &computed);
        let stored = if !tree.next_has_stored_leaf() {
            None
        } else if closed.contains(&(index / RUN_LEAVES)) {
            Some(closed_run_leaf(&row, index, &computed, leaf)?)
        } else {
            Some(next_stored_leaf(&mut leaves, index)?)
        };
        tree.record(row.position, leaf, stored);
    }
    let mut report = chain_report(conn, &streams, &chains)?;
    (report.ledger_rows_checked, report.ledger) = ledger.finish(conn)?;
    // Every record's stream was found above, so no record lacks its stream row.
    file_check(conn)?;
    let stored_leaves = stored_leaf_count(conn, shared.tree_layout)?;
    let stored_root = if head == 0 {
        empty_root()
    } else {
        let cover = perfect_cover(0, head);
        let hashes = read_tree_nodes(conn, shared.tree_layout, &cover, head)?;
        fold_cover(&hashes).unwrap_or_else(empty_root)
    };
    Ok(LogVerification {
        chains: Ok(report),
        tree: Ok(tree.finish(stored_leaves, stored_root)),
    })
}

/// The leaf at `index` of a closed run, which the tree recomputes from the stored hash of
/// the record at position `index + 1` (`runs.rs`): this row's, or none (the two walks then
/// report what is missing). `leaf` is the one recomputed from the fields, whose chain hash
/// is `computed`: when that equals the stored hash, so do the leaves (no second SHA-256).
fn closed_run_leaf(
    row: &RowView<'_>,
    index: u64,
    computed: &Hash,
    leaf: Hash,
) -> Result<Hash, StoreError> {
    if row.position != index + 1 {
        return Err(StoreError::corrupt(format!(
            "stored leaf {index} is missing"
        )));
    }
    if row.hash == *computed {
        return Ok(leaf);
    }
    Ok(record_leaf(row.position, &row.hash))
}

/// The stored leaf at `index`, the next row of `leaves`.
fn next_stored_leaf(leaves: &mut rusqlite::Rows<'_>, index: u64) -> Result<Hash, StoreError> {
    let missing = || StoreError::corrupt(format!("stored leaf {index} is missing"));
    let row = leaves.next()?.ok_or_else(missing)?;
    if row.get_ref(0)?.as_i64()? != index as i64 {
        return Err(missing());
    }
    let nodes = row.get_ref(1)?.as_blob()?;
    blob_hash(nodes.get(..32).ok_or_else(missing)?, "tree node hash")
}

/// `verify_all`'s chain counts and first broken link from the walk: streams that did not
/// follow on are walked again in version order (in key order, as `verify_all` walks them).
fn chain_report(
    conn: &Connection,
    streams: &[(i64, String, StoredHead)],
    chains: &[StreamWalk],
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    for ((key, id, head), walk) in streams.iter().zip(chains) {
        if walk.again {
            let broken = verify_one(conn, id, *key, *head, &mut report)?;
            if report.first_broken.is_none() {
                report.first_broken = broken;
            }
        } else {
            report.streams_checked += 1;
            report.events_checked += walk.events;
        }
    }
    Ok(report)
}

/// The file's structure, which `verify_all` checks besides the chains and the ledger:
/// pages no query of theirs touched (other indexes, the ledger's b-tree) are checked too.
pub(super) fn file_check(conn: &Connection) -> Result<(), StoreError> {
    let check: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::corrupt(format!("integrity check: {check}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::request;
    use crate::types::ExpectedVersion;

    fn one_pass_of(store: &SqliteStore, prefix: Option<u64>) -> Option<LogVerification> {
        let head = *store.head_rx.borrow();
        store
            .shared
            .with_reader(|conn, shared| Ok(log_in_one_pass(conn, shared, head, prefix)))
            .unwrap()
    }

    /// The one pass answers for an intact log and for one whose records were changed (it
    /// falls back to the two walks only for what it cannot read), so `verify` gets its speed
    /// where it matters; `tests/tamper.rs` checks that it says what the walks say.
    #[tokio::test]
    async fn one_pass_answers_for_intact_and_changed_logs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path, SqliteOptions::normal()).unwrap();
        for (stream, n) in [("a", 3), ("b", 2), ("a", 2)] {
            store
                .append(request(stream, ExpectedVersion::Any, n))
                .await
                .unwrap();
        }
        let intact = one_pass_of(&store, Some(4)).expect("an intact log is checked in one pass");
        assert!(intact.chains.unwrap().is_intact());
        let tree = intact.tree.unwrap();
        assert!(tree.is_intact() && tree.prefix.is_some());
        let raw = Connection::open(&path).unwrap();
        raw.execute("UPDATE events SET actor = 'x' WHERE position = 2", [])
            .unwrap();
        raw.execute("DELETE FROM events WHERE position = 4", [])
            .unwrap();
        let changed = one_pass_of(&store, None).expect("a changed log is checked in one pass");
        let chains = changed.chains.unwrap();
        assert_eq!(
            chains.first_broken.map(|b| (b.stream_id, b.version)),
            Some(("a".to_owned(), 2))
        );
        assert!(!changed.tree.unwrap().is_intact());
    }
}
