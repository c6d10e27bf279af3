//! Runs on the real engine: determinism, store equivalence, verification and to-do lists.

use std::collections::HashSet;
use std::path::PathBuf;

use caseflow::domain::Level;
use caseflow_sim::Scenario;
use caseflow_sim::engine::{EngineOptions, StoreChoice, run_on_engine};

/// A quarter of the district year, stopped while cases are still open (no drain), so the
/// to-do lists at the end are not empty.
fn quarter() -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios/district-year.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("horizon_days = 365", "horizon_days = 100")
        .replace("drain_days = 90", "drain_days = 0")
        .replace(
            "batch = { count = 72, from_day = 240, to_day = 270 }",
            "batch = { count = 20, from_day = 80, to_day = 95 }",
        );
    let mut s = Scenario::from_toml_str(&text).unwrap();
    s.base_dir = path.parent().map(|p| p.to_path_buf());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_an_identical_event_log_and_another_seed_does_not() {
    let s = quarter();
    let a = run_on_engine(&s, 11, &EngineOptions::default())
        .await
        .unwrap();
    let b = run_on_engine(&s, 11, &EngineOptions::default())
        .await
        .unwrap();
    let c = run_on_engine(&s, 12, &EngineOptions::default())
        .await
        .unwrap();
    assert!(
        a.summary.engine_events.unwrap() > 500,
        "{:?}",
        a.summary.engine_events
    );
    assert_eq!(a.summary.digest, b.summary.digest);
    assert_eq!(a.summary.engine_events, b.summary.engine_events);
    assert_ne!(a.summary.digest, c.summary.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_run_writes_the_same_events_as_a_memory_run_and_other_verbs_can_open_it() {
    let s = quarter();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.db");
    let memory = run_on_engine(&s, 5, &EngineOptions::default())
        .await
        .unwrap();
    let sqlite = run_on_engine(
        &s,
        5,
        &EngineOptions {
            store: StoreChoice::Sqlite(db.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(memory.summary.digest, sqlite.summary.digest);
    assert_eq!(memory.summary.engine_events, sqlite.summary.engine_events);
    drop(sqlite);
    // Reopen the file as the other verbs do and check every chain.
    let district = caseflow_sim::engine::district_for(&s, None).unwrap();
    let engine = caseflow::Engine::open(caseflow::EngineConfig::sqlite(db.clone(), district))
        .await
        .unwrap();
    let verify = engine.verify().await.unwrap();
    assert!(verify.is_ok(), "{}", verify.to_markdown());
    assert_eq!(verify.events_checked, memory.summary.engine_events.unwrap());
    // A run never overwrites an existing store.
    let again = run_on_engine(
        &s,
        5,
        &EngineOptions {
            store: StoreChoice::Sqlite(db),
            ..Default::default()
        },
    )
    .await;
    assert!(again.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_history_verifies_and_the_todo_lists_match_the_case_states() {
    let s = quarter();
    let run = run_on_engine(&s, 21, &EngineOptions::default())
        .await
        .unwrap();
    let engine = &run.engine;
    let verify = engine.verify().await.unwrap();
    assert!(verify.is_ok(), "{}", verify.to_markdown());
    let now = engine.now();
    let ids = engine.case_ids().await.unwrap();
    assert!(ids.len() as u64 >= run.summary.cases.arrived);
    let mut open = HashSet::new();
    for id in &ids {
        let state = engine.case_state(*id).await.unwrap();
        if state.is_open() {
            open.insert(*id);
        }
    }
    assert!(!open.is_empty(), "the quarter should end with open cases");
    let mut on_lists = HashSet::new();
    for level in [Level::Room, Level::Team, Level::Locality, Level::Village] {
        for item in engine.todo_for_level(level, now).await.unwrap() {
            let state = engine.case_state(item.case.case_id).await.unwrap();
            assert!(
                state.is_open(),
                "closed case {} on a to-do list",
                item.case.case_id
            );
            assert_eq!(
                item.case.stage,
                state.stage(),
                "to-do card stage differs from the case state"
            );
            on_lists.insert(item.case.case_id);
        }
    }
    // Every open case waits on somebody.
    let missing: Vec<_> = open.difference(&on_lists).collect();
    assert!(
        missing.is_empty(),
        "open cases on no to-do list: {missing:?}"
    );
}
