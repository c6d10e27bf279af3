//! The runner: catch-up, live following, side-by-side projections with their own
//! checkpoints and lag, stopping (never skipping) on events it cannot apply, and the SQLite
//! read models' restart, crash and corruption behaviour.

mod support;

use std::sync::Arc;

use caseflow_projections::*;
use caseflow_store::{AppendRequest, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent};
use support::{HistoryGen, org, seeded};
use uuid::Uuid;

/// A memory store holding `n` decisions of a seeded history.
async fn store_with(n: usize, seed: u64) -> (Arc<MemoryStore>, HistoryGen) {
    let store = Arc::new(MemoryStore::new());
    let mut g = HistoryGen::new(seed);
    g.append(store.as_ref(), n, seeded(seed)).await;
    (store, g)
}

/// The three projections rebuilt from zero over `store`, in memory.
async fn rebuilt(store: Arc<dyn EventStore>) -> StandardProjections {
    let mut runner = ProjectionRunner::in_memory(store, org());
    let p = StandardProjections::register(&mut runner).await.unwrap();
    runner.catch_up().await.unwrap();
    p
}

fn assert_same(a: &StandardProjections, b: &StandardProjections) {
    let (ta, tb) = (a.todo.read().unwrap(), b.todo.read().unwrap());
    assert!(*ta == *tb, "to-do models differ");
    ta.check_indexes().unwrap();
    tb.check_indexes().unwrap();
    assert!(
        *a.stats.read().unwrap() == *b.stats.read().unwrap(),
        "statistics differ"
    );
    assert!(
        *a.timeline.read().unwrap() == *b.timeline.read().unwrap(),
        "timelines differ"
    );
}

fn cannot_apply(err: ProjectionError) -> CannotApply {
    match err {
        ProjectionError::CannotApply(details) => *details,
        other => panic!("expected CannotApply, got {other}"),
    }
}

async fn append_raw(
    store: &dyn EventStore,
    stream: &str,
    expected: ExpectedVersion,
    event_type: &str,
    payload: &[u8],
) -> u64 {
    let outcome = store
        .append(AppendRequest {
            stream_id: stream.to_owned(),
            expected,
            events: vec![NewEvent {
                event_id: Uuid::from_u128(0xdead_0000 + u128::from(payload.len() as u32)),
                event_type: event_type.to_owned(),
                schema_version: 1,
                payload: payload.to_vec().into(),
                metadata: Metadata::default(),
            }],
            recorded_at: support::t0(),
            command_id: None,
        })
        .await
        .unwrap();
    outcome.last_position
}

#[tokio::test]
async fn catch_up_applies_every_committed_event_and_reports_zero_lag() {
    let (store, _) = store_with(400, 1).await;
    let head = store.head_position().await.unwrap();
    let mut runner = ProjectionRunner::in_memory(store.clone(), org());
    runner.set_batch_size(37);
    let p = StandardProjections::register(&mut runner).await.unwrap();
    assert_eq!(runner.catch_up().await.unwrap(), head);
    let status = runner.status();
    assert_eq!(status.head, head);
    for s in &status.projections {
        assert_eq!(
            (s.checkpoint, s.lag, s.stopped.clone()),
            (head, 0, None),
            "{}",
            s.name
        );
    }
    // Every event is on its case's timeline, once.
    assert_eq!(p.timeline.read().unwrap().event_count() as u64, head);
    // Nothing more to do: a further step reads nothing.
    assert_eq!(runner.step(10).await.unwrap(), 0);
}

#[tokio::test]
async fn lag_is_head_minus_checkpoint_while_behind() {
    let (store, _) = store_with(200, 2).await;
    let head = store.head_position().await.unwrap();
    let mut runner = ProjectionRunner::in_memory(store.clone(), org());
    StandardProjections::register(&mut runner).await.unwrap();
    assert_eq!(runner.step(50).await.unwrap(), 50);
    let status = runner.status();
    assert_eq!(status.head, head);
    for s in &status.projections {
        assert_eq!(s.checkpoint, 50);
        assert_eq!(s.lag, head - 50);
    }
}

#[tokio::test]
async fn follow_applies_live_appends_and_equals_a_rebuild() {
    let (store, mut g) = store_with(150, 3).await;
    let mut runner = ProjectionRunner::in_memory(store.clone(), org());
    runner.set_batch_size(16);
    let live = StandardProjections::register(&mut runner).await.unwrap();
    let mut monitor = runner.monitor();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runner
            .follow(async {
                let _ = stop_rx.await;
            })
            .await
            .map(|()| runner)
    });
    // Appends keep landing while the runner follows.
    for round in 0..5u64 {
        g.append(store.as_ref(), 40, seeded(100 + round)).await;
        let head = store.head_position().await.unwrap();
        let progress = monitor.wait_for(head).await.unwrap();
        assert!(
            progress
                .projections
                .iter()
                .all(|s| s.checkpoint == head && s.lag == 0)
        );
    }
    stop_tx.send(()).unwrap();
    let runner = task.await.unwrap().unwrap();
    assert_eq!(
        runner.status().projections[0].checkpoint,
        store.head_position().await.unwrap()
    );
    let fresh = rebuilt(store.clone()).await;
    assert_same(&live, &fresh);
}

