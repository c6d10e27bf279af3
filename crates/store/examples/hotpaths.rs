//! A small driver for instruction-count profiling of the store's hot paths (the machine is
//! shared, so wall-clock numbers are noisy; `valgrind --tool=callgrind` counts are not).
//!
//! `cargo build --release -p caseflow-store --example hotpaths`, then e.g.
//! `valgrind --tool=callgrind target/release/examples/hotpaths memory_append 20000` and
//! the same with 40000: the difference of the two totals divided by 20000 is the
//! instruction count of one append. Modes: `memory_append N` (64 tasks, one event per
//! append, as the `append/memory/64` bench), `sqlite_read_stream N` (N reads of one
//! 20-event stream), `read_all_decode N` (N events read in batches of 1000 from SQLite and
//! decoded with serde_json; N ≤ 100,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, SqliteOptions,
    SqliteStore,
};
use chrono::{TimeZone, Utc};
use serde::Deserialize;
use uuid::Uuid;

static IDS: AtomicU64 = AtomicU64::new(1);

fn next_id() -> Uuid {
    Uuid::from_u64_pair(
        0x0190_0000_0000_7000,
        0x8000_0000_0000_0000 | IDS.fetch_add(1, Ordering::Relaxed),
    )
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: next_id(),
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
            command_id: Some(next_id()),
            correlation_id: Some(next_id()),
            causation_id: None,
        },
    }
}

fn req(stream: &str, version: u64, n: u64) -> AppendRequest {
    AppendRequest {
        stream_id: stream.into(),
        expected: ExpectedVersion::Exact(version),
        events: vec![event(n)],
        recorded_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
        command_id: None,
    }
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Payload {
    case_id: String,
    channel: String,
    kind: String,
    category: String,
    locality: String,
    village: String,
    due_at: String,
    n: u64,
}

/// 2,000 streams of 20 events, interleaved round by round as in the bench.
async fn fill(store: &Arc<dyn EventStore>, streams: u64) {
    for version in 0..20u64 {
        let mut joins = Vec::new();
        for s in 0..streams {
            let store = store.clone();
            joins.push(tokio::spawn(async move {
                store
                    .append(req(&format!("case-{s}"), version, s))
                    .await
                    .unwrap();
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("memory_append");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        match mode {
            "memory_append" => {
                let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
                let writers = 64u64;
                let work: Vec<Vec<AppendRequest>> = (0..writers)
                    .map(|w| {
                        (0..n / writers)
                            .map(|v| req(&format!("case-{w}"), v, v))
                            .collect()
                    })
                    .collect();
                let mut joins = Vec::new();
                for requests in work {
                    let store = store.clone();
                    joins.push(tokio::spawn(async move {
                        for r in requests {
                            store.append(r).await.unwrap();
                        }
                    }));
                }
                for j in joins {
                    j.await.unwrap();
                }
            }
            "sqlite_read_stream" | "read_all_decode" => {
                let dir = tempfile::tempdir().unwrap();
                let store: Arc<dyn EventStore> = Arc::new(
                    SqliteStore::open(dir.path().join("s.db"), SqliteOptions::normal()).unwrap(),
                );
                let streams = 2_000;
                fill(&store, streams).await;
                if mode == "sqlite_read_stream" {
                    let mut s = 0;
                    for _ in 0..n {
                        s = (s + 7919) % streams;
                        let events = store
                            .read_stream(&format!("case-{s}"), 1, 20)
                            .await
                            .unwrap();
                        assert_eq!(events.len(), 20);
                    }
                } else {
                    let mut from = 1;
                    let mut decoded = 0u64;
                    while from <= n {
                        let batch = store.read_all(from, 1000).await.unwrap();
                        let Some(last) = batch.last() else { break };
                        from = last.position + 1;
                        for e in &batch {
                            let p: Payload = serde_json::from_slice(&e.payload).unwrap();
                            decoded += p.n & 1;
                        }
                    }
                    assert!(decoded > 0);
                }
            }
            other => panic!("unknown mode {other}"),
        }
    });
}
