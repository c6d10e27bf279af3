//! Where reporters' data keys live, apart from the event log: the [`KeyStore`] trait (so a
//! KMS or Vault can stand behind it later), its SQLite implementation (`<stem>.keys.db`
//! next to a SQLite store) and an in-memory one (for memory stores).
//!
//! One data key per reporter handle: a reporter who reported several cases has one key, so
//! destroying it erases every one of their contacts at once. A key is made the first time
//! a handle is seen; the SQLite store draws it from a pool written in batches (one
//! durable commit for many new reporters, so reporting stays as cheap as before) and
//! records which handle took it in batches too. An assignment lost in a crash costs only a
//! second key for that reporter: the log's sealed contacts name their key ids, and erasure
//! destroys every key the reporter's cases name (docs/design.md, "Key store").

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caseflow_domain::ReporterHandle;
use caseflow_store::Synchronous;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use zeroize::Zeroizing;

use super::error::KeyError;
use super::master::{DataKey, KEY_BYTES, MasterKey};
use crate::ids::{IdGenerator, Secret};

/// What the key store knows of one data key.
#[derive(Debug, Clone)]
pub enum KeyState {
    /// The key exists: contacts sealed with it can be opened.
    Live(DataKey),
    /// The key was destroyed (erasure) at this time: its contacts can never be opened.
    Destroyed {
        /// When.
        at: Option<DateTime<Utc>>,
    },
}

/// A store of data keys, wrapped by a master key. Async, so a database or a KMS can stand
/// behind it; the SQLite and memory implementations run each call (an in-memory lookup, or
/// one small SQLite transaction) without yielding.
#[async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// The reporter's data key and its id, made if the reporter has none yet.
    async fn reporter_key(&self, reporter: ReporterHandle) -> Result<(String, DataKey), KeyError>;
    /// A data key by id.
    async fn data_key(&self, key_id: &str) -> Result<KeyState, KeyError>;
    /// Destroys these keys and every key assigned to the reporter (idempotent). The key
    /// material is overwritten, not merely marked.
    async fn destroy(
        &self,
        reporter: ReporterHandle,
        key_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), KeyError>;
    /// Rewraps every live data key under `new_master` and makes it the store's master key;
    /// returns the number of keys rewrapped. The event log is not touched.
    async fn rotate(&self, new_master: &MasterKey) -> Result<usize, KeyError>;
    /// The id of the log's first event, recorded to tell this store's key store from
    /// another's (`None` until recorded).
    async fn binding(&self) -> Result<Option<String>, KeyError>;
    /// Records the id of the log's first event.
    async fn bind(&self, first_event_id: &str) -> Result<(), KeyError>;
    /// Writes assignments kept in memory (called on drop too).
    async fn flush(&self) -> Result<(), KeyError>;
}

/// Fresh key material and key ids from the engine's injected randomness.
/// (The PostgreSQL key store's, one row per key; format-1 files in the tests.)
#[cfg(any(feature = "postgres", test))]
pub(crate) fn new_key(ids: &dyn IdGenerator) -> (String, DataKey) {
    let mut bytes = [0u8; KEY_BYTES];
    ids.fill_secret(Secret::DataKey, &mut bytes);
    let mut id = [0u8; 16];
    ids.fill_secret(Secret::DataKey, &mut id);
    // 128 random bits in base64url (22 characters; `dk-` and 32 hex digits before format 2):
    // the id is in every sealed contact, so its length is hashed and written on each report.
    (URL_SAFE_NO_PAD.encode(id), DataKey::from_bytes(bytes))
}

/// Bytes of a batch key id: the batch number (4, big-endian), the slot in the batch (1) and
/// a random check (7) that the slot holds this key and not one an id was made up for.
const BATCH_KEY_ID_BYTES: usize = 12;
/// The random check's bytes in a batch key id and in its slot.
const CHECK_BYTES: usize = 7;
/// One slot of a batch's clear text: the check, then the key. An erased slot is all zeros.
const SLOT_BYTES: usize = CHECK_BYTES + KEY_BYTES;

/// Where a batch key id says its key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchSlot {
    batch: u32,
    slot: u8,
    check: [u8; CHECK_BYTES],
}

impl BatchSlot {
    fn to_bytes(self) -> [u8; BATCH_KEY_ID_BYTES] {
        let mut raw = [0u8; BATCH_KEY_ID_BYTES];
        raw[..4].copy_from_slice(&self.batch.to_be_bytes());
        raw[4] = self.slot;
        raw[5..].copy_from_slice(&self.check);
        raw
    }

    fn from_bytes(raw: &[u8]) -> Option<BatchSlot> {
        let raw: &[u8; BATCH_KEY_ID_BYTES] = raw.try_into().ok()?;
        let mut check = [0u8; CHECK_BYTES];
        check.copy_from_slice(&raw[5..]);
        Some(BatchSlot {
            batch: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            slot: raw[4],
            check,
        })
    }

    /// The key id of this slot: 16 base64url characters (a per-key id of the first format
    /// is 22, so the two never parse as each other).
    fn key_id(self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_bytes())
    }

    /// The slot a key id names, when it is a batch key id.
    fn parse(key_id: &str) -> Option<BatchSlot> {
        if key_id.len() != 16 {
            return None;
        }
        let mut raw = [0u8; BATCH_KEY_ID_BYTES];
        let written = URL_SAFE_NO_PAD.decode_slice(key_id, &mut raw).ok()?;
        (written == BATCH_KEY_ID_BYTES)
            .then(|| BatchSlot::from_bytes(&raw))
            .flatten()
    }

    fn range(self) -> std::ops::Range<usize> {
        let start = usize::from(self.slot) * SLOT_BYTES;
        start..start + SLOT_BYTES
    }
}

/// A fresh key for `slot` of `batch` from the engine's injected randomness: the key's 32
/// bytes, then 8 for the check (7 used), so the n-th key of a seeded run is the same in a
/// memory and a SQLite key store.
fn new_batch_key(ids: &dyn IdGenerator, batch: u32, slot: u8) -> (BatchSlot, DataKey) {
    let mut bytes = [0u8; KEY_BYTES];
    ids.fill_secret(Secret::DataKey, &mut bytes);
    let mut random = [0u8; 8];
    ids.fill_secret(Secret::DataKey, &mut random);
    let mut check = [0u8; CHECK_BYTES];
    check.copy_from_slice(&random[..CHECK_BYTES]);
    (BatchSlot { batch, slot, check }, DataKey::from_bytes(bytes))
}

