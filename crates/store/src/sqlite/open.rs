//! Opening a store file: identity and header checks, read-only opens, the writer's open
//! with migrations that are safe under a creation race, and the Merkle frontier.

use super::*;

pub(super) fn not_caseflow(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::NotACaseflowStore {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Checks the file's identity before anything writes to it.
pub(super) fn check_header(path: &Path) -> Result<bool, StoreError> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(StoreError::Io {
                reason: format!("cannot open {}: {e}", path.display()),
            });
        }
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => {
                return Err(StoreError::Io {
                    reason: format!("cannot read {}: {e}", path.display()),
                });
            }
        }
    }
    if read == 0 {
        // An empty file: SQLite treats it as a new database.
        return Ok(true);
    }
    if read < header.len() || &header != b"SQLite format 3\0" {
        return Err(not_caseflow(path, "the file has no SQLite header"));
    }
    check_not_truncated(path, &mut file)?;
    Ok(true)
}

/// Compares the file length with the page count the header promises. SQLite itself would
/// only notice a truncated file when it reads a missing page, possibly mid-write.
///
/// Not while a non-empty WAL exists: then the newest pages may live in the WAL only (a
/// checkpoint that ran out of disk space after updating the header but before extending the
/// file leaves exactly that), and SQLite reads them from there — such a file is healthy.
pub(super) fn check_not_truncated(path: &Path, file: &mut std::fs::File) -> Result<(), StoreError> {
    use std::io::{Read, Seek, SeekFrom};
    let wal_len = std::fs::metadata(companion(path, "-wal")).map_or(0, |m| m.len());
    if wal_len > 0 {
        return Ok(());
    }
    let len = file
        .metadata()
        .map_err(|e| StoreError::Io {
            reason: format!("cannot stat {}: {e}", path.display()),
        })?
        .len();
    let mut header = [0u8; 100];
    if file.seek(SeekFrom::Start(0)).is_err() || file.read_exact(&mut header).is_err() {
        return Err(StoreError::corrupt(format!(
            "{} is truncated inside the 100-byte SQLite header ({len} bytes)",
            path.display()
        )));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    let page_count = u64::from(be32(28));
    // The in-header size is only valid when the change counter matches "version valid for".
    if page_count > 0 && be32(24) == be32(92) && len < page_count * page_size {
        return Err(StoreError::corrupt(format!(
            "{} is truncated: the header promises {page_count} pages of {page_size} bytes \
             ({} bytes) but the file has {len} bytes",
            path.display(),
            page_count * page_size
        )));
    }
    Ok(())
}

/// Refuses a store file marked read-only before SQLite opens it: SQLite would silently open
/// it read-only and every append would then fail as a retryable I/O error.
pub(super) fn check_writable_file(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().readonly() => Err(StoreError::ReadOnly {
            path: path.display().to_string(),
            reason: "the file is marked read-only; make it writable (chmod u+w) to append, \
                     or open it read-only"
                .to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The error for a connection SQLite opened read-only although writing was asked for (the
/// file or its directory cannot be written by this process).
pub(super) fn read_only_connection(path: &Path, err: Option<&rusqlite::Error>) -> StoreError {
    StoreError::ReadOnly {
        path: path.display().to_string(),
        reason: match err {
            Some(e) => format!("this process cannot write the file or its directory ({e})"),
            None => "this process cannot write the file or its directory".to_owned(),
        },
    }
}

pub(super) fn is_read_only_error(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.code == rusqlite::ErrorCode::ReadOnly || e.code == rusqlite::ErrorCode::CannotOpen)
}

/// The format whose migration creates the Merkle tree; [`fill_tree`] runs in the same
/// transaction, so a file never has the table without the leaves of its records.
pub(super) const TREE_FORMAT: i64 = 2;
/// The format that keeps the tree one row per leaf; [`move_tree`] runs in its migration.
pub(super) const LEAF_TREE_FORMAT: i64 = 3;
/// The first format that closes runs of the tree (`tree_runs`).
pub(super) const RUN_TREE_FORMAT: i64 = 4;

/// Loads the committed tree's frontier. The tree and the log are written in the same
/// transactions, so a tree of another size than the log means rows were removed or added
/// behind the store: the writer refuses to extend it (`caseflow verify` says what changed).
pub(super) fn load_frontier(conn: &Connection, head: u64) -> Result<Frontier, StoreError> {
    let layout = TreeLayout::of_format(FORMAT_VERSION);
    let leaves = stored_leaf_count(conn, layout)?;
    if leaves != head {
        return Err(StoreError::corrupt(format!(
            "the Merkle tree has {leaves} leaves but the log {head} records: rows were removed \
             or added behind the store (run `caseflow verify`)"
        )));
    }
    let hashes = read_tree_nodes(conn, layout, &Frontier::nodes_for(leaves), leaves)?;
    Frontier::from_nodes(leaves, hashes)
        .ok_or_else(|| StoreError::corrupt("the Merkle tree's right edge is incomplete"))
}

/// Leaves in the stored tree (one more than the highest leaf index).
pub(super) fn stored_leaf_count(conn: &Connection, layout: TreeLayout) -> Result<u64, StoreError> {
    let sql = match layout {
        TreeLayout::NodeRows => "SELECT coalesce(max(idx) + 1, 0) FROM tree_nodes WHERE level = 0",
        TreeLayout::LeafRows => "SELECT coalesce(max(leaf) + 1, 0) FROM tree",
        TreeLayout::ClosedRuns => RUN_LEAF_COUNT_SQL,
    };
    let leaves: i64 = conn.query_row(sql, [], |r| r.get(0))?;
    Ok(leaves as u64)
}

/// Builds the tree of every record of a file migrated from format 1, inside the
/// migration's transaction, in format 2's `tree_nodes` (the next migration moves it).
/// Leaves come from the stored record hashes; `verify` later recomputes every one from the
/// record's fields.
pub(super) fn fill_tree(conn: &Connection) -> Result<(), StoreError> {
    let mut frontier = Frontier::new();
    let mut rows = conn.prepare("SELECT position, hash FROM events ORDER BY position")?;
    let mut put = conn.prepare("INSERT INTO tree_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let position = row.get::<_, i64>(0)? as u64;
        if position != frontier.size() + 1 {
            return Err(StoreError::corrupt(format!(
                "cannot build the Merkle tree: expected position {}, found {position}",
                frontier.size() + 1
            )));
        }
        let hash = blob_hash(&row.get::<_, Vec<u8>>(1)?, "record hash")?;
        let mut result = Ok(0);
        frontier.push(record_leaf(position, &hash), |node, hash| {
            if result.is_ok() {
                result = put.execute(params![node.level, node.index as i64, &hash[..]]);
            }
        });
        result?;
    }
    Ok(())
}

/// Moves a format-2 file's `tree_nodes` into format 3's `tree`, inside the migration's
/// transaction, exactly as stored (a node someone changed stays changed, for `verify` to
/// find). Each leaf's row takes its nodes level by level from 0 up; a node above a missing
/// one cannot be placed and is dropped, which `verify` then reports as a missing node.
pub(super) fn move_tree(conn: &Connection) -> Result<(), StoreError> {
    let mut rows = conn.prepare(
        "SELECT ((idx + 1) << level) - 1 AS leaf, level, hash FROM tree_nodes \
         ORDER BY leaf, level",
    )?;
    let mut put = conn.prepare("INSERT INTO tree (leaf, nodes) VALUES (?1, ?2)")?;
    let mut rows = rows.query([])?;
    let mut current: Option<(i64, Vec<u8>)> = None;
    while let Some(row) = rows.next()? {
        let (leaf, level): (i64, i64) = (row.get(0)?, row.get(1)?);
        let hash = blob_hash(row.get_ref(2)?.as_blob()?, "tree node hash")?;
        if current.as_ref().is_some_and(|(l, _)| *l != leaf) {
            if let Some((l, nodes)) = current.take() {
                put.execute(params![l, nodes])?;
            }
        }
        let (_, nodes) = current.get_or_insert_with(|| (leaf, Vec::new()));
        if nodes.len() == 32 * level as usize {
            nodes.extend_from_slice(&hash);
        }
    }
    if let Some((l, nodes)) = current.filter(|(_, n)| !n.is_empty()) {
        put.execute(params![l, nodes])?;
    }
    conn.execute_batch("DROP TABLE tree_nodes")?;
    Ok(())
}

/// Adds a record's leaf to the tree: one row holding the leaf and every node it completes,
/// and when the leaf is its run's last, the run closed (`runs.rs`).
pub(super) fn put_leaf(
    conn: &Connection,
    insert: &mut rusqlite::Statement<'_>,
    frontier: &mut Frontier,
    position: u64,
    record_hash: &Hash,
) -> Result<(), StoreError> {
    let mut nodes = Vec::with_capacity(64);
    frontier.push(record_leaf(position, record_hash), |_, hash| {
        nodes.extend_from_slice(&hash);
    });
    insert.execute(params![(position - 1) as i64, nodes])?;
    if let Some(run) = run_closed_by(position - 1) {
        close_run(conn, run, &nodes)?;
    }
    Ok(())
}

pub(super) fn open_writer_once(
    path: &Path,
    options: &SqliteOptions,
) -> Result<(Connection, i64, Frontier), StoreError> {
    let exists = check_header(path)?;
    if !exists && !options.create_if_missing {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    check_writable_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(read_only_connection(path, None));
    }
    // The page size of a new file; a no-op on a file that has pages. It must come before
    // anything reads the file: after the identity reads below SQLite keeps its default.
    conn.pragma_update(None, "page_size", NEW_FILE_PAGE_SIZE)?;
    conn.execute_batch("PRAGMA cell_size_check = ON;")?;
    // Another process holding the file (e.g. a crashed writer's recovery) is waited for.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Identify the file with read-only pragmas before anything can write to it, all three
    // in one read transaction: another process creating the file at the same moment must
    // not be seen half-way (no identity yet, but its tables already there).
    let (app_id, user_version, tables) = identify(&conn)?;
    if app_id == APPLICATION_ID {
        if user_version > FORMAT_VERSION {
            return Err(StoreError::NewerFormat {
                found: user_version,
                supported: FORMAT_VERSION,
            });
        }
        if user_version < 1 {
            return Err(StoreError::corrupt(format!(
                "Caseflow store with impossible format version {user_version}"
            )));
        }
    } else if app_id != 0 || user_version != 0 || tables != 0 {
        return Err(not_caseflow(
            path,
            format!(
                "application_id {app_id:#x}, user_version {user_version}, {tables} schema objects"
            ),
        ));
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| {
            if is_read_only_error(&e) {
                read_only_connection(path, Some(&e))
            } else {
                e.into()
            }
        })?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io {
            reason: format!("cannot switch {} to WAL mode (got {mode})", path.display()),
        });
    }
    let sync = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.set_prepared_statement_cache_capacity(64);
    stable_plans(&conn)?;
    migrate(&conn, path)?;
    if let Some(pages) = options.max_page_count {
        conn.pragma_update(None, "max_page_count", pages as i64)?;
    }
    let head: i64 = conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
        r.get(0)
    })?;
    let frontier = load_frontier(&conn, head as u64)?;
    Ok((conn, head, frontier))
}

