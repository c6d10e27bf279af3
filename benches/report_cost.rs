//! Instruction counts of one report, named (contact sealed, a new reporter each time, as a
//! district sees them) against anonymous (nothing to seal), for callgrind, where the shared
//! machine makes wall time unreliable. Runs `count` reports of one kind on one store and
//! exits; the cost of one report is the difference of two counts divided by the difference
//! of the report counts (so opening the store and the engine cancels out):
//!
//! ```text
//! cargo bench -p caseflow --bench report_cost --no-run
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/report_cost-* \
//!     <memory|sqlite_normal|sqlite_full> <anonymous|named> <count>
//! ```
//!
//! Without arguments (as `cargo bench` runs it) it does a short run of every combination.

use std::sync::Arc;

use caseflow::domain::{
    Actor, CaseId, CaseKind, Channel, FocusArea, ProtectedContact, ReportCase, Reporter,
    ReporterHandle, Role, UnitId,
};
use caseflow::store::SqliteOptions;
use caseflow::{
    CommandEnvelope, District, Engine, EngineConfig, ManualClock, MasterKey, SeededIds, StoreConfig,
};
use chrono::{TimeZone, Utc};

fn store(name: &str, dir: &std::path::Path) -> Option<StoreConfig> {
    match name {
        "memory" => Some(StoreConfig::Memory),
        "sqlite_normal" => Some(StoreConfig::Sqlite {
            path: dir.join("normal.db"),
            options: SqliteOptions::normal(),
        }),
        "sqlite_full" => Some(StoreConfig::Sqlite {
            path: dir.join("full.db"),
            options: SqliteOptions::default(),
        }),
        _ => None,
    }
}

fn report(engine: &Engine, named: bool) -> CommandEnvelope {
    let reporter = if named {
        Reporter::Named(ProtectedContact::new("王某某", "138-0000-0000"))
    } else {
        Reporter::Anonymous
    };
    CommandEnvelope::new(
        engine.new_id(),
        Actor::new("vil-dongyuan", Role::InformationOfficer),
        engine.now(),
        ReportCase {
            case_id: CaseId::new(engine.new_id()),
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

async fn run(store: StoreConfig, named: bool, count: usize) {
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("time");
    let engine = Engine::open(
        EngineConfig::with_store(store, District::sample().expect("district"))
            .master_key(MasterKey::generate())
            .clock(Arc::new(ManualClock::new(start)))
            .ids(Arc::new(SeededIds::new(1))),
    )
    .await
    .expect("engine");
    for _ in 0..count {
        engine
            .execute(report(&engine, named))
            .await
            .expect("executes");
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    if let [name, who, count] = args.as_slice() {
        let store = store(name, dir.path()).expect("memory, sqlite_normal or sqlite_full");
        let count: usize = count.parse().expect("a report count");
        runtime.block_on(run(store, who == "named", count));
        return;
    }
    for name in ["memory", "sqlite_normal", "sqlite_full"] {
        for named in [false, true] {
            let sub = dir.path().join(format!("{name}-{named}"));
            std::fs::create_dir_all(&sub).expect("dir");
            let store = store(name, &sub).expect("a store");
            runtime.block_on(run(store, named, 50));
        }
    }
}
