//! Driving the real engine: every step the model took becomes the same domain command, from
//! the same actor, executed by [`caseflow::Engine`] with a [`ManualClock`] set to the step's
//! virtual time and [`SeededIds`], on a memory store or a SQLite file that the other
//! `caseflow` verbs open later.
//!
//! The model and the engine run on the one district built from the scenario
//! ([`crate::district`]); the model decided each command on its own domain state with the
//! domain's rules, so the engine accepting it is the check that both agree (a refusal fails
//! the run and names the case and the command). The engine's own deadline watcher runs at
//! every local midnight of the simulated calendar; the urgings it writes must be exactly the
//! ones the model's watcher took (else the run fails), so the urgings in the log and in the
//! KPIs are the engine's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use caseflow::domain::{CaseId, Command, DeadlineKind};
use caseflow::store::SqliteOptions;
use caseflow::{
    CommandEnvelope, District, Engine, EngineConfig, EngineError, ManualClock, SeededIds,
    StoreConfig,
};
use sha2::{Digest, Sha256};

use crate::district::{DistrictChoice, build};
use crate::error::SimError;
use crate::hours::WorkingTime;
use crate::kpi::Summary;
use crate::model::{RunOptions, Simulation};
use crate::scenario::Scenario;
use crate::trace::Step;

/// Where the engine keeps its events.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// In memory (default; gone when the run ends).
    Memory,
    /// A SQLite file, which must not exist yet.
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// Durability and queue options.
        options: SqliteOptions,
    },
}

impl StoreChoice {
    /// A fresh SQLite file with the default (power-loss safe) options.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        StoreChoice::Sqlite {
            path: path.into(),
            options: SqliteOptions::default(),
        }
    }
}

/// The outcome of a run on the engine.
pub struct EngineRun {
    /// KPIs (from the model, with the engine's log digest, event count and urgings).
    pub summary: Summary,
    /// The engine, still open (for verification, to-do lists, exports).
    pub engine: Engine,
    /// Urgings the engine's deadline watcher issued.
    pub urgings: u64,
    /// Commands executed.
    pub commands: u64,
}

/// Options of an engine run.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Store.
    pub store: StoreChoice,
    /// The district: the scenario's, or a file or text given instead.
    pub district: DistrictChoice,
    /// Let the engine's deadline watcher urge at every local midnight (checked against the
    /// model's); when false the model's urgings are executed as ordinary commands.
    pub deadline_watcher: bool,
    /// The master key of a SQLite store's key store (needed there: simulated reporters
    /// give contacts, which the engine seals). A memory store needs none.
    pub master_key: Option<caseflow::MasterKey>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            store: StoreChoice::Memory,
            district: DistrictChoice::Scenario,
            deadline_watcher: true,
            master_key: None,
        }
    }
}

/// Runs `scenario` with master seed `seed` on the real engine.
pub async fn run_on_engine(
    scenario: &Scenario,
    seed: u64,
    options: &EngineOptions,
) -> Result<EngineRun, SimError> {
    run_on_engine_with_progress(scenario, seed, options, &mut |_, _| {}).await
}

