//! The 20-command case workload (issue 16), through the real engine, next to a plain
//! rusqlite loop that commits the same single-event rows with `synchronous=FULL`.
//!
//! Each case is walked by asking the domain what may happen next (`next_commands`): the
//! drafted command that discharges a duty, except that eight optional progress reports are
//! made while the rectification is carried out. That yields report, accept, classify, route,
//! findings, rectification ordered, plan, eight progress reports, complete, schedule and
//! record the follow-up visit, satisfaction, close — 20 commands of one event each (the bench
//! refuses to run if the domain walks another sequence).
//!
//! Measured, for memory, SQLite NORMAL and SQLite FULL, with one task and with 64 tasks
//! (each task walks its own cases one after another):
//! - commands per second;
//! - for SQLite, WAL bytes per command (the WAL's growth while a reader pins its start, so no
//!   checkpoint can reset it) and bytes per event of the store file after the closing
//!   checkpoint;
//! - the ceiling: the same rows (stream, version, type, payload, metadata JSON), one
//!   transaction each, into a table keyed by (stream, version) — what an event store with no
//!   ledger, chain or tree writes.
//!
//! Run: `cargo bench -p caseflow --bench workload` (about a minute on an idle machine);
//! `-- --cases N` sets the cases of the one-task runs (default 10), `--rounds R` repeats
//! every measurement (default 1), `--keep DIR` keeps the stores in DIR.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use caseflow::domain::*;
use caseflow::store::{EventStore, SqliteOptions, Synchronous};
use caseflow::{
    CommandEnvelope, District, Engine, EngineConfig, ManualClock, MasterKey, SeededIds, StoreConfig,
};
use chrono::{TimeZone, Utc};

/// The commands of one case, in order.
const SEQUENCE: [CommandKind; 20] = {
    use CommandKind::*;
    [
        ReportCase,
        AcceptCase,
        ClassifyCase,
        RouteCase,
        RecordFindings,
        OrderRectification,
        SubmitRectificationPlan,
        ReportRectificationProgress,
        ReportRectificationProgress,
        ReportRectificationProgress,
        ReportRectificationProgress,
        ReportRectificationProgress,
        ReportRectificationProgress,
        ReportRectificationProgress,
        ReportRectificationProgress,
        CompleteRectification,
        ScheduleFollowUpVisit,
        RecordFollowUpVisit,
        RecordSatisfaction,
        CloseCase,
    ]
};
const PROGRESS_REPORTS: usize = 8;

