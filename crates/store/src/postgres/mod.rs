//! The PostgreSQL backend: several engine processes on one shared database.
//!
//! # A global log that never skips
//! PostgreSQL event stores that take positions from a sequence expose a position when its
//! transaction commits, not when it is assigned, so a reader can see n+1 while n is still in
//! flight and skip n for ever. Here position allocation is serialised instead: every append
//! transaction takes its positions from the one row of `log_head`
//! (`UPDATE log_head SET position = position + n`), and that row lock is held until COMMIT.
//! So transactions commit in position order, positions are gap-free (a rolled-back
//! transaction also rolls back its increment), and a reader that sees position n+1 sees
//! everything below it. A plain `ORDER BY position` read is then exactly the contract.
//!
//! The price is one commit at a time per schema. Each process's one writer groups the
//! appends that wait into one transaction (`batch_max`, like the SQLite store's group
//! commit) and takes the log-head lock inside the server-side `caseflow_append_v2` that
//! checks the stream heads and writes the batch, with COMMIT pipelined behind it: the lock is
//! held from that call to the end of COMMIT, never across a round trip to the client (see
//! `write`).
//!
//! # Live subscriptions
//! Every commit sends `pg_notify(<channel>, <head position>)` inside its transaction, so the
//! notification arrives after the rows are visible. A listener task per store (its own
//! connection) turns notifications into head updates for [`Subscription::follow`], and polls
//! the head every `poll_interval` as the fallback for lost notifications. A subscription
//! keeps its own next position and retries reads while the server is away, so a reconnect
//! neither skips nor repeats.
//!
//! # Leadership
//! [`EventStore::try_lead`] takes a session-level advisory lock on a dedicated connection;
//! the lock lasts while that connection does, and a watchdog reports its loss.

mod config;
mod error_map;
mod lead;
mod listen;
mod schema;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, watch};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::ChainWalker;
use crate::ledger::{LedgerCheck, LedgerRow};
use crate::store::{EventStore, Leadership, LogSource, Subscription};
use crate::tree::read::node_within;
use crate::tree::{Hash, TreeNode};
use crate::types::{
    AppendOutcome, AppendRequest, BrokenLink, Metadata, RecordedEvent, VerifyReport,
    validate_stream_id,
};

pub use config::{DEFAULT_SCHEMA, PostgresOptions, is_postgres_url, redact_url};
pub use schema::{FORMAT_NAME, SCHEMA_VERSION};
/// The driver and pool this backend uses, for crates that keep other data in the same
/// database (the read models), so every crate links one version of each.
pub use {deadpool_postgres, tokio_postgres};

use error_map::{map_err, map_pool_err};

/// The record columns, in the order [`decode_row`] reads them.
const EVENT_COLUMNS: &str = "position, stream_id, version, event_id, recorded_at_ns, event_type, \
     schema_version, payload, actor, command_id, correlation_id, causation_id, prev_hash, hash";

/// What every handle of one store shares.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) options: PostgresOptions,
    /// The highest committed position this process knows of.
    pub(crate) head: watch::Sender<u64>,
    /// The notification channel (`caseflow_<schema>`).
    pub(crate) channel: String,
}

impl Shared {
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| map_pool_err(e, &self.options.redacted))
    }

    fn raise_head(&self, position: u64) {
        self.head.send_if_modified(|head| {
            let raised = position > *head;
            if raised {
                *head = position;
            }
            raised
        });
    }

    async fn read_log(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
            ))
            .await
            .map_err(map_err)?;
        let rows = client
            .query(&stmt, &[&to_i64(from.max(1)), &limit(max)])
            .await
            .map_err(map_err)?;
        rows.iter().map(decode_row).collect()
    }
}

/// A PostgreSQL-backed [`EventStore`]. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
    writes: mpsc::Sender<write::Pending>,
    _tasks: Arc<TaskGuard>,
}

