//! The engine's side of reporter protection: opens the key store when first needed
//! (checking that it is this store's, and that the master key is its key), seals named
//! contacts before anything is stored, opens them for a reveal, and destroys keys on
//! erasure.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use caseflow_domain::{Case, CaseEvent, ProtectedContact, Reporter, ReporterHandle};
use caseflow_store::{EventStore, Synchronous};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use super::error::KeyError;
use super::keystore::{KeyState, KeyStore, MemoryKeyStore, SqliteKeyStore};
use super::master::MasterKey;
use super::seal::{open, seal};
use crate::engine::READ_BATCH;
use crate::error::EngineError;
use crate::ids::IdGenerator;

/// Where an engine keeps reporters' data keys.
#[derive(Clone, Default)]
pub enum KeyStoreConfig {
    /// Next to a SQLite store (`<stem>.keys.db`, [`super::key_store_path`]); in memory for
    /// a memory or shared store; none for a store URL (configure one).
    #[default]
    Default,
    /// In memory (the keys die with the process).
    InMemory,
    /// This SQLite file.
    SqliteFile(PathBuf),
    /// An already opened key store (e.g. shared across an engine "restart" in a test, like
    /// `StoreConfig::Shared`).
    Shared(Arc<dyn KeyStore>),
}

impl std::fmt::Debug for KeyStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyStoreConfig::Default => f.write_str("Default"),
            KeyStoreConfig::InMemory => f.write_str("InMemory"),
            KeyStoreConfig::SqliteFile(p) => f.debug_tuple("SqliteFile").field(p).finish(),
            KeyStoreConfig::Shared(_) => f.write_str("Shared(..)"),
        }
    }
}

/// The key store an engine resolved from its configuration.
#[derive(Debug)]
pub(crate) enum KeyTarget {
    Memory,
    Sqlite {
        path: PathBuf,
        synchronous: Synchronous,
    },
    Shared(Arc<dyn KeyStore>),
    /// Tables next to a PostgreSQL store's log, through the store's pool.
    #[cfg(feature = "postgres")]
    Postgres(caseflow_store::postgres::PostgresStore),
    None,
}

/// What a reveal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Opened {
    Contact(ProtectedContact),
    Destroyed(Option<DateTime<Utc>>),
}

pub(crate) struct Vault {
    target: KeyTarget,
    master: Option<MasterKey>,
    ids: Arc<dyn IdGenerator>,
    keys: OnceCell<Arc<dyn KeyStore>>,
    bound: AtomicBool,
}

impl Vault {
    pub(crate) fn new(
        target: KeyTarget,
        master: Option<MasterKey>,
        ids: Arc<dyn IdGenerator>,
    ) -> Vault {
        Vault {
            target,
            master,
            ids,
            keys: OnceCell::new(),
            bound: AtomicBool::new(false),
        }
    }

    /// The key store, opened (or, for a store with no sealed contact yet, created) on first
    /// use. Errors are not kept: the next call tries again.
    pub(crate) async fn keys(
        &self,
        store: &dyn EventStore,
    ) -> Result<&Arc<dyn KeyStore>, EngineError> {
        self.keys.get_or_try_init(|| self.open_keys(store)).await
    }

    async fn open_keys(&self, store: &dyn EventStore) -> Result<Arc<dyn KeyStore>, EngineError> {
        let (path, synchronous) = match &self.target {
            KeyTarget::Memory => return Ok(Arc::new(MemoryKeyStore::new(Arc::clone(&self.ids)))),
            KeyTarget::Shared(keys) => return Ok(Arc::clone(keys)),
            KeyTarget::None => return Err(KeyError::NoKeyStoreConfigured.into()),
            #[cfg(feature = "postgres")]
            KeyTarget::Postgres(pg) => return self.open_postgres_keys(store, pg).await,
            KeyTarget::Sqlite { path, synchronous } => (path, *synchronous),
        };
        let master = self.master.clone().ok_or(KeyError::MasterKeyMissing)?;
        let ids = Arc::clone(&self.ids);
        let keys = if path.exists() {
            let keys = SqliteKeyStore::open(path, master, ids, synchronous)?;
            check_binding(store, &keys, path).await?;
            keys
        } else {
            // Never recreate a lost key store: that would make every contact unreadable.
            if log_has_sealed_contacts(store).await? {
                return Err(KeyError::KeyStoreMissing { path: path.clone() }.into());
            }
            SqliteKeyStore::create(path, master, ids, synchronous)?
        };
        Ok(Arc::new(keys))
    }

    /// The key tables of a PostgreSQL store, checked like a SQLite key store: never created
    /// for a log that already holds sealed contacts, refused when bound to another log.
    #[cfg(feature = "postgres")]
    async fn open_postgres_keys(
        &self,
        store: &dyn EventStore,
        pg: &caseflow_store::postgres::PostgresStore,
    ) -> Result<Arc<dyn KeyStore>, EngineError> {
        use super::postgres::{PostgresKeyStore, key_place, key_tables_exist};
        let master = self.master.clone().ok_or(KeyError::MasterKeyMissing)?;
        let ids = Arc::clone(&self.ids);
        let place = PathBuf::from(key_place(pg));
        let keys = if key_tables_exist(pg).await? {
            let keys = PostgresKeyStore::open(pg.clone(), master, ids).await?;
            check_binding(store, &keys, &place).await?;
            keys
        } else {
            if log_has_sealed_contacts(store).await? {
                return Err(KeyError::KeyStoreMissing { path: place }.into());
            }
            PostgresKeyStore::create(pg.clone(), master, ids).await?
        };
        Ok(Arc::new(keys))
    }

