//! Where read models persist, apart from how they fold events.
//!
//! A [`crate::Projection`] folds events in memory and describes its stored form in a
//! backend-neutral way: the [`TableSpec`]s of its tables, and [`Row`]s of [`Cell`]s
//! (integers and text) that it writes ([`crate::Projection::take_changes`]) and reads back
//! ([`crate::Projection::load`]). A [`ReadModelStore`] keeps those rows and one checkpoint
//! per projection; the runner commits every batch's row changes *and* checkpoints through
//! [`ReadModelStore::commit`], which a backend must make atomic. That is what makes a
//! persistent read model exactly-once across crashes on every backend.
//!
//! Backends: [`SqliteReadModelStore`] (a SQLite file, the sidecar of a SQLite event store, or
//! any file an engine over a URL-backed store is given) and, with the `postgres` feature,
//! `PostgresReadModelStore` (a schema per engine instance on the event store's server). Each backend runs the contract
//! suite in [`contract`].

mod case_json;
pub mod contract;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

use async_trait::async_trait;

use crate::error::ProjectionError;

pub use case_json::{CaseDocuments, CaseJsonTable, ChangedCases, DocumentPersistence};
#[cfg(feature = "postgres")]
pub use postgres::{POSTGRES_READ_MODEL_FORMAT, PostgresReadModelStore};
pub use sqlite::{Durability, READ_MODEL_FORMAT, SqliteReadModelStore};

/// The type of a stored column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// A signed 64-bit integer.
    Integer,
    /// UTF-8 text.
    Text,
}

/// One column of a read-model table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Column {
    /// Its name: lower-case ASCII letters, digits and `_`, not starting with a digit.
    pub name: &'static str,
    /// What it holds (never NULL).
    pub ty: ColumnType,
}

impl Column {
    /// An integer column.
    pub const fn integer(name: &'static str) -> Self {
        Column {
            name,
            ty: ColumnType::Integer,
        }
    }

    /// A text column.
    pub const fn text(name: &'static str) -> Self {
        Column {
            name,
            ty: ColumnType::Text,
        }
    }
}

/// A read-model table: its name, its columns, and how many leading columns form the
/// primary key. Every backend creates it from this description alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableSpec {
    /// The table's name (same alphabet as column names).
    pub name: &'static str,
    /// Every column, the key columns first.
    pub columns: &'static [Column],
    /// How many leading columns are the primary key (at least 1).
    pub key_len: usize,
}

impl TableSpec {
    /// The columns a backend found in its table are this spec's, in order: anything else is
    /// a read model written by other code, refused rather than misread.
    pub(crate) fn check_columns(&self, found: &[String]) -> Result<(), ProjectionError> {
        let wanted: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        if found.iter().map(String::as_str).eq(wanted.iter().copied()) {
            return Ok(());
        }
        Err(ProjectionError::CorruptReadModel {
            projection: self.name.to_owned(),
            reason: format!(
                "table {} has columns {found:?}, expected {wanted:?}",
                self.name
            ),
        })
    }

    /// The key columns.
    pub fn key_columns(&self) -> &'static [Column] {
        &self.columns[..self.key_len.min(self.columns.len())]
    }

    /// Checks the description itself: safe identifiers, a key, distinct column names. A
    /// bad description is a programming error of the projection; backends refuse it.
    pub fn validate(&self) -> Result<(), ProjectionError> {
        let bad = |reason: String| {
            Err(ProjectionError::InvalidTable {
                table: self.name.to_owned(),
                reason,
            })
        };
        if !is_identifier(self.name) {
            return bad("the table name is not a lower-case identifier".to_owned());
        }
        if self.key_len == 0 || self.key_len > self.columns.len() {
            return bad(format!(
                "a key of {} of {} columns",
                self.key_len,
                self.columns.len()
            ));
        }
        for (i, column) in self.columns.iter().enumerate() {
            if !is_identifier(column.name) {
                return bad(format!(
                    "column {:?} is not a lower-case identifier",
                    column.name
                ));
            }
            if self.columns[..i].iter().any(|c| c.name == column.name) {
                return bad(format!("column {:?} appears twice", column.name));
            }
        }
        Ok(())
    }

    /// Checks that `row` fits the table: one cell per column, of the column's type.
    pub fn check_row(&self, row: &Row) -> Result<(), ProjectionError> {
        self.check_cells(&row.0, self.columns)
    }

    /// Checks that `key` holds the key columns' cells.
    pub fn check_key(&self, key: &Row) -> Result<(), ProjectionError> {
        self.check_cells(&key.0, self.key_columns())
    }

    fn check_cells(&self, cells: &[Cell], columns: &[Column]) -> Result<(), ProjectionError> {
        if cells.len() != columns.len() {
            return Err(ProjectionError::InvalidRow {
                table: self.name.to_owned(),
                reason: format!("{} cells for {} columns", cells.len(), columns.len()),
            });
        }
        for (cell, column) in cells.iter().zip(columns) {
            if cell.column_type() != column.ty {
                return Err(ProjectionError::InvalidRow {
                    table: self.name.to_owned(),
                    reason: format!("column {} holds {:?}", column.name, column.ty),
                });
            }
        }
        Ok(())
    }
}

