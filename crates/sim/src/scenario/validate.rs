//! The meaning checks of a scenario, one function per section. Every error names the field
//! (a dotted path) and the reason; mixes whose weights do not sum to 1 are normalised with a
//! note. Checks that need the run's district (unit ids, the zone rules) are made when the
//! district is built (`crate::district`), with the same kind of field-named error.

use std::collections::BTreeMap;

use caseflow::domain::{
    CaseKind, Disposition, FocusArea, Level, MAX_LIMIT_DAYS, Satisfaction, TimeLimits,
};

use super::names::{WORKING_STAGES, domain_name};
use super::{Scenario, snake_name};
use crate::error::ScenarioError;

/// Longest simulated period (arrivals plus drain), in days.
pub const MAX_DAYS: u32 = 366 * 50;
/// Most cases a scenario may expect to arrive (a run keeps per-case statistics; beyond this
/// a run would exhaust memory rather than answer).
pub const MAX_EXPECTED_ARRIVALS: f64 = 20_000_000.0;
/// Most people a unit may have, and most units of a level a generated district may have.
pub const MAX_COUNT: u32 = 100_000;
/// Most people one clue may discipline.
pub const MAX_DISCIPLINED: f64 = 1_000.0;
/// Most zones a district may be laid out over.
pub const MAX_ZONES: u32 = 1_000;

const LEVELS: [Level; 4] = [Level::Room, Level::Team, Level::Locality, Level::Village];
const DISPOSITIONS: [Disposition; 4] = [
    Disposition::TalkOrLetterInquiry,
    Disposition::PreliminaryVerification,
    Disposition::HoldForLater,
    Disposition::CloseWithoutAction,
];
const SATISFACTIONS: [Satisfaction; 3] = [
    Satisfaction::Satisfied,
    Satisfaction::BasicallySatisfied,
    Satisfaction::Unsatisfied,
];

pub(super) fn validate(s: &mut Scenario) -> Result<(), ScenarioError> {
    simulation(s)?;
    organisation(s)?;
    calendar(s)?;
    arrivals(s)?;
    staffing(s)?;
    service(s)?;
    outcomes(s)?;
    delays(s)?;
    policies(s)?;
    time_limits(s)
}

pub(crate) fn invalid<T>(field: &str, reason: &str) -> Result<T, ScenarioError> {
    Err(ScenarioError::Invalid {
        field: field.to_string(),
        reason: reason.to_string(),
    })
}

fn simulation(s: &Scenario) -> Result<(), ScenarioError> {
    let sim = &s.simulation;
    if sim.name.trim().is_empty() {
        return invalid("simulation.name", "must not be empty");
    }
    if sim.horizon_days == 0 {
        return invalid("simulation.horizon_days", "must be at least 1");
    }
    if sim.horizon_days > MAX_DAYS {
        return invalid("simulation.horizon_days", "must be at most 50 years");
    }
    if sim.drain_days > MAX_DAYS - sim.horizon_days {
        return invalid(
            "simulation.drain_days",
            "horizon and drain together must be at most 50 years",
        );
    }
    if sim.warmup_days >= sim.horizon_days {
        return invalid("simulation.warmup_days", "must be shorter than the horizon");
    }
    if !(sim.sample_every_hours.is_finite() && sim.sample_every_hours >= 1.0) {
        return invalid(
            "simulation.sample_every_hours",
            "must be a number of hours >= 1",
        );
    }
    Ok(())
}

fn organisation(s: &Scenario) -> Result<(), ScenarioError> {
    let org = &s.organisation;
    if s.simulation.district.is_some() {
        refuse_generated_organisation(org)?;
    }
    if let Some(z) = org.zones {
        if !(1..=MAX_ZONES).contains(&z) {
            return invalid(
                "organisation.zones",
                &format!("must be between 1 and {MAX_ZONES}"),
            );
        }
    }
    let counts = [
        ("organisation.rooms", org.rooms, 1),
        ("organisation.teams", org.teams, 0),
        ("organisation.localities", org.localities, 1),
        ("organisation.villages", org.villages, 0),
    ];
    for (field, value, min) in counts {
        if let Some(v) = value {
            if v < min || v > MAX_COUNT {
                return invalid(field, &format!("must be between {min} and {MAX_COUNT}"));
            }
        }
    }
    Ok(())
}

