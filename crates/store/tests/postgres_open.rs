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

/// Rewrites a current schema into the layout schema version 2 left: every Merkle node a
/// `tree_nodes` row, no `tree_runs`, migration 2's write function.
async fn downgrade_to_version_2(schema: &TempSchema) {
    use caseflow_store::postgres::testing::migration_sql;
    use caseflow_store::postgres::tokio_postgres;
    let config: tokio_postgres::Config = schema.base_url.parse().expect("url");
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let nodes_of_runs = "INSERT INTO tree_nodes (level, idx, hash) \
         SELECT l, ((c + 1) >> l) - 1, substr(r.nodes, \
            (((2 * c - bit_count(int8send(c))) \
              - (2 * r.first_leaf - bit_count(int8send(r.first_leaf))) + l) * 32 + 1)::int, 32) \
         FROM tree_runs r, generate_series(r.first_leaf, r.first_leaf + r.leaves - 1) AS c, \
              generate_series(0, 62) AS l \
         WHERE (c + 1) % (1::bigint << l) = 0";
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL search_path = {}; {nodes_of_runs}; DROP TABLE tree_runs; \
             DROP FUNCTION caseflow_append_v2; {}; UPDATE caseflow_schema SET version = 2; \
             COMMIT;",
            schema.name,
            migration_sql(2).expect("migration 2"),
        ))
        .await
        .expect("downgrade");
    drop(client);
    let _ = driver.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_schema_migrates_and_its_older_tree_nodes_stay_readable() {
    use caseflow_store::ExpectedVersion;
    use caseflow_store::contract::request;
    use caseflow_store::tree::verify_consistency;
    use caseflow_store::tree::verify_tree;
    let schema = TempSchema::new();
    let store = PostgresStore::connect_str(&schema.url(""))
        .await
        .expect("create");
    for i in 0..9 {
        store
            .append(request(&format!("old-{i}"), ExpectedVersion::NoStream, 7))
            .await
            .expect("append");
    }
    let old_head = store.tree_head().await.expect("head");
    drop(store);
    downgrade_to_version_2(&schema).await;
    let store = PostgresStore::connect_str(&schema.url(""))
        .await
        .expect("migrate");
    assert_eq!(
        store.tree_head().await.expect("head from tree_nodes"),
        old_head,
        "the nodes written before the migration give the same head"
    );
    for i in 0..9 {
        store
            .append(request(&format!("new-{i}"), ExpectedVersion::NoStream, 5))
            .await
            .expect("append after the migration");
    }
    let report = verify_tree(&store).await.expect("verify the tree");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.leaves_checked, 9 * 7 + 9 * 5);
    let new_head = store.tree_head().await.expect("head");
    let proof = store
        .consistency_proof(old_head.tree_size, new_head.tree_size)
        .await
        .expect("consistency proof across the migration");
    verify_consistency(&proof, &old_head.root_hash, &new_head.root_hash)
        .expect("the new tree extends the old one");
}

/// A raw session on the test server, driven on its own task; notifications it receives go
/// to the returned channel.
async fn raw_session(
    schema: &TempSchema,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use futures::StreamExt;
    let config: tokio_postgres::Config = schema.base_url.parse().expect("url");
    let (client, mut connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    (client, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_notified_and_never_before_it_is_visible() {
    use caseflow_store::ExpectedVersion;
    use caseflow_store::contract::request;
    let schema = TempSchema::new();
    let store = PostgresStore::connect_str(&schema.url("&poll_ms=60000"))
        .await
        .expect("create");
    let (client, mut notifications) = raw_session(&schema).await;
    client
        .batch_execute(&format!("LISTEN caseflow_{}", schema.name))
        .await
        .expect("listen");
    let outcome = store
        .append(request("notified", ExpectedVersion::NoStream, 4))
        .await
        .expect("append");
    // The notifier may coalesce, but the last notification names the batch's head, and a
    // notification never names a position that is not yet visible.
    loop {
        let payload =
            tokio::time::timeout(std::time::Duration::from_secs(30), notifications.recv())
                .await
                .expect("a notification within 30 s")
                .expect("the session is open");
        let head: u64 = payload.parse().expect("a position");
        let visible: i64 = client
            .query_one(&format!("SELECT count(*) FROM {}.events", schema.name), &[])
            .await
            .expect("count")
            .get(0);
        assert!(visible as u64 >= head, "notified {head}, visible {visible}");
        if head == outcome.last_position {
            break;
        }
    }
}
