//! Appends: one writer task per process, committing the appends that wait as one
//! transaction of two round trips.
//!
//! The first round trip is pipelined and takes no locks: the heads of the streams the batch
//! touches, the ledger rows of its command ids and its event ids already stored. Then each
//! request is accepted or refused on its own (a conflict refuses one request, not the
//! batch), and the second round trip sends `BEGIN`, one call of the server-side
//! `caseflow_append_v2` (schema migration 3) and `COMMIT` as one flight. The function takes
//! the log-head lock, checks that every stream is still at the head read in the first round
//! trip (else SQLSTATE CF001 and the batch is read and written again), allocates positions,
//! extends the Merkle tree and writes everything. If it fails on a unique constraint (an
//! event id or command id another process stored a moment ago), the server rolls the batch
//! back and every request is retried on its own, so each gets its own answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::{GENESIS_HASH, HashInput, record_hash};
use crate::types::{AppendOutcome, AppendRequest};

use super::error_map::{map_commit_err, map_err, unique_violation};
use super::{Shared, from_i64, to_i64};

/// A statement parameter.
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// One append waiting for a writer.
pub(crate) struct Pending {
    pub(crate) request: AppendRequest,
    pub(crate) reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// Writer tasks per process. One: commits are serialised by the log-head lock anyway, so
/// a second writer only splits the waiting appends into two batches and two WAL flushes
/// (measured with 64 writers: one writer task commits batches of 64 and ran ahead of two,
/// see docs/benchmarks.md).
const WRITERS: usize = 1;

pub(crate) fn spawn_writers(
    shared: Arc<Shared>,
    queue: mpsc::Receiver<Pending>,
) -> Vec<tokio::task::AbortHandle> {
    let queue = Arc::new(Mutex::new(queue));
    (0..WRITERS)
        .map(|_| {
            let shared = Arc::clone(&shared);
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                let mut known = KnownHeads::default();
                while let Some(batch) = next_batch(&queue, shared.options.batch_max).await {
                    write_batch(&shared, &mut known, batch).await;
                }
            })
            .abort_handle()
        })
        .collect()
}

/// Waits for one append, then takes whatever else is waiting, yielding to the runtime
/// between rounds while more keep arriving: the callers a commit just answered are still
/// waking up to send their next append, and every append that misses a batch waits for a
/// whole commit (its WAL flush) more.
async fn next_batch(queue: &Mutex<mpsc::Receiver<Pending>>, max: usize) -> Option<Vec<Pending>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut batch = vec![first];
    loop {
        let before = batch.len();
        while batch.len() < max {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if batch.len() >= max || (batch.len() == before && before > 1) {
            return Some(batch);
        }
        if batch.len() == before {
            // A lone append: one look for company, then go.
            tokio::task::yield_now().await;
            if queue.is_empty() {
                return Some(batch);
            }
            continue;
        }
        tokio::task::yield_now().await;
    }
}

async fn write_batch(shared: &Shared, known: &mut KnownHeads, batch: Vec<Pending>) {
    let requests: Vec<&AppendRequest> = batch.iter().map(|p| &p.request).collect();
    let answers = match shared.client().await {
        Err(err) => batch.iter().map(|_| Err(clone_err(&err))).collect(),
        Ok(client) => commit_batch(&TxClient::new(client), shared, known, &requests).await,
    };
    for (pending, answer) in batch.into_iter().zip(answers) {
        // A caller that gave up waiting does not need its answer.
        let _ = pending.reply.send(answer);
    }
}

/// Commits a batch, or, when a unique constraint refused it (an id another process stored
/// a moment ago), every request on its own so each gets its own answer.
async fn commit_batch(
    client: &TxClient,
    shared: &Shared,
    known: &mut KnownHeads,
    requests: &[&AppendRequest],
) -> Vec<Result<AppendOutcome, StoreError>> {
    match commit_retrying(client, shared, known, requests).await {
        Ok(answers) => answers,
        Err(Failure::Constraint(_)) if requests.len() > 1 => {
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                answers.push(commit_one(client, shared, known, request).await);
            }
            answers
        }
        Err(failure) => {
            let err = failure.into_error(client.client(), requests).await;
            requests.iter().map(|_| Err(clone_err(&err))).collect()
        }
    }
}

