//! Benchmarks of the read side (`cargo bench -p caseflow-projections`):
//!
//! 1. rebuild all three projections from a 1,000,000-event SQLite log (target ≥ 300,000
//!    events/s). The log is made once by the decide-driven history generator and cached in
//!    the target directory (`caseflow-bench/projections-1m.sqlite`); making it takes a
//!    minute or two the first time;
//! 2. a to-do query for one unit with 100,000 open cases in the store (target ≤ 1 ms);
//!
//! The memory of the to-do model is measured by `benches/memory.rs` (it needs a counting
//! global allocator, which would slow every allocation of these timings).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caseflow_domain::{Assignee, CaseId, Level};
use caseflow_projections::*;
use caseflow_store::{EventStore, SqliteOptions, SqliteStore};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::{HistoryGen, org, seeded};

const LOG_EVENTS: u64 = 1_000_000;

/// The bench log's size: 1,000,000 events, or `CASEFLOW_BENCH_LOG_EVENTS` (a smaller log
/// is made and cached under its own name, for runs that cannot wait for the big one).
fn log_events() -> u64 {
    std::env::var("CASEFLOW_BENCH_LOG_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(LOG_EVENTS)
}
const OPEN_CASES: usize = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("caseflow-bench");
    std::fs::create_dir_all(&dir).expect("create the bench cache directory");
    dir
}

/// Appends decisions in concurrent chunks (at most one decision per case in a chunk, so
/// expected versions hold), letting the store's group commit batch them.
async fn append_all(store: &Arc<SqliteStore>, g: &mut HistoryGen, decided: Vec<support::Decided>) {
    let mut chunk = Vec::new();
    let mut cases: HashSet<CaseId> = HashSet::new();
    for d in decided {
        if chunk.len() >= 512 || cases.contains(&d.case_id) {
            flush(store, &mut chunk).await;
            cases.clear();
        }
        cases.insert(d.case_id);
        chunk.push(g.request(&d));
    }
    flush(store, &mut chunk).await;
}

async fn flush(store: &Arc<SqliteStore>, chunk: &mut Vec<caseflow_store::AppendRequest>) {
    let appends = chunk.drain(..).map(|r| {
        let store = Arc::clone(store);
        async move { store.append(r).await }
    });
    for result in futures::future::join_all(appends).await {
        result.expect("append to the bench log");
    }
}

/// The cached 1M-event log, made on first use.
fn million_event_log(rt: &tokio::runtime::Runtime) -> PathBuf {
    let events = log_events();
    let name = match events {
        LOG_EVENTS => "projections-1m".to_owned(),
        n => format!("projections-{n}"),
    };
    let path = cache_dir().join(format!("{name}.sqlite"));
    let done = cache_dir().join(format!("{name}.complete"));
    if path.exists() && done.exists() {
        return path;
    }
    let partial = cache_dir().join(format!("{name}.partial.sqlite"));
    for p in [&path, &partial] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p.with_extension("sqlite-wal"));
        let _ = std::fs::remove_file(p.with_extension("sqlite-shm"));
    }
    eprintln!(
        "making the {events}-event bench log (once) at {}",
        path.display()
    );
    rt.block_on(async {
        let store = Arc::new(
            SqliteStore::open(&partial, SqliteOptions::normal()).expect("open the bench log"),
        );
        let mut g = HistoryGen::new(0xbe7c);
        // About seven minutes between commands: a million of them span some 14 years.
        g.pace = 100;
        let mut choice = seeded(0xbe7c);
        let mut i = 0usize;
        loop {
            let head = store.head_position().await.unwrap();
            if head >= events {
                break;
            }
            let n = ((events - head) as usize).min(20_000);
            let decided = g.run(n, |_| {
                i += 1;
                choice(i)
            });
            append_all(&store, &mut g, decided).await;
        }
        drop(store);
    });
    std::fs::rename(&partial, &path).expect("move the finished log into place");
    for ext in ["sqlite-wal", "sqlite-shm"] {
        let _ = std::fs::rename(partial.with_extension(ext), path.with_extension(ext));
    }
    std::fs::write(&done, b"ok").expect("mark the log complete");
    path
}