/// Like [`run_on_engine`]; `progress(day, days)` is called as simulated days pass.
pub async fn run_on_engine_with_progress(
    scenario: &Scenario,
    seed: u64,
    options: &EngineOptions,
    progress: &mut (dyn FnMut(u32, u32) + Send),
) -> Result<EngineRun, SimError> {
    let district = build(scenario, &options.district)?;
    let sim = Simulation::on_district(
        scenario,
        district.clone(),
        seed,
        RunOptions {
            record_steps: true,
            digest: false,
        },
    );
    let hours = sim.hours().clone();
    let clock = Arc::new(ManualClock::new(hours.to_utc(0.0)));
    let engine = open_engine(options, district, &clock, seed).await?;
    let days = (sim.end_hours() / 24.0).round() as u32;
    let mut driver = Driver {
        engine: &engine,
        clock: &clock,
        hours: &hours,
        watcher: options.deadline_watcher,
        watched_day: 0,
        expected: BTreeMap::new(),
        commands: 0,
        urgings: 0,
    };
    let (mut batches, model) = spawn_model(sim);
    while let Some(batch) = batches.recv().await {
        for step in batch? {
            let day = (step.at / 24.0).floor() as u32;
            if day > driver.watched_day {
                progress(day.min(days), days);
            }
            driver.watch_until(day).await?;
            driver.step(&step).await?;
        }
    }
    let sim = model
        .await
        .map_err(|e| SimError::ModelThread(e.to_string()))?;
    driver.watch_until(days).await?;
    driver.check_consumed(days)?;
    let (commands, urgings) = (driver.commands, driver.urgings);
    progress(days, days);
    let mut summary = crate::finish_summary(&sim, seed);
    clock.set(hours.to_utc(summary.simulated_hours));
    engine.refresh().await?;
    let (digest, events) = log_digest(&engine).await?;
    summary.digest = Some(digest);
    summary.engine_events = Some(events);
    summary.engine_urgings = Some(urgings);
    Ok(EngineRun {
        summary,
        engine,
        urgings,
        commands,
    })
}

/// Steps the model hands over at a time: one channel hop per step cost more than a step.
const STEP_BATCH: usize = 512;
/// Batches in flight between the model and the engine (bounds the memory between them).
const BATCHES_IN_FLIGHT: usize = 8;

type StepBatches = tokio::sync::mpsc::Receiver<Result<Vec<Step>, SimError>>;

/// Runs the model on a blocking thread, so that it decides the next steps while the engine
/// executes the last ones (the two cost about the same per step). The steps arrive in the
/// order the model took them, so the log is the same as when one thread did both; the
/// handle gives back the finished model. The model stops early once the receiver is gone.
fn spawn_model(mut sim: Simulation) -> (StepBatches, tokio::task::JoinHandle<Simulation>) {
    let (tx, rx) = tokio::sync::mpsc::channel(BATCHES_IN_FLIGHT);
    let handle = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(STEP_BATCH);
        loop {
            let more = match sim.advance(&mut batch) {
                Ok(more) => more,
                Err(e) => {
                    // Nobody left to tell when the receiver is gone: the run failed already.
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            };
            if more && batch.len() < STEP_BATCH {
                continue;
            }
            let full = std::mem::replace(&mut batch, Vec::with_capacity(STEP_BATCH));
            if (!full.is_empty() && tx.blocking_send(Ok(full)).is_err()) || !more {
                break;
            }
        }
        sim
    });
    (rx, handle)
}

async fn open_engine(
    options: &EngineOptions,
    district: District,
    clock: &Arc<ManualClock>,
    seed: u64,
) -> Result<Engine, SimError> {
    let config = match &options.store {
        StoreChoice::Memory => EngineConfig::memory(district),
        StoreChoice::Sqlite { path, options } => {
            if path.exists() {
                return Err(SimError::Option {
                    option: "--db".into(),
                    reason: format!(
                        "{} exists already; the simulator writes a fresh store",
                        path.display()
                    ),
                });
            }
            EngineConfig::with_store(
                StoreConfig::Sqlite {
                    path: path.clone(),
                    options: options.clone(),
                },
                district,
            )
        }
    };
    let config = config
        .master_key_opt(options.master_key.clone())
        .clock(clock.clone())
        .ids(Arc::new(SeededIds::new(seed)));
    Ok(Engine::open(config).await?)
}

/// Executes steps and runs the engine's watcher at each local midnight, comparing its
/// urgings with the model's.
struct Driver<'a> {
    engine: &'a Engine,
    clock: &'a ManualClock,
    hours: &'a WorkingTime,
    watcher: bool,
    watched_day: u32,
    /// Urgings the engine's watcher wrote at a midnight that the model's steps have not
    /// matched yet, by day.
    expected: BTreeMap<u32, Vec<(CaseId, DeadlineKind)>>,
    commands: u64,
    urgings: u64,
}