/// [`open_writer_once`], tried again when SQLite answers "database is locked" at once: while
/// several processes create or migrate one file, two can each hold a read lock and want the
/// write lock (to switch to WAL), and SQLite then fails one of them immediately instead of
/// waiting, to avoid a deadlock. Retrying after the other finished is the documented remedy.
pub(super) fn open_writer_retrying(
    path: &Path,
    options: &SqliteOptions,
) -> Result<(Connection, i64, Frontier), StoreError> {
    const ATTEMPTS: u32 = 50;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match open_writer_once(path, options) {
            Err(StoreError::Unavailable { .. }) if attempt < ATTEMPTS => {
                // Spread the retries of racing openers (no clock or randomness needed: the
                // attempt number and the thread id differ between them).
                let spread = u64::from(attempt) * 7 + thread_spread();
                std::thread::sleep(std::time::Duration::from_millis(2 + spread % 20));
            }
            other => return other,
        }
    }
}

pub(super) fn thread_spread() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut h);
    h.finish()
}

/// The file's `application_id`, `user_version` and schema object count, from one snapshot.
///
/// A file that does not identify as a Caseflow store yet may be one that another opener is
/// creating right now, and a snapshot taken without the write lock has been seen to show
/// such a file half-made (its tables, no identity yet). So that answer is only trusted when
/// read again under the write lock (`BEGIN IMMEDIATE`, which waits for the creator's
/// transaction to end): then the file is either still empty or a complete store.
pub(super) fn identify(conn: &Connection) -> Result<(i64, i64, i64), StoreError> {
    let first = identify_in(conn, "BEGIN DEFERRED")?;
    if first.0 == APPLICATION_ID {
        return Ok(first);
    }
    identify_in(conn, "BEGIN IMMEDIATE")
}

