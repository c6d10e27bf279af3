//! The engine: executes commands against case streams and keeps the read models current.

use std::sync::Arc;

use caseflow_domain::{
    Actor, CaseEvent, CaseId, CaseNumber, CaseState, Command, Context, DomainError, Level, UnitId,
    decide, evolve,
};
use caseflow_projections::{
    CaseTimeline, ProjectionHandle, ProjectionRunner, ReadModelStore, SqliteReadModelStore,
    StatsProjection, StatsReport, TimelineProjection, TodoItem, TodoProjection, case_stream_id,
};
use caseflow_store::{
    AppendOutcome, AppendRequest, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent,
    Payload, RecordedEvent, SqliteStore, StoreError,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tracing::{Instrument, debug, info_span, warn};
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::{District, EngineConfig, ReadModelConfig, StoreConfig, read_model_path};
use crate::contacts::{KeyStoreConfig, KeyTarget, Vault, key_store_path};
use crate::deadlines::DeadlineProjection;
use crate::error::EngineError;
use crate::ids::IdGenerator;
use crate::retry::RetryPolicy;
use caseflow_projections::CaseNumbers;

/// Records read per call when walking a whole stream or the global log.
pub(crate) const READ_BATCH: usize = 4096;

/// One command to execute, with who issued it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Identifies the command: executing the same id again returns the first result and
    /// writes nothing. Clients make it once per intent and resend it on retry.
    pub command_id: Uuid,
    /// The acting unit and role.
    pub actor: Actor,
    /// When the command was issued (the domain computes due times from it).
    pub issued_at: DateTime<Utc>,
    /// Optional correlation id (defaults to the command id).
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
    /// Optional causation id (e.g. the event that prompted the command).
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    /// The command.
    pub command: Command,
}

impl CommandEnvelope {
    /// An envelope with no correlation or causation id.
    pub fn new(
        command_id: Uuid,
        actor: Actor,
        issued_at: DateTime<Utc>,
        command: impl Into<Command>,
    ) -> Self {
        CommandEnvelope {
            command_id,
            actor,
            issued_at,
            correlation_id: None,
            causation_id: None,
            command: command.into(),
        }
    }
}

/// The result of executing a command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecuteOutcome {
    /// The command id.
    pub command_id: Uuid,
    /// The case.
    pub case_id: CaseId,
    /// The events the command produced, in stream order.
    pub events: Vec<CaseEvent>,
    /// Stream version of the first event (0 when no event was produced).
    pub first_version: u64,
    /// Stream version of the last event: the case's version after the command.
    pub last_version: u64,
    /// Global position of the first event (0 when no event was produced).
    pub first_position: u64,
    /// Global position of the last event.
    pub last_position: u64,
    /// True when this is the stored result of an earlier execution of the same command id
    /// (nothing was written this time).
    pub replayed: bool,
}

impl ExecuteOutcome {
    /// The same outcome without the `replayed` flag, for comparing a replay with the first run.
    pub fn without_replay_flag(&self) -> ExecuteOutcome {
        ExecuteOutcome {
            replayed: false,
            ..self.clone()
        }
    }
}

/// The read models the engine keeps.
pub(crate) struct ReadModels {
    pub(crate) runner: ProjectionRunner,
    pub(crate) todo: ProjectionHandle<TodoProjection>,
    pub(crate) stats: ProjectionHandle<StatsProjection>,
    pub(crate) timeline: ProjectionHandle<TimelineProjection>,
    pub(crate) deadlines: ProjectionHandle<DeadlineProjection>,
    pub(crate) numbers: ProjectionHandle<CaseNumbers>,
}

impl ReadModels {
    pub(crate) async fn new(
        store: Arc<dyn EventStore>,
        district: &District,
        db: Option<Box<dyn ReadModelStore>>,
    ) -> Result<Self, EngineError> {
        let mut runner = match db {
            Some(db) => {
                ProjectionRunner::with_read_model_store(store, Arc::clone(&district.org), db)
            }
            None => ProjectionRunner::in_memory(store, Arc::clone(&district.org)),
        };
        let todo = runner.register(TodoProjection::new()).await?;
        let stats = runner.register(StatsProjection::new()).await?;
        let timeline = runner.register(TimelineProjection::new()).await?;
        let deadlines = runner.register(DeadlineProjection::new()).await?;
        let numbers = runner
            .register(CaseNumbers::new(district.calendar.clone()))
            .await?;
        Ok(ReadModels {
            runner,
            todo,
            stats,
            timeline,
            deadlines,
            numbers,
        })
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) district: District,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) retry: RetryPolicy,
    pub(crate) read: Mutex<ReadModels>,
    pub(crate) persistent_read_models: bool,
    /// Folded states of recently written open cases (see [`StateCache`]).
    pub(crate) states: StateCache,
    /// Reporters' data keys: sealing, reveals and erasure (see [`crate::contacts`]).
    pub(crate) vault: Vault,
    /// Held for the engine's lifetime: the exclusive lock on the read models (see
    /// `own_read_models`). A std mutex only makes the connection `Sync`.
    _read_model_lock: std::sync::Mutex<Option<ReadModelOwnership>>,
}

