//! Record decoding never panics on hostile input: any type name, any schema version and any
//! payload bytes — random, or a real payload with bytes flipped, cut or inserted — decode to
//! an event or to a typed `DecodeError`. (`fuzz/fuzz_targets/decode_record.rs` runs the same
//! body under libFuzzer.)

mod support;

use caseflow_domain::CaseEvent;
use caseflow_projections::decode;
use caseflow_store::{EventStore, Metadata, RecordedEvent};
use proptest::prelude::*;
use support::HistoryGen;

fn record(event_type: &str, schema_version: u32, payload: Vec<u8>) -> RecordedEvent {
    RecordedEvent {
        event_id: uuid::Uuid::from_u128(1),
        stream_id: "case-00000000-0000-0000-0000-000000000001".into(),
        version: 1,
        position: 1,
        recorded_at: chrono::DateTime::UNIX_EPOCH,
        event_type: event_type.into(),
        schema_version,
        payload,
        metadata: Metadata::default(),
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}

/// Real records of every kind a history writes (the seeds of the mutations).
fn real_records() -> &'static [RecordedEvent] {
    static RECORDS: std::sync::OnceLock<Vec<RecordedEvent>> = std::sync::OnceLock::new();
    RECORDS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let store = caseflow_store::MemoryStore::new();
            let mut g = HistoryGen::new(7);
            g.append(&store, 200, support::seeded(7)).await;
            store.read_all(1, 10_000).await.expect("read")
        })
    })
}

fn type_name() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..CaseEvent::SCHEMA_VERSIONS.len())
            .prop_map(|i| CaseEvent::SCHEMA_VERSIONS[i].0.to_owned()),
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_any_type_version_and_payload_never_panics(
        event_type in type_name(),
        schema_version in prop_oneof![0u32..6, any::<u32>()],
        payload in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "\\PC{0,200}".prop_map(String::into_bytes),
        ],
    ) {
        let _ = decode(&record(&event_type, schema_version, payload));
    }

    #[test]
    fn decoding_a_real_payload_with_changed_bytes_never_panics(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        older in any::<bool>(),
    ) {
        let seed = pick.get(real_records());
        let mut payload = seed.payload.clone();
        for (at, byte, kind) in edits {
            let i = at.index(payload.len().max(1));
            match kind {
                0 if !payload.is_empty() => {
                    let last = payload.len() - 1;
                    payload[i.min(last)] = byte;
                }
                1 => payload.truncate(i),
                _ => payload.insert(i.min(payload.len()), byte),
            }
        }
        // The current version decodes directly; version 1 goes through the upcasters.
        let version = if older { 1 } else { seed.schema_version };
        let _ = decode(&record(&seed.event_type, version, payload));
    }
}
