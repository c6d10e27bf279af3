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

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caseflow_domain::ReporterHandle;
use caseflow_store::Synchronous;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::error::KeyError;
use super::master::{DataKey, KEY_BYTES, MasterKey, NONCE_BYTES};
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
pub(crate) fn new_key(ids: &dyn IdGenerator) -> (String, DataKey) {
    let mut bytes = [0u8; KEY_BYTES];
    ids.fill_secret(Secret::DataKey, &mut bytes);
    let mut id = [0u8; 16];
    ids.fill_secret(Secret::DataKey, &mut id);
    // 128 random bits in base64url (22 characters; `dk-` and 32 hex digits before format 2):
    // the id is in every sealed contact, so its length is hashed and written on each report.
    (URL_SAFE_NO_PAD.encode(id), DataKey::from_bytes(bytes))
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
        let (id, key) = new_key(self.ids.as_ref());
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

/// The format tag in a key store's `meta` table.
const FORMAT: &str = "caseflow-keys-1";
/// Most keys made in one pool refill (the first refill of a process makes fewer).
const POOL_BATCH_MAX: usize = 256;
/// The first refill's size; each refill doubles it up to [`POOL_BATCH_MAX`].
const POOL_BATCH_FIRST: usize = 8;
/// Assignments kept in memory before they are written.
const PENDING_MAX: usize = 64;

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

/// Which reporter took which key, appended (a key store of the first release recorded it by
/// rewriting the key's row, which it still reads). Added to such a file at open.
const ASSIGNMENTS: &str =
    "CREATE TABLE IF NOT EXISTS key_assignments (key_id TEXT NOT NULL, reporter TEXT NOT NULL)";

/// Data keys in a SQLite file, wrapped by the master key.
#[derive(Debug)]
pub struct SqliteKeyStore {
    path: PathBuf,
    ids: Arc<dyn IdGenerator>,
    inner: Mutex<SqliteKeys>,
}

struct SqliteKeys {
    conn: Connection,
    master: MasterKey,
    /// Keys made by this process and not yet handed out.
    pool: Vec<(String, DataKey)>,
    next_batch: usize,
    /// Reporters' keys seen or made by this process.
    cache: HashMap<ReporterHandle, (String, DataKey)>,
    /// Every reporter the file holds a live assigned key for, and that key's id (read at
    /// open, kept as keys are assigned and destroyed): a report by a reporter not in it, as
    /// most reports are, needs no lookup in the file, and one in it a lookup by key id.
    assigned: HashMap<ReporterHandle, String>,
    /// Assignments not yet written.
    pending: Vec<(String, ReporterHandle)>,
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
        let conn = Connection::open(path).map_err(|e| io(path, e))?;
        configure(&conn, path, synchronous)?;
        conn.execute_batch(SCHEMA).map_err(|e| io(path, e))?;
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('format', ?1), ('master', ?2)",
            params![FORMAT, master.fingerprint()],
        )
        .map_err(|e| io(path, e))?;
        Ok(Self::from_parts(path, conn, master, ids))
    }

    /// Opens an existing key store, checking that it is one and that `master` is its key.
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
        let conn = Connection::open_with_flags(
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
        let meta = |name: &str| -> Result<Option<String>, KeyError> {
            conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| unreadable(e.to_string()))
        };
        if meta("format")?.as_deref() != Some(FORMAT) {
            return Err(unreadable("not a Caseflow key store".to_owned()));
        }
        let expected = meta("master")?.unwrap_or_default();
        if expected != master.fingerprint() {
            return Err(KeyError::WrongMasterKey {
                path: path.to_owned(),
                expected,
                given: master.fingerprint(),
            });
        }
        // Pool keys an earlier process left free may have been handed out by it without the
        // assignment being written: never hand them out again (they stay readable).
        conn.execute(
            "UPDATE data_keys SET state = 'retired' WHERE state = 'free'",
            [],
        )
        .map_err(|e| io(path, e))?;
        conn.execute_batch(ASSIGNMENTS).map_err(|e| io(path, e))?;
        let assigned = assigned_reporters(&conn).map_err(|e| io(path, e))?;
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
                next_batch: POOL_BATCH_FIRST,
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

    /// Makes a batch of keys and writes them in one durable transaction.
    fn refill(&self, keys: &mut SqliteKeys) -> Result<(), KeyError> {
        let batch: Vec<(String, DataKey)> = (0..keys.next_batch)
            .map(|_| new_key(self.ids.as_ref()))
            .collect();
        let mut wrapped = Vec::with_capacity(batch.len());
        for (id, key) in &batch {
            wrapped.push(keys.master.wrap(id, key)?);
        }
        let tx = keys.conn.transaction().map_err(|e| self.io(e))?;
        insert_free_keys(&tx, &batch, &wrapped).map_err(|e| self.io(e))?;
        write_assignments(&tx, &keys.pending).map_err(|e| self.io(e))?;
        tx.commit().map_err(|e| self.io(e))?;
        keys.pending.clear();
        keys.next_batch = (keys.next_batch * 2).min(POOL_BATCH_MAX);
        // Hand out in the order made (so seeded runs are reproducible).
        keys.pool = batch.into_iter().rev().collect();
        Ok(())
    }

    /// Writes the assignments kept in memory, in one transaction (one commit, so one sync
    /// under `synchronous=FULL`, for a whole batch; each statement on its own would be a
    /// commit and a sync per assignment).
    fn write_pending(&self, keys: &mut SqliteKeys) -> Result<(), KeyError> {
        if keys.pending.is_empty() {
            return Ok(());
        }
        let tx = keys.conn.transaction().map_err(|e| self.io(e))?;
        write_assignments(&tx, &keys.pending).map_err(|e| self.io(e))?;
        tx.commit().map_err(|e| self.io(e))?;
        keys.pending.clear();
        Ok(())
    }

    /// The live key recorded for a reporter (by an earlier process), read by its id.
    fn assigned_key(
        &self,
        keys: &SqliteKeys,
        key_id: &str,
    ) -> Result<Option<(String, DataKey)>, KeyError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = keys
            .conn
            .prepare_cached(
                "SELECT nonce, wrapped FROM data_keys \
                 WHERE key_id = ?1 AND state <> 'destroyed' AND wrapped IS NOT NULL",
            )
            .and_then(|mut select| {
                select
                    .query_row([key_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.io(e))?;
        let Some((nonce, wrapped)) = row else {
            return Ok(None);
        };
        let key = keys
            .master
            .unwrap(key_id, &nonce, &wrapped)
            .ok_or_else(|| self.altered(key_id))?;
        Ok(Some((key_id.to_owned(), key)))
    }

    fn altered(&self, key_id: &str) -> KeyError {
        KeyError::KeyStoreUnreadable {
            path: self.path.clone(),
            reason: format!("data key {key_id} does not unwrap: it was altered"),
        }
    }
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
    // secure_delete overwrites freed content, so a destroyed key's bytes do not linger in
    // free pages; the WAL is truncated after every destruction and rotation.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA secure_delete = ON;"
    ))
    .map_err(|e| io(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| io(path, e))
}

