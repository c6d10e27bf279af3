//! Validation of the default, engine-driven mode against closed forms.
//!
//! The scenario format expresses a plain M/M/c queue (see `examples/scenarios/mmc.toml`):
//! Poisson arrivals to one room with c people, exponential service at intake, every other
//! stage instantaneous, staff working around the clock, every case declined once taken in.
//! Each replication runs on the real engine (memory store): every arrival is a `ReportCase`
//! and a `DeclineCase` the engine executes, with its deadline watcher urging whatever waits
//! past the intake limit. For four (λ, c) with ρ from 0.5 to 0.9 the mean wait in queue over
//! independent replications must bracket the Erlang C value, and Little's law must tie the
//! time-averaged queue length to the observed arrival rate times the mean wait.

use caseflow_sim::engine::{EngineOptions, run_on_engine};
use caseflow_sim::stats::{Estimate, mmc_mean_wait};
use caseflow_sim::{Scenario, Summary};

fn mmc_scenario(lambda: f64, mean_service: f64, c: u32, days: u32) -> Scenario {
    let text = format!(
        r#"
[simulation]
name = "mmc"
start = "2025-01-06"
horizon_days = {days}
warmup_days = {warmup}
sample_every_hours = 240

[organisation]
zones = 1
rooms = 1
teams = 0
localities = 2
villages = 0

[calendar]
always_open = true

[arrivals]
kind_mix = {{ complaint = 1.0 }}

[[arrivals.channel]]
name = "hotline"
per_hour = {lambda}

[staffing]
per_level = {{ room = {c} }}

[service.intake]
room = {{ dist = "exponential", mean = {mean_service} }}

[outcomes]
accept = 0.0
"#,
        warmup = days / 10,
    );
    Scenario::from_toml_str(&text).unwrap()
}

struct Outcome {
    wait: Estimate,
    closed_form: f64,
    little_ratio: Estimate,
    utilisation: Estimate,
    /// The load the replications actually drew: observed arrival rate / (c μ).
    offered: Estimate,
    rho: f64,
}

fn measure(
    runs: &[Summary],
    warmup_days: u32,
    service: f64,
    c: u32,
) -> (Estimate, Estimate, Estimate, Estimate) {
    let mut waits = Vec::new();
    let mut little = Vec::new();
    let mut util = Vec::new();
    let mut offered = Vec::new();
    for summary in runs {
        let room = summary.units.iter().find(|u| u.name == "room-1").unwrap();
        waits.push(room.wait_mean_hours);
        util.push(room.utilisation);
        // Little's law: L_q = λ W_q, with λ the observed rate of work requests.
        let hours = summary.simulated_hours - f64::from(warmup_days) * 24.0;
        let observed_lambda = room.requests as f64 / hours;
        little.push(room.queue_mean / (observed_lambda * room.wait_mean_hours));
        offered.push(observed_lambda * service / f64::from(c));
    }
    (
        Estimate::from_samples(&waits),
        Estimate::from_samples(&little),
        Estimate::from_samples(&util),
        Estimate::from_samples(&offered),
    )
}

async fn validate(lambda: f64, service: f64, c: u32, days: u32, reps: u64) -> Outcome {
    let s = mmc_scenario(lambda, service, c, days);
    // Replications are independent: run them on both worker threads.
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..reps {
        let s = s.clone();
        tasks.spawn(async move {
            let run = run_on_engine(&s, 1000 + r, &EngineOptions::default()).await;
            (r, run.map(|run| run.summary))
        });
    }
    let mut runs = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (r, summary) = done.unwrap();
        let summary = summary.unwrap();
        // Every step (a report, a decline or an urging) is one event in the engine's log.
        assert_eq!(summary.engine_events, Some(summary.steps));
        assert_eq!(
            summary.cases.declined + summary.cases.open_at_end,
            summary.cases.arrived
        );
        runs.push((r, summary));
    }
    runs.sort_by_key(|(r, _)| *r);
    let runs: Vec<Summary> = runs.into_iter().map(|(_, s)| s).collect();
    let (wait, little_ratio, utilisation, offered) = measure(&runs, days / 10, service, c);
    Outcome {
        wait,
        closed_form: mmc_mean_wait(lambda, 1.0 / service, c),
        little_ratio,
        utilisation,
        offered,
        rho: lambda * service / f64::from(c),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_driven_mean_wait_matches_erlang_c_for_four_loads() {
    // (λ per hour, mean service hours, c, horizon days, replications). Horizons are as
    // short as the precision allows (the CI must stay under a quarter of the value): the
    // cost is the number of arrivals the engine executes, and the relative precision of a
    // mean wait grows with the square root of the arrivals simulated, slowest for the single
    // heavily loaded server (relaxation time 1/(μ(1-√ρ)²) ≈ 380 h at ρ = 0.9, so its
    // warm-up of a tenth of 300 days is almost two relaxation times).
    let cases = [
        (1.0, 2.0, 4, 60, 10),
        (2.4, 1.0, 3, 40, 10),
        (1.4, 1.0, 2, 60, 10),
        (0.9, 1.0, 1, 300, 16),
    ];
    println!(
        "| λ/h | 1/μ h | c | ρ | Erlang C W_q h | simulated W_q h (95% CI) | L_q/(λW_q) | utilisation |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut top_rho: f64 = 0.0;
    for (lambda, service, c, days, reps) in cases {
        let o = validate(lambda, service, c, days, reps).await;
        println!(
            "| {lambda} | {service} | {c} | {:.3} | {:.4} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:.3} ± {:.3} |",
            o.rho,
            o.closed_form,
            o.wait.mean,
            o.wait.half_width,
            o.little_ratio.mean,
            o.little_ratio.half_width,
            o.utilisation.mean,
            o.utilisation.half_width
        );
        top_rho = top_rho.max(o.rho);
        assert!(
            o.wait.contains(o.closed_form),
            "λ={lambda} c={c}: Erlang C {} outside simulated {} ± {}",
            o.closed_form,
            o.wait.mean,
            o.wait.half_width
        );
        // The CI must be informative, not so wide that any value passes.
        assert!(
            o.wait.half_width < 0.25 * o.closed_form,
            "CI too wide: {}",
            o.wait.half_width
        );
        assert!(
            (o.little_ratio.mean - 1.0).abs() < 0.02,
            "Little's law ratio {}",
            o.little_ratio.mean
        );
        // Utilisation is the load the replications drew (their arrival counts vary by
        // chance around λT), and that load is ρ within its own interval.
        assert!(
            (o.utilisation.mean / o.offered.mean - 1.0).abs() < 0.02,
            "utilisation {:?} vs offered load {:?}",
            o.utilisation,
            o.offered
        );
        assert!(
            (o.offered.mean / o.rho - 1.0).abs() < 0.02,
            "offered load {:?} vs ρ {}",
            o.offered,
            o.rho
        );
    }
    assert!(top_rho >= 0.9, "a heavily loaded point is included");
}

#[test]
fn the_bare_queueing_core_matches_erlang_c_too() {
    let (lambda, mu, c) = (2.4, 1.0, 3);
    let waits: Vec<f64> = (0..10)
        .map(|r| caseflow_sim::des::run_mmc(lambda, mu, c, 20_000, 2_000, 50 + r).mean_wait)
        .collect();
    let e = Estimate::from_samples(&waits);
    let exact = mmc_mean_wait(lambda, mu, c);
    assert!(e.contains(exact), "{exact} outside {e:?}");
}
