//! A fixed amount of memory-store append work, for counting instructions where wall time is
//! too noisy: 64 writers, each appending single-event requests to its own stream, on one
//! thread so that the count repeats exactly.
//!
//! ```text
//! cargo build --release -p caseflow-store --example append_profile
//! valgrind --tool=callgrind target/release/examples/append_profile [events]
//! ```

use caseflow_store::{AppendRequest, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

const WRITERS: u64 = 64;

fn event(writer: u64, version: u64) -> NewEvent {
    let n = writer << 32 | version;
    NewEvent {
        event_id: Uuid::from_u64_pair(0x0190_0000_0000_7000, 0x8000_0000_0000_0000 | n),
        event_type: "CaseReported".into(),
        schema_version: 1,
        payload: format!(
            "{{\"case_id\":\"0190a3b4-5c6d-7e8f-9a0b-{n:012x}\",\"channel\":\"hotline\",\
             \"kind\":\"complaint\",\"category\":\"land-use\",\"locality\":\"loc-zhongshan\",\
             \"village\":\"vil-wenhuagong\",\"due_at\":\"2026-03-01T09:00:00Z\",\"n\":{n}}}"
        )
        .into_bytes()
        .into(),
        metadata: Metadata {
            actor: "room-1/clerk".into(),
            command_id: None,
            correlation_id: None,
            causation_id: None,
        },
    }
}

fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let per_writer = events / WRITERS;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = MemoryStore::new();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..WRITERS {
            let store = store.clone();
            tasks.spawn(async move {
                for version in 0..per_writer {
                    let request = AppendRequest {
                        stream_id: format!("case-{writer}"),
                        expected: ExpectedVersion::Exact(version),
                        events: vec![event(writer, version + 1)],
                        recorded_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
                        command_id: None,
                    };
                    store.append(request).await.expect("append");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("writer");
        }
        let head = store.head_position().await.expect("head");
        // The Merkle tree over every record is part of the work, wherever a store does it.
        let tree = store.stored_tree_size().await.expect("tree");
        println!("{head} events appended by {WRITERS} writers; tree of {tree} leaves");
    });
}
