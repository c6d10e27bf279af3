//! A full disk: the append that hits it fails with a clear `DiskFull`, later writes are
//! refused, and once space is freed the store opens with every acknowledged event and
//! verifies. Two faults we control, both in CI without root: SQLite's own page quota
//! (`max_page_count`, which fails page allocation with SQLITE_FULL exactly as ENOSPC does),
//! and the state a checkpoint leaves when the disk fills while it copies pages back — the
//! header already promises the new pages, the file does not have them, the WAL does.

use std::path::{Path, PathBuf};

use caseflow_store::contract::request;
use caseflow_store::{
    AppendOutcome, EventStore, ExpectedVersion, SqliteOptions, SqliteStore, StoreError,
};

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Appends until the store refuses; returns what was acknowledged and the first refusal.
async fn fill_until_refused(store: &SqliteStore) -> (Vec<AppendOutcome>, StoreError) {
    let mut acknowledged = Vec::new();
    for i in 0..100_000u64 {
        match store
            .append(request(
                &format!("full-{}", i % 50),
                ExpectedVersion::Any,
                4,
            ))
            .await
        {
            Ok(outcome) => acknowledged.push(outcome),
            Err(e) => return (acknowledged, e),
        }
    }
    panic!("the quota was never reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_is_a_clear_error_refuses_writes_and_the_store_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let quota = SqliteOptions {
        max_page_count: Some(64),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, quota).unwrap();
    let (acknowledged, err) = fill_until_refused(&store).await;
    assert!(!acknowledged.is_empty(), "the quota left no room at all");
    assert!(
        matches!(&err, StoreError::DiskFull { reason } if reason.contains("full")),
        "{err:?}"
    );
    assert!(err.is_fatal() && !err.is_retryable());
    assert!(err.to_string().contains("free space"), "{err}");
    // Every later write is refused, and says why.
    let refused = store
        .append(request("after", ExpectedVersion::Any, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::WritesRefused { reason } if reason.contains("disk is full")),
        "{refused:?}"
    );
    // Reads still work.
    let last = acknowledged.last().unwrap().last_position;
    assert_eq!(store.head_position().await.unwrap(), last);
    drop(store);

    // Space is freed (no quota): the store opens, holds every acknowledged event, verifies,
    // and appends again.
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.head_position().await.unwrap(), last);
    for outcome in &acknowledged {
        let records = store.read_all(outcome.first_position, 4).await.unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].position, outcome.first_position);
    }
    let report = store.verify_all().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    store
        .append(request("after", ExpectedVersion::Any, 1))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_cut_short_by_a_full_disk_is_not_a_truncated_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    // Grow the database beyond its checkpointed size while the WAL holds the pages (few
    // enough commits that no automatic checkpoint runs: fewer than 1000 WAL frames).
    for i in 0..60u64 {
        store
            .append(request(
                &format!("grow-{}", i % 30),
                ExpectedVersion::Any,
                3,
            ))
            .await
            .unwrap();
    }
    let head = store.head_position().await.unwrap();
    // The state on disk at that moment, as a copy: the database file and its WAL.
    let crashed = dir.path().join("crashed.db");
    std::fs::copy(&path, &crashed).unwrap();
    std::fs::copy(with_suffix(&path, "-wal"), with_suffix(&crashed, "-wal")).unwrap();
    drop(store);
    // A checkpoint copies pages from the WAL into the file in page order: page 1 (the header,
    // which promises the new page count) first. The disk filled before the file was
    // extended: write the WAL's newest page 1 into the copy, and nothing else.
    let wal = std::fs::read(with_suffix(&crashed, "-wal")).unwrap();
    let page_size = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
    let frame = 24 + page_size;
    let newest_page_one = (0..(wal.len() - 32) / frame)
        .rev()
        .map(|i| 32 + i * frame)
        .find(|at| u32::from_be_bytes(wal[*at..*at + 4].try_into().unwrap()) == 1)
        .expect("page 1 is in the WAL");
    let mut file = std::fs::read(&crashed).unwrap();
    let header = &wal[newest_page_one + 24..newest_page_one + 24 + page_size];
    file[..page_size].copy_from_slice(header);
    std::fs::write(&crashed, &file).unwrap();
    let promised = u32::from_be_bytes(header[28..32].try_into().unwrap()) as usize * page_size;
    assert!(
        promised > file.len(),
        "the header must promise pages the file lacks"
    );

    // SQLite reads such a file as healthy (the pages are in the WAL), and so does the store.
    let store = SqliteStore::open(&crashed, SqliteOptions::default()).unwrap();
    assert_eq!(store.head_position().await.unwrap(), head);
    assert!(store.verify_all().await.unwrap().is_intact());
    drop(store);
    // After the completed checkpoint of that clean close, it is an ordinary closed store.
    let store = SqliteStore::open_read_only(&crashed).unwrap();
    assert_eq!(store.head_position().await.unwrap(), head);
}