/// The batch numbers and slots keys are made in by one process: batches of
/// [`POOL_BATCH_FIRST`] keys, doubling to [`POOL_BATCH_MAX`]. The memory key store numbers
/// its keys this way too, so a seeded run names the same key ids on either store.
#[derive(Debug, Clone, Copy)]
struct BatchSizes {
    next: usize,
}

impl Default for BatchSizes {
    fn default() -> Self {
        BatchSizes {
            next: POOL_BATCH_FIRST,
        }
    }
}

impl BatchSizes {
    fn take(&mut self) -> usize {
        let size = self.next;
        self.next = (self.next * 2).min(POOL_BATCH_MAX);
        size
    }
}

// ---------------------------------------------------------------------------------------
// In memory.

/// Data keys in memory, for memory stores (the keys die with the process, as the log does).
#[derive(Debug)]
pub struct MemoryKeyStore {
    ids: Arc<dyn IdGenerator>,
    inner: Mutex<MemoryKeys>,
}

#[derive(Debug, Default)]
struct MemoryKeys {
    keys: HashMap<String, KeyState>,
    reporters: HashMap<ReporterHandle, String>,
    binding: Option<String>,
    /// The batch the next key is numbered in (from 1), its size, and the slots used.
    batch: u32,
    batch_size: usize,
    used: usize,
    sizes: BatchSizes,
}

impl MemoryKeys {
    /// The next key, numbered as a fresh SQLite key store's pool would number it.
    fn next_key(&mut self, ids: &dyn IdGenerator) -> (String, DataKey) {
        if self.used == self.batch_size {
            self.batch += 1;
            self.batch_size = self.sizes.take();
            self.used = 0;
        }
        // A slot is below POOL_BATCH_MAX (256), so it fits its byte.
        let slot = u8::try_from(self.used).unwrap_or(u8::MAX);
        self.used += 1;
        let (place, key) = new_batch_key(ids, self.batch, slot);
        (place.key_id(), key)
    }
}

