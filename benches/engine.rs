//! Engine benchmarks: command execution (decide + append + ledger) on each store, a to-do
//! query, and verify; and the cost of sealing a named reporter's contact, against an
//! anonymous report in the same run (`report_named_vs_anonymous`). Run with
//! `cargo bench -p caseflow --bench engine`. `round_trip_memory_one_task` is the command
//! round trip: whole forward-walked cases executed one command after another.

use std::sync::Arc;

use std::time::{Duration, Instant};

use caseflow::domain::walk::{First, walk_forward};
use caseflow::domain::{
    Actor, CaseId, CaseKind, CaseState, Channel, Command, Context, FocusArea, NextContext,
    ProtectedContact, ReportCase, Reporter, ReporterHandle, Role, UnitId, decide, evolve,
};
use caseflow::store::{SqliteOptions, Synchronous};
use caseflow::{
    CommandEnvelope, District, Engine, EngineConfig, ManualClock, MasterKey, SeededIds, StoreConfig,
};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/common/workload.rs"]
mod workload;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn engine(store: StoreConfig) -> (Engine, Arc<ManualClock>) {
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("time");
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::open(
        EngineConfig::with_store(store, District::sample().expect("district"))
            .master_key(MasterKey::generate())
            .clock(clock.clone())
            .ids(Arc::new(SeededIds::new(1))),
    )
    .await
    .expect("engine");
    (engine, clock)
}

fn report(engine: &Engine) -> CommandEnvelope {
    report_by(engine, Reporter::Anonymous)
}

/// A report by a new named reporter each time (a new data key each time: the worst case).
fn named_report(engine: &Engine) -> CommandEnvelope {
    report_by(
        engine,
        Reporter::Named(ProtectedContact::new("王某某", "138-0000-0000")),
    )
}

fn report_by(engine: &Engine, reporter: Reporter) -> CommandEnvelope {
    let case_id = CaseId::new(engine.new_id());
    CommandEnvelope::new(
        engine.new_id(),
        Actor::new("vil-dongyuan", Role::InformationOfficer),
        engine.now(),
        ReportCase {
            case_id,
            channel: Channel::Hotline,
            kind: CaseKind::Complaint,
            summary: "benchmark case".into(),
            locality: UnitId::new("loc-chaoyang"),
            village: Some(UnitId::new("vil-dongyuan")),
            subject: "subject".into(),
            focus_area: FocusArea::LivingEnvironment,
            reporter,
            reporter_handle: ReporterHandle(engine.new_id()),
            source_department: None,
        },
    )
}

/// The stores every engine bench runs on: memory, SQLite NORMAL and SQLite FULL, the SQLite
/// files in `dir`.
fn stores(dir: &std::path::Path) -> Vec<(&'static str, StoreConfig)> {
    vec![
        ("memory", StoreConfig::Memory),
        (
            "sqlite_normal",
            StoreConfig::Sqlite {
                path: dir.join("normal.db"),
                options: SqliteOptions::normal(),
            },
        ),
        (
            "sqlite_full",
            StoreConfig::Sqlite {
                path: dir.join("full.db"),
                options: SqliteOptions {
                    synchronous: Synchronous::Full,
                    ..SqliteOptions::default()
                },
            },
        ),
    ]
}

fn execute(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = stores(dir.path());
    let mut group = c.benchmark_group("execute_report_case");
    for (name, store) in stores {
        let (engine, _clock) = rt.block_on(engine(store));
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let engine = engine.clone();
                async move {
                    let envelope = report(&engine);
                    engine.execute(envelope).await.expect("executes")
                }
            });
        });
    }
    group.finish();
}

fn queries(c: &mut Criterion) {
    let rt = runtime();
    let (engine, clock) = rt.block_on(engine(StoreConfig::Memory));
    // A month of the walked workload (the same shape of history the demo month had).
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("time");
    let now = rt
        .block_on(workload::walked_workload(&engine, &clock, start, 30, 1))
        .end;
    rt.block_on(engine.refresh()).expect("refresh");
    let unit = UnitId::new("room-1");
    c.bench_function("todo_room_1_after_one_demo_month", |b| {
        b.to_async(&rt).iter(|| engine.todo(&unit, now));
    });
    let mut slow = c.benchmark_group("slow");
    slow.sample_size(10);
    slow.bench_function("verify_one_demo_month", |b| {
        b.to_async(&rt).iter(|| engine.verify());
    });
    slow.bench_function("export_xes_one_demo_month", |b| {
        b.to_async(&rt).iter(|| engine.export_xes(std::io::sink()));
    });
    slow.finish();
}

