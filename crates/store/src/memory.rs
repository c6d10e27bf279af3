//! The in-memory backend, for tests and simulations. Same contract as SQLite, no durability.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::{ChainWalker, GENESIS_HASH, HashInput, record_hash};
use crate::ledger::{LedgerCheck, LedgerRow};
use crate::store::{EventStore, LogSource, Subscription};
use crate::tree::{Frontier, Hash, TreeNode, read::node_within, record_leaf};
use crate::types::{
    AppendOutcome, AppendRequest, BrokenLink, RecordedEvent, VerifyReport, validate_stream_id,
};

#[derive(Default)]
struct StreamEntry {
    /// Indexes into `State::log` of the stream's records, in version order.
    indexes: Vec<usize>,
    /// Hash of the last record (the chain head).
    head_hash: [u8; 32],
}

/// The hasher of the store's maps. Their keys (stream ids, event and command ids) are the
/// callers' own, in a process that trusts its callers, so SipHash's resistance to hash
/// flooding buys nothing, and it was a measurable part of an append. The fixed seed keeps
/// behaviour independent of process-wide randomness.
type FastState = foldhash::quality::FixedState;

/// The command-id ledger: each executed command id, its stream and its outcome.
pub type Ledger = HashMap<Uuid, (String, AppendOutcome), FastState>;

#[derive(Default)]
struct State {
    /// The global log; position p is at index p - 1.
    log: Vec<RecordedEvent>,
    streams: HashMap<String, StreamEntry, FastState>,
    ledger: Ledger,
    event_ids: HashSet<Uuid, FastState>,
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
        for record in &self.log[done..] {
            self.frontier
                .push(record_leaf(record.position, &record.hash), |node, h| {
                    let level = node.level as usize;
                    if tree.len() <= level {
                        tree.resize_with(level + 1, Vec::new);
                    }
                    tree[level].push(h);
                });
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
    #[doc(hidden)]
    pub fn tamper(&self, position: u64, f: impl FnOnce(&mut RecordedEvent)) -> bool {
        let mut st = self.inner.lock();
        // The tree covers records as they were appended, not as tampered with.
        st.extend_tree();
        match position
            .checked_sub(1)
            .and_then(|i| st.log.get_mut(i as usize))
        {
            Some(e) => {
                f(e);
                true
            }
            None => false,
        }
    }

    /// Test hook: changes the command-id ledger behind the store's back (delete, edit or add
    /// a row), to prove that verification detects it.
    #[doc(hidden)]
    pub fn tamper_ledger(&self, f: impl FnOnce(&mut Ledger)) {
        let mut st = self.inner.lock();
        st.extend_tree();
        f(&mut st.ledger);
    }

    /// The stream's current version and chain head, as an append would see them now.
    fn stream_head(st: &State, stream_id: &str) -> (u64, [u8; 32]) {
        match st.streams.get(stream_id) {
            Some(s) => (s.indexes.len() as u64, s.head_hash),
            None => (0, GENESIS_HASH),
        }
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
                        metadata: &ev.metadata,
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
            if let Some((stream, outcome)) = st.ledger.get(&cid) {
                if *stream != req.stream_id {
                    return Err(StoreError::CommandIdReused {
                        command_id: cid,
                        original_stream: stream.clone(),
                        stream: req.stream_id,
                    });
                }
                return Ok(AppendOutcome {
                    deduplicated: true,
                    ..*outcome
                });
            }
        }
        let (actual, first_prev_hash) = Self::stream_head(st, &req.stream_id);
        if !req.expected.admits(actual) {
            return Err(StoreError::VersionConflict {
                stream: req.stream_id,
                expected: req.expected,
                actual,
            });
        }
        if let Some(e) = req
            .events
            .iter()
            .find(|e| st.event_ids.contains(&e.event_id))
        {
            return Err(StoreError::DuplicateEventId {
                event_id: e.event_id,
            });
        }
        let hashes = match hashed {
            Some((version, prev, hashes)) if version == actual && prev == first_prev_hash => hashes,
            // Another append moved the stream since the hashes were computed.
            _ => Self::chain_hashes(&req, actual, first_prev_hash),
        };
        let first_position = st.log.len() as u64 + 1;
        let first_version = actual + 1;
        let n = req.events.len() as u64;
        let start_index = st.log.len();
        st.log.reserve(req.events.len());
        let mut prev_hash = first_prev_hash;
        for (i, (ev, hash)) in req.events.into_iter().zip(hashes).enumerate() {
            st.event_ids.insert(ev.event_id);
            st.log.push(RecordedEvent {
                event_id: ev.event_id,
                stream_id: req.stream_id.clone(),
                version: first_version + i as u64,
                position: first_position + i as u64,
                recorded_at: req.recorded_at,
                event_type: ev.event_type,
                schema_version: ev.schema_version,
                payload: ev.payload.into_bytes(),
                metadata: ev.metadata,
                prev_hash,
                hash,
            });
            prev_hash = hash;
        }
        // One lookup for an existing stream; the key is allocated only for a new one.
        let entry = match st.streams.get_mut(&req.stream_id) {
            Some(entry) => entry,
            None => st.streams.entry(req.stream_id.clone()).or_default(),
        };
        entry.indexes.extend(start_index..start_index + n as usize);
        entry.head_hash = prev_hash;
        let outcome = AppendOutcome {
            first_version,
            last_version: first_version + n - 1,
            first_position,
            last_position: first_position + n - 1,
            deduplicated: false,
        };
        if let Some(cid) = req.command_id {
            st.ledger.insert(cid, (req.stream_id, outcome));
        }
        Ok(outcome)
    }

