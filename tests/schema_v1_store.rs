//! Golden fixture: a store written by the release whose events were all schema version 1
//! (`tests/fixtures/schema-v1/`: the SQLite file `cases.db` and the same records as JSON in
//! `records.json`). Three cases: a named reporter's complaint walked through every stage and
//! closed, an anonymous report that was declined, and a second report of the same named
//! reporter left at intake until the deadline watcher urged it.
//!
//! The files were written once, by the schema-1 code, and must keep opening, replaying,
//! verifying and exporting with every later release: they cannot be regenerated (later code
//! writes later schema versions). Tests copy them to a temporary directory first, since
//! opening a store writes its read-model sidecar beside it.

mod common;

use std::path::{Path, PathBuf};

use caseflow::domain::*;
use caseflow::store::{EventStore, RecordedEvent, SqliteOptions, SqliteStore};
use caseflow::{Engine, EngineConfig};
use chrono::Duration;
use common::*;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1")
}

/// A private copy of the fixture store; the directory lives as long as the guard.
fn copy_of_fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cases.db");
    std::fs::copy(fixture_dir().join("cases.db"), &path).expect("copy the fixture store");
    (dir, path)
}

async fn open_copy(path: &Path) -> Engine {
    let options = SqliteOptions {
        create_if_missing: false,
        ..SqliteOptions::default()
    };
    let config = EngineConfig::with_store(
        caseflow::StoreConfig::Sqlite {
            path: path.to_path_buf(),
            options,
        },
        district(),
    )
    .clock(std::sync::Arc::new(caseflow::ManualClock::new(
        t0() + Duration::days(30),
    )));
    Engine::open(config)
        .await
        .expect("the schema-1 store opens")
}

fn recorded_json() -> Vec<RecordedEvent> {
    let text = std::fs::read_to_string(fixture_dir().join("records.json")).expect("records.json");
    serde_json::from_str(&text).expect("records.json holds recorded events")
}

#[tokio::test]
async fn the_json_fixture_holds_exactly_the_records_of_the_store_file() {
    let (_dir, path) = copy_of_fixture();
    let options = SqliteOptions {
        create_if_missing: false,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, options).expect("open the fixture");
    let records = store.read_all(1, 1000).await.expect("read the fixture");
    assert_eq!(records.len(), 16);
    assert_eq!(records, recorded_json());
    assert!(
        records.iter().all(|r| r.schema_version == 1),
        "the fixture is all schema version 1"
    );
}

#[tokio::test]
async fn a_schema_v1_store_verifies_and_its_read_models_match_a_rebuild() {
    let (_dir, path) = copy_of_fixture();
    let engine = open_copy(&path).await;
    let outcome = engine.verify().await.expect("verify runs");
    assert!(outcome.is_ok(), "{}", outcome.to_markdown());
    assert_eq!(outcome.streams_checked, 3);
    assert_eq!(outcome.events_checked, 16);
}

#[tokio::test]
async fn a_schema_v1_store_replays_every_case() {
    let (_dir, path) = copy_of_fixture();
    let engine = open_copy(&path).await;

    let closed = engine.case_state(case_id(1)).await.expect("case 1 replays");
    assert_eq!(closed.stage(), Stage::Closed);
    let case = closed.case().expect("reported facts");
    assert_eq!(
        case.reporter_handle,
        ReporterHandle(uuid::Uuid::from_u128(7))
    );

    let declined = engine.case_state(case_id(2)).await.expect("case 2 replays");
    assert_eq!(declined.stage(), Stage::Declined);
    let anonymous = declined.case().expect("reported facts");
    assert!(anonymous.reporter.is_anonymous());

    let urged = engine.case_state(case_id(3)).await.expect("case 3 replays");
    assert_eq!(urged.stage(), Stage::Intake);
    let intake = urged
        .deadline(DeadlineKind::IntakeDecision)
        .expect("the intake deadline is open");
    assert!(intake.urged.is_some(), "the watcher's urging replays");

    // The read models built from the old events place case 3 on its zone's rooms' lists.
    let items = engine
        .todo(&UnitId::new("room-1"), engine.now())
        .await
        .expect("to-do list");
    assert!(items.iter().any(|i| i.case.case_id == case_id(3)));
}

#[tokio::test]
async fn a_schema_v1_store_exports_every_event_to_xes_and_ocel() {
    let (_dir, path) = copy_of_fixture();
    let engine = open_copy(&path).await;
    let mut xes = Vec::new();
    let summary = engine.export_xes(&mut xes).await.expect("XES export");
    assert_eq!((summary.cases, summary.events), (3, 16));
    let mut ocel = Vec::new();
    let summary = engine.export_ocel2(&mut ocel).await.expect("OCEL export");
    assert_eq!((summary.cases, summary.events), (3, 16));
    for (name, bytes) in [("XES", &xes), ("OCEL", &ocel)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains("13800000000") && !text.contains("王某"),
            "the {name} export shows no reporter contact"
        );
    }
}

#[tokio::test]
async fn a_schema_v1_store_keeps_working_after_it_is_opened() {
    let (_dir, path) = copy_of_fixture();
    let engine = open_copy(&path).await;
    let at = engine.now();
    let outcome = engine
        .execute(caseflow::CommandEnvelope::new(
            engine.new_id(),
            officer("room-1"),
            at,
            AcceptCase {
                case_id: case_id(3),
            },
        ))
        .await
        .expect("a command on an old case");
    assert_eq!(outcome.first_version, 3);
    let outcome = engine.verify().await.expect("verify runs");
    assert!(outcome.is_ok(), "{}", outcome.to_markdown());
}
