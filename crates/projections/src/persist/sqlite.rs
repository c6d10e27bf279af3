//! The SQLite [`ReadModelStore`]: a file (or a private in-memory database) holding every
//! projection's tables plus one checkpoint per projection, each batch written in one
//! transaction.

use super::Placeholder;
use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, ToSql, params, params_from_iter};

use crate::error::ProjectionError;
use crate::persist::{
    Cell, ColumnType, CommitBatch, ReadModelStore, Row, RowChange, StorageError, TableSpec,
};

/// The `user_version` this build writes. Bump it when the stored form of a read model
/// changes: a file of an older format is emptied on open and its read models rebuilt from
/// the log (they are derived data; migrating them would only copy a rebuild). Format 2:
/// obligations carry the time limit that identifies them.
pub const READ_MODEL_FORMAT: i64 = 2;

const BACKEND: &str = "sqlite";

/// How hard commits push to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a committed batch survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a committed batch survives a process crash; the last batches
    /// may be lost on power loss, which only means they are applied again (the checkpoint
    /// is lost with them), never double-counted.
    Normal,
}

/// A SQLite database holding read models and their checkpoints.
///
/// Separate from the event store file: read models can be dropped and rebuilt at any time
/// without touching the log.
#[derive(Debug)]
pub struct SqliteReadModelStore {
    conn: Connection,
}

