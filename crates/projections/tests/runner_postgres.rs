//! The runner over PostgreSQL (feature `postgres`, server in `CASEFLOW_TEST_POSTGRES`):
//! the event log and the read models both in PostgreSQL, each test on schemas of its own.
//! An instance that restarts resumes from its checkpoint; a crash before a commit neither
//! loses nor double-counts an event.
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;

use caseflow_projections::*;
use caseflow_store::EventStore;
use caseflow_store::postgres::testing::TempSchema;
use caseflow_store::postgres::{PostgresOptions, PostgresStore};
use support::{HistoryGen, org, seeded};

/// A PostgreSQL event store with `n` decisions of a seeded history, and its schema.
async fn store_with(n: usize, seed: u64) -> (Arc<PostgresStore>, HistoryGen, TempSchema) {
    let schema = TempSchema::new();
    let store = Arc::new(
        PostgresStore::connect_str(&schema.url(""))
            .await
            .expect("open the event store"),
    );
    let mut g = HistoryGen::new(seed);
    g.append(store.as_ref(), n, seeded(seed)).await;
    (store, g, schema)
}

/// The read models of one instance, in `<schema>_rm_<instance>`.
async fn read_models(store: &PostgresStore, instance: &str) -> PostgresReadModelStore {
    let schema = format!("{}_rm_{instance}", store.options().schema);
    let options: &PostgresOptions = store.options();
    let pool = PostgresStore::pool_for_schema(options, &schema, 2).expect("pool");
    PostgresReadModelStore::open(pool, &schema)
        .await
        .expect("open the read models")
}

async fn rebuilt(store: Arc<dyn EventStore>) -> StandardProjections {
    let mut runner = ProjectionRunner::in_memory(store, org());
    let p = StandardProjections::register(&mut runner).await.unwrap();
    runner.catch_up().await.unwrap();
    p
}

fn assert_same(a: &StandardProjections, b: &StandardProjections) {
    assert!(
        *a.todo.read().unwrap() == *b.todo.read().unwrap(),
        "to-do models differ"
    );
    assert!(
        *a.stats.read().unwrap() == *b.stats.read().unwrap(),
        "statistics differ"
    );
    assert!(
        *a.timeline.read().unwrap() == *b.timeline.read().unwrap(),
        "timelines differ"
    );
}

/// The read-model schema of `instance`, dropped with the returned value.
fn drop_after(schema: &TempSchema, instance: &str) -> TempSchema {
    TempSchema {
        base_url: schema.base_url.clone(),
        name: format!("{}_rm_{instance}", schema.name),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_models_resume_from_their_checkpoint_after_a_restart() {
    let (store, mut g, schema) = store_with(250, 7).await;
    let _rm = drop_after(&schema, "desk");
    {
        let db = read_models(&store, "desk").await;
        let mut runner =
            ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
        runner.set_batch_size(40);
        StandardProjections::register(&mut runner).await.unwrap();
        runner.catch_up().await.unwrap();
    }
    let head = store.head_position().await.unwrap();
    g.append(store.as_ref(), 100, seeded(77)).await;
    let mut db = read_models(&store, "desk").await;
    assert_eq!(db.checkpoint("todo").await.unwrap(), head);
    let mut runner = ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
    let p = StandardProjections::register(&mut runner).await.unwrap();
    // Loaded, not re-applied: the checkpoint is where the first runner committed.
    assert_eq!(p.todo.checkpoint().unwrap(), head);
    let read = runner.catch_up().await.unwrap();
    assert_eq!(read, store.head_position().await.unwrap() - head);
    assert_same(&p, &rebuilt(store.clone()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_commit_reapplies_the_batch_exactly_once() {
    let (store, _, schema) = store_with(300, 8).await;
    for (i, crash) in [CrashPoint::AfterApply, CrashPoint::BeforeCheckpoint]
        .into_iter()
        .enumerate()
    {
        let instance = format!("crash{i}");
        let _rm = drop_after(&schema, &instance);
        {
            let db = read_models(&store, &instance).await;
            let mut runner =
                ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
            StandardProjections::register(&mut runner).await.unwrap();
            runner.step(120).await.unwrap();
            runner.step_then_crash(90, crash).await.unwrap();
            // The process dies here: the runner and its in-memory models are gone.
        }
        let mut db = read_models(&store, &instance).await;
        assert_eq!(db.checkpoint("stats").await.unwrap(), 120, "{crash:?}");
        let mut runner =
            ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
        let p = StandardProjections::register(&mut runner).await.unwrap();
        assert_eq!(p.stats.checkpoint().unwrap(), 120);
        runner.catch_up().await.unwrap();
        assert_same(&p, &rebuilt(store.clone()).await);
    }
}
