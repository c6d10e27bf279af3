//! caseflow-store: the durable heart of Caseflow.
//!
//! An append-only store of versioned records (type, schema version, JSON payload,
//! metadata), grouped in streams with a per-stream SHA-256 hash chain, plus one global log
//! with gap-free positions. It knows nothing of the case domain.
//!
//! Backends: [`MemoryStore`] (tests, simulations) and [`SqliteStore`] (embedded default,
//! WAL, group commit). Every backend passes the same [`contract`] suite.

pub mod contract;
pub mod error;
pub mod hash;
#[cfg(feature = "kurrentdb")]
pub mod kurrentdb;
pub mod memory;
pub mod sqlite;
pub mod store;
pub mod types;
pub mod upcast;

pub use error::StoreError;
pub use hash::GENESIS_HASH;
pub use memory::MemoryStore;
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use store::{EventStore, LogSource, Subscription};
pub use types::{
    AppendOutcome, AppendRequest, BrokenLink, ExpectedVersion, LinkFault, Metadata, NewEvent,
    RecordedEvent, VerifyReport,
};
pub use upcast::{FnUpcaster, UpcastRecord, Upcaster, UpcasterChain};
