//! # caseflow-projections: the read side
//!
//! Turns the case event log into what people work from every day:
//!
//! - [`TodoProjection`]: the to-do lists (待办) of every unit at every level — room, team,
//!   locality, village officer — and the zone and partner-department views, built from the
//!   who-acts table ([`caseflow_domain::obligations`]);
//! - [`StatsProjection`]: the demand list (诉求清单) and the commission's figures;
//! - [`TimelineProjection`]: the audit timeline of each case.
//!
//! A [`ProjectionRunner`] reads the store's global log, decodes each record once, folds it
//! into the case's [`caseflow_domain::CaseState`] once and hands the result to every
//! registered [`Projection`]. It catches up from the projections' checkpoints, then follows
//! live appends through the store's subscription, and reports each projection's lag. With
//! a [`ReadModelStore`] (SQLite: [`SqliteReadModelStore`]) it commits every batch's
//! read-model rows and checkpoints together: exactly once across crashes. How a model folds
//! events ([`Projection`]) and where its rows persist ([`ReadModelStore`]) are separate, so
//! every backend keeps every read model. A projection that meets an event it cannot
//! apply stops with [`ProjectionError::CannotApply`] naming the position and the event; it
//! never skips one.
//!
//! Queries take `now` as an argument; nothing here reads a clock. Reporters appear only as
//! their opaque [`caseflow_domain::ReporterHandle`].

pub mod decode;
pub mod error;
mod fast_hash;
pub mod fold;
pub mod numbers;
pub mod persist;
pub mod projection;
pub mod runner;
pub mod stats;
pub mod timeline;
pub mod todo;

pub use decode::{decode, domain_upcaster_chain};
pub use error::{ApplyFailure, CannotApply, ProjectionError};
pub use fold::{case_id_of_stream, case_stream_id};
pub use numbers::{CASE_NUMBERS, CaseNumbers};
pub use persist::{
    CaseDocuments, CaseJsonTable, Cell, ChangedCases, Column, ColumnType, CommitBatch,
    DocumentPersistence, Durability, ReadModelStore, Row, RowChange, SqliteReadModelStore,
    StorageError, StoredRows, TableSpec,
};
#[cfg(feature = "postgres")]
pub use persist::{POSTGRES_READ_MODEL_FORMAT, PostgresReadModelStore};
pub use projection::{Applied, Projection, ProjectionHandle, ReadGuard};
pub use runner::{
    CrashPoint, DEFAULT_BATCH_SIZE, ProjectionRunner, ProjectionStatus, RunnerMonitor,
    RunnerProgress,
};
pub use stats::{StatsProjection, StatsReport};
pub use timeline::{CaseTimeline, StageSpan, TimelineEntry, TimelineProjection};
pub use todo::{CaseCard, Place, TodoCounts, TodoItem, TodoItemRef, TodoProjection};

/// The three standard projections, registered on one runner.
#[derive(Debug, Clone)]
pub struct StandardProjections {
    /// The to-do lists.
    pub todo: ProjectionHandle<TodoProjection>,
    /// The statistics.
    pub stats: ProjectionHandle<StatsProjection>,
    /// The audit timeline.
    pub timeline: ProjectionHandle<TimelineProjection>,
}

impl StandardProjections {
    /// Registers fresh to-do, statistics and timeline projections on `runner` (loading
    /// their stored state when the runner has a read-model store).
    pub async fn register(runner: &mut ProjectionRunner) -> Result<Self, ProjectionError> {
        Ok(Self {
            todo: runner.register(TodoProjection::new()).await?,
            stats: runner.register(StatsProjection::new()).await?,
            timeline: runner.register(TimelineProjection::new()).await?,
        })
    }
}
