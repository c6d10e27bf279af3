//! Runs on the real engine: determinism, store equivalence, verification and to-do lists.

use std::collections::HashSet;
use std::path::PathBuf;

use caseflow::domain::Level;
use caseflow_sim::district::DistrictChoice;
use caseflow_sim::engine::{EngineOptions, StoreChoice, run_on_engine};
use caseflow_sim::{Scenario, Summary, run_once};

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
    let master = caseflow::MasterKey::generate();
    let memory = run_on_engine(&s, 5, &EngineOptions::default())
        .await
        .unwrap();
    let sqlite = run_on_engine(
        &s,
        5,
        &EngineOptions {
            store: StoreChoice::sqlite(&db),
            master_key: Some(master.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(memory.summary.digest, sqlite.summary.digest);
    assert_eq!(memory.summary.engine_events, sqlite.summary.engine_events);
    drop(sqlite);
    // Reopen the file as the other verbs do and check every chain.
    let district = caseflow_sim::district::build(&s, &DistrictChoice::Scenario).unwrap();
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
            store: StoreChoice::sqlite(db),
            master_key: Some(master),
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

/// The summary without what only an engine-driven run has (the log's digest and size, the
/// engine watcher's count).
fn model_part(s: &Summary) -> Summary {
    Summary {
        digest: None,
        engine_events: None,
        engine_urgings: None,
        ..s.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_driven_run_reports_the_same_kpis_as_the_model_only_run() {
    // Both modes take every step through the same domain rules on the same district; the
    // engine adds the log and its own deadline watcher, which must urge exactly what the
    // model's watcher urged. So every KPI is identical, not merely close. Tight limits make
    // the watchers urge and escalate.
    let mut s = quarter();
    for (limit, days) in [
        ("rectification_plan_days", 1),
        ("mass_demand_days", 3),
        ("review_days", 2),
    ] {
        s.time_limits.insert(limit.into(), days);
    }
    let engine = run_on_engine(&s, 31, &EngineOptions::default())
        .await
        .unwrap();
    let model = run_once(&s, 31).unwrap();
    assert_eq!(model_part(&engine.summary), model_part(&model));
    let urged: u64 = engine.summary.urgings();
    assert!(urged > 10, "the quarter misses some time limits: {urged}");
    let escalated: u64 = engine.summary.deadlines.iter().map(|d| d.escalated).sum();
    assert!(escalated > 0, "and some stay missed after urging");
    assert_eq!(engine.summary.engine_urgings, Some(engine.urgings));
    assert_eq!(engine.summary.steps, model.steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_s_own_organisation_is_the_one_the_engine_runs_with() {
    // Issue 17's M/M/3 case: one room with three people. Both modes see exactly that room.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/mmc.toml");
    let mut s = Scenario::from_path(&path).unwrap();
    s.simulation.horizon_days = 20;
    s.simulation.warmup_days = 2;
    let run = run_on_engine(&s, 7, &EngineOptions::default())
        .await
        .unwrap();
    let org = &run.engine.district().org;
    assert_eq!(org.units_at(Level::Room).count(), 1);
    let room = run
        .summary
        .units
        .iter()
        .find(|u| u.name == "room-1")
        .unwrap();
    assert_eq!(room.staff, 3);
    assert!(
        room.wait_mean_hours > 0.3,
        "three people at ρ = 0.8 queue: {room:?}"
    );
    let model = run_once(&s, 7).unwrap();
    assert_eq!(model_part(&run.summary), model_part(&model));
}
