//! caseflow-sim: seeded virtual-time simulation of the Caseflow workflow.
//!
//! A run reads a [`Scenario`] (TOML), draws arrivals, service times and branch outcomes from
//! independent ChaCha streams of one master seed, moves every case through intake,
//! classification, handling, rectification and review with staff as resources, and collects
//! KPIs into a [`Summary`]. The decisions come out as [`trace::Step`]s; standalone they are
//! hashed into a digest, and the `engine` driver (in the CLI) executes them as commands on the
//! real engine so the same run produces a real, verifiable event log.
//!
//! Entry points: [`run_once`], [`replicate`], [`compare`], and the reports in [`report`].

pub mod calendar;
pub mod des;
pub mod dist;
pub mod engine;
pub mod error;
pub mod kpi;
pub mod model;
pub mod replicate;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod stats;
pub mod trace;

pub use error::{ScenarioError, SimError};
pub use kpi::Summary;
pub use model::{RunOptions, Simulation};
pub use replicate::{Comparison, Replications, compare, replicate};
pub use scenario::Scenario;

/// Runs `scenario` once with master seed `seed` on the model alone and returns its KPIs,
/// with the digest of the step log.
pub fn run_once(scenario: &Scenario, seed: u64) -> Summary {
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
pub fn run_once_with(scenario: &Scenario, seed: u64, options: RunOptions) -> Summary {
    let options = RunOptions {
        record_steps: false,
        ..options
    };
    let mut sim = Simulation::new(scenario, seed, options);
    sim.run_to_end();
    finish_summary(&sim, seed)
}

/// The summary of a finished simulation, with seed, step count and digest filled in.
pub fn finish_summary(sim: &Simulation, seed: u64) -> Summary {
    let mut s = sim.kpi.summary().cloned().unwrap_or_default();
    s.seed = seed;
    s.steps = sim.steps_emitted();
    s.digest = sim.digest();
    s
}
