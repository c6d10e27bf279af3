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
//!
//! **Parts.** `open.rs`: identifying, checking and opening a file (read-only or for the
//! writer) and migrations that are safe under a creation race; `read.rs`: read connections,
//! row decoding, log, stream and tree reads and the chain check; `verify.rs`: every chain and
//! the tree checked in one pass of the log; `writer.rs`: the group-commit writer; `trait_impl.rs`: [`EventStore`] over them. The types they share live here.

mod open;
mod read;
mod runs;
mod trait_impl;
mod verify;
mod writer;

use open::*;
pub(crate) use read::decode_row;
use read::*;
use runs::*;
use verify::*;

use std::collections::{HashMap, HashSet};
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
use crate::tree::{Frontier, Hash, LogVerification, TreeNode, read::node_within, record_leaf};
use crate::types::{
    AppendOutcome, AppendRequest, BrokenLink, Metadata, RecordedEvent, VerifyReport,
    validate_stream_id,
};

/// `PRAGMA application_id` of a Caseflow store ("CFLW").
pub const APPLICATION_ID: i64 = 0x4346_4C57;
/// The newest file format (`PRAGMA user_version`) this build reads and writes.
pub const FORMAT_VERSION: i64 = 4;

/// Page size of a newly created file. Every commit writes each page it changed to the WAL
/// whole, and a one-event append changes one page in each of its five b-trees (the record,
/// its two indexes, the ledger row, the tree row), so the page size is what an append
/// costs in WAL bytes. 2 KiB pages write half of SQLite's default 4 KiB and
/// still hold five typical records each; 1 KiB pages halve the WAL again but hold two
/// records of ~380 bytes each, which made the file 20% larger (measured in
/// `benches/workload.rs`). Existing files keep the page size they were created with.
pub const NEW_FILE_PAGE_SIZE: i64 = 2048;

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
    // Format 3 (issue 16): fewer pages per append.
    // - The same tree nodes, one row per leaf. `nodes` is the leaf's hash followed by the
    //   root of every perfect subtree that leaf completes, bottom-up (32 bytes each): node
    //   `(level, idx)` is bytes `32·level..32·level + 32` of the row of leaf
    //   `(idx + 1)·2^level − 1`. An append inserts one row at the table's right edge (format
    //   2 inserted amortised two rows at as many places of a `(level, idx)` b-tree);
    //   `move_tree` moves a format-2 file's nodes here in this migration's transaction.
    // - No stream head in `streams`: a stream's head is its last record (found through
    //   `events_by_stream`), so an append no longer rewrites a `streams` row. What the head
    //   row let `verify` see (a stream's tail removed), the tree sees.
    "CREATE TABLE tree (
        leaf  INTEGER PRIMARY KEY,
        nodes BLOB    NOT NULL
    );
    ALTER TABLE streams DROP COLUMN head_hash;
    ALTER TABLE streams DROP COLUMN version;",
    // Format 4 (issue 16): closed runs (`runs.rs`). A run of 64 leaves, once complete, keeps
    // only the nodes of level 6 and above its last leaf completes, one `tree_runs` row
    // (`nodes` as in `tree`, from level 6 up); its `tree` rows go, and its nodes below level
    // 6 are recomputed from its records' stored hashes. `close_stored_runs` closes a format-3
    // file's complete runs in this migration's transaction. Also: a correlation id equal to
    // the record's command id is stored as an empty blob (`encode_correlation`).
    "CREATE TABLE tree_runs (
        run   INTEGER PRIMARY KEY,
        nodes BLOB    NOT NULL
    );",
];

/// Whether a file of `format` keeps each stream's head (version, hash) in `streams`.
pub(crate) fn stores_stream_heads(format: i64) -> bool {
    format < LEAF_TREE_FORMAT
}

/// Where a file keeps its Merkle tree, by format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeLayout {
    /// Formats 1 and 2: `tree_nodes (level, idx, hash)`, one row per node (format 1 has no
    /// tree; it is migrated before anything reads one).
    NodeRows,
    /// Format 3: `tree (leaf, nodes)`, one row per leaf.
    LeafRows,
    /// Format 4: `tree` rows for the open run's leaves, one `tree_runs` row per closed run.
    ClosedRuns,
}

impl TreeLayout {
    pub(crate) fn of_format(format: i64) -> TreeLayout {
        if format >= RUN_TREE_FORMAT {
            TreeLayout::ClosedRuns
        } else if format >= LEAF_TREE_FORMAT {
            TreeLayout::LeafRows
        } else {
            TreeLayout::NodeRows
        }
    }
}

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
    /// The most pages the file may grow to (SQLite's `max_page_count`), `None` for no limit:
    /// a quota below the disk's size. An append that needs more space fails exactly as on a
    /// full disk ([`StoreError::DiskFull`]), and the store refuses writes until reopened.
    pub max_page_count: Option<u64>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            queue_capacity: 4096,
            batch_requests_max: 1024,
            read_connections: 4,
            create_if_missing: true,
            max_page_count: None,
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
    /// Where the file keeps its tree (a store opened read-only is never migrated).
    tree_layout: TreeLayout,
    /// The file's format (a store opened read-only may be older than [`FORMAT_VERSION`]).
    format: i64,
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
    /// Committed stream heads (a cache of each stream's last record).
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
        let (conn, head, frontier) = open_writer_retrying(&path, &options)?;
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
            tree_layout: TreeLayout::of_format(FORMAT_VERSION),
            format: FORMAT_VERSION,
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
        let (reader, access, format) = open_read_only_reader(&path)?;
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
            tree_layout: TreeLayout::of_format(format),
            format,
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

    /// Whether another connection — another process's store, a `sqlite3` shell — has the
    /// file open right now. A store in WAL mode holds a shared lock on its file for as long
    /// as it is open, so an exclusive lock attempt without waiting fails exactly then. Used
    /// before a file is deleted or replaced (`caseflow demo --force`); the answer can be out
    /// of date the moment it is given, so it guards against mistakes, not against a race.
    pub fn is_open_elsewhere(path: impl AsRef<Path>) -> Result<bool, StoreError> {
        let conn = Connection::open_with_flags(
            path.as_ref(),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        match conn.execute_batch("BEGIN EXCLUSIVE; ROLLBACK;") {
            Ok(()) => Ok(false),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
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
