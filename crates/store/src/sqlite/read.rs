//! Read connections and what they read: rows, streams, the log, tree nodes, chain checks.

use super::*;

impl Shared {
    pub(super) fn poison(&self, reason: String) {
        let mut p = lock(&self.poisoned);
        if p.is_none() {
            tracing::error!(%reason, "event store refuses further writes until reopened");
            *p = Some(reason);
        }
        self.poisoned_flag.store(true, Ordering::SeqCst);
    }

    pub(super) fn check_writable(&self) -> Result<(), StoreError> {
        if self.poisoned_flag.load(Ordering::SeqCst) {
            let reason = lock(&self.poisoned).clone().unwrap_or_default();
            return Err(StoreError::WritesRefused { reason });
        }
        Ok(())
    }

    /// Runs `f` on a pooled read-only connection. A corruption error poisons writes.
    pub(super) fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection, &Shared) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_reader(&self.path, self.access)?,
        };
        let result = f(&conn, self);
        {
            let mut pool = lock(&self.readers);
            if pool.len() < self.read_connections && !self.closing.load(Ordering::SeqCst) {
                pool.push(conn);
            }
        }
        if let Err(StoreError::Corrupt { reason }) = &result {
            self.poison(format!("corruption detected: {reason}"));
        }
        result
    }

    /// The stream id of `key`, from `names` (the locked cache) or the `streams` table.
    pub(super) fn stream_name(
        names: &mut HashMap<i64, Arc<str>, BuildKeyHasher>,
        conn: &Connection,
        key: i64,
    ) -> Result<Arc<str>, StoreError> {
        if let Some(n) = names.get(&key) {
            return Ok(n.clone());
        }
        let name: Option<String> = conn
            .prepare_cached("SELECT stream_id FROM streams WHERE stream_key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        let Some(name) = name else {
            return Err(StoreError::corrupt(format!(
                "event refers to stream key {key}, which has no stream row"
            )));
        };
        let name: Arc<str> = name.into();
        if names.len() > 100_000 {
            names.clear();
        }
        names.insert(key, name.clone());
        Ok(name)
    }
}

pub(super) fn open_reader(path: &Path, access: ReaderAccess) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match access {
        ReaderAccess::Shared => Connection::open_with_flags(path, flags)?,
        ReaderAccess::Immutable => {
            Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)?
        }
    };
    // A large page cache: a stream's records are spread over the position-ordered table,
    // so a stream read touches one page per record. (Readers skip `cell_size_check`: it
    // re-validates every page on load and doubled read cost; they cannot write, and
    // `verify_all` runs a full `quick_check`.)
    // A reader opened while another process creates or migrates the file (still in
    // rollback-journal mode, so under a file lock) waits for it like the writer does.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA mmap_size = 1073741824;")?;
    conn.set_prepared_statement_cache_capacity(32);
    stable_plans(&conn)?;
    Ok(conn)
}

/// A `file:` URI that opens `path` read-only and immutable (see [`ReaderAccess::Immutable`]).
pub(super) fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    uri
}

/// The path of one of SQLite's companion files (`-wal`, `-shm`).
pub(super) fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Turns on SQLite's query planner stability guarantee for a connection. Without it, the
/// bundled SQLite (built with STAT4) marks statements whose plan looked at a bound value,
/// and rusqlite's statement cache clears the bindings when a statement goes back to the
/// cache, which expires such a statement: every cached read was re-prepared on its next use
/// (measured with callgrind: ~133k of the ~333k instructions of a 20-event stream read).
/// The store's statements are simple indexed lookups whose plan never depends on a value.
pub(super) fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

pub(super) fn blob_uuid(bytes: &[u8], what: &str) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::corrupt(format!("{what} is not 16 bytes")))
}

/// Reads an optional UUID column without allocating.
pub(super) fn opt_uuid_at(
    row: &Row<'_>,
    index: usize,
    what: &str,
) -> Result<Option<Uuid>, StoreError> {
    row.get_ref(index)?
        .as_blob_or_null()?
        .map(|b| blob_uuid(b, what))
        .transpose()
}

