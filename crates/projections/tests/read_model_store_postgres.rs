//! The read-model store contract, live on PostgreSQL (feature `postgres`, server in
//! `CASEFLOW_TEST_POSTGRES`): a schema of its own per check, dropped afterwards.
#![cfg(feature = "postgres")]

use async_trait::async_trait;
use caseflow_projections::{
    CommitBatch, PostgresReadModelStore, ProjectionError, ReadModelStore, Row, TableSpec,
};
use caseflow_store::postgres::testing::TempSchema;
use caseflow_store::postgres::{PostgresOptions, PostgresStore};

/// The store under test, and its schema, dropped after it.
struct Scoped {
    store: PostgresReadModelStore,
    _schema: TempSchema,
}

#[async_trait]
impl ReadModelStore for Scoped {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
    async fn ensure_tables(&mut self, tables: &[TableSpec]) -> Result<(), ProjectionError> {
        self.store.ensure_tables(tables).await
    }
    async fn checkpoint(&mut self, projection: &str) -> Result<u64, ProjectionError> {
        self.store.checkpoint(projection).await
    }
    async fn rows(&mut self, table: &TableSpec) -> Result<Vec<Row>, ProjectionError> {
        self.store.rows(table).await
    }
    async fn commit(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError> {
        self.store.commit(batch).await
    }
    async fn clear(
        &mut self,
        projection: &str,
        tables: &[TableSpec],
    ) -> Result<(), ProjectionError> {
        self.store.clear(projection, tables).await
    }
    async fn write_then_roll_back(&mut self, batch: &CommitBatch) -> Result<(), ProjectionError> {
        self.store.write_then_roll_back(batch).await
    }
}

async fn fresh() -> Box<dyn ReadModelStore> {
    let schema = TempSchema::new();
    let options = PostgresOptions::from_url(&schema.url("")).expect("url");
    let pool = PostgresStore::pool_for_schema(&options, &schema.name, 2).expect("pool");
    let store = PostgresReadModelStore::open(pool, &schema.name)
        .await
        .expect("open the read-model schema");
    Box::new(Scoped {
        store,
        _schema: schema,
    })
}

caseflow_projections::read_model_store_contract_tests!(fresh);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_read_model_format_is_refused() {
    let schema = TempSchema::new();
    let options = PostgresOptions::from_url(&schema.url("")).expect("url");
    let pool = PostgresStore::pool_for_schema(&options, &schema.name, 2).expect("pool");
    drop(
        PostgresReadModelStore::open(pool.clone(), &schema.name)
            .await
            .expect("open"),
    );
    schema
        .execute_blocking(&format!(
            "UPDATE {}.read_model_format SET version = 99",
            schema.name
        ))
        .expect("bump");
    match PostgresReadModelStore::open(pool, &schema.name).await {
        Err(ProjectionError::NewerFormat { found: 99, .. }) => {}
        other => panic!("expected NewerFormat, got {other:?}"),
    }
}