#[tokio::test]
async fn projections_side_by_side_keep_their_own_checkpoints() {
    let (store, _) = store_with(300, 4).await;
    let head = store.head_position().await.unwrap();
    let mut runner = ProjectionRunner::in_memory(store.clone(), org());
    runner.set_batch_size(64);
    let p = StandardProjections::register(&mut runner).await.unwrap();
    runner.catch_up().await.unwrap();
    // Rebuild only the statistics, next to the others which stay current.
    runner.reset("stats").await.unwrap();
    assert_eq!(p.stats.checkpoint().unwrap(), 0);
    runner.step(100).await.unwrap();
    let status = runner.status();
    let by_name = |n: &str| {
        status
            .projections
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("stats").checkpoint, 100);
    assert_eq!(by_name("stats").lag, head - 100);
    assert_eq!(by_name("todo").checkpoint, head);
    assert_eq!(by_name("todo").lag, 0);
    runner.catch_up().await.unwrap();
    assert_same(&p, &rebuilt(store.clone()).await);
    assert!(matches!(
        runner.reset("nope").await,
        Err(ProjectionError::UnknownProjection(_))
    ));
    assert!(matches!(
        runner.register(TodoProjection::new()).await,
        Err(ProjectionError::DuplicateProjection(_))
    ));
}

#[tokio::test]
async fn undecodable_event_stops_every_projection_at_its_position_and_is_never_skipped() {
    let (store, g) = store_with(60, 5).await;
    // A case that ended for good, so the generator below never writes to it again.
    let case = *g
        .states
        .iter()
        .find(|(_, s)| s.stage().is_final())
        .expect("some case was declined, merged or transferred")
        .0;
    let version = g.states[&case].version();
    let bad = append_raw(
        store.as_ref(),
        &case_stream_id(case),
        ExpectedVersion::Exact(version),
        "CaseExploded",
        b"{}",
    )
    .await;
    // Valid events after the bad one must not be applied either.
    let mut g = g;
    g.append(store.as_ref(), 10, seeded(55)).await;

    let mut runner = ProjectionRunner::in_memory(store.clone(), org());
    let p = StandardProjections::register(&mut runner).await.unwrap();
    let err = cannot_apply(runner.catch_up().await.unwrap_err());
    assert_eq!(err.position, bad);
    assert_eq!(err.event_type, "CaseExploded");
    assert_eq!(err.stream_id, case_stream_id(case));
    assert_eq!(err.version, version + 1);
    // The typed decode error survives, not a flattened message.
    assert_eq!(
        err.failure,
        ApplyFailure::Undecodable(caseflow_domain::DecodeError::UnknownEventType {
            event_type: "CaseExploded".into()
        })
    );
    for s in runner.status().projections {
        assert_eq!(
            s.checkpoint,
            bad - 1,
            "{} must stop just before the bad event",
            s.name
        );
        assert!(s.stopped.is_some());
    }
    assert_eq!(p.todo.checkpoint().unwrap(), bad - 1);
    // A stopped runner says so instead of silently doing nothing.
    assert!(matches!(
        runner.step(10).await,
        Err(ProjectionError::Stopped(_))
    ));
    // A rebuild meets the same event again and stops at the same place.
    runner.reset_all().await.unwrap();
    let again = cannot_apply(runner.catch_up().await.unwrap_err());
    assert_eq!(again.position, bad);
}

#[tokio::test]
async fn an_event_that_does_not_fit_its_case_stops_with_the_domain_reason() {
    let store = Arc::new(MemoryStore::new());
    // An acceptance for a case that was never reported.
    let case = caseflow_domain::CaseId(Uuid::from_u128(42));
    let payload = serde_json::json!({
        "case_id": case,
        "at": support::t0(),
        "by": { "unit": "room-1", "role": "leader" },
        "classification_due_at": support::t0(),
    });
    let position = append_raw(
        store.as_ref(),
        &case_stream_id(case),
        ExpectedVersion::NoStream,
        "CaseAccepted",
        &serde_json::to_vec(&payload).unwrap(),
    )
    .await;
    let mut runner = ProjectionRunner::in_memory(store, org());
    StandardProjections::register(&mut runner).await.unwrap();
    let err = cannot_apply(runner.catch_up().await.unwrap_err());
    assert_eq!(err.position, position);
    assert!(
        matches!(err.failure, ApplyFailure::OutOfOrder { .. }),
        "{}",
        err.failure
    );
}

#[tokio::test]
async fn an_event_outside_any_case_stream_stops() {
    let store = Arc::new(MemoryStore::new());
    let position = append_raw(
        store.as_ref(),
        "accounts-1",
        ExpectedVersion::Any,
        "CaseReported",
        b"{}",
    )
    .await;
    let mut runner = ProjectionRunner::in_memory(store, org());
    StandardProjections::register(&mut runner).await.unwrap();
    let err = cannot_apply(runner.catch_up().await.unwrap_err());
    assert_eq!(err.position, position);
    assert!(matches!(err.failure, ApplyFailure::NotACaseStream(_)));
}