/// With a district file, `[organisation]` may only re-zone: the generating fields would be
/// ignored, so they are refused.
pub(crate) fn refuse_generated_organisation(
    org: &super::OrganisationSection,
) -> Result<(), ScenarioError> {
    let generated = [
        ("organisation.rooms", org.rooms.is_some()),
        ("organisation.teams", org.teams.is_some()),
        ("organisation.localities", org.localities.is_some()),
        ("organisation.villages", org.villages.is_some()),
        ("organisation.zone_of", !org.zone_of.is_empty()),
    ];
    match generated.iter().find(|(_, given)| *given) {
        Some((field, _)) => invalid(
            field,
            "a district file defines the units; remove this field, or remove the district file \
             (simulation.district) to generate the district from [organisation]",
        ),
        None => Ok(()),
    }
}

fn calendar(s: &Scenario) -> Result<(), ScenarioError> {
    let cal = &s.calendar;
    if let Some(off) = cal.utc_offset_hours {
        if !(-14..=14).contains(&off) {
            return invalid("calendar.utc_offset_hours", "must lie between -14 and 14");
        }
    }
    let start = cal
        .work_start_hour
        .unwrap_or(super::DEFAULT_WORK_START_HOUR);
    if !(start.is_finite() && (0.0..24.0).contains(&start)) {
        return invalid("calendar.work_start_hour", "must lie in [0, 24)");
    }
    if let Some(end) = cal.work_end_hour {
        if !(end.is_finite() && end > start && end <= 24.0) {
            return invalid(
                "calendar.work_end_hour",
                "must be after work_start_hour and at most 24",
            );
        }
    }
    if let Some(days) = &cal.weekend {
        let mut names: Vec<String> = days.iter().map(|d| d.to_ascii_lowercase()).collect();
        names.sort();
        if names != ["sat", "sun"] {
            return invalid(
                "calendar.weekend",
                "the district calendar has Saturday and Sunday off (`[\"sat\", \"sun\"]`); \
                 other days off are holidays, other working days make-up days",
            );
        }
    }
    Ok(())
}

fn arrivals(s: &mut Scenario) -> Result<(), ScenarioError> {
    let arr = &s.arrivals;
    check_profile(
        "arrivals.weekday_profile",
        arr.weekday_profile.as_deref(),
        7,
    )?;
    check_profile("arrivals.month_profile", arr.month_profile.as_deref(), 12)?;
    check_profile("arrivals.hour_profile", arr.hour_profile.as_deref(), 24)?;
    check_probability("arrivals.duplicate_share", arr.duplicate_share)?;
    check_probability("arrivals.named_reporter_share", arr.named_reporter_share)?;
    for (id, w) in &arr.locality_weights {
        check_weight(&format!("arrivals.locality_weights.{id}"), *w)?;
    }
    let mut notes = Vec::new();
    normalise_mix(
        "arrivals.kind_mix",
        &mut s.arrivals.kind_mix,
        "a kind",
        &CaseKind::ALL,
        &mut notes,
    )?;
    if !s.arrivals.focus_mix.is_empty() {
        normalise_mix(
            "arrivals.focus_mix",
            &mut s.arrivals.focus_mix,
            "a focus area",
            &FocusArea::ALL,
            &mut notes,
        )?;
    }
    channels(s, &mut notes)?;
    s.notes.extend(notes);
    Ok(())
}

