//! Mapping driver and pool errors onto [`StoreError`].
//!
//! | driver error | store error |
//! |---|---|
//! | connection lost, server shutting down, too many connections, statement timeout, deadlock, serialisation failure, pool timeout | [`StoreError::Unavailable`] (retry; on an append only before COMMIT was sent, else [`StoreError::OutcomeUnknown`]) |
//! | authentication, unknown database or role, missing privilege | [`StoreError::Misconfigured`] |
//! | `data_corrupted`, `index_corrupted`, a column that does not decode | [`StoreError::Corrupt`] |
//! | disk full, other server errors | [`StoreError::Io`] |
//!
//! Unique violations are handled where they happen (duplicate event or command ids).

use tokio_postgres::error::SqlState;

use crate::error::StoreError;

/// Maps a driver error that happened while no commit was in flight.
pub(crate) fn map_err(err: tokio_postgres::Error) -> StoreError {
    let reason = describe(&err);
    let Some(code) = err.code() else {
        // No SQLSTATE: the connection broke, or a value did not convert.
        if err.is_closed() || is_transport(&err) {
            return StoreError::Unavailable { reason };
        }
        return StoreError::corrupt(reason);
    };
    if is_transient(code) {
        StoreError::Unavailable { reason }
    } else if is_config(code) {
        StoreError::Misconfigured { reason }
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StoreError::Corrupt { reason }
    } else {
        StoreError::Io { reason }
    }
}

/// Maps an error returned by COMMIT (or after it was sent): if the connection broke, the
/// commit may or may not have happened.
pub(crate) fn map_commit_err(err: tokio_postgres::Error) -> StoreError {
    match map_err(err) {
        StoreError::Unavailable { reason } if !reason.contains("deadlock") => {
            StoreError::OutcomeUnknown {
                reason: format!("the connection failed during COMMIT: {reason}"),
            }
        }
        other => other,
    }
}

/// Maps a pool error (no connection could be had, nothing was sent).
pub(crate) fn map_pool_err(err: deadpool_postgres::PoolError, place: &str) -> StoreError {
    use deadpool_postgres::PoolError;
    match err {
        PoolError::Backend(e) => match map_err(e) {
            StoreError::Misconfigured { reason } => StoreError::Misconfigured {
                reason: format!("{place}: {reason}"),
            },
            StoreError::Unavailable { reason } | StoreError::Io { reason } => {
                StoreError::Unavailable {
                    reason: format!("{place}: {reason}"),
                }
            }
            other => other,
        },
        PoolError::Timeout(kind) => StoreError::Unavailable {
            reason: format!("{place}: timed out waiting for a connection ({kind:?})"),
        },
        PoolError::Closed => StoreError::Unavailable {
            reason: format!("{place}: the pool is closed"),
        },
        other => StoreError::Misconfigured {
            reason: format!("{place}: {other}"),
        },
    }
}

/// The unique constraint a driver error violated, if it is a unique violation.
pub(crate) fn unique_violation(err: &tokio_postgres::Error) -> Option<String> {
    let db = err.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or("").to_owned())
}

fn is_transient(code: &SqlState) -> bool {
    [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::CONNECTION_EXCEPTION,
        SqlState::CONNECTION_FAILURE,
        SqlState::CONNECTION_DOES_NOT_EXIST,
        SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
        SqlState::QUERY_CANCELED,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::READ_ONLY_SQL_TRANSACTION,
    ]
    .contains(code)
}

fn is_config(code: &SqlState) -> bool {
    [
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        SqlState::INSUFFICIENT_PRIVILEGE,
        SqlState::INVALID_CATALOG_NAME,
        SqlState::INVALID_SCHEMA_NAME,
        SqlState::UNDEFINED_TABLE,
        SqlState::FEATURE_NOT_SUPPORTED,
    ]
    .contains(code)
}

fn is_transport(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    // Connection-level failures without an io source ("connection closed", timeouts).
    let text = err.to_string();
    text.contains("connection") || text.contains("timed out") || text.contains("timeout")
}

/// The error with its database detail, if any.
fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}
