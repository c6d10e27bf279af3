//! The in-memory backend, for tests and simulations. Same contract as SQLite, no durability.

mod compact;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::DateTime;
use hashbrown::HashTable;
use tokio::sync::watch;
use uuid::Uuid;

use self::compact::{Bodies, FastState, Names, Record, fast_hash};

use crate::error::StoreError;
use crate::hash::{ChainWalker, GENESIS_HASH, HashInput, record_hash};
use crate::ledger::{LedgerCheck, LedgerRow};
use crate::store::{EventStore, LogSource, Subscription};
use crate::tree::{Frontier, Hash, TreeNode, read::node_within, record_leaf};
use crate::types::{
    AppendOutcome, AppendRequest, BrokenLink, RecordedEvent, VerifyReport, validate_stream_id,
};

/// The command-id ledger as the [`MemoryStore::tamper_ledger`] test hook sees it: each
/// executed command id, its stream and its outcome.
pub type Ledger = HashMap<Uuid, (String, AppendOutcome), FastState>;

/// The most records the store holds: record indexes and name keys are `u32` (a name is
/// interned only with a record that uses it, so there are never more names than records).
const RECORDS_MAX: usize = u32::MAX as usize - 1;

/// Where a command's append landed: its first record's index and how many it wrote. The
/// stream, versions and positions of its outcome are those of the records there.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: u32,
    count: u32,
}

/// The command-id ledger.
enum CommandLedger {
    /// Each command id's span of the log (24 bytes a row instead of a stream id string and
    /// an outcome).
    Spans(HashMap<u128, Span, FastState>),
    /// Rows as the test hook left them, kept apart from the records from then on, so an
    /// edited, added or deleted row stays as edited (see [`MemoryStore::tamper_ledger`]).
    Rows(Ledger),
}

impl Default for CommandLedger {
    fn default() -> Self {
        CommandLedger::Spans(HashMap::default())
    }
}

#[derive(Default)]
struct State {
    /// The global log; position p is at index p - 1.
    log: Vec<Record>,
    /// Payloads and metadata ids of the log's records.
    bodies: Bodies,
    /// Stream ids, keyed in order of each stream's first record.
    stream_ids: Names,
    /// Per stream key: indexes into `log` of the stream's records, in version order.
    streams: Vec<Vec<u32>>,
    event_types: Names,
    actors: Names,
    /// The event-id set: log indexes, hashed by their record's event id.
    event_ids: HashTable<u32>,
    ledger: CommandLedger,
    /// Records changed by the [`MemoryStore::tamper`] test hook, by log index: read in
    /// place of their rows. Empty outside tests.
    tampered: HashMap<u32, RecordedEvent, FastState>,
    /// The Merkle tree's perfect nodes: `tree[level][index]`. It covers the first
    /// `tree[0].len()` records; [`State::extend_tree`] brings it up to the log.
    tree: Vec<Vec<Hash>>,
    /// The tree's right edge, to extend it without reading nodes.
    frontier: Frontier,
}

impl State {
    /// Extends the Merkle tree over every record appended since it was last extended.
    ///
    /// Appends do not hash the tree: an append holds the one lock that orders the log, and
    /// hashing a leaf and its parents there made every writer wait for it. The tree is
    /// extended instead whenever it is read (and before a test tampers with a record), from
    /// the chain hashes the appends computed, so it is the same tree, node for node, as one
    /// extended at every append; the cost moves to the first reader after a burst of appends
    /// and is O(new records).
    fn extend_tree(&mut self) {
        let tree = &mut self.tree;
        let done = tree.first().map_or(0, Vec::len);
        for (index, record) in self.log.iter().enumerate().skip(done) {
            self.frontier
                .push(record_leaf(index as u64 + 1, &record.hash), |node, h| {
                    let level = node.level as usize;
                    if tree.len() <= level {
                        tree.resize_with(level + 1, Vec::new);
                    }
                    tree[level].push(h);
                });
        }
    }

    /// The log indexes of a stream's records (empty for an unknown stream).
    fn stream_records(&self, stream_id: &str) -> &[u32] {
        self.stream_ids
            .key(stream_id)
            .map_or(&[], |key| &self.streams[key as usize])
    }

