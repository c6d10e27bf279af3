//! PostgreSQL next to SQLite FULL in one run (feature `postgres`, server in
//! `CASEFLOW_TEST_POSTGRES`), each on a fresh schema / file:
//!
//! 1. **64 concurrent single-event commands in one process**, and **one task sequential**:
//!    every append is one event with a command id (so it writes a ledger row, as an engine
//!    command does), each task on its own streams, for `CASEFLOW_BENCH_SECS` (default 5).
//! 2. **64 concurrent single-event commands across 4 processes** (16 tasks each): the bench
//!    re-executes itself as 4 writer processes that start together, all on one schema, then
//!    each on a schema of its own (four districts on one primary). SQLite has no such
//!    column: its writer keeps the log head in memory, one writing process per file.
//! 3. **Load and fold one 20-event case**: `read_stream` of a 20-event stream in a store of
//!    `CASEFLOW_BENCH_CATCHUP_EVENTS` events, every payload decoded (mean of 2,000 loads).
//! 4. **Catch-up of `CASEFLOW_BENCH_CATCHUP_EVENTS` (default 1,000,000) events**: a
//!    subscription from position 1 to the head, every payload decoded.
//!
//! `cargo bench -p caseflow-store --features postgres --bench pg_vs_sqlite`
//! (wall time; the closing line is the ratio to SQLite FULL with 64 writers in this run).

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caseflow_store::postgres::PostgresStore;
use caseflow_store::postgres::testing::TempSchema;
use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, SqliteOptions, SqliteStore,
};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

const ROLE_ENV: &str = "CASEFLOW_BENCH_ROLE";
const URL_ENV: &str = "CASEFLOW_BENCH_URL";
const PROCESS_ENV: &str = "CASEFLOW_BENCH_PROCESS";
const PROCESSES: usize = 4;
const WRITERS: usize = 64;
const CASE_EVENTS: u64 = 20;
const LOADS: u32 = 2_000;

static IDS: AtomicU64 = AtomicU64::new(1);

/// Time-ordered ids; the process id in the high half keeps processes apart.
fn next_id() -> Uuid {
    Uuid::from_u64_pair(
        0x0190_0000_0000_7000 | u64::from(std::process::id()) << 16,
        0x8000_0000_0000_0000 | IDS.fetch_add(1, Ordering::Relaxed),
    )
}

/// A payload shaped like a real case event (~230 bytes).
fn payload(n: u64) -> Vec<u8> {
    format!(
        "{{\"case_id\":\"0190a3b4-5c6d-7e8f-9a0b-{n:012x}\",\"channel\":\"hotline\",\
         \"kind\":\"complaint\",\"category\":\"land-use\",\"locality\":\"loc-zhongshan\",\
         \"village\":\"vil-wenhuagong\",\"due_at\":\"2026-03-01T09:00:00Z\",\"n\":{n}}}"
    )
    .into_bytes()
}

/// `count` events on one stream as one command (a command id on the request and on every
/// event's metadata).
fn command(stream: &str, count: u64, n: u64) -> AppendRequest {
    let command_id = next_id();
    AppendRequest {
        stream_id: stream.into(),
        expected: ExpectedVersion::Any,
        events: (0..count)
            .map(|i| NewEvent {
                event_id: next_id(),
                event_type: "CaseReported".into(),
                schema_version: 1,
                payload: payload(n + i).into(),
                metadata: Metadata {
                    actor: "room-1/clerk".into(),
                    command_id: Some(command_id),
                    correlation_id: Some(command_id),
                    causation_id: None,
                },
            })
            .collect(),
        recorded_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
        command_id: Some(command_id),
    }
}

fn secs() -> u64 {
    env_u64("CASEFLOW_BENCH_SECS", 5)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `writers` tasks append single-event commands until `secs` have passed; the number of
/// acknowledged events.
async fn append_for(store: Arc<dyn EventStore>, writers: usize, secs: u64, tag: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(&store);
            let prefix = format!("bench-{tag}-{w}");
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let stream = format!("{prefix}-{}", n % 8);
                    store.append(command(&stream, 1, n)).await.expect("append");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("writer");
    }
    total
}

async fn appends_per_second(store: Arc<dyn EventStore>, writers: usize) -> f64 {
    let started = Instant::now();
    let total = append_for(store, writers, secs(), "one").await;
    total as f64 / started.elapsed().as_secs_f64()
}

