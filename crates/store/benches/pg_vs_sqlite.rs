//! PostgreSQL next to SQLite FULL in one run (feature `postgres`, server in
//! `CASEFLOW_TEST_POSTGRES`): single-event appends from 1 and 64 concurrent writers in one
//! process, each for `CASEFLOW_BENCH_SECS` (default 5) seconds, on a fresh schema / file.
//! `cargo bench -p caseflow-store --features postgres --bench pg_vs_sqlite`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use caseflow_store::postgres::PostgresStore;
use caseflow_store::postgres::testing::TempSchema;
use caseflow_store::{EventStore, ExpectedVersion, SqliteOptions, SqliteStore};

async fn appends_per_second(store: Arc<dyn EventStore>, writers: usize, secs: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let request = caseflow_store::contract::request(
                        &format!("bench-{w}-{}", n % 8),
                        ExpectedVersion::Any,
                        1,
                    );
                    store.append(request).await.expect("append");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let secs: u64 = std::env::var("CASEFLOW_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("| writers | SQLite FULL ev/s | PostgreSQL ev/s | PostgreSQL / SQLite |");
        println!("|---|---|---|---|");
        for writers in [1usize, 64] {
            let dir = tempfile::tempdir().expect("tempdir");
            let sqlite: Arc<dyn EventStore> = Arc::new(
                SqliteStore::open(dir.path().join("bench.db"), SqliteOptions::default())
                    .expect("sqlite"),
            );
            let s = appends_per_second(sqlite, writers, secs).await;
            let schema = TempSchema::new();
            let pg: Arc<dyn EventStore> = Arc::new(
                PostgresStore::connect_str(&schema.url(""))
                    .await
                    .expect("postgres"),
            );
            let p = appends_per_second(Arc::clone(&pg), writers, secs).await;
            drop(pg);
            println!("| {writers} | {s:.0} | {p:.0} | {:.2} |", p / s);
        }
    });
}
