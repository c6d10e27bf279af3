//! caseflow-sim: seeded virtual-time simulation of the Caseflow workflow.
//!
//! A run reads a [`Scenario`] (TOML), builds the one district it runs on ([`district`]),
//! draws arrivals, service times and the people's decisions from independent ChaCha streams
//! of one master seed, and moves every case through the domain's stages with staff as
//! resources. Every step is a domain command drafted by the domain's `next_commands` and
//! applied to the case's own domain state ([`casework`]); model-only the steps are hashed
//! into a digest, engine-driven ([`engine`]) the real engine executes each of them, so the
//! same run produces a real, verifiable event log and the same KPIs ([`Summary`]).
//!
//! Entry points: [`run_once`], [`replicate`](replicate::replicate), [`compare`], the engine
//! driver [`engine::run_on_engine`], and the reports in [`report`].

pub mod calibrate;
pub mod casework;
pub mod des;
pub mod dist;
pub mod district;
pub mod engine;
pub mod error;
pub mod hours;
pub mod kpi;
pub mod labels;
pub mod layout;
pub mod model;
pub mod replicate;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod stats;
pub mod trace;

pub use error::{CaseworkError, ScenarioError, SimError};
pub use kpi::Summary;
pub use model::{RunOptions, Simulation};
pub use replicate::{Comparison, Replications, compare, replicate};
pub use scenario::Scenario;

/// Runs `scenario` once with master seed `seed` on the model alone and returns its KPIs,
/// with the digest of the step log.
pub fn run_once(scenario: &Scenario, seed: u64) -> Result<Summary, SimError> {
    run_once_with(
        scenario,
        seed,
        RunOptions {
            record_steps: false,
            digest: true,
        },
    )
}

/// Like [`run_once`] with explicit options (e.g. without the digest, which costs a hash per
/// step).
pub fn run_once_with(
    scenario: &Scenario,
    seed: u64,
    options: RunOptions,
) -> Result<Summary, SimError> {
    let options = RunOptions {
        record_steps: false,
        ..options
    };
    let mut sim = Simulation::new(scenario, seed, options)?;
    sim.run_to_end()?;
    Ok(finish_summary(&sim, seed))
}

/// The summary of a finished simulation, with seed, step count and digest filled in.
pub fn finish_summary(sim: &Simulation, seed: u64) -> Summary {
    let mut s = sim.kpi.summary().cloned().unwrap_or_default();
    s.seed = seed;
    s.steps = sim.steps_emitted();
    s.digest = sim.digest();
    s
}