#[tokio::test]
async fn a_record_whose_version_skips_ahead_stops_with_a_version_gap() {
    let (store, g) = store_with(80, 6).await;
    // Change the version of the last record of some case behind the store's back.
    let (case, state) = g
        .states
        .iter()
        .find(|(_, s)| s.version() >= 3)
        .expect("a case with three events");
    let stream = case_stream_id(*case);
    let records = store.read_stream(&stream, 3, 1).await.unwrap();
    let position = records[0].position;
    assert!(store.tamper(position, |r| r.version += 5));
    let _ = state;
    let mut runner = ProjectionRunner::in_memory(store, org());
    StandardProjections::register(&mut runner).await.unwrap();
    let err = cannot_apply(runner.catch_up().await.unwrap_err());
    assert_eq!(err.position, position);
    assert_eq!(
        err.failure,
        ApplyFailure::VersionGap {
            expected: 3,
            found: 8
        }
    );
}

#[tokio::test]
async fn sqlite_read_models_resume_from_their_checkpoint_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    let (store, mut g) = store_with(250, 7).await;
    {
        let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
        let mut runner =
            ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
        runner.set_batch_size(40);
        StandardProjections::register(&mut runner).await.unwrap();
        runner.catch_up().await.unwrap();
    }
    let head = store.head_position().await.unwrap();
    g.append(store.as_ref(), 100, seeded(77)).await;
    let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
    assert_eq!(db.stored_checkpoint("todo").unwrap(), head);
    let mut runner = ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
    let p = StandardProjections::register(&mut runner).await.unwrap();
    // Loaded, not re-applied: the checkpoint is where the first runner committed.
    assert_eq!(p.todo.checkpoint().unwrap(), head);
    let read = runner.catch_up().await.unwrap();
    assert_eq!(read, store.head_position().await.unwrap() - head);
    assert_same(&p, &rebuilt(store.clone()).await);
}

#[tokio::test]
async fn crash_before_commit_reapplies_the_batch_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    let (store, _) = store_with(300, 8).await;
    for crash in [CrashPoint::AfterApply, CrashPoint::BeforeCheckpoint] {
        std::fs::remove_file(&path).ok();
        {
            let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
            let mut runner =
                ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
            StandardProjections::register(&mut runner).await.unwrap();
            runner.step(120).await.unwrap();
            runner.step_then_crash(90, crash).await.unwrap();
            // The process dies here: the runner and its in-memory models are gone.
        }
        let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
        assert_eq!(db.stored_checkpoint("stats").unwrap(), 120, "{crash:?}");
        let mut runner =
            ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
        let p = StandardProjections::register(&mut runner).await.unwrap();
        assert_eq!(p.stats.checkpoint().unwrap(), 120);
        runner.catch_up().await.unwrap();
        assert_same(&p, &rebuilt(store.clone()).await);
    }
}

#[tokio::test]
async fn rebuild_of_a_stored_read_model_drops_its_rows_and_equals_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    let (store, _) = store_with(200, 9).await;
    let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
    let mut runner = ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
    let p = StandardProjections::register(&mut runner).await.unwrap();
    runner.catch_up().await.unwrap();
    runner.reset_all().await.unwrap();
    assert_eq!(p.timeline.read().unwrap().case_count(), 0);
    drop(runner);
    let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
    let rows: i64 = db
        .connection()
        .query_row("SELECT count(*) FROM timeline_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    assert_eq!(db.stored_checkpoint("timeline").unwrap(), 0);
    let mut runner = ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
    let p = StandardProjections::register(&mut runner).await.unwrap();
    runner.catch_up().await.unwrap();
    assert_same(&p, &rebuilt(store.clone()).await);
}

#[test]
fn a_read_model_file_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    match SqliteReadModelStore::open(&path, Durability::Full) {
        Err(ProjectionError::NewerFormat { found: 99, .. }) => {}
        other => panic!("expected NewerFormat, got {other:?}"),
    }
}

#[tokio::test]
async fn a_corrupt_stored_row_is_reported_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    let (store, _) = store_with(50, 10).await;
    {
        let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
        let mut runner =
            ProjectionRunner::with_read_model_store(store.clone(), org(), Box::new(db));
        StandardProjections::register(&mut runner).await.unwrap();
        runner.catch_up().await.unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let changed = conn
            .execute("UPDATE todo_cases SET entry = '{\"card\": 1}' WHERE case_id = (SELECT min(case_id) FROM todo_cases)", [])
            .unwrap();
        assert_eq!(changed, 1);
    }
    let db = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
    let mut runner = ProjectionRunner::with_read_model_store(store, org(), Box::new(db));
    match runner.register(TodoProjection::new()).await {
        Err(ProjectionError::CorruptReadModel { projection, .. }) => assert_eq!(projection, "todo"),
        other => panic!("expected CorruptReadModel, got {other:?}"),
    }
}