/// Aborts the store's background tasks (writers, listener) when the last handle goes.
struct TaskGuard(Vec<tokio::task::AbortHandle>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shared.options.redacted)
            .field("schema", &self.shared.options.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens the store a URL names (see [`PostgresOptions::from_url`]).
    pub async fn connect_str(url: &str) -> Result<PostgresStore, StoreError> {
        Self::connect(PostgresOptions::from_url(url)?).await
    }

    /// Connects, creates or migrates the schema (or refuses a newer or foreign one) and
    /// starts the writer and listener tasks. A server that cannot be reached is
    /// [`StoreError::Unavailable`] naming the URL without its password; bad credentials or
    /// an unknown database are [`StoreError::Misconfigured`].
    pub async fn connect(options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let place = format!("{} (schema {})", options.redacted, options.schema);
        let pool = build_pool(&options, options.pool_max)?;
        {
            let mut client = pool.get().await.map_err(|e| map_pool_err(e, &place))?;
            schema::prepare(&mut client, &options.schema, options.create, &place).await?;
        }
        let channel = format!("caseflow_{}", options.schema);
        let (head, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            pool,
            options,
            head,
            channel,
        });
        let initial = head_position(&shared).await?;
        shared.raise_head(initial);
        let (writes, queue) = mpsc::channel(shared.options.batch_max * 4);
        let mut tasks = write::spawn_writers(Arc::clone(&shared), queue);
        tasks.push(listen::spawn_listener(Arc::clone(&shared)));
        Ok(PostgresStore {
            shared,
            writes,
            _tasks: Arc::new(TaskGuard(tasks)),
        })
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &PostgresOptions {
        &self.shared.options
    }

    /// A pool of at most `max` connections to the same server with another schema as their
    /// search path (created by the caller), e.g. for read models kept next to the log.
    pub fn pool_for_schema(
        options: &PostgresOptions,
        schema: &str,
        max: usize,
    ) -> Result<Pool, StoreError> {
        let options = options.clone().with_schema(schema)?;
        build_pool(&options, max)
    }

    /// A connection from the store's pool, with the store's schema as its search path (for
    /// backends that keep other data next to the log, e.g. read models).
    pub async fn pooled_client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.shared.client().await
    }
}

fn build_pool(options: &PostgresOptions, max: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        options.connection_config(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| StoreError::Misconfigured {
            reason: format!("{} (schema {}): {e}", options.redacted, options.schema),
        })
}

async fn head_position(shared: &Shared) -> Result<u64, StoreError> {
    let client = shared.client().await?;
    let row = client
        .query_one("SELECT position FROM log_head", &[])
        .await
        .map_err(map_err)?;
    from_i64(row.get(0), "log head")
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

pub(crate) fn from_i64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::corrupt(format!("negative {what}: {n}")))
}

fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

fn decode_row(row: &tokio_postgres::Row) -> Result<RecordedEvent, StoreError> {
    let get_err = |e: tokio_postgres::Error| StoreError::corrupt(format!("a stored record: {e}"));
    let recorded_at_ns: i64 = row.try_get(4).map_err(get_err)?;
    let schema_version: i32 = row.try_get(6).map_err(get_err)?;
    let prev: &[u8] = row.try_get(12).map_err(get_err)?;
    let hash: &[u8] = row.try_get(13).map_err(get_err)?;
    Ok(RecordedEvent {
        position: from_i64(row.try_get(0).map_err(get_err)?, "position")?,
        stream_id: row.try_get(1).map_err(get_err)?,
        version: from_i64(row.try_get(2).map_err(get_err)?, "version")?,
        event_id: row.try_get(3).map_err(get_err)?,
        recorded_at: chrono::DateTime::from_timestamp_nanos(recorded_at_ns),
        event_type: row.try_get(5).map_err(get_err)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| StoreError::corrupt(format!("schema version {schema_version}")))?,
        payload: row.try_get(7).map_err(get_err)?,
        metadata: Metadata {
            actor: row.try_get(8).map_err(get_err)?,
            command_id: row.try_get(9).map_err(get_err)?,
            correlation_id: row.try_get(10).map_err(get_err)?,
            causation_id: row.try_get(11).map_err(get_err)?,
        },
        prev_hash: hash32(prev, "prev_hash")?,
        hash: hash32(hash, "hash")?,
    })
}

