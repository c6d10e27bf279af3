//! Errors of reporter protection: master keys, the key store and sealed contacts.

use std::path::PathBuf;

use thiserror::Error;

/// Why a key operation failed. Each variant says whose problem it is: the caller's (a
/// configuration or a request to fix), worth a retry, or fatal (the files need an
/// operator: restore from backup).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Caller error: the store holds (or is about to hold) named reporters' contacts, and no
    /// master key was given.
    #[error(
        "no master key: give a key file (--master-key-file, or the CASEFLOW_MASTER_KEY_FILE variable) \
         or the key itself (the CASEFLOW_MASTER_KEY variable); `caseflow master-key new` makes one"
    )]
    MasterKeyMissing,
    /// Caller error: the master key text is not 64 hex digits.
    #[error("the master key from {source_name} is not 64 hex digits")]
    MasterKeyMalformed {
        /// Where the text came from (a file or a variable name).
        source_name: String,
    },
    /// Caller error: a master key file cannot be read or written (written: it already exists).
    #[error("master key file {path}: {source}")]
    MasterKeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Caller error: the master key is not the one the key store was made (or last rotated)
    /// with.
    #[error(
        "the master key (fingerprint {given}) is not the key of the key store {path} (fingerprint {expected})"
    )]
    WrongMasterKey {
        /// The key store.
        path: PathBuf,
        /// The fingerprint the key store records.
        expected: String,
        /// The fingerprint of the key given.
        given: String,
    },
    /// Fatal: the key store is missing while the log holds sealed contacts. It is never
    /// recreated (that would make every contact unreadable): restore it from a backup.
    #[error(
        "the key store {path} is missing, but the event log holds sealed reporter contacts; restore it from a backup (a new one would make every contact unreadable)"
    )]
    KeyStoreMissing {
        /// The missing file (PostgreSQL: the server, schema and table).
        path: PathBuf,
    },
    /// Fatal: the key store exists but is not a readable Caseflow key store (truncated,
    /// damaged, or another kind of file).
    #[error("the key store {path} is unreadable ({reason}); restore it from a backup")]
    KeyStoreUnreadable {
        /// The file (PostgreSQL: the server, schema and table).
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Fatal: the key store belongs to another event store.
    #[error("the key store {path} belongs to another event store; use that store's key store")]
    ForeignKeyStore {
        /// The file (PostgreSQL: the server, schema and table).
        path: PathBuf,
    },
    /// Retry: the key store could not be read or written just now (busy, disk full).
    #[error("key store {path}: {source}")]
    KeyStoreIo {
        /// The file (or `memory`).
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// Retry: the database holding the key store (PostgreSQL) could not be reached or
    /// refused a statement just now.
    #[error("key store {place}: {reason}")]
    KeyDatabase {
        /// The server (without password), schema and table.
        place: String,
        /// The driver's message.
        reason: String,
    },
    /// Fatal: the log references a data key the key store has never had.
    #[error("the key store has no data key {key_id} (the log references it)")]
    UnknownKey {
        /// The key id.
        key_id: String,
    },
    /// Fatal: a sealed contact does not open under its key (the stored bytes were altered).
    #[error("the sealed contact of case {case_id} does not open under its key: it was altered")]
    ContactUnreadable {
        /// The case.
        case_id: caseflow_domain::CaseId,
    },
    /// Caller error: a store URL has no key store next to it; configure one.
    #[error(
        "this store has no default key store: configure one (KeyStoreConfig::SqliteFile) to store named reporters"
    )]
    NoKeyStoreConfigured,
    /// Fatal: the AEAD refused an operation that cannot fail on valid inputs.
    #[error("encryption failed: {0}")]
    Crypto(&'static str),
}

impl KeyError {
    /// Whether the caller (or operator configuration) must fix something.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            KeyError::MasterKeyMissing
                | KeyError::MasterKeyMalformed { .. }
                | KeyError::MasterKeyFile { .. }
                | KeyError::WrongMasterKey { .. }
                | KeyError::NoKeyStoreConfigured
        )
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            KeyError::KeyStoreIo { .. } | KeyError::KeyDatabase { .. }
        )
    }
}
