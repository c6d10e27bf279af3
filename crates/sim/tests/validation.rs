//! Validation of the queueing behaviour against closed forms.
//!
//! The scenario format expresses a plain M/M/c queue (see `examples/scenarios/mmc.toml`):
//! Poisson arrivals to one room with c people, exponential service at handling, every other
//! stage instantaneous, staff working around the clock. For several (λ, c) with ρ between 0.5
//! and 0.9 the mean wait in queue over independent replications must bracket the Erlang C
//! value, and Little's law must tie the time-averaged queue length to the mean wait.

use caseflow_sim::model::RunOptions;
use caseflow_sim::stats::{Estimate, mmc_mean_wait};
use caseflow_sim::{Scenario, run_once_with};

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
localities = 1
villages = 1

[calendar]
always_open = true

[arrivals]
kind_mix = {{ consultation = 1.0 }}

[[arrivals.channel]]
name = "poisson"
per_hour = {lambda}

[staffing]
per_level = {{ room = {c} }}

[service.handling]
room = {{ dist = "exponential", mean = {mean_service} }}
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
    rho: f64,
}

fn validate(lambda: f64, mean_service: f64, c: u32, days: u32, reps: u64) -> Outcome {
    let s = mmc_scenario(lambda, mean_service, c, days);
    let mut waits = Vec::new();
    let mut little = Vec::new();
    let mut util = Vec::new();
    for r in 0..reps {
        let summary = run_once_with(&s, 1000 + r, RunOptions::default());
        let room = summary.units.iter().find(|u| u.name == "room-1").unwrap();
        waits.push(room.wait_mean_hours);
        util.push(room.utilisation);
        // Little's law: L_q = λ W_q, with λ the observed rate of work requests.
        let hours = summary.simulated_hours - (days / 10) as f64 * 24.0;
        let observed_lambda = room.requests as f64 / hours;
        little.push(room.queue_mean / (observed_lambda * room.wait_mean_hours));
    }
    Outcome {
        wait: Estimate::from_samples(&waits),
        closed_form: mmc_mean_wait(lambda, 1.0 / mean_service, c),
        little_ratio: Estimate::from_samples(&little),
        utilisation: Estimate::from_samples(&util),
        rho: lambda * mean_service / c as f64,
    }
}

#[test]
fn mean_wait_in_queue_matches_erlang_c_for_several_loads() {
    // (λ per hour, mean service hours, c, horizon days)
    let cases = [
        (1.0, 2.0, 4, 400),
        (2.4, 1.0, 3, 300),
        (3.5, 2.0, 8, 250),
        (0.9, 1.0, 1, 1200),
    ];
    println!("| λ/h | 1/μ h | c | ρ | Erlang C W_q h | simulated W_q h (95% CI) | L_q/(λW_q) |");
    println!("|---|---|---|---|---|---|---|");
    for (lambda, service, c, days) in cases {
        let o = validate(lambda, service, c, days, 10);
        println!(
            "| {lambda} | {service} | {c} | {:.3} | {:.4} | {:.4} ± {:.4} | {:.4} ± {:.4} |",
            o.rho,
            o.closed_form,
            o.wait.mean,
            o.wait.half_width,
            o.little_ratio.mean,
            o.little_ratio.half_width
        );
        assert!((0.5..=0.9).contains(&o.rho));
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
            (o.little_ratio.mean - 1.0).abs() < 0.03,
            "Little's law ratio {}",
            o.little_ratio.mean
        );
        assert!(
            o.utilisation.contains(o.rho) || (o.utilisation.mean - o.rho).abs() < 0.01,
            "utilisation {:?} vs ρ {}",
            o.utilisation,
            o.rho
        );
    }
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
