//! The command-id ledger is covered: a ledger row deleted, edited or added behind the
//! store's back, and a command written twice, are each a finding of `verify_all`, in both
//! backends (SQLite through plain SQL on the file, memory through its tamper hook).

use std::path::{Path, PathBuf};

use caseflow_store::contract::{fresh_id, request};
use caseflow_store::{
    AppendOutcome, AppendRequest, EventStore, ExpectedVersion, LedgerFinding, MemoryStore,
    SqliteOptions, SqliteStore, VerifyReport,
};
use uuid::Uuid;

/// A request whose events carry its command id, as the engine writes them.
fn command(stream: &str, count: u64) -> (Uuid, AppendRequest) {
    let cmd = fresh_id();
    let mut req = request(stream, ExpectedVersion::Any, count);
    req.command_id = Some(cmd);
    for e in &mut req.events {
        e.metadata.command_id = Some(cmd);
    }
    (cmd, req)
}

/// Five commands on two streams (positions 1-2, 3, 4-5, 6, 7); returns their ids.
async fn fill(store: &dyn EventStore) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for (stream, count) in [("a", 2), ("b", 1), ("a", 2), ("b", 1), ("a", 1)] {
        let (cmd, req) = command(stream, count);
        store.append(req).await.unwrap();
        ids.push(cmd);
    }
    ids
}

/// A closed SQLite store filled by [`fill`].
async fn sqlite_store(dir: &Path) -> (PathBuf, Vec<Uuid>) {
    let path = dir.join("ledger.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let ids = fill(&store).await;
    assert!(store.verify_all().await.unwrap().is_intact());
    drop(store);
    (path, ids)
}

/// Runs `sql` on the closed file (the tampering an operator with `sqlite3` can do), then
/// verifies it.
async fn tamper_sqlite(path: &Path, sql: &str, params: &[&dyn rusqlite::ToSql]) -> VerifyReport {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute(sql, params).unwrap();
    drop(conn);
    let store = SqliteStore::open_read_only(path).unwrap();
    store.verify_all().await.unwrap()
}

fn only(report: &VerifyReport) -> &LedgerFinding {
    assert!(report.first_broken.is_none(), "{report:?}");
    assert!(!report.is_intact());
    match &report.ledger[..] {
        [one] => one,
        other => panic!("expected one ledger finding, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ledger_row_deleted_leaves_events_without_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ids) = sqlite_store(dir.path()).await;
    let report = tamper_sqlite(
        &path,
        "DELETE FROM commands WHERE command_id = ?1",
        &[&ids[2].as_bytes().as_slice()],
    )
    .await;
    assert!(matches!(only(&report),
        LedgerFinding::EventsWithoutRow { command_id, stream_id, first_position: 4 }
            if *command_id == ids[2] && stream_id == "a"));
    assert_eq!(report.ledger_rows_checked, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ledger_row_edited_does_not_match_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ids) = sqlite_store(dir.path()).await;
    // Point the row at the first batch's positions: a retry would now answer wrongly.
    let report = tamper_sqlite(
        &path,
        "UPDATE commands SET first_position = 1, last_position = 2, first_version = 1, \
         last_version = 2 WHERE command_id = ?1",
        &[&ids[2].as_bytes().as_slice()],
    )
    .await;
    assert!(
        report.ledger.iter().any(|f| matches!(f,
            LedgerFinding::RowWithoutEvents { command_id, reason, .. }
                if *command_id == ids[2] && reason.contains("written by command"))),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ledger_row_shortened_leaves_an_event_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ids) = sqlite_store(dir.path()).await;
    let report = tamper_sqlite(
        &path,
        "UPDATE commands SET last_position = 4, last_version = 3 WHERE command_id = ?1",
        &[&ids[2].as_bytes().as_slice()],
    )
    .await;
    assert!(!report.ledger.is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ledger_row_added_for_a_command_that_never_ran() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ids) = sqlite_store(dir.path()).await;
    let ghost = fresh_id();
    // A row that makes a command look executed, at the positions of another command.
    let report = tamper_sqlite(
        &path,
        "INSERT INTO commands (command_id, stream_key, first_version, last_version, \
         first_position, last_position) VALUES (?1, 1, 1, 2, 1, 2)",
        &[&ghost.as_bytes().as_slice()],
    )
    .await;
    assert!(matches!(only(&report),
        LedgerFinding::RowWithoutEvents { command_id, .. } if *command_id == ghost));
    assert!(!report.ledger.iter().any(|f| matches!(f,
        LedgerFinding::RowWithoutEvents { command_id, .. } if *command_id == ids[0])));
    // A row past the end of the log holds no records at all.
    let ghost2 = fresh_id();
    let report = tamper_sqlite(
        &path,
        "INSERT INTO commands (command_id, stream_key, first_version, last_version, \
         first_position, last_position) VALUES (?1, 1, 9, 9, 99, 99)",
        &[&ghost2.as_bytes().as_slice()],
    )
    .await;
    assert!(report.ledger.iter().any(|f| matches!(f,
        LedgerFinding::RowWithoutEvents { command_id, reason, .. }
            if *command_id == ghost2 && reason.contains("hold no record"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_command_written_twice_is_on_two_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ids) = sqlite_store(dir.path()).await;
    // What deleting a row and re-sending the command leaves: with the row gone, the store
    // writes the command again (a new batch carrying the same id).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "DELETE FROM commands WHERE command_id = ?1",
        [ids[1].as_bytes().as_slice()],
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let mut again = request("b", ExpectedVersion::Any, 1);
    again.command_id = Some(ids[1]);
    again.events[0].metadata.command_id = Some(ids[1]);
    let outcome = store.append(again).await.unwrap();
    assert!(
        !outcome.deduplicated,
        "the row was gone, so it was written again"
    );
    let report = store.verify_all().await.unwrap();
    assert!(
        report.ledger.iter().any(|f| matches!(f,
            LedgerFinding::CommandOnTwoBatches { command_id, first, second }
                if *command_id == ids[1] && first.1 == 3 && second.1 == 8)),
        "{report:?}"
    );
}

#[tokio::test]
async fn memory_ledger_row_deleted_edited_or_added_is_found() {
    let store = MemoryStore::new();
    let ids = fill(&store).await;
    assert!(store.verify_all().await.unwrap().is_intact());

    store.tamper_ledger(|l| {
        l.remove(&ids[3]);
    });
    let report = store.verify_all().await.unwrap();
    assert!(matches!(only(&report),
        LedgerFinding::EventsWithoutRow { command_id, first_position: 6, .. } if *command_id == ids[3]));

    let ghost = fresh_id();
    store.tamper_ledger(|l| {
        l.insert(
            ghost,
            (
                "a".to_owned(),
                AppendOutcome {
                    first_version: 1,
                    last_version: 2,
                    first_position: 1,
                    last_position: 2,
                    deduplicated: false,
                },
            ),
        );
    });
    let report = store.verify_all().await.unwrap();
    assert!(report.ledger.iter().any(|f| matches!(f,
        LedgerFinding::RowWithoutEvents { command_id, .. } if *command_id == ghost)));

    let store = MemoryStore::new();
    let ids = fill(&store).await;
    store.tamper_ledger(|l| {
        if let Some((_, o)) = l.get_mut(&ids[0]) {
            o.last_position = 1;
            o.last_version = 1;
        }
    });
    let report = store.verify_all().await.unwrap();
    assert!(
        report.ledger.iter().any(|f| matches!(f,
            LedgerFinding::RowWithoutEvents { command_id, .. } if *command_id == ids[0])),
        "{report:?}"
    );
}
