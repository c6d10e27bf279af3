//! Calibration from a log: on a store simulated from known parameters the fit recovers them
//! (each true value inside the fit's 95% interval, the right distribution family chosen by
//! the Kolmogorov–Smirnov statistic), and simulating the calibrated scenario reproduces the
//! log's own KPIs within the stated tolerances, on that store and on the demo's.

use std::path::PathBuf;

use caseflow_sim::Scenario;
use caseflow_sim::calibrate::{
    CalibrateOptions, Calibration, calibrate, read_log, report_text, validate,
};
use caseflow_sim::district::DistrictChoice;
use caseflow_sim::engine::{EngineOptions, run_on_engine};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Four months of the sample district with busy channels and known parameters.
const TRUTH: &str = r#"
[simulation]
name = "truth"
start = "2026-03-02"
horizon_days = 120
seed = 5
district = "district.toml"

[calendar]
work_start_hour = 8.5

[arrivals]
weekday_profile = [1.6, 1.3, 1.1, 1.0, 1.0, 0.5, 0.5]
kind_mix = { complaint = 0.6, consultation = 0.2, suggestion = 0.1, problem_clue = 0.1 }

[[arrivals.channel]]
name = "hotline"
per_year = 1500

[[arrivals.channel]]
name = "photo_report_app"
per_year = 800

[staffing]
per_level = { room = 3, team = 2, locality = 2, village = 1 }

[service.intake]
room = { dist = "exponential", mean = 1.0 }

[service.classification]
room = { dist = "lognormal", mean = 2.0, sd = 1.0 }

[service.handling]
room = { dist = "triangular", min = 1.0, mode = 2.0, max = 6.0 }
team = { dist = "lognormal", mean = 12.0, sd = 6.0 }
locality = { dist = "lognormal", mean = 16.0, sd = 8.0 }

[service.rectification]
team = { dist = "fixed", value = 2.0 }
locality = { dist = "fixed", value = 2.0 }

[service.review]
village = { dist = "exponential", mean = 2.0 }

[delays]
rectification = { dist = "triangular", min = 4.0, mode = 16.0, max = 60.0 }
until_follow_up = { dist = "fixed", value = 9.0 }

[outcomes]
accept = 0.9
transfer_share_of_rejected = 0.4
substantiated = 0.6
partly_substantiated = 0.15
follow_up_fails = 0.1
satisfaction = { satisfied = 0.7, basically_satisfied = 0.2, unsatisfied = 0.1 }
"#;

async fn calibrated(scenario: &Scenario, seed: u64) -> (Calibration, DistrictChoice) {
    let run = run_on_engine(scenario, seed, &EngineOptions::default())
        .await
        .unwrap();
    let events = read_log(&run.engine).await.unwrap();
    let district = run.engine.district().clone();
    let path = scenario.district_path().unwrap();
    let options = CalibrateOptions {
        name: "calibrated".into(),
        base: Some(scenario.clone()),
        district_file: Some(path.clone()),
        ..CalibrateOptions::default()
    };
    let cal = calibrate(events, &district, &options).unwrap();
    (cal, DistrictChoice::File(path))
}

fn branch(cal: &Calibration, field: &str) -> caseflow_sim::stats::Estimate {
    cal.branches
        .iter()
        .find(|b| b.field == field)
        .unwrap_or_else(|| panic!("no fit of {field}"))
        .estimate
}

fn duration<'a>(cal: &'a Calibration, field: &str) -> &'a caseflow_sim::calibrate::fit::Fit {
    &cal.durations
        .iter()
        .find(|d| d.field == field)
        .unwrap_or_else(|| panic!("no fit of {field}"))
        .fit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_known_parameters_is_fitted_back_to_them() {
    let mut truth = Scenario::from_toml_str(TRUTH).unwrap();
    truth.base_dir = Some(examples());
    let (cal, district) = calibrated(&truth, 5).await;
    let validation = validate(&cal, &district, 100, 10).unwrap();
    println!("{}", report_text(&cal, Some(&validation)));

    for (channel, per_year) in [("hotline", 1500.0), ("photo_report_app", 800.0)] {
        let fit = cal.arrivals.iter().find(|a| a.channel == channel).unwrap();
        assert!(fit.per_year.contains(per_year), "{channel}: {fit:?}");
    }
    let weekday = cal
        .seasonality
        .iter()
        .find(|s| s.profile == "weekday")
        .unwrap();
    assert!(weekday.used, "the weekday profile is found: {weekday:?}");
    let hour = cal
        .seasonality
        .iter()
        .find(|s| s.profile == "hour")
        .unwrap();
    assert!(!hour.used, "arrivals are flat over the day: {hour:?}");
    for (field, p) in [
        ("outcomes.accept", 0.9),
        ("outcomes.transfer_share_of_rejected", 0.4),
        ("outcomes.substantiated", 0.6),
        ("outcomes.partly_substantiated", 0.15),
    ] {
        let e = branch(&cal, field);
        assert!(e.contains(p), "{field}: {e:?}");
    }
    // Service times: the family chosen by KS, the mean within its 95% interval.
    for (field, family, mean) in [
        ("service.intake.room", "exponential", 1.0),
        ("service.classification.room", "lognormal", 2.0),
        ("service.handling.locality", "lognormal", 16.0),
    ] {
        let fit = duration(&cal, field);
        assert_eq!(fit.family, family, "{field}: {fit:?}");
        let half = 1.96 * fit.sd / (fit.n as f64).sqrt();
        assert!(
            (fit.mean - mean).abs() <= half,
            "{field}: mean {} ± {half}",
            fit.mean
        );
        assert!(fit.accepted(), "{field}: KS rejects {fit:?}");
    }
    assert!(
        validation.all_within(),
        "the calibrated scenario reproduces the log:\n{}",
        caseflow_sim::calibrate::validation_table(&validation)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_store_is_reproduced_by_its_calibrated_scenario() {
    let demo = Scenario::from_path(&examples().join("scenarios/demo.toml")).unwrap();
    let (cal, district) = calibrated(&demo, demo.simulation.seed).await;
    let validation = validate(&cal, &district, 100, 10).unwrap();
    println!("{}", report_text(&cal, Some(&validation)));
    assert!(
        validation.all_within(),
        "the calibrated scenario reproduces the demo log:\n{}",
        caseflow_sim::calibrate::validation_table(&validation)
    );
}