/// The reporters with a live assigned key, and its id: the first recorded, in the rows of
/// the first release (`state = 'assigned'`) or in `key_assignments`.
fn assigned_reporters(conn: &Connection) -> rusqlite::Result<HashMap<ReporterHandle, String>> {
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
    Ok(reporters)
}

/// Writes a pool batch as one multi-row `INSERT` (one statement, not one per key: the
/// statement overhead was a visible part of a new reporter's cost). Batch sizes are few
/// (8, 16, … 256), so each size's text is built once ([`free_keys_sql`]) and its statement
/// prepared once.
fn insert_free_keys(
    conn: &Connection,
    batch: &[(String, DataKey)],
    wrapped: &[([u8; NONCE_BYTES], Vec<u8>)],
) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut insert = conn.prepare_cached(&free_keys_sql(batch.len()))?;
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(batch.len() * 3);
    for ((id, _), (nonce, wrapped)) in batch.iter().zip(wrapped) {
        values.push(id);
        values.push(nonce);
        values.push(wrapped);
    }
    insert.execute(values.as_slice())?;
    Ok(())
}

/// Appends assignments to `key_assignments` in one multi-row `INSERT` per 64 (appending to a
/// table without an index, where rewriting each key's row, with its index entry, cost more
/// than the rest of a report's key bookkeeping).
fn write_assignments(
    conn: &Connection,
    pending: &[(String, ReporterHandle)],
) -> rusqlite::Result<()> {
    for chunk in pending.chunks(PENDING_MAX) {
        let handles: Vec<String> = chunk.iter().map(|(_, r)| r.to_string()).collect();
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 2);
        for ((id, _), handle) in chunk.iter().zip(&handles) {
            values.push(id);
            values.push(handle);
        }
        conn.prepare_cached(&assignments_sql(chunk.len()))?
            .execute(values.as_slice())?;
    }
    Ok(())
}

