//! Errors of the read side.
//!
//! Each variant says who must act: a **caller** error means the request was wrong and
//! retrying it unchanged fails again; **retry** means the same call may succeed later;
//! **fatal** means the projection (or its stored read model) is in a state from which it
//! will not continue on its own — fix the cause, then rebuild or reopen.

use caseflow_domain::DecodeError;
use caseflow_store::StoreError;

use crate::persist::StorageError;
use uuid::Uuid;

/// Why one event could not be applied. Carried inside [`ProjectionError::CannotApply`],
/// which adds where the event is (position, stream, version, type, id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyFailure {
    /// The stored record does not decode into a case event (unknown type, unknown schema
    /// version, or a payload that does not have the promised shape).
    #[error("the record does not decode into a case event: {0}")]
    Undecodable(#[source] DecodeError),
    /// The stream id is not a case stream (`case-<uuid>`), so the event belongs to no case.
    #[error("stream {0:?} is not a case stream")]
    NotACaseStream(String),
    /// The event's case id differs from the case id of its stream.
    #[error("the event names case {in_event} but is stored in the stream of case {in_stream}")]
    CaseIdMismatch {
        /// Case id carried in the event.
        in_event: String,
        /// Case id derived from the stream id.
        in_stream: String,
    },
    /// Stream versions did not follow on from the state the projection holds: an event is
    /// missing or was delivered twice.
    #[error("expected stream version {expected}, got {found}")]
    VersionGap {
        /// The version that should come next.
        expected: u64,
        /// The version delivered.
        found: u64,
    },
    /// The event does not fit the case's state (the domain's `misfit` check): e.g. the
    /// first event is not `CaseReported`, a final case changes, time runs backwards.
    #[error("event {event_type} does not fit the case ({stage})")]
    OutOfOrder {
        /// The event type name.
        event_type: String,
        /// The case's stage and the reason the event does not fit.
        stage: String,
    },
    /// The case names a unit, department or zone the organisation does not know, so the
    /// who-acts table cannot place it on anybody's list.
    #[error("the case refers to {0}, which is not in the organisation")]
    UnknownParty(String),
    /// A read-model invariant would be broken by this event (the message says which).
    #[error("read-model invariant broken: {0}")]
    Invariant(String),
}

impl From<caseflow_domain::ObligationError> for ApplyFailure {
    fn from(e: caseflow_domain::ObligationError) -> Self {
        use caseflow_domain::ObligationError as E;
        match e {
            E::UnknownUnit { unit } => ApplyFailure::UnknownParty(format!("unit {unit}")),
            E::UnknownDepartment { department } => {
                ApplyFailure::UnknownParty(format!("department {department}"))
            }
            E::UnknownZone { zone } => ApplyFailure::UnknownParty(format!("zone {zone}")),
            other => ApplyFailure::Invariant(other.to_string()),
        }
    }
}

/// Where and why a projection stopped: the event it could not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "projection {projection} stopped at position {position}: cannot apply {event_type} \
     (event {event_id}, stream {stream_id} version {version}): {failure}"
)]
pub struct CannotApply {
    /// The projection that stopped (`*` when every projection of a runner stopped,
    /// because the event could not be decoded or folded at all).
    pub projection: String,
    /// Global position of the event.
    pub position: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Stream id.
    pub stream_id: String,
    /// Stream version of the event.
    pub version: u64,
    /// Stored type name.
    pub event_type: String,
    /// What was wrong.
    pub failure: ApplyFailure,
}

/// Everything that can go wrong on the read side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// **Fatal** for the named projection: it met an event it cannot apply and stopped at
    /// the position before it. It never skips the event; fix the cause (e.g. deploy the
    /// upcaster), then rebuild the projection. The details name the position and the event.
    #[error("{0}")]
    CannotApply(Box<CannotApply>),
    /// **Fatal**: the projection already stopped on an earlier error and will not apply
    /// anything more until it is rebuilt.
    #[error("projection {0} has stopped on an earlier error; rebuild it")]
    Stopped(String),
    /// **Caller**: no projection of that name is registered with the runner.
    #[error("no projection named {0:?} is registered")]
    UnknownProjection(String),
    /// **Caller**: two projections of the same name were registered with one runner.
    #[error("a projection named {0:?} is already registered")]
    DuplicateProjection(String),
    /// Reading the event log failed; the store error says whether retrying can help.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// **Retry** when [`StorageError::retryable`] says so (busy, locked, disk full, a lost
    /// connection), otherwise **fatal**: the read-model store failed. The failed call
    /// changed nothing, so the stored read model and its checkpoint are still consistent
    /// with each other.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// **Fatal** (a programming error of the projection): a table description has an unsafe
    /// name, no key or a repeated column. Nothing was created.
    #[error("read-model table {table:?} is ill-described: {reason}")]
    InvalidTable {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// **Fatal** (a programming error of the projection): a row does not fit its table's
    /// description. Nothing of the batch was written.
    #[error("a row does not fit read-model table {table}: {reason}")]
    InvalidRow {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// **Fatal**: a stored read-model row does not decode (written by another version, or
    /// changed behind our back). Rebuild the projection.
    #[error("stored read model {projection} is corrupt: {reason}")]
    CorruptReadModel {
        /// The projection whose rows are bad.
        projection: String,
        /// What was wrong.
        reason: String,
    },
    /// **Fatal**: the read-model file was written by a newer format of this crate.
    #[error(
        "read-model database format {found} is newer than this build understands ({supported})"
    )]
    NewerFormat {
        /// `user_version` found in the file.
        found: i64,
        /// Highest version this build understands.
        supported: i64,
    },
    /// **Fatal**: a read-model lock was poisoned by a panic in another thread.
    #[error("the read model {0} was poisoned by a panic in another thread")]
    Poisoned(String),
}

impl ProjectionError {
    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProjectionError::Store(e) => e.is_retryable(),
            ProjectionError::Storage(e) => e.retryable,
            _ => false,
        }
    }
}
