//! Opening a PostgreSQL store: migrations, newer and foreign schemas, unreachable servers,
//! leadership. Live (feature `postgres`, server in `CASEFLOW_TEST_POSTGRES`).
#![cfg(feature = "postgres")]

use caseflow_store::postgres::testing::TempSchema;
use caseflow_store::postgres::{PostgresStore, SCHEMA_VERSION};
use caseflow_store::{EventStore, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_schema_is_created_and_reopened_at_the_current_version() {
    let schema = TempSchema::new();
    let first = PostgresStore::connect_str(&schema.url(""))
        .await
        .expect("create");
    first
        .append(caseflow_store::contract::request(
            "s-1",
            caseflow_store::ExpectedVersion::NoStream,
            3,
        ))
        .await
        .expect("append");
    drop(first);
    let again = PostgresStore::connect_str(&schema.url(""))
        .await
        .expect("reopen");
    assert_eq!(again.head_position().await.expect("head"), 3);
    let n = schema
        .execute_blocking(&format!(
            "UPDATE {}.caseflow_schema SET version = version WHERE version = {SCHEMA_VERSION}",
            schema.name
        ))
        .expect("read version");
    assert_eq!(n, 1, "the schema records version {SCHEMA_VERSION}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let schema = TempSchema::new();
    drop(
        PostgresStore::connect_str(&schema.url(""))
            .await
            .expect("create"),
    );
    schema
        .execute_blocking(&format!(
            "UPDATE {}.caseflow_schema SET version = {}",
            schema.name,
            SCHEMA_VERSION + 1
        ))
        .expect("bump version");
    match PostgresStore::connect_str(&schema.url("")).await {
        Err(StoreError::NewerFormat { found, supported }) => {
            assert_eq!(
                (found, supported),
                (i64::from(SCHEMA_VERSION) + 1, i64::from(SCHEMA_VERSION))
            );
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_schema_is_refused_and_left_alone() {
    let schema = TempSchema::new();
    schema
        .execute_blocking(&format!("CREATE SCHEMA {}", schema.name))
        .expect("create schema");
    schema
        .execute_blocking(&format!("CREATE TABLE {}.invoices (id int)", schema.name))
        .expect("create a foreign table");
    match PostgresStore::connect_str(&schema.url("")).await {
        Err(StoreError::NotACaseflowStore { .. }) => {}
        other => panic!("expected NotACaseflowStore, got {other:?}"),
    }
    let n = schema
        .execute_blocking(&format!(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = '{}'",
            schema.name
        ))
        .expect("count tables");
    assert_eq!(n, 1, "nothing was added to the foreign schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_clear_error_without_the_password() {
    // Port 1 on the loopback refuses connections at once.
    let url = "postgres://caseflow:s3cret-pw@127.0.0.1:1/test?connect_timeout_ms=2000";
    let err = PostgresStore::connect_str(url)
        .await
        .expect_err("no server");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(text.contains("127.0.0.1:1"), "names the server: {text}");
    assert!(!text.contains("s3cret-pw"), "hides the password: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_database_is_misconfigured() {
    let schema = TempSchema::new();
    let base = schema.base_url.rsplit_once('/').map(|(b, _)| b.to_owned());
    let url = format!(
        "{}/no_such_database_cf",
        base.expect("a URL with a database")
    );
    let err = PostgresStore::connect_str(&url)
        .await
        .expect_err("no database");
    assert!(matches!(err, StoreError::Misconfigured { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_the_next_takes_over() {
    let schema = TempSchema::new();
    let a = PostgresStore::connect_str(&schema.url("&poll_ms=50"))
        .await
        .expect("a");
    let b = PostgresStore::connect_str(&schema.url("&poll_ms=50"))
        .await
        .expect("b");
    let lease = a.try_lead("watcher").await.expect("try").expect("a leads");
    assert!(lease.is_held());
    assert!(
        b.try_lead("watcher").await.expect("try").is_none(),
        "b must wait"
    );
    assert!(
        b.try_lead("other-role").await.expect("try").is_some(),
        "roles are separate"
    );
    drop(lease);
    // The lock goes with the connection; the server notices the close promptly.
    let mut taken = None;
    for _ in 0..100 {
        if let Some(lease) = b.try_lead("watcher").await.expect("try") {
            taken = Some(lease);
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(taken.is_some(), "b takes over after a lets go");
}
