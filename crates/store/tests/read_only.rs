//! Opening for reading never writes: a read-only open of a missing, empty or foreign file is
//! its clear error and creates nothing; a read-only open of a closed store leaves every file
//! of its directory byte for byte as it was; writers refuse a read-only file at open; and
//! two processes creating one file at once both succeed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use caseflow_store::contract::request;
use caseflow_store::{EventStore, ExpectedVersion, SqliteOptions, SqliteStore, StoreError};
use sha2::{Digest, Sha256};

/// Every file of a directory with the SHA-256 of its bytes.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let digest = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
            (path, digest)
        })
        .collect()
}

async fn closed_store(dir: &Path) -> PathBuf {
    let path = dir.join("cases.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    for i in 0..50u64 {
        store
            .append(request(
                &format!("s-{}", i % 7),
                ExpectedVersion::Any,
                1 + i % 3,
            ))
            .await
            .unwrap();
    }
    drop(store);
    path
}

#[test]
fn read_only_open_of_a_missing_file_is_missing_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-here.db");
    let err = SqliteStore::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    assert!(fingerprint(dir.path()).is_empty(), "a file was created");
}

#[test]
fn read_only_open_of_an_empty_file_is_not_a_store_and_leaves_it_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let before = fingerprint(dir.path());
    let err = SqliteStore::open_read_only(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::NotACaseflowStore { reason, .. } if reason.contains("empty")),
        "{err:?}"
    );
    assert_eq!(fingerprint(dir.path()), before);
}

#[test]
fn read_only_open_of_foreign_files_is_not_a_store_and_leaves_them_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, but long enough to have a header",
    )
    .unwrap();
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE mine (x); INSERT INTO mine VALUES (1);")
        .unwrap();
    drop(conn);
    let before = fingerprint(dir.path());
    for path in [&text, &other] {
        let err = SqliteStore::open_read_only(path).unwrap_err();
        assert!(
            matches!(err, StoreError::NotACaseflowStore { .. }),
            "{err:?}"
        );
    }
    assert_eq!(fingerprint(dir.path()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_open_of_a_closed_store_reads_verifies_and_changes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = closed_store(dir.path()).await;
    let before = fingerprint(dir.path());
    assert_eq!(before.len(), 1, "a closed store is one file: {before:?}");
    let store = SqliteStore::open_read_only(&path).unwrap();
    assert!(store.is_read_only());
    let report = store.verify_all().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 99);
    assert_eq!(store.head_position().await.unwrap(), 99);
    assert_eq!(store.read_all(1, 1000).await.unwrap().len(), 99);
    assert_eq!(store.read_stream("s-1", 1, 100).await.unwrap().len(), 14);
    let refused = store
        .append(request("s-1", ExpectedVersion::Any, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::ReadOnly { .. }),
        "{refused:?}"
    );
    assert!(refused.is_fatal() && !refused.is_retryable());
    drop(store);
    assert_eq!(
        fingerprint(dir.path()),
        before,
        "reading changed or created a file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_open_of_a_store_in_use_sees_the_writers_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = closed_store(dir.path()).await;
    let writer = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    writer
        .append(request("live", ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    let reader = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(reader.head_position().await.unwrap(), 101);
    writer
        .append(request("live", ExpectedVersion::Exact(2), 1))
        .await
        .unwrap();
    assert_eq!(reader.head_position().await.unwrap(), 102);
    assert!(reader.verify_all().await.unwrap().is_intact());
}

#[tokio::test]
async fn a_read_only_store_file_is_refused_at_open_for_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = closed_store(dir.path()).await;
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    let before = fingerprint(dir.path());
    let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
    assert!(
        matches!(&err, StoreError::ReadOnly { reason, .. } if reason.contains("read-only")),
        "{err:?}"
    );
    assert!(err.is_fatal() && !err.is_retryable());
    assert_eq!(fingerprint(dir.path()), before);
    // Reading it is still fine.
    let store = SqliteStore::open_read_only(&path).unwrap();
    assert!(store.verify_all().await.unwrap().is_intact());
}

#[test]
fn a_missing_file_is_missing_when_creation_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        create_if_missing: false,
        ..SqliteOptions::default()
    };
    let err = SqliteStore::open(dir.path().join("x.db"), options).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    assert!(fingerprint(dir.path()).is_empty());
}

#[test]
fn a_file_created_by_many_openers_at_once_opens_for_all_of_them() {
    // Without the format check inside the migration's write transaction, the openers that
    // waited for the first one failed with "table streams already exists".
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join(format!("race-{round}.db")));
        let openers = 6;
        let barrier = Arc::new(Barrier::new(openers));
        let joins: Vec<_> = (0..openers)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&*path, SqliteOptions::default()).map(drop)
                })
            })
            .collect();
        for j in joins {
            if let Err(e) = j.join().unwrap() {
                panic!("round {round}: a racing opener failed: {e}");
            }
        }
        let store = SqliteStore::open_read_only(&*path).unwrap();
        assert_eq!(store.path(), &*path);
    }
}
