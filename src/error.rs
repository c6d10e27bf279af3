//! The engine's one error type. Every variant says whether it is a **caller** error (fix the
//! request; retrying it unchanged fails the same way), **retry** (the same request may
//! succeed later) or **fatal** (stored data or configuration is in a state the engine will
//! not work with; an operator must act).

use caseflow_domain::{CaseId, CaseNumber, DecodeError, DomainError, OrgError};
use caseflow_projections::ProjectionError;
use caseflow_store::StoreError;
use chrono::{DateTime, Utc};

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// **Caller**: the domain refused the command (wrong stage, not authorised, bad field,
    /// time limit not passed, ...). Nothing was written.
    #[error("{command} refused for case {case_id}: {source}")]
    Rejected {
        /// The command's name.
        command: &'static str,
        /// The case.
        case_id: CaseId,
        /// The domain's reason.
        #[source]
        source: DomainError,
    },
    /// **Caller**: `MergeCase` names a target case that does not exist or is no longer open.
    #[error("cannot merge case {case_id} into {into}: the target case is not an open case")]
    MergeTargetNotOpen {
        /// The duplicate.
        case_id: CaseId,
        /// The named target.
        into: CaseId,
    },
    /// **Retry**: the case stream kept changing under the command; every attempt met a
    /// version conflict. Nothing was written by this command.
    #[error("case {case_id} is too busy: {attempts} attempts all met concurrent changes")]
    Contention {
        /// The case.
        case_id: CaseId,
        /// Attempts made.
        attempts: u32,
    },
    /// **Caller**: no case with this id has been reported.
    #[error("no case {0} in the store")]
    CaseNotFound(CaseId),
    /// **Caller**: a to-do list was asked for a unit, department, zone or level the district
    /// does not have.
    #[error("the district has no {0}")]
    UnknownListOwner(String),
    /// **Caller**: no case has this human number.
    #[error("no case is numbered {0}")]
    NoCaseNumbered(CaseNumber),
    /// **Caller**: a replay asked for the case at a time before it was reported.
    #[error("case {case_id} did not exist yet at {at} (it was reported at {reported_at})")]
    NotYetReported {
        /// The case.
        case_id: CaseId,
        /// The time asked for.
        at: DateTime<Utc>,
        /// When the store recorded its report.
        reported_at: DateTime<Utc>,
    },
    /// **Caller**: a replay asked for a version the case has not reached.
    #[error("case {case_id} has {latest} events; version {requested} does not exist")]
    VersionOutOfRange {
        /// The case.
        case_id: CaseId,
        /// The requested version.
        requested: u64,
        /// The case's latest version.
        latest: u64,
    },
    /// **Caller**: the district file is invalid (the message names the offending entry).
    #[error("invalid district file: {0}")]
    District(#[source] OrgError),
    /// **Caller**: the store URL names a backend this build does not include.
    #[error(
        "the store URL needs the `{feature}` backend, which this build does not include \
         (rebuild with `--features {feature}`)"
    )]
    BackendNotCompiled {
        /// The cargo feature to enable.
        feature: &'static str,
    },
    /// **Caller**: read models in PostgreSQL were asked for a store that is not PostgreSQL.
    #[error("read models in PostgreSQL need a postgres:// store")]
    ReadModelsNeedPostgresStore,
    /// **Caller**: an engine instance name (it names the read-model schema) is not 1..=16
    /// characters of `[a-z0-9_]`.
    #[error("instance name {instance:?} must be 1..=16 characters of [a-z0-9_]")]
    BadInstanceName {
        /// The name given.
        instance: String,
    },
    /// **Caller**: the store URL has a scheme no backend understands.
    #[error(
        "unsupported store URL scheme `{scheme}` (expected postgres://, kurrentdb:// or esdb://; use --db for a SQLite file)"
    )]
    UnsupportedStoreUrl {
        /// The scheme found.
        scheme: String,
    },
    /// **Fatal**: a stored event does not decode into a case event (unknown type or schema
    /// version, or a payload changed behind the store's back). Run `verify`.
    #[error("event {version} of stream {stream} cannot be decoded: {source}")]
    Decode {
        /// The stream.
        stream: String,
        /// The stream version.
        version: u64,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// Whose error depends on the variant (see [`crate::KeyError`]): master keys, the key
    /// store, sealed contacts.
    #[error("reporter protection: {0}")]
    Keys(#[from] crate::contacts::KeyError),
    /// Caller error: the reporter's contact was erased (its key destroyed); it can never be
    /// read again.
    #[error("the reporter's contact of case {case_id} was erased{}", at.map(|t| format!(" at {t}")).unwrap_or_default())]
    ContactErased {
        /// The case.
        case_id: CaseId,
        /// When the key was destroyed, if known.
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Caller error: the case's reporter is anonymous.
    #[error("case {0} has an anonymous reporter: there is no contact")]
    NoContact(CaseId),
    /// The event store failed; [`StoreError::is_retryable`] and [`StoreError::is_fatal`]
    /// classify it (a version conflict never surfaces here: it is retried or becomes
    /// [`EngineError::Contention`]).
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// A read model failed; **fatal** for that read model (rebuild it) unless the database
    /// error is transient.
    #[error("read models: {0}")]
    Projection(#[from] ProjectionError),
    /// **Caller**: a signed tree head or key given as an anchor is malformed, signed by
    /// another key than the trusted one, or its signature does not verify.
    #[error("anchor: {0}")]
    Anchor(#[from] caseflow_store::tree::HeadError),
    /// **Caller** when a path is wrong (missing file, no permission), otherwise **fatal**:
    /// reading or writing a file (district, export) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Contention { .. } => true,
            EngineError::Store(e) => e.is_retryable(),
            EngineError::Projection(e) => e.is_retryable(),
            EngineError::Keys(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// Whether the error is the caller's to fix (the request or its arguments are wrong).
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            EngineError::Rejected { .. }
                | EngineError::MergeTargetNotOpen { .. }
                | EngineError::CaseNotFound(_)
                | EngineError::UnknownListOwner(_)
                | EngineError::NotYetReported { .. }
                | EngineError::NoCaseNumbered(_)
                | EngineError::VersionOutOfRange { .. }
                | EngineError::District(_)
                | EngineError::BackendNotCompiled { .. }
                | EngineError::UnsupportedStoreUrl { .. }
                | EngineError::ReadModelsNeedPostgresStore
                | EngineError::BadInstanceName { .. }
                | EngineError::Anchor(_)
                | EngineError::ContactErased { .. }
                | EngineError::NoContact(_)
        ) || matches!(self, EngineError::Keys(e) if e.is_caller_error())
    }
}
