//! The shipped scenarios parse, run, and land near the source report's figures.

use std::path::PathBuf;

use caseflow::domain::DeadlineKind;
use caseflow_sim::{Scenario, run_once};

fn scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name);
    Scenario::from_path(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn district_year_reproduces_the_report_figures_on_average() {
    let s = scenario("district-year.toml");
    let r = caseflow_sim::replicate(&s, 1, 10).unwrap();
    let get = |m: &str| r.get(m).unwrap().mean;
    let arrived = get("cases.arrived");
    // 160 resident issues + 73 campaign clues + 72 follow-up problems.
    assert!((280.0..=330.0).contains(&arrived), "arrived {arrived}");
    let disciplined = get("cases.disciplined_people");
    assert!(
        (55.0..=95.0).contains(&disciplined),
        "disciplined {disciplined}"
    );
    let summary = &r.runs[0];
    let villages = summary
        .units
        .iter()
        .filter(|u| u.level == "village")
        .count();
    assert_eq!(villages, 103);
    assert_eq!(summary.zones.len(), 3);
    println!("{}", caseflow_sim::report::text(summary, false));
}

#[test]
fn every_shipped_scenario_parses_and_runs() {
    for name in [
        "district-year.toml",
        "online-doubled.toml",
        "cross-inspection-all.toml",
        "four-zones.toml",
        "mmc.toml",
        "demo.toml",
    ] {
        let s = scenario(name);
        assert!(s.notes.is_empty(), "{name}: {:?}", s.notes);
        let summary = run_once(&s, 3).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(summary.cases.arrived > 0, "{name}");
        assert!(summary.digest.is_some());
    }
}

#[test]
fn four_zones_lays_the_district_file_out_over_four_zones() {
    let summary = run_once(&scenario("four-zones.toml"), 3).unwrap();
    assert_eq!(summary.zones.len(), 4);
}

#[test]
fn missed_time_limits_are_urged_and_counted_as_breaches() {
    let mut s = scenario("district-year.toml");
    s.simulation.horizon_days = 120;
    // Verification takes two weeks of work against one-day handling limits.
    s.service.get_mut("handling").unwrap().insert(
        "locality".into(),
        caseflow_sim::dist::DistSpec::Fixed { value: 80.0 },
    );
    for limit in [
        "mass_demand_days",
        "mass_demand_urgent_days",
        "consultation_days",
        "clue_handling_days",
        "talk_or_letter_inquiry_days",
        "preliminary_verification_days",
    ] {
        s.time_limits.insert(limit.into(), 1);
    }
    let summary = run_once(&s, 4).unwrap();
    let handling = summary.deadline(DeadlineKind::Handling).unwrap();
    assert!(handling.breached > 0, "{handling:?}");
    assert!(handling.urged > 0, "{handling:?}");
    assert!(handling.escalated > 0, "{handling:?}");
    assert!(handling.urged <= handling.opened);
    assert!(handling.escalated <= handling.urged);
    assert!(summary.on_time_rate < 1.0);
}
