//! The projection runner: catches projections up from their checkpoints, then follows live
//! appends through the store's subscription; several projections side by side, each with
//! its own checkpoint and lag.
//!
//! Exactly once: with a [`ReadModelStore`], after each batch the runner commits every
//! projection's changed rows and its new checkpoint together, atomically. A crash before
//! the commit loses both (the batch is applied again on restart); a crash after it keeps
//! both. Nothing is ever counted twice or lost.

use std::future::Future;
use std::sync::{Arc, RwLockWriteGuard};

use caseflow_domain::CaseEvent;
use caseflow_domain::Organisation;
use caseflow_store::{EventStore, RecordedEvent, StoreError};
use futures::FutureExt;
use tokio::sync::watch;

use crate::error::{ApplyFailure, ProjectionError};
use crate::fold::{CaseFold, cannot_apply, decode_to_apply};
use crate::persist::{CommitBatch, ReadModelStore, StoredRows};

/// Records and their decoded events, read ahead by [`ProjectionRunner::catch_up`].
type DecodedBatch = (Vec<RecordedEvent>, Vec<Result<CaseEvent, ApplyFailure>>);
use crate::projection::{Applied, Projection, ProjectionHandle, Tracked};

/// Applies one folded event to every projection that has not stopped and has not applied
/// it yet; a projection that fails stops. Returns the first failure.
fn apply_to_each(
    guards: &mut [RwLockWriteGuard<'_, Tracked<dyn Projection>>],
    applied: &Applied<'_>,
) -> Option<ProjectionError> {
    let record = applied.record;
    let mut first_error = None;
    for guard in guards.iter_mut() {
        if guard.stopped.is_some() || guard.checkpoint >= record.position {
            continue;
        }
        match guard.model.apply(applied) {
            Ok(()) => guard.checkpoint = record.position,
            Err(failure) => {
                let error = ProjectionError::CannotApply(Box::new(crate::error::CannotApply {
                    projection: guard.model.name().to_owned(),
                    position: record.position,
                    event_id: record.event_id,
                    stream_id: record.stream_id.clone(),
                    version: record.version,
                    event_type: record.event_type.clone(),
                    failure,
                }));
                guard.stopped = Some(error.to_string());
                first_error.get_or_insert(error);
            }
        }
    }
    first_error
}

/// The first stage of catch-up's pipeline: reads the log from `from` in batches until it
/// is exhausted (or the receiver is gone); a read error is sent on and ends the stage.
async fn read_ahead(
    store: Arc<dyn EventStore>,
    mut from: u64,
    batch_size: usize,
    tx: tokio::sync::mpsc::Sender<Result<Vec<RecordedEvent>, StoreError>>,
) {
    loop {
        let records = match store.read_all(from, batch_size).await {
            Ok(records) => records,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        };
        let Some(last) = records.last() else { return };
        from = last.position + 1;
        if tx.send(Ok(records)).await.is_err() {
            return;
        }
    }
}

/// The second stage: decodes each batch the first stage read, in order.
async fn decode_ahead(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<RecordedEvent>, StoreError>>,
    tx: tokio::sync::mpsc::Sender<Result<DecodedBatch, StoreError>>,
) {
    while let Some(batch) = rx.recv().await {
        let decoded = batch.map(|records| {
            let events = records.iter().map(decode_to_apply).collect();
            (records, events)
        });
        if tx.send(decoded).await.is_err() {
            return;
        }
    }
}

/// What applying a batch in memory left to do.
struct InMemory {
    /// The first event some projection could not apply (the batch stopped there).
    first_error: Option<ProjectionError>,
    /// For a persistent runner, the row changes and checkpoints to commit.
    changes: Option<Result<CommitBatch, ProjectionError>>,
}

/// Default number of records read and applied per batch (and per transaction).
pub const DEFAULT_BATCH_SIZE: usize = 4096;

/// Where a simulated crash happens, for the exactly-once tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The batch was applied in memory; nothing was written to the database.
    AfterApply,
    /// The batch's read-model rows were written inside the store's transaction, but the
    /// process died before the transaction (rows and checkpoints) committed.
    BeforeCheckpoint,
}

/// The progress of one projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: &'static str,
    /// Last position applied.
    pub checkpoint: u64,
    /// `head - checkpoint`: the number of committed records not applied yet on backends
    /// with gap-free positions (memory, SQLite); a distance in log positions otherwise.
    pub lag: u64,
    /// Why it stopped, if it did.
    pub stopped: Option<String>,
}

/// The progress of every projection of a runner, published after each batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerProgress {
    /// Last committed position of the store the runner has seen.
    pub head: u64,
    /// One entry per projection, in registration order.
    pub projections: Vec<ProjectionStatus>,
}

