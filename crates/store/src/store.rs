//! The [`EventStore`] trait and the backend-neutral [`Subscription`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::Stream;
use futures::stream::BoxStream;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::tree::{ConsistencyProof, Hash, InclusionProof, LogVerification, TreeHead, TreeNode};
use crate::types::{AppendOutcome, AppendRequest, RecordedEvent, VerifyReport};

/// Default batch size used by subscriptions when catching up.
pub const SUBSCRIPTION_BATCH: usize = 512;

/// An append-only store of versioned records, grouped in streams, with one global log.
///
/// Contract (checked by [`crate::contract`] on every backend):
/// - stream versions are 1-based and gap-free; global positions are 1-based, gap-free and
///   in commit order; a reader never sees position n+1 before position n;
/// - `append` is atomic: all of a request's events are written, or none;
/// - an append whose `command_id` is already in the ledger returns the original outcome with
///   `deduplicated = true` and writes nothing (checked before the expected version);
/// - reads return records exactly as appended.
///
/// The trait is dyn-compatible: the engine holds an `Arc<dyn EventStore>`.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events to one stream, atomically, if the stream is at the expected version.
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// Reads up to `max_count` records of a stream, forwards, starting at `from_version`
    /// (inclusive; 0 is treated as 1). An unknown stream reads as empty.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `max_count` records of the global log starting at `from_position`
    /// (inclusive; 0 is treated as 1), in position order.
    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The current version of a stream (its event count), or `None` if it does not exist.
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError>;

    /// The position of the last committed record (0 when the log is empty).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// The outcome recorded in the command-id ledger for `command_id`, if any.
    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError>;

    /// Subscribes to the global log from `from_position` (inclusive; pass checkpoint + 1):
    /// delivers every committed record in position order, then follows live appends —
    /// never skipping and never repeating a record, even while appends commit concurrently.
    async fn subscribe(&self, from_position: u64) -> Result<Subscription, StoreError>;

    /// Walks one stream's hash chain and reports the first broken link.
    async fn verify_stream(&self, stream_id: &str) -> Result<VerifyReport, StoreError>;

    /// Walks every stream's hash chain and reports the first broken link found.
    async fn verify_all(&self) -> Result<VerifyReport, StoreError>;

    /// Everything a full verify checks in the log: [`EventStore::verify_all`] and
    /// [`crate::tree::verify_tree_with_prefix`] (with `prefix_size`, an anchor's size), each
    /// result exactly as those two give it. The default runs the two walks one after the
    /// other; a backend that can check both in one read of the log overrides it.
    async fn verify_log(&self, prefix_size: Option<u64>) -> LogVerification {
        LogVerification::in_two_walks(self, prefix_size).await
    }

    /// Reads stored perfect-subtree hashes of the log's Merkle tree (see [`crate::tree`]),
    /// in the order asked. Every record is a leaf (leaf index = position − 1), and a backend
    /// stores the leaf and the perfect nodes it completes in the same transaction as the
    /// record. A node outside the current tree is an `InvalidRequest`; one missing inside it
    /// is `Corrupt`.
    async fn tree_nodes(&self, nodes: &[TreeNode]) -> Result<Vec<Hash>, StoreError>;

    /// How many leaves the stored tree holds, counted from the tree itself (not from the
    /// records), so a verifier sees records removed from the end behind the store's back.
    /// Backends that cannot count them apart from the log return the head position.
    async fn stored_tree_size(&self) -> Result<u64, StoreError> {
        self.head_position().await
    }

    /// The head (size and RFC 9162 root) of the whole log now.
    async fn tree_head(&self) -> Result<TreeHead, StoreError> {
        let size = self.head_position().await?;
        crate::tree::read::head_at(self, size).await
    }

    /// The head the log had when it held `tree_size` records (≤ the head position).
    async fn tree_head_at(&self, tree_size: u64) -> Result<TreeHead, StoreError> {
        crate::tree::read::head_at(self, tree_size).await
    }

    /// Proof that the record at `position` is leaf `position − 1` of the tree of
    /// `tree_size` leaves (`position ≤ tree_size ≤` the head position).
    async fn inclusion_proof(
        &self,
        position: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, StoreError> {
        crate::tree::read::inclusion(self, position, tree_size).await
    }

    /// Proof that the tree of `second` leaves extends the tree of `first` leaves
    /// (`first ≤ second ≤` the head position).
    async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, StoreError> {
        crate::tree::read::consistency(self, first, second).await
    }

    /// Tries to become the one holder of `role` (e.g. the deadline watcher) among every
    /// process that uses this store. `Ok(None)`: another process holds it now; try again
    /// later. A held [`Leadership`] lasts until it is dropped or [`Leadership::lost`] fires
    /// (its holder's connection died), and then another process can take it over.
    ///
    /// The default suits stores one process writes (memory, embedded SQLite): the caller is
    /// always the leader. Leadership is an efficiency, not a safety property: two holders for
    /// a moment must still be harmless (the ledger turns a double issue into a replay).
    async fn try_lead(&self, role: &str) -> Result<Option<Leadership>, StoreError> {
        let _ = role;
        Ok(Some(Leadership::sole()))
    }
}

/// The right to act as the one holder of a role (see [`EventStore::try_lead`]).
pub struct Leadership {
    held: watch::Receiver<bool>,
    /// Whatever keeps the lease alive (a connection holding an advisory lock); dropped with it.
    _lease: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("held", &self.is_held())
            .finish()
    }
}

impl Leadership {
    /// A leadership nobody can contest (single-process stores).
    pub fn sole() -> Self {
        let (tx, held) = watch::channel(true);
        Leadership {
            held,
            _lease: Some(Box::new(tx)),
        }
    }