/// Wraps a rusqlite error with what was being done; busy, locked and full databases are
/// worth a retry, everything else is not.
fn storage(operation: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> ProjectionError {
    move |error| {
        let retryable = matches!(
            error.sqlite_error_code(),
            Some(
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::DiskFull
            )
        );
        ProjectionError::Storage(StorageError {
            backend: BACKEND,
            operation: operation.into(),
            retryable,
            source: Box::new(error),
        })
    }
}

impl SqliteReadModelStore {
    /// Opens (creating if needed) a read-model database file.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, ProjectionError> {
        let path = path.as_ref();
        let opening = format!("open {}", path.display());
        let conn = Connection::open(path).map_err(storage(opening.clone()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(storage(opening.clone()))?;
        conn.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            },
        )
        .map_err(storage(opening))?;
        Self::init(conn)
    }

    /// A private in-memory database (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self, ProjectionError> {
        Self::init(Connection::open_in_memory().map_err(storage("open in memory"))?)
    }

    fn init(conn: Connection) -> Result<Self, ProjectionError> {
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(storage("read the format version"))?;
        if found > READ_MODEL_FORMAT {
            return Err(ProjectionError::NewerFormat {
                found,
                supported: READ_MODEL_FORMAT,
            });
        }
        if found > 0 && found < READ_MODEL_FORMAT {
            drop_every_table(&conn)?;
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS projection_checkpoints (
                 name TEXT PRIMARY KEY NOT NULL,
                 position INTEGER NOT NULL CHECK (position >= 0)
             );",
        )
        .map_err(storage("create the checkpoint table"))?;
        if found < READ_MODEL_FORMAT {
            conn.pragma_update(None, "user_version", READ_MODEL_FORMAT)
                .map_err(storage("write the format version"))?;
        }
        Ok(Self { conn })
    }

    /// The underlying connection, for ad-hoc SQL over the read-model tables.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The stored checkpoint of a projection (0 when it has none), without a runtime.
    pub fn stored_checkpoint(&self, projection: &str) -> Result<u64, ProjectionError> {
        let position: Option<i64> = self
            .conn
            .query_row(
                "SELECT position FROM projection_checkpoints WHERE name = ?1",
                params![projection],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage(format!("read the checkpoint of {projection}")))?;
        match position {
            None => Ok(0),
            Some(p) => u64::try_from(p).map_err(|_| ProjectionError::CorruptReadModel {
                projection: projection.to_owned(),
                reason: format!("negative checkpoint {p}"),
            }),
        }
    }

    fn create_table(&self, table: &TableSpec) -> Result<(), ProjectionError> {
        table.validate()?;
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{} {} NOT NULL", c.name, sql_type(c.ty)))
            .collect();
        let key: Vec<&str> = table.key_columns().iter().map(|c| c.name).collect();
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({})) WITHOUT ROWID;",
                table.name,
                columns.join(", "),
                key.join(", ")
            ))
            .map_err(storage(format!("create table {}", table.name)))?;
        self.check_shape(table)
    }

    /// An existing table must have the described columns, in order (a table of another
    /// format would otherwise fail at the first write, far from the cause).
    fn check_shape(&self, table: &TableSpec) -> Result<(), ProjectionError> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info({})", table.name))
            .map_err(storage(format!("inspect table {}", table.name)))?;
        let found: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(1))
            .and_then(Iterator::collect)
            .map_err(storage(format!("inspect table {}", table.name)))?;
        table.check_columns(&found)
    }

    fn read_rows(&self, table: &TableSpec) -> Result<Vec<Row>, ProjectionError> {
        table.validate()?;
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        let key: Vec<&str> = table.key_columns().iter().map(|c| c.name).collect();
        let reading = format!("read table {}", table.name);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM {} ORDER BY {}",
                names.join(", "),
                table.name,
                key.join(", ")
            ))
            .map_err(storage(reading.clone()))?;
        let mut rows = stmt.query([]).map_err(storage(reading.clone()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(storage(reading.clone()))? {
            let mut cells = Vec::with_capacity(table.columns.len());
            for (i, column) in table.columns.iter().enumerate() {
                let cell = match column.ty {
                    ColumnType::Integer => row.get::<_, i64>(i).map(Cell::Integer),
                    ColumnType::Text => row.get::<_, String>(i).map(Cell::Text),
                };
                cells.push(cell.map_err(|e| ProjectionError::CorruptReadModel {
                    projection: table.name.to_owned(),
                    reason: format!("column {} of table {}: {e}", column.name, table.name),
                })?);
            }
            out.push(Row(cells));
        }
        Ok(out)
    }

    /// Writes the batch's rows and checkpoints inside `tx` (the caller commits or drops it).
    fn write(tx: &Connection, batch: &CommitBatch) -> Result<(), ProjectionError> {
        // The statements of each table, built once per batch (a batch touches a few tables).
        let mut statements: Vec<(&'static str, String, String)> = Vec::new();
        for (table, change) in &batch.changes {
            let index = match statements.iter().position(|(name, ..)| *name == table.name) {
                Some(index) => index,
                None => {
                    statements.push((
                        table.name,
                        super::upsert_sql(table, Placeholder::Question),
                        super::delete_sql(table, Placeholder::Question),
                    ));
                    statements.len() - 1
                }
            };
            let (_, upsert, delete) = &statements[index];
            let (sql, cells) = match change {
                RowChange::Upsert(row) => (upsert, &row.0),
                RowChange::Delete(key) => (delete, &key.0),
            };
            tx.prepare_cached(sql)
                .and_then(|mut stmt| stmt.execute(params_from_iter(cells.iter().map(as_sql))))
                .map_err(|e| storage(format!("write table {}", table.name))(e))?;
        }
        for (name, position) in &batch.checkpoints {
            write_checkpoint(tx, name, *position)?;
        }
        Ok(())
    }
}

#[async_trait]
impl ReadModelStore for SqliteReadModelStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ensure_tables(&mut self, tables: &[TableSpec]) -> Result<(), ProjectionError> {
        tables.iter().try_for_each(|t| self.create_table(t))
    }

    async fn checkpoint(&mut self, projection: &str) -> Result<u64, ProjectionError> {
        self.stored_checkpoint(projection)
    }

    async fn rows(&mut self, table: &TableSpec) -> Result<Vec<Row>, ProjectionError> {
        self.read_rows(table)
    }

    async fn commit(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError> {
        batch.validate()?;
        let tx = self.conn.transaction().map_err(storage("begin a batch"))?;
        Self::write(&tx, batch)?;
        tx.commit().map_err(storage("commit a batch"))
    }

    async fn clear(
        &mut self,
        projection: &str,
        tables: &[TableSpec],
    ) -> Result<(), ProjectionError> {
        for table in tables {
            table.validate()?;
        }
        let clearing = format!("clear the read model {projection}");
        let tx = self.conn.transaction().map_err(storage(clearing.clone()))?;
        for table in tables {
            tx.execute(&format!("DELETE FROM {}", table.name), [])
                .map_err(storage(clearing.clone()))?;
        }
        write_checkpoint(&tx, projection, 0)?;
        tx.commit().map_err(storage(clearing))
    }

    async fn write_then_roll_back(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError> {
        batch.validate()?;
        let tx = self.conn.transaction().map_err(storage("begin a batch"))?;
        Self::write(&tx, batch)?;
        // Dropping the transaction rolls the rows back, as a crash before the commit would.
        drop(tx);
        Ok(())
    }
}

/// Empties a read-model file of an older format, in one transaction, so every read model is
/// rebuilt from the log at the next catch-up.
fn drop_every_table(conn: &Connection) -> Result<(), ProjectionError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .map_err(storage("list the tables of an older format"))?;
    let mut sql = String::from("BEGIN;");
    for name in names {
        // Quoted: these names come from the file, not from our table descriptions.
        sql.push_str(&format!("DROP TABLE \"{}\";", name.replace('"', "\"\"")));
    }
    sql.push_str("COMMIT;");
    conn.execute_batch(&sql)
        .map_err(storage("empty a read-model file of an older format"))
}

fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "INTEGER",
        ColumnType::Text => "TEXT",
    }
}

fn as_sql(cell: &Cell) -> &dyn ToSql {
    match cell {
        Cell::Integer(value) => value,
        Cell::Text(text) => text,
    }
}

fn write_checkpoint(conn: &Connection, name: &str, position: u64) -> Result<(), ProjectionError> {
    let position = i64::try_from(position).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO projection_checkpoints (name, position) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET position = excluded.position",
    )
    .and_then(|mut stmt| stmt.execute(params![name, position]))
    .map(|_| ())
    .map_err(|e| storage(format!("write the checkpoint of {name}"))(e))
}
