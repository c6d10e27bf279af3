//! Bad scenarios get errors that name the field and the reason; parsing never panics; the
//! random streams keep common random numbers.

use caseflow_sim::{Scenario, ScenarioError, run_once};
use proptest::prelude::*;

const MINIMAL: &str = r#"
[simulation]
name = "t"
start = "2026-01-05"
horizon_days = 30

[arrivals]
kind_mix = { complaint = 1.0 }

[[arrivals.channel]]
name = "hotline"
per_year = 100
"#;

fn field_of(text: &str) -> (String, String) {
    match Scenario::from_toml_str(text) {
        Err(ScenarioError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn a_minimal_scenario_is_valid() {
    Scenario::from_toml_str(MINIMAL).unwrap();
}

#[test]
fn out_of_range_values_name_their_field() {
    let cases = [
        (
            MINIMAL.replace("horizon_days = 30", "horizon_days = 0"),
            "simulation.horizon_days",
        ),
        (
            MINIMAL.replace("per_year = 100", "per_year = -3"),
            "arrivals.channel[0].per_year",
        ),
        (
            format!("{MINIMAL}\n[outcomes]\naccept = 1.5\n"),
            "outcomes.accept",
        ),
        (
            format!("{MINIMAL}\n[outcomes]\ndisposition = {{ shred_it = 1.0 }}\n"),
            "outcomes.disposition.shred_it",
        ),
        (
            format!(
                "{MINIMAL}\n[service.handling]\nroom = {{ dist = \"triangular\", min = 5, mode = 1, max = 9 }}\n"
            ),
            "service.handling.room",
        ),
        (
            format!("{MINIMAL}\n[calendar]\nweekend = [\"sat\", \"caturday\"]\n"),
            "calendar.weekend[1]",
        ),
        (
            format!("{MINIMAL}\n[staffing]\nper_unit = {{ \"room-9\" = 2 }}\n"),
            "staffing.per_unit.room-9",
        ),
        (
            MINIMAL.replace(
                "kind_mix = { complaint = 1.0 }",
                "kind_mix = { complaint = 0.0 }",
            ),
            "arrivals.kind_mix",
        ),
    ];
    for (text, expected) in cases {
        let (field, reason) = field_of(&text);
        assert_eq!(field, expected, "reason: {reason}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn type_errors_and_unknown_fields_name_the_path() {
    let (field, reason) =
        field_of(&MINIMAL.replace("horizon_days = 30", "horizon_days = \"a year\""));
    assert_eq!(field, "simulation.horizon_days", "{reason}");
    let (field, reason) = field_of(&format!(
        "{MINIMAL}\n[policies]\ncross_inspection = \"sometimes\"\n"
    ));
    assert_eq!(field, "policies.cross_inspection", "{reason}");
    let (field, reason) =
        field_of(&MINIMAL.replace("per_year = 100", "per_year = 100\nper_decade = 3"));
    assert!(field.starts_with("arrivals.channel"), "{field}: {reason}");
    assert!(reason.contains("per_decade"), "{reason}");
    let (field, reason) = field_of(&format!(
        "{MINIMAL}\n[service.handling]\nroom = {{ dist = \"gaussian\", mean = 1 }}\n"
    ));
    assert_eq!(field, "service.handling.room.dist", "{reason}");
    assert!(reason.contains("gaussian"), "{reason}");
    let (field, _) = field_of(&format!(
        "{MINIMAL}\n[service.handlin]\nroom = {{ dist = \"fixed\", value = 1 }}\n"
    ));
    assert_eq!(field, "service.handlin");
}

#[test]
fn broken_toml_is_a_syntax_error() {
    assert!(matches!(
        Scenario::from_toml_str("[simulation\nname ="),
        Err(ScenarioError::Syntax { .. })
    ));
}

#[test]
fn adding_a_channel_leaves_the_other_channels_cases_untouched() {
    // Common random numbers: each channel's arrivals and each case's draws come from their
    // own streams, so a new channel does not reshuffle the hotline's cases.
    let base = Scenario::from_toml_str(&format!(
        "{MINIMAL}\n[service.handling]\nlocality = {{ dist = \"exponential\", mean = 3 }}\n"
    ))
    .unwrap();
    let mut more = base.clone();
    let mut extra = more.arrivals.channel[0].clone();
    extra.name = "mailbox".into();
    more.arrivals.channel.push(extra);
    let a = run_once(&base, 9);
    let b = run_once(&more, 9);
    let hotline =
        |s: &caseflow_sim::Summary| s.channels.iter().find(|(n, _)| n == "hotline").unwrap().1;
    assert_eq!(hotline(&a), hotline(&b));
    assert!(b.cases.arrived > a.cases.arrived);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn parsing_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = Scenario::from_toml_str(&text);
    }

    #[test]
    fn parsing_never_panics_on_mutated_scenarios(pos in 0usize..400, garbage in "[-a-z0-9\\[\\]{}=\". ]{0,12}") {
        let mut text = MINIMAL.to_string();
        let at = pos.min(text.len());
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &garbage);
        if let Ok(s) = Scenario::from_toml_str(&text) {
            // Whatever validates must also run without panicking.
            let mut s = s;
            s.simulation.horizon_days = s.simulation.horizon_days.min(20);
            s.simulation.warmup_days = 0;
            let _ = run_once(&s, 1);
        }
    }
}