fn channels(s: &mut Scenario, notes: &mut Vec<String>) -> Result<(), ScenarioError> {
    if s.arrivals.channel.is_empty() {
        return invalid("arrivals.channel", "needs at least one channel");
    }
    let horizon = s.simulation.horizon_days;
    let mut seen = Vec::new();
    let mut expected = 0.0;
    for (i, ch) in s.arrivals.channel.iter_mut().enumerate() {
        let f = |rest: &str| format!("arrivals.channel[{i}].{rest}");
        if seen.contains(&ch.name) {
            return invalid(
                &f("name"),
                &format!(
                    "channel `{}` is defined twice (give one channel per name)",
                    snake_name(&ch.name)
                ),
            );
        }
        seen.push(ch.name);
        let modes = [
            ch.per_year.is_some(),
            ch.per_hour.is_some(),
            ch.batch.is_some(),
        ];
        if modes.iter().filter(|m| **m).count() != 1 {
            return invalid(
                &f("per_year"),
                "give exactly one of per_year, per_hour or batch",
            );
        }
        if let Some(r) = ch.per_year {
            if !(r.is_finite() && r > 0.0 && r <= 1e8) {
                return invalid(&f("per_year"), "must be a positive rate (at most 1e8)");
            }
            expected += r * f64::from(horizon) / 365.0;
        }
        if let Some(r) = ch.per_hour {
            if !(r.is_finite() && r > 0.0 && r <= 1e5) {
                return invalid(&f("per_hour"), "must be a positive rate (at most 1e5)");
            }
            expected += r * 24.0 * f64::from(horizon);
        }
        if let Some(b) = &ch.batch {
            if b.to_day <= b.from_day {
                return invalid(&f("batch.to_day"), "must be after batch.from_day");
            }
            if b.from_day >= horizon {
                return invalid(&f("batch.from_day"), "lies beyond the horizon");
            }
            expected += f64::from(b.count);
        }
        if expected > MAX_EXPECTED_ARRIVALS {
            return invalid(
                &f(if ch.batch.is_some() {
                    "batch.count"
                } else if ch.per_hour.is_some() {
                    "per_hour"
                } else {
                    "per_year"
                }),
                &format!(
                    "the scenario would bring about {expected:.0} cases over its horizon; at most \
                     {MAX_EXPECTED_ARRIVALS:.0} are simulated in one run"
                ),
            );
        }
        if let Some(mix) = &mut ch.kind_mix {
            normalise_mix(&f("kind_mix"), mix, "a kind", &CaseKind::ALL, notes)?;
        }
    }
    Ok(())
}

fn staffing(s: &Scenario) -> Result<(), ScenarioError> {
    for (name, n) in &s.staffing.per_level {
        let field = format!("staffing.per_level.{name}");
        domain_name(&field, name, "a level", &LEVELS)?;
        check_people(&field, *n)?;
    }
    for (unit, n) in &s.staffing.per_unit {
        check_people(&format!("staffing.per_unit.{unit}"), *n)?;
    }
    Ok(())
}

fn check_people(field: &str, n: u32) -> Result<(), ScenarioError> {
    if n == 0 || n > MAX_COUNT {
        return invalid(field, &format!("must be between 1 and {MAX_COUNT} people"));
    }
    Ok(())
}

fn service(s: &Scenario) -> Result<(), ScenarioError> {
    for (stage, per_level) in &s.service {
        domain_name(
            &format!("service.{stage}"),
            stage,
            "a working stage",
            &WORKING_STAGES,
        )?;
        for (level, dist) in per_level {
            let field = format!("service.{stage}.{level}");
            domain_name(&field, level, "a level", &LEVELS)?;
            dist.validate(&field)?;
        }
    }
    Ok(())
}

fn outcomes(s: &mut Scenario) -> Result<(), ScenarioError> {
    let out = &s.outcomes;
    for (field, p) in [
        ("outcomes.accept", out.accept),
        (
            "outcomes.transfer_share_of_rejected",
            out.transfer_share_of_rejected,
        ),
        ("outcomes.substantiated", out.substantiated),
        ("outcomes.partly_substantiated", out.partly_substantiated),
        ("outcomes.progress_report", out.progress_report),
        ("outcomes.follow_up_fails", out.follow_up_fails),
    ] {
        check_probability(field, p)?;
    }
    if out.substantiated + out.partly_substantiated > 1.0 + 1e-9 {
        return invalid(
            "outcomes.partly_substantiated",
            "substantiated + partly_substantiated must not exceed 1",
        );
    }
    if let Some(d) = &out.disciplined_people {
        d.validate("outcomes.disciplined_people")?;
        if d.parameters().iter().any(|x| *x > MAX_DISCIPLINED) {
            return invalid(
                "outcomes.disciplined_people",
                &format!("at most {MAX_DISCIPLINED} people are disciplined for one clue"),
            );
        }
    }
    if out.max_reopen > 100 {
        return invalid("outcomes.max_reopen", "must be at most 100");
    }
    let mut notes = Vec::new();
    if !s.outcomes.disposition.is_empty() {
        normalise_mix(
            "outcomes.disposition",
            &mut s.outcomes.disposition,
            "a disposition",
            &DISPOSITIONS,
            &mut notes,
        )?;
        let hold = s
            .outcomes
            .disposition
            .get(&snake_name(&Disposition::HoldForLater))
            .copied()
            .unwrap_or(0.0);
        if hold >= 1.0 {
            return invalid(
                "outcomes.disposition.hold_for_later",
                "a clue held for later is decided again; it cannot be held every time",
            );
        }
    }
    if !s.outcomes.satisfaction.is_empty() {
        normalise_mix(
            "outcomes.satisfaction",
            &mut s.outcomes.satisfaction,
            "an answer of the reporter",
            &SATISFACTIONS,
            &mut notes,
        )?;
    }
    s.notes.extend(notes);
    Ok(())
}

