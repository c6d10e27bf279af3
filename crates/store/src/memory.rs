//! The in-memory backend, for tests and simulations. Same contract as SQLite, no durability.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::{ChainWalker, GENESIS_HASH, HashInput, record_hash};
use crate::store::{EventStore, LogSource, Subscription};
use crate::types::{
    AppendOutcome, AppendRequest, BrokenLink, LinkFault, RecordedEvent, VerifyReport,
    validate_stream_id,
};

#[derive(Default)]
struct StreamEntry {
    /// Indexes into `State::log` of the stream's records, in version order.
    indexes: Vec<usize>,
    /// Hash of the last record (the chain head).
    head_hash: [u8; 32],
}

#[derive(Default)]
struct State {
    /// The global log; position p is at index p - 1.
    log: Vec<RecordedEvent>,
    streams: HashMap<String, StreamEntry>,
    ledger: HashMap<Uuid, (String, AppendOutcome)>,
    event_ids: HashSet<Uuid>,
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
            .field("head_position", &*self.inner.head.borrow())
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

    fn append_locked(st: &mut State, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
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
        let (actual, mut prev_hash) = match st.streams.get(&req.stream_id) {
            Some(s) => (s.indexes.len() as u64, s.head_hash),
            None => (0, GENESIS_HASH),
        };
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
        // Validation guarantees the time is representable.
        let recorded_at_ns = req.recorded_at.timestamp_nanos_opt().unwrap_or_default();
        let first_position = st.log.len() as u64 + 1;
        let first_version = actual + 1;
        let n = req.events.len() as u64;
        let start_index = st.log.len();
        for (i, ev) in req.events.into_iter().enumerate() {
            let version = first_version + i as u64;
            let hash = record_hash(
                &prev_hash,
                &HashInput {
                    stream_id: &req.stream_id,
                    version,
                    event_id: ev.event_id,
                    recorded_at_ns,
                    event_type: &ev.event_type,
                    schema_version: ev.schema_version,
                    payload: &ev.payload,
                    metadata: &ev.metadata,
                },
            );
            st.event_ids.insert(ev.event_id);
            st.log.push(RecordedEvent {
                event_id: ev.event_id,
                stream_id: req.stream_id.clone(),
                version,
                position: first_position + i as u64,
                recorded_at: req.recorded_at,
                event_type: ev.event_type,
                schema_version: ev.schema_version,
                payload: ev.payload,
                metadata: ev.metadata,
                prev_hash,
                hash,
            });
            prev_hash = hash;
        }
        let entry = st.streams.entry(req.stream_id.clone()).or_default();
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
            let e = &st.log[i];
            if let Some(fault) = walker.check(e) {
                return Some(BrokenLink {
                    stream_id: stream_id.to_owned(),
                    version: e.version,
                    position: Some(e.position),
                    fault,
                });
            }
        }
        if walker.last_hash() != entry.head_hash {
            return Some(BrokenLink {
                stream_id: stream_id.to_owned(),
                version: walker.last_version(),
                position: None,
                fault: LinkFault::HeadMismatch {
                    head_version: entry.indexes.len() as u64,
                    last_version: walker.last_version(),
                },
            });
        }
        None
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
        let outcome = {
            let mut st = self.inner.lock();
            let outcome = Self::append_locked(&mut st, request)?;
            if !outcome.deduplicated {
                // Publish while still holding the lock so head updates are monotonic.
                self.inner.head.send_replace(outcome.last_position);
            }
            outcome
        };
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
        Ok(Subscription::follow(
            self.inner.clone(),
            self.inner.head.subscribe(),
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
            if let Some(broken) = Self::verify_locked(&st, id, entry) {
                report.first_broken = Some(broken);
                break;
            }
        }
        Ok(report)
    }
}
