//! Rebuilds the three standard projections from an existing SQLite event log once, for
//! profiling with instruction counts (wall time on the shared build machine is too noisy to
//! compare small changes). Used for the profiling pass in `docs/benchmarks.md`:
//!
//! ```text
//! # the first 60,000 events of the cached 1M-event bench log
//! B=$CARGO_TARGET_DIR/caseflow-bench
//! sqlite3 $B/projections-1m.sqlite .schema > /tmp/schema.sql
//! sqlite3 $B/small-60k.sqlite < /tmp/schema.sql
//! sqlite3 $B/small-60k.sqlite "ATTACH '$B/projections-1m.sqlite' AS big;
//!   INSERT INTO events SELECT * FROM big.events WHERE position <= 60000;
//!   INSERT INTO streams SELECT * FROM big.streams;
//!   PRAGMA user_version = 1; PRAGMA application_id = 1128680535;"
//! cargo build --release -p caseflow-projections --example rebuild_profile
//! valgrind --tool=callgrind $CARGO_TARGET_DIR/release/examples/rebuild_profile \
//!   $B/small-60k.sqlite
//! ```
//!
//! A second argument stops after that many events of any log, with no copy to cut:
//! `rebuild_profile $B/projections-1m.sqlite 100000` applies the first 100,000 (in batches
//! of the default size, each read and then applied: the read-ahead of `catch_up` is left
//! out, which changes no instruction count that matters, only which thread runs it).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use caseflow_projections::{DEFAULT_BATCH_SIZE, ProjectionRunner, StandardProjections};
use caseflow_store::{EventStore, SqliteOptions, SqliteStore};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: rebuild_profile <sqlite event log> [events]");
        std::process::exit(2);
    };
    let limit: Option<u64> = match std::env::args().nth(2) {
        None => None,
        Some(n) => match n.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                eprintln!("events must be a number, not {n:?}");
                std::process::exit(2);
            }
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let store: Arc<dyn EventStore> =
        Arc::new(SqliteStore::open(&path, SqliteOptions::normal()).expect("open the event log"));
    runtime.block_on(async {
        let mut runner = ProjectionRunner::in_memory(store, support::org());
        let _projections = StandardProjections::register(&mut runner)
            .await
            .expect("register");
        let applied = match limit {
            None => runner.catch_up().await.expect("rebuild"),
            Some(limit) => {
                let mut applied = 0u64;
                while applied < limit {
                    let want = (limit - applied).min(DEFAULT_BATCH_SIZE as u64) as usize;
                    match runner.step(want).await.expect("rebuild") {
                        0 => break,
                        n => applied += n as u64,
                    }
                }
                applied
            }
        };
        eprintln!("applied {applied} events");
    });
}
