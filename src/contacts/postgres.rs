//! The key store of a PostgreSQL store (feature `postgres`): reporters' data keys in tables of
//! their own next to the event log (same server, same schema, the store's pool), wrapped by
//! the master key as in SQLite, with a versioned migration of their own.
//!
//! Several engine instances share it. Each makes its own pool of keys in batches (one commit
//! for many new reporters) and records which reporter took which key in batches, as the
//! SQLite key store does; a key is durable before it seals anything. Because another
//! instance may erase a reporter or rotate the master key at any time, nothing is trusted
//! from memory alone: a reporter's key is checked live in the table before it seals, a key
//! is read from the table for every reveal, and every write of new keys checks under a row
//! lock that the master key is still the store's. docs/design.md ("Key store").

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use caseflow_domain::ReporterHandle;
use caseflow_store::postgres::PostgresStore;
use caseflow_store::postgres::deadpool_postgres::Object;
use caseflow_store::postgres::tokio_postgres::{self, GenericClient};
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::error::KeyError;
use super::keystore::{KeyState, KeyStore, new_key};
use super::master::{DataKey, MasterKey};
use crate::ids::IdGenerator;

/// The format tag in `reporter_key_meta`.
const FORMAT: &str = "caseflow-keys-1";
/// Migrations by version: `MIGRATIONS[i]` takes the key tables from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE reporter_key_meta (name text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE reporter_keys (
        seq bigserial UNIQUE,
        key_id text PRIMARY KEY,
        reporter text,
        state text NOT NULL CHECK (state IN ('free', 'assigned', 'destroyed')),
        nonce bytea,
        wrapped bytea,
        destroyed_at text
    );
    CREATE INDEX reporter_keys_by_reporter ON reporter_keys (reporter);
"];
/// The newest version of the key tables this build reads and writes.
const KEY_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
/// Most keys made in one refill; the first refill of a process makes fewer.
const POOL_BATCH_MAX: usize = 256;
const POOL_BATCH_FIRST: usize = 8;
/// Assignments kept in memory before they are written.
const PENDING_MAX: usize = 64;

/// Data keys in PostgreSQL, wrapped by the master key.
pub struct PostgresKeyStore {
    store: PostgresStore,
    /// The server (without password) and schema, for messages.
    place: String,
    ids: Arc<dyn IdGenerator>,
    inner: Mutex<PgKeys>,
}

struct PgKeys {
    master: MasterKey,
    /// Keys made (and committed) by this process and not yet handed out.
    pool: Vec<(String, DataKey)>,
    next_batch: usize,
    /// Reporters' keys this process saw or made (checked live before each use).
    cache: HashMap<ReporterHandle, (String, DataKey)>,
    /// Assignments not yet written.
    pending: Vec<(String, ReporterHandle)>,
}

impl std::fmt::Debug for PostgresKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresKeyStore")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// Where a PostgreSQL store's key tables are, for messages (never a password).
pub(crate) fn key_place(store: &PostgresStore) -> String {
    let options = store.options();
    format!(
        "{} (schema {}, table reporter_keys)",
        options.redacted_url(),
        options.schema
    )
}

/// Whether the store's schema holds key tables.
pub(crate) async fn key_tables_exist(store: &PostgresStore) -> Result<bool, KeyError> {
    let place = key_place(store);
    let mut object = store
        .pooled_client()
        .await
        .map_err(|e| unavailable(&place, e))?;
    let client: &mut tokio_postgres::Client = &mut object;
    let row = client
        .query_one("SELECT to_regclass('reporter_key_meta') IS NOT NULL", &[])
        .await
        .map_err(|e| db(&place, e))?;
    Ok(row.get(0))
}