/// Most case states the engine keeps folded between commands.
const STATE_CACHE_ENTRIES_MAX: usize = 200_000;

/// Folded case states keyed by case, each with the stream version it reflects.
///
/// Re-reading and decoding a whole stream for every command dominated the execute path,
/// so the engine keeps the state it folded after its own last append. The store stays the
/// source of truth: an entry is only a guess. A stale guess (another engine appended to the
/// stream) either fails the append's expected-version check, which drops the entry and
/// reloads, or makes `decide` refuse or produce nothing, which the engine re-checks against a
/// fresh load before answering. Closed cases are not kept, and the map is capped, so memory
/// stays modest.
#[derive(Default)]
pub(crate) struct StateCache {
    entries: std::sync::Mutex<std::collections::HashMap<CaseId, (CaseState, u64)>>,
}

impl StateCache {
    /// Takes a case's entry out of the cache (a concurrent command on the same case then
    /// loads from the store, which is always correct).
    fn take(&self, case_id: CaseId) -> Option<(CaseState, u64)> {
        self.entries.lock().ok()?.remove(&case_id)
    }

    /// Keeps a case's state at `version`, unless the case is closed.
    fn put(&self, case_id: CaseId, state: CaseState, version: u64) {
        if !state.is_open() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= STATE_CACHE_ENTRIES_MAX && !entries.contains_key(&case_id) {
            // Any entry will do: a missing entry only costs one reload.
            if let Some(evicted) = entries.keys().next().copied() {
                entries.remove(&evicted);
            }
        }
        entries.insert(case_id, (state, version));
    }
}

/// The Caseflow engine. Cheap to clone; clones share the store and the read models.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// The lock file that says which process maintains a store's persistent read models
/// (`cases.db` -> `cases.read-owner.db`).
pub fn read_model_lock_path(store_path: &std::path::Path) -> std::path::PathBuf {
    owner_lock_path(&read_model_path(store_path))
}

/// The lock file of a read-model file (`cases.read.db` -> `cases.read-owner.db`).
fn owner_lock_path(read_models: &std::path::Path) -> std::path::PathBuf {
    let stem = read_models
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "caseflow.read".to_owned());
    read_models.with_file_name(format!("{stem}-owner.db"))
}

/// Tries to become the one process that maintains a persistent read-model file: an
/// exclusive SQLite lock on a small lock file, held for the engine's lifetime. Another
/// engine over the same file (a CLI query next to a running service) does not get it and
/// keeps its read models in memory instead, so two processes never write the same
/// read-model rows.
fn own_read_models(read_models: &std::path::Path) -> Option<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(owner_lock_path(read_models)).ok()?;
    conn.busy_timeout(std::time::Duration::ZERO).ok()?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE").ok()?;
    // In exclusive locking mode the first write takes the lock and keeps it until close.
    conn.execute_batch(
        "BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS read_model_owner (pid INTEGER); \
         DELETE FROM read_model_owner; \
         INSERT INTO read_model_owner (pid) VALUES (0); COMMIT;",
    )
    .ok()?;
    Some(conn)
}

/// What [`open_store`] opened.
struct Opened {
    store: Arc<dyn EventStore>,
    db: Option<Box<dyn ReadModelStore>>,
    lock: Option<ReadModelOwnership>,
    /// The key store the backend offers by default (PostgreSQL: tables next to the log).
    keys: Option<KeyTarget>,
}

