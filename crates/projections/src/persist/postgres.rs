//! The PostgreSQL read-model store (feature `postgres`): the read models of one engine
//! instance in a schema of their own on the event store's server.
//!
//! Each instance keeps its own schema (`<store schema>_rm_<instance>`, see the engine's
//! configuration), so several instances never write the same rows, and a restarted
//! instance resumes from its own checkpoints instead of replaying the log. A batch's rows
//! and checkpoints are written in one transaction (statements pipelined), so a crash
//! neither loses nor double-counts an event. Text columns use the `C` collation, so rows
//! read back in the same (byte-wise) key order as on every other backend.

use super::Placeholder;
use async_trait::async_trait;
use caseflow_store::postgres::deadpool_postgres::{self, Pool};
use caseflow_store::postgres::tokio_postgres;
use caseflow_store::postgres::tokio_postgres::error::SqlState;
use caseflow_store::postgres::tokio_postgres::types::ToSql;

use crate::error::ProjectionError;
use crate::persist::{
    Cell, ColumnType, CommitBatch, ReadModelStore, Row, RowChange, StorageError, TableSpec,
};

/// The format of the read-model schema (`read_model_format`); a newer one is refused, an
/// older one is emptied and rebuilt from the log.
pub const POSTGRES_READ_MODEL_FORMAT: i64 = 1;

const BACKEND: &str = "postgres";

/// Read models in a PostgreSQL schema.
pub struct PostgresReadModelStore {
    pool: Pool,
    schema: String,
}

impl std::fmt::Debug for PostgresReadModelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReadModelStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn storage(operation: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> ProjectionError {
    move |error| {
        let retryable = match error.code() {
            None => true,
            Some(code) => [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::QUERY_CANCELED,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::DISK_FULL,
            ]
            .contains(code),
        };
        ProjectionError::Storage(StorageError {
            backend: BACKEND,
            operation: operation.into(),
            retryable,
            source: Box::new(error),
        })
    }
}

fn pool_error(operation: &str, error: deadpool_postgres::PoolError) -> ProjectionError {
    ProjectionError::Storage(StorageError {
        backend: BACKEND,
        operation: operation.to_owned(),
        retryable: !matches!(error, deadpool_postgres::PoolError::Backend(ref e) if e.code().is_some()),
        source: Box::new(error),
    })
}

impl PostgresReadModelStore {
    /// Opens (creating it if needed) the read-model schema `schema` through `pool`, whose
    /// connections must have `schema` as their search path
    /// (`caseflow_store::postgres::PostgresStore::pool_for_schema`).
    pub async fn open(pool: Pool, schema: &str) -> Result<Self, ProjectionError> {
        let mut client = pool.get().await.map_err(|e| pool_error("connect", e))?;
        let tx = client
            .transaction()
            .await
            .map_err(storage("begin opening"))?;
        let opening = format!("open read-model schema {schema}");
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             SET LOCAL search_path = {schema};
             CREATE TABLE IF NOT EXISTS read_model_format (
                 id boolean PRIMARY KEY DEFAULT true CHECK (id),
                 version bigint NOT NULL
             );"
        ))
        .await
        .map_err(storage(opening.clone()))?;
        let found: i64 = tx
            .query_opt("SELECT version FROM read_model_format", &[])
            .await
            .map_err(storage(opening.clone()))?
            .map_or(0, |r| r.get(0));
        if found > POSTGRES_READ_MODEL_FORMAT {
            let _ = tx.rollback().await;
            return Err(ProjectionError::NewerFormat {
                found,
                supported: POSTGRES_READ_MODEL_FORMAT,
            });
        }
        if found < POSTGRES_READ_MODEL_FORMAT {
            // An older format (or none): empty the schema; the runner rebuilds from the log.
            let tables: Vec<String> = tx
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = $1 AND table_name <> 'read_model_format'",
                    &[&schema],
                )
                .await
                .map_err(storage(opening.clone()))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for table in tables {
                tx.batch_execute(&format!(
                    "DROP TABLE \"{}\" CASCADE",
                    table.replace('"', "\"\"")
                ))
                .await
                .map_err(storage(opening.clone()))?;
            }
            tx.execute(
                "INSERT INTO read_model_format (version) VALUES ($1) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                &[&POSTGRES_READ_MODEL_FORMAT],
            )
            .await
            .map_err(storage(opening.clone()))?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS projection_checkpoints (
                 name text COLLATE \"C\" PRIMARY KEY,
                 position bigint NOT NULL CHECK (position >= 0)
             );",
        )
        .await
        .map_err(storage(opening.clone()))?;
        tx.commit().await.map_err(storage(opening))?;
        drop(client);
        Ok(PostgresReadModelStore {
            pool,
            schema: schema.to_owned(),
        })
    }

    /// The schema holding the read models.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, ProjectionError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error("get a connection", e))
    }

    async fn check_shape(
        client: &deadpool_postgres::Object,
        schema: &str,
        table: &TableSpec,
    ) -> Result<(), ProjectionError> {
        let found: Vec<String> = client
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema, &table.name],
            )
            .await
            .map_err(storage(format!("inspect table {}", table.name)))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        table.check_columns(&found)
    }

    /// Writes a batch inside `tx`, statements pipelined in order.
    async fn write(
        tx: &deadpool_postgres::Transaction<'_>,
        batch: &CommitBatch,
    ) -> Result<(), ProjectionError> {
        let mut prepared: Vec<(
            &'static str,
            tokio_postgres::Statement,
            tokio_postgres::Statement,
        )> = Vec::new();
        for (table, _) in &batch.changes {
            if prepared.iter().any(|(name, ..)| *name == table.name) {
                continue;
            }
            let preparing = format!("prepare writes of table {}", table.name);
            let upsert = tx
                .prepare_cached(&super::upsert_sql(table, Placeholder::Dollar))
                .await
                .map_err(storage(preparing.clone()))?;
            let delete = tx
                .prepare_cached(&super::delete_sql(table, Placeholder::Dollar))
                .await
                .map_err(storage(preparing))?;
            prepared.push((table.name, upsert, delete));
        }
        let mut writes = Vec::with_capacity(batch.changes.len());
        for (table, change) in &batch.changes {
            let Some((_, upsert, delete)) = prepared.iter().find(|(n, ..)| *n == table.name) else {
                continue;
            };
            let (statement, cells) = match change {
                RowChange::Upsert(row) => (upsert, &row.0),
                RowChange::Delete(key) => (delete, &key.0),
            };
            let params: Vec<&(dyn ToSql + Sync)> = cells.iter().map(as_sql).collect();
            let name = table.name;
            writes.push(async move {
                tx.execute(statement, &params)
                    .await
                    .map_err(storage(format!("write table {name}")))
            });
        }
        futures::future::try_join_all(writes).await?;
        let checkpoint = tx
            .prepare_cached(
                "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            )
            .await
            .map_err(storage("prepare the checkpoint write"))?;
        for (name, position) in &batch.checkpoints {
            let position = i64::try_from(*position).unwrap_or(i64::MAX);
            tx.execute(&checkpoint, &[name, &position])
                .await
                .map_err(storage(format!("write the checkpoint of {name}")))?;
        }
        Ok(())
    }
}

