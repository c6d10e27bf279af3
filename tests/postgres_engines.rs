//! Several engine instances on one PostgreSQL store (feature `postgres`, server in
//! `CASEFLOW_TEST_POSTGRES`): commands from every instance, to-do lists from every instance
//! (each from its own read models in PostgreSQL), one deadline watcher at a time that urges
//! each missed deadline once, and another that takes over when the watcher goes.
#![cfg(feature = "postgres")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use caseflow::domain::*;
use caseflow::projections::{case_id_of_stream, decode};
use caseflow::store::postgres::testing::TempSchema;
use caseflow::{
    Engine, EngineConfig, ManualClock, MasterKey, ReadModelConfig, RetryPolicy, SeededIds,
    StoreConfig,
};
use chrono::Duration;
use common::{case_id, district, informant, report, run, t0};

/// The store schema and the read-model schema of every instance, dropped after the test.
struct Schemas {
    store: TempSchema,
    _read_models: Vec<TempSchema>,
    /// The district's master key: every instance keeps reporters' data keys in the store's
    /// PostgreSQL key tables (the default for a PostgreSQL store), wrapped by it.
    master: MasterKey,
}

fn schemas(instances: &[&str]) -> Schemas {
    let store = TempSchema::new();
    let read_models = instances
        .iter()
        .map(|i| TempSchema {
            base_url: store.base_url.clone(),
            name: format!("{}_rm_{i}", store.name),
        })
        .collect();
    Schemas {
        store,
        _read_models: read_models,
        master: MasterKey::generate(),
    }
}

async fn engine(schemas: &Schemas, instance: &str, clock: &Arc<ManualClock>, seed: u64) -> Engine {
    let config = EngineConfig::with_store(
        StoreConfig::Url(schemas.store.url("&poll_ms=50")),
        district(),
    )
    .read_models(ReadModelConfig::Postgres {
        instance: instance.to_owned(),
    })
    .master_key(schemas.master.clone())
    .clock(clock.clone())
    .ids(Arc::new(SeededIds::new(seed)))
    .retry(RetryPolicy {
        max_attempts: 200,
        base_delay_ms: 1,
        max_delay_ms: 5,
    });
    Engine::open(config)
        .await
        .expect("engine opens on PostgreSQL")
}

/// How often each case was urged, from the log itself.
async fn urgings(engine: &Engine) -> BTreeMap<CaseId, usize> {
    let records = engine
        .store()
        .read_all(1, usize::MAX)
        .await
        .expect("read the log");
    let mut counts = BTreeMap::new();
    for record in &records {
        if let Ok(CaseEvent::CaseUrged(_)) = decode(record) {
            let case = case_id_of_stream(&record.stream_id).expect("a case stream");
            *counts.entry(case).or_insert(0) += 1;
        }
    }
    counts
}