#[derive(Clone, Copy, Debug)]
enum Store {
    Memory,
    Sqlite(Synchronous),
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Sqlite(Synchronous::Normal) => "sqlite_normal",
            Store::Sqlite(Synchronous::Full) => "sqlite_full",
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn open_engine(store: Store, path: &Path) -> Engine {
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("time");
    let config = match store {
        Store::Memory => StoreConfig::Memory,
        Store::Sqlite(synchronous) => StoreConfig::Sqlite {
            path: path.to_path_buf(),
            options: SqliteOptions {
                synchronous,
                ..SqliteOptions::default()
            },
        },
    };
    Engine::open(
        EngineConfig::with_store(config, District::sample().expect("district"))
            .master_key(MasterKey::generate())
            .clock(Arc::new(ManualClock::new(start)))
            .ids(Arc::new(SeededIds::new(7))),
    )
    .await
    .expect("engine")
}

fn report(engine: &Engine) -> (CaseId, CommandEnvelope) {
    let case_id = CaseId::new(engine.new_id());
    let command = ReportCase {
        case_id,
        channel: Channel::Hotline,
        kind: CaseKind::Complaint,
        summary: "村道硬化工程质量问题 (workload case)".into(),
        locality: UnitId::new("loc-chaoyang"),
        village: Some(UnitId::new("vil-dongyuan")),
        subject: "村（社区）干部 (a cadre)".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Anonymous,
        reporter_handle: ReporterHandle(engine.new_id()),
        source_department: None,
    };
    let actor = Actor::new("vil-dongyuan", Role::InformationOfficer);
    (
        case_id,
        CommandEnvelope::new(engine.new_id(), actor, engine.now(), command),
    )
}

/// The next command of the walk: a progress report while fewer than eight were made, else
/// the first drafted command that discharges a duty, from its first issuer.
fn next(engine: &Engine, state: &CaseState, progress: usize) -> Option<(Actor, Command)> {
    let d = engine.district();
    let ctx = NextContext::new(&d.org, &d.calendar, &d.policies, engine.now());
    let candidates: Vec<NextCommand> = next_commands(state, &ctx)
        .into_iter()
        .filter(|c| c.draft.is_some())
        .collect();
    let wanted = candidates
        .iter()
        .find(|c| c.kind == CommandKind::ReportRectificationProgress && progress < PROGRESS_REPORTS)
        .or_else(|| candidates.iter().find(|c| !c.discharges.is_empty()))?;
    Some((wanted.issuers.first()?.clone(), wanted.draft.clone()?))
}

/// Walks one case from its report to its close; returns the commands' kinds.
async fn walk_case(engine: &Engine) -> Vec<CommandKind> {
    let (case_id, envelope) = report(engine);
    engine.execute(envelope).await.expect("report");
    let mut kinds = vec![CommandKind::ReportCase];
    let mut progress = 0;
    while kinds.len() < 40 {
        let state = engine.case_state(case_id).await.expect("state");
        if !state.is_open() {
            break;
        }
        let Some((actor, command)) = next(engine, &state, progress) else {
            break;
        };
        let kind = command.kind();
        progress += usize::from(kind == CommandKind::ReportRectificationProgress);
        let envelope = CommandEnvelope::new(engine.new_id(), actor, engine.now(), command);
        let outcome = engine.execute(envelope).await.expect("command");
        assert_eq!(outcome.events.len(), 1, "{kind} wrote one event");
        kinds.push(kind);
    }
    kinds
}

struct Run {
    commands: u64,
    seconds: f64,
}

/// `tasks` tasks, each walking `cases` cases one after another.
async fn run_engine(engine: &Engine, tasks: usize, cases: usize) -> Run {
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut commands = 0u64;
                for _ in 0..cases {
                    let kinds = walk_case(&engine).await;
                    assert_eq!(kinds, SEQUENCE, "the domain walked another sequence");
                    commands += kinds.len() as u64;
                }
                commands
            })
        })
        .collect();
    let mut commands = 0;
    for h in handles {
        commands += h.await.expect("task");
    }
    Run {
        commands,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn wal_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len())
}

/// A connection holding a read snapshot taken now: no checkpoint can reset the WAL while it
/// lives, so the WAL's growth is every frame written after this point.
fn pin_wal(db: &Path) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("pin");
    conn.execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;")
        .expect("snapshot");
    conn
}

/// The file's size after the last connection closed (SQLite checkpoints then).
fn bytes_per_event(db: &Path, events: u64) -> f64 {
    std::fs::metadata(db).map_or(0, |m| m.len()) as f64 / events.max(1) as f64
}

/// One row of the plain loop: what the engine stored for one event.
struct PlainRow {
    stream: String,
    version: i64,
    event_type: String,
    payload: Vec<u8>,
    metadata: String,
}

async fn stored_rows(store: &Arc<dyn EventStore>) -> Vec<PlainRow> {
    let mut rows = Vec::new();
    let mut from = 1;
    loop {
        let batch = store.read_all(from, 4096).await.expect("read");
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        rows.extend(batch.into_iter().map(|e| PlainRow {
            metadata: format!(
                "{{\"actor\":{:?},\"command_id\":\"{}\",\"correlation_id\":\"{}\"}}",
                e.metadata.actor,
                e.metadata.command_id.unwrap_or_default(),
                e.metadata.correlation_id.unwrap_or_default()
            ),
            stream: e.stream_id,
            version: e.version as i64,
            event_type: e.event_type,
            payload: e.payload,
        }));
    }
    rows
}