/// `CASEFLOW_BENCH=rebuild` or `=todo` runs only that part (their setups are long).
/// `CASEFLOW_BENCH=breakdown` prints the rebuild's stage breakdown and stops there.
fn wanted(part: &str) -> bool {
    std::env::var("CASEFLOW_BENCH").map_or(true, |only| {
        only == part || (only == "breakdown" && part == "rebuild")
    })
}

fn rebuild(c: &mut Criterion) {
    if !wanted("rebuild") {
        return;
    }
    let rt = runtime();
    let path = million_event_log(&rt);
    let store: Arc<dyn EventStore> =
        Arc::new(SqliteStore::open(&path, SqliteOptions::normal()).expect("open the bench log"));
    let head = rt.block_on(store.head_position()).unwrap();
    breakdown(&rt, &store, head);
    if std::env::var("CASEFLOW_BENCH").as_deref() == Ok("breakdown") {
        return;
    }
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(40));
    group.throughput(Throughput::Elements(head));
    group.bench_function("all_projections_in_memory_from_1m_sqlite_log", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut runner = ProjectionRunner::in_memory(store.clone(), org());
                let p = StandardProjections::register(&mut runner).await.unwrap();
                let applied = runner.catch_up().await.unwrap();
                assert_eq!(applied, head);
                p
            })
        })
    });
    group.finish();
}

/// A projection that does nothing: measures reading, decoding, folding and the who-acts
/// table alone.
struct NullProjection;

impl Projection for NullProjection {
    fn name(&self) -> &'static str {
        "null"
    }
    fn apply(&mut self, _: &Applied<'_>) -> Result<(), ApplyFailure> {
        Ok(())
    }
    fn reset(&mut self) {}
}

/// One pass of each stage of a rebuild, printed once, to show where the time goes.
fn breakdown(rt: &tokio::runtime::Runtime, store: &Arc<dyn EventStore>, head: u64) {
    let rate = |what: &str, started: std::time::Instant| {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "breakdown: {what}: {:.2} s, {:.0} events/s",
            secs,
            head as f64 / secs
        );
    };
    rt.block_on(async {
        let started = std::time::Instant::now();
        let mut from = 1;
        loop {
            let batch = store.read_all(from, DEFAULT_BATCH_SIZE).await.unwrap();
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
        }
        rate("read the log", started);
        let started = std::time::Instant::now();
        let mut from = 1;
        loop {
            let batch = store.read_all(from, DEFAULT_BATCH_SIZE).await.unwrap();
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for r in &batch {
                std::hint::black_box(caseflow_projections::decode(r).unwrap());
            }
        }
        rate("read + decode", started);
        for which in ["null", "todo", "stats", "timeline", "all three"] {
            let started = std::time::Instant::now();
            let mut runner = ProjectionRunner::in_memory(store.clone(), org());
            match which {
                "null" => drop(runner.register(NullProjection).await.unwrap()),
                "todo" => drop(runner.register(TodoProjection::new()).await.unwrap()),
                "stats" => drop(runner.register(StatsProjection::new()).await.unwrap()),
                "timeline" => drop(runner.register(TimelineProjection::new()).await.unwrap()),
                _ => drop(StandardProjections::register(&mut runner).await.unwrap()),
            }
            runner.catch_up().await.unwrap();
            rate(
                &format!("read + decode + fold + who-acts + {which} projection"),
                started,
            );
        }
    });
}

/// The to-do model over ~100k open cases, its busiest list, a median list and the largest
/// village list.
struct TodoSetup {
    todo: ProjectionHandle<TodoProjection>,
    now: chrono::DateTime<chrono::Utc>,
    largest: (usize, Assignee),
    median: (usize, Assignee),
    village: (usize, Assignee),
}

