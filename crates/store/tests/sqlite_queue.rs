//! SQLite-specific behaviour of the writer queue: back-pressure and per-caller results.

use std::sync::Arc;

use caseflow_store::contract::request;
use caseflow_store::{EventStore, ExpectedVersion, SqliteOptions, SqliteStore, StoreError};

/// With a queue of one slot and one request per transaction, many concurrent callers wait
/// for room (back-pressure) instead of failing, and every append lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_makes_callers_wait_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        queue_capacity: 1,
        batch_requests_max: 1,
        ..SqliteOptions::normal()
    };
    let store = Arc::new(SqliteStore::open(dir.path().join("q.db"), options).unwrap());
    let mut joins = Vec::new();
    for w in 0..32u64 {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            for v in 0..5u64 {
                store
                    .append(request(&format!("w-{w}"), ExpectedVersion::Exact(v), 1))
                    .await
                    .unwrap();
            }
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    assert_eq!(store.head_position().await.unwrap(), 160);
    let log = store.read_all(1, usize::MAX).await.unwrap();
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e.position == i as u64 + 1)
    );
    assert!(store.verify_all().await.unwrap().is_intact());
}

/// In one large batch, a conflicting request, a duplicate event id and successes are
/// answered individually, and the failures leave no trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_batch_answers_each_caller_as_if_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(dir.path().join("b.db"), SqliteOptions::normal()).unwrap());
    let seed = request("shared", ExpectedVersion::NoStream, 1);
    let taken = seed.events[0].event_id;
    store.append(seed).await.unwrap();
    let mut joins = Vec::new();
    for i in 0..48u64 {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            let mut req = match i % 3 {
                0 => request("shared", ExpectedVersion::Exact(1), 2),
                1 => request(&format!("own-{i}"), ExpectedVersion::NoStream, 1),
                _ => request(&format!("dup-{i}"), ExpectedVersion::NoStream, 2),
            };
            if i % 3 == 2 {
                req.events[1].event_id = taken;
            }
            (i, store.append(req).await)
        }));
    }
    let mut shared_winners = 0;
    for j in joins {
        match j.await.unwrap() {
            (i, Ok(o)) if i % 3 == 0 => {
                shared_winners += 1;
                assert_eq!((o.first_version, o.last_version), (2, 3));
            }
            (i, Err(StoreError::VersionConflict { actual, .. })) if i % 3 == 0 => {
                assert_eq!(actual, 3)
            }
            (i, Ok(o)) if i % 3 == 1 => assert_eq!(o.first_version, 1),
            (i, Err(StoreError::DuplicateEventId { event_id })) if i % 3 == 2 => {
                assert_eq!(event_id, taken)
            }
            (i, other) => panic!("request {i}: {other:?}"),
        }
    }
    assert_eq!(shared_winners, 1);
    assert_eq!(store.stream_version("shared").await.unwrap(), Some(3));
    for i in (2..48).step_by(3) {
        assert_eq!(
            store.stream_version(&format!("dup-{i}")).await.unwrap(),
            None
        );
    }
    let head = store.head_position().await.unwrap();
    assert_eq!(head, 1 + 2 + 16);
    assert_eq!(
        store.read_all(1, usize::MAX).await.unwrap().len() as u64,
        head
    );
    assert!(store.verify_all().await.unwrap().is_intact());
}

/// Dropping the store ends live subscriptions once they have delivered every committed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_store_ends_subscriptions_after_the_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db"), SqliteOptions::normal()).unwrap();
    let mut sub = store.subscribe(1).await.unwrap();
    store
        .append(request("a", ExpectedVersion::NoStream, 3))
        .await
        .unwrap();
    drop(store);
    for p in 1..=3 {
        assert_eq!(sub.next().await.unwrap().unwrap().position, p);
    }
    assert!(sub.next().await.is_none());
}

/// Two writers on one file would assign the same positions; the second is caught at its
/// first clashing insert and refuses writes, and the file stays consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    let first = SqliteStore::open(&path, SqliteOptions::normal()).unwrap();
    first
        .append(request("a", ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    let second = SqliteStore::open(&path, SqliteOptions::normal()).unwrap();
    first
        .append(request("a", ExpectedVersion::Exact(1), 1))
        .await
        .unwrap();
    let clash = second
        .append(request("b", ExpectedVersion::NoStream, 1))
        .await;
    assert!(clash.is_err(), "{clash:?}");
    let again = second
        .append(request("c", ExpectedVersion::NoStream, 1))
        .await;
    assert!(
        matches!(again, Err(StoreError::WritesRefused { .. })),
        "{again:?}"
    );
    drop(second);
    assert_eq!(first.head_position().await.unwrap(), 2);
    assert_eq!(first.stream_version("b").await.unwrap(), None);
    assert!(first.verify_all().await.unwrap().is_intact());
}