/// The text of the pool batch insert of `rows` keys. The sizes a refill uses (8, 16, …
/// [`POOL_BATCH_MAX`]) are built once per process and kept: formatting hundreds of
/// placeholders was paid on every refill.
fn free_keys_sql(rows: usize) -> Cow<'static, str> {
    static TEXTS: [OnceLock<String>; 6] = [const { OnceLock::new() }; 6];
    let build = || {
        multi_row_sql(
            "INSERT INTO data_keys (key_id, state, nonce, wrapped) VALUES ",
            rows,
            |first| format!("(?{first}, 'free', ?{}, ?{})", first + 1, first + 2),
            3,
        )
    };
    let kept = rows
        .is_power_of_two()
        .then(|| {
            (rows.trailing_zeros() as usize).checked_sub(POOL_BATCH_FIRST.trailing_zeros() as usize)
        })
        .flatten()
        .and_then(|i| TEXTS.get(i));
    match kept {
        Some(text) => Cow::Borrowed(text.get_or_init(build)),
        None => Cow::Owned(build()),
    }
}

/// The text of the assignment append of `rows` rows; a full chunk's ([`PENDING_MAX`], every
/// one but a flush's remainder) is built once per process and kept.
fn assignments_sql(rows: usize) -> Cow<'static, str> {
    static FULL: OnceLock<String> = OnceLock::new();
    let build = || {
        multi_row_sql(
            "INSERT INTO key_assignments (key_id, reporter) VALUES ",
            rows,
            |first| format!("(?{first}, ?{})", first + 1),
            2,
        )
    };
    if rows == PENDING_MAX {
        Cow::Borrowed(FULL.get_or_init(build))
    } else {
        Cow::Owned(build())
    }
}

