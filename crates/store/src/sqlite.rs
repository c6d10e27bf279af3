//! The SQLite backend: WAL, one writer thread with group commit, pooled read connections.
//!
//! See `docs/design.md` for the file format. In short: `streams` maps each stream id to a
//! small integer `stream_key` (so the `(stream_key, version)` index stays compact and local),
//! `events` is keyed by the global position (append-only, perfectly local inserts), and
//! `commands` is the command-id ledger.
//!
//! **Group commit.** Every append goes through a bounded queue to a single writer thread
//! that owns the write connection. The writer drains whatever is queued (up to
//! [`SqliteOptions::batch_requests_max`]), runs each request inside its own SAVEPOINT
//! against the in-batch state, and commits them all in one transaction (one fsync). Each
//! caller gets its own result, exactly as if it had committed alone: a conflicting request
//! rolls back only its savepoint. Positions are assigned by this one writer at commit
//! order, and readers (WAL snapshots) see whole transactions, so position n+1 is never
//! visible before n.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::DateTime;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::{ChainWalker, GENESIS_HASH, HashInput, record_hash};
use crate::store::{EventStore, LogSource, Subscription};
use crate::tree::{Frontier, Hash, TreeNode, read::node_within, record_leaf};
use crate::types::{
    AppendOutcome, AppendRequest, BrokenLink, LinkFault, Metadata, RecordedEvent, VerifyReport,
    validate_stream_id,
};

/// `PRAGMA application_id` of a Caseflow store ("CFLW").
pub const APPLICATION_ID: i64 = 0x4346_4C57;
/// The newest file format (`PRAGMA user_version`) this build reads and writes.
pub const FORMAT_VERSION: i64 = 2;

/// Schema migrations; `MIGRATIONS[i]` takes the file from format `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Format 1: the initial schema.
    "CREATE TABLE streams (
        stream_key INTEGER PRIMARY KEY,
        stream_id  TEXT    NOT NULL UNIQUE,
        version    INTEGER NOT NULL,
        head_hash  BLOB    NOT NULL
    );
    CREATE TABLE events (
        position       INTEGER PRIMARY KEY,
        stream_key     INTEGER NOT NULL,
        version        INTEGER NOT NULL,
        event_id       BLOB    NOT NULL,
        recorded_at_ns INTEGER NOT NULL,
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        payload        BLOB    NOT NULL,
        actor          TEXT    NOT NULL,
        command_id     BLOB,
        correlation_id BLOB,
        causation_id   BLOB,
        prev_hash      BLOB    NOT NULL,
        hash           BLOB    NOT NULL
    );
    CREATE UNIQUE INDEX events_by_stream ON events (stream_key, version);
    CREATE UNIQUE INDEX events_by_event_id ON events (event_id);
    CREATE TABLE commands (
        command_id     BLOB    PRIMARY KEY,
        stream_key     INTEGER NOT NULL,
        first_version  INTEGER NOT NULL,
        last_version   INTEGER NOT NULL,
        first_position INTEGER NOT NULL,
        last_position  INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // Format 2: the Merkle tree over the log (issue 11). Every perfect subtree root,
    // `(level, idx)` covering leaves [idx·2^level, (idx+1)·2^level); `fill_tree` fills it
    // for the records of a format-1 file in this migration's transaction.
    "CREATE TABLE tree_nodes (
        level INTEGER NOT NULL,
        idx   INTEGER NOT NULL,
        hash  BLOB    NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;",
];

/// SQLite `synchronous` setting for the write connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=FULL` (default): an acknowledged append survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL` (opt-in): in WAL mode an acknowledged append survives a process
    /// crash, but the last commits may be lost on power loss or an OS crash. Faster.
    Normal,
}

/// Options for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Capacity of the writer's request queue; callers wait (back-pressure) when it is full.
    pub queue_capacity: usize,
    /// Most append requests committed in one transaction.
    pub batch_requests_max: usize,
    /// Read connections kept open for reuse (more are opened on demand and closed after use).
    pub read_connections: usize,
    /// Create the file if it does not exist.
    pub create_if_missing: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            queue_capacity: 4096,
            batch_requests_max: 1024,
            read_connections: 4,
            create_if_missing: true,
        }
    }
}

impl SqliteOptions {
    /// Defaults with `synchronous=NORMAL`.
    pub fn normal() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Self::default()
        }
    }
}

pub(crate) const EVENT_COLUMNS: &str = "position, stream_key, version, event_id, recorded_at_ns, event_type, \
     schema_version, payload, actor, command_id, correlation_id, causation_id, prev_hash, hash";

