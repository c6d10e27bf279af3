//! Corruption: every damaged or foreign file gives its documented error, never a panic,
//! and the store never writes to it.

use std::path::{Path, PathBuf};

use caseflow_store::contract::request;
use caseflow_store::{
    EventStore, ExpectedVersion, LinkFault, SqliteOptions, SqliteStore, StoreError,
};

/// Builds a closed store file with enough records to span many pages.
async fn build_store(dir: &Path) -> PathBuf {
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path, SqliteOptions::normal()).unwrap();
    for i in 0..300u64 {
        store
            .append(request(
                &format!("case-{}", i % 40),
                ExpectedVersion::Any,
                1 + i % 4,
            ))
            .await
            .unwrap();
    }
    drop(store);
    assert!(
        !wal(&path).exists(),
        "a clean close checkpoints and removes the WAL"
    );
    path
}

fn wal(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Opens a damaged file and exercises it: returns the first error seen, after checking
/// that whatever happened, the store refused to write and the file is byte-for-byte intact.
async fn open_and_exercise(path: &Path) -> StoreError {
    let before = bytes(path);
    let err = match SqliteStore::open(path, SqliteOptions::default()) {
        Err(e) => e,
        Ok(store) => {
            let err = match store.verify_all().await {
                Err(e) => e,
                Ok(report) => panic!("verify_all passed on a damaged file: {report:?}"),
            };
            // Once corruption is known, every write is refused.
            let refused = store.append(request("new", ExpectedVersion::Any, 1)).await;
            assert!(
                matches!(refused, Err(StoreError::WritesRefused { .. })),
                "append after corruption: {refused:?}"
            );
            drop(store);
            err
        }
    };
    assert!(bytes(path) == before, "the store wrote to a damaged file");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_file_is_reported_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_store(dir.path()).await;
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [len / 2, len - 1, 200, 50] {
        let copy = dir.path().join(format!("truncated-{keep}.db"));
        std::fs::copy(&path, &copy).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_len(keep)
            .unwrap();
        let err = open_and_exercise(&copy).await;
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "keep {keep}: {err:?}"
        );
        assert!(err.is_fatal());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_page_is_reported_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_store(dir.path()).await;
    let original = bytes(&path);
    let page = 4096usize;
    let pages = original.len() / page;
    assert!(pages >= 8, "fixture spans {pages} pages");
    // Garble several different pages, one at a time (table pages and index pages).
    for victim in [2, pages / 3, pages / 2, pages - 1] {
        let mut garbled = original.clone();
        for (i, b) in garbled[victim * page..(victim + 1) * page]
            .iter_mut()
            .enumerate()
        {
            *b = (i as u8).wrapping_mul(37) ^ 0x5A;
        }
        let copy = dir.path().join(format!("garbled-{victim}.db"));
        std::fs::write(&copy, &garbled).unwrap();
        let err = open_and_exercise(&copy).await;
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "page {victim}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_changed_behind_the_stores_back_is_the_first_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_store(dir.path()).await;
    let (stream, version) = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let target: (String, i64) = conn
            .query_row(
                "SELECT s.stream_id, e.version FROM events e JOIN streams s USING (stream_key) \
                 WHERE e.position = 150",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        conn.execute(
            "UPDATE events SET payload = CAST('{\"n\":999}' AS BLOB) WHERE position = 150",
            [],
        )
        .unwrap();
        target
    };
    let before = bytes(&path);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let report = store.verify_all().await.unwrap();
    let broken = report.first_broken.expect("the change is detected");
    assert_eq!(
        (broken.stream_id.as_str(), broken.version),
        (stream.as_str(), version as u64)
    );
    assert_eq!(broken.position, Some(150));
    assert!(matches!(broken.fault, LinkFault::HashMismatch { .. }));
    let one = store.verify_stream(&stream).await.unwrap();
    assert_eq!(one.first_broken.map(|b| b.version), Some(version as u64));
    // Reads return the stored bytes as they are; verification is what judges them.
    let read = store.read_stream(&stream, version as u64, 1).await.unwrap();
    assert_eq!(read[0].payload, b"{\"n\":999}");
    drop(store);
    assert!(bytes(&path) == before, "verification wrote to the file");
}

#[tokio::test]
async fn wrong_user_version_is_a_newer_format_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_store(dir.path()).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(
            None,
            "user_version",
            caseflow_store::sqlite::FORMAT_VERSION + 1,
        )
        .unwrap();
    let before = bytes(&path);
    match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(StoreError::NewerFormat { found, supported }) => {
            assert_eq!(
                (found, supported),
                (
                    caseflow_store::sqlite::FORMAT_VERSION + 1,
                    caseflow_store::sqlite::FORMAT_VERSION
                )
            );
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
    assert!(bytes(&path) == before);
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 0)
        .unwrap();
    let before = bytes(&path);
    let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(bytes(&path) == before);
}

#[test]
fn foreign_files_are_not_caseflow_stores_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some text, certainly not a database\n").unwrap();
    let other = dir.path().join("other.sqlite");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('ann');")
            .unwrap();
    }
    let tiny = dir.path().join("tiny");
    std::fs::write(&tiny, b"SQLite").unwrap();
    for path in [&text, &other, &tiny] {
        let before = bytes(path);
        let err = SqliteStore::open(path, SqliteOptions::default()).unwrap_err();
        assert!(
            matches!(err, StoreError::NotACaseflowStore { .. }),
            "{}: {err:?}",
            path.display()
        );
        assert!(bytes(path) == before, "{} was written", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    store
        .append(request("a", ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    store.inject_commit_failure();
    let failed = store
        .append(request("a", ExpectedVersion::Exact(2), 1))
        .await;
    assert!(matches!(failed, Err(StoreError::Io { .. })), "{failed:?}");
    let refused = store.append(request("b", ExpectedVersion::Any, 1)).await;
    assert!(
        matches!(refused, Err(StoreError::WritesRefused { .. })),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().is_fatal());
    // Reads still work and show only what committed.
    assert_eq!(store.stream_version("a").await.unwrap(), Some(2));
    drop(store);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.head_position().await.unwrap(), 2);
    let o = store
        .append(request("a", ExpectedVersion::Exact(2), 1))
        .await
        .unwrap();
    assert_eq!((o.first_version, o.first_position), (3, 3));
    assert!(store.verify_all().await.unwrap().is_intact());
}

#[tokio::test]
async fn reopening_keeps_everything_and_continues_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_store(dir.path()).await;
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let head = store.head_position().await.unwrap();
    assert_eq!(head, (0..300u64).map(|i| 1 + i % 4).sum::<u64>());
    let v = store.stream_version("case-0").await.unwrap().unwrap();
    let o = store
        .append(request("case-0", ExpectedVersion::Exact(v), 1))
        .await
        .unwrap();
    assert_eq!((o.first_version, o.first_position), (v + 1, head + 1));
    assert!(store.verify_all().await.unwrap().is_intact());
}
