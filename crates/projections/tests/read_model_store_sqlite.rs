//! The read-model store contract on the SQLite backend (a private in-memory database per
//! check), and what only the SQLite backend promises: files of the first release (tables
//! made by its own DDL) keep loading.

use caseflow_projections::persist::contract::DOCS;
use caseflow_projections::{
    CommitBatch, Durability, ReadModelStore, Row, RowChange, SqliteReadModelStore,
};

async fn fresh() -> Box<dyn ReadModelStore> {
    Box::new(SqliteReadModelStore::open_in_memory().expect("an in-memory read-model store"))
}

caseflow_projections::read_model_store_contract_tests!(fresh);

#[tokio::test]
async fn tables_made_by_the_first_releases_ddl_keep_loading_and_taking_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    {
        let store = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
        // The first release created its document tables with this statement.
        store
            .connection()
            .execute_batch(
                "CREATE TABLE contract_docs (
                     case_id TEXT PRIMARY KEY NOT NULL,
                     entry TEXT NOT NULL
                 ) WITHOUT ROWID;
                 INSERT INTO contract_docs VALUES ('a', '{}');",
            )
            .unwrap();
    }
    let mut store = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
    store.ensure_tables(&[DOCS]).await.unwrap();
    let mut batch = CommitBatch::default();
    batch.push(DOCS, RowChange::Upsert(Row(vec!["b".into(), "[]".into()])));
    store.commit(&batch).await.unwrap();
    assert_eq!(
        store.rows(&DOCS).await.unwrap(),
        vec![
            Row(vec!["a".into(), "{}".into()]),
            Row(vec!["b".into(), "[]".into()])
        ]
    );
}

#[tokio::test]
async fn a_commit_to_a_read_only_file_is_a_storage_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    {
        let mut store = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
        store.ensure_tables(&[DOCS]).await.unwrap();
    }
    let mut store = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
    store
        .connection()
        .execute_batch("PRAGMA query_only = ON;")
        .unwrap();
    let mut batch = CommitBatch::default();
    batch.push(DOCS, RowChange::Upsert(Row(vec!["a".into(), "1".into()])));
    batch.checkpoints.push(("todo", 4));
    match store.commit(&batch).await {
        Err(caseflow_projections::ProjectionError::Storage(e)) => {
            assert_eq!(e.backend, "sqlite");
            assert!(!e.retryable, "a read-only database does not heal by itself");
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    store
        .connection()
        .execute_batch("PRAGMA query_only = OFF;")
        .unwrap();
    assert!(store.rows(&DOCS).await.unwrap().is_empty());
    assert_eq!(store.checkpoint("todo").await.unwrap(), 0);
}

#[tokio::test]
async fn a_file_of_an_older_format_is_emptied_so_its_read_models_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE projection_checkpoints (name TEXT PRIMARY KEY NOT NULL, position INTEGER NOT NULL);
             INSERT INTO projection_checkpoints VALUES ('todo', 500);
             CREATE TABLE contract_docs (case_id TEXT PRIMARY KEY NOT NULL, entry TEXT NOT NULL) WITHOUT ROWID;
             INSERT INTO contract_docs VALUES ('a', '{\"old\": true}');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let mut store = SqliteReadModelStore::open(&path, Durability::Normal).unwrap();
    let version: i64 = store
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, caseflow_projections::persist::READ_MODEL_FORMAT);
    assert_eq!(store.checkpoint("todo").await.unwrap(), 0);
    store.ensure_tables(&[DOCS]).await.unwrap();
    assert!(store.rows(&DOCS).await.unwrap().is_empty());
}