/// State shared by the store handle, the writer and subscriptions.
struct Shared {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    read_connections: usize,
    /// stream_key -> stream_id, filled on demand by readers.
    stream_names: Mutex<HashMap<i64, Arc<str>, BuildKeyHasher>>,
    /// stream_id -> stream_key (keys never change once assigned), filled on demand.
    stream_keys: Mutex<HashMap<String, i64>>,
    /// Set when a commit failed or corruption was found: the store refuses writes.
    poisoned: Mutex<Option<String>>,
    poisoned_flag: AtomicBool,
    /// Test hook: make the next commits fail as a failed fsync would.
    fail_commits: Arc<AtomicBool>,
    /// Set when the handle is dropped: readers are no longer pooled, so the writer's
    /// connection is the last to close and can checkpoint and remove the WAL.
    closing: AtomicBool,
    /// How readers open the file (read-only; immutable for a closed store opened read-only).
    access: ReaderAccess,
}

/// How read connections open the store file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderAccess {
    /// Read-only, sharing the WAL with a writer (this store's own, or another process's).
    Shared,
    /// Read-only and immutable: the store was opened read-only while no WAL or shared-memory
    /// file existed, i.e. no process had it open and it was closed cleanly. SQLite then
    /// creates no `-wal`/`-shm` files and takes no locks, so reading leaves every file
    /// exactly as it was.
    Immutable,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn poison(&self, reason: String) {
        let mut p = lock(&self.poisoned);
        if p.is_none() {
            tracing::error!(%reason, "event store refuses further writes until reopened");
            *p = Some(reason);
        }
        self.poisoned_flag.store(true, Ordering::SeqCst);
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.poisoned_flag.load(Ordering::SeqCst) {
            let reason = lock(&self.poisoned).clone().unwrap_or_default();
            return Err(StoreError::WritesRefused { reason });
        }
        Ok(())
    }

    /// Runs `f` on a pooled read-only connection. A corruption error poisons writes.
    fn with_reader<T>(
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
    fn stream_name(
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

/// Hashes the store's own integer stream keys. They are assigned by the store, not chosen
/// by callers, so a fast non-keyed hash is safe here (SipHash was a visible part of
/// decoding each row of an interleaved log).
#[derive(Default, Clone, Copy)]
struct BuildKeyHasher;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::BuildHasher for BuildKeyHasher {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i64(&mut self, n: i64) {
        // Fibonacci hashing: spreads consecutive keys over the high bits hashbrown uses.
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn open_reader(path: &Path, access: ReaderAccess) -> Result<Connection, StoreError> {
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
    conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA mmap_size = 1073741824;")?;
    conn.set_prepared_statement_cache_capacity(32);
    stable_plans(&conn)?;
    Ok(conn)
}

/// A `file:` URI that opens `path` read-only and immutable (see [`ReaderAccess::Immutable`]).
fn immutable_uri(path: &Path) -> String {
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
fn companion(path: &Path, suffix: &str) -> PathBuf {
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
fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn blob_uuid(bytes: &[u8], what: &str) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::corrupt(format!("{what} is not 16 bytes")))
}

/// Reads an optional UUID column without allocating.
fn opt_uuid_at(row: &Row<'_>, index: usize, what: &str) -> Result<Option<Uuid>, StoreError> {
    row.get_ref(index)?
        .as_blob_or_null()?
        .map(|b| blob_uuid(b, what))
        .transpose()
}

fn blob_hash(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
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
        payload: row.get(7)?,
        metadata: Metadata {
            actor: row.get(8)?,
            command_id: opt_uuid_at(row, 9, "command id")?,
            correlation_id: opt_uuid_at(row, 10, "correlation id")?,
            causation_id: opt_uuid_at(row, 11, "causation id")?,
        },
        prev_hash: blob_hash(row.get_ref(12)?.as_blob()?, "prev_hash")?,
        hash: blob_hash(row.get_ref(13)?.as_blob()?, "hash")?,
    })
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(err: rusqlite::types::FromSqlError) -> Self {
        StoreError::corrupt(err.to_string())
    }
}

/// Reads log records from `from` on a read connection.
fn read_log(
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
fn read_tree_nodes(
    conn: &Connection,
    nodes: &[TreeNode],
    size: u64,
) -> Result<Vec<Hash>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM tree_nodes WHERE level = ?1 AND idx = ?2")?;
    nodes
        .iter()
        .map(|&node| {
            if !node_within(node, size) {
                return Err(StoreError::InvalidRequest {
                    reason: format!("tree node {node:?} is outside a tree of {size} leaves"),
                });
            }
            let hash: Option<Vec<u8>> = stmt
                .query_row(params![node.level, node.index as i64], |r| r.get(0))
                .optional()?;
            match hash {
                Some(h) => blob_hash(&h, "tree node hash"),
                None => Err(StoreError::corrupt(format!(
                    "tree node {node:?} of a tree of {size} leaves is missing"
                ))),
            }
        })
        .collect()
}

fn stream_key_of(conn: &Connection, stream_id: &str) -> Result<Option<(i64, u64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT stream_key, version FROM streams WHERE stream_id = ?1")?
        .query_row([stream_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .optional()?)
}

fn read_stream_rows(
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
            let Some((key, _)) = stream_key_of(conn, stream_id)? else {
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

fn verify_one(
    conn: &Connection,
    stream_id: &str,
    key: i64,
    head_version: u64,
    head_hash: [u8; 32],
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
        if let Some(fault) = walker.check(&e) {
            return Ok(Some(BrokenLink {
                stream_id: stream_id.to_owned(),
                version: e.version,
                position: Some(e.position),
                fault,
            }));
        }
    }
    if walker.last_version() != head_version || walker.last_hash() != head_hash {
        return Ok(Some(BrokenLink {
            stream_id: stream_id.to_owned(),
            version: walker.last_version(),
            position: None,
            fault: LinkFault::HeadMismatch {
                head_version,
                last_version: walker.last_version(),
            },
        }));
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------
// Opening and migrations
// ---------------------------------------------------------------------------------------

fn not_caseflow(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::NotACaseflowStore {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Checks the file's identity before anything writes to it.
fn check_header(path: &Path) -> Result<bool, StoreError> {
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
fn check_not_truncated(path: &Path, file: &mut std::fs::File) -> Result<(), StoreError> {
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
fn check_writable_file(path: &Path) -> Result<(), StoreError> {
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
fn read_only_connection(path: &Path, err: Option<&rusqlite::Error>) -> StoreError {
    StoreError::ReadOnly {
        path: path.display().to_string(),
        reason: match err {
            Some(e) => format!("this process cannot write the file or its directory ({e})"),
            None => "this process cannot write the file or its directory".to_owned(),
        },
    }
}

fn is_read_only_error(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.code == rusqlite::ErrorCode::ReadOnly || e.code == rusqlite::ErrorCode::CannotOpen)
}

/// The format whose migration creates the Merkle tree; [`fill_tree`] runs in the same
/// transaction, so a file never has the table without the leaves of its records.
const TREE_FORMAT: i64 = 2;

/// Loads the committed tree's frontier. The tree and the log are written in the same
/// transactions, so a tree of another size than the log means rows were removed or added
/// behind the store: the writer refuses to extend it (`caseflow verify` says what changed).
fn load_frontier(conn: &Connection, head: u64) -> Result<Frontier, StoreError> {
    let leaves = stored_leaf_count(conn)?;
    if leaves != head {
        return Err(StoreError::corrupt(format!(
            "the Merkle tree has {leaves} leaves but the log {head} records: rows were removed \
             or added behind the store (run `caseflow verify`)"
        )));
    }
    let hashes = read_tree_nodes(conn, &Frontier::nodes_for(leaves), leaves)?;
    Frontier::from_nodes(leaves, hashes)
        .ok_or_else(|| StoreError::corrupt("the Merkle tree's right edge is incomplete"))
}

/// Leaves in the stored tree (one more than the highest leaf index).
fn stored_leaf_count(conn: &Connection) -> Result<u64, StoreError> {
    let leaves: i64 = conn.query_row(
        "SELECT coalesce(max(idx) + 1, 0) FROM tree_nodes WHERE level = 0",
        [],
        |r| r.get(0),
    )?;
    Ok(leaves as u64)
}

/// Builds the tree of every record of a file migrated from format 1, inside the
/// migration's transaction. Leaves come from the stored record hashes; `verify` later
/// recomputes every one from the record's fields.
fn fill_tree(conn: &Connection) -> Result<(), StoreError> {
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
        put_leaf(&mut put, &mut frontier, position, &hash)?;
    }
    Ok(())
}

/// Adds a record's leaf to the tree and inserts the leaf and every node it completes.
fn put_leaf(
    insert: &mut rusqlite::Statement<'_>,
    frontier: &mut Frontier,
    position: u64,
    record_hash: &Hash,
) -> Result<(), StoreError> {
    let mut result = Ok(());
    frontier.push(record_leaf(position, record_hash), |node, hash| {
        if result.is_ok() {
            result = insert
                .execute(params![node.level, node.index as i64, &hash[..]])
                .map(|_| ());
        }
    });
    Ok(result?)
}

fn open_writer(
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
    conn.execute_batch("PRAGMA cell_size_check = ON;")?;
    // Another process holding the file (e.g. a crashed writer's recovery) is waited for.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Identify the file with read-only pragmas before anything can write to it.
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let user_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
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
    let head: i64 = conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
        r.get(0)
    })?;
    let frontier = load_frontier(&conn, head as u64)?;
    Ok((conn, head, frontier))
}

/// Brings the file to [`FORMAT_VERSION`], one migration per write transaction.
///
/// Safe when several processes create or upgrade the same file at once: each migration
/// re-reads the format version *inside* its write transaction (which excludes every other
/// writer), so a process that waited for another one's creation finds the tables made and
/// skips them, instead of failing with "table streams already exists".
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
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
fn open_read_only_reader(path: &Path) -> Result<(Connection, ReaderAccess), StoreError> {
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
    Ok((conn, access))
}

// ---------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------

type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

struct WriteRequest {
    request: AppendRequest,
    reply: Reply,
}

#[derive(Clone, Copy)]
struct StreamHead {
    key: i64,
    version: u64,
    hash: [u8; 32],
}

struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    head_tx: watch::Sender<u64>,
    next_position: u64,
    /// Committed stream heads (a cache of the `streams` table).
    heads: HashMap<String, StreamHead>,
    /// The committed Merkle tree's right edge: what an append needs to extend the tree.
    frontier: Frontier,
    batch_requests_max: usize,
}

const STREAM_CACHE_MAX: usize = 200_000;

/// A request's effect inside the current batch.
enum Staged {
    Written {
        stream: String,
        head: StreamHead,
        outcome: AppendOutcome,
    },
    Answered(Result<AppendOutcome, StoreError>),
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<WriteRequest>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < self.batch_requests_max {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    /// Runs a parameterless statement through the statement cache (transaction control
    /// runs several times per batch; re-parsing it each time is measurable).
    fn exec(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    fn load_head(&self, stream_id: &str) -> Result<Option<StreamHead>, StoreError> {
        if let Some(h) = self.heads.get(stream_id) {
            return Ok(Some(*h));
        }
        let row: Option<(i64, i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT stream_key, version, head_hash FROM streams WHERE stream_id = ?1",
            )?
            .query_row([stream_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(key, version, hash)| {
            Ok(StreamHead {
                key,
                version: version as u64,
                hash: blob_hash(&hash, "stream head hash")?,
            })
        })
        .transpose()
    }

    fn ledger_lookup(
        &self,
        command_id: Uuid,
    ) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        let row: Option<(String, i64, i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT s.stream_id, c.first_version, c.last_version, c.first_position, \
                 c.last_position FROM commands c JOIN streams s ON s.stream_key = c.stream_key \
                 WHERE c.command_id = ?1",
            )?
            .query_row([command_id.as_bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        Ok(row.map(|(s, fv, lv, fp, lp)| {
            (
                s,
                AppendOutcome {
                    first_version: fv as u64,
                    last_version: lv as u64,
                    first_position: fp as u64,
                    last_position: lp as u64,
                    deduplicated: true,
                },
            )
        }))
    }

    /// Stages one request inside the open transaction, in its own savepoint.
    /// `Err` means the whole batch must be abandoned (an I/O error, not a caller error).
    fn stage(
        &self,
        req: &AppendRequest,
        batch_heads: &HashMap<String, StreamHead>,
        batch_ledger: &HashMap<Uuid, (String, AppendOutcome)>,
        next_position: u64,
        frontier: &mut Frontier,
    ) -> Result<Staged, StoreError> {
        if let Some(cid) = req.command_id {
            let found = match batch_ledger.get(&cid) {
                Some(x) => Some(x.clone()),
                None => self.ledger_lookup(cid)?,
            };
            if let Some((stream, outcome)) = found {
                if stream != req.stream_id {
                    return Ok(Staged::Answered(Err(StoreError::CommandIdReused {
                        command_id: cid,
                        original_stream: stream,
                        stream: req.stream_id.clone(),
                    })));
                }
                return Ok(Staged::Answered(Ok(AppendOutcome {
                    deduplicated: true,
                    ..outcome
                })));
            }
        }
        let head = match batch_heads.get(&req.stream_id) {
            Some(h) => Some(*h),
            None => self.load_head(&req.stream_id)?,
        };
        let actual = head.map_or(0, |h| h.version);
        if !req.expected.admits(actual) {
            return Ok(Staged::Answered(Err(StoreError::VersionConflict {
                stream: req.stream_id.clone(),
                expected: req.expected,
                actual,
            })));
        }
        self.exec("SAVEPOINT append")?;
        // The tree grows on a copy, kept only if the savepoint is.
        let mut grown = frontier.clone();
        match self.write_rows(req, head, next_position, &mut grown) {
            Ok((head, outcome)) => {
                self.exec("RELEASE append")?;
                *frontier = grown;
                Ok(Staged::Written {
                    stream: req.stream_id.clone(),
                    head,
                    outcome,
                })
            }
            Err(err) => {
                self.exec("ROLLBACK TO append")?;
                self.exec("RELEASE append")?;
                match err {
                    e @ StoreError::DuplicateEventId { .. } => Ok(Staged::Answered(Err(e))),
                    e => Err(e),
                }
            }
        }
    }

    fn write_rows(
        &self,
        req: &AppendRequest,
        head: Option<StreamHead>,
        first_position: u64,
        frontier: &mut Frontier,
    ) -> Result<(StreamHead, AppendOutcome), StoreError> {
        let key = match head {
            Some(h) => h.key,
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO streams (stream_id, version, head_hash) VALUES (?1, 0, ?2)",
                    )?
                    .execute(params![req.stream_id, &GENESIS_HASH[..]])?;
                self.conn.last_insert_rowid()
            }
        };
        let mut prev = head.map_or(GENESIS_HASH, |h| h.hash);
        let first_version = head.map_or(0, |h| h.version) + 1;
        let recorded_at_ns = req.recorded_at.timestamp_nanos_opt().unwrap_or_default();
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO events ({EVENT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))?;
        let mut put_node = self
            .conn
            .prepare_cached("INSERT INTO tree_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
        for (i, ev) in req.events.iter().enumerate() {
            let version = first_version + i as u64;
            let hash = record_hash(
                &prev,
                &HashInput {
                    stream_id: &req.stream_id,
                    version,
                    event_id: ev.event_id,
                    recorded_at_ns,
                    event_type: &ev.event_type,
                    schema_version: ev.schema_version,
                    payload: &ev.payload,
                    metadata: &ev.metadata,
                },
            );
            let m = &ev.metadata;
            let result = insert.execute(params![
                (first_position + i as u64) as i64,
                key,
                version as i64,
                ev.event_id.as_bytes(),
                recorded_at_ns,
                ev.event_type,
                ev.schema_version,
                ev.payload,
                m.actor,
                m.command_id.as_ref().map(|u| u.as_bytes()),
                m.correlation_id.as_ref().map(|u| u.as_bytes()),
                m.causation_id.as_ref().map(|u| u.as_bytes()),
                &prev[..],
                &hash[..],
            ]);
            if let Err(err) = result {
                if is_unique_violation(&err, "event_id") {
                    return Err(StoreError::DuplicateEventId {
                        event_id: ev.event_id,
                    });
                }
                if is_unique_violation(&err, "events.position")
                    || is_unique_violation(&err, "events.stream_key")
                {
                    // Positions and versions come from this writer alone; a clash means
                    // another process writes to the same file, which the format forbids.
                    let reason = "another writer is appending to this store file".to_owned();
                    self.shared.poison(reason.clone());
                    return Err(StoreError::WritesRefused { reason });
                }
                return Err(err.into());
            }
            put_leaf(&mut put_node, frontier, first_position + i as u64, &hash)?;
            prev = hash;
        }
        let n = req.events.len() as u64;
        let last_version = first_version + n - 1;
        self.conn
            .prepare_cached(
                "UPDATE streams SET version = ?2, head_hash = ?3 WHERE stream_key = ?1",
            )?
            .execute(params![key, last_version as i64, &prev[..]])?;
        let outcome = AppendOutcome {
            first_version,
            last_version,
            first_position,
            last_position: first_position + n - 1,
            deduplicated: false,
        };
        if let Some(cid) = req.command_id {
            self.conn
                .prepare_cached(
                    "INSERT INTO commands (command_id, stream_key, first_version, last_version, \
                     first_position, last_position) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    cid.as_bytes(),
                    key,
                    first_version as i64,
                    last_version as i64,
                    first_position as i64,
                    outcome.last_position as i64
                ])?;
        }
        Ok((
            StreamHead {
                key,
                version: last_version,
                hash: prev,
            },
            outcome,
        ))
    }

    fn commit_batch(&mut self, batch: Vec<WriteRequest>) {
        if let Err(err) = self.shared.check_writable() {
            for r in batch {
                let _ = r.reply.send(Err(clone_refusal(&err)));
            }
            return;
        }
        match self.try_commit_batch(&batch) {
            Ok((results, written)) => {
                // Appends per group commit, i.e. per fsync (a no-op unless the embedding
                // process installed a metrics recorder, as `caseflow serve` does).
                metrics::histogram!("caseflow_store_commit_batch_requests")
                    .record(batch.len() as f64);
                for (stream, head) in written {
                    if self.heads.len() >= STREAM_CACHE_MAX {
                        self.heads.clear();
                    }
                    self.heads.insert(stream, head);
                }
                let last = results
                    .iter()
                    .filter_map(|r| match r {
                        Ok(o) if !o.deduplicated => Some(o.last_position),
                        _ => None,
                    })
                    .max();
                if let Some(last) = last {
                    self.next_position = last + 1;
                    // Publish only after COMMIT returned: readers can see the rows now.
                    self.head_tx.send_replace(last);
                }
                for (r, result) in batch.into_iter().zip(results) {
                    let _ = r.reply.send(result);
                }
            }
            Err((err, committing)) => {
                // Nothing of this batch is known to be durable. After a failed COMMIT
                // (a failed fsync looks like this) SQLite's view of the file cannot be
                // trusted, so refuse writes until the store is reopened.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.heads.clear();
                let reason = err.to_string();
                if committing || matches!(err, StoreError::Corrupt { .. }) {
                    self.shared.poison(format!("commit failed: {reason}"));
                }
                for r in batch {
                    let _ = r.reply.send(Err(StoreError::Io {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// Returns each request's result and the stream heads written, or the error that
    /// aborted the batch and whether it came from COMMIT.
    #[allow(clippy::type_complexity)]
    fn try_commit_batch(
        &mut self,
        batch: &[WriteRequest],
    ) -> Result<
        (
            Vec<Result<AppendOutcome, StoreError>>,
            HashMap<String, StreamHead>,
        ),
        (StoreError, bool),
    > {
        self.exec("BEGIN IMMEDIATE").map_err(|e| (e, false))?;
        let mut batch_heads: HashMap<String, StreamHead> = HashMap::new();
        let mut batch_ledger: HashMap<Uuid, (String, AppendOutcome)> = HashMap::new();
        let mut next_position = self.next_position;
        let mut frontier = self.frontier.clone();
        let mut results = Vec::with_capacity(batch.len());
        for r in batch {
            let staged = self
                .stage(
                    &r.request,
                    &batch_heads,
                    &batch_ledger,
                    next_position,
                    &mut frontier,
                )
                .map_err(|e| (e, false))?;
            match staged {
                Staged::Written {
                    stream,
                    head,
                    outcome,
                } => {
                    next_position = outcome.last_position + 1;
                    if let Some(cid) = r.request.command_id {
                        batch_ledger.insert(cid, (stream.clone(), outcome));
                    }
                    batch_heads.insert(stream, head);
                    results.push(Ok(outcome));
                }
                Staged::Answered(result) => results.push(result),
            }
        }
        if self.shared.fail_commits.load(Ordering::SeqCst) {
            // Test hook: behave exactly like a COMMIT whose fsync failed.
            return Err((
                StoreError::Io {
                    reason: "injected commit failure (simulated fsync error)".into(),
                },
                true,
            ));
        }
        self.exec("COMMIT").map_err(|e| (e, true))?;
        self.frontier = frontier;
        Ok((results, batch_heads))
    }
}

fn clone_refusal(err: &StoreError) -> StoreError {
    StoreError::WritesRefused {
        reason: match err {
            StoreError::WritesRefused { reason } => reason.clone(),
            other => other.to_string(),
        },
    }
}

fn is_unique_violation(err: &rusqlite::Error, column: &str) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(e, Some(msg)) => {
            e.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// The store handle
// ---------------------------------------------------------------------------------------

/// The SQLite-backed [`EventStore`]. Dropping it stops the writer after it has answered
/// every queued append; live subscriptions then end once they have delivered everything.
pub struct SqliteStore {
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<WriteRequest>>,
    head_rx: watch::Receiver<u64>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Only for a store opened read-only (which has no writer): keeps subscriptions open and
    /// publishes the head position re-read by [`EventStore::head_position`].
    read_only_head: Option<watch::Sender<u64>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("head_position", &*self.head_rx.borrow())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (or creates) a store file, running schema migrations if it is older.
    ///
    /// Errors: [`StoreError::NotACaseflowStore`] for a foreign file,
    /// [`StoreError::NewerFormat`] for a file from a newer build, [`StoreError::Corrupt`]
    /// for a damaged one. None of them writes to the file.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (conn, head, frontier) = open_writer(&path, &options)?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            readers: Mutex::new(Vec::new()),
            read_connections: options.read_connections,
            stream_names: Mutex::new(HashMap::default()),
            stream_keys: Mutex::new(HashMap::new()),
            poisoned: Mutex::new(None),
            poisoned_flag: AtomicBool::new(false),
            fail_commits: Arc::new(AtomicBool::new(false)),
            closing: AtomicBool::new(false),
            access: ReaderAccess::Shared,
        });
        // Open one reader now so a broken file fails at open, not at first read.
        let reader = open_reader(&path, ReaderAccess::Shared)?;
        reader.query_row("SELECT count(*) FROM streams", [], |r| r.get::<_, i64>(0))?;
        lock(&shared.readers).push(reader);
        let (head_tx, head_rx) = watch::channel(head as u64);
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let writer = Writer {
            conn,
            shared: shared.clone(),
            head_tx,
            next_position: head as u64 + 1,
            heads: HashMap::new(),
            frontier,
            batch_requests_max: options.batch_requests_max.max(1),
        };
        let handle = std::thread::Builder::new()
            .name("caseflow-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io {
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteStore {
            shared,
            queue: Some(tx),
            head_rx,
            writer: Some(handle),
            read_only_head: None,
        })
    }

    /// Opens an existing store for reading only, as `verify` and the query verbs do: it
    /// never creates, migrates or writes the file, and every append is refused with
    /// [`StoreError::ReadOnly`].
    ///
    /// A store that no process has open (no `-wal` or `-shm` file next to it) is read as an
    /// immutable file: nothing is created next to it and every file stays byte for byte as
    /// it was. A store in use by a writer is read through its WAL, as any reader does.
    ///
    /// Errors: [`StoreError::Missing`] when there is no file, [`StoreError::NotACaseflowStore`]
    /// for an empty or foreign file, [`StoreError::NewerFormat`], [`StoreError::Corrupt`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (reader, access) = open_read_only_reader(&path)?;
        let head: i64 =
            reader.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
                r.get(0)
            })?;
        let shared = Arc::new(Shared {
            path,
            readers: Mutex::new(vec![reader]),
            read_connections: SqliteOptions::default().read_connections,
            stream_names: Mutex::new(HashMap::default()),
            stream_keys: Mutex::new(HashMap::new()),
            poisoned: Mutex::new(None),
            poisoned_flag: AtomicBool::new(false),
            fail_commits: Arc::new(AtomicBool::new(false)),
            closing: AtomicBool::new(false),
            access,
        });
        let (head_tx, head_rx) = watch::channel(head as u64);
        Ok(SqliteStore {
            shared,
            queue: None,
            head_rx,
            writer: None,
            read_only_head: Some(head_tx),
        })
    }

    /// Whether this handle was opened with [`SqliteStore::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only_head.is_some()
    }

    /// The file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Test hook: makes every following commit fail the way a failed fsync does.
    #[doc(hidden)]
    pub fn inject_commit_failure(&self) {
        self.shared.fail_commits.store(true, Ordering::SeqCst);
    }

    async fn blocking_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.with_reader(f))
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!("read task failed: {e}"),
            })?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        lock(&self.shared.readers).clear();
        // Closing the queue lets the writer finish what is queued and exit.
        self.queue.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

#[async_trait]
impl LogSource for Shared {
    async fn read_batch(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        // Subscriptions read small batches; doing it inline avoids a thread hop per batch.
        self.with_reader(|conn, shared| read_log(conn, shared, from, max))
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        request.validate()?;
        if self.is_read_only() {
            return Err(StoreError::ReadOnly {
                path: self.shared.path.display().to_string(),
                reason: "the store was opened read-only".to_owned(),
            });
        }
        self.shared.check_writable()?;
        let Some(queue) = &self.queue else {
            return Err(StoreError::Unavailable {
                reason: "store is closing".into(),
            });
        };
        let (reply, answer) = oneshot::channel();
        queue
            .send(WriteRequest { request, reply })
            .await
            .map_err(|_| StoreError::Unavailable {
                reason: "the writer has stopped".into(),
            })?;
        answer.await.map_err(|_| StoreError::Unavailable {
            reason: "the writer stopped before answering".into(),
        })?
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_id(stream_id)?;
        // Short, indexed reads run inline: a thread hop would cost more than the read.
        self.shared.with_reader(|conn, shared| {
            read_stream_rows(conn, shared, stream_id, from_version, max_count)
        })
    }

    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max_count <= 1024 {
            return self
                .shared
                .with_reader(|conn, shared| read_log(conn, shared, from_position, max_count));
        }
        self.blocking_read(move |conn, shared| read_log(conn, shared, from_position, max_count))
            .await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        validate_stream_id(stream_id)?;
        self.shared
            .with_reader(|conn, _| Ok(stream_key_of(conn, stream_id)?.map(|(_, v)| v)))
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        if let Some(head_tx) = &self.read_only_head {
            // No writer of ours publishes the head: read it (another process may append).
            let head: i64 = self.shared.with_reader(|conn, _| {
                Ok(
                    conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
                        r.get(0)
                    })?,
                )
            })?;
            head_tx.send_if_modified(|h| {
                let grown = head as u64 > *h;
                if grown {
                    *h = head as u64;
                }
                grown
            });
        }
        Ok(*self.head_rx.borrow())
    }

    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        self.shared.with_reader(|conn, _| {
            let row: Option<(i64, i64, i64, i64)> = conn
                .prepare_cached(
                    "SELECT first_version, last_version, first_position, last_position \
                     FROM commands WHERE command_id = ?1",
                )?
                .query_row([command_id.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            Ok(row.map(|(fv, lv, fp, lp)| AppendOutcome {
                first_version: fv as u64,
                last_version: lv as u64,
                first_position: fp as u64,
                last_position: lp as u64,
                deduplicated: false,
            }))
        })
    }

    async fn subscribe(&self, from_position: u64) -> Result<Subscription, StoreError> {
        Ok(Subscription::follow(
            self.shared.clone(),
            self.head_rx.clone(),
            from_position,
        ))
    }

    async fn verify_stream(&self, stream_id: &str) -> Result<VerifyReport, StoreError> {
        validate_stream_id(stream_id)?;
        let stream_id = stream_id.to_owned();
        self.blocking_read(move |conn, _| {
            let row: Option<(i64, i64, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT stream_key, version, head_hash FROM streams WHERE stream_id = ?1",
                )?
                .query_row([&stream_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let mut report = VerifyReport::default();
            if let Some((key, version, hash)) = row {
                let hash = blob_hash(&hash, "stream head hash")?;
                report.first_broken =
                    verify_one(conn, &stream_id, key, version as u64, hash, &mut report)?;
            }
            Ok(report)
        })
        .await
    }

    async fn tree_nodes(&self, nodes: &[TreeNode]) -> Result<Vec<Hash>, StoreError> {
        let size = *self.head_rx.borrow();
        let nodes = nodes.to_vec();
        self.blocking_read(move |conn, _| read_tree_nodes(conn, &nodes, size))
            .await
    }

    async fn stored_tree_size(&self) -> Result<u64, StoreError> {
        self.blocking_read(|conn, _| stored_leaf_count(conn)).await
    }

    async fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        self.blocking_read(|conn, _| {
            // One consistent snapshot for the whole walk.
            conn.execute_batch("BEGIN")?;
            let result = (|| {
                let streams: Vec<(i64, String, i64, Vec<u8>)> = conn
                    .prepare("SELECT stream_key, stream_id, version, head_hash FROM streams ORDER BY stream_key")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<Result<_, _>>()?;
                let mut report = VerifyReport::default();
                // Every chain is walked even after a broken one: the counts and the ledger
                // check below cover the whole store.
                for (key, id, version, hash) in streams {
                    let hash = blob_hash(&hash, "stream head hash")?;
                    let broken = verify_one(conn, &id, key, version as u64, hash, &mut report)?;
                    if report.first_broken.is_none() {
                        report.first_broken = broken;
                    }
                }
                let (rows, findings) = crate::sqlite_ledger::check_ledger(conn)?;
                report.ledger_rows_checked = rows;
                report.ledger = findings;
                // Pages no query above touched (other indexes, the ledger) are checked too.
                let check: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
                if check != "ok" {
                    return Err(StoreError::corrupt(format!("integrity check: {check}")));
                }
                // Records whose stream row is missing are invisible to the walk above.
                let orphans: i64 = conn.query_row(
                    "SELECT count(*) FROM events e WHERE NOT EXISTS \
                     (SELECT 1 FROM streams s WHERE s.stream_key = e.stream_key)",
                    [],
                    |r| r.get(0),
                )?;
                if orphans > 0 {
                    return Err(StoreError::corrupt(format!(
                        "{orphans} records belong to no stream"
                    )));
                }
                Ok(report)
            })();
            let _ = conn.execute_batch("COMMIT");
            result
        })
        .await
    }
}
