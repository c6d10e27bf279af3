//! Record decoding: the first byte picks a type name and schema version, the rest is the
//! payload. Proptest twin: crates/projections/tests/hostile_records.rs.
#![no_main]

use caseflow_domain::CaseEvent;
use caseflow_store::{Metadata, RecordedEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let types = CaseEvent::SCHEMA_VERSIONS;
    let (event_type, current) = types[usize::from(pick) % types.len()];
    let schema_version = if pick & 0x80 == 0 { current } else { 1 };
    let record = RecordedEvent {
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
    };
    let _ = caseflow_projections::decode(&record);
});
