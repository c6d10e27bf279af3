//! Store benchmarks: `cargo bench -p caseflow-store`.
//!
//! - `append/<backend>/<writers>`: N concurrent tasks, each appending single-event requests
//!   to its own stream with an exact expected version (throughput = events/s);
//!   `memory_engine_payloads` gives the memory store payloads serialised as the engine's are
//!   (the store does not parse them again), `memory` bytes from outside (parsed);
//! - `ceiling/<sync>`: plain rusqlite batched INSERTs (64 rows per transaction) of the same
//!   rows into the same table and indexes, no store logic — the raw ceiling;
//! - `read_stream_20/<backend>`: read one 20-event stream;
//! - `read_all_decode/<backend>`: read the whole log in batches of 1000 and decode each
//!   payload with serde_json (throughput = events/s).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, Payload,
    SqliteOptions, SqliteStore, Synchronous,
};
use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use uuid::Uuid;

static IDS: AtomicU64 = AtomicU64::new(1);

/// Time-ordered ids like UUIDv7 (monotonic counter in the low half).
fn next_id() -> Uuid {
    Uuid::from_u64_pair(
        0x0190_0000_0000_7000,
        0x8000_0000_0000_0000 | IDS.fetch_add(1, Ordering::Relaxed),
    )
}

/// A payload shaped like a real case event (~230 bytes).
fn payload(n: u64) -> Vec<u8> {
    format!(
        "{{\"case_id\":\"0190a3b4-5c6d-7e8f-9a0b-{n:012x}\",\"channel\":\"hotline\",\
         \"kind\":\"complaint\",\"category\":\"land-use\",\"locality\":\"loc-zhongshan\",\
         \"village\":\"vil-wenhuagong\",\"due_at\":\"2026-03-01T09:00:00Z\",\"n\":{n}}}"
    )
    .into_bytes()
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BenchPayload {
    case_id: String,
    channel: String,
    kind: String,
    category: String,
    locality: String,
    village: String,
    due_at: String,
    n: u64,
}

fn event(n: u64) -> NewEvent {
    event_with(payload(n).into())
}

/// The same event with its payload serialised by serde_json, as the engine writes every
/// event: the store does not parse such a payload again.
fn engine_event(n: u64) -> NewEvent {
    let value: serde_json::Value = serde_json::from_slice(&payload(n)).unwrap();
    event_with(Payload::serialize(&value).unwrap())
}

fn event_with(payload: Payload) -> NewEvent {
    NewEvent {
        event_id: next_id(),
        event_type: "CaseReported".into(),
        schema_version: 1,
        payload,
        metadata: Metadata {
            actor: "room-1/clerk".into(),
            command_id: Some(next_id()),
            correlation_id: Some(next_id()),
            causation_id: None,
        },
    }
}

fn req(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream_id: stream.into(),
        expected,
        events,
        recorded_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
        command_id: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

enum Backend {
    Memory,
    /// The memory store fed the engine's kind of payload (serialised, not parsed again).
    MemoryEnginePayloads,
    Sqlite(Synchronous),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::MemoryEnginePayloads => "memory_engine_payloads",
            Backend::Sqlite(Synchronous::Full) => "sqlite_full",
            Backend::Sqlite(Synchronous::Normal) => "sqlite_normal",
        }
    }

    fn open(&self, dir: &std::path::Path) -> Arc<dyn EventStore> {
        match self {
            Backend::Memory | Backend::MemoryEnginePayloads => Arc::new(MemoryStore::new()),
            Backend::Sqlite(sync) => {
                let options = SqliteOptions {
                    synchronous: *sync,
                    ..SqliteOptions::default()
                };
                Arc::new(
                    SqliteStore::open(dir.join(format!("{}.db", self.name())), options).unwrap(),
                )
            }
        }
    }
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for backend in [
        Backend::Memory,
        Backend::MemoryEnginePayloads,
        Backend::Sqlite(Synchronous::Full),
        Backend::Sqlite(Synchronous::Normal),
    ] {
        for writers in [1u64, 8, 64] {
            group.bench_function(BenchmarkId::new(backend.name(), writers), |b| {
                b.iter_custom(|iters| {
                    // A fresh store per sample keeps memory and disk use bounded; opening
                    // and closing it are outside the timed region.
                    let dir = tempfile::tempdir().unwrap();
                    let store = backend.open(dir.path());
                    let r = 0;
                    let engine_payloads = matches!(backend, Backend::MemoryEnginePayloads);
                    rt.block_on(async move {
                        let per_writer = iters.div_ceil(writers);
                        // Requests are built before the clock starts, as the ceiling's rows are.
                        let work: Vec<Vec<AppendRequest>> = (0..writers)
                            .map(|w| {
                                let stream = format!("case-{r}-{w}");
                                (0..per_writer)
                                    .map(|v| {
                                        let event = if engine_payloads {
                                            engine_event(v)
                                        } else {
                                            event(v)
                                        };
                                        req(&stream, ExpectedVersion::Exact(v), vec![event])
                                    })
                                    .collect()
                            })
                            .collect();
                        let start = Instant::now();
                        let mut joins = Vec::new();
                        for requests in work {
                            let store = store.clone();
                            joins.push(tokio::spawn(async move {
                                for request in requests {
                                    store.append(request).await.unwrap();
                                }
                            }));
                        }
                        for j in joins {
                            j.await.unwrap();
                        }
                        // Report time per event actually written.
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (per_writer * writers) as f64)
                    })
                });
            });
        }
    }
    group.finish();
}