    /// The stream's current version and chain head, as an append would see them now.
    fn stream_head(&self, stream_id: &str) -> (u64, [u8; 32]) {
        let records = self.stream_records(stream_id);
        let head = records
            .last()
            .map_or(GENESIS_HASH, |&i| self.log[i as usize].hash);
        (records.len() as u64, head)
    }

    /// The record at log index `index` as stored (or as a test hook changed it).
    fn record(&self, index: usize) -> RecordedEvent {
        if !self.tampered.is_empty() {
            if let Some(changed) = self.tampered.get(&(index as u32)) {
                return changed.clone();
            }
        }
        let row = &self.log[index];
        let prev_hash = match row.version {
            1 => GENESIS_HASH,
            v => {
                let previous = self.streams[row.stream as usize][v as usize - 2];
                self.log[previous as usize].hash
            }
        };
        RecordedEvent {
            event_id: row.event_id,
            stream_id: self.stream_ids.name(row.stream).to_owned(),
            version: u64::from(row.version),
            position: index as u64 + 1,
            recorded_at: DateTime::from_timestamp_nanos(row.recorded_at_ns),
            event_type: self.event_types.name(row.event_type).to_owned(),
            schema_version: row.schema_version,
            payload: self.bodies.payload(row).to_vec(),
            metadata: self.bodies.metadata(row, self.actors.name(row.actor)),
            prev_hash,
            hash: row.hash,
        }
    }

    /// Whether an event with this id is stored.
    fn has_event_id(&self, event_id: Uuid) -> bool {
        self.event_ids
            .find(fast_hash(&event_id.as_u128()), |&i| {
                self.log[i as usize].event_id == event_id
            })
            .is_some()
    }

    /// The ledger's stream and outcome for a command id.
    fn ledger_entry(&self, command_id: Uuid) -> Option<(&str, AppendOutcome)> {
        match &self.ledger {
            CommandLedger::Spans(spans) => {
                let span = spans.get(&command_id.as_u128())?;
                Some(self.span_entry(*span))
            }
            CommandLedger::Rows(rows) => rows
                .get(&command_id)
                .map(|(stream, outcome)| (stream.as_str(), *outcome)),
        }
    }

    /// The stream and outcome of the append that wrote `span`.
    fn span_entry(&self, span: Span) -> (&str, AppendOutcome) {
        let first = &self.log[span.first as usize];
        let first_version = u64::from(first.version);
        let first_position = u64::from(span.first) + 1;
        let n = u64::from(span.count);
        let outcome = AppendOutcome {
            first_version,
            last_version: first_version + n - 1,
            first_position,
            last_position: first_position + n - 1,
            deduplicated: false,
        };
        (self.stream_ids.name(first.stream), outcome)
    }

    /// Every ledger row, in no particular order.
    fn ledger_rows(&self) -> Vec<LedgerRow> {
        match &self.ledger {
            CommandLedger::Spans(spans) => spans
                .iter()
                .map(|(&command_id, &span)| {
                    let (stream, outcome) = self.span_entry(span);
                    LedgerRow {
                        command_id: Uuid::from_u128(command_id),
                        stream_id: Some(stream.to_owned()),
                        outcome,
                    }
                })
                .collect(),
            CommandLedger::Rows(rows) => rows
                .iter()
                .map(|(command_id, (stream, outcome))| LedgerRow {
                    command_id: *command_id,
                    stream_id: Some(stream.clone()),
                    outcome: *outcome,
                })
                .collect(),
        }
    }

    /// Records that a command's append wrote `count` records from log index `first`.
    fn record_command(&mut self, command_id: Uuid, first: u32, count: u32) {
        let span = Span { first, count };
        if let CommandLedger::Spans(spans) = &mut self.ledger {
            spans.insert(command_id.as_u128(), span);
            return;
        }
        let (stream, outcome) = self.span_entry(span);
        let row = (stream.to_owned(), outcome);
        if let CommandLedger::Rows(rows) = &mut self.ledger {
            rows.insert(command_id, row);
        }
    }