impl Driver<'_> {
    /// Runs the engine's watcher at every local midnight up to the start of `day`.
    async fn watch_until(&mut self, day: u32) -> Result<(), SimError> {
        while self.watched_day < day {
            self.watched_day += 1;
            let d = self.watched_day;
            self.check_consumed(d - 1)?;
            if !self.watcher {
                continue;
            }
            let at = self.hours.to_utc(f64::from(d) * 24.0);
            self.clock.set(at);
            let report = self.engine.check_deadlines(at).await?;
            self.urgings += report.issued.len() as u64;
            let urged = report.issued.iter().map(|u| (u.case_id, u.deadline));
            self.expected.entry(d).or_default().extend(urged);
        }
        Ok(())
    }

    /// Fails when the engine urged at the midnight of `day` something the model did not.
    fn check_consumed(&mut self, day: u32) -> Result<(), SimError> {
        match self.expected.remove(&day) {
            Some(left) if !left.is_empty() => Err(SimError::WatcherDisagrees {
                at: self.hours.local_label(f64::from(day) * 24.0),
                detail: format!("the engine urged {left:?}, which the model did not"),
            }),
            _ => Ok(()),
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), SimError> {
        if step.by_watcher && self.watcher {
            return self.match_urging(step);
        }
        let at = self.hours.to_utc(step.at);
        self.clock.set(at);
        let envelope = CommandEnvelope::new(
            self.engine.new_id(),
            step.actor.clone(),
            at,
            step.command.clone(),
        );
        match self.engine.execute(envelope).await {
            Ok(_) => {
                self.commands += 1;
                Ok(())
            }
            Err(e @ (EngineError::Rejected { .. } | EngineError::MergeTargetNotOpen { .. })) => {
                Err(SimError::EngineRejected {
                    case_no: step.case_no,
                    command: step.command.name(),
                    at: self.hours.local_label(step.at),
                    source: Box::new(e),
                })
            }
            Err(e) => Err(SimError::Engine(e)),
        }
    }

    /// An urging the model's watcher took: the engine's watcher must have written it at the
    /// same midnight.
    fn match_urging(&mut self, step: &Step) -> Result<(), SimError> {
        let Command::UrgeOverdue(urge) = &step.command else {
            return Ok(());
        };
        let day = (step.at / 24.0).round() as u32;
        let key = (urge.case_id, urge.deadline);
        let list = self.expected.entry(day).or_default();
        match list.iter().position(|k| *k == key) {
            Some(i) => {
                list.swap_remove(i);
                Ok(())
            }
            None => Err(SimError::WatcherDisagrees {
                at: self.hours.local_label(step.at),
                detail: format!(
                    "the model urged the {:?} limit of case #{} ({}), which the engine did not",
                    urge.deadline, step.case_no, urge.case_id
                ),
            }),
        }
    }
}

/// SHA-256 over every record of the engine's global log (its JSON envelope, in position
/// order), and the number of records.
pub async fn log_digest(engine: &Engine) -> Result<(String, u64), SimError> {
    let store = engine.store();
    let mut hasher = Sha256::new();
    let mut json = Vec::new();
    let mut from = 1u64;
    let mut count = 0u64;
    loop {
        let batch = store
            .read_all(from, 4096)
            .await
            .map_err(|e| SimError::Engine(EngineError::Store(e)))?;
        if batch.is_empty() {
            break;
        }
        for record in &batch {
            // One buffer for every record (the same bytes as `to_vec`; streaming straight
            // into the hasher cost more in its many small updates). A record is plain data,
            // so serialising it cannot fail; an error would only change the digest.
            json.clear();
            let _ = serde_json::to_writer(&mut json, record);
            hasher.update(&json);
            hasher.update(b"\n");
            count += 1;
            from = record.position + 1;
        }
    }
    Ok((hex::encode(hasher.finalize()), count))
}