const CEILING_BATCH: u64 = 64;

/// Plain rusqlite: batched INSERTs of the same rows, same table and indexes, no store logic.
fn ceiling(c: &mut Criterion) {
    let mut group = c.benchmark_group("ceiling");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for (name, sync) in [("sqlite_full", "FULL"), ("sqlite_normal", "NORMAL")] {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .unwrap();
        conn.pragma_update(None, "synchronous", sync).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (position INTEGER PRIMARY KEY, stream_key INTEGER NOT NULL,
                version INTEGER NOT NULL, event_id BLOB NOT NULL, recorded_at_ns INTEGER NOT NULL,
                event_type TEXT NOT NULL, schema_version INTEGER NOT NULL, payload BLOB NOT NULL,
                actor TEXT NOT NULL, command_id BLOB, correlation_id BLOB, causation_id BLOB,
                prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
             CREATE UNIQUE INDEX events_by_stream ON events (stream_key, version);
             CREATE UNIQUE INDEX events_by_event_id ON events (event_id);",
        )
        .unwrap();
        let mut position = 0i64;
        let mut version = 0i64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // Rows are prepared outside the timed region: the ceiling is SQLite alone.
                let rows: Vec<(NewEvent, i64)> = (0..iters).map(|i| (event(i), (i % CEILING_BATCH) as i64)).collect();
                let start = Instant::now();
                for chunk in rows.chunks(CEILING_BATCH as usize) {
                    let tx = conn.unchecked_transaction().unwrap();
                    {
                        let mut insert = tx
                            .prepare_cached(
                                "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                            )
                            .unwrap();
                        for (e, key) in chunk {
                            position += 1;
                            if *key == 0 {
                                version += 1;
                            }
                            let m = &e.metadata;
                            insert
                                .execute(rusqlite::params![
                                    position,
                                    key,
                                    version,
                                    e.event_id.as_bytes(),
                                    1_800_000_000_000_000_000i64,
                                    e.event_type,
                                    e.schema_version,
                                    e.payload.as_bytes(),
                                    m.actor,
                                    m.command_id.as_ref().map(|u| u.as_bytes()),
                                    m.correlation_id.as_ref().map(|u| u.as_bytes()),
                                    m.causation_id.as_ref().map(|u| u.as_bytes()),
                                    &[0u8; 32][..],
                                    &[1u8; 32][..],
                                ])
                                .unwrap();
                        }
                    }
                    tx.commit().unwrap();
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let total_events = 100_000u64;
    let mut stores = Vec::new();
    for backend in [Backend::Memory, Backend::Sqlite(Synchronous::Normal)] {
        let store = backend.open(dir.path());
        rt.block_on(async {
            // 5,000 streams of 20 events, interleaved as a real log is: one event per stream
            // per round, appended in batches of 100 events across streams.
            let streams = total_events / 20;
            for version in 0..20u64 {
                let mut joins = Vec::new();
                for s in 0..streams {
                    let store = store.clone();
                    joins.push(tokio::spawn(async move {
                        store
                            .append(req(
                                &format!("case-{s}"),
                                ExpectedVersion::Exact(version),
                                vec![event(s)],
                            ))
                            .await
                            .unwrap();
                    }));
                    if joins.len() == 256 {
                        for j in joins.drain(..) {
                            j.await.unwrap();
                        }
                    }
                }
                for j in joins {
                    j.await.unwrap();
                }
            }
        });
        stores.push((backend.name(), store));
    }

    let mut group = c.benchmark_group("read_stream_20");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, store) in &stores {
        let mut s = 0u64;
        group.bench_function(*name, |b| {
            b.iter(|| {
                s = (s + 7919) % (total_events / 20);
                let stream = format!("case-{s}");
                let events = rt.block_on(store.read_stream(&stream, 1, 20)).unwrap();
                assert_eq!(events.len(), 20);
                events
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("read_all_decode");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(total_events));
    for (name, store) in &stores {
        group.bench_function(*name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut from = 1;
                    let mut decoded = 0u64;
                    loop {
                        let batch = store.read_all(from, 1000).await.unwrap();
                        let Some(last) = batch.last() else { break };
                        from = last.position + 1;
                        for e in &batch {
                            let p: BenchPayload = serde_json::from_slice(&e.payload).unwrap();
                            decoded += p.n & 1;
                        }
                    }
                    assert_eq!(from, total_events + 1);
                    decoded
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, append, ceiling, reads);
criterion_main!(benches);