fn todo_setup(rt: &tokio::runtime::Runtime) -> TodoSetup {
    let (store, now) = rt.block_on(support::store_with_open_cases(OPEN_CASES));
    let (todo, open) = rt.block_on(async {
        let mut runner = ProjectionRunner::in_memory(store.clone(), org());
        let todo = runner.register(TodoProjection::new()).await.unwrap();
        runner.catch_up().await.unwrap();
        let open = todo.read().unwrap().case_count();
        (todo, open)
    });
    let guard = todo.read().unwrap();
    let mut sizes: Vec<(usize, Assignee)> = guard
        .assignees()
        .map(|a| (guard.counts_for(a, now).total as usize, a.clone()))
        .collect();
    drop(guard);
    sizes.sort();
    let largest = sizes.last().cloned().unwrap();
    let median = sizes[sizes.len() / 2].clone();
    let village = sizes
        .iter()
        .rev()
        .find(|(_, a)| matches!(a, Assignee::Unit(u) if org().level_of(u) == Some(Level::Village)))
        .cloned()
        .unwrap();
    eprintln!(
        "to-do model: {open} open cases waiting on somebody; largest list {} ({} items), \
         median {} ({}), largest village list {} ({})",
        largest.1, largest.0, median.1, median.0, village.1, village.0
    );
    TodoSetup {
        todo,
        now,
        largest,
        median,
        village,
    }
}

/// The whole list of one assignee, borrowed, collected (what a caller rendering it does).
#[inline(never)]
fn whole_list_query(
    todo: &TodoProjection,
    assignee: &Assignee,
    now: chrono::DateTime<chrono::Utc>,
) -> usize {
    todo.iter_for_assignee(assignee, now)
        .collect::<Vec<_>>()
        .len()
}

/// The first page of 50 items of one assignee's list, owned.
#[inline(never)]
fn first_page_query(
    todo: &TodoProjection,
    assignee: &Assignee,
    now: chrono::DateTime<chrono::Utc>,
) -> usize {
    todo.page_for_assignee(assignee, now, 0, 50).len()
}

/// `CASEFLOW_BENCH=todo-count`: after the setup, the busiest list's whole-list query and
/// first-page query, each asked `CASEFLOW_TODO_QUERIES` times (default 100) and nothing
/// else, so that callgrind can count the queries alone:
///
/// ```text
/// CASEFLOW_BENCH=todo-count valgrind --tool=callgrind --collect-atstart=no \
///   --toggle-collect='*whole_list_query*' --toggle-collect='*first_page_query*' \
///   <projections bench binary> --bench
/// callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep _query
/// ```
fn todo_count() {
    let rt = runtime();
    let setup = todo_setup(&rt);
    let queries: usize = std::env::var("CASEFLOW_TODO_QUERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let guard = setup.todo.read().unwrap();
    let (mut whole, mut page) = (0, 0);
    for _ in 0..queries {
        whole += whole_list_query(&guard, &setup.largest.1, setup.now);
        page += first_page_query(&guard, &setup.largest.1, setup.now);
    }
    eprintln!(
        "todo-count: {queries} whole-list queries ({whole} items) and {queries} first pages \
         ({page} items) of {}",
        setup.largest.1
    );
}

fn todo_query(c: &mut Criterion) {
    if std::env::var("CASEFLOW_BENCH").as_deref() == Ok("todo-count") {
        todo_count();
        return;
    }
    if !wanted("todo") {
        return;
    }
    let rt = runtime();
    let TodoSetup {
        todo,
        now,
        largest: (largest_n, largest),
        median: (median_n, median),
        village,
    } = todo_setup(&rt);
    let guard = todo.read().unwrap();
    let mut group = c.benchmark_group("todo_query_100k_open_cases");
    group.bench_function(format!("largest_list_{largest_n}_items_borrowed"), |b| {
        b.iter(|| whole_list_query(&guard, &largest, now))
    });
    group.bench_function(format!("largest_list_{largest_n}_items_owned"), |b| {
        b.iter(|| guard.for_assignee(&largest, now).len())
    });
    group.bench_function(format!("median_list_{median_n}_items_borrowed"), |b| {
        b.iter(|| whole_list_query(&guard, &median, now))
    });
    group.bench_function(format!("median_list_{median_n}_items_owned"), |b| {
        b.iter(|| guard.for_assignee(&median, now).len())
    });
    group.bench_function(format!("village_list_{}_items", village.0), |b| {
        b.iter(|| guard.for_assignee(&village.1, now).len())
    });
    group.bench_function("largest_list_first_page_50", |b| {
        b.iter(|| first_page_query(&guard, &largest, now))
    });
    group.bench_function("counts_all_units", |b| b.iter(|| guard.counts(now).len()));
    group.finish();
    drop(guard);
}

criterion_group!(benches, todo_query, rebuild);
criterion_main!(benches);
