//! The read-model store contract suite: written once, run against every
//! [`ReadModelStore`] backend.
//!
//! A backend's test file instantiates it with [`crate::read_model_store_contract_tests!`],
//! giving an async factory that returns a fresh, empty store:
//!
//! ```text
//! async fn fresh() -> Box<dyn caseflow_projections::ReadModelStore> { /* ... */ }
//! caseflow_projections::read_model_store_contract_tests!(fresh);
//! ```
//!
//! Every check panics (like `assert!`) on a violation.

use std::future::Future;

use crate::error::ProjectionError;
use crate::persist::{Cell, Column, CommitBatch, ReadModelStore, Row, RowChange, TableSpec};

/// Instantiates every contract check as a `#[tokio::test]` over `$factory`.
#[macro_export]
macro_rules! read_model_store_contract_tests {
    ($factory:path) => {
        $crate::read_model_store_contract_tests!(@tests $factory;
            missing_checkpoints_are_zero_and_commits_set_them,
            ensuring_tables_again_keeps_their_rows,
            upserts_replace_and_deletes_remove,
            rows_read_back_exactly_in_key_order,
            a_batch_that_fails_midway_writes_nothing,
            an_invalid_row_is_refused_before_anything_is_written,
            clear_empties_one_projection_and_zeroes_its_checkpoint,
            a_rolled_back_batch_leaves_nothing,
            a_table_of_another_shape_is_refused,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::persist::contract::$name(&$factory).await;
            }
        )*
    };
}

/// A document table like the to-do entries'.
pub const DOCS: TableSpec = TableSpec {
    name: "contract_docs",
    columns: &[Column::text("case_id"), Column::text("entry")],
    key_len: 1,
};

/// A table with a composite key and integer columns, like the timeline's.
pub const EVENTS: TableSpec = TableSpec {
    name: "contract_events",
    columns: &[
        Column::text("case_id"),
        Column::integer("version"),
        Column::integer("at_ns"),
        Column::text("note"),
    ],
    key_len: 2,
};

/// A table no check ever creates.
const MISSING: TableSpec = TableSpec {
    name: "contract_never_created",
    columns: &[Column::text("k"), Column::text("v")],
    key_len: 1,
};

fn doc(key: &str, value: &str) -> Row {
    Row(vec![Cell::from(key), Cell::from(value)])
}

fn event(case: &str, version: i64, at: i64, note: &str) -> Row {
    Row(vec![
        Cell::from(case),
        Cell::Integer(version),
        Cell::Integer(at),
        Cell::from(note),
    ])
}

async fn fresh<F, Fut>(factory: &F) -> Box<dyn ReadModelStore>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = factory().await;
    store
        .ensure_tables(&[DOCS, EVENTS])
        .await
        .expect("ensure the contract tables");
    store
}

async fn commit(store: &mut dyn ReadModelStore, batch: CommitBatch) {
    store.commit(&batch).await.expect("commit");
}

fn upserts(table: TableSpec, rows: Vec<Row>, checkpoints: &[(&'static str, u64)]) -> CommitBatch {
    CommitBatch {
        changes: rows
            .into_iter()
            .map(|row| (table, RowChange::Upsert(row)))
            .collect(),
        checkpoints: checkpoints.to_vec(),
    }
}

/// A projection never committed is at 0; a commit sets exactly the checkpoints it names.
pub async fn missing_checkpoints_are_zero_and_commits_set_them<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    assert_eq!(store.checkpoint("todo").await.unwrap(), 0);
    commit(store.as_mut(), upserts(DOCS, vec![], &[("todo", 41)])).await;
    assert_eq!(store.checkpoint("todo").await.unwrap(), 41);
    assert_eq!(store.checkpoint("stats").await.unwrap(), 0);
    commit(
        store.as_mut(),
        upserts(DOCS, vec![], &[("todo", 90), ("stats", 7)]),
    )
    .await;
    assert_eq!(store.checkpoint("todo").await.unwrap(), 90);
    assert_eq!(store.checkpoint("stats").await.unwrap(), 7);
}

/// `ensure_tables` runs at every start: it must keep what is stored.
pub async fn ensuring_tables_again_keeps_their_rows<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    commit(
        store.as_mut(),
        upserts(DOCS, vec![doc("a", "1")], &[("todo", 1)]),
    )
    .await;
    store.ensure_tables(&[DOCS, EVENTS]).await.unwrap();
    assert_eq!(store.rows(&DOCS).await.unwrap(), vec![doc("a", "1")]);
    assert_eq!(store.checkpoint("todo").await.unwrap(), 1);
}

/// An upsert replaces the row with the same key; a delete removes it, and deleting a row
/// that is not there is no error.
pub async fn upserts_replace_and_deletes_remove<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    commit(
        store.as_mut(),
        upserts(DOCS, vec![doc("a", "1"), doc("b", "2")], &[]),
    )
    .await;
    let mut batch = upserts(DOCS, vec![doc("a", "3")], &[]);
    batch.push(DOCS, RowChange::Delete(Row(vec![Cell::from("b")])));
    batch.push(DOCS, RowChange::Delete(Row(vec![Cell::from("zz")])));
    // Within one batch, changes apply in order: the last one wins.
    batch.push(DOCS, RowChange::Upsert(doc("c", "4")));
    batch.push(DOCS, RowChange::Delete(Row(vec![Cell::from("c")])));
    batch.push(DOCS, RowChange::Upsert(doc("c", "5")));
    commit(store.as_mut(), batch).await;
    assert_eq!(
        store.rows(&DOCS).await.unwrap(),
        vec![doc("a", "3"), doc("c", "5")]
    );
    let mut events = upserts(EVENTS, vec![event("k", 1, 10, "x")], &[]);
    events.push(EVENTS, RowChange::Upsert(event("k", 1, 11, "y")));
    events.push(
        EVENTS,
        RowChange::Delete(Row(vec![Cell::from("k"), Cell::Integer(2)])),
    );
    commit(store.as_mut(), events).await;
    assert_eq!(
        store.rows(&EVENTS).await.unwrap(),
        vec![event("k", 1, 11, "y")]
    );
}