/// The log as [`Subscription::follow`] reads it: retries while the server is away, so a
/// subscription survives a restart without a gap or a duplicate.
struct PgLog(Arc<Shared>);

/// How long a subscription keeps retrying a read before it reports the failure.
const READ_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

#[async_trait]
impl LogSource for PgLog {
    async fn read_batch(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            match self.0.read_log(from, max).await {
                Err(StoreError::Unavailable { reason }) => {
                    if started.elapsed() > READ_RETRY_FOR {
                        return Err(StoreError::Unavailable { reason });
                    }
                    tracing::debug!(%reason, "subscription read failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }
}

async fn verify_one(
    client: &deadpool_postgres::Transaction<'_>,
    stream_id: &str,
    head_version: u64,
    head_hash: [u8; 32],
    report: &mut VerifyReport,
) -> Result<Option<BrokenLink>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version"),
            &[&stream_id],
        )
        .await
        .map_err(map_err)?;
    let mut walker = ChainWalker::new();
    report.streams_checked += 1;
    for row in &rows {
        let e = decode_row(row)?;
        report.events_checked += 1;
        if let Some(broken) = walker.link_at(stream_id, &e) {
            return Ok(Some(broken));
        }
    }
    Ok(walker.end_at(stream_id, head_version, head_hash))
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        request.validate()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.writes
            .send(write::Pending { request, reply })
            .await
            .map_err(|_| StoreError::Unavailable {
                reason: "the store is shutting down".into(),
            })?;
        answer.await.map_err(|_| StoreError::OutcomeUnknown {
            reason: "the writer stopped before it answered".into(),
        })?
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_id(stream_id)?;
        let client = self.shared.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2 \
                 ORDER BY version LIMIT $3"
            ))
            .await
            .map_err(map_err)?;
        let rows = client
            .query(
                &stmt,
                &[&stream_id, &to_i64(from_version.max(1)), &limit(max_count)],
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(decode_row).collect()
    }

    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.shared.read_log(from_position, max_count).await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        validate_stream_id(stream_id)?;
        let client = self.shared.client().await?;
        let stmt = client
            .prepare_cached("SELECT version FROM streams WHERE stream_id = $1 AND version > 0")
            .await
            .map_err(map_err)?;
        match client
            .query_opt(&stmt, &[&stream_id])
            .await
            .map_err(map_err)?
        {
            Some(row) => Ok(Some(from_i64(row.get(0), "stream version")?)),
            None => Ok(None),
        }
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let head = head_position(&self.shared).await?;
        self.shared.raise_head(head);
        Ok(head)
    }

    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        let client = self.shared.client().await?;
        Ok(write::ledger_lookup(&client, command_id)
            .await?
            .map(|(_, outcome)| outcome))
    }

    async fn subscribe(&self, from_position: u64) -> Result<Subscription, StoreError> {
        Ok(Subscription::follow(
            Arc::new(PgLog(Arc::clone(&self.shared))),
            self.shared.head.subscribe(),
            from_position,
        ))
    }

    async fn verify_stream(&self, stream_id: &str) -> Result<VerifyReport, StoreError> {
        validate_stream_id(stream_id)?;
        let mut client = self.shared.client().await?;
        let tx = repeatable_read(&mut client).await?;
        let mut report = VerifyReport::default();
        let head = tx
            .query_opt(
                "SELECT version, head_hash FROM streams WHERE stream_id = $1 AND version > 0",
                &[&stream_id],
            )
            .await
            .map_err(map_err)?;
        if let Some(row) = head {
            let version = from_i64(row.get(0), "stream version")?;
            let hash = hash32(row.get(1), "stream head hash")?;
            report.first_broken = verify_one(&tx, stream_id, version, hash, &mut report).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(report)
    }

    async fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        let mut client = self.shared.client().await?;
        // One consistent snapshot for the whole walk.
        let tx = repeatable_read(&mut client).await?;
        let heads = tx
            .query(
                "SELECT stream_id, version, head_hash FROM streams WHERE version > 0 \
                 ORDER BY stream_id",
                &[],
            )
            .await
            .map_err(map_err)?;
        let mut report = VerifyReport::default();
        for row in &heads {
            let stream_id: String = row.get(0);
            let version = from_i64(row.get(1), "stream version")?;
            let hash = hash32(row.get(2), "stream head hash")?;
            // Every chain is walked, after a broken one too, so the counts cover the log.
            let broken = verify_one(&tx, &stream_id, version, hash, &mut report).await?;
            if report.first_broken.is_none() {
                report.first_broken = broken;
            }
        }
        let counts = tx
            .query_one(
                "SELECT (SELECT count(*) FROM events), (SELECT position FROM log_head), \
                 (SELECT coalesce(max(position), 0) FROM events), \
                 (SELECT count(*) FROM events e WHERE NOT EXISTS \
                    (SELECT 1 FROM streams s WHERE s.stream_id = e.stream_id AND s.version > 0))",
                &[],
            )
            .await
            .map_err(map_err)?;
        let total = from_i64(counts.get(0), "event count")?;
        let head = from_i64(counts.get(1), "log head")?;
        let max = from_i64(counts.get(2), "last position")?;
        let orphans = from_i64(counts.get(3), "orphan count")?;
        if orphans > 0 {
            return Err(StoreError::corrupt(format!(
                "{orphans} records belong to no stream"
            )));
        }
        if head != total || max != total {
            return Err(StoreError::corrupt(format!(
                "the log head is {head} and the last position {max}, but {total} records are stored"
            )));
        }
        check_ledger(&tx, &mut report).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(report)
    }

    async fn try_lead(&self, role: &str) -> Result<Option<Leadership>, StoreError> {
        lead::try_lead(&self.shared, role).await
    }

    async fn tree_nodes(&self, nodes: &[TreeNode]) -> Result<Vec<Hash>, StoreError> {
        let client = self.shared.client().await?;
        let levels: Vec<i32> = nodes.iter().map(|n| n.level.min(63) as i32).collect();
        let indexes: Vec<i64> = nodes.iter().map(|n| to_i64(n.index)).collect();
        let stmt = client
            .prepare_cached(TREE_NODES_SQL)
            .await
            .map_err(map_err)?;
        let rows = client
            .query(&stmt, &[&levels, &indexes])
            .await
            .map_err(map_err)?;
        let size = match rows.first() {
            Some(row) => from_i64(row.get(0), "log head")?,
            None => head_position(&self.shared).await?,
        };
        nodes
            .iter()
            .zip(&rows)
            .map(|(&node, row)| {
                if !node_within(node, size) {
                    return Err(StoreError::InvalidRequest {
                        reason: format!("tree node {node:?} is outside a tree of {size} leaves"),
                    });
                }
                match row.get::<_, Option<&[u8]>>(2) {
                    Some(hash) => hash32(hash, "tree node"),
                    None => Err(StoreError::corrupt(format!(
                        "tree node {node:?} is missing"
                    ))),
                }
            })
            .collect()
    }

    async fn stored_tree_size(&self) -> Result<u64, StoreError> {
        let client = self.shared.client().await?;
        let row = client
            .query_one(
                "SELECT greatest( \
                    (SELECT coalesce(max(idx) + 1, 0) FROM tree_nodes WHERE level = 0), \
                    coalesce((SELECT first_leaf + leaves FROM tree_runs \
                              ORDER BY first_leaf DESC LIMIT 1), 0))",
                &[],
            )
            .await
            .map_err(map_err)?;
        from_i64(row.get(0), "tree size")
    }
}

