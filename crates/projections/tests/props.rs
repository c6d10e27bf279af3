//! Properties over random valid case histories (made by driving the domain's `decide`):
//!
//! - exactly once: applying the log in random batches, with restarts and simulated crashes
//!   between apply and checkpoint at random points, gives exactly the read models of a full
//!   rebuild — both in memory and as stored in SQLite;
//! - consistency of the to-do lists with the who-acts table: every open case is on exactly
//!   the lists the table names, closed/declined/merged/transferred cases on none, an item is
//!   overdue exactly when its due time is before `now`, and lists are in order.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use caseflow_domain::{Action, Assignee, CaseId, CrossInspectionScope, Level, obligations};
use caseflow_projections::*;
use caseflow_store::{EventStore, MemoryStore};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use support::{HistoryGen, org, seeded};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

async fn rebuilt(store: Arc<dyn EventStore>) -> StandardProjections {
    let mut runner = ProjectionRunner::in_memory(store, org());
    let p = StandardProjections::register(&mut runner).await.unwrap();
    runner.catch_up().await.unwrap();
    p
}

fn same(a: &StandardProjections, b: &StandardProjections) -> Result<(), TestCaseError> {
    let (ta, tb) = (a.todo.read().unwrap(), b.todo.read().unwrap());
    prop_assert!(*ta == *tb, "to-do models differ");
    prop_assert_eq!(ta.check_indexes(), Ok(()));
    prop_assert_eq!(tb.check_indexes(), Ok(()));
    prop_assert!(
        *a.stats.read().unwrap() == *b.stats.read().unwrap(),
        "statistics differ"
    );
    prop_assert!(
        *a.timeline.read().unwrap() == *b.timeline.read().unwrap(),
        "timelines differ"
    );
    Ok(())
}

async fn sqlite_runner(
    store: &Arc<MemoryStore>,
    path: &Path,
) -> (ProjectionRunner, StandardProjections) {
    let db = SqliteReadModelStore::open(path, Durability::Normal).unwrap();
    let mut runner = ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
    let p = StandardProjections::register(&mut runner).await.unwrap();
    (runner, p)
}

/// What the test does at one point of the run.
#[derive(Debug, Clone, Copy)]
enum Move {
    Step(usize),
    CrashAfterApply(usize),
    CrashBeforeCheckpoint(usize),
    Restart,
    Rebuild(u8),
    Append(usize),
}

fn moves() -> impl Strategy<Value = Vec<Move>> {
    let one = prop_oneof![
        6 => (1usize..80).prop_map(Move::Step),
        2 => (1usize..80).prop_map(Move::CrashAfterApply),
        2 => (1usize..80).prop_map(Move::CrashBeforeCheckpoint),
        1 => Just(Move::Restart),
        1 => (0u8..3).prop_map(Move::Rebuild),
        2 => (1usize..40).prop_map(Move::Append),
    ];
    proptest::collection::vec(one, 1..30)
}