    /// Whether the key store can be used (it is opened if it was not).
    pub(crate) async fn ready(&self, store: &dyn EventStore) -> Result<(), EngineError> {
        self.keys(store).await.map(|_| ())
    }

    /// Seals every clear contact in freshly decided events (a `CaseReported` of a named
    /// reporter), so that no clear contact reaches the store.
    pub(crate) async fn seal_events(
        &self,
        store: &dyn EventStore,
        events: &mut [CaseEvent],
    ) -> Result<(), EngineError> {
        for event in events {
            let CaseEvent::CaseReported(report) = event else {
                continue;
            };
            let Reporter::Named(contact) = &report.reporter else {
                continue;
            };
            let keys = self.keys(store).await?;
            let (key_id, key) = keys.reporter_key(report.reporter_handle).await?;
            let sealed = seal(
                contact,
                &key_id,
                &key,
                report.case_id,
                report.reporter_handle,
                self.ids.as_ref(),
            )?;
            report.reporter = Reporter::Sealed(sealed);
        }
        Ok(())
    }

    /// Records which log this key store belongs to, once the log has a first event.
    pub(crate) async fn bind(&self, store: &dyn EventStore) -> Result<(), EngineError> {
        if self.bound.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(keys) = self.keys.get() else {
            return Ok(());
        };
        if keys.binding().await?.is_none() {
            let Some(first) = store.read_all(1, 1).await?.into_iter().next() else {
                return Ok(());
            };
            keys.bind(&first.event_id.to_string()).await?;
        }
        self.bound.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The clear contact of a case (after the reveal was recorded), or when its key was
    /// destroyed. `None` for an anonymous reporter.
    pub(crate) async fn open_contact(
        &self,
        store: &dyn EventStore,
        case: &Case,
    ) -> Result<Option<Opened>, EngineError> {
        match &case.reporter {
            Reporter::Anonymous => Ok(None),
            // An old (v1) store's clear contact.
            Reporter::Named(contact) => Ok(Some(Opened::Contact(contact.clone()))),
            Reporter::Sealed(sealed) => {
                let keys = self.keys(store).await?;
                match keys.data_key(&sealed.key_id).await? {
                    KeyState::Live(key) => Ok(Some(Opened::Contact(open(
                        sealed,
                        &key,
                        case.id,
                        case.reporter_handle,
                    )?))),
                    KeyState::Destroyed { at } => Ok(Some(Opened::Destroyed(at))),
                }
            }
        }
    }

    /// Destroys a reporter's keys: the given ids and any the key store assigned to them.
    pub(crate) async fn destroy(
        &self,
        store: &dyn EventStore,
        reporter: ReporterHandle,
        key_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let keys = self.keys(store).await?;
        keys.destroy(reporter, key_ids, at).await?;
        Ok(())
    }

    /// Rewraps every data key under a new master key.
    pub(crate) async fn rotate(
        &self,
        store: &dyn EventStore,
        new_master: &MasterKey,
    ) -> Result<usize, EngineError> {
        let keys = self.keys(store).await?;
        Ok(keys.rotate(new_master).await?)
    }

    /// Writes key assignments kept in memory.
    pub(crate) async fn flush(&self) -> Result<(), EngineError> {
        if let Some(keys) = self.keys.get() {
            keys.flush().await?;
        }
        Ok(())
    }
}

/// Refuses a key store bound to another log (its recorded first event is not this log's).
async fn check_binding(
    store: &dyn EventStore,
    keys: &dyn KeyStore,
    place: &std::path::Path,
) -> Result<(), EngineError> {
    if let Some(bound_to) = keys.binding().await? {
        let first = store.read_all(1, 1).await?;
        if first.first().map(|r| r.event_id.to_string()) != Some(bound_to) {
            return Err(KeyError::ForeignKeyStore {
                path: place.to_owned(),
            }
            .into());
        }
    }
    Ok(())
}

/// Whether any `CaseReported` in the log holds a sealed contact (a byte search of the
/// payloads: no decoding). Only asked when the key store file is missing.
async fn log_has_sealed_contacts(store: &dyn EventStore) -> Result<bool, EngineError> {
    const SEALED: &[u8] = br#""type":"sealed""#;
    let mut from = 1u64;
    loop {
        let batch = store.read_all(from, READ_BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(false);
        };
        from = last.position + 1;
        if batch.iter().any(|r| {
            r.event_type == "CaseReported" && r.payload.windows(SEALED.len()).any(|w| w == SEALED)
        }) {
            return Ok(true);
        }
    }
}
