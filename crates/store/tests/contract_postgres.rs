//! The backend contract suite, live on PostgreSQL (feature `postgres`; the server named by
//! `CASEFLOW_TEST_POSTGRES`, which CI sets). Every test gets a schema of its own, dropped
//! afterwards, so the tests run in parallel and never see each other's rows.
#![cfg(feature = "postgres")]

use std::sync::Arc;

use caseflow_store::EventStore;
use caseflow_store::contract::{Harness, Tamper};
use caseflow_store::postgres::PostgresStore;
use caseflow_store::postgres::testing::TempSchema;

async fn fresh() -> Harness {
    let schema = Arc::new(TempSchema::new());
    let store = PostgresStore::connect_str(&schema.url(""))
        .await
        .expect("connect to the test server");
    let tamper_schema = Arc::clone(&schema);
    Harness {
        store: Arc::new(store) as Arc<dyn EventStore>,
        tamper: Some(Box::new(move |position, tamper| {
            // A separate connection changes the rows behind the store's back.
            let s = &tamper_schema.name;
            let set = match tamper {
                Tamper::PayloadByte => {
                    "payload = convert_to(replace(convert_from(payload, 'UTF8'), '\"n\"', '\"N\"'), 'UTF8')"
                }
                Tamper::EventType => "event_type = event_type || 'X'",
                Tamper::SchemaVersion => "schema_version = schema_version + 1",
                Tamper::Actor => "actor = actor || '!'",
                Tamper::RecordedAt => "recorded_at_ns = recorded_at_ns + 1",
                Tamper::EventId => "event_id = gen_random_uuid()",
                Tamper::Hash => "hash = decode(repeat('00', 32), 'hex')",
                Tamper::PrevHash => "prev_hash = sha256(prev_hash)",
            };
            let n = tamper_schema
                .execute_blocking(&format!(
                    "UPDATE {s}.events SET {set} WHERE position = {position}"
                ))
                .expect("tamper");
            assert_eq!(n, 1, "no record at position {position}");
        })),
        guard: Some(Box::new(schema)),
    }
}

caseflow_store::contract_tests!(fresh);

/// Two stores on one schema are two independent writers, as two processes are: racing on
/// one stream (exact expected versions and `Any`), every append lands on its own version,
/// none is lost, and the log, chains, ledger and tree verify. A batch whose stream moved
/// between its read and its write is read and written again, never written on a stale head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_on_one_stream_lose_no_update() {
    use caseflow_store::contract::request;
    use caseflow_store::{ExpectedVersion, StoreError};

    let schema = TempSchema::new();
    let mut stores = Vec::new();
    for _ in 0..2 {
        let store = PostgresStore::connect_str(&schema.url(""))
            .await
            .expect("connect to the test server");
        stores.push(Arc::new(store) as Arc<dyn EventStore>);
    }
    let per_task = 10usize;
    let mut joins = Vec::new();
    for task in 0..8u64 {
        let store = Arc::clone(&stores[task as usize % 2]);
        joins.push(tokio::spawn(async move {
            let mut written = Vec::new();
            while written.len() < per_task {
                let seen = store.stream_version("race").await.expect("version");
                let expected = match (task % 4, seen) {
                    (0 | 1, _) => ExpectedVersion::Any,
                    (_, Some(v)) => ExpectedVersion::Exact(v),
                    (_, None) => ExpectedVersion::NoStream,
                };
                match store.append(request("race", expected, 1)).await {
                    Ok(outcome) => written.push(outcome.first_version),
                    Err(StoreError::VersionConflict { .. }) => {}
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            written
        }));
    }
    let mut versions = std::collections::BTreeSet::new();
    for join in joins {
        for version in join.await.expect("task") {
            assert!(versions.insert(version), "version {version} given twice");
        }
    }
    let total = 8 * per_task as u64;
    assert_eq!(versions, (1..=total).collect());
    assert_eq!(stores[0].stream_version("race").await.unwrap(), Some(total));
    let report = stores[1].verify_all().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    let tree = caseflow_store::tree::verify_tree(stores[0].as_ref())
        .await
        .expect("tree");
    assert!(tree.is_intact(), "{tree:?}");
}

/// A writer that skips the first round trip on heads it committed itself must never answer
/// from a stale head: after another store (another process) appended to the stream, an
/// exact expected version that is right now is accepted, one that was right before is a
/// conflict with the true version, a replayed command is answered from the ledger, a stored
/// event id is refused, and the log verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_heads_never_answer_from_a_stale_head() {
    use caseflow_store::contract::request;
    use caseflow_store::{ExpectedVersion, StoreError};

    // Given a store that committed to a stream (so it knows its head), and a second store
    // on the same schema that appended to the stream behind its back
    let schema = TempSchema::new();
    let connect = || async {
        PostgresStore::connect_str(&schema.url(""))
            .await
            .expect("connect to the test server")
    };
    let (knows, other) = (connect().await, connect().await);
    // `Any`, so that the replay below is accepted on the known head and meets the ledger
    // only in the write.
    let mut command = request("s", ExpectedVersion::Any, 1);
    command.command_id = Some(caseflow_store::contract::fresh_id());
    let first = knows.append(command.clone()).await.expect("first command");
    other
        .append(request("s", ExpectedVersion::Exact(1), 1))
        .await
        .expect("the other store's append");

    // When the first store appends on the stream's true version, then on the version it
    // committed itself
    let current = knows
        .append(request("s", ExpectedVersion::Exact(2), 1))
        .await;
    let stale = knows
        .append(request("s", ExpectedVersion::Exact(1), 1))
        .await;

    // Then the first is accepted and the second refused with the true version
    assert_eq!(
        current.expect("append on the true version").first_version,
        3
    );
    match stale {
        Err(StoreError::VersionConflict { actual, .. }) => assert_eq!(actual, 3),
        other => panic!("expected a version conflict at 3, got {other:?}"),
    }

    // When it replays its first command, and then appends a stored event id under a new one
    let replay = knows.append(command.clone()).await.expect("replay");
    let mut duplicate = request("s", ExpectedVersion::Any, 1);
    duplicate.events[0].event_id = command.events[0].event_id;
    let refused = knows.append(duplicate).await;

    // Then the replay has the first outcome, the duplicate is refused, and the log verifies
    assert!(replay.deduplicated);
    assert_eq!(
        (replay.first_version, replay.first_position),
        (first.first_version, first.first_position)
    );
    assert!(
        matches!(refused, Err(StoreError::DuplicateEventId { .. })),
        "{refused:?}"
    );
    assert_eq!(knows.stream_version("s").await.unwrap(), Some(3));
    let report = other.verify_all().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
}