const NAMES: [&str; 3] = ["todo", "stats", "timeline"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_stepping_with_crashes_and_restarts_equals_a_full_rebuild(
        seed in any::<u64>(),
        initial in 20usize..200,
        plan in moves(),
    ) {
        runtime().block_on(async {
            let store = Arc::new(MemoryStore::new());
            let mut g = HistoryGen::new(seed);
            g.append(store.as_ref(), initial, seeded(seed)).await;
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("read-models.db");
            let (mut runner, mut live) = sqlite_runner(&store, &path).await;
            for (i, m) in plan.iter().enumerate() {
                match *m {
                    Move::Step(n) => {
                        runner.step(n).await.unwrap();
                    }
                    Move::CrashAfterApply(n) | Move::CrashBeforeCheckpoint(n) => {
                        let at = if matches!(m, Move::CrashAfterApply(_)) {
                            CrashPoint::AfterApply
                        } else {
                            CrashPoint::BeforeCheckpoint
                        };
                        runner.step_then_crash(n, at).await.unwrap();
                        drop(runner);
                        (runner, live) = sqlite_runner(&store, &path).await;
                    }
                    Move::Restart => {
                        drop(runner);
                        (runner, live) = sqlite_runner(&store, &path).await;
                    }
                    Move::Rebuild(which) => runner.reset(NAMES[which as usize]).await.unwrap(),
                    Move::Append(n) => {
                        g.append(store.as_ref(), n, seeded(seed ^ (i as u64 + 1))).await;
                    }
                }
            }
            runner.catch_up().await.unwrap();
            let fresh = rebuilt(store.clone()).await;
            same(&live, &fresh)?;
            // What is stored equals it too: a new process loads exactly the rebuilt models.
            drop(runner);
            let (_runner, loaded) = sqlite_runner(&store, &path).await;
            same(&loaded, &fresh)?;
            let head = store.head_position().await.unwrap();
            for name in NAMES {
                let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
                prop_assert_eq!(db.stored_checkpoint(name).unwrap(), head);
            }
            Ok(())
        })?;
    }

    #[test]
    fn in_memory_stepping_with_restarts_equals_a_full_rebuild(
        seed in any::<u64>(),
        initial in 20usize..200,
        plan in moves(),
    ) {
        runtime().block_on(async {
            let store = Arc::new(MemoryStore::new());
            let mut g = HistoryGen::new(seed);
            g.append(store.as_ref(), initial, seeded(seed)).await;
            let mut runner = ProjectionRunner::in_memory(store.clone(), org());
            let live = StandardProjections::register(&mut runner).await.unwrap();
            for (i, m) in plan.iter().enumerate() {
                match *m {
                    Move::Step(n) | Move::CrashAfterApply(n) | Move::CrashBeforeCheckpoint(n) => {
                        runner.step(n).await.unwrap();
                    }
                    Move::Restart => {
                        // The models outlive the runner; a new runner continues from their
                        // checkpoints with an empty case fold.
                        drop(runner);
                        runner = ProjectionRunner::in_memory(store.clone(), org());
                        runner.attach(&live.todo).await.unwrap();
                        runner.attach(&live.stats).await.unwrap();
                        runner.attach(&live.timeline).await.unwrap();
                    }
                    Move::Rebuild(which) => runner.reset(NAMES[which as usize]).await.unwrap(),
                    Move::Append(n) => {
                        g.append(store.as_ref(), n, seeded(seed ^ (i as u64 + 1))).await;
                    }
                }
            }
            runner.catch_up().await.unwrap();
            same(&live, &rebuilt(store.clone()).await)
        })?;
    }

    #[test]
    fn every_open_case_is_on_exactly_the_lists_the_table_names(
        seed in any::<u64>(),
        n in 10usize..400,
        probes in proptest::collection::vec(-20i64..20, 1..6),
    ) {
        runtime().block_on(async {
            let store = Arc::new(MemoryStore::new());
            let mut g = HistoryGen::new(seed);
            g.append(store.as_ref(), n, seeded(seed)).await;
            let p = rebuilt(store.clone()).await;
            let todo = p.todo.read().unwrap();
            let org = org();

            // What the table says, case by case.
            let mut expected: BTreeMap<Assignee, BTreeSet<(CaseId, Action)>> = BTreeMap::new();
            for (case_id, state) in &g.states {
                let table = obligations(state, &org, CrossInspectionScope::default()).unwrap();
                if state.is_open() {
                    prop_assert!(!table.is_empty(), "open case {} waits on nobody", case_id);
                    let (card, obs) = todo.case(case_id).expect("an open case is in the model");
                    prop_assert_eq!(obs, table.as_slice());
                    prop_assert_eq!(card.stage, state.stage());
                    prop_assert_eq!(card.case_id, *case_id);
                } else {
                    prop_assert!(table.is_empty());
                    prop_assert!(todo.case(case_id).is_none(), "finished case {} still listed", case_id);
                }
                for ob in table {
                    expected.entry(ob.assignee).or_default().insert((*case_id, ob.action));
                }
            }
            let listed: BTreeSet<&Assignee> = todo.assignees().collect();
            prop_assert_eq!(listed, expected.keys().collect::<BTreeSet<_>>());

            for offset_hours in probes {
                let now: DateTime<Utc> = g.now + Duration::hours(offset_hours * 24);
                let mut all_items = 0usize;
                for (assignee, want) in &expected {
                    let items = todo.for_assignee(assignee, now);
                    let walked: Vec<TodoItem> =
                        todo.iter_for_assignee(assignee, now).map(|r| r.to_item()).collect();
                    prop_assert_eq!(&walked, &items);
                    all_items += items.len();
                    let got: BTreeSet<(CaseId, Action)> =
                        items.iter().map(|i| (i.case.case_id, i.action)).collect();
                    prop_assert_eq!(&got, want, "list of {}", assignee);
                    prop_assert_eq!(items.len(), want.len(), "duplicates on the list of {}", assignee);
                    let mut seen_on_time = false;
                    let mut last_due = None;
                    for item in &items {
                        prop_assert_eq!(item.assignee.as_ref(), assignee);
                        prop_assert_eq!(item.overdue, item.due_at.is_some_and(|d| d < now));
                        if item.overdue {
                            prop_assert!(!seen_on_time, "an overdue item after an on-time one");
                        } else {
                            seen_on_time = true;
                        }
                        // Ordered by due time, items without a time limit last.
                        let key = item.due_at.map_or(i64::MAX, |d| d.timestamp_nanos_opt().unwrap());
                        prop_assert!(last_due.is_none_or(|l| l <= key));
                        last_due = Some(key);
                        // Never the reporter's identity.
                        let shown = format!("{item:?} {item}");
                        prop_assert!(!shown.contains("王某") && !shown.contains("13800000000"));
                    }
                    let counts = todo.counts_for(assignee, now);
                    prop_assert_eq!(counts.total as usize, items.len());
                    prop_assert_eq!(counts.overdue as usize, items.iter().filter(|i| i.overdue).count());
                    // Paging walks the same list.
                    let page = todo.page_for_assignee(assignee, now, 1, 2);
                    prop_assert_eq!(&page[..], &items[items.len().min(1)..items.len().min(3)]);
                }
                // The level views are the union of their units' lists.
                let mut by_levels = 0usize;
                for level in [Level::Room, Level::Team, Level::Locality, Level::Village] {
                    let items = todo.for_level(&org, level, now);
                    for item in &items {
                        match item.assignee.as_ref() {
                            Assignee::Unit(u) => prop_assert_eq!(org.level_of(u), Some(level)),
                            Assignee::Department(d) => prop_assert!(false, "department {} in a level view", d),
                        }
                    }
                    by_levels += items.len();
                }
                let departments = todo.for_departments(now);
                prop_assert_eq!(by_levels + departments.len(), all_items);
                let mut by_zones = 0usize;
                for zone in org.zones() {
                    let items = todo.for_zone(&org, &zone.id, now);
                    for item in &items {
                        let Assignee::Unit(u) = item.assignee.as_ref() else {
                            return Err(TestCaseError::fail("a department in a zone view"));
                        };
                        prop_assert_eq!(org.zone_of(u), Some(&zone.id));
                    }
                    by_zones += items.len();
                }
                prop_assert_eq!(by_zones, by_levels);
            }
            Ok(())
        })?;
    }
}
