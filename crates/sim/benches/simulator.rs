//! Simulator benchmarks (`cargo bench -p caseflow-sim`).
//!
//! 1. Criterion: the queueing core on M/M/3 (customers per second), one district year on the
//!    model alone, and one district year driven through the real engine (memory store).
//! 2. Peer comparison, in one run: the same M/M/c queue in SimPy (installed by
//!    `benches/simpy_mmc.py` into a venv under the target directory) against the queueing
//!    core; prints both rates and the ratio (target: at least 20x).
//! 3. Province scale: about 1,000,000 cases (about 10 million events) through the engine's
//!    memory store; prints wall time, events per second, peak memory and bytes per event held
//!    (targets: <= 60 s, <= 600 bytes/event). Then the same year on the model alone (no log
//!    kept: the bounded-memory way to run province scale).
//!
//! 4. Calibration: a store of at least 1,000,000 events (the district year scaled up, driven
//!    through the engine's memory store), then `calibrate::read_log`, `calibrate::calibrate`
//!    and a 5-replication `calibrate::validate`, each timed.
//!
//! Environment: `CASEFLOW_SIM_PROVINCE_CASES` (default 1000000) scales the province run;
//! `CASEFLOW_SIM_CALIBRATION_EVENTS` (default 1000000) sizes the calibration store and
//! `CASEFLOW_SIM_SKIP_CALIBRATION=1` skips part 4;
//! `CASEFLOW_SIM_MODEL_ONLY=1` skips the engine part of it (and its memory);
//! `CASEFLOW_SIM_SKIP_PROVINCE=1` and `CASEFLOW_SIM_SKIP_PEER=1` skip parts 3 and 2.

use std::path::PathBuf;
use std::time::Instant;