async fn open_sqlite(dir: &std::path::Path, name: &str) -> Arc<dyn EventStore> {
    Arc::new(SqliteStore::open(dir.join(name), SqliteOptions::default()).expect("sqlite"))
}

async fn open_pg(schema: &TempSchema) -> Arc<dyn EventStore> {
    Arc::new(
        PostgresStore::connect_str(&schema.url(""))
            .await
            .expect("postgres"),
    )
}

/// A writer process of section 2: opens the store, says `ready`, waits for `go`, appends
/// with `WRITERS / PROCESSES` tasks for `secs()` and prints `acked <events>`.
fn child() {
    let url = std::env::var(URL_ENV).expect("the parent passes the URL");
    let process = std::env::var(PROCESS_ENV).expect("the parent passes the process index");
    runtime().block_on(async {
        let store: Arc<dyn EventStore> =
            Arc::new(PostgresStore::connect_str(&url).await.expect("postgres"));
        println!("ready");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).expect("go");
        // `CASEFLOW_BENCH_TASKS` overrides the task count, to profile one writer process.
        let tasks = env_u64("CASEFLOW_BENCH_TASKS", (WRITERS / PROCESSES) as u64) as usize;
        let acked = append_for(store, tasks, secs(), &process).await;
        println!("acked {acked}");
        // Hold the store (and its server sessions) until the parent closes stdin, so a
        // profiler of the server sees every session's CPU before the sessions end.
        let mut rest = String::new();
        let _ = std::io::stdin().lock().read_line(&mut rest);
    });
}

/// Section 2: 4 processes (process `p` on `urls[p % urls.len()]`), started together;
/// events/s over the window.
fn across_processes(urls: Vec<String>) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            Command::new(&exe)
                .env(ROLE_ENV, "writer")
                .env(URL_ENV, &urls[p % urls.len()])
                .env(PROCESS_ENV, format!("p{p}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a writer process")
        })
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| std::io::BufReader::new(c.stdout.take().expect("stdout")))
        .collect();
    for out in &mut outputs {
        let mut line = String::new();
        out.read_line(&mut line).expect("ready");
        assert_eq!(
            line.trim(),
            "ready",
            "a writer process failed to open the store"
        );
    }
    let started = Instant::now();
    for child in &mut children {
        writeln!(child.stdin.as_mut().expect("stdin"), "go").expect("go");
    }
    let mut total = 0u64;
    for out in &mut outputs {
        let mut line = String::new();
        out.read_line(&mut line).expect("acked");
        total += line
            .trim()
            .strip_prefix("acked ")
            .and_then(|n| n.parse::<u64>().ok())
            .expect("a writer process reports its acknowledged events");
    }
    let elapsed = started.elapsed().as_secs_f64();
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "a writer failed");
    }
    total as f64 / elapsed
}

/// Fills a store with `events` events as 20-event cases (one command each), 16 at a time.
async fn fill(store: &Arc<dyn EventStore>, events: u64) {
    let cases = events.div_ceil(CASE_EVENTS);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(store);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                loop {
                    let case = next.fetch_add(1, Ordering::Relaxed);
                    if case >= cases {
                        break;
                    }
                    let request = command(&format!("case-{case}"), CASE_EVENTS, case);
                    store.append(request).await.expect("fill");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("filler");
    }
}

/// Decodes a payload as a read model would (the "fold" of a load).
fn fold(folded: &mut u64, payload: &[u8]) {
    let value: serde_json::Value = serde_json::from_slice(payload).expect("a JSON payload");
    *folded += value.get("n").and_then(|n| n.as_u64()).unwrap_or(0);
}

/// Section 3: mean microseconds to load and fold one 20-event case.
async fn load_and_fold(store: &Arc<dyn EventStore>, case: &str) -> f64 {
    let started = Instant::now();
    let mut folded = 0u64;
    for _ in 0..LOADS {
        let records = store.read_stream(case, 1, 100).await.expect("load");
        assert_eq!(records.len() as u64, CASE_EVENTS);
        for record in &records {
            fold(&mut folded, &record.payload);
        }
    }
    std::hint::black_box(folded);
    started.elapsed().as_secs_f64() * 1e6 / f64::from(LOADS)
}

