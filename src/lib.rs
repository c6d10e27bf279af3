//! Caseflow: an event-sourced case-workflow engine.
//!
//! This crate is the facade services embed: it ties the pure domain (`caseflow-domain`), the
//! event store (`caseflow-store`) and the read models (`caseflow-projections`) together, and
//! injects time ([`Clock`]) and identity ([`IdGenerator`]). See `docs/engine.md`.
//!
//! - [`Engine::open`] opens a store (SQLite file, memory, or a KurrentDB URL with the
//!   `kurrentdb` feature) and its read models.
//! - [`Engine::execute`] runs one [`CommandEnvelope`]: decide, append with the expected
//!   version, retry on conflict, idempotent per command id.
//! - Queries: [`Engine::todo`], [`Engine::stats`], [`Engine::case_state`], [`Engine::timeline`].
//! - The deadline watcher: [`Engine::check_deadlines`], [`Engine::run_deadline_watcher`].
//! - Audit: [`Engine::state_as_of_version`], [`Engine::state_as_of_time`], [`Engine::verify`],
//!   [`Engine::audit_case`], [`Engine::audit_range`].
//! - Export: [`Engine::export_xes`], [`Engine::export_ocel2`].
//! - Reporter protection ([`contacts`]): [`Engine::reveal_reporter_contact`],
//!   [`Engine::erase_reporter_contact`], [`Engine::rotate_master_key`].

pub mod anchor;
pub mod audit;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod deadlines;
pub mod engine;
pub mod error;
pub mod export;
pub mod ids;
pub mod progress;
pub mod protection;
pub mod queries;
pub mod retry;
pub mod todo;

pub use anchor::{AnchorCheck, FileHeadSink, HeadSink};
pub use caseflow_domain as domain;
pub use caseflow_projections as projections;
pub use caseflow_store as store;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    District, EngineConfig, ReadModelConfig, SAMPLE_DISTRICT_TOML, StoreConfig, read_model_path,
};
pub use contacts::{KeyError, KeyStoreConfig, MasterKey};
pub use deadlines::{Urged, WATCHER_ROLE, WatchReport, urge_command_id};
pub use engine::{CommandEnvelope, Engine, ExecuteOutcome};
pub use error::EngineError;
pub use ids::{IdGenerator, RandomIds, Secret, SeededIds, derived_id};
pub use progress::{Progress, Silent};
pub use protection::ReporterCase;
pub use queries::{CaseHolders, TodoPage};
pub use retry::RetryPolicy;
pub use todo::{ListOwner, TodoList};