use caseflow_sim::des::run_mmc;
use caseflow_sim::engine::{EngineOptions, run_on_engine};
use caseflow_sim::{RunOptions, Scenario, run_once_with};
use criterion::{Criterion, Throughput};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenario(path: PathBuf) -> Scenario {
    Scenario::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A field of /proc/self/status in kB (0 where unavailable).
fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("queueing_core");
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("mmc_c3_rho0.8_100k_customers", |b| {
        b.iter(|| run_mmc(2.4, 1.0, 3, 100_000, 0, 1))
    });
    g.finish();
    let district = scenario(manifest().join("../../examples/scenarios/district-year.toml"));
    let mut g = c.benchmark_group("district_year");
    g.sample_size(10);
    g.bench_function("model_only", |b| {
        b.iter(|| {
            run_once_with(
                &district,
                1,
                RunOptions {
                    record_steps: false,
                    digest: true,
                },
            )
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    g.bench_function("real_engine_memory_store", |b| {
        b.iter(|| {
            rt.block_on(run_on_engine(&district, 1, &EngineOptions::default()))
                .expect("run")
        })
    });
    g.finish();
}

fn peer_comparison() {
    let (lambda, mu, c, customers) = (2.4, 1.0, 3u32, 200_000u64);
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest().join("../../target"));
    let script = manifest().join("benches/simpy_mmc.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(["--venv", &target.join("simpy-venv").to_string_lossy()])
        .args([
            "--lam",
            &lambda.to_string(),
            "--mu",
            &mu.to_string(),
            "--c",
            &c.to_string(),
        ])
        .args(["--customers", &customers.to_string()])
        .output();
    let simpy_rate = match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            v["customers_per_second"].as_f64()
        }
        Ok(o) => {
            eprintln!("SimPy peer failed: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("SimPy peer not run (python3: {e})");
            None
        }
    };
    // Best of three for both sides' noise: the core is timed over the same customers.
    let mut best = f64::INFINITY;
    let mut wait = 0.0;
    for seed in 1..=3 {
        let t = Instant::now();
        let r = run_mmc(lambda, mu, c, customers, 0, seed);
        best = best.min(t.elapsed().as_secs_f64());
        wait = r.mean_wait;
    }
    let core_rate = customers as f64 / best;
    println!("peer/M/M/{c} λ={lambda} μ={mu} {customers} customers");
    println!("  caseflow-sim queueing core: {core_rate:>12.0} customers/s (mean wait {wait:.3} h)");
    match simpy_rate {
        Some(s) => println!(
            "  SimPy 4.1.1:                {s:>12.0} customers/s\n  ratio: {:.1}x (target >= 20x)",
            core_rate / s
        ),
        None => println!("  SimPy: not available"),
    }
}

fn province() {
    let cases: f64 = std::env::var("CASEFLOW_SIM_PROVINCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000.0);
    let mut s = scenario(manifest().join("benches/province.toml"));
    let base: f64 = s.arrivals.channel.iter().filter_map(|c| c.per_year).sum();
    let factor = cases / base;
    for ch in &mut s.arrivals.channel {
        ch.per_year = ch.per_year.map(|r| r * factor);
    }
    for n in s.staffing.per_level.values_mut() {
        *n = ((*n as f64) * factor).ceil().max(1.0) as u32;
    }
    // The model alone first, so that its peak memory is not hidden by the engine's.
    let t = Instant::now();
    let summary = run_once_with(
        &s,
        1,
        RunOptions {
            record_steps: false,
            digest: false,
        },
    )
    .expect("province model run");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "province/model only (no log kept): {} cases, {} steps in {secs:.1} s = {:.0} steps/s; peak RSS {:.0} MB",
        summary.cases.arrived,
        summary.steps,
        summary.steps as f64 / secs,
        proc_status_kb("VmHWM:") as f64 / 1024.0
    );
    drop(summary);
    if std::env::var("CASEFLOW_SIM_MODEL_ONLY").is_ok() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rss_before = proc_status_kb("VmRSS:");
    let t = Instant::now();
    let options = EngineOptions {
        deadline_watcher: std::env::var("CASEFLOW_SIM_NO_WATCHER").is_err(),
        ..EngineOptions::default()
    };
    let run = rt
        .block_on(run_on_engine(&s, 1, &options))
        .expect("province run");
    let secs = t.elapsed().as_secs_f64();
    let events = run.summary.engine_events.unwrap_or(0);
    let rss_after = proc_status_kb("VmRSS:");
    let peak = proc_status_kb("VmHWM:");
    let held = (rss_after.saturating_sub(rss_before)) * 1024;
    println!(
        "province/real engine, memory store: {} cases, {} commands, {events} events in {secs:.1} s",
        run.summary.cases.arrived, run.commands
    );
    println!(
        "  {:.0} events/s, {:.0} cases/s",
        events as f64 / secs,
        run.summary.cases.arrived as f64 / secs
    );
    println!(
        "  peak RSS {:.0} MB; held after the run (store + read models + allocator slack) {:.0} MB = {:.0} bytes/event",
        peak as f64 / 1024.0,
        held as f64 / 1048576.0,
        held as f64 / events.max(1) as f64
    );
    println!(
        "  log digest {}",
        run.summary.digest.clone().unwrap_or_default()
    );
}

/// Part 4: calibration time for a store of about `CASEFLOW_SIM_CALIBRATION_EVENTS` events.
fn calibration() {
    use caseflow_sim::calibrate::{CalibrateOptions, calibrate, read_log, validate};
    use caseflow_sim::district::DistrictChoice;
    let target: f64 = std::env::var("CASEFLOW_SIM_CALIBRATION_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000.0);
    let path = manifest().join("../../examples/scenarios/district-year.toml");
    let mut s = scenario(path);
    // The scaled district year writes about 9.5 events per case; scale the streams and staff to
    // reach the target (the campaigns stay as they are).
    let base: f64 = s.arrivals.channel.iter().filter_map(|c| c.per_year).sum();
    let factor = target / 9.5 / base;
    for ch in &mut s.arrivals.channel {
        ch.per_year = ch.per_year.map(|r| r * factor);
    }
    for n in s.staffing.per_level.values_mut() {
        *n = ((*n as f64) * factor).ceil().max(1.0) as u32;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let t = Instant::now();
    let run = rt
        .block_on(run_on_engine(&s, 1, &EngineOptions::default()))
        .expect("calibration store");
    let events = run.summary.engine_events.unwrap_or(0);
    println!(
        "calibration/store: {} cases, {events} events written in {:.1} s",
        run.summary.cases.arrived,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let log = rt.block_on(read_log(&run.engine)).expect("read");
    let read = t.elapsed().as_secs_f64();
    let district = run.engine.district().clone();
    let options = CalibrateOptions {
        name: "calibrated".into(),
        base: Some(s.clone()),
        district_file: s.district_path(),
        ..CalibrateOptions::default()
    };
    let t = Instant::now();
    let cal = calibrate(log, &district, &options).expect("calibrate");
    let fitted = t.elapsed().as_secs_f64();
    let choice = DistrictChoice::File(s.district_path().expect("district"));
    let t = Instant::now();
    let v = validate(&cal, &choice, 1, 5).expect("validate");
    let validated = t.elapsed().as_secs_f64();
    println!(
        "  read {events} events in {read:.2} s, fitted in {fitted:.2} s ({:.0} events/s together), \
         5-replication validation in {validated:.1} s; {} of {} KPIs within tolerance",
        events as f64 / (read + fitted),
        v.rows.iter().filter(|r| r.within).count(),
        v.rows.len()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    if std::env::var("CASEFLOW_SIM_SKIP_PEER").is_err() {
        peer_comparison();
    }
    if std::env::var("CASEFLOW_SIM_SKIP_PROVINCE").is_err() {
        province();
    }
    if std::env::var("CASEFLOW_SIM_SKIP_CALIBRATION").is_err() {
        calibration();
    }
}