    /// The ledger as plain rows, taken out of the store (for the test hook to edit).
    fn take_ledger_rows(&mut self) -> Ledger {
        match std::mem::take(&mut self.ledger) {
            CommandLedger::Rows(rows) => rows,
            spans => {
                self.ledger = spans;
                self.ledger_rows()
                    .into_iter()
                    .filter_map(|row| Some((row.command_id, (row.stream_id?, row.outcome))))
                    .collect()
            }
        }
    }
}

struct Inner {
    state: Mutex<State>,
    head: watch::Sender<u64>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied append (appends mutate
        // only after every check passed), so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An in-memory [`EventStore`]. Cheap to clone (clones share the same log).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("head_position", &self.inner.lock().log.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        let (head, _) = watch::channel(0);
        MemoryStore {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                head,
            }),
        }
    }

    /// Test hook: changes a stored record behind the store's back, to prove that
    /// verification detects it. Returns false if there is no record at `position`.
    ///
    /// The changed record is kept whole beside the compact rows and read in their place, so
    /// any field can change, including those a row does not store (the previous hash).
    #[doc(hidden)]
    pub fn tamper(&self, position: u64, f: impl FnOnce(&mut RecordedEvent)) -> bool {
        let mut st = self.inner.lock();
        // The tree covers records as they were appended, not as tampered with.
        st.extend_tree();
        let Some(index) = position.checked_sub(1).filter(|&i| i < st.log.len() as u64) else {
            return false;
        };
        let mut record = st.record(index as usize);
        f(&mut record);
        st.tampered.insert(index as u32, record);
        true
    }

    /// Test hook: changes the command-id ledger behind the store's back (delete, edit or add
    /// a row), to prove that verification detects it.
    #[doc(hidden)]
    pub fn tamper_ledger(&self, f: impl FnOnce(&mut Ledger)) {
        let mut st = self.inner.lock();
        st.extend_tree();
        let mut rows = st.take_ledger_rows();
        f(&mut rows);
        st.ledger = CommandLedger::Rows(rows);
    }

    /// The chain hashes of the request's events if they follow a stream at `version` whose
    /// head hash is `prev_hash`. Pure, so it can run without the lock.
    fn chain_hashes(req: &AppendRequest, version: u64, mut prev_hash: [u8; 32]) -> Vec<[u8; 32]> {
        // Validation guarantees the time is representable.
        let recorded_at_ns = req.recorded_at.timestamp_nanos_opt().unwrap_or_default();
        req.events
            .iter()
            .enumerate()
            .map(|(i, ev)| {
                prev_hash = record_hash(
                    &prev_hash,
                    &HashInput {
                        stream_id: &req.stream_id,
                        version: version + 1 + i as u64,
                        event_id: ev.event_id,
                        recorded_at_ns,
                        event_type: &ev.event_type,
                        schema_version: ev.schema_version,
                        payload: &ev.payload,
                        metadata: (&ev.metadata).into(),
                    },
                );
                prev_hash
            })
            .collect()
    }

    /// Checks and applies an append under the lock. `hashed` carries chain hashes computed
    /// outside the lock for a stream at (version, head hash); they are used only if the
    /// stream is still exactly there, otherwise the hashes are recomputed here.
    fn append_locked(
        st: &mut State,
        req: AppendRequest,
        hashed: Option<(u64, [u8; 32], Vec<[u8; 32]>)>,
    ) -> Result<AppendOutcome, StoreError> {
        if let Some(cid) = req.command_id {
            if let Some((stream, outcome)) = st.ledger_entry(cid) {
                if stream != req.stream_id {
                    return Err(StoreError::CommandIdReused {
                        command_id: cid,
                        original_stream: stream.to_owned(),
                        stream: req.stream_id,
                    });
                }
                return Ok(AppendOutcome {
                    deduplicated: true,
                    ..outcome
                });
            }
        }
        let (actual, first_prev_hash) = st.stream_head(&req.stream_id);
        if !req.expected.admits(actual) {
            return Err(StoreError::VersionConflict {
                stream: req.stream_id,
                expected: req.expected,
                actual,
            });
        }
        if let Some(e) = req.events.iter().find(|e| st.has_event_id(e.event_id)) {
            return Err(StoreError::DuplicateEventId {
                event_id: e.event_id,
            });
        }
        if st.log.len() + req.events.len() > RECORDS_MAX {
            return Err(StoreError::Unavailable {
                reason: format!("the memory store holds at most {RECORDS_MAX} records"),
            });
        }
        let hashes = match hashed {
            Some((version, prev, hashes)) if version == actual && prev == first_prev_hash => hashes,
            // Another append moved the stream since the hashes were computed.
            _ => Self::chain_hashes(&req, actual, first_prev_hash),
        };
        Ok(Self::push_records(st, req, actual, hashes))
    }

    /// Writes a checked append: its records, their stream, event ids and ledger row.
    fn push_records(
        st: &mut State,
        req: AppendRequest,
        actual: u64,
        hashes: Vec<[u8; 32]>,
    ) -> AppendOutcome {
        let stream = st.stream_ids.intern(&req.stream_id);
        if stream as usize == st.streams.len() {
            st.streams.push(Vec::new());
        }
        let recorded_at_ns = req.recorded_at.timestamp_nanos_opt().unwrap_or_default();
        let first_index = st.log.len() as u32;
        let n = req.events.len() as u32;
        st.log.reserve(req.events.len());
        for (i, (ev, hash)) in req.events.iter().zip(hashes).enumerate() {
            let index = first_index + i as u32;
            let row = Record {
                event_id: ev.event_id,
                hash,
                recorded_at_ns,
                body_start: st.bodies.push(&ev.payload, &ev.metadata),
                payload_len: ev.payload.len() as u32,
                version: (actual + 1) as u32 + i as u32,
                stream,
                event_type: st.event_types.intern(&ev.event_type),
                actor: st.actors.intern(&ev.metadata.actor),
                schema_version: ev.schema_version,
            };
            st.log.push(row);
            let log = &st.log;
            st.event_ids
                .insert_unique(fast_hash(&ev.event_id.as_u128()), index, |&i| {
                    fast_hash(&log[i as usize].event_id.as_u128())
                });
            st.streams[stream as usize].push(index);
        }
        if let Some(cid) = req.command_id {
            st.record_command(cid, first_index, n);
        }
        let first_version = actual + 1;
        let first_position = u64::from(first_index) + 1;
        AppendOutcome {
            first_version,
            last_version: first_version + u64::from(n) - 1,
            first_position,
            last_position: first_position + u64::from(n) - 1,
            deduplicated: false,
        }
    }

    fn verify_locked(st: &State, stream: u32) -> Option<BrokenLink> {
        let stream_id = st.stream_ids.name(stream);
        let records = &st.streams[stream as usize];
        let mut walker = ChainWalker::new();
        for &i in records {
            if let Some(broken) = walker.link_at(stream_id, &st.record(i as usize)) {
                return Some(broken);
            }
        }
        // The head is the last row's hash: there is no separate head to disagree with, but
        // the walk must still have ended at the stream's version.
        let (version, head_hash) = st.stream_head(stream_id);
        walker.end_at(stream_id, version, head_hash)
    }
}