/// A cloneable view of a runner's progress, usable while the runner follows in a task.
#[derive(Debug, Clone)]
pub struct RunnerMonitor {
    rx: watch::Receiver<RunnerProgress>,
}

impl RunnerMonitor {
    /// The latest published progress.
    pub fn progress(&self) -> RunnerProgress {
        self.rx.borrow().clone()
    }

    /// Waits for the next published progress (an error when the runner is gone).
    pub async fn next_change(&mut self) -> Result<RunnerProgress, String> {
        self.rx
            .changed()
            .await
            .map_err(|_| "the runner is gone".to_owned())?;
        Ok(self.rx.borrow_and_update().clone())
    }

    /// Waits until every projection has applied `position`, or one has stopped (then
    /// returns its error message), or the runner is gone.
    pub async fn wait_for(&mut self, position: u64) -> Result<RunnerProgress, String> {
        let result = self
            .rx
            .wait_for(|p| {
                p.projections
                    .iter()
                    .all(|s| s.checkpoint >= position || s.stopped.is_some())
            })
            .await;
        match result {
            Ok(progress) => {
                let progress = progress.clone();
                match progress.projections.iter().find_map(|s| s.stopped.clone()) {
                    Some(reason) => Err(reason),
                    None => Ok(progress),
                }
            }
            Err(_) => Err("the runner was dropped".to_owned()),
        }
    }
}

/// Runs projections over one event store.
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    org: Arc<Organisation>,
    fold: CaseFold,
    /// Last position folded (the fold cache is consistent up to here).
    fold_position: u64,
    slots: Vec<ProjectionHandle<dyn Projection>>,
    db: Option<Box<dyn ReadModelStore>>,
    batch_size: usize,
    progress: watch::Sender<RunnerProgress>,
    head: u64,
}

impl std::fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field(
                "projections",
                &self.slots.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("fold_position", &self.fold_position)
            .field("persistent", &self.db.is_some())
            .finish_non_exhaustive()
    }
}

impl ProjectionRunner {
    /// A runner whose read models live in memory only (tests, simulations).
    pub fn in_memory(store: Arc<dyn EventStore>, org: Arc<Organisation>) -> Self {
        Self::build(store, org, None)
    }

    /// A runner that persists read models and checkpoints into `read_models`, exactly once.
    pub fn with_read_model_store(
        store: Arc<dyn EventStore>,
        org: Arc<Organisation>,
        read_models: Box<dyn ReadModelStore>,
    ) -> Self {
        Self::build(store, org, Some(read_models))
    }

    fn build(
        store: Arc<dyn EventStore>,
        org: Arc<Organisation>,
        db: Option<Box<dyn ReadModelStore>>,
    ) -> Self {
        let (progress, _) = watch::channel(RunnerProgress::default());
        Self {
            store,
            org,
            fold: CaseFold::default(),
            fold_position: 0,
            slots: Vec::new(),
            db,
            batch_size: DEFAULT_BATCH_SIZE,
            progress,
            head: 0,
        }
    }

    /// Sets the district's cross-inspection policy (it decides, in the who-acts table,
    /// whether a clue needs a verification team before findings). Call before applying.
    pub fn set_cross_inspection(&mut self, scope: caseflow_domain::CrossInspectionScope) {
        self.fold.scope = scope;
        self.fold.clear();
    }

    /// Sets how many records are applied per batch (and per transaction); at least 1.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// Registers a fresh projection. With a read-model store, its stored rows and
    /// checkpoint are loaded, so it resumes where it committed last.
    pub async fn register<P: Projection>(
        &mut self,
        projection: P,
    ) -> Result<ProjectionHandle<P>, ProjectionError> {
        let handle = ProjectionHandle::new(projection);
        self.attach(&handle).await?;
        Ok(handle)
    }

    /// Attaches an existing handle (e.g. an in-memory projection that outlived a stopped
    /// runner); it continues from its own checkpoint. With a read-model store, the stored
    /// model and checkpoint replace whatever the handle held (for a projection with
    /// tables).
    pub async fn attach<P: Projection>(
        &mut self,
        handle: &ProjectionHandle<P>,
    ) -> Result<(), ProjectionError> {
        if self.slots.iter().any(|s| s.name() == handle.name()) {
            return Err(ProjectionError::DuplicateProjection(
                handle.name().to_owned(),
            ));
        }
        let tables = handle.read()?.tables();
        if let Some(db) = self.db.as_mut().filter(|_| !tables.is_empty()) {
            db.ensure_tables(tables).await?;
            let mut rows = StoredRows::empty();
            for table in tables {
                rows.insert(table, db.rows(table).await?);
            }
            let checkpoint = db.checkpoint(handle.name()).await?;
            let mut guard = handle.write()?;
            guard.model.load(rows)?;
            guard.checkpoint = checkpoint;
            guard.stopped = None;
            guard.model.track_changes(true);
        }
        self.slots.push(handle.erase());
        self.publish();
        Ok(())
    }