/// Stored tree nodes by (level, index), in request order, with the log head. A node is
/// completed by the leaf `((index + 1) << level) - 1`; since schema migration 3 it is read
/// from the `tree_runs` row whose run holds that leaf, at its offset there (the leaves
/// before a leaf `x` complete `2x - popcount(x)` nodes, each leaf's nodes level 0 up), and
/// nodes written before the migration from `tree_nodes`.
const TREE_NODES_SQL: &str = "SELECT (SELECT position FROM log_head), u.n, coalesce(r.hash, t.hash) \
     FROM unnest($1::int[], $2::bigint[]) WITH ORDINALITY AS u(level, idx, n) \
     CROSS JOIN LATERAL (SELECT ((u.idx + 1) << u.level) - 1 AS leaf) AS c \
     LEFT JOIN LATERAL ( \
        SELECT CASE WHEN c.leaf < run.first_leaf + run.leaves THEN substr(run.nodes, \
            (((2 * c.leaf - bit_count(int8send(c.leaf))) \
              - (2 * run.first_leaf - bit_count(int8send(run.first_leaf))) + u.level) * 32 \
             + 1)::int, 32) END AS hash \
        FROM tree_runs run WHERE run.first_leaf <= c.leaf \
        ORDER BY run.first_leaf DESC LIMIT 1) AS r ON true \
     LEFT JOIN tree_nodes t ON r.hash IS NULL AND t.level = u.level AND t.idx = u.idx \
     ORDER BY u.n";