fn delays(s: &Scenario) -> Result<(), ScenarioError> {
    let d = &s.delays;
    for (field, spec) in [
        ("delays.rectification", &d.rectification),
        ("delays.until_follow_up", &d.until_follow_up),
        ("delays.hold_for_later", &d.hold_for_later),
    ] {
        if let Some(spec) = spec {
            spec.validate(field)?;
        }
    }
    let holds = s
        .disposition_weights()
        .iter()
        .any(|(d, w)| *d == Disposition::HoldForLater && *w > 0.0);
    if holds && d.hold_for_later.is_none() {
        return invalid(
            "delays.hold_for_later",
            "outcomes.disposition holds some clues for later; say how long they wait",
        );
    }
    Ok(())
}

fn policies(s: &Scenario) -> Result<(), ScenarioError> {
    let p = &s.policies;
    for (field, value) in [
        ("policies.clue_involves_locality", p.clue_involves_locality),
        ("policies.serious_share", p.serious_share),
        ("policies.grave_share", p.grave_share),
        ("policies.department_share", p.department_share),
    ] {
        check_probability(field, value)?;
    }
    if p.serious_share + p.grave_share > 1.0 + 1e-9 {
        return invalid(
            "policies.grave_share",
            "serious_share + grave_share must not exceed 1",
        );
    }
    Ok(())
}

fn time_limits(s: &Scenario) -> Result<(), ScenarioError> {
    let known = TimeLimits::default().named();
    for (name, days) in &s.time_limits {
        let field = format!("time_limits.{name}");
        if !known.iter().any(|(n, _)| n == name) {
            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            return invalid(
                &field,
                &format!(
                    "not a time limit of the domain; use one of {}",
                    names.join(", ")
                ),
            );
        }
        if *days == 0 || *days > MAX_LIMIT_DAYS {
            return invalid(
                &field,
                &format!("must be between 1 and {MAX_LIMIT_DAYS} working days"),
            );
        }
    }
    Ok(())
}

/// Checks a mix's names and weights and scales the weights to sum to 1 (with a note when
/// they did not).
fn normalise_mix<T>(
    field: &str,
    mix: &mut BTreeMap<String, f64>,
    what: &str,
    all: &[T],
    notes: &mut Vec<String>,
) -> Result<(), ScenarioError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Copy,
{
    for (name, w) in mix.iter() {
        let entry = format!("{field}.{name}");
        domain_name(&entry, name, what, all)?;
        check_weight(&entry, *w)?;
    }
    let sum: f64 = mix.values().sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return invalid(field, "needs at least one positive weight");
    }
    if (sum - 1.0).abs() > 1e-6 {
        for w in mix.values_mut() {
            *w /= sum;
        }
        let shares: Vec<String> = mix.iter().map(|(n, w)| format!("{n} {w:.3}")).collect();
        notes.push(format!(
            "{field}: the weights sum to {sum}, not 1; normalised to {}",
            shares.join(", ")
        ));
    }
    Ok(())
}

fn check_probability(field: &str, p: f64) -> Result<(), ScenarioError> {
    if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
        return invalid(field, &format!("must be a probability in [0, 1], got {p}"));
    }
    Ok(())
}

fn check_weight(field: &str, w: f64) -> Result<(), ScenarioError> {
    if !(w.is_finite() && w >= 0.0) {
        return invalid(field, &format!("weights must be finite and >= 0, got {w}"));
    }
    Ok(())
}

fn check_profile(field: &str, profile: Option<&[f64]>, len: usize) -> Result<(), ScenarioError> {
    let Some(p) = profile else { return Ok(()) };
    if p.len() != len {
        return invalid(
            field,
            &format!("needs exactly {len} values, got {}", p.len()),
        );
    }
    for (i, w) in p.iter().enumerate() {
        check_weight(&format!("{field}[{i}]"), *w)?;
    }
    if p.iter().sum::<f64>() <= 0.0 {
        return invalid(field, "needs at least one positive value");
    }
    Ok(())
}