#[async_trait]
impl LogSource for Inner {
    async fn read_batch(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let st = self.lock();
        let start = ((from.max(1) - 1) as usize).min(st.log.len());
        let end = start.saturating_add(max).min(st.log.len());
        Ok((start..end).map(|i| st.record(i)).collect())
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        request.validate()?;
        // SHA-256 is most of an append's work. Hash outside the lock against the stream's
        // current head, so concurrent writers hash in parallel and the lock is held only for
        // the checks and the push; `append_locked` re-checks the head and rehashes under the
        // lock if another append moved the stream in between (correct, just slower).
        let (version, prev_hash) = self.inner.lock().stream_head(&request.stream_id);
        let hashes = Self::chain_hashes(&request, version, prev_hash);
        let mut st = self.inner.lock();
        let outcome = Self::append_locked(&mut st, request, Some((version, prev_hash, hashes)))?;
        // Publish while still holding the lock so head updates are monotonic. Without
        // subscribers nobody waits for the head: skip the wake-up (`subscribe` refreshes the
        // value under the same lock before it hands out a receiver).
        if !outcome.deduplicated && self.inner.head.receiver_count() > 0 {
            self.inner.head.send_replace(outcome.last_position);
        }
        drop(st);
        Ok(outcome)
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_id(stream_id)?;
        let st = self.inner.lock();
        let start = (from_version.max(1) - 1) as usize;
        Ok(st
            .stream_records(stream_id)
            .iter()
            .skip(start)
            .take(max_count)
            .map(|&i| st.record(i as usize))
            .collect())
    }

    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_batch(from_position, max_count).await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        validate_stream_id(stream_id)?;
        let st = self.inner.lock();
        Ok(st
            .stream_ids
            .key(stream_id)
            .map(|key| st.streams[key as usize].len() as u64))
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.inner.lock().log.len() as u64)
    }

    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        Ok(self.inner.lock().ledger_entry(command_id).map(|(_, o)| o))
    }

    async fn subscribe(&self, from_position: u64) -> Result<Subscription, StoreError> {
        // Appends skip the head update while nobody subscribes, so bring it up to date
        // under the lock that orders appends, then subscribe before releasing it.
        let head = {
            let st = self.inner.lock();
            self.inner.head.send_replace(st.log.len() as u64);
            self.inner.head.subscribe()
        };
        Ok(Subscription::follow(
            self.inner.clone(),
            head,
            from_position,
        ))
    }

    async fn verify_stream(&self, stream_id: &str) -> Result<VerifyReport, StoreError> {
        validate_stream_id(stream_id)?;
        let st = self.inner.lock();
        let mut report = VerifyReport::default();
        if let Some(stream) = st.stream_ids.key(stream_id) {
            report.streams_checked = 1;
            report.events_checked = st.streams[stream as usize].len() as u64;
            report.first_broken = Self::verify_locked(&st, stream);
        }
        Ok(report)
    }

    async fn tree_nodes(&self, nodes: &[TreeNode]) -> Result<Vec<Hash>, StoreError> {
        let mut st = self.inner.lock();
        st.extend_tree();
        let size = st.log.len() as u64;
        nodes
            .iter()
            .map(|&node| {
                if !node_within(node, size) {
                    return Err(StoreError::InvalidRequest {
                        reason: format!("tree node {node:?} is outside a tree of {size} leaves"),
                    });
                }
                st.tree
                    .get(node.level as usize)
                    .and_then(|level| level.get(node.index as usize))
                    .copied()
                    .ok_or_else(|| StoreError::corrupt(format!("tree node {node:?} is missing")))
            })
            .collect()
    }

    async fn stored_tree_size(&self) -> Result<u64, StoreError> {
        let mut st = self.inner.lock();
        st.extend_tree();
        Ok(st.tree.first().map_or(0, |leaves| leaves.len() as u64))
    }

    async fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        let st = self.inner.lock();
        let mut report = VerifyReport::default();
        // Stream keys are given in order of each stream's first record, so walking them in
        // key order makes the "first" broken link deterministic.
        for stream in 0..st.stream_ids.len() as u32 {
            report.streams_checked += 1;
            report.events_checked += st.streams[stream as usize].len() as u64;
            if report.first_broken.is_none() {
                report.first_broken = Self::verify_locked(&st, stream);
            }
        }
        let mut ledger = LedgerCheck::new();
        (0..st.log.len()).for_each(|i| ledger.event(&st.record(i)));
        for row in st.ledger_rows() {
            let o = &row.outcome;
            let first = (o.first_position.max(1) - 1) as usize;
            let end = (o.last_position as usize).min(st.log.len());
            let records: Vec<RecordedEvent> = (first..end).map(|i| st.record(i)).collect();
            ledger.row(&row, &records);
        }
        report.ledger_rows_checked = ledger.rows_checked();
        report.ledger = ledger.finish();
        Ok(report)
    }
}
