//! The engine end to end, on both store backends: commands, concurrency, idempotency,
//! the deadline watcher, time travel and restarts.

mod common;

use caseflow::domain::*;
use caseflow::projections::case_stream_id;
use caseflow::{CommandEnvelope, EngineError, urge_command_id};
use chrono::Duration;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_case_lose_no_update() {
    for backend in BACKENDS {
        let fx = Fixture::new(backend);
        let engine = fx.open().await;
        let id = case_id(1);
        let last = walk_to_plan(&engine, &fx.clock, id, t0()).await;
        let at = last + Duration::hours(1);
        fx.clock.set(at);
        let writers = 16;
        let mut tasks = Vec::new();
        for i in 0..writers {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                engine
                    .execute(CommandEnvelope::new(
                        engine.new_id(),
                        officer("loc-chaoyang"),
                        at,
                        ReportRectificationProgress {
                            case_id: id,
                            note: format!("progress report {i}"),
                            percent_complete: 10,
                        },
                    ))
                    .await
            }));
        }
        let mut versions = Vec::new();
        for task in tasks {
            let outcome = task
                .await
                .expect("task joins")
                .expect("every progress report is written");
            assert!(!outcome.replayed);
            versions.push(outcome.last_version);
        }
        versions.sort_unstable();
        assert_eq!(
            versions,
            (8..8 + writers).collect::<Vec<u64>>(),
            "{backend:?}: each version written once"
        );
        let state = engine.case_state(id).await.expect("case exists");
        let rect = state
            .case()
            .and_then(|c| c.rectification.clone())
            .expect("rectification open");
        assert_eq!(
            rect.progress_reports, writers as u32,
            "{backend:?}: no lost update"
        );
        assert_eq!(state.version(), 7 + writers);
    }
}

#[tokio::test]
async fn re_executing_a_command_id_returns_the_first_result_and_writes_nothing() {
    for backend in BACKENDS {
        let fx = Fixture::new(backend);
        let engine = fx.open().await;
        let id = case_id(2);
        let envelope =
            CommandEnvelope::new(engine.new_id(), informant("vil-dongyuan"), t0(), report(id));
        let first = engine
            .execute(envelope.clone())
            .await
            .expect("first run writes");
        assert!(!first.replayed);
        assert_eq!(first.events.len(), 1);
        let head = engine.store().head_position().await.expect("head");
        let again = engine
            .execute(envelope.clone())
            .await
            .expect("a retry is not an error");
        assert!(again.replayed, "{backend:?}");
        assert_eq!(
            again.without_replay_flag(),
            first,
            "{backend:?}: the first result, unchanged"
        );
        assert_eq!(
            engine.store().head_position().await.expect("head"),
            head,
            "nothing written"
        );
        // Also after a restart of the engine.
        drop(engine);
        let engine = fx.open().await;
        let after_restart = engine.execute(envelope).await.expect("retry after restart");
        assert!(after_restart.replayed);
        assert_eq!(after_restart.without_replay_flag(), first);
        assert_eq!(engine.store().head_position().await.expect("head"), head);
    }
}