/// `head` followed by `rows` comma-separated groups of `per_row` numbered placeholders, each
/// written by `group` from the number of its first placeholder.
fn multi_row_sql(
    head: &str,
    rows: usize,
    group: impl Fn(usize) -> String,
    per_row: usize,
) -> String {
    let mut sql = String::from(head);
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push_str(&group(row * per_row + 1));
    }
    sql
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn reporter_key(&self, reporter: ReporterHandle) -> Result<(String, DataKey), KeyError> {
        let mut keys = self.lock();
        if let Some(hit) = keys.cache.get(&reporter) {
            return Ok(hit.clone());
        }
        if let Some(key_id) = keys.assigned.get(&reporter).cloned() {
            if let Some(found) = self.assigned_key(&keys, &key_id)? {
                keys.cache.insert(reporter, found.clone());
                return Ok(found);
            }
        }
        if keys.pool.is_empty() {
            self.refill(&mut keys)?;
        }
        let (id, key) = keys
            .pool
            .pop()
            .ok_or(KeyError::Crypto("an empty key pool after a refill"))?;
        keys.cache.insert(reporter, (id.clone(), key.clone()));
        keys.assigned.insert(reporter, id.clone());
        keys.pending.push((id.clone(), reporter));
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
        type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<String>);
        let row: Option<Row> = keys
            .conn
            .query_row(
                "SELECT state, nonce, wrapped, destroyed_at FROM data_keys WHERE key_id = ?1",
                [key_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| self.io(e))?;
        match row {
            None => Err(KeyError::UnknownKey {
                key_id: key_id.to_owned(),
            }),
            Some((state, _, _, at)) if state == "destroyed" => Ok(KeyState::Destroyed {
                at: at.and_then(|t| DateTime::parse_from_rfc3339(&t).ok().map(|t| t.to_utc())),
            }),
            Some((_, Some(nonce), Some(wrapped), _)) => keys
                .master
                .unwrap(key_id, &nonce, &wrapped)
                .map(KeyState::Live)
                .ok_or_else(|| self.altered(key_id)),
            Some(_) => Err(self.altered(key_id)),
        }
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
        keys.pending.retain(|(id, _)| !doomed.contains(id));
        let pending = std::mem::take(&mut keys.pending);
        let tx = keys.conn.transaction().map_err(|e| self.io(e))?;
        write_assignments(&tx, &pending).map_err(|e| self.io(e))?;
        let at_text = at.to_rfc3339();
        tx.execute(
            "UPDATE data_keys SET state = 'destroyed', nonce = NULL, wrapped = NULL, destroyed_at = ?2 \
             WHERE (reporter = ?1 OR key_id IN (SELECT key_id FROM key_assignments WHERE reporter = ?1)) \
             AND state <> 'destroyed'",
            params![reporter.to_string(), at_text],
        )
        .map_err(|e| self.io(e))?;
        for id in &doomed {
            tx.execute(
                "INSERT INTO data_keys (key_id, reporter, state, destroyed_at) VALUES (?1, ?2, 'destroyed', ?3) \
                 ON CONFLICT (key_id) DO UPDATE SET state = 'destroyed', nonce = NULL, wrapped = NULL, \
                 destroyed_at = COALESCE(data_keys.destroyed_at, excluded.destroyed_at)",
                params![id, reporter.to_string(), at_text],
            )
            .map_err(|e| self.io(e))?;
        }
        tx.commit().map_err(|e| self.io(e))?;
        truncate_wal(&keys.conn).map_err(|e| self.io(e))
    }

    async fn rotate(&self, new_master: &MasterKey) -> Result<usize, KeyError> {
        let mut keys = self.lock();
        let pending = std::mem::take(&mut keys.pending);
        let old = keys.master.clone();
        let tx = keys.conn.transaction().map_err(|e| self.io(e))?;
        write_assignments(&tx, &pending).map_err(|e| self.io(e))?;
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
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'master'",
            [new_master.fingerprint()],
        )
        .map_err(|e| self.io(e))?;
        tx.commit().map_err(|e| self.io(e))?;
        keys.master = new_master.clone();
        // The old wrappings must not linger in the WAL for the old master key to open.
        truncate_wal(&keys.conn).map_err(|e| self.io(e))?;
        Ok(rows.len())
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

    #[test]
    fn the_kept_insert_texts_are_the_texts_a_batch_of_their_size_needs() {
        for rows in [1, 3, 8, 16, 64, 100, 128, 256, 512] {
            let free = free_keys_sql(rows);
            assert_eq!(free.matches("'free'").count(), rows, "{rows} pool rows");
            assert!(
                free.ends_with(&format!("?{})", rows * 3)),
                "{rows} pool rows"
            );
            assert_eq!(free, free_keys_sql(rows), "built again, the same text");
            let assigned = assignments_sql(rows);
            assert_eq!(
                assigned.matches('(').count(),
                rows + 1,
                "{rows} assignments"
            );
            assert!(
                assigned.ends_with(&format!("?{})", rows * 2)),
                "{rows} assignments"
            );
        }
        assert!(matches!(free_keys_sql(POOL_BATCH_FIRST), Cow::Borrowed(_)));
        assert!(matches!(free_keys_sql(POOL_BATCH_MAX), Cow::Borrowed(_)));
        assert!(matches!(assignments_sql(PENDING_MAX), Cow::Borrowed(_)));
    }

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

    /// A key store of the first release recorded an assignment in the key's own row (and had
    /// no `key_assignments`): its reporters keep their keys, and erasure still finds them.
    #[tokio::test]
    async fn a_first_release_key_store_keeps_its_assignments_and_erasure_finds_them() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("old.keys.db");
        let master = MasterKey::generate();
        let ids: Arc<dyn IdGenerator> = Arc::new(SeededIds::new(5));
        let erin = ReporterHandle(uuid::Uuid::from_u128(0xe1));
        let keys =
            SqliteKeyStore::create(&path, master.clone(), Arc::clone(&ids), Synchronous::Full)
                .expect("create");
        let (erin_id, _) = keys.reporter_key(erin).await.expect("a key");
        drop(keys);
        {
            let conn = Connection::open(&path).expect("open the file");
            conn.execute_batch(&format!(
                "DROP TABLE key_assignments; UPDATE data_keys SET reporter = '{erin}', \
                 state = 'assigned' WHERE key_id = '{erin_id}'"
            ))
            .expect("the first release's layout");
        }
        let reopened = SqliteKeyStore::open(&path, master, ids, Synchronous::Full).expect("open");
        assert_eq!(reopened.reporter_key(erin).await.expect("a key").0, erin_id);
        let at = Utc::now();
        reopened.destroy(erin, &[], at).await.expect("destroy");
        assert!(matches!(
            reopened.data_key(&erin_id).await.expect("read"),
            KeyState::Destroyed { .. }
        ));
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