/// Section 4: events/s of a subscription from the start of the log to its head.
async fn catch_up(store: &Arc<dyn EventStore>) -> f64 {
    let head = store.head_position().await.expect("head");
    let started = Instant::now();
    let mut subscription = store.subscribe(1).await.expect("subscribe");
    let mut folded = 0u64;
    let mut seen = 0u64;
    while seen < head {
        let record = subscription
            .next()
            .await
            .expect("the subscription ends only with the store")
            .expect("a record");
        fold(&mut folded, &record.payload);
        seen = record.position;
    }
    std::hint::black_box(folded);
    head as f64 / started.elapsed().as_secs_f64()
}

fn row(what: &str, sqlite: f64, pg: f64, unit: &str) {
    println!(
        "| {what} | {sqlite:.0} {unit} | {pg:.0} {unit} | {:.2} |",
        pg / sqlite
    );
}

fn main() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("writer") {
        child();
        return;
    }
    let catch_up_events = env_u64("CASEFLOW_BENCH_CATCHUP_EVENTS", 1_000_000);
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        println!("| workload | SQLite FULL | PostgreSQL | PostgreSQL / SQLite |");
        println!("|---|---|---|---|");
        let sqlite_1 = appends_per_second(open_sqlite(dir.path(), "one.db").await, 1).await;
        let pg_schema_1 = TempSchema::new();
        let pg_1 = appends_per_second(open_pg(&pg_schema_1).await, 1).await;
        row("one task sequential, ev/s", sqlite_1, pg_1, "ev/s");
        let sqlite_64 = appends_per_second(open_sqlite(dir.path(), "many.db").await, 64).await;
        let pg_schema_64 = TempSchema::new();
        let pg_64 = appends_per_second(open_pg(&pg_schema_64).await, WRITERS).await;
        row("64 concurrent, one process", sqlite_64, pg_64, "ev/s");
        let pg_schema_4 = TempSchema::new();
        open_pg(&pg_schema_4).await; // creates the schema before the writers start
        let urls = vec![pg_schema_4.url("")];
        let pg_4 = tokio::task::spawn_blocking(move || across_processes(urls))
            .await
            .expect("the 4-process run");
        println!(
            "| 64 concurrent, 4 processes × 16, one schema | one writing process per file | \
             {pg_4:.0} ev/s | {:.2} of SQLite's one process |",
            pg_4 / sqlite_64
        );
        // Four districts on one primary: a schema (and a log-head lock) per process.
        let districts: Vec<TempSchema> = (0..PROCESSES).map(|_| TempSchema::new()).collect();
        for schema in &districts {
            open_pg(schema).await;
        }
        let urls = districts.iter().map(|s| s.url("")).collect();
        let pg_4_schemas = tokio::task::spawn_blocking(move || across_processes(urls))
            .await
            .expect("the 4-schema run");
        println!(
            "| 64 concurrent, 4 processes × 16, a schema each | one file each (not run) | \
             {pg_4_schemas:.0} ev/s | {:.2} of SQLite's one process |",
            pg_4_schemas / sqlite_64
        );
        let sqlite = open_sqlite(dir.path(), "big.db").await;
        let pg_schema_big = TempSchema::new();
        let pg = open_pg(&pg_schema_big).await;
        let filled = Instant::now();
        fill(&sqlite, catch_up_events).await;
        let sqlite_fill = catch_up_events as f64 / filled.elapsed().as_secs_f64();
        let filled = Instant::now();
        fill(&pg, catch_up_events).await;
        let pg_fill = catch_up_events as f64 / filled.elapsed().as_secs_f64();
        row(
            "fill: 20-event commands, 16 tasks",
            sqlite_fill,
            pg_fill,
            "ev/s",
        );
        let case = format!("case-{}", catch_up_events / CASE_EVENTS / 2);
        let sqlite_load = load_and_fold(&sqlite, &case).await;
        let pg_load = load_and_fold(&pg, &case).await;
        row(
            "load and fold one 20-event case, µs",
            sqlite_load,
            pg_load,
            "µs",
        );
        let sqlite_catch_up = catch_up(&sqlite).await;
        let pg_catch_up = catch_up(&pg).await;
        row(
            &format!("catch-up of {catch_up_events} events"),
            sqlite_catch_up,
            pg_catch_up,
            "ev/s",
        );
        println!(
            "\nPostgreSQL, 64 concurrent single-event commands: {pg_64:.0} ev/s in one process, \
             {pg_4:.0} ev/s across 4; {:.2} and {:.2} of SQLite FULL ({sqlite_64:.0} ev/s) in \
             this run.",
            pg_64 / sqlite_64,
            pg_4 / sqlite_64
        );
    });
}
