//! Replications with confidence intervals, and comparisons with common random numbers.
//!
//! Replication `r` of master seed `s` runs with seed `s + r`. A comparison runs both
//! scenarios with the same seeds, so that case *n* of a channel draws the same attributes,
//! service times and outcomes in both (common random numbers); the deltas are paired per
//! replication, which shrinks their confidence intervals.

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::kpi::Summary;
use crate::scenario::Scenario;
use crate::stats::Estimate;

/// Named estimates over replications.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replications {
    /// Scenario name.
    pub scenario: String,
    /// Seeds used.
    pub seeds: Vec<u64>,
    /// Metric name and its estimate.
    pub metrics: Vec<(String, Estimate)>,
    /// Summaries of each replication.
    #[serde(skip)]
    pub runs: Vec<Summary>,
}

impl Replications {
    /// The estimate of a metric.
    pub fn get(&self, name: &str) -> Option<Estimate> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| *e)
    }
}

/// One metric in a comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    /// Metric name.
    pub metric: String,
    /// Estimate under scenario A.
    pub a: Estimate,
    /// Estimate under scenario B.
    pub b: Estimate,
    /// Paired difference B − A with its 95% CI.
    pub delta: Estimate,
}

impl Delta {
    /// Whether the 95% CI of the difference excludes zero.
    pub fn significant(&self) -> bool {
        self.delta.n > 1 && !self.delta.contains(0.0)
    }
}

/// A comparison of two scenarios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Name of A.
    pub a: String,
    /// Name of B.
    pub b: String,
    /// Seeds shared by both.
    pub seeds: Vec<u64>,
    /// Deltas.
    pub deltas: Vec<Delta>,
    /// Replications of A.
    #[serde(skip)]
    pub runs_a: Option<Replications>,
    /// Replications of B.
    #[serde(skip)]
    pub runs_b: Option<Replications>,
}

fn seeds(seed: u64, n: usize) -> Vec<u64> {
    (0..n as u64).map(|r| seed.wrapping_add(r)).collect()
}

/// Runs `n` replications of `scenario` on the model with seeds `seed, seed+1, …`.
pub fn replicate(scenario: &Scenario, seed: u64, n: usize) -> Result<Replications, SimError> {
    replicate_with(scenario, seed, n, crate::run_once)
}

/// Like [`replicate`], with the single-run function supplied (e.g. one that drives the engine).
pub fn replicate_with<F>(
    scenario: &Scenario,
    seed: u64,
    n: usize,
    mut run: F,
) -> Result<Replications, SimError>
where
    F: FnMut(&Scenario, u64) -> Result<Summary, SimError>,
{
    if n == 0 {
        return Err(SimError::Option {
            option: "--replications".into(),
            reason: "must be at least 1".into(),
        });
    }
    let seeds = seeds(seed, n);
    let runs = seeds
        .iter()
        .map(|s| run(scenario, *s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(from_runs(&scenario.simulation.name, seeds, runs))
}

/// Estimates from finished runs.
pub fn from_runs(name: &str, seeds: Vec<u64>, runs: Vec<Summary>) -> Replications {
    let per_run: Vec<Vec<(String, f64)>> = runs.iter().map(Summary::scalars).collect();
    let names: Vec<String> = per_run
        .first()
        .map(|r| r.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let metrics = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let xs: Vec<f64> = per_run
                .iter()
                .filter_map(|r| r.get(i).map(|(_, x)| *x))
                .collect();
            (name.clone(), Estimate::from_samples(&xs))
        })
        .collect();
    Replications {
        scenario: name.to_string(),
        seeds,
        metrics,
        runs,
    }
}

/// Compares `b` against `a` with `n` replications each and common random numbers.
pub fn compare(a: &Scenario, b: &Scenario, seed: u64, n: usize) -> Result<Comparison, SimError> {
    let ra = replicate(a, seed, n)?;
    let rb = replicate(b, seed, n)?;
    Ok(comparison_of(ra, rb))
}

/// Pairs two sets of replications run with the same seeds.
pub fn comparison_of(ra: Replications, rb: Replications) -> Comparison {
    let sa: Vec<Vec<(String, f64)>> = ra.runs.iter().map(Summary::scalars).collect();
    let sb: Vec<Vec<(String, f64)>> = rb.runs.iter().map(Summary::scalars).collect();
    let mut deltas = Vec::new();
    for (metric, a) in &ra.metrics {
        let Some(b) = rb.get(metric) else { continue };
        let diffs: Vec<f64> = sa
            .iter()
            .zip(&sb)
            .filter_map(|(x, y)| {
                let xa = x.iter().find(|(n, _)| n == metric)?.1;
                let yb = y.iter().find(|(n, _)| n == metric)?.1;
                Some(yb - xa)
            })
            .collect();
        deltas.push(Delta {
            metric: metric.clone(),
            a: *a,
            b,
            delta: Estimate::from_samples(&diffs),
        });
    }
    Comparison {
        a: ra.scenario.clone(),
        b: rb.scenario.clone(),
        seeds: ra.seeds.clone(),
        deltas,
        runs_a: Some(ra),
        runs_b: Some(rb),
    }
}
