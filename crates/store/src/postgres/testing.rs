//! Test support: a schema of its own per test, dropped afterwards, so tests run in parallel
//! on one server and never touch rows they did not make.

use std::hash::{BuildHasher, Hasher};

/// The environment variable naming the server the live tests use, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. CI sets it.
pub const TEST_URL_VAR: &str = "CASEFLOW_TEST_POSTGRES";

/// The live tests' server URL. Panics with instructions when it is not set: a live test
/// must never pass silently without its server.
pub fn test_url() -> String {
    match std::env::var(TEST_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{TEST_URL_VAR} is not set: the PostgreSQL live tests need a server, e.g. \
             {TEST_URL_VAR}=postgres://postgres@127.0.0.1:5432/test (see docs/deployment.md)"
        ),
    }
}

/// A random schema name (`cf_test_<16 hex digits>`).
pub fn random_schema() -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("cf_test_{random:016x}_{}", std::process::id())
}

/// The SQL of schema migration `version` (1-based), so a test can build a schema as an
/// older version left it.
pub fn migration_sql(version: usize) -> Option<&'static str> {
    super::schema::migration(version)
}

/// A schema that is dropped (with everything in it) when this value is dropped.
#[derive(Debug)]
pub struct TempSchema {
    /// The server URL without the schema parameter.
    pub base_url: String,
    /// The schema's name.
    pub name: String,
}

impl TempSchema {
    /// A fresh schema name on the test server (created by the first store that opens it).
    pub fn new() -> TempSchema {
        TempSchema {
            base_url: test_url(),
            name: random_schema(),
        }
    }

    /// The store URL for this schema, with extra `&key=value` parameters.
    pub fn url(&self, extra: &str) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}schema={}{extra}", self.base_url, self.name)
    }

    /// Runs SQL on the test server from synchronous code (tamper hooks, cleanup), on a
    /// thread of its own so it works inside and outside a runtime.
    pub fn execute_blocking(&self, sql: &str) -> Result<u64, String> {
        let url = self.base_url.clone();
        let sql = sql.to_owned();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let driver = tokio::spawn(connection);
                let n = client.execute(&sql, &[]).await.map_err(|e| e.to_string());
                drop(client);
                let _ = driver.await;
                n
            })
        })
        .join()
        .map_err(|_| "the SQL thread panicked".to_owned())?
    }
}

impl Default for TempSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(err) = self.execute_blocking(&sql) {
            eprintln!("could not drop test schema {}: {err}", self.name);
        }
    }
}