/// What keeps this engine the one maintainer of its persistent read models. Held, never
/// read: dropping it (with the engine) lets another engine take over.
pub(crate) enum ReadModelOwnership {
    /// The exclusive lock on a SQLite read-model file's lock file.
    SqliteFile(#[allow(dead_code)] rusqlite::Connection),
    /// The store's leadership of the read-model schema (an advisory lock in PostgreSQL).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Lease(#[allow(dead_code)] caseflow_store::Leadership),
}

/// Opens the store a configuration names.
async fn open_store(config: &StoreConfig) -> Result<Arc<dyn EventStore>, EngineError> {
    match config {
        StoreConfig::Sqlite { path, options } => {
            Ok(Arc::new(SqliteStore::open(path, options.clone())?))
        }
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::Shared(store) => Ok(Arc::clone(store)),
        StoreConfig::Url(url) if postgres::is_postgres_url(url) => postgres::open_log(url).await,
        StoreConfig::Url(url) => open_url(url).await,
    }
}

/// Opens the store a configuration names for reading only: a SQLite file through
/// [`SqliteStore::open_read_only`], which never creates, migrates or writes it (a missing,
/// empty or foreign file is its clear error); any other store as [`Engine::open`] would
/// (an engine over it then only reads). `verify` and the query verbs open stores this way.
pub async fn open_store_for_reading(
    config: &StoreConfig,
) -> Result<Arc<dyn EventStore>, EngineError> {
    match config {
        StoreConfig::Sqlite { path, .. } => Ok(Arc::new(SqliteStore::open_read_only(path)?)),
        other => open_store(other).await,
    }
}

/// Opens the store and the read-model store that goes with it: the configured SQLite file
/// (the sidecar by default for a SQLite store) or PostgreSQL schema, unless another engine
/// maintains it, in which case the read models are kept in memory.
async fn open_stores(config: &EngineConfig) -> Result<Opened, EngineError> {
    let store = match &config.store {
        StoreConfig::Url(url) if postgres::is_postgres_url(url) => {
            let (store, read_models, keys) = postgres::open(url, &config.read_models).await?;
            if let Some((db, lock)) = read_models {
                return Ok(Opened {
                    store,
                    db,
                    lock,
                    keys,
                });
            }
            return read_models_for(config, store, keys);
        }
        other => open_store(other).await?,
    };
    read_models_for(config, store, None)
}

/// The read models of a store whose backend does not keep them itself: the configured
/// SQLite file (the sidecar by default for a SQLite store), else in memory.
fn read_models_for(
    config: &EngineConfig,
    store: Arc<dyn EventStore>,
    keys: Option<KeyTarget>,
) -> Result<Opened, EngineError> {
    let file = match (&config.read_models, &config.store) {
        (ReadModelConfig::Default, StoreConfig::Sqlite { path, .. }) => Some(read_model_path(path)),
        (ReadModelConfig::SqliteFile(path), _) => Some(path.clone()),
        (ReadModelConfig::Postgres { .. }, _) => {
            return Err(EngineError::ReadModelsNeedPostgresStore);
        }
        (ReadModelConfig::Default | ReadModelConfig::InMemory, _) => None,
    };
    let Some(file) = file else {
        return Ok(Opened {
            store,
            db: None,
            lock: None,
            keys,
        });
    };
    let lock = own_read_models(&file);
    let db: Option<Box<dyn ReadModelStore>> = match &lock {
        Some(_) => Some(Box::new(SqliteReadModelStore::open(
            &file,
            caseflow_projections::Durability::Normal,
        )?)),
        None => {
            debug!("another engine maintains the persistent read models; keeping them in memory");
            None
        }
    };
    Ok(Opened {
        store,
        db,
        lock: lock.map(ReadModelOwnership::SqliteFile),
        keys,
    })
}

/// The PostgreSQL store and its read models.
#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;

    use caseflow_projections::{PostgresReadModelStore, ReadModelStore};
    use caseflow_store::EventStore;
    use caseflow_store::postgres::PostgresStore;
    use tracing::debug;

    use super::ReadModelOwnership;
    use crate::config::ReadModelConfig;
    use crate::contacts::KeyTarget;
    use crate::error::EngineError;

    /// The instance name when none is configured.
    const DEFAULT_INSTANCE: &str = "main";

    pub(super) use caseflow_store::postgres::is_postgres_url;

    /// The log alone (no read models, no key store): what `verify` and the other
    /// read-only verbs open.
    pub(super) async fn open_log(url: &str) -> Result<Arc<dyn EventStore>, EngineError> {
        Ok(Arc::new(PostgresStore::connect_str(url).await?))
    }

    /// The read models of an engine over PostgreSQL, when they live in PostgreSQL: the
    /// read-model store (none when another engine maintains this instance's) and the lease.
    type PgReadModels = Option<(Option<Box<dyn ReadModelStore>>, Option<ReadModelOwnership>)>;

