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