    /// Whether a projection's rows and checkpoint go to the read-model store.
    fn persists(&self, model: &dyn Projection) -> bool {
        self.db.is_some() && !model.tables().is_empty()
    }

    /// A view of the runner's progress that stays valid while it follows in a task.
    pub fn monitor(&self) -> RunnerMonitor {
        RunnerMonitor {
            rx: self.progress.subscribe(),
        }
    }

    /// The progress of every projection: checkpoint, lag and whether it stopped.
    pub fn status(&self) -> RunnerProgress {
        self.progress.borrow().clone()
    }

    /// How many case states the shared fold currently caches.
    pub fn cached_case_states(&self) -> usize {
        self.fold.len()
    }

    /// Drops a projection's read model (memory and stored rows) and sets its checkpoint to
    /// zero; the next [`Self::catch_up`] rebuilds it from the first event.
    pub async fn reset(&mut self, name: &str) -> Result<(), ProjectionError> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| ProjectionError::UnknownProjection(name.to_owned()))?
            .clone();
        let tables = slot.read()?.tables();
        if let Some(db) = self.db.as_mut().filter(|_| !tables.is_empty()) {
            db.clear(name, tables).await?;
        }
        let mut guard = slot.write()?;
        guard.model.discard_changes();
        guard.model.reset();
        guard.checkpoint = 0;
        guard.stopped = None;
        drop(guard);
        self.publish();
        Ok(())
    }

    /// Resets every projection (see [`Self::reset`]).
    pub async fn reset_all(&mut self) -> Result<(), ProjectionError> {
        let names: Vec<&'static str> = self.slots.iter().map(|s| s.name()).collect();
        for name in names {
            self.reset(name).await?;
        }
        Ok(())
    }

    /// Applies everything committed so far; returns the number of records read.
    pub async fn catch_up(&mut self) -> Result<u64, ProjectionError> {
        let Some(from) = self.next_position()? else {
            return match self.first_stopped()? {
                Some(name) => Err(ProjectionError::Stopped(name.to_owned())),
                None => Ok(0),
            };
        };
        self.head = self.head.max(self.store.head_position().await?);
        // Read ahead in a pipeline of three stages: one task reads the next batches (the
        // store's read runs on a blocking thread), a second decodes them, and this one folds
        // and applies; on a multi-threaded runtime the three overlap, so a batch's read no
        // longer waits for the previous batch's decoding.
        let (read_tx, read_rx) =
            tokio::sync::mpsc::channel::<Result<Vec<RecordedEvent>, StoreError>>(2);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<DecodedBatch, StoreError>>(2);
        let reader = tokio::spawn(read_ahead(
            Arc::clone(&self.store),
            from,
            self.batch_size,
            read_tx,
        ));
        let decoder = tokio::spawn(decode_ahead(read_rx, tx));
        let mut total = 0u64;
        let outcome = async {
            while let Some(batch) = rx.recv().await {
                let (records, decoded) = batch?;
                total += records.len() as u64;
                self.apply_batch(&records, Some(decoded), None).await?;
            }
            Ok::<(), ProjectionError>(())
        }
        .await;
        reader.abort();
        decoder.abort();
        outcome.map(|()| total)
    }

    /// Reads and applies at most `max_records` records (one batch, one transaction);
    /// returns how many were read (0 when every projection is caught up).
    pub async fn step(&mut self, max_records: usize) -> Result<usize, ProjectionError> {
        self.step_inner(max_records, None).await
    }

    /// Like [`Self::step`], but simulates a crash at `crash`: the batch is applied in
    /// memory and never committed. The runner must be dropped afterwards (as the process
    /// would be); a new runner over the same database resumes from the last commit.
    #[doc(hidden)]
    pub async fn step_then_crash(
        &mut self,
        max_records: usize,
        crash: CrashPoint,
    ) -> Result<usize, ProjectionError> {
        self.step_inner(max_records, Some(crash)).await
    }

    async fn step_inner(
        &mut self,
        max_records: usize,
        crash: Option<CrashPoint>,
    ) -> Result<usize, ProjectionError> {
        let Some(from) = self.next_position()? else {
            return match self.first_stopped()? {
                Some(name) => Err(ProjectionError::Stopped(name.to_owned())),
                None => Ok(0),
            };
        };
        self.head = self.head.max(self.store.head_position().await?);
        let records = self.store.read_all(from, max_records.max(1)).await?;
        if records.is_empty() {
            self.publish();
            return Ok(0);
        }
        let n = records.len();
        self.apply_batch(&records, None, crash).await?;
        Ok(n)
    }

    /// Catches up, then follows live appends until `stop` completes (or the store closes).
    pub async fn follow(&mut self, stop: impl Future<Output = ()>) -> Result<(), ProjectionError> {
        tokio::pin!(stop);
        loop {
            if (&mut stop).now_or_never().is_some() {
                return Ok(());
            }
            if self.step(self.batch_size).await? == 0 {
                break;
            }
        }
        let Some(from) = self.next_position()? else {
            return match self.first_stopped()? {
                Some(name) => Err(ProjectionError::Stopped(name.to_owned())),
                None => {
                    // No projection registered: nothing to do until asked to stop.
                    stop.await;
                    Ok(())
                }
            };
        };
        let mut subscription = self.store.subscribe(from).await?;
        loop {
            let first = tokio::select! {
                () = &mut stop => return Ok(()),
                item = subscription.next() => item,
            };
            let Some(first) = first else { return Ok(()) };
            let mut batch = vec![first?];
            // Drain whatever is already available, so a burst commits in one transaction.
            while batch.len() < self.batch_size {
                match subscription.next().now_or_never() {
                    Some(Some(item)) => batch.push(item?),
                    Some(None) | None => break,
                }
            }
            if let Some(last) = batch.last() {
                self.head = self.head.max(last.position);
            }
            self.apply_batch(&batch, None, None).await?;
        }
    }

    /// The name of the first projection that stopped, if any.
    fn first_stopped(&self) -> Result<Option<&'static str>, ProjectionError> {
        for slot in &self.slots {
            if slot.read()?.stopped().is_some() {
                return Ok(Some(slot.name()));
            }
        }
        Ok(None)
    }

    /// The first position some running projection still needs, or `None` when every
    /// projection has stopped (or none is registered).
    fn next_position(&self) -> Result<Option<u64>, ProjectionError> {
        let mut min: Option<u64> = None;
        for slot in &self.slots {
            let guard = slot.read()?;
            if guard.stopped().is_none() {
                let next = guard.checkpoint() + 1;
                min = Some(min.map_or(next, |m: u64| m.min(next)));
            }
        }
        Ok(min)
    }

    async fn apply_batch(
        &mut self,
        records: &[RecordedEvent],
        decoded: Option<Vec<Result<CaseEvent, ApplyFailure>>>,
        crash: Option<CrashPoint>,
    ) -> Result<(), ProjectionError> {
        let first = records[0].position;
        if first <= self.fold_position {
            // Reading again from an earlier position (a rebuild, a lagging projection):
            // the cached states are ahead of the records, so start the cache afresh.
            self.fold.clear();
        }
        self.fold
            .prefetch(self.store.as_ref(), &self.org, records)
            .await?;
        let InMemory {
            first_error,
            changes,
        } = self.apply_in_memory(records, decoded, crash)?;
        if let Some(changes) = changes {
            let outcome = match (changes, self.db.as_mut()) {
                (Ok(batch), Some(db)) if crash == Some(CrashPoint::BeforeCheckpoint) => {
                    db.write_then_roll_back(&batch).await
                }
                (Ok(batch), Some(db)) => db.commit(&batch).await,
                (Ok(_), None) => Ok(()),
                (Err(error), _) => Err(error),
            };
            if let Err(error) = outcome {
                // Memory is ahead of the store now; go back to what was committed so the
                // two agree, and let the caller retry.
                self.reload().await?;
                self.fold.clear();
                self.fold_position = 0;
                self.publish();
                return Err(error);
            }
        }
        self.publish();
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Folds and applies a batch under the projections' write locks; returns the first
    /// error met and, for a persistent runner, the batch of row changes to commit (the
    /// locks are released before the store is awaited).
    fn apply_in_memory(
        &mut self,
        records: &[RecordedEvent],
        decoded: Option<Vec<Result<CaseEvent, ApplyFailure>>>,
        crash: Option<CrashPoint>,
    ) -> Result<InMemory, ProjectionError> {
        let first = records[0].position;
        let slots = self.slots.clone();
        let mut guards = Vec::with_capacity(slots.len());
        for slot in &slots {
            guards.push(slot.write()?);
        }
        let mut first_error: Option<ProjectionError> = None;
        // Cases whose state may be evicted once the batch is through (not before: a case
        // closed and reopened within one batch must keep its state in between).
        let mut touched = Vec::new();
        // Positions are strictly increasing in every backend (gap-free in SQLite and
        // memory, opaque offsets in KurrentDB); anything else means the feed is broken.
        let mut previous_position = first.saturating_sub(1);
        let mut decoded = decoded.map(Vec::into_iter);
        for record in records {
            if record.position <= previous_position {
                first_error = Some(cannot_apply(
                    record,
                    ApplyFailure::Invariant(format!(
                        "the log went back from position {previous_position} to {}",
                        record.position
                    )),
                ));
                self.fold.clear();
                self.fold_position = 0;
                break;
            }
            previous_position = record.position;
            // The read-ahead decoded the records in order; take each one's result in turn.
            let event = match decoded.as_mut().and_then(Iterator::next) {
                Some(event) => event,
                None => decode_to_apply(record),
            };
            let folded = match self.fold.advance(record, event, &self.org) {
                Ok(folded) => folded,
                Err(failure) => {
                    let error = cannot_apply(record, failure);
                    for guard in guards.iter_mut() {
                        if guard.stopped.is_none() && guard.checkpoint < record.position {
                            guard.stopped = Some(error.to_string());
                        }
                    }
                    first_error = Some(error);
                    // The cache no longer follows the log; start afresh next time.
                    self.fold.clear();
                    self.fold_position = 0;
                    break;
                }
            };
            self.fold_position = record.position;
            let Some(entry) = self.fold.get(&folded.case_id) else {
                continue;
            };
            let applied = Applied {
                record,
                event: &folded.event,
                case_id: folded.case_id,
                stage_before: folded.stage_before,
                state: &entry.state,
                obligations_before: &folded.obligations_before,
                obligations: &entry.obligations,
                org: &self.org,
            };
            if let Some(error) = apply_to_each(&mut guards, &applied) {
                first_error.get_or_insert(error);
            }
            touched.push(folded.case_id);
            if first_error.is_some() {
                break;
            }
        }

        for case_id in &touched {
            self.fold.evict_if_finished(case_id);
        }

        let changes = match &self.db {
            Some(_) if crash != Some(CrashPoint::AfterApply) => {
                Some(self.collect_changes(&mut guards))
            }
            _ => None,
        };
        Ok(InMemory {
            first_error,
            changes,
        })
    }

    /// The changed rows and the checkpoints of every persisted projection, as one batch.
    fn collect_changes(
        &self,
        guards: &mut [RwLockWriteGuard<'_, Tracked<dyn Projection>>],
    ) -> Result<CommitBatch, ProjectionError> {
        let mut batch = CommitBatch::default();
        for guard in guards.iter_mut() {
            if self.persists(&guard.model) {
                guard.model.take_changes(&mut batch)?;
                batch
                    .checkpoints
                    .push((guard.model.name(), guard.checkpoint));
            }
        }
        Ok(batch)
    }

    /// Replaces every persisted projection's model and checkpoint by what is stored.
    async fn reload(&mut self) -> Result<(), ProjectionError> {
        let Some(db) = self.db.as_mut() else {
            return Ok(());
        };
        for slot in &self.slots {
            let tables = slot.read()?.tables();
            if tables.is_empty() {
                continue;
            }
            let mut rows = StoredRows::empty();
            for table in tables {
                rows.insert(table, db.rows(table).await?);
            }
            let checkpoint = db.checkpoint(slot.name()).await?;
            let mut guard = slot.write()?;
            guard.model.discard_changes();
            guard.model.load(rows)?;
            guard.checkpoint = checkpoint;
        }
        Ok(())
    }

    fn publish(&self) {
        let mut projections = Vec::with_capacity(self.slots.len());
        let mut head = self.head;
        for slot in &self.slots {
            // A poisoned lock shows as a stopped projection rather than hiding it.
            match slot.read() {
                Ok(guard) => {
                    head = head.max(guard.checkpoint());
                    projections.push(ProjectionStatus {
                        name: slot.name(),
                        checkpoint: guard.checkpoint(),
                        lag: 0,
                        stopped: guard.stopped().map(str::to_owned),
                    });
                }
                Err(e) => projections.push(ProjectionStatus {
                    name: slot.name(),
                    checkpoint: 0,
                    lag: 0,
                    stopped: Some(e.to_string()),
                }),
            }
        }
        for status in &mut projections {
            status.lag = head.saturating_sub(status.checkpoint);
        }
        self.progress
            .send_replace(RunnerProgress { head, projections });
    }
}
