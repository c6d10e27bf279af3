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
//!   ledger, chain or tree writes — against Caseflow FULL with one task, in turns case by
//!   case so that both see the same disk (its fsync latency drifts by several times within a
//!   minute on a shared machine).
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

impl Run {
    fn rate(&self) -> f64 {
        self.commands as f64 / self.seconds
    }
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

/// The ceiling's table: the rows of an event store with no ledger, chain or tree, keyed by
/// (stream, version), in WAL mode with `synchronous=FULL`.
fn plain_store(path: &Path) -> rusqlite::Connection {
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
    conn
}

/// Commits each row alone, its stream renamed by `suffix`.
fn plain_commits(conn: &rusqlite::Connection, rows: &[PlainRow], suffix: usize) {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (stream, version, event_type, payload, metadata) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .expect("insert");
    for r in rows {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        insert
            .execute(rusqlite::params![
                format!("{}-{suffix}", r.stream),
                r.version,
                r.event_type,
                r.payload,
                r.metadata
            ])
            .expect("row");
        conn.execute_batch("COMMIT").expect("commit");
    }
}

/// What [`full_against_plain`] measured.
struct Turns {
    caseflow: Run,
    plain: Run,
    plain_wal: f64,
    plain_file: f64,
}

/// Caseflow on SQLite FULL with one task against the plain loop, in turns case by case (a
/// case through the engine, then the same 20 rows committed one by one by the plain loop),
/// so both see the same disk: on a shared machine an fsync's latency drifts by several
/// times within a minute. The rows are the engine's own, read back from a first, untimed
/// case.
fn full_against_plain(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    cases: usize,
    round: usize,
) -> Turns {
    let path = dir.join(format!("turns-caseflow-r{round}.db"));
    let plain_path = dir.join(format!("turns-plain-r{round}.db"));
    let engine = rt.block_on(open_engine(Store::Sqlite(Synchronous::Full), &path));
    rt.block_on(walk_case(&engine));
    let rows = rt.block_on(stored_rows(engine.store()));
    let plain = plain_store(&plain_path);
    // No reader pins the WALs here: each store checkpoints and reuses its WAL as in service
    // (a growing WAL makes every fsync also commit the file's new size).
    let (mut caseflow, mut plain_time, mut commands) = (0.0, 0.0, 0u64);
    for case in 0..cases {
        let started = Instant::now();
        commands += rt.block_on(walk_case(&engine)).len() as u64;
        caseflow += started.elapsed().as_secs_f64();
        let started = Instant::now();
        plain_commits(&plain, &rows, case);
        plain_time += started.elapsed().as_secs_f64();
    }
    let plain_rows = (rows.len() * cases) as u64;
    drop(plain);
    // The plain loop's WAL bytes per row, as the engine's are measured: pinned, untimed.
    let pinned_path = dir.join(format!("plain-wal-r{round}.db"));
    let pinned = plain_store(&pinned_path);
    let pin = pin_wal(&pinned_path);
    let before = wal_len(&pinned_path);
    for case in 0..cases {
        plain_commits(&pinned, &rows, case);
    }
    let plain_wal = (wal_len(&pinned_path) - before) as f64 / plain_rows as f64;
    drop((pin, pinned));
    drop(engine);
    Turns {
        caseflow: Run {
            commands,
            seconds: caseflow,
        },
        plain: Run {
            commands: plain_rows,
            seconds: plain_time,
        },
        plain_wal,
        plain_file: bytes_per_event(&plain_path, plain_rows + rows.len() as u64),
    }
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
                let rate = run.rate();
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
        let turns = full_against_plain(&rt, dir, cases, round);
        let (caseflow, plain) = (turns.caseflow.rate(), turns.plain.rate());
        println!(
            "{:<28} {:>10.0} {:>12} {:>12}",
            "turns: sqlite_full/1", caseflow, "-", "-"
        );
        println!(
            "{:<28} {:>10.0} {:>12.0} {:>12.0}",
            "turns: plain_rusqlite_full/1", plain, turns.plain_wal, turns.plain_file
        );
        println!(
            "round {}: sqlite_full/1 / plain_rusqlite_full/1 = {:.2} (in turns, case by case)",
            round + 1,
            caseflow / plain
        );
    }
}