/// How a record's correlation id is stored: an empty blob when it is the record's command
/// id (the engine correlates every command's events with the command itself), so those 16
/// bytes are not stored twice (format 4; older files hold the id in full, which reads alike).
pub(super) fn encode_correlation(m: &Metadata) -> Option<&[u8]> {
    match &m.correlation_id {
        Some(c) if m.command_id.as_ref() == Some(c) => Some(&[]),
        other => other.as_ref().map(|u| u.as_bytes().as_slice()),
    }
}

/// Reads the correlation id column written by [`encode_correlation`].
pub(super) fn correlation_at(
    row: &Row<'_>,
    index: usize,
    command_id: Option<Uuid>,
) -> Result<Option<Uuid>, StoreError> {
    match row.get_ref(index)?.as_blob_or_null()? {
        Some([]) => command_id.map(Some).ok_or_else(|| {
            StoreError::corrupt("a correlation id refers to the command id of a record without one")
        }),
        other => other.map(|b| blob_uuid(b, "correlation id")).transpose(),
    }
}

pub(super) fn blob_hash(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("{what} is not 32 bytes")))
}

/// Decodes one `events` row (columns in [`EVENT_COLUMNS`] order), validating every field.
pub(crate) fn decode_row(row: &Row<'_>, stream_id: String) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.get(0)?;
    let version: i64 = row.get(2)?;
    let recorded_at_ns: i64 = row.get(4)?;
    let schema_version: i64 = row.get(6)?;
    if position < 1 || version < 1 {
        return Err(StoreError::corrupt(format!(
            "record at position {position} has version {version}"
        )));
    }
    let schema_version = u32::try_from(schema_version)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            StoreError::corrupt(format!(
                "record at position {position} has schema version {schema_version}"
            ))
        })?;
    let event_id = blob_uuid(row.get_ref(3)?.as_blob()?, "event id")?;
    Ok(RecordedEvent {
        event_id,
        stream_id,
        version: version as u64,
        position: position as u64,
        recorded_at: DateTime::from_timestamp_nanos(recorded_at_ns),
        event_type: row.get(5)?,
        schema_version,
        payload: payload_at(row, 7, position)?,
        metadata: {
            let command_id = opt_uuid_at(row, 9, "command id")?;
            Metadata {
                actor: row.get(8)?,
                command_id,
                correlation_id: correlation_at(row, 10, command_id)?,
                causation_id: opt_uuid_at(row, 11, "causation id")?,
            }
        },
        prev_hash: blob_hash(row.get_ref(12)?.as_blob()?, "prev_hash")?,
        hash: blob_hash(row.get_ref(13)?.as_blob()?, "hash")?,
    })
}

/// A payload's bytes, stored as a BLOB or — when someone rewrote it with a text literal,
/// as plain `sqlite3` does — as TEXT. Either way the bytes are returned, so the hash chain
/// names the changed record instead of the whole log becoming unreadable.
pub(super) fn payload_at(
    row: &Row<'_>,
    index: usize,
    position: i64,
) -> Result<Vec<u8>, StoreError> {
    match row.get_ref(index)? {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Ok(b.to_vec()),
        other => Err(StoreError::corrupt(format!(
            "record at position {position} has a payload of type {:?}",
            other.data_type()
        ))),
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(err: rusqlite::types::FromSqlError) -> Self {
        StoreError::corrupt(err.to_string())
    }
}

/// Reads log records from `from` on a read connection.
pub(super) fn read_log(
    conn: &Connection,
    shared: &Shared,
    from: u64,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position >= ?1 ORDER BY position"
    ))?;
    // No LIMIT parameter: stepping stops after `max` rows anyway, and a bound LIMIT made
    // SQLite re-prepare the statement on every call (measured: +15% per read).
    let mut rows = stmt.query(params![from.max(1) as i64])?;
    let mut out = Vec::with_capacity(max.min(4096));
    let mut last_key = i64::MIN;
    let mut last_name: Arc<str> = Arc::from("");
    // One lock of the name cache per batch, not one per row: in an interleaved log the
    // stream changes on almost every row. Only readers take this lock.
    let mut names = lock(&shared.stream_names);
    while out.len() < max {
        let Some(row) = rows.next()? else { break };
        let key: i64 = row.get(1)?;
        if key != last_key {
            last_name = Shared::stream_name(&mut names, conn, key)?;
            last_key = key;
        }
        out.push(decode_row(row, String::from(&*last_name))?);
    }
    Ok(out)
}