/// Cells come back exactly (Unicode, quotes, JSON, integer extremes), rows in ascending
/// key order whatever order they were written in.
pub async fn rows_read_back_exactly_in_key_order<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    let written = vec![
        event("case-b", 2, i64::MAX, "东苑社区 'quoted' \"double\""),
        event("case-a", 10, i64::MIN, "{\"json\": [1, 2]}"),
        event("case-b", 1, 0, ""),
        event("case-a", 2, -1, "line\nbreak\ttab"),
    ];
    commit(store.as_mut(), upserts(EVENTS, written, &[])).await;
    let read = store.rows(&EVENTS).await.unwrap();
    assert_eq!(
        read,
        vec![
            event("case-a", 2, -1, "line\nbreak\ttab"),
            event("case-a", 10, i64::MIN, "{\"json\": [1, 2]}"),
            event("case-b", 1, 0, ""),
            event("case-b", 2, i64::MAX, "东苑社区 'quoted' \"double\""),
        ]
    );
}

/// A batch whose write fails after some rows (its last change goes to a table that does
/// not exist) leaves neither rows nor checkpoints behind.
pub async fn a_batch_that_fails_midway_writes_nothing<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    commit(
        store.as_mut(),
        upserts(DOCS, vec![doc("a", "1")], &[("todo", 5)]),
    )
    .await;
    let mut batch = upserts(DOCS, vec![doc("a", "2"), doc("b", "2")], &[("todo", 9)]);
    batch.push(MISSING, RowChange::Upsert(doc("k", "v")));
    let error = store.commit(&batch).await.expect_err("the batch fails");
    assert!(
        matches!(error, ProjectionError::Storage(_)),
        "a backend failure is a storage error: {error:?}"
    );
    assert_eq!(store.rows(&DOCS).await.unwrap(), vec![doc("a", "1")]);
    assert_eq!(store.checkpoint("todo").await.unwrap(), 5);
}

/// A row that does not fit its table is refused with `InvalidRow`, and nothing of the
/// batch is written.
pub async fn an_invalid_row_is_refused_before_anything_is_written<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    let mut batch = upserts(DOCS, vec![doc("a", "1")], &[("todo", 3)]);
    batch.push(
        EVENTS,
        RowChange::Upsert(Row(vec![Cell::from("k"), Cell::from("not a number")])),
    );
    let error = store
        .commit(&batch)
        .await
        .expect_err("the batch is refused");
    assert!(
        matches!(error, ProjectionError::InvalidRow { .. }),
        "{error:?}"
    );
    assert!(store.rows(&DOCS).await.unwrap().is_empty());
    assert_eq!(store.checkpoint("todo").await.unwrap(), 0);
}

/// `clear` empties the named projection's tables and zeroes its checkpoint, and touches no
/// other projection.
pub async fn clear_empties_one_projection_and_zeroes_its_checkpoint<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    let mut batch = upserts(DOCS, vec![doc("a", "1")], &[("todo", 8), ("timeline", 8)]);
    batch.push(EVENTS, RowChange::Upsert(event("k", 1, 1, "n")));
    commit(store.as_mut(), batch).await;
    store.clear("todo", &[DOCS]).await.unwrap();
    assert!(store.rows(&DOCS).await.unwrap().is_empty());
    assert_eq!(store.checkpoint("todo").await.unwrap(), 0);
    assert_eq!(store.rows(&EVENTS).await.unwrap().len(), 1);
    assert_eq!(store.checkpoint("timeline").await.unwrap(), 8);
}

/// What a crash before the commit leaves: nothing of the batch.
pub async fn a_rolled_back_batch_leaves_nothing<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    commit(
        store.as_mut(),
        upserts(DOCS, vec![doc("a", "1")], &[("todo", 2)]),
    )
    .await;
    let batch = upserts(DOCS, vec![doc("a", "9"), doc("b", "9")], &[("todo", 4)]);
    store.write_then_roll_back(&batch).await.unwrap();
    assert_eq!(store.rows(&DOCS).await.unwrap(), vec![doc("a", "1")]);
    assert_eq!(store.checkpoint("todo").await.unwrap(), 2);
}

/// A stored table whose columns differ from the description is reported, not written
/// into.
pub async fn a_table_of_another_shape_is_refused<F, Fut>(factory: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Box<dyn ReadModelStore>>,
{
    let mut store = fresh(factory).await;
    const RESHAPED: TableSpec = TableSpec {
        columns: &[Column::text("case_id"), Column::text("document")],
        ..DOCS
    };
    let error = store
        .ensure_tables(&[RESHAPED])
        .await
        .expect_err("another shape is refused");
    assert!(
        matches!(error, ProjectionError::CorruptReadModel { .. }),
        "{error:?}"
    );
}
