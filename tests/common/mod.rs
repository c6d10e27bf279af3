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
    /// The memory backend's key store, shared across restarts like its event store.
    pub memory_keys: Arc<dyn caseflow::contacts::KeyStore>,
    /// The SQLite backend's master key.
    pub master: caseflow::MasterKey,
    pub clock: Arc<ManualClock>,
    pub seed: u64,
}

impl Fixture {
    pub fn new(backend: Backend) -> Self {
        Fixture {
            backend,
            dir: tempfile::tempdir().expect("temp dir"),
            memory: Arc::new(MemoryStore::new()),
            memory_keys: Arc::new(caseflow::contacts::MemoryKeyStore::new(Arc::new(
                SeededIds::new(99),
            ))),
            master: caseflow::MasterKey::generate(),
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
        let keys = match self.backend {
            Backend::Memory => caseflow::KeyStoreConfig::Shared(Arc::clone(&self.memory_keys)),
            Backend::Sqlite => caseflow::KeyStoreConfig::Default,
        };
        EngineConfig::with_store(store, district())
            .master_key(self.master.clone())
            .key_store(keys)
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

/// Walks a complaint from 东苑社区 up to a submitted rectification plan, one hour a step,
/// along the path the domain suggests (`next_commands`, first issuer): accepted, classified
/// as a mass demand, routed to and answered by 朝阳街道 itself, substantiated, rectification
/// ordered, plan submitted. Returns the time of the last step. Seven events.
pub async fn walk_to_plan(
    engine: &Engine,
    clock: &ManualClock,
    id: CaseId,
    start: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut t = start;
    run(engine, clock, t, informant("vil-dongyuan"), report(id)).await;
    loop {
        let state = engine.case_state(id).await.expect("case state");
        let planned = state
            .case()
            .and_then(|c| c.rectification.as_ref())
            .is_some_and(|r| r.deadline.is_some());
        if planned {
            return t;
        }
        t += Duration::hours(1);
        let district = engine.district();
        let next = NextContext::new(&district.org, &district.calendar, &district.policies, t)
            .with_note("办理中");
        let step = walk::next_move(&state, &next, walk::Style::Forward, &mut walk::First)
            .expect("the case moves on");
        run(engine, clock, t, step.actor, step.command).await;
    }
}

/// Walks a case on along the path the domain suggests until it is closed, one hour a step
/// from `start`; returns the time of the last step.
pub async fn walk_to_close(
    engine: &Engine,
    clock: &ManualClock,
    id: CaseId,
    start: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut t = start;
    for _ in 0..60 {
        let state = engine.case_state(id).await.expect("case state");
        if state.stage() == Stage::Closed {
            return t;
        }
        t += Duration::hours(1);
        let district = engine.district();
        let next = NextContext::new(&district.org, &district.calendar, &district.policies, t)
            .with_note("办理中");
        let step = walk::next_move(&state, &next, walk::Style::Forward, &mut walk::First)
            .expect("the case moves on");
        run(engine, clock, t, step.actor, step.command).await;
    }
    panic!("case {id} did not close in 60 steps");
}