#[tokio::test]
async fn a_refused_command_is_a_typed_caller_error_and_writes_nothing() {
    for backend in BACKENDS {
        let fx = Fixture::new(backend);
        let engine = fx.open().await;
        let id = case_id(3);
        let err = engine
            .execute(CommandEnvelope::new(
                engine.new_id(),
                officer("room-1"),
                t0(),
                AcceptCase { case_id: id },
            ))
            .await
            .expect_err("no such case");
        assert!(
            matches!(
                err,
                EngineError::Rejected {
                    source: DomainError::CaseNotFound,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_caller_error());
        assert!(!err.is_retryable());
        assert_eq!(engine.store().head_position().await.expect("head"), 0);
        // A village officer may not classify.
        run(
            &engine,
            &fx.clock,
            t0(),
            informant("vil-dongyuan"),
            report(id),
        )
        .await;
        run(
            &engine,
            &fx.clock,
            t0() + Duration::hours(1),
            officer("room-1"),
            AcceptCase { case_id: id },
        )
        .await;
        let err = engine
            .execute(CommandEnvelope::new(
                engine.new_id(),
                informant("vil-dongyuan"),
                t0() + Duration::hours(2),
                ClassifyCase {
                    case_id: id,
                    category: Category::MassDemand,
                    focus_area: FocusArea::LivingEnvironment,
                    severity: Severity::Ordinary,
                    involves_locality: false,
                    involved_department: None,
                },
            ))
            .await
            .expect_err("not authorised");
        assert!(
            matches!(
                err,
                EngineError::Rejected {
                    source: DomainError::NotAuthorized { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(engine.store().head_position().await.expect("head"), 2);
    }
}

#[tokio::test]
async fn merging_into_a_case_that_is_not_open_is_refused() {
    let fx = Fixture::new(Backend::Memory);
    let engine = fx.open().await;
    let dup = case_id(4);
    run(
        &engine,
        &fx.clock,
        t0(),
        informant("vil-dongyuan"),
        report(dup),
    )
    .await;
    let err = engine
        .execute(CommandEnvelope::new(
            engine.new_id(),
            officer("room-1"),
            t0() + Duration::hours(1),
            MergeCase {
                case_id: dup,
                into: case_id(99),
            },
        ))
        .await
        .expect_err("no target");
    assert!(
        matches!(err, EngineError::MergeTargetNotOpen { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_deadline_watcher_urges_each_missed_deadline_once_even_across_restarts() {
    for backend in BACKENDS {
        let fx = Fixture::new(backend);
        let engine = fx.open().await;
        let id = case_id(5);
        run(
            &engine,
            &fx.clock,
            t0(),
            informant("vil-dongyuan"),
            report(id),
        )
        .await;
        let due = engine
            .case_state(id)
            .await
            .expect("case")
            .deadline(DeadlineKind::IntakeDecision)
            .expect("intake deadline open")
            .due_at;
        // Before the due time: nothing to urge.
        let report = engine.check_deadlines(due).await.expect("watch");
        assert!(report.issued.is_empty(), "{backend:?}: not due yet");
        // Just after: one urging, by a room of the case's zone (no lead unit yet).
        let late = due + Duration::minutes(1);
        fx.clock.set(late);
        let report = engine.check_deadlines(late).await.expect("watch");
        assert_eq!(report.issued.len(), 1, "{backend:?}: {report:?}");
        let urged = &report.issued[0];
        assert_eq!(urged.deadline, DeadlineKind::IntakeDecision);
        assert!(!urged.escalated);
        assert_eq!(
            urged.command_id,
            urge_command_id(id, DeadlineKind::IntakeDecision, due, false)
        );
        // The stored note is the district-language note, not Rust debug text.
        let records = engine
            .store()
            .read_stream(&case_stream_id(id), 1, 100)
            .await
            .expect("read the case");
        let note = records
            .iter()
            .find_map(|r| match caseflow::projections::decode(r) {
                Ok(CaseEvent::CaseUrged(e)) => Some(e.note),
                _ => None,
            })
            .expect("the deadline was urged");
        let district = district();
        assert_eq!(
            note,
            caseflow::deadlines::urging_note(
                DeadlineKind::IntakeDecision,
                due,
                false,
                &district.calendar,
                district.org.info().language,
            )
        );
        assert!(note.starts_with("自动督办：受理时限"), "{note}");
        assert!(!note.contains("IntakeDecision"), "{note}");
        // Again at the same time, and after a restart: nothing more.
        let report = engine.check_deadlines(late).await.expect("watch");
        assert!(report.issued.is_empty(), "{backend:?}: urged once only");
        drop(engine);
        let engine = fx.open().await;
        let report = engine
            .check_deadlines(late + Duration::hours(1))
            .await
            .expect("watch");
        assert!(
            report.issued.is_empty(),
            "{backend:?}: not again after a restart"
        );
        // Replaying the watcher's own command (e.g. a second process that had not seen the
        // first urging) writes nothing either: the command id is derived from the deadline.
        let again = engine
            .execute(CommandEnvelope::new(
                urged.command_id,
                leader(urged.by.as_str()),
                late,
                UrgeOverdue {
                    case_id: id,
                    deadline: DeadlineKind::IntakeDecision,
                    note: "again".into(),
                },
            ))
            .await
            .expect("replay");
        assert!(again.replayed);
        // After the grace period the still-missed deadline is escalated, once.
        let state = engine.case_state(id).await.expect("case");
        let respond_by = state
            .deadline(DeadlineKind::IntakeDecision)
            .and_then(|d| d.urged.as_ref())
            .expect("urged")
            .respond_by;
        let later = respond_by + Duration::minutes(1);
        fx.clock.set(later);
        let report = engine.check_deadlines(later).await.expect("watch");
        assert_eq!(report.issued.len(), 1, "{backend:?}: {report:?}");
        assert!(report.issued[0].escalated);
        let report = engine
            .check_deadlines(later + Duration::days(3))
            .await
            .expect("watch");
        assert!(report.issued.is_empty());
        let urgings = engine
            .store()
            .read_stream(&case_stream_id(id), 1, 100)
            .await
            .expect("read")
            .iter()
            .filter(|r| r.event_type == "CaseUrged")
            .map(|r| r.metadata.actor.clone())
            .collect::<Vec<_>>();
        assert_eq!(
            urgings.len(),
            2,
            "{backend:?}: one urging and one escalation"
        );
        // Both are recorded as the watcher acting by the rule, not as a person.
        for actor in &urgings {
            assert!(actor.ends_with("/watcher"), "{backend:?}: urged as {actor}");
        }
    }
}

#[tokio::test]
async fn time_travel_shows_a_case_as_of_a_version_and_as_of_a_time() {
    for backend in BACKENDS {
        let fx = Fixture::new(backend);
        let engine = fx.open().await;
        let id = case_id(6);
        walk_to_plan(&engine, &fx.clock, id, t0()).await;
        let v1 = engine.state_as_of_version(id, 1).await.expect("v1");
        assert_eq!(v1.state.stage(), Stage::Intake);
        assert_eq!(v1.latest_version, 7);
        let v4 = engine.state_as_of_version(id, 4).await.expect("v4");
        assert_eq!(v4.state.stage(), Stage::Handling, "routed after 4 events");
        // Event k was recorded at t0 + (k-1) hours.
        let at = engine
            .state_as_of_time(id, t0() + Duration::minutes(150))
            .await
            .expect("as of time");
        assert_eq!(at.version, 3);
        assert_eq!(
            at.state,
            engine.state_as_of_version(id, 3).await.expect("v3").state
        );
        let now = engine.state_as_of_version(id, 7).await.expect("v7");
        assert_eq!(now.state, engine.case_state(id).await.expect("current"));
        assert!(matches!(
            engine.state_as_of_version(id, 8).await,
            Err(EngineError::VersionOutOfRange {
                requested: 8,
                latest: 7,
                ..
            })
        ));
        assert!(matches!(
            engine.state_as_of_time(id, t0() - Duration::hours(1)).await,
            Err(EngineError::NotYetReported { .. })
        ));
        assert!(matches!(
            engine.state_as_of_version(case_id(999), 1).await,
            Err(EngineError::CaseNotFound(_))
        ));
    }
}

#[tokio::test]
async fn queries_follow_commands_and_survive_a_restart() {
    for backend in BACKENDS {
        let fx = Fixture::new(backend);
        let engine = fx.open().await;
        let id = case_id(7);
        let last = walk_to_plan(&engine, &fx.clock, id, t0()).await;
        let todo = engine
            .todo(&UnitId::new("loc-chaoyang"), last)
            .await
            .expect("todo");
        assert!(
            todo.iter().any(|i| i.case.case_id == id),
            "{backend:?}: the locality carries out the plan"
        );
        let stats = engine.stats(last).await.expect("stats");
        assert_eq!(stats.cases, 1);
        let timeline = engine.timeline(id, last).await.expect("timeline");
        assert_eq!(timeline.entries.len(), 7);
        drop(engine);
        let engine = fx.open().await;
        let again = engine
            .todo(&UnitId::new("loc-chaoyang"), last)
            .await
            .expect("todo");
        assert_eq!(again, todo, "{backend:?}: same list after a restart");
        let verify = engine.verify().await.expect("verify runs");
        assert!(verify.is_ok(), "{backend:?}: {}", verify.to_markdown());
        assert_eq!(engine.rebuild().await.expect("rebuild"), 7);
        assert_eq!(
            engine
                .todo(&UnitId::new("loc-chaoyang"), last)
                .await
                .expect("todo"),
            todo
        );
    }
}

#[tokio::test]
async fn a_walked_many_case_workload_is_valid_for_the_domain_and_verifies() {
    let fx = Fixture::new(Backend::Memory);
    let engine = fx.open().await;
    let summary = common::workload::walked_workload(&engine, &fx.clock, t0(), 40, 11).await;
    assert!(summary.cases > 50, "{summary:?}");
    assert!(summary.urgings > 0, "some limits are missed and urged");
    let stats = engine.stats(summary.end).await.expect("stats");
    assert!(
        stats.by_stage.get(&Stage::Closed).copied().unwrap_or(0) > 0,
        "some cases close"
    );
    let verify = engine.verify().await.expect("verify");
    assert!(verify.is_ok(), "{}", verify.to_markdown());
}

#[tokio::test]
async fn a_second_engine_over_the_same_file_keeps_its_read_models_in_memory() {
    let fx = Fixture::new(Backend::Sqlite);
    let first = fx.open().await;
    assert!(first.has_persistent_read_models());
    let id = case_id(8);
    let last = walk_to_plan(&first, &fx.clock, id, t0()).await;
    let second = fx.open().await;
    assert!(
        !second.has_persistent_read_models(),
        "only one process writes the read models"
    );
    let unit = UnitId::new("loc-chaoyang");
    assert_eq!(
        second.todo(&unit, last).await.expect("todo"),
        first.todo(&unit, last).await.expect("todo"),
        "both see the same to-do list"
    );
    drop(second);
    drop(first);
    let again = fx.open().await;
    assert!(
        again.has_persistent_read_models(),
        "the lock is released with its engine"
    );
}

#[tokio::test]
async fn a_store_without_a_sidecar_keeps_its_read_models_in_a_configured_sqlite_file() {
    // A memory store shared across "restarts" stands in for a URL-backed store here: the
    // engine has no sidecar for it, so the read models go where the configuration says.
    let fx = Fixture::new(Backend::Memory);
    let file = fx.dir.path().join("remote.read.db");
    let config = || {
        fx.config()
            .read_models(caseflow::ReadModelConfig::SqliteFile(file.clone()))
    };
    let first = caseflow::Engine::open(config())
        .await
        .expect("engine opens");
    assert!(first.has_persistent_read_models());
    let last = walk_to_plan(&first, &fx.clock, case_id(9), t0()).await;
    let unit = UnitId::new("loc-chaoyang");
    let before = first.todo(&unit, last).await.expect("todo");
    assert!(!before.is_empty());
    drop(first);
    let store = caseflow::projections::SqliteReadModelStore::open(
        &file,
        caseflow::projections::Durability::Normal,
    )
    .expect("the read-model file exists");
    let head = caseflow::store::EventStore::head_position(fx.memory.as_ref())
        .await
        .expect("head");
    assert_eq!(store.stored_checkpoint("todo").expect("checkpoint"), head);
    drop(store);
    let again = caseflow::Engine::open(config())
        .await
        .expect("engine reopens");
    assert!(again.has_persistent_read_models());
    assert_eq!(
        again.refresh().await.expect("refresh"),
        0,
        "resumed from the stored checkpoint, nothing re-applied"
    );
    assert_eq!(again.todo(&unit, last).await.expect("todo"), before);
}

#[tokio::test]
async fn read_models_can_be_kept_in_memory_next_to_a_sqlite_store() {
    let fx = Fixture::new(Backend::Sqlite);
    let engine =
        caseflow::Engine::open(fx.config().read_models(caseflow::ReadModelConfig::InMemory))
            .await
            .expect("engine opens");
    assert!(!engine.has_persistent_read_models());
    walk_to_plan(&engine, &fx.clock, case_id(10), t0()).await;
    assert!(!caseflow::read_model_path(&fx.db_path()).exists());
}

#[tokio::test]
async fn the_same_seed_and_clock_write_a_byte_identical_log() {
    async fn log_of(seed: u64) -> Vec<(uuid::Uuid, String, Vec<u8>, [u8; 32])> {
        let mut fx = Fixture::new(Backend::Memory);
        fx.seed = seed;
        let engine = fx.open().await;
        common::workload::walked_workload(&engine, &fx.clock, t0(), 12, seed).await;
        engine
            .store()
            .read_all(1, 1_000_000)
            .await
            .expect("read log")
            .into_iter()
            .map(|r| (r.event_id, r.stream_id, r.payload, r.hash))
            .collect()
    }
    let a = log_of(9).await;
    assert!(a.len() > 100);
    assert_eq!(a, log_of(9).await, "same seed, same log");
    assert_ne!(a, log_of(10).await, "another seed, another log");
}

/// The engine caches folded case states between commands; a second engine writing to the
/// same store must not make the first one decide on (and write from) a stale state.
#[tokio::test]
async fn a_stale_cached_state_after_another_engine_wrote_is_reloaded_not_trusted() {
    // Two engines over one shared memory store (a SQLite file takes one writer at a time),
    // with their own id streams so their command and event ids differ.
    let fx = Fixture::new(Backend::Memory);
    let first = fx.open().await;
    let id = case_id(9);
    let last = walk_to_plan(&first, &fx.clock, id, t0()).await;
    let second = caseflow::Engine::open(
        fx.config()
            .ids(std::sync::Arc::new(caseflow::SeededIds::new(fx.seed + 1))),
    )
    .await
    .expect("second engine opens");
    let at = last + Duration::hours(1);
    fx.clock.set(at);
    let progress = |engine: &caseflow::Engine, note: &str| {
        CommandEnvelope::new(
            engine.new_id(),
            officer("loc-chaoyang"),
            at,
            ReportRectificationProgress {
                case_id: id,
                note: note.to_owned(),
                percent_complete: 10,
            },
        )
    };
    let by_second = second
        .execute(progress(&second, "from the second engine"))
        .await
        .expect("second engine writes");
    let by_first = first
        .execute(progress(&first, "from the first engine"))
        .await
        .expect("first engine reloads after the version conflict and writes");
    assert_eq!(by_first.first_version, by_second.last_version + 1);
    let state = first.case_state(id).await.expect("case exists");
    let rect = state
        .case()
        .and_then(|c| c.rectification.clone())
        .expect("rectification open");
    assert_eq!(rect.progress_reports, 2, "no update lost through the cache");
    assert_eq!(state.version(), by_first.last_version);
}