impl MemoryKeyStore {
    /// An empty key store drawing key material from `ids`.
    pub fn new(ids: Arc<dyn IdGenerator>) -> MemoryKeyStore {
        MemoryKeyStore {
            ids,
            inner: Mutex::new(MemoryKeys::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryKeys> {
        // A panic elsewhere while holding the lock leaves plain maps, still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn reporter_key(&self, reporter: ReporterHandle) -> Result<(String, DataKey), KeyError> {
        let mut keys = self.lock();
        if let Some(id) = keys.reporters.get(&reporter).cloned() {
            if let Some(KeyState::Live(key)) = keys.keys.get(&id) {
                return Ok((id, key.clone()));
            }
        }
        let (id, key) = keys.next_key(self.ids.as_ref());
        keys.keys.insert(id.clone(), KeyState::Live(key.clone()));
        keys.reporters.insert(reporter, id.clone());
        Ok((id, key))
    }

    async fn data_key(&self, key_id: &str) -> Result<KeyState, KeyError> {
        self.lock()
            .keys
            .get(key_id)
            .cloned()
            .ok_or_else(|| KeyError::UnknownKey {
                key_id: key_id.to_owned(),
            })
    }

    async fn destroy(
        &self,
        reporter: ReporterHandle,
        key_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        let mut keys = self.lock();
        let mut doomed: Vec<String> = key_ids.to_vec();
        doomed.extend(keys.reporters.remove(&reporter));
        for id in doomed {
            keys.keys.insert(id, KeyState::Destroyed { at: Some(at) });
        }
        Ok(())
    }

    async fn rotate(&self, _new_master: &MasterKey) -> Result<usize, KeyError> {
        // Memory keys are not wrapped: nothing outlives the process to protect.
        let keys = self.lock();
        Ok(keys
            .keys
            .values()
            .filter(|k| matches!(k, KeyState::Live(_)))
            .count())
    }

    async fn binding(&self) -> Result<Option<String>, KeyError> {
        Ok(self.lock().binding.clone())
    }

    async fn bind(&self, first_event_id: &str) -> Result<(), KeyError> {
        // The first binding stays, as in every key store (a key store belongs to one log).
        self.lock()
            .binding
            .get_or_insert_with(|| first_event_id.to_owned());
        Ok(())
    }

    async fn flush(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// SQLite.

/// The key store of a SQLite store (`cases.db` -> `cases.keys.db`).
pub fn key_store_path(store_path: &Path) -> PathBuf {
    let stem = store_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "caseflow".to_owned());
    store_path.with_file_name(format!("{stem}.keys.db"))
}

/// The format tag in a key store's `meta` table: keys in batch rows.
const FORMAT: &str = "caseflow-keys-2";
/// The first format (a row per key), upgraded in place at open.
const FORMAT_1: &str = "caseflow-keys-1";
/// Most keys made in one pool refill (the first refill of a process makes fewer). A slot
/// number is one byte, so this is at most 256.
const POOL_BATCH_MAX: usize = 256;
/// The first refill's size; each refill doubles it up to [`POOL_BATCH_MAX`].
const POOL_BATCH_FIRST: usize = 8;
/// Assignments kept in memory before they are written.
const PENDING_MAX: usize = 64;
/// Bytes of one assignment in an `assignment_runs` row: the reporter handle, the key id.
const ASSIGNMENT_BYTES: usize = 16 + BATCH_KEY_ID_BYTES;
/// What a batch's wrapping is bound to, before the batch number.
const BATCH_LABEL: &[u8; 21] = b"caseflow key batch v2";

/// `data_keys` and `key_assignments` are the first format's (a row per key, a row per
/// assignment): an upgraded file's old keys stay there, and every destroyed key (of either
/// format, or an id the log names that was never made) leaves its tombstone in `data_keys`.
const SCHEMA: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE data_keys (
    key_id TEXT PRIMARY KEY,
    reporter TEXT,
    state TEXT NOT NULL CHECK (state IN ('free', 'assigned', 'retired', 'destroyed')),
    nonce BLOB,
    wrapped BLOB,
    destroyed_at TEXT
);
CREATE INDEX data_keys_by_reporter ON data_keys (reporter);
CREATE TABLE key_assignments (key_id TEXT NOT NULL, reporter TEXT NOT NULL);
";

/// Format 2's tables: one row per pool refill (every key of the batch under one wrapping,
/// bound to the batch number) and one row per written run of assignments. Added to a
/// format-1 file at open.
const BATCH_TABLES: &str = "
CREATE TABLE IF NOT EXISTS key_batches (
    batch INTEGER PRIMARY KEY,
    nonce BLOB NOT NULL,
    wrapped BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS assignment_runs (run INTEGER PRIMARY KEY, body BLOB NOT NULL);
";

/// Which reporter took which key, one row each (the first release recorded it by rewriting
/// the key's row, which is still read). Added to such a file at open.
const ASSIGNMENTS: &str =
    "CREATE TABLE IF NOT EXISTS key_assignments (key_id TEXT NOT NULL, reporter TEXT NOT NULL)";

/// Data keys in a SQLite file, wrapped by the master key.
#[derive(Debug)]
pub struct SqliteKeyStore {
    path: PathBuf,
    ids: Arc<dyn IdGenerator>,
    inner: Mutex<SqliteKeys>,
}

/// A key of this process's pool: its id (text and bytes) and the key.
type PoolKey = (String, BatchSlot, DataKey);

struct SqliteKeys {
    conn: Connection,
    master: MasterKey,
    /// Keys made by this process and not yet handed out (last out first).
    pool: Vec<PoolKey>,
    sizes: BatchSizes,
    /// Reporters' keys seen or made by this process.
    cache: HashMap<ReporterHandle, (String, DataKey)>,
    /// Every reporter the file held a live assigned key for at open, and that key's id: a
    /// report by a reporter in neither map, as most reports are, needs no lookup in the
    /// file, and one in it a lookup by key id.
    assigned: HashMap<ReporterHandle, String>,
    /// Assignments not yet written.
    pending: Vec<(String, BatchSlot, ReporterHandle)>,
}

impl std::fmt::Debug for SqliteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKeys")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl SqliteKeyStore {
    /// Creates a new, empty key store at `path`; refuses if the file exists.
    pub fn create(
        path: &Path,
        master: MasterKey,
        ids: Arc<dyn IdGenerator>,
        synchronous: Synchronous,
    ) -> Result<SqliteKeyStore, KeyError> {
        if path.exists() {
            return Err(KeyError::KeyStoreUnreadable {
                path: path.to_owned(),
                reason: "a file is already there".to_owned(),
            });
        }
        let mut conn = Connection::open(path).map_err(|e| io(path, e))?;
        configure(&conn, path, synchronous)?;
        // One transaction: one commit (one sync under FULL) for the whole schema, and no
        // file that has tables but no format tag.
        let tx = conn.transaction().map_err(|e| io(path, e))?;
        tx.execute_batch(SCHEMA).map_err(|e| io(path, e))?;
        tx.execute_batch(BATCH_TABLES).map_err(|e| io(path, e))?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('format', ?1), ('master', ?2)",
            params![FORMAT, master.fingerprint()],
        )
        .map_err(|e| io(path, e))?;
        tx.commit().map_err(|e| io(path, e))?;
        Ok(Self::from_parts(path, conn, master, ids))
    }

    /// Opens an existing key store, checking that it is one and that `master` is its key.
    /// A format-1 file is upgraded in place: its keys stay in their rows (their ids are in
    /// the log), format 2's tables are added and the format tag says 2, so a build that
    /// knows only format 1 refuses the file instead of missing the batch keys.
    pub fn open(
        path: &Path,
        master: MasterKey,
        ids: Arc<dyn IdGenerator>,
        synchronous: Synchronous,
    ) -> Result<SqliteKeyStore, KeyError> {
        let unreadable = |reason: String| KeyError::KeyStoreUnreadable {
            path: path.to_owned(),
            reason,
        };
        if !path.exists() {
            return Err(KeyError::KeyStoreMissing {
                path: path.to_owned(),
            });
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unreadable(e.to_string()))?;
        configure(&conn, path, synchronous).map_err(|e| unreadable(e.to_string()))?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| unreadable(e.to_string()))?;
        if check != "ok" {
            return Err(unreadable(check));
        }
        let meta = |conn: &Connection, name: &str| -> Result<Option<String>, KeyError> {
            conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| unreadable(e.to_string()))
        };
        let format = meta(&conn, "format")?;
        if format.as_deref() != Some(FORMAT) && format.as_deref() != Some(FORMAT_1) {
            return Err(unreadable("not a Caseflow key store".to_owned()));
        }
        let expected = meta(&conn, "master")?.unwrap_or_default();
        if expected != master.fingerprint() {
            return Err(KeyError::WrongMasterKey {
                path: path.to_owned(),
                expected,
                given: master.fingerprint(),
            });
        }
        if format.as_deref() == Some(FORMAT_1) {
            upgrade_format_1(&mut conn).map_err(|e| io(path, e))?;
        }
        let assigned = assigned_reporters(&conn).map_err(|e| match e {
            Unreadable::Sql(e) => io(path, e),
            Unreadable::Run(run) => unreadable(format!("assignment run {run} is malformed")),
        })?;
        let store = Self::from_parts(path, conn, master, ids);
        store.lock().assigned = assigned;
        Ok(store)
    }

    fn from_parts(
        path: &Path,
        conn: Connection,
        master: MasterKey,
        ids: Arc<dyn IdGenerator>,
    ) -> SqliteKeyStore {
        SqliteKeyStore {
            path: path.to_owned(),
            ids,
            inner: Mutex::new(SqliteKeys {
                conn,
                master,
                pool: Vec::new(),
                sizes: BatchSizes::default(),
                cache: HashMap::new(),
                assigned: HashMap::new(),
                pending: Vec::new(),
            }),
        }
    }

    /// The key store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SqliteKeys> {
        // The connection and maps stay consistent: every write is one transaction.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn io(&self, e: rusqlite::Error) -> KeyError {
        io(&self.path, e)
    }

