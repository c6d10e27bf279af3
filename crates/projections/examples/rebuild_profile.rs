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

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use caseflow_projections::{ProjectionRunner, StandardProjections};
use caseflow_store::{EventStore, SqliteOptions, SqliteStore};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: rebuild_profile <sqlite event log>");
        std::process::exit(2);
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
        let applied = runner.catch_up().await.expect("rebuild");
        eprintln!("applied {applied} events");
    });
}
