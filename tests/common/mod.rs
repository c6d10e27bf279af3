//! Shared helpers of the engine's integration tests: the sample district, actors, a case
//! walked to rectification, and both store backends.
#![allow(dead_code)]

pub mod workload;

use std::path::PathBuf;
use std::sync::Arc;

use caseflow::domain::*;
use caseflow::store::{EventStore, MemoryStore};
use caseflow::{
    CommandEnvelope, District, Engine, EngineConfig, ExecuteOutcome, ManualClock, RetryPolicy,
    SeededIds, StoreConfig,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// Monday 2026-03-02, 09:00 CST.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("valid time")
}

pub fn district() -> District {
    District::sample().expect("the sample district loads")
}

pub fn leader(unit: &str) -> Actor {
    Actor::new(unit, Role::Leader)
}
pub fn officer(unit: &str) -> Actor {
    Actor::new(unit, Role::CaseOfficer)
}
pub fn informant(unit: &str) -> Actor {
    Actor::new(unit, Role::InformationOfficer)
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
}

pub const BACKENDS: [Backend; 2] = [Backend::Memory, Backend::Sqlite];

/// A store that outlives engine instances, so a test can "restart" the engine.
pub struct Fixture {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub memory: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub seed: u64,
}

impl Fixture {
    pub fn new(backend: Backend) -> Self {
        Fixture {
            backend,
            dir: tempfile::tempdir().expect("temp dir"),
            memory: Arc::new(MemoryStore::new()),
            clock: Arc::new(ManualClock::new(t0())),
            seed: 7,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("cases.db")
    }

    pub fn config(&self) -> EngineConfig {
        let store = match self.backend {
            Backend::Memory => StoreConfig::Shared(Arc::clone(&self.memory) as Arc<dyn EventStore>),
            Backend::Sqlite => StoreConfig::Sqlite {
                path: self.db_path(),
                options: caseflow::store::SqliteOptions::default(),
            },
        };
        EngineConfig::with_store(store, district())
            .clock(self.clock.clone())
            .ids(Arc::new(SeededIds::new(self.seed)))
            .retry(RetryPolicy {
                max_attempts: 200,
                base_delay_ms: 1,
                max_delay_ms: 5,
            })
    }

    pub async fn open(&self) -> Engine {
        Engine::open(self.config()).await.expect("engine opens")
    }
}

pub fn case_id(n: u128) -> CaseId {
    CaseId::new(Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn report(case_id: CaseId) -> Command {
    ReportCase {
        case_id,
        channel: Channel::PettyPowerMiniProgram,
        kind: CaseKind::Complaint,
        summary: "花园小区路灯损坏，多次反映无人修 lamp-broken-marker".into(),
        locality: UnitId::new("loc-chaoyang"),
        village: Some(UnitId::new("vil-dongyuan")),
        subject: "东苑社区居委会".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Named(ProtectedContact::new("王某", "13800000000")),
        reporter_handle: ReporterHandle(Uuid::from_u128(7)),
        source_department: None,
    }
    .into()
}

/// Executes one command at `at` (also setting the clock there) and returns the outcome.
pub async fn run(
    engine: &Engine,
    clock: &ManualClock,
    at: DateTime<Utc>,
    actor: Actor,
    command: impl Into<Command>,
) -> ExecuteOutcome {
    clock.set(at);
    let command = command.into();
    let name = command.name();
    engine
        .execute(CommandEnvelope::new(engine.new_id(), actor, at, command))
        .await
        .unwrap_or_else(|e| panic!("{name} at {at} fails: {e}"))
}

/// Walks a complaint handled by its locality up to a submitted rectification plan; returns
/// the time of the last step. Seven events.
pub async fn walk_to_plan(
    engine: &Engine,
    clock: &ManualClock,
    id: CaseId,
    start: DateTime<Utc>,
) -> DateTime<Utc> {
    let loc = "loc-chaoyang";
    let mut t = start;
    let mut step = |h: i64| {
        t += Duration::hours(h);
        t
    };
    run(
        engine,
        clock,
        step(0),
        informant("vil-dongyuan"),
        report(id),
    )
    .await;
    run(
        engine,
        clock,
        step(1),
        officer("room-1"),
        AcceptCase { case_id: id },
    )
    .await;
    run(
        engine,
        clock,
        step(1),
        leader(loc),
        ClassifyCase {
            case_id: id,
            category: Category::MassDemand,
            focus_area: FocusArea::LivingEnvironment,
            severity: Severity::Ordinary,
            involves_locality: false,
            involved_department: None,
        },
    )
    .await;
    run(
        engine,
        clock,
        step(1),
        leader(loc),
        RouteCase {
            case_id: id,
            lead_unit: UnitId::new(loc),
            responsible: vec![ResponsibleParty::Unit(UnitId::new(loc))],
            time_limit_days: None,
        },
    )
    .await;
    run(
        engine,
        clock,
        step(1),
        officer(loc),
        RecordFindings {
            case_id: id,
            finding: Finding::Substantiated,
            summary: "属实".into(),
        },
    )
    .await;
    run(
        engine,
        clock,
        step(1),
        leader(loc),
        OrderRectification {
            case_id: id,
            responsible: ResponsibleParty::Unit(UnitId::new(loc)),
            requirements: "一周内修复路灯".into(),
        },
    )
    .await;
    let at = step(1);
    run(
        engine,
        clock,
        at,
        leader(loc),
        SubmitRectificationPlan {
            case_id: id,
            measures: vec!["更换灯具".into()],
            deadline: at + Duration::days(7),
        },
    )
    .await;
    t
}
