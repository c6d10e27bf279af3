//! Merkle log benchmarks at one million records: `cargo bench -p caseflow-store --bench tree`.
//!
//! One SQLite store of 1,000,000 records (~230-byte payloads, 20-event streams interleaved
//! 64 at a time) is built once, outside every timed region. Then:
//! - `tree_1m/verify_chains`: `verify_all`, every stream's hash chain (throughput = events/s);
//! - `tree_1m/verify_tree`: `tree::verify_tree`, every leaf recomputed from the record's
//!   fields and compared with the stored one, then sizes and roots (events/s);
//! - `tree_1m/verify_log`: `EventStore::verify_log`, both of the above as `caseflow verify`
//!   asks for them (SQLite: one pass of the log); `verify_log_two_walks`: the two walks one
//!   after the other, which is what it ran before (events/s);
//! - `tree_1m/inclusion_make` / `inclusion_check`: one inclusion proof at a pseudo-random
//!   position, made from the stored nodes / checked against the root;
//! - `tree_1m/consistency_make` / `consistency_check`: from a pseudo-random older size;
//! - `tree_1m/anchor`: read the head and sign it with Ed25519 (what `caseflow anchor` does
//!   after opening the store).

use std::time::Duration;

use caseflow_store::tree::{
    KeyPair, LogVerification, leaf_of, verify_consistency, verify_inclusion, verify_tree,
};
use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, SqliteOptions, SqliteStore,
};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

const RECORDS: u64 = 1_000_000;
const STREAM_LEN: u64 = 20;
const INTERLEAVE: u64 = 64;

fn payload(n: u64) -> Vec<u8> {
    format!(
        "{{\"case_id\":\"0190a3b4-5c6d-7e8f-9a0b-{n:012x}\",\"channel\":\"hotline\",\
         \"kind\":\"complaint\",\"category\":\"land-use\",\"locality\":\"loc-zhongshan\",\
         \"village\":\"vil-wenhuagong\",\"due_at\":\"2026-03-01T09:00:00Z\",\"n\":{n}}}"
    )
    .into_bytes()
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::from_u64_pair(0x0190_0000_0000_7000, 0x8000_0000_0000_0000 | n),
        event_type: "CaseReported".into(),
        schema_version: 1,
        payload: payload(n).into(),
        metadata: Metadata {
            actor: "room-1/clerk".into(),
            command_id: None,
            correlation_id: Some(Uuid::from_u64_pair(1, n)),
            causation_id: None,
        },
    }
}

/// Builds the million-record store: rounds of 64 streams, each getting 5 events per
/// request, so streams interleave in the log as cases do.
async fn build(store: &SqliteStore) {
    let mut n = 0u64;
    let mut round = 0u64;
    while n < RECORDS {
        let mut pending = Vec::new();
        for s in 0..INTERLEAVE {
            for chunk in 0..STREAM_LEN / 5 {
                if n >= RECORDS {
                    break;
                }
                let events: Vec<NewEvent> = (0..5).map(|i| event(n + i)).collect();
                n += 5;
                let stream = format!("case-{round}-{s}");
                pending.push((stream, chunk * 5, events));
            }
        }
        // Requests of one stream go in order; streams of a round commit together.
        for chunk in 0..STREAM_LEN / 5 {
            let futures: Vec<_> = pending
                .iter()
                .filter(|(_, v, _)| *v == chunk * 5)
                .map(|(stream, v, events)| {
                    store.append(AppendRequest {
                        stream_id: stream.clone(),
                        expected: ExpectedVersion::Exact(*v),
                        events: events.clone(),
                        recorded_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
                        command_id: None,
                    })
                })
                .collect();
            for r in futures::future::join_all(futures).await {
                r.expect("append");
            }
        }
        round += 1;
    }
}

/// A cheap deterministic sequence of positions (no RNG dependency in the bench).
fn spread(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % n + 1
}

fn tree_1m(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tree.db"), SqliteOptions::normal()).unwrap();
    let started = std::time::Instant::now();
    rt.block_on(build(&store));
    let n = rt.block_on(store.head_position()).unwrap();
    eprintln!("built {n} records in {:.1?}", started.elapsed());
    let head = rt.block_on(store.tree_head()).unwrap();
    let key = KeyPair::from_seed([42u8; 32]);

    let mut group = c.benchmark_group("tree_1m");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(n));
    group.bench_function("verify_chains", |b| {
        b.iter(|| assert!(rt.block_on(store.verify_all()).unwrap().is_intact()))
    });
    group.bench_function("verify_tree", |b| {
        b.iter(|| assert!(rt.block_on(verify_tree(&store)).unwrap().is_intact()))
    });
    group.bench_function("verify_log", |b| {
        b.iter(|| {
            let checked = rt.block_on(store.verify_log(None));
            assert!(checked.chains.unwrap().is_intact() && checked.tree.unwrap().is_intact())
        })
    });
    group.bench_function("verify_log_two_walks", |b| {
        b.iter(|| {
            let checked = rt.block_on(LogVerification::in_two_walks(&store, None));
            assert!(checked.chains.unwrap().is_intact() && checked.tree.unwrap().is_intact())
        })
    });

    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    let mut i = 0u64;
    group.bench_function("inclusion_make", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(store.inclusion_proof(spread(i, n), n)).unwrap()
        })
    });
    let samples: Vec<_> = (0..256u64)
        .map(|k| {
            let p = spread(k, n);
            let record = rt.block_on(store.read_all(p, 1)).unwrap().remove(0);
            let proof = rt.block_on(store.inclusion_proof(p, n)).unwrap();
            (leaf_of(&record), proof)
        })
        .collect();
    let mut k = 0usize;
    group.bench_function("inclusion_check", |b| {
        b.iter(|| {
            k = (k + 1) % samples.len();
            let (leaf, proof) = &samples[k];
            verify_inclusion(proof, leaf, &head.root_hash).unwrap()
        })
    });
    group.bench_function("consistency_make", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(store.consistency_proof(spread(i, n), n))
                .unwrap()
        })
    });
    let old = rt.block_on(store.tree_head_at(n / 3 + 7)).unwrap();
    let proof = rt
        .block_on(store.consistency_proof(old.tree_size, n))
        .unwrap();
    group.bench_function("consistency_check", |b| {
        b.iter(|| verify_consistency(&proof, &old.root_hash, &head.root_hash).unwrap())
    });
    group.bench_function("anchor", |b| {
        b.iter(|| {
            let head = rt.block_on(store.tree_head()).unwrap();
            key.sign(head, Utc.timestamp_opt(1_800_000_000, 0).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, tree_1m);
criterion_main!(benches);