/// Reporting a case by a named reporter (contact sealed, a new reporter's data key drawn from
/// the key store) against the same report by an anonymous reporter (nothing to seal), on each
/// store, in the same run. The baseline from before sealing existed (a named report in clear)
/// needs an older build: docs/benchmarks.md, "Reporter protection cost, second pass".
fn sealing(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = stores(dir.path());
    let mut group = c.benchmark_group("report_named_vs_anonymous");
    for (name, store) in stores {
        for (who, make) in [
            ("anonymous", report as fn(&Engine) -> CommandEnvelope),
            ("named_sealed", named_report),
        ] {
            // A store of its own for each kind, so neither runs on a log the other grew.
            let store = match &store {
                StoreConfig::Sqlite { path, options } => StoreConfig::Sqlite {
                    path: path.with_file_name(format!("{name}-{who}.db")),
                    options: options.clone(),
                },
                _ => StoreConfig::Memory,
            };
            let (engine, _clock) = rt.block_on(engine(store));
            group.bench_function(format!("{name}/{who}"), |b| {
                b.to_async(&rt).iter(|| {
                    let engine = engine.clone();
                    async move { engine.execute(make(&engine)).await.expect("executes") }
                });
            });
        }
    }
    group.finish();
}

/// Cases in the round-trip bench's workload.
const ROUND_TRIP_CASES: u128 = 2_000;

/// Whole cases as the domain walks them forward: each case's report (anonymous, so this
/// measures the engine and the store rather than sealing, which `report_named_vs_anonymous`
/// measures), then every command `walk_forward` drafts for it at the same instant, in order.
fn forward_cases(district: &District, at: chrono::DateTime<Utc>) -> Vec<CommandEnvelope> {
    let mut envelopes = Vec::new();
    let mut next_id = 0u128;
    let mut id = || {
        next_id += 1;
        uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | next_id)
    };
    let reporter = Actor::new("vil-dongyuan", Role::InformationOfficer);
    for _ in 0..ROUND_TRIP_CASES {
        let report: Command = ReportCase {
            case_id: CaseId::new(id()),
            channel: Channel::Hotline,
            kind: CaseKind::Complaint,
            summary: "round-trip case".into(),
            locality: UnitId::new("loc-chaoyang"),
            village: Some(UnitId::new("vil-dongyuan")),
            subject: "subject".into(),
            focus_area: FocusArea::LivingEnvironment,
            reporter: Reporter::Anonymous,
            reporter_handle: ReporterHandle(id()),
            source_department: None,
        }
        .into();
        let decision = Context::new(
            &reporter,
            at,
            &district.org,
            &district.calendar,
            &district.policies,
        );
        let mut state = CaseState::default();
        for event in decide(&state, &report, &decision).expect("the report is accepted") {
            evolve(&mut state, &event);
        }
        envelopes.push(CommandEnvelope::new(id(), reporter.clone(), at, report));
        let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, at);
        let (moves, _) = walk_forward(&mut state, &ctx, &mut First, 64);
        for m in moves {
            envelopes.push(CommandEnvelope::new(id(), m.actor, at, m.command));
        }
    }
    envelopes
}

/// The command round trip on the memory store, one task: the forward-walked cases executed
/// one after another on a fresh engine (opening it is outside the timed region).
/// Throughput is commands per second.
fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let district = District::sample().expect("district");
    let at = Utc
        .with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("time");
    let envelopes = forward_cases(&district, at);
    let commands = envelopes.len() as u64;
    if std::env::var_os("CASEFLOW_ROUND_TRIP_ONCE").is_some() {
        // One pass and no statistics: a fixed amount of work to count instructions of
        // (`valgrind --tool=callgrind <bench binary> --bench round_trip`).
        let (engine, _clock) = rt.block_on(engine(StoreConfig::Memory));
        rt.block_on(async {
            for envelope in envelopes {
                engine.execute(envelope).await.expect("executes");
            }
        });
        eprintln!("round trip: {commands} commands executed once");
        std::process::exit(0);
    }
    let mut group = c.benchmark_group("round_trip_memory_one_task");
    group.sample_size(10);
    group.throughput(Throughput::Elements(commands));
    group.bench_function(
        format!("{ROUND_TRIP_CASES}_cases_{commands}_commands"),
        |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let (engine, _clock) = rt.block_on(engine(StoreConfig::Memory));
                    let work = envelopes.clone();
                    let started = Instant::now();
                    rt.block_on(async {
                        for envelope in work {
                            engine.execute(envelope).await.expect("executes");
                        }
                    });
                    timed += started.elapsed();
                }
                timed
            });
        },
    );
    group.finish();
}

criterion_group!(benches, round_trip, execute, sealing, queries);
criterion_main!(benches);