/// [`identify`]'s three reads inside one transaction begun with `begin`; nothing is written.
pub(super) fn identify_in(conn: &Connection, begin: &str) -> Result<(i64, i64, i64), StoreError> {
    conn.execute_batch(begin)?;
    let read = (|| -> Result<(i64, i64, i64), StoreError> {
        Ok((
            conn.pragma_query_value(None, "application_id", |r| r.get(0))?,
            conn.pragma_query_value(None, "user_version", |r| r.get(0))?,
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?,
        ))
    })();
    let _ = conn.execute_batch("ROLLBACK");
    read
}

/// Brings the file to [`FORMAT_VERSION`], one migration per write transaction.
///
/// Safe when several processes create or upgrade the same file at once: each migration
/// re-reads the format version *inside* its write transaction (which excludes every other
/// writer), so a process that waited for another one's creation finds the tables made and
/// skips them, instead of failing with "table streams already exists".
pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    loop {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = (|| {
            let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let current = if app_id == APPLICATION_ID {
                version
            } else {
                let tables: i64 =
                    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
                if app_id != 0 || version != 0 || tables != 0 {
                    return Err(not_caseflow(
                        path,
                        format!(
                            "application_id {app_id:#x}, user_version {version}, {tables} schema objects"
                        ),
                    ));
                }
                0
            };
            if current >= FORMAT_VERSION {
                return Ok(false);
            }
            let sql = MIGRATIONS[current as usize];
            let to = current + 1;
            conn.execute_batch(&format!(
                "{sql}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {to};"
            ))?;
            if to == TREE_FORMAT {
                fill_tree(conn)?;
            }
            if to == LEAF_TREE_FORMAT {
                move_tree(conn)?;
            }
            if to == RUN_TREE_FORMAT {
                close_stored_runs(conn)?;
            }
            Ok(true)
        })();
        match step {
            Ok(migrated) => {
                conn.execute_batch("COMMIT")?;
                if !migrated {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

/// Opens a store file for reading only (see [`SqliteStore::open_read_only`]).
/// Returns the connection, how it reads, and the file's format.
pub(super) fn open_read_only_reader(
    path: &Path,
) -> Result<(Connection, ReaderAccess, i64), StoreError> {
    let display = path.display().to_string();
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Missing { path: display });
        }
        Err(e) => {
            return Err(StoreError::Io {
                reason: format!("cannot open {display}: {e}"),
            });
        }
        Ok(meta) if !meta.is_file() => {
            return Err(not_caseflow(path, "it is not a regular file"));
        }
        Ok(meta) if meta.len() == 0 => {
            return Err(not_caseflow(path, "the file is empty (0 bytes)"));
        }
        Ok(_) => {}
    }
    check_header(path)?;
    let closed = !companion(path, "-wal").exists() && !companion(path, "-shm").exists();
    let access = if closed {
        ReaderAccess::Immutable
    } else {
        ReaderAccess::Shared
    };
    let conn = open_reader(path, access)?;
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let user_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if app_id != APPLICATION_ID {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        return Err(not_caseflow(
            path,
            format!(
                "application_id {app_id:#x}, user_version {user_version}, {tables} schema objects"
            ),
        ));
    }
    if user_version > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            found: user_version,
            supported: FORMAT_VERSION,
        });
    }
    if user_version < 1 {
        return Err(StoreError::corrupt(format!(
            "Caseflow store with impossible format version {user_version}"
        )));
    }
    Ok((conn, access, user_version))
}