/// Records read per query while verifying the whole log.
const VERIFY_PAGE: i64 = 10_000;

/// Feeds the ledger check every event in position order, then every ledger row with the
/// records at the positions it names, page by page, inside the verify snapshot.
async fn check_ledger(
    tx: &deadpool_postgres::Transaction<'_>,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let mut check = LedgerCheck::new();
    let mut from = 1i64;
    loop {
        let rows = tx
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE position >= $1 \
                     ORDER BY position LIMIT $2"
                ),
                &[&from, &VERIFY_PAGE],
            )
            .await
            .map_err(map_err)?;
        for row in &rows {
            check.event(&decode_row(row)?);
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == VERIFY_PAGE => from = last.get::<_, i64>(0) + 1,
            _ => break,
        }
    }
    let mut after: Option<Uuid> = None;
    loop {
        let rows = tx
            .query(
                "SELECT command_id, stream_id, first_version, last_version, first_position, \
                 last_position FROM commands WHERE $1::uuid IS NULL OR command_id > $1 \
                 ORDER BY command_id LIMIT $2",
                &[&after, &VERIFY_PAGE],
            )
            .await
            .map_err(map_err)?;
        for row in &rows {
            let command_id: Uuid = row.get(0);
            let stream_id: String = row.get(1);
            let outcome = AppendOutcome {
                first_version: from_i64(row.get(2), "ledger version")?,
                last_version: from_i64(row.get(3), "ledger version")?,
                first_position: from_i64(row.get(4), "ledger position")?,
                last_position: from_i64(row.get(5), "ledger position")?,
                deduplicated: false,
            };
            let records = tx
                .query(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE position BETWEEN $1 AND $2 \
                         ORDER BY position"
                    ),
                    &[&row.get::<_, i64>(4), &row.get::<_, i64>(5)],
                )
                .await
                .map_err(map_err)?
                .iter()
                .map(decode_row)
                .collect::<Result<Vec<_>, _>>()?;
            check.row(
                &LedgerRow {
                    command_id,
                    stream_id: Some(stream_id),
                    outcome,
                },
                &records,
            );
            after = Some(command_id);
        }
        if (rows.len() as i64) < VERIFY_PAGE {
            break;
        }
    }
    report.ledger_rows_checked = check.rows_checked();
    report.ledger = check.finish();
    Ok(())
}

async fn repeatable_read(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(map_err)
}

#[doc(hidden)]
pub mod testing;