#[async_trait]
impl ReadModelStore for PostgresReadModelStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ensure_tables(&mut self, tables: &[TableSpec]) -> Result<(), ProjectionError> {
        let client = self.client().await?;
        for table in tables {
            table.validate()?;
            let columns: Vec<String> = table
                .columns
                .iter()
                .map(|c| format!("{} {} NOT NULL", c.name, sql_type(c.ty)))
                .collect();
            let key: Vec<&str> = table.key_columns().iter().map(|c| c.name).collect();
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))",
                    table.name,
                    columns.join(", "),
                    key.join(", ")
                ))
                .await
                .map_err(storage(format!("create table {}", table.name)))?;
            Self::check_shape(&client, &self.schema, table).await?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self, projection: &str) -> Result<u64, ProjectionError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT position FROM projection_checkpoints WHERE name = $1",
                &[&projection],
            )
            .await
            .map_err(storage(format!("read the checkpoint of {projection}")))?;
        match row.map(|r| r.get::<_, i64>(0)) {
            None => Ok(0),
            Some(p) => u64::try_from(p).map_err(|_| ProjectionError::CorruptReadModel {
                projection: projection.to_owned(),
                reason: format!("negative checkpoint {p}"),
            }),
        }
    }

    async fn rows(&mut self, table: &TableSpec) -> Result<Vec<Row>, ProjectionError> {
        table.validate()?;
        let client = self.client().await?;
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        let key: Vec<&str> = table.key_columns().iter().map(|c| c.name).collect();
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM {} ORDER BY {}",
                    names.join(", "),
                    table.name,
                    key.join(", ")
                ),
                &[],
            )
            .await
            .map_err(storage(format!("read table {}", table.name)))?;
        rows.iter()
            .map(|row| {
                let mut cells = Vec::with_capacity(table.columns.len());
                for (i, column) in table.columns.iter().enumerate() {
                    let cell = match column.ty {
                        ColumnType::Integer => row.try_get::<_, i64>(i).map(Cell::Integer),
                        ColumnType::Text => row.try_get::<_, String>(i).map(Cell::Text),
                    };
                    cells.push(cell.map_err(|e| ProjectionError::CorruptReadModel {
                        projection: table.name.to_owned(),
                        reason: format!("column {} of table {}: {e}", column.name, table.name),
                    })?);
                }
                Ok(Row(cells))
            })
            .collect()
    }

    async fn commit(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError> {
        batch.validate()?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(storage("begin a batch"))?;
        if let Err(err) = Self::write(&tx, batch).await {
            let _ = tx.rollback().await;
            return Err(err);
        }
        tx.commit().await.map_err(storage("commit a batch"))
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
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(storage(clearing.clone()))?;
        for table in tables {
            tx.batch_execute(&format!("DELETE FROM {}", table.name))
                .await
                .map_err(storage(clearing.clone()))?;
        }
        tx.execute(
            "INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) \
             ON CONFLICT (name) DO UPDATE SET position = 0",
            &[&projection],
        )
        .await
        .map_err(storage(clearing.clone()))?;
        tx.commit().await.map_err(storage(clearing))
    }

    async fn write_then_roll_back(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError> {
        batch.validate()?;
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(storage("begin a batch"))?;
        let written = Self::write(&tx, batch).await;
        tx.rollback().await.map_err(storage("roll back a batch"))?;
        written
    }
}

fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "bigint",
        ColumnType::Text => "text COLLATE \"C\"",
    }
}

fn as_sql(cell: &Cell) -> &(dyn ToSql + Sync) {
    match cell {
        Cell::Integer(value) => value,
        Cell::Text(text) => text,
    }
}