    /// Opens the store and the key store next to its log; with [`ReadModelConfig::Default`]
    /// or [`ReadModelConfig::Postgres`] also its read models in PostgreSQL (otherwise the
    /// caller opens them).
    pub(super) async fn open(
        url: &str,
        read_models: &ReadModelConfig,
    ) -> Result<(Arc<dyn EventStore>, PgReadModels, Option<KeyTarget>), EngineError> {
        let store = PostgresStore::connect_str(url).await?;
        let keys = Some(KeyTarget::Postgres(store.clone()));
        let read_models = open_read_models(&store, read_models).await?;
        Ok((Arc::new(store), read_models, keys))
    }

    async fn open_read_models(
        store: &PostgresStore,
        read_models: &ReadModelConfig,
    ) -> Result<PgReadModels, EngineError> {
        let instance = match read_models {
            ReadModelConfig::Default => DEFAULT_INSTANCE,
            ReadModelConfig::Postgres { instance } => instance.as_str(),
            ReadModelConfig::InMemory | ReadModelConfig::SqliteFile(_) => return Ok(None),
        };
        let schema = read_model_schema(&store.options().schema, instance)?;
        let Some(lease) = store.try_lead(&format!("read-models:{schema}")).await? else {
            debug!(%schema, "another engine maintains these read models; keeping them in memory");
            return Ok(Some((None, None)));
        };
        let pool = PostgresStore::pool_for_schema(store.options(), &schema, 4)?;
        let db: Box<dyn ReadModelStore> =
            Box::new(PostgresReadModelStore::open(pool, &schema).await?);
        Ok(Some((Some(db), Some(ReadModelOwnership::Lease(lease)))))
    }

    /// `<store schema>_rm_<instance>`, checked.
    pub(super) fn read_model_schema(
        store_schema: &str,
        instance: &str,
    ) -> Result<String, EngineError> {
        let ok = !instance.is_empty()
            && instance.len() <= 16
            && instance
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(EngineError::BadInstanceName {
                instance: instance.to_owned(),
            });
        }
        Ok(format!("{store_schema}_rm_{instance}"))
    }
}

/// Without the feature, PostgreSQL URLs are refused by name.
#[cfg(not(feature = "postgres"))]
mod postgres {
    use std::sync::Arc;

    use caseflow_projections::ReadModelStore;
    use caseflow_store::EventStore;

    use super::ReadModelOwnership;
    type PgReadModels = Option<(Option<Box<dyn ReadModelStore>>, Option<ReadModelOwnership>)>;
    use crate::config::ReadModelConfig;
    use crate::contacts::KeyTarget;
    use crate::error::EngineError;

