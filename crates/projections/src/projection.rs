//! The [`Projection`] trait, what a projection is handed for each event ([`Applied`]), and
//! the shared handle through which callers query a read model while a runner updates it.

use std::ops::Deref;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use caseflow_domain::{CaseEvent, CaseId, CaseState, Organisation, Stage};
use caseflow_store::RecordedEvent;

use crate::error::{ApplyFailure, ProjectionError};
use crate::persist::{CommitBatch, DocumentPersistence, StoredRows, TableSpec};
use caseflow_domain::Obligation;

/// One event, decoded and folded, as every projection of a runner sees it.
///
/// The runner decodes each record once, folds it into the case's [`CaseState`] once and
/// evaluates the who-acts table once, before and after; projections only read.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// The stored envelope (position, version, recorded time, metadata with the actor).
    pub record: &'a RecordedEvent,
    /// The decoded domain event.
    pub event: &'a CaseEvent,
    /// The case the event belongs to.
    pub case_id: CaseId,
    /// The case's stage before the event.
    pub stage_before: Stage,
    /// The case's state after the event.
    pub state: &'a CaseState,
    /// What the who-acts table asked of whom before the event.
    pub obligations_before: &'a [Obligation],
    /// What the who-acts table asks of whom after the event.
    pub obligations: &'a [Obligation],
    /// The district's organisation.
    pub org: &'a Organisation,
}

/// A read model maintained from the case event log, in global order.
///
/// `apply` must be atomic: it either applies the whole event or, when it returns an error,
/// leaves the model exactly as it was (validate first, then mutate). The runner relies on
/// this to stop a projection at the position *before* an event it cannot apply.
///
/// How a model is stored is described here too, but not where: a model names its tables
/// ([`Self::tables`]), reads itself back from their rows ([`Self::load`]) and hands over
/// the rows it changed ([`Self::take_changes`]); a [`crate::ReadModelStore`] (SQLite,
/// PostgreSQL, ...) keeps them. The runner commits a batch's row changes together with the
/// checkpoints, atomically, which is what makes a persistent read model exactly-once across
/// crashes. A model with no tables (the default) is kept in memory only, even on a runner
/// with a store.
pub trait Projection: Send + Sync + 'static {
    /// Stable name; the checkpoint key and the prefix of the projection's tables.
    fn name(&self) -> &'static str;

    /// Applies one event.
    fn apply(&mut self, applied: &Applied<'_>) -> Result<(), ApplyFailure>;

    /// Forgets everything (the first half of a rebuild from position zero).
    fn reset(&mut self);

    /// The tables the model persists in (none: memory only).
    fn tables(&self) -> &'static [TableSpec] {
        &[]
    }

    /// The model's persistence when it keeps one JSON document per case (a
    /// [`crate::CaseDocuments`] model returns `Some(self)`); the methods below then load,
    /// track and take its rows. `None` (the default): the model persists nothing itself.
    fn documents(&mut self) -> Option<&mut dyn DocumentPersistence> {
        None
    }

    /// Replaces the in-memory model by the one stored in `rows` (the rows of every table
    /// of [`Self::tables`]). A row that does not decode is a `CorruptReadModel` error.
    fn load(&mut self, rows: StoredRows) -> Result<(), ProjectionError> {
        match self.documents() {
            Some(documents) => documents.load_documents(rows),
            None => Ok(()),
        }
    }

    /// Starts or stops recording which rows changed. Purely in-memory projections leave
    /// it off and pay nothing for it.
    fn track_changes(&mut self, on: bool) {
        if let Some(documents) = self.documents() {
            documents.track_document_changes(on);
        }
    }

    /// Adds the row changes since the last call to `batch` and forgets them. If the batch
    /// is then not committed, the runner reloads the model from the store.
    fn take_changes(&mut self, batch: &mut CommitBatch) -> Result<(), ProjectionError> {
        match self.documents() {
            Some(documents) => documents.take_document_changes(batch),
            None => Ok(()),
        }
    }

    /// Forgets the change set without writing (the model is about to be reloaded or reset).
    fn discard_changes(&mut self) {
        if let Some(documents) = self.documents() {
            documents.discard_document_changes();
        }
    }
}

/// A read model together with the position it has applied.
#[derive(Debug)]
pub struct Tracked<P: ?Sized> {
    /// Last global position applied (0 = nothing applied).
    pub(crate) checkpoint: u64,
    /// Set when the projection stopped on an error; it applies nothing more until rebuilt.
    pub(crate) stopped: Option<String>,
    /// The read model.
    pub(crate) model: P,
}

/// A shared, queryable handle to a projection that a runner keeps up to date.
///
/// Cloning the handle is cheap. Queries take a read lock for their duration; the runner
/// takes the write lock once per batch of events.
#[derive(Debug)]
pub struct ProjectionHandle<P: ?Sized> {
    pub(crate) inner: Arc<RwLock<Tracked<P>>>,
    pub(crate) name: &'static str,
}

impl<P: ?Sized> Clone for ProjectionHandle<P> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            name: self.name,
        }
    }
}

impl<P: Projection> ProjectionHandle<P> {
    /// Wraps a fresh projection (checkpoint 0).
    pub fn new(model: P) -> Self {
        let name = model.name();
        Self {
            inner: Arc::new(RwLock::new(Tracked {
                checkpoint: 0,
                stopped: None,
                model,
            })),
            name,
        }
    }

    pub(crate) fn erase(&self) -> ProjectionHandle<dyn Projection> {
        ProjectionHandle {
            inner: self.inner.clone() as Arc<RwLock<Tracked<dyn Projection>>>,
            name: self.name,
        }
    }
}

impl<P: ?Sized> ProjectionHandle<P> {
    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Read access to the model for queries.
    pub fn read(&self) -> Result<ReadGuard<'_, P>, ProjectionError> {
        self.inner
            .read()
            .map(|guard| ReadGuard { guard })
            .map_err(|_| ProjectionError::Poisoned(self.name.to_owned()))
    }

    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, Tracked<P>>, ProjectionError> {
        self.inner
            .write()
            .map_err(|_| ProjectionError::Poisoned(self.name.to_owned()))
    }

    /// Last global position applied to the model (0 = nothing).
    pub fn checkpoint(&self) -> Result<u64, ProjectionError> {
        Ok(self.read()?.checkpoint())
    }
}

/// A read lock on a projection; derefs to the model.
#[derive(Debug)]
pub struct ReadGuard<'a, P: ?Sized> {
    guard: RwLockReadGuard<'a, Tracked<P>>,
}

impl<P: ?Sized> ReadGuard<'_, P> {
    /// Last global position applied to the model this guard shows.
    pub fn checkpoint(&self) -> u64 {
        self.guard.checkpoint
    }

    /// Why the projection stopped, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.guard.stopped.as_deref()
    }
}

impl<P: ?Sized> Deref for ReadGuard<'_, P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.guard.model
    }
}