/// The ceiling: each row committed alone with FULL, in WAL mode, keyed by (stream, version).
/// Returns rows/s and WAL bytes per row.
fn plain_loop(path: &Path, rows: &[PlainRow]) -> (Run, f64) {
    let conn = rusqlite::Connection::open(path).expect("plain db");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE events (
             stream     TEXT    NOT NULL,
             version    INTEGER NOT NULL,
             event_type TEXT    NOT NULL,
             payload    BLOB    NOT NULL,
             metadata   TEXT    NOT NULL,
             PRIMARY KEY (stream, version)
         );",
    )
    .expect("schema");
    let pin = pin_wal(path);
    let wal_before = wal_len(path);
    let started = Instant::now();
    let mut insert = conn
        .prepare(
            "INSERT INTO events (stream, version, event_type, payload, metadata) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .expect("insert");
    for r in rows {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        insert
            .execute(rusqlite::params![
                r.stream,
                r.version,
                r.event_type,
                r.payload,
                r.metadata
            ])
            .expect("row");
        conn.execute_batch("COMMIT").expect("commit");
    }
    let seconds = started.elapsed().as_secs_f64();
    let wal = (wal_len(path) - wal_before) as f64 / rows.len().max(1) as f64;
    drop(pin);
    (
        Run {
            commands: rows.len() as u64,
            seconds,
        },
        wal,
    )
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let cases = arg("--cases", 10);
    let rounds = arg("--rounds", 1);
    let rt = runtime();
    // `--keep DIR` writes the stores there (to inspect them with sqlite3) instead of a
    // temporary directory.
    let temp = tempfile::tempdir().expect("temp dir");
    let keep = std::env::args()
        .skip_while(|a| a != "--keep")
        .nth(1)
        .map(PathBuf::from);
    let dir = keep.as_deref().unwrap_or(temp.path());
    std::fs::create_dir_all(dir).expect("store directory");
    println!(
        "workload: 20 commands per case; one task walks {cases} cases, 64 tasks walk one each"
    );
    println!(
        "{:<28} {:>10} {:>12} {:>12}",
        "run", "commands/s", "WAL B/cmd", "file B/event"
    );
    for round in 0..rounds {
        let mut full_one_task = 0.0;
        let mut full_rows = Vec::new();
        for store in [
            Store::Memory,
            Store::Sqlite(Synchronous::Normal),
            Store::Sqlite(Synchronous::Full),
        ] {
            for (tasks, cases) in [(1, cases), (64, 1)] {
                let path = dir.join(format!("{}-{tasks}-r{round}.db", store.name()));
                let engine = rt.block_on(open_engine(store, &path));
                let pin = matches!(store, Store::Sqlite(_)).then(|| pin_wal(&path));
                let wal_before = wal_len(&path);
                let run = rt.block_on(run_engine(&engine, tasks, cases));
                let wal = (wal_len(&path) - wal_before) as f64 / run.commands as f64;
                if keep.is_some() && pin.is_some() {
                    let mut copy = path.as_os_str().to_owned();
                    copy.push(".wal-copy");
                    let mut wal = path.as_os_str().to_owned();
                    wal.push("-wal");
                    std::fs::copy(wal, copy).expect("copy of the WAL");
                }
                drop(pin);
                let rate = run.commands as f64 / run.seconds;
                if matches!(store, Store::Sqlite(Synchronous::Full)) && tasks == 1 {
                    full_one_task = rate;
                    full_rows = rt.block_on(stored_rows(engine.store()));
                }
                drop(engine);
                let (wal, file) = match store {
                    Store::Memory => ("-".to_owned(), "-".to_owned()),
                    Store::Sqlite(_) => (
                        format!("{wal:.0}"),
                        format!("{:.0}", bytes_per_event(&path, run.commands)),
                    ),
                };
                println!(
                    "{:<28} {:>10.0} {:>12} {:>12}",
                    format!("{}/{tasks}", store.name()),
                    rate,
                    wal,
                    file
                );
            }
        }
        let plain = dir.join(format!("plain-r{round}.db"));
        let (run, wal) = plain_loop(&plain, &full_rows);
        let rate = run.commands as f64 / run.seconds;
        println!(
            "{:<28} {:>10.0} {:>12.0} {:>12.0}",
            "plain_rusqlite_full/1",
            rate,
            wal,
            bytes_per_event(&plain, run.commands)
        );
        println!(
            "round {}: sqlite_full/1 / plain_rusqlite_full/1 = {:.2}",
            round + 1,
            full_one_task / rate
        );
    }
}