impl PostgresKeyStore {
    /// Creates the key tables (migrating them if another instance created older ones) and
    /// records `master` as their key, or opens the tables another instance just created.
    pub async fn create(
        store: PostgresStore,
        master: MasterKey,
        ids: Arc<dyn IdGenerator>,
    ) -> Result<PostgresKeyStore, KeyError> {
        let place = key_place(&store);
        let mut object = store
            .pooled_client()
            .await
            .map_err(|e| unavailable(&place, e))?;
        let client: &mut tokio_postgres::Client = &mut object;
        let tx = client.transaction().await.map_err(|e| db(&place, e))?;
        // One migration at a time across instances (the lock ends with the transaction).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('caseflow reporter keys ' || current_schema()))",
            &[],
        )
        .await
        .map_err(|e| db(&place, e))?;
        let version = schema_version(&tx, &place).await?;
        if version > KEY_SCHEMA_VERSION {
            return Err(newer(&place, version));
        }
        for migration in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
            tx.batch_execute(migration)
                .await
                .map_err(|e| db(&place, e))?;
        }
        tx.execute(
            "INSERT INTO reporter_key_meta (name, value) VALUES \
             ('format', $1), ('master', $2), ('version', $3) ON CONFLICT (name) DO NOTHING",
            &[
                &FORMAT,
                &master.fingerprint(),
                &KEY_SCHEMA_VERSION.to_string(),
            ],
        )
        .await
        .map_err(|e| db(&place, e))?;
        tx.execute(
            "UPDATE reporter_key_meta SET value = $1 WHERE name = 'version'",
            &[&KEY_SCHEMA_VERSION.to_string()],
        )
        .await
        .map_err(|e| db(&place, e))?;
        tx.commit().await.map_err(|e| db(&place, e))?;
        drop(object);
        Self::open(store, master, ids).await
    }

    /// Opens existing key tables, checking their format, version and master key.
    pub async fn open(
        store: PostgresStore,
        master: MasterKey,
        ids: Arc<dyn IdGenerator>,
    ) -> Result<PostgresKeyStore, KeyError> {
        let place = key_place(&store);
        {
            let mut object = store
                .pooled_client()
                .await
                .map_err(|e| unavailable(&place, e))?;
            let client: &tokio_postgres::Client = &mut object;
            if meta(client, &place, "format").await?.as_deref() != Some(FORMAT) {
                return Err(KeyError::KeyStoreUnreadable {
                    path: PathBuf::from(&place),
                    reason: "not a Caseflow key store".to_owned(),
                });
            }
            let version = schema_version(client, &place).await?;
            if version != KEY_SCHEMA_VERSION {
                return Err(newer(&place, version));
            }
            check_master(client, &place, &master, false).await?;
        }
        Ok(PostgresKeyStore {
            store,
            place,
            ids,
            inner: Mutex::new(PgKeys {
                master,
                pool: Vec::new(),
                next_batch: POOL_BATCH_FIRST,
                cache: HashMap::new(),
                pending: Vec::new(),
            }),
        })
    }

    async fn client(&self) -> Result<Object, KeyError> {
        self.store
            .pooled_client()
            .await
            .map_err(|e| unavailable(&self.place, e))
    }

    fn db(&self, e: tokio_postgres::Error) -> KeyError {
        db(&self.place, e)
    }

    fn altered(&self, key_id: &str) -> KeyError {
        KeyError::KeyStoreUnreadable {
            path: PathBuf::from(&self.place),
            reason: format!("data key {key_id} does not unwrap: it was altered"),
        }
    }

    /// Makes a batch of keys and commits them (with the pending assignments), after checking
    /// under a row lock that no other instance rotated the master key meanwhile.
    async fn refill(&self, keys: &mut PgKeys) -> Result<(), KeyError> {
        let batch: Vec<(String, DataKey)> = (0..keys.next_batch)
            .map(|_| new_key(self.ids.as_ref()))
            .collect();
        let mut ids = Vec::with_capacity(batch.len());
        let mut nonces = Vec::with_capacity(batch.len());
        let mut wrappings = Vec::with_capacity(batch.len());
        for (id, key) in &batch {
            let (nonce, wrapped) = keys.master.wrap(id, key)?;
            ids.push(id.clone());
            nonces.push(nonce.to_vec());
            wrappings.push(wrapped);
        }
        let mut object = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut object;
        let tx = client.transaction().await.map_err(|e| self.db(e))?;
        check_master(&tx, &self.place, &keys.master, true).await?;
        tx.execute(
            "INSERT INTO reporter_keys (key_id, state, nonce, wrapped) \
             SELECT k, 'free', n, w FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS t(k, n, w)",
            &[&ids, &nonces, &wrappings],
        )
        .await
        .map_err(|e| self.db(e))?;
        write_assignments(&tx, &keys.pending)
            .await
            .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        keys.pending.clear();
        keys.next_batch = (keys.next_batch * 2).min(POOL_BATCH_MAX);
        // Hand out in the order made (so seeded runs are reproducible).
        keys.pool = batch.into_iter().rev().collect();
        Ok(())
    }

    async fn write_pending(&self, keys: &mut PgKeys) -> Result<(), KeyError> {
        if keys.pending.is_empty() {
            return Ok(());
        }
        let object = self.client().await?;
        write_assignments(pg(&object), &keys.pending)
            .await
            .map_err(|e| self.db(e))?;
        keys.pending.clear();
        Ok(())
    }

    /// The reporter's key as the table knows it now: the cached one if it is still live
    /// (another instance may have destroyed it), else the first live one assigned to them.
    async fn live_key(
        &self,
        keys: &mut PgKeys,
        reporter: ReporterHandle,
    ) -> Result<Option<(String, DataKey)>, KeyError> {
        let object = self.client().await?;
        let client = pg(&object);
        if let Some((id, key)) = keys.cache.get(&reporter).cloned() {
            let state: Option<String> = client
                .query_opt("SELECT state FROM reporter_keys WHERE key_id = $1", &[&id])
                .await
                .map_err(|e| self.db(e))?
                .map(|r| r.get(0));
            if state.as_deref() != Some("destroyed") {
                return Ok(Some((id, key)));
            }
            keys.cache.remove(&reporter);
        }
        let row = client
            .query_opt(
                "SELECT key_id, nonce, wrapped FROM reporter_keys \
                 WHERE reporter = $1 AND state = 'assigned' ORDER BY seq LIMIT 1",
                &[&reporter.to_string()],
            )
            .await
            .map_err(|e| self.db(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (id, nonce, wrapped): (String, Vec<u8>, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        let key = self
            .unwrap_key(client, &keys.master, &id, &nonce, &wrapped)
            .await?;
        keys.cache.insert(reporter, (id.clone(), key.clone()));
        Ok(Some((id, key)))
    }

    /// Unwraps a stored key; when it does not unwrap, says whether the master key changed
    /// (another instance rotated it) or the bytes were altered.
    async fn unwrap_key(
        &self,
        client: &impl GenericClient,
        master: &MasterKey,
        key_id: &str,
        nonce: &[u8],
        wrapped: &[u8],
    ) -> Result<DataKey, KeyError> {
        if let Some(key) = master.unwrap(key_id, nonce, wrapped) {
            return Ok(key);
        }
        check_master(client, &self.place, master, false).await?;
        Err(self.altered(key_id))
    }
}

#[async_trait]
impl KeyStore for PostgresKeyStore {
    async fn reporter_key(&self, reporter: ReporterHandle) -> Result<(String, DataKey), KeyError> {
        let mut keys = self.inner.lock().await;
        if let Some(found) = self.live_key(&mut keys, reporter).await? {
            return Ok(found);
        }
        if keys.pool.is_empty() {
            self.refill(&mut keys).await?;
        }
        let (id, key) = keys
            .pool
            .pop()
            .ok_or(KeyError::Crypto("an empty key pool after a refill"))?;
        keys.cache.insert(reporter, (id.clone(), key.clone()));
        keys.pending.push((id.clone(), reporter));
        if keys.pending.len() >= PENDING_MAX {
            self.write_pending(&mut keys).await?;
        }
        Ok((id, key))
    }

    async fn data_key(&self, key_id: &str) -> Result<KeyState, KeyError> {
        let master = self.inner.lock().await.master.clone();
        let object = self.client().await?;
        let client = pg(&object);
        let row = client
            .query_opt(
                "SELECT state, nonce, wrapped, destroyed_at FROM reporter_keys WHERE key_id = $1",
                &[&key_id],
            )
            .await
            .map_err(|e| self.db(e))?;
        let Some(row) = row else {
            return Err(KeyError::UnknownKey {
                key_id: key_id.to_owned(),
            });
        };
        let state: String = row.get(0);
        if state == "destroyed" {
            let at: Option<String> = row.get(3);
            return Ok(KeyState::Destroyed {
                at: at.and_then(|t| DateTime::parse_from_rfc3339(&t).ok().map(|t| t.to_utc())),
            });
        }
        let (nonce, wrapped): (Option<Vec<u8>>, Option<Vec<u8>>) = (row.get(1), row.get(2));
        let (Some(nonce), Some(wrapped)) = (nonce, wrapped) else {
            return Err(self.altered(key_id));
        };
        self.unwrap_key(client, &master, key_id, &nonce, &wrapped)
            .await
            .map(KeyState::Live)
    }

    async fn destroy(
        &self,
        reporter: ReporterHandle,
        key_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        let mut keys = self.inner.lock().await;
        let mut doomed: Vec<String> = key_ids.to_vec();
        if let Some((id, _)) = keys.cache.remove(&reporter) {
            doomed.push(id);
        }
        keys.pending.retain(|(id, _)| !doomed.contains(id));
        let mut object = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut object;
        let tx = client.transaction().await.map_err(|e| self.db(e))?;
        write_assignments(&tx, &keys.pending)
            .await
            .map_err(|e| self.db(e))?;
        let at_text = at.to_rfc3339();
        let handle = reporter.to_string();
        tx.execute(
            "UPDATE reporter_keys SET state = 'destroyed', nonce = NULL, wrapped = NULL, destroyed_at = $2 \
             WHERE reporter = $1 AND state <> 'destroyed'",
            &[&handle, &at_text],
        )
        .await
        .map_err(|e| self.db(e))?;
        tx.execute(
            "INSERT INTO reporter_keys (key_id, reporter, state, destroyed_at) \
             SELECT k, $2, 'destroyed', $3 FROM unnest($1::text[]) AS t(k) \
             ON CONFLICT (key_id) DO UPDATE SET state = 'destroyed', nonce = NULL, wrapped = NULL, \
             destroyed_at = COALESCE(reporter_keys.destroyed_at, excluded.destroyed_at)",
            &[&doomed, &handle, &at_text],
        )
        .await
        .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        keys.pending.clear();
        // Dead row versions keep the old bytes until vacuumed; vacuum now (it cannot run in
        // a transaction). What it cannot reach (WAL archives, base backups) docs/design.md says.
        if let Err(e) = client.batch_execute("VACUUM reporter_keys").await {
            tracing::warn!(error = %e, "could not vacuum the key table after an erasure");
        }
        Ok(())
    }

    async fn rotate(&self, new_master: &MasterKey) -> Result<usize, KeyError> {
        let mut keys = self.inner.lock().await;
        let mut object = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut object;
        let tx = client.transaction().await.map_err(|e| self.db(e))?;
        // The row lock keeps every other instance's refill waiting until the new key is in.
        check_master(&tx, &self.place, &keys.master, true).await?;
        write_assignments(&tx, &keys.pending)
            .await
            .map_err(|e| self.db(e))?;
        let rows = tx
            .query(
                "SELECT key_id, nonce, wrapped FROM reporter_keys WHERE wrapped IS NOT NULL \
                 ORDER BY seq FOR UPDATE",
                &[],
            )
            .await
            .map_err(|e| self.db(e))?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut nonces = Vec::with_capacity(rows.len());
        let mut wrappings = Vec::with_capacity(rows.len());
        for row in &rows {
            let (id, nonce, wrapped): (String, Vec<u8>, Vec<u8>) =
                (row.get(0), row.get(1), row.get(2));
            let key = keys
                .master
                .unwrap(&id, &nonce, &wrapped)
                .ok_or_else(|| self.altered(&id))?;
            let (nonce, wrapped) = new_master.wrap(&id, &key)?;
            ids.push(id);
            nonces.push(nonce.to_vec());
            wrappings.push(wrapped);
        }
        tx.execute(
            "UPDATE reporter_keys k SET nonce = t.n, wrapped = t.w \
             FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS t(id, n, w) WHERE k.key_id = t.id",
            &[&ids, &nonces, &wrappings],
        )
        .await
        .map_err(|e| self.db(e))?;
        tx.execute(
            "UPDATE reporter_key_meta SET value = $1 WHERE name = 'master'",
            &[&new_master.fingerprint()],
        )
        .await
        .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        keys.pending.clear();
        keys.master = new_master.clone();
        if let Err(e) = client.batch_execute("VACUUM reporter_keys").await {
            tracing::warn!(error = %e, "could not vacuum the key table after a rotation");
        }
        Ok(ids.len())
    }

    async fn binding(&self) -> Result<Option<String>, KeyError> {
        let object = self.client().await?;
        meta(pg(&object), &self.place, "log").await
    }

    async fn bind(&self, first_event_id: &str) -> Result<(), KeyError> {
        let object = self.client().await?;
        pg(&object)
            .execute(
                "INSERT INTO reporter_key_meta (name, value) VALUES ('log', $1) \
                 ON CONFLICT (name) DO NOTHING",
                &[&first_event_id],
            )
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), KeyError> {
        let mut keys = self.inner.lock().await;
        self.write_pending(&mut keys).await
    }
}

impl Drop for PostgresKeyStore {
    fn drop(&mut self) {
        // Best effort, as in SQLite: an assignment lost here only gives the reporter a second
        // key (erasure destroys every key their cases name).
        let pending = std::mem::take(&mut self.inner.get_mut().pending);
        if pending.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store.clone();
        runtime.spawn(async move {
            if let Ok(object) = store.pooled_client().await {
                if let Err(e) = write_assignments(pg(&object), &pending).await {
                    tracing::warn!(error = %e, "could not write the last key assignments");
                }
            }
        });
    }
}

/// The driver's client behind a pooled connection.
fn pg(object: &Object) -> &tokio_postgres::Client {
    object
}

async fn write_assignments(
    client: &impl GenericClient,
    pending: &[(String, ReporterHandle)],
) -> Result<(), tokio_postgres::Error> {
    if pending.is_empty() {
        return Ok(());
    }
    let (ids, reporters): (Vec<String>, Vec<String>) = pending
        .iter()
        .map(|(id, reporter)| (id.clone(), reporter.to_string()))
        .unzip();
    client
        .execute(
            "UPDATE reporter_keys k SET reporter = t.r, state = 'assigned' \
             FROM unnest($1::text[], $2::text[]) AS t(id, r) \
             WHERE k.key_id = t.id AND k.state <> 'destroyed'",
            &[&ids, &reporters],
        )
        .await
        .map(|_| ())
}

async fn meta(
    client: &impl GenericClient,
    place: &str,
    name: &str,
) -> Result<Option<String>, KeyError> {
    client
        .query_opt(
            "SELECT value FROM reporter_key_meta WHERE name = $1",
            &[&name],
        )
        .await
        .map(|row| row.map(|r| r.get(0)))
        .map_err(|e| db(place, e))
}

/// The version of the key tables (0 when there are none).
async fn schema_version(client: &impl GenericClient, place: &str) -> Result<i64, KeyError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('reporter_key_meta') IS NOT NULL", &[])
        .await
        .map_err(|e| db(place, e))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let text = meta(client, place, "version").await?.unwrap_or_default();
    text.parse().map_err(|_| KeyError::KeyStoreUnreadable {
        path: PathBuf::from(place),
        reason: format!("key table version {text:?} is not a number"),
    })
}

/// Checks that `master` is the key tables' master key; `lock` holds the row until the
/// transaction ends (so a rotation and a refill never interleave).
async fn check_master(
    client: &impl GenericClient,
    place: &str,
    master: &MasterKey,
    lock: bool,
) -> Result<(), KeyError> {
    let sql = if lock {
        "SELECT value FROM reporter_key_meta WHERE name = 'master' FOR UPDATE"
    } else {
        "SELECT value FROM reporter_key_meta WHERE name = 'master'"
    };
    let expected: String = client
        .query_opt(sql, &[])
        .await
        .map_err(|e| db(place, e))?
        .map(|r| r.get(0))
        .unwrap_or_default();
    if expected != master.fingerprint() {
        return Err(KeyError::WrongMasterKey {
            path: PathBuf::from(place),
            expected,
            given: master.fingerprint(),
        });
    }
    Ok(())
}

fn newer(place: &str, version: i64) -> KeyError {
    KeyError::KeyStoreUnreadable {
        path: PathBuf::from(place),
        reason: format!(
            "key tables of version {version}; this build reads version {KEY_SCHEMA_VERSION}"
        ),
    }
}

fn db(place: &str, e: tokio_postgres::Error) -> KeyError {
    KeyError::KeyDatabase {
        place: place.to_owned(),
        reason: e.to_string(),
    }
}

fn unavailable(place: &str, e: caseflow_store::StoreError) -> KeyError {
    KeyError::KeyDatabase {
        place: place.to_owned(),
        reason: e.to_string(),
    }
}