/// Reads stored tree nodes, each of which must lie inside a tree of `size` leaves.
pub(super) fn read_tree_nodes(
    conn: &Connection,
    layout: TreeLayout,
    nodes: &[TreeNode],
    size: u64,
) -> Result<Vec<Hash>, StoreError> {
    if let Some(&node) = nodes.iter().find(|&&n| !node_within(n, size)) {
        return Err(StoreError::InvalidRequest {
            reason: format!("tree node {node:?} is outside a tree of {size} leaves"),
        });
    }
    let missing = |node: TreeNode| {
        StoreError::corrupt(format!(
            "tree node {node:?} of a tree of {size} leaves is missing"
        ))
    };
    match layout {
        TreeLayout::NodeRows => {
            let mut stmt =
                conn.prepare_cached("SELECT hash FROM tree_nodes WHERE level = ?1 AND idx = ?2")?;
            nodes
                .iter()
                .map(|&node| {
                    let hash: Option<Vec<u8>> = stmt
                        .query_row(params![node.level, node.index as i64], |r| r.get(0))
                        .optional()?;
                    match hash {
                        Some(h) => blob_hash(&h, "tree node hash"),
                        None => Err(missing(node)),
                    }
                })
                .collect()
        }
        TreeLayout::LeafRows => read_leaf_rows(conn, nodes, missing),
        TreeLayout::ClosedRuns => read_run_rows(conn, nodes, missing),
    }
}

/// [`read_tree_nodes`] for format 3. A run of consecutive leaves (what a full tree check
/// asks for, 4,096 at a time) is one range scan; any other node is one row lookup.
fn read_leaf_rows(
    conn: &Connection,
    nodes: &[TreeNode],
    missing: impl Fn(TreeNode) -> StoreError,
) -> Result<Vec<Hash>, StoreError> {
    read_by_leaf_runs(
        nodes,
        |first, count, out| read_leaf_run(conn, first, count, out, &missing),
        |node| {
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
        },
    )
}

/// `nodes`' hashes in order, for both tree layouts: each run of consecutive leaves (what a
/// full tree check asks for) through `leaves(first, count, out)`, one range read, and any
/// other node through `node`.
pub(super) fn read_by_leaf_runs(
    nodes: &[TreeNode],
    mut leaves: impl FnMut(u64, usize, &mut Vec<Hash>) -> Result<(), StoreError>,
    mut node: impl FnMut(TreeNode) -> Result<Hash, StoreError>,
) -> Result<Vec<Hash>, StoreError> {
    let mut out = Vec::with_capacity(nodes.len());
    let mut at = 0;
    while at < nodes.len() {
        let run = consecutive_leaves(&nodes[at..]);
        if run > 1 {
            leaves(nodes[at].index, run, &mut out)?;
            at += run;
        } else {
            out.push(node(nodes[at])?);
            at += 1;
        }
    }
    Ok(out)
}

/// How many of `nodes`, from the first, are consecutive leaves.
fn consecutive_leaves(nodes: &[TreeNode]) -> usize {
    nodes
        .iter()
        .enumerate()
        .take_while(|(i, n)| n.level == 0 && n.index == nodes[0].index + *i as u64)
        .count()
}

/// The hashes of leaves `first..first + count`, in order, from one range scan.
pub(super) fn read_leaf_run(
    conn: &Connection,
    first: u64,
    count: usize,
    out: &mut Vec<Hash>,
    missing: &impl Fn(TreeNode) -> StoreError,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT leaf, nodes FROM tree WHERE leaf >= ?1 AND leaf < ?2 ORDER BY leaf",
    )?;
    let mut rows = stmt.query(params![first as i64, (first + count as u64) as i64])?;
    let mut expected = first;
    while let Some(row) = rows.next()? {
        let leaf = row.get::<_, i64>(0)? as u64;
        let blob = row.get_ref(1)?.as_blob()?;
        let node = TreeNode {
            level: 0,
            index: expected,
        };
        if leaf != expected {
            return Err(missing(node));
        }
        out.push(blob_hash(
            blob.get(..32).ok_or_else(|| missing(node))?,
            "tree node hash",
        )?);
        expected += 1;
    }
    if expected != first + count as u64 {
        return Err(missing(TreeNode {
            level: 0,
            index: expected,
        }));
    }
    Ok(())
}