    /// Makes a batch of keys and writes them as one row, under one wrapping, in one durable
    /// transaction (with the pending assignments): the keys are on disk before any of them
    /// seals a contact. The batch number is the file's next, taken inside the (immediate)
    /// transaction, so another process's refill cannot take it too.
    fn refill(&self, keys: &mut SqliteKeys) -> Result<(), KeyError> {
        let size = keys.sizes.take();
        let tx = keys
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| io(&self.path, e))?;
        let batch: u32 = tx
            .query_row(
                "SELECT COALESCE(MAX(batch), 0) + 1 FROM key_batches",
                [],
                |r| r.get(0),
            )
            .map_err(|e| io(&self.path, e))?;
        let mut clear = Zeroizing::new(Vec::with_capacity(size * SLOT_BYTES));
        let mut made = Vec::with_capacity(size);
        for slot in 0..size {
            // Below POOL_BATCH_MAX (256): the slot fits its byte.
            let slot = u8::try_from(slot).unwrap_or(u8::MAX);
            let (place, key) = new_batch_key(self.ids.as_ref(), batch, slot);
            clear.extend_from_slice(&place.check);
            clear.extend_from_slice(key.bytes.as_ref());
            made.push((place.key_id(), place, key));
        }
        let (nonce, wrapped) = keys.master.wrap_bytes(&batch_aad(batch), &clear)?;
        tx.prepare_cached("INSERT INTO key_batches (batch, nonce, wrapped) VALUES (?1, ?2, ?3)")
            .and_then(|mut insert| insert.execute(params![batch, &nonce[..], wrapped]))
            .map_err(|e| io(&self.path, e))?;
        write_assignment_run(&tx, &keys.pending).map_err(|e| io(&self.path, e))?;
        tx.commit().map_err(|e| io(&self.path, e))?;
        keys.pending.clear();
        // Hand out in the order made (so seeded runs are reproducible).
        made.reverse();
        keys.pool = made;
        Ok(())
    }

    /// Writes the assignments kept in memory as one row, in one transaction (one commit, so
    /// one sync under `synchronous=FULL`, for a whole run).
    fn write_pending(&self, keys: &mut SqliteKeys) -> Result<(), KeyError> {
        if keys.pending.is_empty() {
            return Ok(());
        }
        let tx = keys.conn.transaction().map_err(|e| io(&self.path, e))?;
        write_assignment_run(&tx, &keys.pending).map_err(|e| io(&self.path, e))?;
        tx.commit().map_err(|e| io(&self.path, e))?;
        keys.pending.clear();
        Ok(())
    }

    /// A key by id from the file: a tombstone or a first-format row in `data_keys`, else
    /// the slot of its batch. `None` when the file has no such key.
    fn stored_key(
        &self,
        conn: &Connection,
        master: &MasterKey,
        key_id: &str,
    ) -> Result<Option<KeyState>, KeyError> {
        type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<String>);
        let row: Option<Row> = conn
            .prepare_cached(
                "SELECT state, nonce, wrapped, destroyed_at FROM data_keys WHERE key_id = ?1",
            )
            .and_then(|mut select| {
                select
                    .query_row([key_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()
            })
            .map_err(|e| self.io(e))?;
        match row {
            Some((state, _, _, at)) if state == "destroyed" => {
                return Ok(Some(KeyState::Destroyed {
                    at: at.and_then(|t| DateTime::parse_from_rfc3339(&t).ok().map(|t| t.to_utc())),
                }));
            }
            Some((_, Some(nonce), Some(wrapped), _)) => {
                return master
                    .unwrap(key_id, &nonce, &wrapped)
                    .map(|key| Some(KeyState::Live(key)))
                    .ok_or_else(|| self.altered(key_id));
            }
            Some(_) => return Err(self.altered(key_id)),
            None => {}
        }
        let Some(place) = BatchSlot::parse(key_id) else {
            return Ok(None);
        };
        let Some(clear) = self.read_batch(conn, master, place.batch)? else {
            return Ok(None);
        };
        Ok(live_slot(&clear, place).map(KeyState::Live))
    }

    /// A batch's clear text; `None` when the file has no such batch.
    fn read_batch(
        &self,
        conn: &Connection,
        master: &MasterKey,
        batch: u32,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = conn
            .prepare_cached("SELECT nonce, wrapped FROM key_batches WHERE batch = ?1")
            .and_then(|mut select| {
                select
                    .query_row([batch], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.io(e))?;
        let Some((nonce, wrapped)) = row else {
            return Ok(None);
        };
        let clear = master
            .unwrap_bytes(&batch_aad(batch), &nonce, &wrapped)
            .filter(|clear| clear.len() % SLOT_BYTES == 0)
            .ok_or_else(|| self.altered_batch(batch))?;
        Ok(Some(clear))
    }

    fn altered(&self, key_id: &str) -> KeyError {
        KeyError::KeyStoreUnreadable {
            path: self.path.clone(),
            reason: format!("data key {key_id} does not unwrap: it was altered"),
        }
    }

    fn altered_batch(&self, batch: u32) -> KeyError {
        KeyError::KeyStoreUnreadable {
            path: self.path.clone(),
            reason: format!("key batch {batch} does not unwrap: it was altered"),
        }
    }
}

/// The associated data of a batch's wrapping: the label and the batch number, so a batch
/// row copied over another's does not unwrap.
fn batch_aad(batch: u32) -> [u8; 25] {
    let mut aad = [0u8; 25];
    aad[..21].copy_from_slice(BATCH_LABEL);
    aad[21..].copy_from_slice(&batch.to_be_bytes());
    aad
}

/// The key in a batch's slot, if the slot holds the key the id names (its check matches;
/// an erased slot is zeros, which no live key's slot is).
fn live_slot(clear: &[u8], place: BatchSlot) -> Option<DataKey> {
    let slot = clear.get(place.range())?;
    if slot.iter().all(|b| *b == 0) || slot[..CHECK_BYTES] != place.check {
        return None;
    }
    let mut bytes = [0u8; KEY_BYTES];
    bytes.copy_from_slice(&slot[CHECK_BYTES..]);
    Some(DataKey::from_bytes(bytes))
}

/// Adds format 2's tables to a format-1 file and tags it format 2, in one transaction. Its
/// pool keys left `free` may have been handed out by the process that made them without
/// the assignment being written: they are retired (never handed out again, still readable).
fn upgrade_format_1(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE data_keys SET state = 'retired' WHERE state = 'free'",
        [],
    )?;
    tx.execute_batch(ASSIGNMENTS)?;
    tx.execute_batch(BATCH_TABLES)?;
    tx.execute("UPDATE meta SET value = ?1 WHERE name = 'format'", [FORMAT])?;
    tx.commit()
}

fn io(path: &Path, source: rusqlite::Error) -> KeyError {
    KeyError::KeyStoreIo {
        path: path.to_owned(),
        source,
    }
}

fn configure(conn: &Connection, path: &Path, synchronous: Synchronous) -> Result<(), KeyError> {
    let sync = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    // secure_delete overwrites freed content, so a destroyed key's bytes (an erased slot's
    // old batch wrapping) do not linger in free pages; the WAL is truncated after every
    // destruction and rotation.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA secure_delete = ON;"
    ))
    .map_err(|e| io(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| io(path, e))
}

