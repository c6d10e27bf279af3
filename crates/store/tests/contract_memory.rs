//! The backend contract suite on the in-memory store.

use std::sync::Arc;

use caseflow_store::contract::{Harness, Tamper};
use caseflow_store::{EventStore, MemoryStore};

async fn fresh() -> Harness {
    let store = MemoryStore::new();
    let handle = store.clone();
    Harness {
        store: Arc::new(store) as Arc<dyn EventStore>,
        tamper: Some(Box::new(move |position, tamper| {
            let changed = handle.tamper(position, |e| match tamper {
                Tamper::PayloadByte => e.payload[1] ^= 0x20,
                Tamper::EventType => e.event_type.push('X'),
                Tamper::SchemaVersion => e.schema_version += 1,
                Tamper::Actor => e.metadata.actor.push('!'),
                Tamper::RecordedAt => {
                    e.recorded_at += chrono::Duration::nanoseconds(1);
                }
                Tamper::EventId => e.event_id = uuid::Uuid::from_u128(e.event_id.as_u128() ^ 1),
                Tamper::Hash => e.hash[0] ^= 1,
                Tamper::PrevHash => e.prev_hash[31] ^= 1,
            });
            assert!(changed, "no record at position {position}");
        })),
        guard: None,
    }
}

caseflow_store::contract_tests!(fresh);
