//! How an engine is opened: which store, which district, which clock and id source.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use caseflow_domain::{Calendar, DistrictConfig, Organisation, Policies};
use caseflow_store::{EventStore, SqliteOptions};

use crate::clock::{Clock, SystemClock};
use crate::contacts::{KeyStoreConfig, MasterKey};
use crate::error::EngineError;
use crate::ids::{IdGenerator, RandomIds};
use crate::retry::RetryPolicy;

/// The sample district shipped with the engine (`examples/district.toml`): 5 rooms, 5 teams,
/// 10 localities, 103 villages, 3 zones. Embedded so tools work from any directory.
pub const SAMPLE_DISTRICT_TOML: &str = include_str!("../examples/district.toml");

/// A district: organisation, working calendar and policies.
#[derive(Debug, Clone)]
pub struct District {
    /// The organisation (units, zones, departments).
    pub org: Arc<Organisation>,
    /// The working calendar (time limits are in working days).
    pub calendar: Calendar,
    /// Time limits and routing policy.
    pub policies: Policies,
}

impl District {
    /// Parses and validates a district file.
    pub fn from_toml_str(text: &str) -> Result<District, EngineError> {
        let config = DistrictConfig::from_toml_str(text).map_err(EngineError::District)?;
        Ok(District::from(config))
    }

    /// Reads and parses a district file.
    pub fn from_path(path: &Path) -> Result<District, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            what: format!("cannot read the district file {}", path.display()),
            source,
        })?;
        District::from_toml_str(&text)
    }

    /// The sample district (see [`SAMPLE_DISTRICT_TOML`]).
    pub fn sample() -> Result<District, EngineError> {
        District::from_toml_str(SAMPLE_DISTRICT_TOML)
    }
}

impl From<DistrictConfig> for District {
    fn from(config: DistrictConfig) -> Self {
        District {
            org: Arc::new(config.org),
            calendar: config.calendar,
            policies: config.policies,
        }
    }
}

/// Where the events live.
#[derive(Clone)]
pub enum StoreConfig {
    /// An embedded SQLite file (the default for services). Read models are kept in a
    /// sidecar file next to it (see [`read_model_path`]).
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// SQLite options (durability, queue sizes, whether to create the file).
        options: SqliteOptions,
    },
    /// A fresh in-memory store; read models in memory too. For tests and simulations.
    Memory,
    /// An already opened store (e.g. a memory store shared across an engine "restart" in a
    /// test). Read models are kept in memory.
    Shared(Arc<dyn EventStore>),
    /// A store URL: `postgres://` (feature `postgres`; read models in PostgreSQL too, see
    /// [`ReadModelConfig::Postgres`]) or `kurrentdb://` / `esdb://` (feature `kurrentdb`).
    Url(String),
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Sqlite { path, options } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("options", options)
                .finish(),
            StoreConfig::Memory => f.write_str("Memory"),
            StoreConfig::Shared(_) => f.write_str("Shared(..)"),
            // A URL may carry credentials; do not print it.
            StoreConfig::Url(_) => f.write_str("Url(..)"),
        }
    }
}

/// The sidecar file holding the read models of the SQLite store at `store_path`
/// (`cases.db` -> `cases.read.db`). Read models can be deleted at any time: they are
/// rebuilt from the log.
pub fn read_model_path(store_path: &Path) -> PathBuf {
    let stem = store_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "caseflow".to_owned());
    store_path.with_file_name(format!("{stem}.read.db"))
}

/// Where the engine keeps its read models (to-do lists, statistics, timelines, deadline
/// index). Read models are derived data: any of these can be deleted and is rebuilt from
/// the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReadModelConfig {
    /// A SQLite store keeps them in its sidecar file ([`read_model_path`]); a PostgreSQL
    /// store in PostgreSQL as instance `main` ([`ReadModelConfig::Postgres`]); every other
    /// store keeps them in memory and rebuilds them at every start.
    #[default]
    Default,
    /// In PostgreSQL next to a `postgres://` store, in the schema
    /// `<store schema>_rm_<instance>`: each engine instance on a shared database names its
    /// own (`desk-1`, `reports`), resumes from its own checkpoints after a restart and never
    /// writes another instance's rows. If another live engine already maintains that
    /// instance's read models, this engine keeps its own in memory (as with SQLite).
    Postgres {
        /// The instance name: `[a-z0-9_]`, at most 16 characters.
        instance: String,
    },
    /// In memory, rebuilt from the log at every start.
    InMemory,
    /// In this SQLite file, for any store: e.g. an engine over a URL-backed store that
    /// should resume its read models rather than rebuild them at every start. The file must
    /// belong to this store only (its checkpoints are positions of this store's log).
    SqliteFile(PathBuf),
}

/// Everything [`crate::Engine::open`] needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The store.
    pub store: StoreConfig,
    /// Where the read models live.
    pub read_models: ReadModelConfig,
    /// The district.
    pub district: District,
    /// The clock every time in the engine comes from.
    pub clock: Arc<dyn Clock>,
    /// The id and jitter source.
    pub ids: Arc<dyn IdGenerator>,
    /// Retries after version conflicts.
    pub retry: RetryPolicy,
    /// The master key that wraps reporters' data keys. Needed (for a SQLite store) only to
    /// store, reveal or erase a named reporter's contact, or to rotate keys; every other use
    /// of a store works without it. A memory store makes a throwaway one when none is given.
    pub master_key: Option<MasterKey>,
    /// Where reporters' data keys live.
    pub key_store: KeyStoreConfig,
}

impl EngineConfig {
    /// A SQLite-backed engine over `path` (created if missing), with the system clock and
    /// random ids.
    pub fn sqlite(path: impl Into<PathBuf>, district: District) -> Self {
        Self::with_store(
            StoreConfig::Sqlite {
                path: path.into(),
                options: SqliteOptions::default(),
            },
            district,
        )
    }

    /// An in-memory engine, with the system clock and random ids.
    pub fn memory(district: District) -> Self {
        Self::with_store(StoreConfig::Memory, district)
    }

    /// An engine over the given store configuration.
    pub fn with_store(store: StoreConfig, district: District) -> Self {
        EngineConfig {
            store,
            read_models: ReadModelConfig::Default,
            district,
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            retry: RetryPolicy::default(),
            master_key: None,
            key_store: KeyStoreConfig::Default,
        }
    }

    /// Sets the master key (see [`EngineConfig::master_key`]).
    pub fn master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }

    /// Sets the master key if one is given.
    pub fn master_key_opt(mut self, key: Option<MasterKey>) -> Self {
        self.master_key = key;
        self
    }

    /// Replaces where reporters' data keys live.
    pub fn key_store(mut self, key_store: KeyStoreConfig) -> Self {
        self.key_store = key_store;
        self
    }

    /// Replaces where the read models live.
    pub fn read_models(mut self, read_models: ReadModelConfig) -> Self {
        self.read_models = read_models;
        self
    }

    /// Replaces the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the id generator.
    pub fn ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = ids;
        self
    }

    /// Replaces the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}