/// Why the assignments could not be read.
enum Unreadable {
    Sql(rusqlite::Error),
    /// This `assignment_runs` row is not whole assignments.
    Run(i64),
}

impl From<rusqlite::Error> for Unreadable {
    fn from(e: rusqlite::Error) -> Self {
        Unreadable::Sql(e)
    }
}

/// Every assignment in `assignment_runs`, in the order written: (run, reporter, key id).
fn assignment_runs(conn: &Connection) -> Result<Vec<(ReporterHandle, String)>, Unreadable> {
    let mut select = conn.prepare("SELECT run, body FROM assignment_runs ORDER BY run")?;
    let rows = select.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    let mut assignments = Vec::new();
    for row in rows {
        let (run, body) = row?;
        if body.len() % ASSIGNMENT_BYTES != 0 {
            return Err(Unreadable::Run(run));
        }
        for record in body.chunks_exact(ASSIGNMENT_BYTES) {
            let (handle, key) = record.split_at(16);
            let handle = uuid::Uuid::from_slice(handle).map_err(|_| Unreadable::Run(run))?;
            let place = BatchSlot::from_bytes(key).ok_or(Unreadable::Run(run))?;
            assignments.push((ReporterHandle(handle), place.key_id()));
        }
    }
    Ok(assignments)
}

