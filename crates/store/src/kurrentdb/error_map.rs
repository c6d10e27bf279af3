//! Mapping the client's errors onto [`StoreError`].
//!
//! | client error | kind | store error |
//! |---|---|---|
//! | `WrongExpectedVersion` | conflict | [`StoreError::VersionConflict`] (built by the caller, which knows the stream) |
//! | `ServerError` (gRPC Unavailable/Internal/Unknown/DataLoss), `NotLeaderException`, `ConnectionClosed`, `GrpcConnectionError`, `DeadlineExceeded`, gRPC `Unavailable`/`Aborted`/`ResourceExhausted`/`Cancelled` | transport | reads: [`StoreError::Unavailable`]; appends: [`StoreError::OutcomeUnknown`] (see [`transport_error`]) |
//! | `AccessDenied`, `UnsupportedFeature`, `InitializationError` | configuration | [`misconfigured`]: [`StoreError::Misconfigured`] (fatal until the operator fixes it and reopens) |
//! | `ResourceDeleted` | data removed behind the store's back | [`StoreError::Corrupt`] |
//! | gRPC `InvalidArgument`/`OutOfRange`/`FailedPrecondition` (e.g. maximum append size exceeded) | caller | [`StoreError::InvalidRequest`] |
//! | anything else (`InternalParsingError`, `InternalClientError`, `IllegalStateError`, ...) | unknown | [`StoreError::Io`] |

use kurrentdb::Error as ClientError;

use crate::error::StoreError;

/// How an error should be handled by the retry loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The stream was not at the expected revision.
    Conflict,
    /// The connection or the leader was lost, or the server was busy: re-sending the same
    /// request may succeed (after the client has re-discovered the leader).
    Transport,
    /// The stream or resource does not exist (reads of unknown streams).
    NotFound,
    /// The configuration is wrong (credentials, server version).
    Config,
    /// The stream was deleted or tombstoned.
    Deleted,
    /// The request was refused as malformed.
    Invalid,
    /// Anything else.
    Other,
}

/// gRPC status codes (from the gRPC specification), named so the mapping reads clearly
/// without depending on the client's transport crate directly.
mod grpc_code {
    pub const CANCELLED: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const ABORTED: i32 = 10;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Classifies a gRPC status code the client did not map itself.
pub fn classify_grpc_code(code: i32) -> ErrorClass {
    use grpc_code::*;
    match code {
        UNAVAILABLE | ABORTED | RESOURCE_EXHAUSTED | CANCELLED | DEADLINE_EXCEEDED => {
            ErrorClass::Transport
        }
        INVALID_ARGUMENT | OUT_OF_RANGE | FAILED_PRECONDITION => ErrorClass::Invalid,
        UNAUTHENTICATED | PERMISSION_DENIED | UNIMPLEMENTED => ErrorClass::Config,
        NOT_FOUND => ErrorClass::NotFound,
        _ => ErrorClass::Other,
    }
}

/// Classifies a client error.
pub fn classify(err: &ClientError) -> ErrorClass {
    match err {
        ClientError::WrongExpectedVersion { .. } => ErrorClass::Conflict,
        ClientError::ServerError(_)
        | ClientError::NotLeaderException(_)
        | ClientError::ConnectionClosed
        | ClientError::GrpcConnectionError(_)
        | ClientError::DeadlineExceeded => ErrorClass::Transport,
        ClientError::Grpc { code, .. } => classify_grpc_code(i32::from(*code)),
        ClientError::ResourceNotFound => ErrorClass::NotFound,
        ClientError::ResourceDeleted => ErrorClass::Deleted,
        ClientError::AccessDenied
        | ClientError::UnsupportedFeature
        | ClientError::InitializationError(_) => ErrorClass::Config,
        _ => ErrorClass::Other,
    }
}

/// Whether a retry loop may re-send the request.
pub fn is_transient(err: &ClientError) -> bool {
    classify(err) == ErrorClass::Transport
}

/// The store error for a transport failure. `outcome_unknown` is true for appends that may
/// have reached the server: re-sending the same append with the same command id is safe (the
/// ledger deduplicates it), but "nothing was written" cannot be promised, so such appends get
/// [`StoreError::OutcomeUnknown`]; reads (and appends known not to have been sent) get
/// [`StoreError::Unavailable`]. Both are retryable.
pub fn transport_error(what: &str, err: &ClientError, outcome_unknown: bool) -> StoreError {
    if outcome_unknown {
        StoreError::OutcomeUnknown {
            reason: format!(
                "{what}: {err}; the append may or may not have been written — re-send it with \
                 the same command id, the ledger deduplicates it"
            ),
        }
    } else {
        StoreError::Unavailable {
            reason: format!("{what}: {err}"),
        }
    }
}

/// The store error for a configuration problem the operator must fix (credentials, server
/// version): not retryable, fatal until the configuration is fixed and the store reopened.
pub fn misconfigured(reason: String) -> StoreError {
    StoreError::Misconfigured {
        reason: format!("KurrentDB store misconfigured (fix it and reopen): {reason}"),
    }
}

/// Maps a client error of an operation that did not write (a read), or of an append that the
/// caller already knows was not applied.
pub fn map_read_error(what: &str, err: ClientError) -> StoreError {
    map(what, err, false)
}

/// Maps a client error of an append RPC.
pub fn map_write_error(what: &str, err: ClientError) -> StoreError {
    map(what, err, true)
}

fn map(what: &str, err: ClientError, is_write: bool) -> StoreError {
    match classify(&err) {
        ErrorClass::Transport => transport_error(what, &err, is_write),
        ErrorClass::Config => misconfigured(format!("{what}: {err}")),
        ErrorClass::Deleted => StoreError::Corrupt {
            reason: format!(
                "{what}: the stream was deleted in KurrentDB behind the store's back ({err})"
            ),
        },
        ErrorClass::Invalid => StoreError::InvalidRequest {
            reason: format!("{what}: KurrentDB refused the request: {err}"),
        },
        // A conflict reaching this function means the caller did not expect one (e.g. on a
        // read); NotFound likewise. Neither can be acted upon by retrying unchanged.
        ErrorClass::Conflict | ErrorClass::NotFound | ErrorClass::Other => StoreError::Io {
            reason: format!("{what}: {err}"),
        },
    }
}