/// `[a-z_][a-z0-9_]*`: safe to write into SQL unquoted on every backend.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cell {
    /// An integer.
    Integer(i64),
    /// Text.
    Text(String),
}

impl Cell {
    /// The column type that holds this value.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Cell::Integer(_) => ColumnType::Integer,
            Cell::Text(_) => ColumnType::Text,
        }
    }
}

impl From<i64> for Cell {
    fn from(value: i64) -> Self {
        Cell::Integer(value)
    }
}

impl From<String> for Cell {
    fn from(value: String) -> Self {
        Cell::Text(value)
    }
}

impl From<&str> for Cell {
    fn from(value: &str) -> Self {
        Cell::Text(value.to_owned())
    }
}

/// One row (or, for a delete, one key): the cells in column order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Row(pub Vec<Cell>);

impl Row {
    /// The text in column `index`, if it is text.
    pub fn text(&self, index: usize) -> Option<&str> {
        match self.0.get(index) {
            Some(Cell::Text(text)) => Some(text),
            _ => None,
        }
    }

    /// The integer in column `index`, if it is an integer.
    pub fn integer(&self, index: usize) -> Option<i64> {
        match self.0.get(index) {
            Some(Cell::Integer(value)) => Some(*value),
            _ => None,
        }
    }
}

/// A change to one row of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// Insert the row, or replace the row with the same key.
    Upsert(Row),
    /// Delete the row with this key (the key cells only); deleting a missing row is no error.
    Delete(Row),
}

/// The changes of one batch: rows of any tables, applied in order, and the checkpoint of
/// every projection the batch ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitBatch {
    /// Row changes in the order they must be applied.
    pub changes: Vec<(TableSpec, RowChange)>,
    /// The new checkpoint (last global position applied) of each projection.
    pub checkpoints: Vec<(&'static str, u64)>,
}

impl CommitBatch {
    /// Adds a row change of `table`.
    pub fn push(&mut self, table: TableSpec, change: RowChange) {
        self.changes.push((table, change));
    }

    /// Checks every change against its table (backends call it before they write).
    pub fn validate(&self) -> Result<(), ProjectionError> {
        for (table, change) in &self.changes {
            match change {
                RowChange::Upsert(row) => table.check_row(row)?,
                RowChange::Delete(key) => table.check_key(key)?,
            }
        }
        Ok(())
    }
}

/// The stored rows of one projection's tables, as [`crate::Projection::load`] receives them.
#[derive(Debug, Default)]
pub struct StoredRows {
    tables: Vec<(&'static str, Vec<Row>)>,
}

impl StoredRows {
    /// Rows of no table (a projection that keeps nothing, or an empty store).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds the rows read from `table`.
    pub fn insert(&mut self, table: &TableSpec, rows: Vec<Row>) {
        self.tables.push((table.name, rows));
    }

    /// Takes the rows of `table` (none if it was not read).
    pub fn take(&mut self, table: &TableSpec) -> Vec<Row> {
        match self.tables.iter().position(|(name, _)| *name == table.name) {
            Some(index) => self.tables.swap_remove(index).1,
            None => Vec::new(),
        }
    }
}

/// Where read-model rows and checkpoints persist.
///
/// Contract (checked by [`contract`] on every backend):
/// - [`Self::ensure_tables`] creates missing tables from their [`TableSpec`] and accepts
///   existing tables of the same shape (it is called at every start);
/// - [`Self::rows`] returns every row of a table in ascending primary-key order;
/// - [`Self::commit`] applies all of a batch's row changes and checkpoints, or none of them;
/// - [`Self::clear`] deletes every row of the tables and sets the checkpoint to 0, atomically;
/// - a projection without a stored checkpoint is at 0.
///
/// Errors: [`ProjectionError::Storage`] for the backend's own failures (its
/// `retryable` flag says whether trying again may help), [`ProjectionError::InvalidRow`] /
/// [`ProjectionError::InvalidTable`] for rows or tables that do not fit their description
/// (nothing is written), [`ProjectionError::CorruptReadModel`] for stored data that does not
/// read back as described.
#[async_trait]
pub trait ReadModelStore: Send {
    /// A short name of the backend for messages (`"sqlite"`).
    fn backend(&self) -> &'static str;

