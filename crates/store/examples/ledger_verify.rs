//! `verify_all` with the command-id ledger check on a store where every record has its own
//! command (the ledger's worst case): `cargo run --release -p caseflow-store --example
//! ledger_verify -- 1000000 /tmp/ledger-verify.db` (builds the store once, 64 concurrent
//! writers, then verifies it three times read-only). Figures: docs/benchmarks.md.

use std::time::Instant;

use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, SqliteOptions, SqliteStore,
};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let path = std::path::PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/tmp/ledger-verify.db".to_owned()),
    );
    if !path.exists() {
        let store = std::sync::Arc::new(SqliteStore::open(&path, SqliteOptions::normal()).unwrap());
        let t = Instant::now();
        let mut joins = Vec::new();
        for w in 0..64u64 {
            let s = store.clone();
            joins.push(tokio::spawn(async move {
                for i in 0..n / 64 {
                    let k = w * 1_000_000 + i;
                    let cid = uuid::Uuid::from_u64_pair(7, k);
                    s.append(AppendRequest {
                        stream_id: format!("case-{}", k / 20),
                        expected: ExpectedVersion::Any,
                        events: vec![NewEvent {
                            event_id: uuid::Uuid::from_u64_pair(9, k),
                            event_type: "CaseReported".into(),
                            schema_version: 1,
                            payload: format!("{{\"n\":{k},\"text\":\"some payload of a realistic size for a case event here\"}}").into_bytes().into(),
                            metadata: Metadata { actor: "room-1/clerk".into(), command_id: Some(cid), correlation_id: Some(cid), causation_id: None },
                        }],
                        recorded_at: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
                        command_id: Some(cid),
                    }).await.unwrap();
                }
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        println!(
            "built {} events in {:?}",
            store.head_position().await.unwrap(),
            t.elapsed()
        );
    }
    let store = SqliteStore::open_read_only(&path).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let r = store.verify_all().await.unwrap();
        let e = t.elapsed();
        println!(
            "verify_all: {} events, {} ledger rows, intact {} in {:?} = {:.0} events/s",
            r.events_checked,
            r.ledger_rows_checked,
            r.is_intact(),
            e,
            r.events_checked as f64 / e.as_secs_f64()
        );
    }
}