async fn cases_on_lists(engine: &Engine, now: chrono::DateTime<chrono::Utc>) -> BTreeSet<CaseId> {
    let mut cases = BTreeSet::new();
    for level in [Level::Room, Level::Team, Level::Locality, Level::Village] {
        for item in engine.todo_for_level(level, now).await.expect("to-do list") {
            cases.insert(item.case.case_id);
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_engines_share_one_store_and_one_watcher_urges_each_deadline_once() {
    let instances = ["desk", "reports", "bench"];
    let schemas = schemas(&instances);
    let clock = Arc::new(ManualClock::new(t0()));
    let mut engines = Vec::new();
    for (i, name) in instances.iter().enumerate() {
        engines.push(engine(&schemas, name, &clock, 10 + i as u64).await);
    }
    assert!(engines.iter().all(Engine::has_persistent_read_models));
    // Commands from every instance: two cases each.
    let mut cases = BTreeSet::new();
    for (i, e) in engines.iter().enumerate() {
        for k in 0..2u128 {
            let id = case_id(100 + 10 * i as u128 + k);
            run(e, &clock, t0(), informant("vil-dongyuan"), report(id)).await;
            cases.insert(id);
        }
    }
    // Every instance lists every case, from its own read models.
    for e in &engines {
        assert_eq!(
            cases_on_lists(e, t0()).await,
            cases,
            "every instance sees every case"
        );
    }
    // Past every intake deadline, each instance tries to watch: exactly one is the watcher.
    let due = engines[0]
        .case_state(case_id(100))
        .await
        .expect("case")
        .deadline(DeadlineKind::IntakeDecision)
        .expect("an intake deadline")
        .due_at;
    clock.set(due + Duration::minutes(5));
    let mut leases: Vec<_> = engines.iter().map(|_| None).collect();
    let mut watchers = Vec::new();
    for (i, e) in engines.iter().enumerate() {
        if let Some(report) = e.watch_if_leader(&mut leases[i]).await.expect("watch") {
            watchers.push((i, report));
        }
    }
    assert_eq!(
        watchers.len(),
        1,
        "one watcher among {} engines",
        engines.len()
    );
    let (leader, first) = watchers.pop().expect("a watcher");
    assert_eq!(
        first.issued.len(),
        cases.len(),
        "every missed deadline urged"
    );
    // More passes, on every engine: nothing more.
    for _ in 0..3 {
        for (i, e) in engines.iter().enumerate() {
            if let Some(report) = e.watch_if_leader(&mut leases[i]).await.expect("watch") {
                assert_eq!(i, leader, "still the same watcher");
                assert!(report.issued.is_empty(), "urged once only");
            }
        }
    }
    // The watcher's engine goes away (a process that dies drops its connection too); the
    // next one to try takes over and finds everything already urged.
    leases[leader] = None;
    let gone = engines.remove(leader);
    leases.remove(leader);
    drop(gone);
    let mut taken_over = None;
    for _ in 0..200 {
        for (i, e) in engines.iter().enumerate() {
            if let Some(report) = e.watch_if_leader(&mut leases[i]).await.expect("watch") {
                taken_over = Some(report);
            }
        }
        if taken_over.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let report = taken_over.expect("another engine takes over the watcher");
    assert!(
        report.issued.is_empty(),
        "the new watcher urges nothing twice"
    );
    let counts = urgings(&engines[0]).await;
    assert_eq!(counts.keys().copied().collect::<BTreeSet<_>>(), cases);
    assert!(
        counts.values().all(|n| *n == 1),
        "each deadline urged once: {counts:?}"
    );
    let verify = engines[0].store().verify_all().await.expect("verify");
    assert!(verify.is_intact(), "{verify:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_resumes_its_read_models_and_sees_what_others_wrote_meanwhile() {
    let schemas = schemas(&["desk", "bench"]);
    let clock = Arc::new(ManualClock::new(t0()));
    let desk = engine(&schemas, "desk", &clock, 1).await;
    run(
        &desk,
        &clock,
        t0(),
        informant("vil-dongyuan"),
        report(case_id(1)),
    )
    .await;
    drop(desk);
    let bench = engine(&schemas, "bench", &clock, 2).await;
    run(
        &bench,
        &clock,
        t0(),
        informant("vil-dongyuan"),
        report(case_id(2)),
    )
    .await;
    let desk = engine(&schemas, "desk", &clock, 3).await;
    assert!(desk.has_persistent_read_models());
    let progress = desk.read_model_progress().await.expect("progress");
    let head = desk.store().head_position().await.expect("head");
    assert!(
        progress.projections.iter().all(|p| p.checkpoint == head),
        "caught up at open: {progress:?}"
    );
    let listed = cases_on_lists(&desk, t0()).await;
    assert!(
        listed.contains(&case_id(1)) && listed.contains(&case_id(2)),
        "{listed:?}"
    );
    // A second engine for the same instance while the first is open does not write the
    // same rows: it keeps its read models in memory.
    let twin = engine(&schemas, "desk", &clock, 4).await;
    assert!(!twin.has_persistent_read_models());
    assert_eq!(cases_on_lists(&twin, t0()).await, listed);
}

/// `verify` and the other read-only verbs open a PostgreSQL store's log alone (no read
/// models, no key store): chains, tree and ledger of what the engines wrote all hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_opens_for_reading_and_verifies() {
    let schemas = schemas(&["desk"]);
    let clock = Arc::new(ManualClock::new(t0()));
    let desk = engine(&schemas, "desk", &clock, 1).await;
    for n in 1..=3 {
        run(
            &desk,
            &clock,
            t0(),
            informant("vil-dongyuan"),
            report(case_id(n)),
        )
        .await;
    }
    let log = caseflow::engine::open_store_for_reading(&StoreConfig::Url(schemas.store.url("")))
        .await
        .expect("a PostgreSQL log opens for reading");
    assert_eq!(
        log.head_position().await.expect("head"),
        desk.store().head_position().await.expect("head")
    );
    let outcome = caseflow::audit::verify_log(log.as_ref(), None)
        .await
        .expect("the log verifies");
    assert!(outcome.log_holds(), "{outcome:?}");
    assert_eq!(
        outcome.events_checked,
        log.head_position().await.expect("head")
    );
}