    /// Creates the tables that do not exist yet.
    async fn ensure_tables(&mut self, tables: &[TableSpec]) -> Result<(), ProjectionError>;

    /// The stored checkpoint of a projection (0 when it has none).
    async fn checkpoint(&mut self, projection: &str) -> Result<u64, ProjectionError>;

    /// Every row of a table, in ascending primary-key order.
    async fn rows(&mut self, table: &TableSpec) -> Result<Vec<Row>, ProjectionError>;

    /// Applies a batch atomically: every row change and every checkpoint, or nothing.
    async fn commit(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError>;

    /// Deletes every row of `tables` and sets the projection's checkpoint to 0, atomically.
    async fn clear(
        &mut self,
        projection: &str,
        tables: &[TableSpec],
    ) -> Result<(), ProjectionError>;

    /// For crash tests: writes the batch's rows inside a transaction and rolls it back, as
    /// a process that died before its commit would. The default writes nothing, which is
    /// what such a crash leaves behind as well.
    #[doc(hidden)]
    async fn write_then_roll_back(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError> {
        batch.validate()
    }
}

/// A backend's own failure, with whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[error("{backend} read-model store: {operation}: {source}")]
pub struct StorageError {
    /// The backend (`"sqlite"`, ...).
    pub backend: &'static str,
    /// What was being done, e.g. `commit a batch`.
    pub operation: String,
    /// True when the same call may succeed later (busy, locked, disk full, connection lost);
    /// otherwise an operator must act. The failed call changed nothing.
    pub retryable: bool,
    /// The backend's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// How a SQL dialect numbers statement parameters (`?1` in SQLite, `$1` in PostgreSQL).
#[derive(Clone, Copy)]
pub(crate) enum Placeholder {
    Question,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Dollar,
}

impl Placeholder {
    fn nth(self, i: usize) -> String {
        match self {
            Placeholder::Question => format!("?{i}"),
            Placeholder::Dollar => format!("${i}"),
        }
    }
}

/// The upsert of one row of `table` (both backends speak `ON CONFLICT … DO UPDATE`).
pub(crate) fn upsert_sql(table: &TableSpec, p: Placeholder) -> String {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let key: Vec<&str> = table.key_columns().iter().map(|c| c.name).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| p.nth(i)).collect();
    let rest: Vec<String> = table.columns[table.key_len..]
        .iter()
        .map(|c| format!("{0} = excluded.{0}", c.name))
        .collect();
    let on_conflict = if rest.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", rest.join(", "))
    };
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) {on_conflict}",
        table.name,
        names.join(", "),
        placeholders.join(", "),
        key.join(", ")
    )
}

/// The delete of one row of `table` by its key.
pub(crate) fn delete_sql(table: &TableSpec, p: Placeholder) -> String {
    let conditions: Vec<String> = table
        .key_columns()
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = {}", c.name, p.nth(i + 1)))
        .collect();
    format!(
        "DELETE FROM {} WHERE {}",
        table.name,
        conditions.join(" AND ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: TableSpec = TableSpec {
        name: "todo_cases",
        columns: &[Column::text("case_id"), Column::text("entry")],
        key_len: 1,
    };

    #[test]
    fn table_descriptions_with_unsafe_names_or_no_key_are_refused() {
        assert!(GOOD.validate().is_ok());
        for bad in [
            TableSpec {
                name: "todo; DROP TABLE x",
                ..GOOD
            },
            TableSpec {
                name: "Todo",
                ..GOOD
            },
            TableSpec { key_len: 0, ..GOOD },
            TableSpec { key_len: 3, ..GOOD },
            TableSpec {
                columns: &[
                    Column {
                        name: "a",
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "a",
                        ty: ColumnType::Integer,
                    },
                ],
                ..GOOD
            },
            TableSpec {
                columns: &[
                    Column {
                        name: "1a",
                        ty: ColumnType::Text,
                    },
                    Column {
                        name: "b",
                        ty: ColumnType::Text,
                    },
                ],
                ..GOOD
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(ProjectionError::InvalidTable { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rows_must_fit_their_table() {
        let row = Row(vec![Cell::from("a"), Cell::from("{}")]);
        assert!(GOOD.check_row(&row).is_ok());
        assert!(GOOD.check_key(&Row(vec![Cell::from("a")])).is_ok());
        for bad in [
            Row(vec![Cell::from("a")]),
            Row(vec![Cell::from("a"), Cell::Integer(1)]),
            Row(vec![Cell::from("a"), Cell::from("b"), Cell::from("c")]),
        ] {
            assert!(
                matches!(
                    GOOD.check_row(&bad),
                    Err(ProjectionError::InvalidRow { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
