//! Bad, hostile or careless scenarios get errors that name the field and the reason (never a
//! `?` placeholder, a panic or an abort); weights that do not sum to 1 are normalised with a
//! note; parsing never panics; the random streams keep common random numbers.

use caseflow_sim::district::{DistrictChoice, build};
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

/// Parses the scenario and builds its district (the checks that need the district's units).
fn check(text: &str) -> Result<Scenario, ScenarioError> {
    let s = Scenario::from_toml_str(text)?;
    build(&s, &DistrictChoice::Scenario)?;
    Ok(s)
}

fn field_of(text: &str) -> (String, String) {
    match check(text) {
        Err(ScenarioError::Invalid { field, reason }) => {
            assert!(!field.contains('?'), "placeholder in field `{field}`");
            (field, reason)
        }
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn a_minimal_scenario_is_valid_and_generates_the_default_district() {
    let s = check(MINIMAL).unwrap();
    let district = build(&s, &DistrictChoice::Scenario).unwrap();
    assert_eq!(district.org.zones().count(), 3);
    assert_eq!(district.org.units().count(), 5 + 5 + 10 + 103);
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
            format!(
                "{MINIMAL}\n[service.handling]\nroom = {{ dist = \"triangular\", min = 5, mode = 1, max = 9 }}\n"
            ),
            "service.handling.room",
        ),
        (
            format!("{MINIMAL}\n[calendar]\nweekend = [\"fri\", \"sat\"]\n"),
            "calendar.weekend",
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
        (
            format!("{MINIMAL}\n[time_limits]\nintake_decision_days = 0\n"),
            "time_limits.intake_decision_days",
        ),
        (
            format!("{MINIMAL}\n[organisation]\nzones = 3\nlocalities = 5\n"),
            "organisation",
        ),
    ];
    for (text, expected) in cases {
        let (field, reason) = field_of(&text);
        assert_eq!(field, expected, "reason: {reason}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn unknown_domain_names_are_field_named_errors_that_list_the_names_that_exist() {
    let cases = [
        (
            format!("{MINIMAL}\n[outcomes]\ndisposition = {{ shred_it = 1.0 }}\n"),
            "outcomes.disposition.shred_it",
            "preliminary_verification",
        ),
        (
            MINIMAL.replace("complaint = 1.0", "clue = 1.0"),
            "arrivals.kind_mix.clue",
            "problem_clue",
        ),
        (
            format!("{MINIMAL}\n[staffing]\nper_level = {{ office = 2 }}\n"),
            "staffing.per_level.office",
            "locality",
        ),
        (
            format!("{MINIMAL}\n[service.handling]\nmanager = {{ dist = \"fixed\", value = 1 }}\n"),
            "service.handling.manager",
            "village",
        ),
        (
            format!("{MINIMAL}\n[service.closed]\nroom = {{ dist = \"fixed\", value = 1 }}\n"),
            "service.closed",
            "rectification",
        ),
        (
            format!("{MINIMAL}\n[outcomes]\nsatisfaction = {{ delighted = 1.0 }}\n"),
            "outcomes.satisfaction.delighted",
            "basically_satisfied",
        ),
        (
            format!("{MINIMAL}\n[time_limits]\nlunch_break_days = 2\n"),
            "time_limits.lunch_break_days",
            "clue_handling_days",
        ),
        (
            format!("{MINIMAL}\n[arrivals.locality_weights]\nloc-99 = 2.0\n"),
            "arrivals.locality_weights.loc-99",
            "locality",
        ),
    ];
    for (text, field, listed) in cases {
        let (got, reason) = field_of(&text);
        assert_eq!(got, field, "{reason}");
        assert!(reason.contains(listed), "{field}: {reason}");
    }
    // An unknown channel (the old model's `poisson`) is refused by the domain's type.
    let (got, reason) = field_of(&MINIMAL.replace("\"hotline\"", "\"poisson\""));
    assert_eq!(got, "arrivals.channel[0].name", "{reason}");
    assert!(reason.contains("hotline"), "{reason}");
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
fn huge_values_are_field_named_errors_not_panics_or_aborts() {
    let cases = [
        (
            MINIMAL.replace("per_year = 100", "per_year = 1e12"),
            "arrivals.channel[0].per_year",
        ),
        (
            MINIMAL.replace("per_year = 100", "per_hour = 90000.0"),
            "arrivals.channel[0].per_hour",
        ),
        (
            MINIMAL.replace(
                "per_year = 100",
                "batch = { count = 4000000000, from_day = 0, to_day = 10 }",
            ),
            "arrivals.channel[0].batch.count",
        ),
        (
            MINIMAL.replace("horizon_days = 30", "horizon_days = 99999999"),
            "simulation.horizon_days",
        ),
        (
            MINIMAL.replace("horizon_days = 30", "horizon_days = 1e30"),
            "simulation.horizon_days",
        ),
        (
            format!("{MINIMAL}\n[staffing]\nper_level = {{ room = 4000000000 }}\n"),
            "staffing.per_level.room",
        ),
        (
            format!("{MINIMAL}\n[organisation]\nvillages = 4000000000\n"),
            "organisation.villages",
        ),
        (
            format!("{MINIMAL}\n[organisation]\nzones = 100000\n"),
            "organisation.zones",
        ),
        (
            format!(
                "{MINIMAL}\n[service.intake]\nroom = {{ dist = \"exponential\", mean = 1e300 }}\n"
            ),
            "service.intake.room",
        ),
        (
            format!("{MINIMAL}\n[delays]\nrectification = {{ dist = \"fixed\", value = 1e9 }}\n"),
            "delays.rectification",
        ),
        (
            format!(
                "{MINIMAL}\n[outcomes]\ndisciplined_people = {{ dist = \"fixed\", value = 1e6 }}\n"
            ),
            "outcomes.disciplined_people",
        ),
        (
            format!("{MINIMAL}\n[outcomes]\nmax_reopen = 4000000000\n"),
            "outcomes.max_reopen",
        ),
        // 2^32: once a chrono overflow (a follow-up 2^32 hours away) and a 240 GB allocation
        // (2^32 people disciplined for one clue).
        (
            format!(
                "{MINIMAL}\n[delays]\nuntil_follow_up = {{ dist = \"fixed\", value = 4294967296 }}\n"
            ),
            "delays.until_follow_up",
        ),
        (
            format!(
                "{MINIMAL}\n[outcomes]\ndisciplined_people = {{ dist = \"fixed\", value = 4294967296 }}\n"
            ),
            "outcomes.disciplined_people",
        ),
        (
            format!(
                "{MINIMAL}\n[outcomes]\ndisciplined_people = {{ dist = \"empirical\", values = [1, 4294967296] }}\n"
            ),
            "outcomes.disciplined_people",
        ),
        (
            format!("{MINIMAL}\n[time_limits]\nclue_handling_days = 4000000\n"),
            "time_limits.clue_handling_days",
        ),
    ];
    for (text, expected) in cases {
        let (field, reason) = field_of(&text);
        assert_eq!(field, expected, "reason: {reason}");
    }
}

#[test]
fn weights_that_do_not_sum_to_one_are_normalised_with_a_note() {
    let s = check(&MINIMAL.replace(
        "kind_mix = { complaint = 1.0 }",
        "kind_mix = { complaint = 3.0, problem_clue = 1.0 }",
    ))
    .unwrap();
    assert_eq!(s.arrivals.kind_mix["complaint"], 0.75);
    assert_eq!(s.arrivals.kind_mix["problem_clue"], 0.25);
    assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
    assert!(
        s.notes[0].contains("arrivals.kind_mix") && s.notes[0].contains("normalised"),
        "{:?}",
        s.notes
    );
    assert!(check(MINIMAL).unwrap().notes.is_empty());
}

#[test]
fn a_district_file_that_cannot_be_read_is_named_by_its_resolved_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(
        &path,
        MINIMAL.replace(
            "horizon_days = 30",
            "horizon_days = 30\ndistrict = \"no-such/district.toml\"",
        ),
    )
    .unwrap();
    let s = Scenario::from_path(&path).unwrap();
    let err = build(&s, &DistrictChoice::Scenario).unwrap_err();
    let resolved = dir.path().join("no-such/district.toml");
    match err {
        ScenarioError::Invalid { field, reason } => {
            assert_eq!(field, "simulation.district");
            assert!(
                reason.contains(&resolved.display().to_string()),
                "{reason} should name {}",
                resolved.display()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_district_file_and_a_generated_organisation_exclude_each_other() {
    let with_file = MINIMAL.replace(
        "horizon_days = 30",
        "horizon_days = 30\ndistrict = \"../district.toml\"",
    );
    let (field, reason) = field_of(&format!("{with_file}\n[organisation]\nrooms = 2\n"));
    assert_eq!(field, "organisation.rooms", "{reason}");
    // The same refusal when the district file comes from the caller (e.g. --district).
    let s = Scenario::from_toml_str(&format!("{MINIMAL}\n[organisation]\nvillages = 7\n")).unwrap();
    let err = build(
        &s,
        &DistrictChoice::Text {
            name: "sample".into(),
            text: caseflow::SAMPLE_DISTRICT_TOML.into(),
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Invalid { field, .. } if field == "organisation.villages"),
        "{err}"
    );
}

#[test]
fn the_generated_district_honours_every_organisation_field() {
    let s = check(&format!(
        "{MINIMAL}\n[organisation]\nzones = 2\nrooms = 3\nteams = 2\nlocalities = 5\nvillages = 7\nzone_of = {{ \"room-3\" = \"zone-1\" }}\n"
    ))
    .unwrap();
    let d = build(&s, &DistrictChoice::Scenario).unwrap();
    use caseflow::domain::Level;
    assert_eq!(d.org.units_at(Level::Room).count(), 3);
    assert_eq!(d.org.units_at(Level::Team).count(), 2);
    assert_eq!(d.org.units_at(Level::Locality).count(), 5);
    assert_eq!(d.org.units_at(Level::Village).count(), 7);
    assert_eq!(d.org.departments().count(), 2);
    let zone1 = d.org.zones().next().unwrap();
    assert_eq!(
        zone1.rooms.len(),
        2,
        "room-1 round-robin and room-3 by zone_of"
    );
    assert!(zone1.rooms.iter().any(|r| r.as_str() == "room-3"));
}

#[test]
fn calendar_and_time_limits_are_written_into_the_run_district() {
    let s = check(&format!(
        "{MINIMAL}\n[calendar]\nutc_offset_hours = 7\nwork_end_hour = 17.0\nholidays = [\"2026-01-07\"]\n\n[time_limits]\nintake_decision_days = 9\n\n[policies]\ncross_inspection = \"all_clues\"\n"
    ))
    .unwrap();
    let d = build(&s, &DistrictChoice::Scenario).unwrap();
    assert_eq!(d.calendar.utc_offset_minutes, 420);
    assert_eq!(d.calendar.day_end.to_string(), "17:00:00");
    assert_eq!(d.calendar.holidays.len(), 1);
    assert_eq!(d.policies.limits.intake_decision_days, 9);
    assert_eq!(
        d.policies.cross_inspection,
        caseflow::domain::CrossInspectionScope::AllClues
    );
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
    extra.name = caseflow::domain::Channel::Mailbox;
    more.arrivals.channel.push(extra);
    let a = run_once(&base, 9).unwrap();
    let b = run_once(&more, 9).unwrap();
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
            // Whatever validates must also run (or fail with an error) without panicking.
            let mut s = s;
            s.simulation.horizon_days = s.simulation.horizon_days.min(20);
            s.simulation.warmup_days = 0;
            let _ = run_once(&s, 1);
        }
    }
}
