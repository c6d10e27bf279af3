//! caseflow-store: the durable heart of Caseflow.
//!
//! An append-only store of versioned records (type, schema version, JSON payload,
//! metadata), grouped in streams with a per-stream SHA-256 hash chain, plus one global log
//! with gap-free positions. It knows nothing of the case domain.
//!
//! Backends: [`MemoryStore`] (tests, simulations), [`SqliteStore`] (embedded default,
//! WAL, group commit) and, with the `postgres` feature, `postgres::PostgresStore` (several
//! processes on one shared database). Every backend passes the same [`contract`] suite.
//!
//! ```
//! use caseflow_store::{AppendRequest, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent};
//! use chrono::{TimeZone, Utc};
//! use uuid::Uuid;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let request = AppendRequest {
//!     stream_id: "case-1".into(),
//!     expected: ExpectedVersion::NoStream,
//!     events: vec![NewEvent {
//!         event_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
//!         event_type: "CaseReported".into(),
//!         schema_version: 1,
//!         // Bytes from outside are parsed as JSON before they are stored; the engine's own
//!         // events come as `Payload::serialize(&body)` and are not parsed again.
//!         payload: br#"{"channel":"hotline"}"#.to_vec().into(),
//!         metadata: Metadata { actor: "room-1/clerk".into(), ..Metadata::default() },
//!     }],
//!     recorded_at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
//!     command_id: Some(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002)),
//! };
//! let outcome = store.append(request.clone()).await?;
//! assert_eq!((outcome.first_version, outcome.first_position), (1, 1));
//! // Retrying the same command is answered from the ledger and writes nothing.
//! assert!(store.append(request).await?.deduplicated);
//! let events = store.read_stream("case-1", 1, 100).await?;
//! assert_eq!(events[0].event_type, "CaseReported");
//! assert!(store.verify_all().await?.is_intact());
//! # Ok::<(), caseflow_store::StoreError>(())
//! # }).unwrap();
//! ```

pub mod contract;
pub mod error;
pub mod hash;
#[cfg(feature = "kurrentdb")]
pub mod kurrentdb;
pub mod ledger;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
mod sqlite_ledger;
pub mod store;
pub mod tree;
pub mod types;
pub mod upcast;

pub use error::StoreError;
pub use hash::GENESIS_HASH;
pub use ledger::{LedgerCheck, LedgerFinding, LedgerRow};
pub use memory::MemoryStore;
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use store::{EventStore, Leadership, LogSource, Subscription};
pub use types::{
    AppendOutcome, AppendRequest, BrokenLink, ExpectedVersion, LinkFault, Metadata, NewEvent,
    Payload, RecordedEvent, VerifyReport,
};
pub use upcast::{FnUpcaster, UpcastRecord, Upcaster, UpcasterChain};