/// The reporters with a live assigned key, and its id: the first recorded, in the rows of
/// the first release (`state = 'assigned'`), in `key_assignments`, then in
/// `assignment_runs`; a key with a tombstone is left out.
fn assigned_reporters(conn: &Connection) -> Result<HashMap<ReporterHandle, String>, Unreadable> {
    let mut select = conn.prepare(
        "SELECT reporter, key_id FROM data_keys WHERE state = 'assigned' \
         UNION ALL SELECT a.reporter, a.key_id FROM key_assignments a \
         JOIN data_keys d ON d.key_id = a.key_id WHERE d.state <> 'destroyed'",
    )?;
    let rows = select.query_map([], |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut reporters = HashMap::new();
    for row in rows {
        let (reporter, key_id) = row?;
        // A handle that does not parse was never written by this code: it matches no
        // reporter, so leaving it out changes no lookup.
        if let Some(handle) = reporter.and_then(|text| text.parse::<uuid::Uuid>().ok()) {
            reporters.entry(ReporterHandle(handle)).or_insert(key_id);
        }
    }
    let destroyed: HashSet<String> = conn
        .prepare("SELECT key_id FROM data_keys WHERE state = 'destroyed'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (reporter, key_id) in assignment_runs(conn)? {
        if !destroyed.contains(&key_id) {
            reporters.entry(reporter).or_insert(key_id);
        }
    }
    Ok(reporters)
}

/// Appends assignments as one `assignment_runs` row (one insert of one blob, where a row per
/// assignment, and before that a rewrite of each key's row with its index entry, cost more
/// than the rest of a report's key bookkeeping).
fn write_assignment_run(
    conn: &Connection,
    pending: &[(String, BatchSlot, ReporterHandle)],
) -> rusqlite::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut body = Vec::with_capacity(pending.len() * ASSIGNMENT_BYTES);
    for (_, place, reporter) in pending {
        body.extend_from_slice(reporter.0.as_bytes());
        body.extend_from_slice(&place.to_bytes());
    }
    conn.prepare_cached("INSERT INTO assignment_runs (body) VALUES (?1)")?
        .execute([body])?;
    Ok(())
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn reporter_key(&self, reporter: ReporterHandle) -> Result<(String, DataKey), KeyError> {
        let mut keys = self.lock();
        if let Some(hit) = keys.cache.get(&reporter) {
            return Ok(hit.clone());
        }
        if let Some(key_id) = keys.assigned.get(&reporter).cloned() {
            if let Some(KeyState::Live(key)) = self.stored_key(&keys.conn, &keys.master, &key_id)? {
                let found = (key_id, key);
                keys.cache.insert(reporter, found.clone());
                return Ok(found);
            }
        }
        if keys.pool.is_empty() {
            self.refill(&mut keys)?;
        }
        let (id, place, key) = keys
            .pool
            .pop()
            .ok_or(KeyError::Crypto("an empty key pool after a refill"))?;
        // The cache is looked at first, so the assignment needs no entry in `assigned`.
        keys.cache.insert(reporter, (id.clone(), key.clone()));
        keys.pending.push((id.clone(), place, reporter));
        if keys.pending.len() >= PENDING_MAX {
            self.write_pending(&mut keys)?;
        }
        Ok((id, key))
    }

    async fn data_key(&self, key_id: &str) -> Result<KeyState, KeyError> {
        let keys = self.lock();
        if let Some((_, key)) = keys.cache.values().find(|(id, _)| id == key_id) {
            return Ok(KeyState::Live(key.clone()));
        }
        self.stored_key(&keys.conn, &keys.master, key_id)?
            .ok_or_else(|| KeyError::UnknownKey {
                key_id: key_id.to_owned(),
            })
    }

    async fn destroy(
        &self,
        reporter: ReporterHandle,
        key_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        let mut keys = self.lock();
        let mut doomed: Vec<String> = key_ids.to_vec();
        if let Some((id, _)) = keys.cache.remove(&reporter) {
            doomed.push(id);
        }
        doomed.extend(keys.assigned.remove(&reporter));
        // Keys an earlier process assigned to the reporter that were not the first.
        doomed.extend(
            assignment_runs(&keys.conn)
                .map_err(|e| match e {
                    Unreadable::Sql(e) => self.io(e),
                    Unreadable::Run(run) => KeyError::KeyStoreUnreadable {
                        path: self.path.clone(),
                        reason: format!("assignment run {run} is malformed"),
                    },
                })?
                .into_iter()
                .filter(|(who, _)| *who == reporter)
                .map(|(_, id)| id),
        );
        doomed.sort();
        doomed.dedup();
        keys.pending
            .retain(|(id, _, _)| doomed.binary_search(id).is_err());
        keys.pool
            .retain(|(id, _, _)| doomed.binary_search(id).is_err());
        let pending = std::mem::take(&mut keys.pending);
        let SqliteKeys { conn, master, .. } = &mut *keys;
        let tx = conn.transaction().map_err(|e| io(&self.path, e))?;
        write_assignment_run(&tx, &pending).map_err(|e| io(&self.path, e))?;
        let at_text = at.to_rfc3339();
        tx.execute(
            "UPDATE data_keys SET state = 'destroyed', nonce = NULL, wrapped = NULL, destroyed_at = ?2 \
             WHERE (reporter = ?1 OR key_id IN (SELECT key_id FROM key_assignments WHERE reporter = ?1)) \
             AND state <> 'destroyed'",
            params![reporter.to_string(), at_text],
        )
        .map_err(|e| io(&self.path, e))?;
        for id in &doomed {
            tx.execute(
                "INSERT INTO data_keys (key_id, reporter, state, destroyed_at) VALUES (?1, ?2, 'destroyed', ?3) \
                 ON CONFLICT (key_id) DO UPDATE SET state = 'destroyed', nonce = NULL, wrapped = NULL, \
                 destroyed_at = COALESCE(data_keys.destroyed_at, excluded.destroyed_at)",
                params![id, reporter.to_string(), at_text],
            )
            .map_err(|e| io(&self.path, e))?;
        }
        // Each batch holding a doomed key is rewritten without it (zeros in its slot) under a
        // fresh nonce; secure_delete zeroes the old row's pages and the WAL is truncated, so
        // the old wrapping, which the master key would still open, is gone from the file.
        let mut batches: Vec<BatchSlot> = doomed
            .iter()
            .filter_map(|id| BatchSlot::parse(id))
            .collect();
        batches.sort_by_key(|place| place.batch);
        for group in batches.chunk_by(|a, b| a.batch == b.batch) {
            let batch = group[0].batch;
            let Some(mut clear) = self.read_batch(&tx, master, batch)? else {
                continue;
            };
            let mut erased = false;
            for place in group {
                if live_slot(&clear, *place).is_some() {
                    clear[place.range()].fill(0);
                    erased = true;
                }
            }
            if !erased {
                continue;
            }
            let (nonce, wrapped) = master.wrap_bytes(&batch_aad(batch), &clear)?;
            tx.execute(
                "UPDATE key_batches SET nonce = ?2, wrapped = ?3 WHERE batch = ?1",
                params![batch, &nonce[..], wrapped],
            )
            .map_err(|e| io(&self.path, e))?;
        }
        tx.commit().map_err(|e| io(&self.path, e))?;
        truncate_wal(conn).map_err(|e| io(&self.path, e))
    }

    async fn rotate(&self, new_master: &MasterKey) -> Result<usize, KeyError> {
        let mut keys = self.lock();
        let pending = std::mem::take(&mut keys.pending);
        let old = keys.master.clone();
        let tx = keys.conn.transaction().map_err(|e| self.io(e))?;
        write_assignment_run(&tx, &pending).map_err(|e| self.io(e))?;
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> = {
            let mut select = tx
                .prepare("SELECT key_id, nonce, wrapped FROM data_keys WHERE wrapped IS NOT NULL")
                .map_err(|e| self.io(e))?;
            let rows = select
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.io(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.io(e))?
        };
        for (id, nonce, wrapped) in &rows {
            let key = old
                .unwrap(id, nonce, wrapped)
                .ok_or_else(|| self.altered(id))?;
            let (nonce, wrapped) = new_master.wrap(id, &key)?;
            tx.execute(
                "UPDATE data_keys SET nonce = ?2, wrapped = ?3 WHERE key_id = ?1",
                params![id, &nonce[..], wrapped],
            )
            .map_err(|e| self.io(e))?;
        }
        let batches: Vec<u32> = tx
            .prepare("SELECT batch FROM key_batches ORDER BY batch")
            .and_then(|mut select| {
                select
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(|e| self.io(e))?;
        let mut live = rows.len();
        for batch in batches {
            let Some(clear) = self.read_batch(&tx, &old, batch)? else {
                continue;
            };
            live += clear
                .chunks_exact(SLOT_BYTES)
                .filter(|slot| slot.iter().any(|b| *b != 0))
                .count();
            let (nonce, wrapped) = new_master.wrap_bytes(&batch_aad(batch), &clear)?;
            tx.execute(
                "UPDATE key_batches SET nonce = ?2, wrapped = ?3 WHERE batch = ?1",
                params![batch, &nonce[..], wrapped],
            )
            .map_err(|e| self.io(e))?;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'master'",
            [new_master.fingerprint()],
        )
        .map_err(|e| self.io(e))?;
        tx.commit().map_err(|e| self.io(e))?;
        keys.master = new_master.clone();
        // The old wrappings must not linger in the WAL for the old master key to open.
        truncate_wal(&keys.conn).map_err(|e| self.io(e))?;
        Ok(live)
    }

    async fn binding(&self) -> Result<Option<String>, KeyError> {
        let keys = self.lock();
        keys.conn
            .query_row("SELECT value FROM meta WHERE name = 'log'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.io(e))
    }

    async fn bind(&self, first_event_id: &str) -> Result<(), KeyError> {
        let keys = self.lock();
        keys.conn
            .execute(
                "INSERT INTO meta (name, value) VALUES ('log', ?1) ON CONFLICT (name) DO NOTHING",
                [first_event_id],
            )
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), KeyError> {
        self.write_pending(&mut self.lock())
    }
}

impl Drop for SqliteKeyStore {
    fn drop(&mut self) {
        // Best effort: an assignment lost here only gives the reporter a second key.
        if let Err(e) = self.write_pending(&mut self.lock()) {
            tracing::warn!(error = %e, "could not write the last key assignments");
        }
    }
}

fn truncate_wal(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contacts::contract::key_store_contract;
    use crate::ids::SeededIds;

    #[tokio::test]
    async fn the_memory_key_store_keeps_the_contract() {
        let keys = MemoryKeyStore::new(Arc::new(SeededIds::new(3)));
        key_store_contract(&keys, &MasterKey::generate()).await;
    }

    #[tokio::test]
    async fn the_sqlite_key_store_keeps_the_contract_and_its_keys_across_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("cases.keys.db");
        let master = MasterKey::generate();
        let ids: Arc<dyn IdGenerator> = Arc::new(SeededIds::new(3));
        let keys =
            SqliteKeyStore::create(&path, master.clone(), Arc::clone(&ids), Synchronous::Full)
                .expect("create");
        let (dave_id, dave_key) = keys
            .reporter_key(ReporterHandle(uuid::Uuid::from_u128(0xd4e)))
            .await
            .expect("a key");
        let rotated = MasterKey::generate();
        key_store_contract(&keys, &rotated).await;
        drop(keys);
        let reopened =
            SqliteKeyStore::open(&path, rotated, ids, Synchronous::Full).expect("reopen");
        match reopened.data_key(&dave_id).await.expect("read") {
            KeyState::Live(key) => assert_eq!(key.bytes.as_ref(), dave_key.bytes.as_ref()),
            KeyState::Destroyed { .. } => panic!("a live key was lost across a reopen"),
        }
        // The assignment written (on drop) is read back: dave keeps his key.
        let (again_id, _) = reopened
            .reporter_key(ReporterHandle(uuid::Uuid::from_u128(0xd4e)))
            .await
            .expect("a key");
        assert_eq!(again_id, dave_id);
        drop(reopened);
        assert!(matches!(
            SqliteKeyStore::open(
                &path,
                master.clone(),
                Arc::new(SeededIds::new(4)),
                Synchronous::Full
            ),
            Err(KeyError::WrongMasterKey { .. })
        ));
    }

    /// A format-1 file as the releases before batches wrote it: a key assigned by rewriting
    /// its row (the first release), one assigned in `key_assignments`, one left `free`.
    fn format_1_file(
        path: &Path,
        master: &MasterKey,
        erin: ReporterHandle,
        fred: ReporterHandle,
    ) -> Vec<(String, DataKey)> {
        let conn = Connection::open(path).expect("create the file");
        conn.execute_batch(SCHEMA).expect("format 1's tables");
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('format', ?1), ('master', ?2)",
            params![FORMAT_1, master.fingerprint()],
        )
        .expect("meta");
        let ids = SeededIds::new(9);
        let made: Vec<(String, DataKey)> = (0..3).map(|_| new_key(&ids)).collect();
        for (n, (id, key)) in made.iter().enumerate() {
            let (nonce, wrapped) = master.wrap(id, key).expect("wrap");
            let (reporter, state) = match n {
                0 => (Some(erin.to_string()), "assigned"),
                1 => (None, "retired"),
                _ => (None, "free"),
            };
            conn.execute(
                "INSERT INTO data_keys (key_id, reporter, state, nonce, wrapped) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, reporter, state, &nonce[..], wrapped],
            )
            .expect("a format-1 key");
        }
        conn.execute(
            "INSERT INTO key_assignments (key_id, reporter) VALUES (?1, ?2)",
            params![made[1].0, fred.to_string()],
        )
        .expect("an appended assignment");
        made
    }

    /// A format-1 file opens, is tagged format 2, keeps its keys in their rows (their ids
    /// are in the log) and its reporters' assignments; erasure and rotation reach them.
    #[tokio::test]
    async fn a_format_1_key_store_is_upgraded_in_place_and_keeps_its_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("old.keys.db");
        let master = MasterKey::generate();
        let erin = ReporterHandle(uuid::Uuid::from_u128(0xe1));
        let fred = ReporterHandle(uuid::Uuid::from_u128(0xf1));
        let gina = ReporterHandle(uuid::Uuid::from_u128(0x91));
        let old = format_1_file(&path, &master, erin, fred);
        let ids: Arc<dyn IdGenerator> = Arc::new(SeededIds::new(5));
        let keys = SqliteKeyStore::open(&path, master.clone(), Arc::clone(&ids), Synchronous::Full)
            .expect("a format-1 file opens");
        assert_eq!(keys.reporter_key(erin).await.expect("erin").0, old[0].0);
        assert_eq!(keys.reporter_key(fred).await.expect("fred").0, old[1].0);
        let (gina_id, _) = keys.reporter_key(gina).await.expect("gina");
        assert!(
            BatchSlot::parse(&gina_id).is_some(),
            "a new key is a batch key"
        );
        for (id, key) in &old {
            match keys.data_key(id).await.expect("a format-1 key reads") {
                KeyState::Live(read) => assert_eq!(read.bytes.as_ref(), key.bytes.as_ref()),
                KeyState::Destroyed { .. } => panic!("{id} was destroyed by the upgrade"),
            }
        }
        let rotated = MasterKey::generate();
        assert!(keys.rotate(&rotated).await.expect("rotate") >= 4);
        keys.destroy(erin, &[], Utc::now()).await.expect("destroy");
        assert!(matches!(
            keys.data_key(&old[0].0).await.expect("read"),
            KeyState::Destroyed { .. }
        ));
        drop(keys);
        let conn = Connection::open(&path).expect("open the file");
        let (format, free): (String, i64) = conn
            .query_row(
                "SELECT (SELECT value FROM meta WHERE name = 'format'),                  (SELECT count(*) FROM data_keys WHERE state = 'free')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("query");
        assert_eq!((format.as_str(), free), (FORMAT, 0));
        drop(conn);
        let reopened =
            SqliteKeyStore::open(&path, rotated, ids, Synchronous::Full).expect("reopen");
        assert_eq!(reopened.reporter_key(fred).await.expect("fred").0, old[1].0);
        assert_eq!(reopened.reporter_key(gina).await.expect("gina").0, gina_id);
        assert_ne!(reopened.reporter_key(erin).await.expect("erin").0, old[0].0);
    }

    /// Every byte run of `needle` of 16 bytes that occurs in `haystack`.
    fn shared_runs(haystack: &[u8], needle: &[u8]) -> usize {
        needle
            .chunks_exact(16)
            .filter(|run| haystack.windows(16).any(|w| w == *run))
            .count()
    }

    fn file_bytes(path: &Path) -> Vec<u8> {
        let mut bytes = std::fs::read(path).expect("the key store file");
        let wal = path.with_extension("db-wal");
        if let Ok(more) = std::fs::read(wal) {
            bytes.extend(more);
        }
        bytes
    }

    /// Erasing a key rewrites its batch under a fresh nonce: the old wrapping (which the
    /// master key would still open) is in neither the file nor its WAL, the erased key is
    /// destroyed, its batch neighbours live on.
    #[tokio::test]
    async fn erasing_a_key_leaves_no_byte_of_its_old_batch_wrapping_in_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("erase.keys.db");
        let master = MasterKey::generate();
        let ids: Arc<dyn IdGenerator> = Arc::new(SeededIds::new(7));
        let keys =
            SqliteKeyStore::create(&path, master.clone(), Arc::clone(&ids), Synchronous::Full)
                .expect("create");
        let reporters: Vec<ReporterHandle> = (0..3u128)
            .map(|n| ReporterHandle(uuid::Uuid::from_u128(0x500 + n)))
            .collect();
        let mut given = Vec::new();
        for r in &reporters {
            given.push(keys.reporter_key(*r).await.expect("a key"));
        }
        keys.flush().await.expect("flush");
        let old_wrapping: Vec<u8> = keys
            .lock()
            .conn
            .query_row("SELECT wrapped FROM key_batches WHERE batch = 1", [], |r| {
                r.get(0)
            })
            .expect("batch 1");
        assert!(
            shared_runs(&file_bytes(&path), &old_wrapping) > 0,
            "the test can see the wrapping"
        );
        keys.destroy(reporters[0], &[], Utc::now())
            .await
            .expect("destroy");
        drop(keys);
        assert_eq!(
            shared_runs(&file_bytes(&path), &old_wrapping),
            0,
            "old wrapping left in the file"
        );
        let reopened = SqliteKeyStore::open(&path, master, ids, Synchronous::Full).expect("reopen");
        assert!(matches!(
            reopened.data_key(&given[0].0).await.expect("read"),
            KeyState::Destroyed { at: Some(_) }
        ));
        for (n, (id, key)) in given.iter().enumerate().skip(1) {
            match reopened.data_key(id).await.expect("read") {
                KeyState::Live(read) => assert_eq!(read.bytes.as_ref(), key.bytes.as_ref()),
                KeyState::Destroyed { .. } => panic!("reporter {n} lost their key"),
            }
            assert_eq!(
                &reopened.reporter_key(reporters[n]).await.expect("a key").0,
                id
            );
        }
    }

    /// An id naming a real slot with another check is no key; an altered batch row or
    /// assignment run is refused, not read as something else.
    #[tokio::test]
    async fn made_up_ids_are_unknown_and_altered_rows_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("alter.keys.db");
        let master = MasterKey::generate();
        let ids: Arc<dyn IdGenerator> = Arc::new(SeededIds::new(8));
        let keys =
            SqliteKeyStore::create(&path, master.clone(), Arc::clone(&ids), Synchronous::Normal)
                .expect("create");
        let reporter = ReporterHandle(uuid::Uuid::from_u128(0x600));
        let (id, _) = keys.reporter_key(reporter).await.expect("a key");
        let mut forged = BatchSlot::parse(&id).expect("a batch key id");
        forged.check[0] ^= 1;
        assert!(matches!(
            keys.data_key(&forged.key_id()).await,
            Err(KeyError::UnknownKey { .. })
        ));
        forged = BatchSlot::parse(&id).expect("a batch key id");
        forged.batch += 1;
        assert!(matches!(
            keys.data_key(&forged.key_id()).await,
            Err(KeyError::UnknownKey { .. })
        ));
        drop(keys);
        let conn = Connection::open(&path).expect("open");
        conn.execute("UPDATE key_batches SET nonce = zeroblob(24)", [])
            .expect("alter the batch");
        // Read by a process that did not make the key (this one would answer from memory).
        let reopened =
            SqliteKeyStore::open(&path, master.clone(), Arc::clone(&ids), Synchronous::Normal)
                .expect("reopen");
        assert!(matches!(
            reopened.data_key(&id).await,
            Err(KeyError::KeyStoreUnreadable { .. })
        ));
        drop(reopened);
        conn.execute("UPDATE assignment_runs SET body = x'00'", [])
            .expect("alter the run");
        drop(conn);
        assert!(matches!(
            SqliteKeyStore::open(&path, master, ids, Synchronous::Normal),
            Err(KeyError::KeyStoreUnreadable { .. })
        ));
    }

    /// The same seed names the same key ids with the same bytes in a memory and a fresh
    /// SQLite key store, across batch boundaries (8, then 16), so a seeded run writes the
    /// same log on either.
    #[tokio::test]
    async fn memory_and_sqlite_key_stores_hand_out_the_same_keys_for_a_seed() {
        let dir = tempfile::tempdir().expect("dir");
        let memory = MemoryKeyStore::new(Arc::new(SeededIds::new(4)));
        let sqlite = SqliteKeyStore::create(
            &dir.path().join("same.keys.db"),
            MasterKey::generate(),
            Arc::new(SeededIds::new(4)),
            Synchronous::Normal,
        )
        .expect("create");
        for n in 0..30u128 {
            let reporter = ReporterHandle(uuid::Uuid::from_u128(0x700 + n));
            let (a_id, a_key) = memory.reporter_key(reporter).await.expect("memory");
            let (b_id, b_key) = sqlite.reporter_key(reporter).await.expect("sqlite");
            assert_eq!(a_id, b_id, "key {n}");
            assert_eq!(a_key.bytes.as_ref(), b_key.bytes.as_ref(), "key {n}");
        }
    }

    /// Enough reporters for several pool refills (8, 16, 32 keys) and assignment batches:
    /// every reporter keeps their key after a reopen, and no two share one.
    #[tokio::test]
    async fn many_reporters_keep_their_keys_across_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("many.keys.db");
        let master = MasterKey::generate();
        let ids: Arc<dyn IdGenerator> = Arc::new(SeededIds::new(6));
        let keys =
            SqliteKeyStore::create(&path, master.clone(), Arc::clone(&ids), Synchronous::Normal)
                .expect("create");
        let mut given = Vec::new();
        for n in 0..53u128 {
            let reporter = ReporterHandle(uuid::Uuid::from_u128(0x1000 + n));
            given.push((
                reporter,
                keys.reporter_key(reporter).await.expect("a key").0,
            ));
        }
        drop(keys);
        let reopened =
            SqliteKeyStore::open(&path, master, ids, Synchronous::Normal).expect("reopen");
        for (reporter, id) in &given {
            assert_eq!(
                &reopened.reporter_key(*reporter).await.expect("a key").0,
                id
            );
        }
        let distinct: HashMap<&String, ()> = given.iter().map(|(_, id)| (id, ())).collect();
        assert_eq!(distinct.len(), given.len());
    }
}