    fn verify_locked(st: &State, stream_id: &str, entry: &StreamEntry) -> Option<BrokenLink> {
        let mut walker = ChainWalker::new();
        for &i in &entry.indexes {
            if let Some(broken) = walker.link_at(stream_id, &st.log[i]) {
                return Some(broken);
            }
        }
        walker.end_at(stream_id, entry.indexes.len() as u64, entry.head_hash)
    }
}

#[async_trait]
impl LogSource for Inner {
    async fn read_batch(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let st = self.lock();
        let start = (from.max(1) - 1) as usize;
        Ok(st.log.iter().skip(start).take(max).cloned().collect())
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
        let (version, prev_hash) = Self::stream_head(&self.inner.lock(), &request.stream_id);
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
        let Some(entry) = st.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let start = (from_version.max(1) - 1) as usize;
        Ok(entry
            .indexes
            .iter()
            .skip(start)
            .take(max_count)
            .map(|&i| st.log[i].clone())
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
        Ok(st.streams.get(stream_id).map(|s| s.indexes.len() as u64))
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.inner.lock().log.len() as u64)
    }

    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        Ok(self.inner.lock().ledger.get(&command_id).map(|(_, o)| *o))
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
        if let Some(entry) = st.streams.get(stream_id) {
            report.streams_checked = 1;
            report.events_checked = entry.indexes.len() as u64;
            report.first_broken = Self::verify_locked(&st, stream_id, entry);
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
        // Walk streams in order of their first record so the "first" broken link is
        // deterministic (HashMap order is not).
        let mut streams: Vec<(&String, &StreamEntry)> = st.streams.iter().collect();
        streams.sort_by_key(|(_, e)| e.indexes.first().copied().unwrap_or(usize::MAX));
        for (id, entry) in streams {
            report.streams_checked += 1;
            report.events_checked += entry.indexes.len() as u64;
            if report.first_broken.is_none() {
                report.first_broken = Self::verify_locked(&st, id, entry);
            }
        }
        let mut ledger = LedgerCheck::new();
        st.log.iter().for_each(|e| ledger.event(e));
        for (command_id, (stream_id, outcome)) in &st.ledger {
            let named = outcome.first_position.max(1) as usize - 1..outcome.last_position as usize;
            let records = st.log.get(named).unwrap_or_default();
            ledger.row(
                &LedgerRow {
                    command_id: *command_id,
                    stream_id: Some(stream_id.clone()),
                    outcome: *outcome,
                },
                records,
            );
        }
        report.ledger_rows_checked = ledger.rows_checked();
        report.ledger = ledger.finish();
        Ok(report)
    }
}
