//! The one decode path: current records decode directly, older schema versions go through
//! the domain's upcasters, and everything else is a typed error.

mod support;

use caseflow_domain::{CaseEvent, DecodeError, UPCASTERS};
use caseflow_projections::{decode, domain_upcaster_chain};
use caseflow_store::{EventStore, Metadata, RecordedEvent};
use support::HistoryGen;

fn record(event_type: &str, schema_version: u32, payload: &[u8]) -> RecordedEvent {
    RecordedEvent {
        event_id: uuid::Uuid::from_u128(1),
        stream_id: "case-00000000-0000-0000-0000-000000000001".into(),
        version: 1,
        position: 1,
        recorded_at: chrono::DateTime::UNIX_EPOCH,
        event_type: event_type.into(),
        schema_version,
        payload: payload.to_vec(),
        metadata: Metadata::default(),
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}

#[tokio::test]
async fn every_event_a_history_writes_decodes_back_to_itself() {
    let store = caseflow_store::MemoryStore::new();
    let mut g = HistoryGen::new(4);
    g.append(&store, 300, support::seeded(4)).await;
    let records = store.read_all(1, 10_000).await.unwrap();
    assert!(records.len() >= 300);
    for r in &records {
        let event = decode(r).unwrap_or_else(|e| panic!("{}: {e}", r.event_type));
        assert_eq!(event.event_type(), r.event_type);
        assert_eq!(event.to_json(), r.payload, "{}", r.event_type);
    }
}

#[test]
fn the_chain_knows_every_type_at_its_current_version() {
    let chain = domain_upcaster_chain();
    for (event_type, version) in CaseEvent::SCHEMA_VERSIONS {
        assert_eq!(chain.current_version(event_type), Some(*version));
    }
    for step in UPCASTERS {
        let current = CaseEvent::current_schema_version(step.event_type)
            .unwrap_or_else(|| panic!("an upcaster for unknown type {}", step.event_type));
        assert!(
            step.from_version < current,
            "{step:?} reads the current version"
        );
    }
}

#[test]
fn unknown_types_newer_versions_and_bad_payloads_are_typed_errors() {
    assert_eq!(
        decode(&record("CaseExploded", 1, b"{}")),
        Err(DecodeError::UnknownEventType {
            event_type: "CaseExploded".into()
        })
    );
    let newer = CaseEvent::current_schema_version("CaseClosed").unwrap() + 1;
    assert_eq!(
        decode(&record("CaseClosed", newer, b"{}")),
        Err(DecodeError::UnsupportedSchemaVersion {
            event_type: "CaseClosed".into(),
            schema_version: newer
        })
    );
    assert!(matches!(
        decode(&record("CaseClosed", newer, b"not json")),
        Err(DecodeError::InvalidPayload { .. })
    ));
    assert!(matches!(
        decode(&record("CaseClosed", 1, b"{\"case_id\": 3}")),
        Err(DecodeError::InvalidPayload { .. })
    ));
}