/// SQLSTATE of `caseflow_append_v2` when a stream moved since the batch read it.
const STREAM_MOVED: &str = "CF001";

/// How often a batch is read and written again when its streams moved meanwhile.
const BATCH_ATTEMPTS: u32 = 8;

/// Commits, reading and writing again while another process moves the batch's streams.
async fn commit_retrying(
    client: &TxClient,
    shared: &Shared,
    known: &mut KnownHeads,
    requests: &[&AppendRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, Failure> {
    let mut attempt = 1;
    loop {
        let order = if attempt >= LOCK_FIRST_FROM {
            Order::LockThenRead
        } else {
            Order::ReadThenLock
        };
        let may_skip_reads = known.heads_of(requests).is_some();
        let result = commit(client, shared, known, requests, order).await;
        if result.is_err() {
            // Whatever the failure, the heads this writer believed may be wrong: the next
            // attempt (and every request retried on its own) reads them.
            known.forget(requests);
        }
        match result {
            Err(Failure::StreamMoved) if attempt < BATCH_ATTEMPTS => attempt += 1,
            // Written without reading the ledger and stored ids: read them now, so a replay
            // gets its original outcome and a duplicate its own error.
            Err(Failure::Constraint(_)) if may_skip_reads && attempt < BATCH_ATTEMPTS => {
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// From this attempt on, a batch whose streams keep moving takes the log-head lock before it
/// reads them, so it cannot lose the race again (at the price of holding the lock across one
/// round trip): without it, two processes appending to one stream under load can each
/// invalidate the other's read for every attempt.
const LOCK_FIRST_FROM: u32 = 4;

/// When a batch takes the log-head lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Read without locks, lock inside the write (the usual way: the lock is held only
    /// inside the server).
    ReadThenLock,
    /// `BEGIN` and lock the log head with the reads, so nothing moves between them and the
    /// write.
    LockThenRead,
}

const LOCK_HEAD_SQL: &str = "SELECT 1 FROM log_head FOR UPDATE";

/// Rolls back the transaction a failed locked batch left open, so the connection can be
/// used again (if even that fails, dropping the `TxClient` closes the connection).
async fn roll_back(tx: &TxClient) {
    if tx.open.load(Relaxed) && tx.client().batch_execute("ROLLBACK").await.is_ok() {
        tx.open.store(false, Relaxed);
    }
}

async fn commit_one(
    client: &TxClient,
    shared: &Shared,
    known: &mut KnownHeads,
    request: &AppendRequest,
) -> Result<AppendOutcome, StoreError> {
    match commit_retrying(client, shared, known, &[request]).await {
        Ok(mut answers) => answers.pop().unwrap_or_else(|| {
            Err(StoreError::corrupt(
                "a batch of one gave no answer".to_owned(),
            ))
        }),
        Err(failure) => Err(failure.into_error(client.client(), &[request]).await),
    }
}

/// Why a whole batch failed (nothing of it was written, except where the error says the
/// outcome is unknown).
enum Failure {
    /// A stream the batch writes moved between its read and its write (another process
    /// appended to it): read again and retry.
    StreamMoved,
    /// A unique constraint (event id, command id) refused the batch.
    Constraint(String),
    /// Anything else, already mapped.
    Store(StoreError),
}

impl Failure {
    fn from_driver(err: tokio_postgres::Error) -> Failure {
        if err.code().is_some_and(|code| code.code() == STREAM_MOVED) {
            return Failure::StreamMoved;
        }
        match unique_violation(&err) {
            Some(constraint) => Failure::Constraint(constraint),
            None => Failure::Store(map_err(err)),
        }
    }

    /// The error of a single-request batch, telling which id was the duplicate.
    async fn into_error(
        self,
        client: &deadpool_postgres::Object,
        requests: &[&AppendRequest],
    ) -> StoreError {
        let constraint = match self {
            Failure::Store(err) => return err,
            Failure::StreamMoved => {
                return StoreError::Unavailable {
                    reason: format!(
                        "streams kept moving under concurrent writers for {BATCH_ATTEMPTS} \
                         attempts; retry"
                    ),
                };
            }
            Failure::Constraint(constraint) => constraint,
        };
        let Some(request) = requests.first() else {
            return StoreError::corrupt("an empty batch failed".to_owned());
        };
        if constraint == "commands_pkey" {
            if let Some(command_id) = request.command_id {
                return match ledger_lookup(client, command_id).await {
                    Ok(Some((stream, _))) => StoreError::CommandIdReused {
                        command_id,
                        original_stream: stream,
                        stream: request.stream_id.clone(),
                    },
                    Ok(None) => StoreError::Unavailable {
                        reason: "the ledger refused a command id it does not hold; retry".into(),
                    },
                    Err(err) => err,
                };
            }
        }
        if constraint == "events_event_id" {
            let ids: Vec<Uuid> = request.events.iter().map(|e| e.event_id).collect();
            if let Ok(Some(row)) = client
                .query_opt(
                    "SELECT event_id FROM events WHERE event_id = ANY($1) LIMIT 1",
                    &[&ids],
                )
                .await
            {
                return StoreError::DuplicateEventId {
                    event_id: row.get(0),
                };
            }
        }
        StoreError::Unavailable {
            reason: format!("a concurrent append took constraint {constraint}; retry"),
        }
    }
}

/// The ledger entry of a command id: its stream and the original outcome.
pub(crate) async fn ledger_lookup(
    client: &tokio_postgres::Client,
    command_id: Uuid,
) -> Result<Option<(String, AppendOutcome)>, StoreError> {
    let row = client
        .query_opt(
            "SELECT stream_id, first_version, last_version, first_position, last_position \
             FROM commands WHERE command_id = $1",
            &[&command_id],
        )
        .await
        .map_err(map_err)?;
    row.map(|row| ledger_row(&row, 0)).transpose()
}

fn ledger_row(row: &tokio_postgres::Row, at: usize) -> Result<(String, AppendOutcome), StoreError> {
    Ok((
        row.get(at),
        AppendOutcome {
            first_version: from_i64(row.get(at + 1), "ledger version")?,
            last_version: from_i64(row.get(at + 2), "ledger version")?,
            first_position: from_i64(row.get(at + 3), "ledger position")?,
            last_position: from_i64(row.get(at + 4), "ledger position")?,
            deduplicated: true,
        },
    ))
}

/// What phase one decided for one request.
enum Decision {
    /// Answered without writing (conflict, duplicate, replay).
    Answered(Result<AppendOutcome, StoreError>),
    /// Replays a command accepted earlier in this batch (request index).
    SameAs(usize),
    /// Accepted: versions, and event offsets within the batch (1-based, inclusive).
    Accepted {
        first_version: u64,
        last_version: u64,
        first_offset: u64,
        last_offset: u64,
    },
}

/// The columns of every record a batch inserts, as arrays for one `unnest`.
#[derive(Default)]
struct Rows {
    offset: Vec<i64>,
    stream_id: Vec<String>,
    version: Vec<i64>,
    event_id: Vec<Uuid>,
    recorded_at_ns: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    payload: Vec<Vec<u8>>,
    actor: Vec<String>,
    command_id: Vec<Option<Uuid>>,
    correlation_id: Vec<Option<Uuid>>,
    causation_id: Vec<Option<Uuid>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

/// The ledger rows of a batch (positions as offsets from the batch's base).
#[derive(Default)]
struct LedgerRows {
    command_id: Vec<Uuid>,
    stream_id: Vec<String>,
    first_version: Vec<i64>,
    last_version: Vec<i64>,
    first_offset: Vec<i64>,
    last_offset: Vec<i64>,
}

/// The write half of a batch, with the log-head lock taken inside the server (schema
/// migration 3, `caseflow_append_v2`): it returns the position before the batch.
const WRITE_SQL: &str = "SELECT caseflow_append_v2($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
     $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)";

/// The heads of a batch's streams, read without locking: the write checks them again under
/// the log-head lock.
const READ_STREAMS_SQL: &str =
    "SELECT stream_id, version, head_hash FROM streams WHERE stream_id = ANY($1)";
const LEDGER_SQL: &str = "SELECT command_id, stream_id, first_version, last_version, \
     first_position, last_position FROM commands WHERE command_id = ANY($1)";
const STORED_IDS_SQL: &str = "SELECT event_id FROM events WHERE event_id = ANY($1)";

/// A batch's statements, prepared once per connection (the pool's statement cache), so a
/// batch sends no Parse and waits for no preparation.
struct Statements {
    read_streams: tokio_postgres::Statement,
    ledger: tokio_postgres::Statement,
    stored_ids: tokio_postgres::Statement,
    write: tokio_postgres::Statement,
    lock_head: tokio_postgres::Statement,
}

impl Statements {
    async fn prepare(client: &deadpool_postgres::Object) -> Result<Statements, Failure> {
        let (read_streams, ledger, stored_ids, write, lock_head) = futures::try_join!(
            client.prepare_cached(READ_STREAMS_SQL),
            client.prepare_cached(LEDGER_SQL),
            client.prepare_cached(STORED_IDS_SQL),
            client.prepare_cached(WRITE_SQL),
            client.prepare_cached(LOCK_HEAD_SQL),
        )
        .map_err(Failure::from_driver)?;
        Ok(Statements {
            read_streams,
            ledger,
            stored_ids,
            write,
            lock_head,
        })
    }
}

/// A pooled connection that may hold an open transaction. The transaction is driven with
/// plain `BEGIN`/`COMMIT` so both can be pipelined with the statements around them; if the
/// writer is dropped while one is open (its task aborted), the connection is closed rather
/// than returned to the pool, so the server rolls it back and releases its locks.
pub(crate) struct TxClient {
    client: Option<deadpool_postgres::Object>,
    open: AtomicBool,
}

impl TxClient {
    fn new(client: deadpool_postgres::Object) -> TxClient {
        TxClient {
            client: Some(client),
            open: AtomicBool::new(false),
        }
    }

    fn client(&self) -> &deadpool_postgres::Object {
        // Only `Drop` takes the client out.
        self.client
            .as_ref()
            .expect("a TxClient holds its client until dropped")
    }
}

impl Drop for TxClient {
    fn drop(&mut self) {
        if let (true, Some(client)) = (self.open.load(Relaxed), self.client.take()) {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// What the first round trip of a batch returns.
struct Read {
    heads: BTreeMap<String, (u64, [u8; 32])>,
    ledger: HashMap<Uuid, (String, AppendOutcome)>,
    stored_ids: HashSet<Uuid>,
}

/// Runs one batch in two round trips: one that reads the streams' heads, the ledger and the
/// stored event ids (no transaction, no locks), one that begins a transaction, writes
/// everything under the log-head lock and commits. Per-request answers in request order.
async fn commit(
    tx: &TxClient,
    shared: &Shared,
    known: &mut KnownHeads,
    requests: &[&AppendRequest],
    order: Order,
) -> Result<Vec<Result<AppendOutcome, StoreError>>, Failure> {
    let statements = Statements::prepare(tx.client()).await?;
    let known_plan = match order {
        Order::ReadThenLock => known
            .heads_of(requests)
            .and_then(|heads| plan_known(heads, requests)),
        Order::LockThenRead => None,
    };
    let (plan, decisions) = match known_plan {
        Some(planned) => planned,
        None => match read_in_order(tx, &statements, requests, order).await {
            Ok(read) => {
                known.learn(read.heads.clone());
                plan_read(read, requests)
            }
            Err(failure) => {
                roll_back(tx).await;
                return Err(failure);
            }
        },
    };
    if plan.rows.offset.is_empty() {
        roll_back(tx).await;
        return Ok(answers(&decisions, 0));
    }
    let count = plan.rows.offset.len() as u64;
    let (head_ids, head_versions, head_hashes) = plan.final_heads();
    // The same streams in the same order as the final heads.
    let (_, read_versions, read_hashes) = plan.read_heads();
    let r = &plan.rows;
    let l = &plan.ledger;
    let params: [Param<'_>; 25] = [
        &r.stream_id,
        &r.version,
        &r.event_id,
        &r.recorded_at_ns,
        &r.event_type,
        &r.schema_version,
        &r.payload,
        &r.actor,
        &r.command_id,
        &r.correlation_id,
        &r.causation_id,
        &r.prev_hash,
        &r.hash,
        &head_ids,
        &head_versions,
        &head_hashes,
        &read_versions,
        &read_hashes,
        &l.command_id,
        &l.stream_id,
        &l.first_version,
        &l.last_version,
        &l.first_offset,
        &l.last_offset,
        &shared.channel,
    ];
    let client = tx.client();
    tx.open.store(true, Relaxed);
    // One flight: if the write fails the transaction is aborted and the server answers
    // COMMIT with a rollback, so no answer is lost.
    let (begun, written, committed) = if order == Order::LockThenRead {
        let (written, committed) = futures::join!(
            client.query_one(&statements.write, &params),
            client.batch_execute("COMMIT"),
        );
        (Ok(()), written, committed)
    } else {
        futures::join!(
            client.batch_execute("BEGIN"),
            client.query_one(&statements.write, &params),
            client.batch_execute("COMMIT"),
        )
    };
    match (begun.and(written), committed) {
        (Ok(row), Ok(())) => {
            tx.open.store(false, Relaxed);
            let base = from_i64(row.get(0), "log head").map_err(Failure::Store)?;
            shared.raise_head(base + count);
            known.learn(plan.final_map());
            Ok(answers(&decisions, base))
        }
        // The server refused the write: the transaction was aborted and COMMIT rolled it
        // back, so nothing of the batch was written.
        (Err(err), committed) if err.as_db_error().is_some() => {
            if committed.is_ok() {
                tx.open.store(false, Relaxed);
            }
            Err(Failure::from_driver(err))
        }
        // The connection failed with COMMIT sent: the batch may or may not be stored.
        (Err(err), _) | (Ok(_), Err(err)) => {
            if err.as_db_error().is_some() {
                tx.open.store(false, Relaxed);
            }
            Err(Failure::Store(map_commit_err(err)))
        }
    }
}

/// The first round trip, after `BEGIN` and the log-head lock when `order` says so (in one
/// flight with the reads).
async fn read_in_order(
    tx: &TxClient,
    statements: &Statements,
    requests: &[&AppendRequest],
    order: Order,
) -> Result<Read, Failure> {
    let client = tx.client();
    if order == Order::ReadThenLock {
        return read_batch(client, statements, requests).await;
    }
    tx.open.store(true, Relaxed);
    let (begun, locked, read) = futures::join!(
        client.batch_execute("BEGIN"),
        client.execute(&statements.lock_head, &[]),
        read_batch(client, statements, requests),
    );
    begun.and(locked).map_err(Failure::from_driver)?;
    read
}

/// The first round trip: the streams' heads (a stream without a row is at version 0), the
/// ledger and the stored event ids, pipelined.
async fn read_batch(
    client: &deadpool_postgres::Object,
    statements: &Statements,
    requests: &[&AppendRequest],
) -> Result<Read, Failure> {
    let streams: Vec<String> = requests
        .iter()
        .map(|r| r.stream_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let command_ids: Vec<Uuid> = requests.iter().filter_map(|r| r.command_id).collect();
    let event_ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
    let read: [Param<'_>; 1] = [&streams];
    let ledger: [Param<'_>; 1] = [&command_ids];
    let ids: [Param<'_>; 1] = [&event_ids];
    let (stream_rows, ledger_rows, id_rows) = futures::try_join!(
        client.query(&statements.read_streams, &read),
        client.query(&statements.ledger, &ledger),
        client.query(&statements.stored_ids, &ids),
    )
    .map_err(Failure::from_driver)?;
    let mut heads: BTreeMap<String, (u64, [u8; 32])> = streams
        .into_iter()
        .map(|stream| (stream, (0, GENESIS_HASH)))
        .collect();
    for row in stream_rows {
        let version = from_i64(row.get(1), "stream version").map_err(Failure::Store)?;
        let hash: &[u8] = row.get(2);
        let hash: [u8; 32] = hash.try_into().map_err(|_| {
            Failure::Store(StoreError::corrupt("a stream head hash is not 32 bytes"))
        })?;
        heads.insert(row.get::<_, String>(0), (version, hash));
    }
    let ledger = ledger_rows
        .iter()
        .map(|row| Ok((row.get(0), ledger_row(row, 1).map_err(Failure::Store)?)))
        .collect::<Result<_, Failure>>()?;
    let stored_ids = id_rows.iter().map(|r| r.get(0)).collect();
    Ok(Read {
        heads,
        ledger,
        stored_ids,
    })
}

/// Plans a batch on the heads, ledger rows and stored ids the first round trip read.
fn plan_read(read: Read, requests: &[&AppendRequest]) -> (Plan, Vec<Decision>) {
    let mut plan = Plan::new(read.heads);
    let decisions = requests
        .iter()
        .enumerate()
        .map(|(index, request)| plan.decide(index, request, &read.ledger, &read.stored_ids))
        .collect();
    (plan, decisions)
}

/// Plans a batch on known heads without reading, if every request is accepted. The ledger
/// and the stored event ids are not read: a command id or event id already stored makes the
/// write fail on its unique constraint, and every request is then retried on its own with
/// the reads. Anything else (a version conflict, a replay within the batch) is decided on
/// read data only, so a known head that went stale never refuses a request.
fn plan_known(
    heads: BTreeMap<String, (u64, [u8; 32])>,
    requests: &[&AppendRequest],
) -> Option<(Plan, Vec<Decision>)> {
    let (ledger, stored_ids) = (HashMap::new(), HashSet::new());
    let mut plan = Plan::new(heads);
    let decisions: Vec<Decision> = requests
        .iter()
        .enumerate()
        .map(|(index, request)| plan.decide(index, request, &ledger, &stored_ids))
        .collect();
    let all_accepted = decisions
        .iter()
        .all(|d| matches!(d, Decision::Accepted { .. }));
    all_accepted.then_some((plan, decisions))
}

/// Most stream heads a writer keeps; past it the map starts again empty (a forgotten head
/// costs one first round trip, nothing else).
const KNOWN_HEADS_MAX: usize = 65_536;

/// The stream heads a writer last read or committed itself, so that a batch whose streams
/// are all known skips the first round trip (issue 13). Only a hint: the write checks every
/// head under the log-head lock, so a head another process moved meanwhile fails the batch
/// with CF001, and it is read again.
#[derive(Default)]
pub(crate) struct KnownHeads {
    heads: HashMap<String, (u64, [u8; 32])>,
}

impl KnownHeads {
    /// The head of every stream the requests write to, if all are known.
    fn heads_of(&self, requests: &[&AppendRequest]) -> Option<BTreeMap<String, (u64, [u8; 32])>> {
        requests
            .iter()
            .map(|r| Some((r.stream_id.clone(), *self.heads.get(&r.stream_id)?)))
            .collect()
    }

    fn learn(&mut self, heads: impl IntoIterator<Item = (String, (u64, [u8; 32]))>) {
        for (stream, head) in heads {
            if self.heads.len() >= KNOWN_HEADS_MAX && !self.heads.contains_key(&stream) {
                self.heads.clear();
            }
            self.heads.insert(stream, head);
        }
    }

    fn forget(&mut self, requests: &[&AppendRequest]) {
        for request in requests {
            self.heads.remove(&request.stream_id);
        }
    }
}

/// Phase one's running state: stream heads as the batch moves them, rows to write.
struct Plan {
    heads: BTreeMap<String, (u64, [u8; 32])>,
    /// The heads as read, which the write checks under the log-head lock.
    read: BTreeMap<String, (u64, [u8; 32])>,
    touched: Vec<String>,
    rows: Rows,
    ledger: LedgerRows,
    /// Command ids accepted in this batch: request index and stream.
    commands: HashMap<Uuid, (usize, String)>,
    event_ids: HashSet<Uuid>,
}

impl Plan {
    fn new(heads: BTreeMap<String, (u64, [u8; 32])>) -> Self {
        Plan {
            read: heads.clone(),
            heads,
            touched: Vec::new(),
            rows: Rows::default(),
            ledger: LedgerRows::default(),
            commands: HashMap::new(),
            event_ids: HashSet::new(),
        }
    }

    fn decide(
        &mut self,
        index: usize,
        request: &AppendRequest,
        ledger: &HashMap<Uuid, (String, AppendOutcome)>,
        stored_ids: &HashSet<Uuid>,
    ) -> Decision {
        if let Some(command_id) = request.command_id {
            if let Some((stream, outcome)) = ledger.get(&command_id) {
                return Decision::Answered(replay(command_id, stream, *outcome, request));
            }
            if let Some((earlier, stream)) = self.commands.get(&command_id) {
                if *stream == request.stream_id {
                    return Decision::SameAs(*earlier);
                }
                return Decision::Answered(Err(StoreError::CommandIdReused {
                    command_id,
                    original_stream: stream.clone(),
                    stream: request.stream_id.clone(),
                }));
            }
        }
        if let Some(e) = request
            .events
            .iter()
            .find(|e| stored_ids.contains(&e.event_id) || self.event_ids.contains(&e.event_id))
        {
            return Decision::Answered(Err(StoreError::DuplicateEventId {
                event_id: e.event_id,
            }));
        }
        let Some(&(actual, mut prev)) = self.heads.get(&request.stream_id) else {
            return Decision::Answered(Err(StoreError::corrupt(format!(
                "stream {:?} was not read",
                request.stream_id
            ))));
        };
        if !request.expected.admits(actual) {
            return Decision::Answered(Err(StoreError::VersionConflict {
                stream: request.stream_id.clone(),
                expected: request.expected,
                actual,
            }));
        }
        let first_offset = self.rows.offset.len() as u64 + 1;
        let recorded_at_ns = request
            .recorded_at
            .timestamp_nanos_opt()
            .unwrap_or(i64::MIN);
        for (i, e) in request.events.iter().enumerate() {
            let version = actual + 1 + i as u64;
            let hash = record_hash(
                &prev,
                &HashInput {
                    stream_id: &request.stream_id,
                    version,
                    event_id: e.event_id,
                    recorded_at_ns,
                    event_type: &e.event_type,
                    schema_version: e.schema_version,
                    payload: &e.payload,
                    metadata: (&e.metadata).into(),
                },
            );
            let r = &mut self.rows;
            r.offset.push(r.offset.len() as i64 + 1);
            r.stream_id.push(request.stream_id.clone());
            r.version.push(to_i64(version));
            r.event_id.push(e.event_id);
            r.recorded_at_ns.push(recorded_at_ns);
            r.event_type.push(e.event_type.clone());
            r.schema_version
                .push(i32::try_from(e.schema_version).unwrap_or(i32::MAX));
            r.payload.push(e.payload.to_vec());
            r.actor.push(e.metadata.actor.clone());
            r.command_id.push(e.metadata.command_id);
            r.correlation_id.push(e.metadata.correlation_id);
            r.causation_id.push(e.metadata.causation_id);
            r.prev_hash.push(prev.to_vec());
            r.hash.push(hash.to_vec());
            self.event_ids.insert(e.event_id);
            prev = hash;
        }
        let count = request.events.len() as u64;
        let last_version = actual + count;
        let last_offset = first_offset + count - 1;
        self.heads
            .insert(request.stream_id.clone(), (last_version, prev));
        if !self.touched.contains(&request.stream_id) {
            self.touched.push(request.stream_id.clone());
        }
        if let Some(command_id) = request.command_id {
            self.commands
                .insert(command_id, (index, request.stream_id.clone()));
            let l = &mut self.ledger;
            l.command_id.push(command_id);
            l.stream_id.push(request.stream_id.clone());
            l.first_version.push(to_i64(actual + 1));
            l.last_version.push(to_i64(last_version));
            l.first_offset.push(to_i64(first_offset));
            l.last_offset.push(to_i64(last_offset));
        }
        Decision::Accepted {
            first_version: actual + 1,
            last_version,
            first_offset,
            last_offset,
        }
    }

    /// The new head of every stream the batch wrote to, to remember once it committed.
    fn final_map(&self) -> Vec<(String, (u64, [u8; 32]))> {
        self.touched
            .iter()
            .filter_map(|stream| Some((stream.clone(), *self.heads.get(stream)?)))
            .collect()
    }

    /// The new head of every stream the batch wrote to.
    fn final_heads(&self) -> (Vec<String>, Vec<i64>, Vec<Vec<u8>>) {
        Self::heads_of(&self.touched, &self.heads)
    }

    /// The head, as read, of every stream the batch writes to.
    fn read_heads(&self) -> (Vec<String>, Vec<i64>, Vec<Vec<u8>>) {
        Self::heads_of(&self.touched, &self.read)
    }

    fn heads_of(
        streams: &[String],
        heads: &BTreeMap<String, (u64, [u8; 32])>,
    ) -> (Vec<String>, Vec<i64>, Vec<Vec<u8>>) {
        let mut ids = Vec::new();
        let mut versions = Vec::new();
        let mut hashes = Vec::new();
        for stream in streams {
            if let Some((version, hash)) = heads.get(stream) {
                ids.push(stream.clone());
                versions.push(to_i64(*version));
                hashes.push(hash.to_vec());
            }
        }
        (ids, versions, hashes)
    }
}

fn replay(
    command_id: Uuid,
    stream: &str,
    outcome: AppendOutcome,
    request: &AppendRequest,
) -> Result<AppendOutcome, StoreError> {
    if stream == request.stream_id {
        Ok(outcome)
    } else {
        Err(StoreError::CommandIdReused {
            command_id,
            original_stream: stream.to_owned(),
            stream: request.stream_id.clone(),
        })
    }
}

fn answers(decisions: &[Decision], base: u64) -> Vec<Result<AppendOutcome, StoreError>> {
    let accepted = |d: &Decision| match d {
        Decision::Accepted {
            first_version,
            last_version,
            first_offset,
            last_offset,
        } => Some(AppendOutcome {
            first_version: *first_version,
            last_version: *last_version,
            first_position: base + first_offset,
            last_position: base + last_offset,
            deduplicated: false,
        }),
        _ => None,
    };
    decisions
        .iter()
        .map(|d| match d {
            Decision::Answered(answer) => clone_answer(answer),
            Decision::SameAs(earlier) => match decisions.get(*earlier).and_then(accepted) {
                Some(outcome) => Ok(AppendOutcome {
                    deduplicated: true,
                    ..outcome
                }),
                None => Err(StoreError::corrupt("a replay of no accepted command")),
            },
            accepted_decision => accepted(accepted_decision)
                .ok_or_else(|| StoreError::corrupt("an undecided request")),
        })
        .collect()
}

fn clone_answer(answer: &Result<AppendOutcome, StoreError>) -> Result<AppendOutcome, StoreError> {
    match answer {
        Ok(outcome) => Ok(*outcome),
        Err(err) => Err(clone_err(err)),
    }
}

/// A copy of an error for every request of a failed batch (the error type is not `Clone`,
/// on purpose: most errors have one owner).
fn clone_err(err: &StoreError) -> StoreError {
    match err {
        StoreError::VersionConflict {
            stream,
            expected,
            actual,
        } => StoreError::VersionConflict {
            stream: stream.clone(),
            expected: *expected,
            actual: *actual,
        },
        StoreError::DuplicateEventId { event_id } => StoreError::DuplicateEventId {
            event_id: *event_id,
        },
        StoreError::CommandIdReused {
            command_id,
            original_stream,
            stream,
        } => StoreError::CommandIdReused {
            command_id: *command_id,
            original_stream: original_stream.clone(),
            stream: stream.clone(),
        },
        StoreError::Unavailable { reason } => StoreError::Unavailable {
            reason: reason.clone(),
        },
        StoreError::OutcomeUnknown { reason } => StoreError::OutcomeUnknown {
            reason: reason.clone(),
        },
        StoreError::Misconfigured { reason } => StoreError::Misconfigured {
            reason: reason.clone(),
        },
        StoreError::Corrupt { reason } => StoreError::Corrupt {
            reason: reason.clone(),
        },
        StoreError::NewerFormat { found, supported } => StoreError::NewerFormat {
            found: *found,
            supported: *supported,
        },
        other => StoreError::Io {
            reason: other.to_string(),
        },
    }
}