/// A stream's key and version (its last record's, or its head row's in formats 1 and 2).
pub(super) fn stream_key_of(
    conn: &Connection,
    format: i64,
    stream_id: &str,
) -> Result<Option<(i64, u64)>, StoreError> {
    let sql = if stores_stream_heads(format) {
        "SELECT stream_key, version FROM streams WHERE stream_id = ?1"
    } else {
        "SELECT s.stream_key, (SELECT coalesce(max(e.version), 0) FROM events e \
         WHERE e.stream_key = s.stream_key) FROM streams s WHERE s.stream_id = ?1"
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([stream_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .optional()?)
}

/// A stream head stored apart from the records (formats 1 and 2), which the walk of the
/// stream's chain must end at.
pub(super) type StoredHead = Option<(u64, [u8; 32])>;

/// Every stream's key, id and stored head, in key order.
pub(super) fn streams_to_verify(
    conn: &Connection,
    format: i64,
    only: Option<&str>,
) -> Result<Vec<(i64, String, StoredHead)>, StoreError> {
    let heads = stores_stream_heads(format);
    let columns = if heads {
        "stream_key, stream_id, version, head_hash"
    } else {
        "stream_key, stream_id, NULL, NULL"
    };
    let filter = if only.is_some() {
        "WHERE stream_id = ?1"
    } else {
        ""
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {columns} FROM streams {filter} ORDER BY stream_key"
    ))?;
    let mut rows = match only {
        Some(id) => stmt.query([id])?,
        None => stmt.query([])?,
    };
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let head = match (r.get::<_, Option<i64>>(2)?, r.get::<_, Option<Vec<u8>>>(3)?) {
            (Some(version), Some(hash)) => {
                Some((version as u64, blob_hash(&hash, "stream head hash")?))
            }
            _ => None,
        };
        out.push((r.get(0)?, r.get(1)?, head));
    }
    Ok(out)
}

pub(super) fn read_stream_rows(
    conn: &Connection,
    shared: &Shared,
    stream_id: &str,
    from_version: u64,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let cached = lock(&shared.stream_keys).get(stream_id).copied();
    let key = match cached {
        Some(key) => key,
        None => {
            let Some((key, _)) = stream_key_of(conn, shared.format, stream_id)? else {
                return Ok(Vec::new());
            };
            let mut keys = lock(&shared.stream_keys);
            if keys.len() > 100_000 {
                keys.clear();
            }
            keys.insert(stream_id.to_owned(), key);
            key
        }
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream_key = ?1 AND version >= ?2 \
         ORDER BY version"
    ))?;
    // No LIMIT parameter (see `read_log`).
    let mut rows = stmt.query(params![key, from_version.max(1) as i64])?;
    let mut out = Vec::new();
    while out.len() < max {
        let Some(row) = rows.next()? else { break };
        out.push(decode_row(row, stream_id.to_owned())?);
    }
    Ok(out)
}

/// Walks one stream's chain; it must end at `head` when the file stores one.
pub(super) fn verify_one(
    conn: &Connection,
    stream_id: &str,
    key: i64,
    head: StoredHead,
    report: &mut VerifyReport,
) -> Result<Option<BrokenLink>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream_key = ?1 ORDER BY version"
    ))?;
    let mut rows = stmt.query([key])?;
    let mut walker = ChainWalker::new();
    report.streams_checked += 1;
    while let Some(row) = rows.next()? {
        let e = decode_row(row, stream_id.to_owned())?;
        report.events_checked += 1;
        if let Some(broken) = walker.link_at(stream_id, &e) {
            return Ok(Some(broken));
        }
    }
    Ok(head.and_then(|(version, hash)| walker.end_at(stream_id, version, hash)))
}