    pub(super) fn is_postgres_url(url: &str) -> bool {
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    pub(super) async fn open(
        _url: &str,
        _read_models: &ReadModelConfig,
    ) -> Result<(Arc<dyn EventStore>, PgReadModels, Option<KeyTarget>), EngineError> {
        Err(EngineError::BackendNotCompiled {
            feature: "postgres",
        })
    }

    pub(super) async fn open_log(_url: &str) -> Result<Arc<dyn EventStore>, EngineError> {
        Err(EngineError::BackendNotCompiled {
            feature: "postgres",
        })
    }
}

#[cfg(feature = "kurrentdb")]
async fn open_url(url: &str) -> Result<Arc<dyn EventStore>, EngineError> {
    let scheme = url.split("://").next().unwrap_or_default();
    match scheme {
        "kurrentdb" | "kurrentdb+discover" | "esdb" | "esdb+discover" => {
            let store = caseflow_store::kurrentdb::KurrentDbStore::connect_str(url).await?;
            Ok(Arc::new(store))
        }
        other => Err(EngineError::UnsupportedStoreUrl {
            scheme: other.to_owned(),
        }),
    }
}

#[cfg(not(feature = "kurrentdb"))]
async fn open_url(url: &str) -> Result<Arc<dyn EventStore>, EngineError> {
    let scheme = url.split("://").next().unwrap_or_default();
    match scheme {
        "kurrentdb" | "kurrentdb+discover" | "esdb" | "esdb+discover" => {
            Err(EngineError::BackendNotCompiled {
                feature: "kurrentdb",
            })
        }
        other => Err(EngineError::UnsupportedStoreUrl {
            scheme: other.to_owned(),
        }),
    }
}

/// Where an engine's reporter keys live: next to a SQLite store, in memory for a memory or
/// shared store, in tables next to the log for a PostgreSQL store (`backend`), and nowhere
/// by default for a KurrentDB URL (it needs an explicit key store).
fn key_target(config: &EngineConfig, backend: Option<KeyTarget>) -> KeyTarget {
    let synchronous = match &config.store {
        StoreConfig::Sqlite { options, .. } => options.synchronous,
        _ => caseflow_store::Synchronous::Full,
    };
    match (&config.key_store, &config.store) {
        (KeyStoreConfig::Shared(keys), _) => KeyTarget::Shared(Arc::clone(keys)),
        (KeyStoreConfig::InMemory, _) => KeyTarget::Memory,
        (KeyStoreConfig::SqliteFile(path), _) => KeyTarget::Sqlite {
            path: path.clone(),
            synchronous,
        },
        (KeyStoreConfig::Default, StoreConfig::Sqlite { path, .. }) => KeyTarget::Sqlite {
            path: key_store_path(path),
            synchronous,
        },
        (KeyStoreConfig::Default, StoreConfig::Memory | StoreConfig::Shared(_)) => {
            KeyTarget::Memory
        }
        (KeyStoreConfig::Default, StoreConfig::Url(_)) => backend.unwrap_or(KeyTarget::None),
    }
}

/// An event's payload for the store, written by serde_json's serializer: valid JSON by
/// construction, so the store does not parse it again (it still parses bytes from outside).
fn serialised_payload(event: &CaseEvent) -> Result<Payload, EngineError> {
    // The domain's events are plain structs with string keys: serialising them does not fail,
    // but if it ever did, the command is refused rather than a wrong payload stored.
    Payload::serialize(&event.payload()).map_err(|e| {
        EngineError::Store(StoreError::InvalidRequest {
            reason: format!("{} cannot be serialised: {e}", event.event_type()),
        })
    })
}

/// Decodes a stored record into a case event through the one decode path
/// ([`caseflow_projections::decode`], which upcasts older schema versions), naming the
/// record when it does not decode.
pub(crate) fn decode(record: &RecordedEvent) -> Result<CaseEvent, EngineError> {
    caseflow_projections::decode(record).map_err(|source| EngineError::Decode {
        stream: record.stream_id.clone(),
        version: record.version,
        source,
    })
}

impl Engine {
    /// Opens the store named in `config`, loads the read models (from their sidecar file
    /// for SQLite) and brings them up to date with the log.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let Opened {
            store,
            db,
            lock,
            keys,
        } = open_stores(&config).await?;
        let persistent = db.is_some();
        let vault = Vault::new(
            key_target(&config, keys),
            config.master_key.clone(),
            Arc::clone(&config.ids),
        );
        let mut read = ReadModels::new(Arc::clone(&store), &config.district, db).await?;
        read.runner.catch_up().await?;
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                district: config.district,
                clock: config.clock,
                ids: config.ids,
                retry: config.retry,
                read: Mutex::new(read),
                persistent_read_models: persistent,
                states: StateCache::default(),
                vault,
                _read_model_lock: std::sync::Mutex::new(lock),
            }),
        })
    }

    /// Whether this engine maintains persistent read models (the SQLite sidecar, or the file
    /// [`ReadModelConfig::SqliteFile`] names); false for in-memory read models and when
    /// another engine maintains the same file.
    pub fn has_persistent_read_models(&self) -> bool {
        self.inner.persistent_read_models
    }

    /// The event store (for tools that read the raw log).
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.inner.store
    }

    /// The district the engine works for.
    pub fn district(&self) -> &District {
        &self.inner.district
    }

    /// The injected clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// A fresh id from the injected generator (e.g. for a new case or command id).
    pub fn new_id(&self) -> Uuid {
        self.inner.ids.next_id(self.inner.clock.now())
    }

    /// Executes one command: loads the case, decides, appends with the expected version.
    /// On a version conflict it reloads and decides again (bounded, jittered retries).
    /// Re-executing a command id that was already executed returns the first result and
    /// writes nothing.
    pub async fn execute(&self, envelope: CommandEnvelope) -> Result<ExecuteOutcome, EngineError> {
        let span = info_span!(
            "execute",
            command = envelope.command.name(),
            case_id = %envelope.command.case_id(),
            command_id = %envelope.command_id,
            actor = %envelope.actor,
        );
        self.execute_inner(envelope).instrument(span).await
    }

    async fn execute_inner(
        &self,
        envelope: CommandEnvelope,
    ) -> Result<ExecuteOutcome, EngineError> {
        let inner = &self.inner;
        let case_id = envelope.command.case_id();
        let stream_id = case_stream_id(case_id);
        // The command-id ledger is not read up front: the store checks it inside the append
        // (a re-sent id returns its first result, an id used on another stream is refused
        // with `CommandIdReused`). Only a command that would write nothing this time (a
        // refusal or an empty decision, which a re-sent command usually meets because its
        // own events moved the case on) asks the ledger, in `unless_replayed`.
        if let Command::MergeCase(merge) = &envelope.command {
            // The domain cannot see other streams; the engine checks the merge target. The
            // check reads the target, and the append below is conditional on the duplicate's
            // own version only: no store offers an append conditional on a second stream on
            // every backend (KurrentDB appends to one stream at a time). So if another
            // command ends the target between this read and the append, the duplicate is
            // still merged into it, and ends (merged is final) pointing at a case that closed
            // moments before. Nothing is lost: both streams keep every event, the audit
            // timeline shows the order by global position, and the target can be reopened
            // (`ReopenCase`), which brings the merged matter back onto the lists. A target
            // declined, merged or transferred in that window is final and cannot be
            // reopened: the duplicate's matter must then be registered anew. The window is
            // one read-to-append round trip; docs/engine.md says the same.
            let target = self.load_state(merge.into).await?.0;
            if !target.is_open() || merge.into == merge.case_id {
                let refusal = EngineError::MergeTargetNotOpen {
                    case_id,
                    into: merge.into,
                };
                return self.unless_replayed(&envelope, &stream_id, refusal).await;
            }
        }
        if matches!(envelope.command, Command::EraseReporterContact(_)) {
            // Record an erasure only when the key can be destroyed right after.
            inner.vault.ready(inner.store.as_ref()).await?;
        }
        let district = &inner.district;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let context = Context::new(
                &envelope.actor,
                envelope.issued_at,
                &district.org,
                &district.calendar,
                &district.policies,
            );
            // A cached state is trusted only for a decision that produces events: the append
            // checks its version. A refusal or an empty decision is answered from the store.
            let cached = inner.states.take(case_id).and_then(|(state, version)| {
                match decide(&state, &envelope.command, &context) {
                    Ok(events) if !events.is_empty() => Some((state, version, events)),
                    _ => None,
                }
            });
            let (mut state, version, mut events) = match cached {
                Some(hit) => hit,
                None => {
                    let (state, version) = self.load_state(case_id).await?;
                    match decide(&state, &envelope.command, &context) {
                        Ok(events) => (state, version, events),
                        Err(source) => {
                            let refusal = EngineError::Rejected {
                                command: envelope.command.name(),
                                case_id,
                                source,
                            };
                            return self.unless_replayed(&envelope, &stream_id, refusal).await;
                        }
                    }
                }
            };
            if events.is_empty() {
                let nothing = ExecuteOutcome {
                    command_id: envelope.command_id,
                    case_id,
                    events,
                    first_version: 0,
                    last_version: version,
                    first_position: 0,
                    last_position: 0,
                    replayed: false,
                };
                return match inner.store.command_outcome(envelope.command_id).await? {
                    Some(outcome) => {
                        self.replayed(envelope.command_id, case_id, &stream_id, outcome)
                            .await
                    }
                    None => Ok(nothing),
                };
            }
            // No clear contact reaches the store: a named reporter's is sealed here.
            inner
                .vault
                .seal_events(inner.store.as_ref(), &mut events)
                .await?;
            let recorded_at = inner.clock.now();
            let metadata = Metadata {
                actor: envelope.actor.to_string(),
                command_id: Some(envelope.command_id),
                correlation_id: Some(envelope.correlation_id.unwrap_or(envelope.command_id)),
                causation_id: envelope.causation_id,
            };
            let new_events: Vec<NewEvent> = events
                .iter()
                .map(|event| -> Result<NewEvent, EngineError> {
                    Ok(NewEvent {
                        event_id: inner.ids.next_id(recorded_at),
                        event_type: event.event_type().to_owned(),
                        schema_version: event.schema_version(),
                        payload: serialised_payload(event)?,
                        metadata: metadata.clone(),
                    })
                })
                .collect::<Result<_, EngineError>>()?;
            let request = AppendRequest {
                stream_id: stream_id.clone(),
                expected: if version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(version)
                },
                events: new_events,
                recorded_at,
                command_id: Some(envelope.command_id),
            };
            let append_span =
                info_span!("append", stream = %stream_id, expected = version, attempt);
            match inner.store.append(request).instrument(append_span).await {
                Ok(outcome) if outcome.deduplicated => {
                    return self
                        .replayed(envelope.command_id, case_id, &stream_id, outcome)
                        .await;
                }
                Ok(outcome) => {
                    if outcome.first_version == version + 1
                        && outcome.last_version == version + events.len() as u64
                    {
                        for event in &events {
                            evolve(&mut state, event);
                        }
                        inner.states.put(case_id, state, outcome.last_version);
                    }
                    inner.vault.bind(inner.store.as_ref()).await?;
                    if let Some(erased) = events.iter().find_map(|e| match e {
                        CaseEvent::ReporterContactErased(erased) => Some(erased),
                        _ => None,
                    }) {
                        self.carry_out_erasure(&envelope, erased).await?;
                    }
                    return Ok(ExecuteOutcome {
                        command_id: envelope.command_id,
                        case_id,
                        events,
                        first_version: outcome.first_version,
                        last_version: outcome.last_version,
                        first_position: outcome.first_position,
                        last_position: outcome.last_position,
                        replayed: false,
                    });
                }
                Err(StoreError::VersionConflict { actual, .. }) => {
                    if !inner.retry.may_retry(attempt) {
                        warn!(attempt, "giving up after repeated version conflicts");
                        return Err(EngineError::Contention {
                            case_id,
                            attempts: attempt,
                        });
                    }
                    let delay = inner.retry.backoff(attempt, inner.ids.as_ref());
                    debug!(attempt, actual, ?delay, "version conflict; deciding again");
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The first result of `envelope`'s command id if it was executed before (a re-sent
    /// command meets the state its own first execution left, which often refuses it);
    /// otherwise `refusal`.
    async fn unless_replayed(
        &self,
        envelope: &CommandEnvelope,
        stream_id: &str,
        refusal: EngineError,
    ) -> Result<ExecuteOutcome, EngineError> {
        match self
            .inner
            .store
            .command_outcome(envelope.command_id)
            .await?
        {
            Some(outcome) => {
                debug!("command id already executed; returning its first result");
                let case_id = envelope.command.case_id();
                self.replayed(envelope.command_id, case_id, stream_id, outcome)
                    .await
            }
            None => Err(refusal),
        }
    }

    /// The stored result of an earlier execution of a command id.
    async fn replayed(
        &self,
        command_id: Uuid,
        case_id: CaseId,
        stream_id: &str,
        outcome: AppendOutcome,
    ) -> Result<ExecuteOutcome, EngineError> {
        let count = (outcome.last_version + 1).saturating_sub(outcome.first_version);
        let records = self
            .inner
            .store
            .read_stream(
                stream_id,
                outcome.first_version,
                usize::try_from(count).unwrap_or(usize::MAX),
            )
            .await?;
        // The ledger is keyed by command id alone: make sure its result belongs to this
        // case, or a command id reused for another case would "replay" unrelated events.
        if records.is_empty()
            || records
                .iter()
                .any(|r| r.metadata.command_id != Some(command_id))
        {
            return Err(EngineError::Store(StoreError::CommandIdReused {
                command_id,
                original_stream: "another stream".to_owned(),
                stream: stream_id.to_owned(),
            }));
        }
        let events = records.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(ExecuteOutcome {
            command_id,
            case_id,
            events,
            first_version: outcome.first_version,
            last_version: outcome.last_version,
            first_position: outcome.first_position,
            last_position: outcome.last_position,
            replayed: true,
        })
    }

    /// Reads every record of a stream.
    pub(crate) async fn read_stream_all(
        &self,
        stream_id: &str,
    ) -> Result<Vec<RecordedEvent>, EngineError> {
        let mut out = Vec::new();
        loop {
            let batch = self
                .inner
                .store
                .read_stream(stream_id, out.len() as u64 + 1, READ_BATCH)
                .await?;
            let n = batch.len();
            out.extend(batch);
            if n < READ_BATCH {
                return Ok(out);
            }
        }
    }

    /// The current state of a case and its version (a default state and 0 if there is none).
    pub(crate) async fn load_state(
        &self,
        case_id: CaseId,
    ) -> Result<(CaseState, u64), EngineError> {
        let records = self.read_stream_all(&case_stream_id(case_id)).await?;
        let mut state = CaseState::default();
        for record in &records {
            evolve(&mut state, &decode(record)?);
        }
        Ok((state, records.len() as u64))
    }

    /// The current state of a case (replayed from its stream).
    pub async fn case_state(&self, case_id: CaseId) -> Result<CaseState, EngineError> {
        let (state, version) = self.load_state(case_id).await?;
        if version == 0 {
            return Err(EngineError::CaseNotFound(case_id));
        }
        Ok(state)
    }

    /// Brings every read model up to date with the log; returns the records applied.
    /// Queries call it first, so they always see every command executed before them.
    pub async fn refresh(&self) -> Result<u64, EngineError> {
        let mut read = self.inner.read.lock().await;
        Ok(read.runner.catch_up().await?)
    }

    /// The to-do list of one unit at `now`: overdue items first, then by due time.
    pub async fn todo(
        &self,
        unit: &UnitId,
        now: DateTime<Utc>,
    ) -> Result<Vec<TodoItem>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        Ok(todo.for_unit(unit, now))
    }

    /// Every to-do item of every unit of one level at `now`.
    pub async fn todo_for_level(
        &self,
        level: Level,
        now: DateTime<Utc>,
    ) -> Result<Vec<TodoItem>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let todo = read.todo.read()?;
        Ok(todo.for_level(&self.inner.district.org, level, now))
    }

    /// The headline statistics at `now`.
    pub async fn stats(&self, now: DateTime<Utc>) -> Result<StatsReport, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let stats = read.stats.read()?;
        Ok(stats.report(now))
    }

    /// A case's timeline (every event with actor, time and stage, and time per stage).
    pub async fn timeline(
        &self,
        case_id: CaseId,
        now: DateTime<Utc>,
    ) -> Result<CaseTimeline, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let timeline = read.timeline.read()?;
        timeline
            .timeline(&case_id, now)
            .ok_or(EngineError::CaseNotFound(case_id))
    }

    /// A case's human number (`2026-0042`), once the read models have seen its report.
    pub async fn case_number(&self, case_id: CaseId) -> Result<Option<CaseNumber>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        Ok(read.numbers.read()?.number(&case_id))
    }

    /// The human numbers of many cases at once (one catch-up, one lock).
    pub async fn case_numbers(
        &self,
        case_ids: &[CaseId],
    ) -> Result<std::collections::BTreeMap<CaseId, CaseNumber>, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        let numbers = read.numbers.read()?;
        Ok(case_ids
            .iter()
            .filter_map(|id| Some((*id, numbers.number(id)?)))
            .collect())
    }

    /// The case with a human number.
    pub async fn case_by_number(&self, number: CaseNumber) -> Result<CaseId, EngineError> {
        self.refresh().await?;
        let read = self.inner.read.lock().await;
        read.numbers
            .read()?
            .case_with(number)
            .ok_or(EngineError::NoCaseNumbered(number))
    }

    /// Drops every read model and rebuilds it from the first event; returns the records read.
    pub async fn rebuild(&self) -> Result<u64, EngineError> {
        self.rebuild_with(&crate::Silent).await
    }

    /// [`Engine::rebuild`], reporting the records applied so far (a watcher task follows the
    /// runner's published progress, so the rebuild itself is not slowed down).
    pub async fn rebuild_with(&self, progress: &dyn crate::Progress) -> Result<u64, EngineError> {
        let head = self.inner.store.head_position().await?;
        progress.total(head);
        let mut read = self.inner.read.lock().await;
        read.runner.reset_all().await?;
        let mut monitor = read.runner.monitor();
        let rebuild = read.runner.catch_up();
        tokio::pin!(rebuild);
        loop {
            tokio::select! {
                result = &mut rebuild => {
                    progress.done(head);
                    return Ok(result?);
                }
                Ok(p) = monitor.next_change() => {
                    let applied = p.projections.iter().map(|s| s.checkpoint).min().unwrap_or(0);
                    progress.done(applied);
                }
            }
        }
    }

    /// Every case id in the store, in order of first appearance in the log.
    pub async fn case_ids(&self) -> Result<Vec<CaseId>, EngineError> {
        let mut seen = std::collections::HashSet::new();
        let mut ids = Vec::new();
        let mut from = 1u64;
        loop {
            let batch = self.inner.store.read_all(from, READ_BATCH).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for record in &batch {
                if let Some(id) = caseflow_projections::case_id_of_stream(&record.stream_id) {
                    if seen.insert(id) {
                        ids.push(id);
                    }
                }
            }
        }
        Ok(ids)
    }
}

/// A helper for callers that do not care about the domain's refusal details.
pub fn rejection(error: &EngineError) -> Option<&DomainError> {
    match error {
        EngineError::Rejected { source, .. } => Some(source),
        _ => None,
    }
}