    /// A leadership held while `held` says true; `lease` is dropped with it.
    pub fn new(held: watch::Receiver<bool>, lease: Box<dyn std::any::Any + Send + Sync>) -> Self {
        Leadership {
            held,
            _lease: Some(lease),
        }
    }

    /// True while the lease is known to be held.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Resolves when the lease is lost (the connection that held it died). Stop acting as
    /// the leader then, and ask [`EventStore::try_lead`] again.
    pub async fn lost(&mut self) {
        while *self.held.borrow_and_update() {
            if self.held.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A live feed of the global log: catch-up, then follow.
///
/// Use it as a [`futures::Stream`] or call [`Subscription::next`]. It yields `None` only
/// when the store is closed and every committed record has been delivered. An `Err` item
/// means the subscription can no longer guarantee gap-free delivery; resubscribe from the
/// last position you applied + 1.
pub struct Subscription {
    inner: BoxStream<'static, Result<RecordedEvent, StoreError>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// Wraps any stream of records (for backends with native subscriptions).
    pub fn from_stream(inner: BoxStream<'static, Result<RecordedEvent, StoreError>>) -> Self {
        Subscription { inner }
    }

    /// The next record, waiting for a commit if caught up.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        futures::StreamExt::next(&mut self.inner).await
    }

    /// Builds a catch-up-then-follow subscription over a [`LogSource`] and a watch of the
    /// committed head position. Correct as long as the source only ever exposes committed
    /// records in position order, and `head` is updated after each commit becomes visible.
    pub fn follow(
        source: Arc<dyn LogSource>,
        head: watch::Receiver<u64>,
        from_position: u64,
    ) -> Self {
        struct State {
            source: Arc<dyn LogSource>,
            head: watch::Receiver<u64>,
            next: u64,
            buffer: VecDeque<RecordedEvent>,
            failed: bool,
        }
        let state = State {
            source,
            head,
            next: from_position.max(1),
            buffer: VecDeque::new(),
            failed: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            if st.failed {
                return None;
            }
            loop {
                if let Some(e) = st.buffer.pop_front() {
                    return Some((Ok(e), st));
                }
                // Mark the current head as seen *before* reading, so a commit that lands
                // after this point always wakes the `changed()` below: no lost wake-ups.
                let head = *st.head.borrow_and_update();
                if st.next <= head {
                    match st.source.read_batch(st.next, SUBSCRIPTION_BATCH).await {
                        Ok(batch) => {
                            for (i, e) in batch.iter().enumerate() {
                                if e.position != st.next + i as u64 {
                                    st.failed = true;
                                    let err = StoreError::corrupt(format!(
                                        "subscription expected position {} but read {}",
                                        st.next + i as u64,
                                        e.position
                                    ));
                                    return Some((Err(err), st));
                                }
                            }
                            if let Some(last) = batch.last() {
                                st.next = last.position + 1;
                                st.buffer.extend(batch);
                                continue;
                            }
                            // The head moved but the records are not readable yet; wait.
                        }
                        Err(err) => {
                            st.failed = true;
                            return Some((Err(err), st));
                        }
                    }
                }
                if st.head.changed().await.is_err() {
                    // The store is closed. Deliver anything committed before it closed.
                    let head = *st.head.borrow();
                    if st.next <= head {
                        continue;
                    }
                    return None;
                }
            }
        });
        Subscription {
            inner: Box::pin(stream),
        }
    }
}

impl Stream for Subscription {
    type Item = Result<RecordedEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A source of committed log records, used by [`Subscription::follow`].
#[async_trait]
pub trait LogSource: Send + Sync + 'static {
    /// Reads up to `max` committed records from `from` (inclusive), in position order.
    async fn read_batch(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError>;
}

#[async_trait]
impl<T: EventStore + ?Sized> EventStore for Arc<T> {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        (**self).append(request).await
    }
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self)
            .read_stream(stream_id, from_version, max_count)
            .await
    }
    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_all(from_position, max_count).await
    }
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        (**self).stream_version(stream_id).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        (**self).head_position().await
    }
    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        (**self).command_outcome(command_id).await
    }
    async fn subscribe(&self, from_position: u64) -> Result<Subscription, StoreError> {
        (**self).subscribe(from_position).await
    }
    async fn verify_stream(&self, stream_id: &str) -> Result<VerifyReport, StoreError> {
        (**self).verify_stream(stream_id).await
    }
    async fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        (**self).verify_all().await
    }
    async fn verify_log(&self, prefix_size: Option<u64>) -> LogVerification {
        (**self).verify_log(prefix_size).await
    }
    async fn try_lead(&self, role: &str) -> Result<Option<Leadership>, StoreError> {
        (**self).try_lead(role).await
    }
    async fn tree_nodes(&self, nodes: &[TreeNode]) -> Result<Vec<Hash>, StoreError> {
        (**self).tree_nodes(nodes).await
    }
    async fn stored_tree_size(&self) -> Result<u64, StoreError> {
        (**self).stored_tree_size().await
    }
    async fn tree_head(&self) -> Result<TreeHead, StoreError> {
        (**self).tree_head().await
    }
    async fn tree_head_at(&self, tree_size: u64) -> Result<TreeHead, StoreError> {
        (**self).tree_head_at(tree_size).await
    }
    async fn inclusion_proof(
        &self,
        position: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, StoreError> {
        (**self).inclusion_proof(position, tree_size).await
    }
    async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, StoreError> {
        (**self).consistency_proof(first, second).await
    }
}
