//! The one error type of the store.

use uuid::Uuid;

use crate::types::ExpectedVersion;

/// Everything that can go wrong in the store.
///
/// Each variant says who must act: a **caller** error means the request was wrong and
/// retrying it unchanged fails again; **retry** means the same request (or a re-decided
/// one, for conflicts) may succeed later; **fatal** means the stored data or the storage
/// device is in a state the store will not write to (reopen or repair first).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// **Retry** (after re-reading the stream and re-deciding): the stream was not at the
    /// expected version. Carries what the caller expected and what the stream is at.
    #[error(
        "version conflict on stream {stream:?}: expected {expected}, stream is at version {actual}"
    )]
    VersionConflict {
        /// The stream appended to.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0 = no stream).
        actual: u64,
    },

    /// **Caller**: the request is malformed (empty, oversized, payload not JSON, bad id,
    /// unrepresentable time, ...). The reason says which rule was broken.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// Which rule was broken.
        reason: String,
    },

    /// **Caller**: an event id in the request is already stored (event ids are unique).
    #[error("event id {event_id} is already stored")]
    DuplicateEventId {
        /// The duplicate id.
        event_id: Uuid,
    },

    /// **Caller**: the command id is in the ledger, but for an append to a different stream.
    /// Command ids must identify one command; this is a bug in the id generator or caller.
    #[error(
        "command id {command_id} was already used for stream {original_stream:?}, not {stream:?}"
    )]
    CommandIdReused {
        /// The reused command id.
        command_id: Uuid,
        /// The stream of the original append.
        original_stream: String,
        /// The stream of this append.
        stream: String,
    },

    /// **Caller**: a stored (type, schema version) has no upcaster or decoder.
    #[error("unknown event type {event_type:?}")]
    UnknownEventType {
        /// The type name.
        event_type: String,
    },

    /// **Caller**: the type is known but this schema version is not (too new, or no upcaster).
    #[error("unknown schema version {schema_version} of event type {event_type:?}")]
    UnknownSchemaVersion {
        /// The type name.
        event_type: String,
        /// The unknown version.
        schema_version: u32,
    },

    /// **Caller**: an upcaster or decoder failed on a payload (the payload does not have
    /// the shape its (type, version) promises).
    #[error("cannot decode {event_type:?} v{schema_version}: {reason}")]
    Decode {
        /// The type name.
        event_type: String,
        /// The schema version.
        schema_version: u32,
        /// What failed.
        reason: String,
    },

    /// **Retry**: the store is overloaded or shutting down and did not take the request;
    /// nothing was written.
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },

    /// **Retry with the same command id**: the request may or may not have been applied (a
    /// networked backend lost the connection or the leader after sending it). Re-sending the
    /// same append with the same command id is safe: the ledger deduplicates it and returns
    /// the original outcome if the first attempt was written. Without a command id the caller
    /// must re-read the stream to find out.
    #[error("outcome unknown: {reason}")]
    OutcomeUnknown {
        /// What was lost, and when.
        reason: String,
    },

    /// **Retry, then fatal**: a storage I/O error (disk full, permission, device error).
    /// Whether the append was written is unknown only if the error came from COMMIT; the
    /// store then refuses further writes (see [`StoreError::WritesRefused`]).
    #[error("storage I/O error: {reason}")]
    Io {
        /// The underlying error.
        reason: String,
    },

    /// **Fatal until reopened**: an earlier commit or fsync failed (or corruption was
    /// detected), so the store no longer knows what is durable and refuses every write.
    /// Close and reopen the store; reopening recovers from the last durable state.
    #[error("writes refused until the store is reopened: {reason}")]
    WritesRefused {
        /// The failure that poisoned the store.
        reason: String,
    },

    /// **Fatal**: the stored data is damaged (malformed database pages, impossible field
    /// values, truncated file). The store does not write to a corrupt file.
    #[error("store is corrupt: {reason}")]
    Corrupt {
        /// What was found.
        reason: String,
    },

    /// **Fatal (caller must upgrade)**: the file was written by a newer store format.
    #[error("store file has format version {found}, this build supports up to {supported}")]
    NewerFormat {
        /// `user_version` found in the file.
        found: i64,
        /// Newest format this build reads.
        supported: i64,
    },

    /// **Fatal (operator)**: the store cannot work with this configuration (bad connection
    /// string, access denied, server too old or a required feature unsupported). Nothing was
    /// written; fix the configuration and reopen the store.
    #[error("store misconfigured: {reason}")]
    Misconfigured {
        /// What is wrong with the configuration.
        reason: String,
    },

    /// **Fatal until reopened**: the disk (or the file system's quota) is full. The append
    /// that hit it was not written, and the store refuses further writes until it is
    /// reopened after space was freed; everything acknowledged before is intact.
    #[error("the disk is full: {reason} (free space, then reopen the store)")]
    DiskFull {
        /// The underlying error.
        reason: String,
    },

    /// **Caller**: there is no store file at the path (and it was not to be created).
    #[error("no Caseflow store at {path}")]
    Missing {
        /// The path opened.
        path: String,
    },

    /// **Fatal (operator)**: the store cannot be written: it was opened read-only (as
    /// `verify` and the query verbs open it), or the file is marked read-only. Nothing was
    /// written; open it for writing, or make the file writable, and reopen.
    #[error("{path} is read-only: {reason}")]
    ReadOnly {
        /// The store file.
        path: String,
        /// Why it cannot be written.
        reason: String,
    },

    /// **Caller**: the file exists but is not a Caseflow store (another SQLite database
    /// or not SQLite at all). Nothing was written to it.
    #[error("{path} is not a Caseflow store: {reason}")]
    NotACaseflowStore {
        /// The file opened.
        path: String,
        /// What identified it as foreign.
        reason: String,
    },
}

impl StoreError {
    /// True for errors where retrying (possibly after re-reading) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::VersionConflict { .. }
                | StoreError::Unavailable { .. }
                | StoreError::OutcomeUnknown { .. }
                | StoreError::Io { .. }
        )
    }

    /// True for errors that mean the stored data or device cannot be trusted.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StoreError::WritesRefused { .. }
                | StoreError::Corrupt { .. }
                | StoreError::NewerFormat { .. }
                | StoreError::Misconfigured { .. }
                | StoreError::ReadOnly { .. }
                | StoreError::DiskFull { .. }
        )
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            reason: reason.into(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &err {
            rusqlite::Error::SqliteFailure(e, _) => match e.code {
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt {
                    reason: err.to_string(),
                },
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Unavailable {
                    reason: err.to_string(),
                },
                ErrorCode::DiskFull => StoreError::DiskFull {
                    reason: err.to_string(),
                },
                _ => StoreError::Io {
                    reason: err.to_string(),
                },
            },
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt {
                reason: err.to_string(),
            },
            _ => StoreError::Io {
                reason: err.to_string(),
            },
        }
    }
}
