//! Calibration: a scenario fitted to a store's history (`caseflow simulate --calibrate`).
//!
//! The log is read case by case ([`observe`]) over a window of whole days. Fitted are the
//! arrival rate of each channel with its kind mix (a channel whose reports fill only a short
//! stretch of the window becomes a campaign batch), the weekday, hour-of-day and (over a
//! year or more) month profiles where a chi-square test shows them at the 1% level, the
//! focus areas, localities and named reporters, every branch probability (intake decisions,
//! duplicates, dispositions, findings, people disciplined, progress reports, failed visits,
//! satisfaction, reopenings, severity, locality involvement, department matters), and the
//! service-time distribution of every stage and level, chosen among the shipped families by
//! the Kolmogorov–Smirnov statistic ([`fit`]). Service times are reconstructed from the
//! log's request and decision times under the model's own discipline (first come, first
//! served with the scenario's staff per unit); the staffing and the working hours are not
//! in the log and come from a base scenario (or the defaults).
//!
//! [`validate`] then simulates the calibrated scenario over the same window and sets its
//! KPIs beside the log's own ([`logkpi`]), each with its tolerance.

pub mod fit;
pub mod logkpi;
pub mod observe;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use caseflow::District;
use caseflow::domain::{CaseEvent, CaseKind, Level, Severity, Stage, UnitId};
use caseflow::{Engine, EngineError};
use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use serde::Serialize;

use crate::dist::DistSpec;
use crate::district::DistrictChoice;
use crate::error::{ScenarioError, SimError};
use crate::hours::WorkingTime;
use crate::layout::{LEVELS, Layout};
use crate::model::{RunOptions, Simulation};
use crate::scenario::{
    ArrivalsSection, BatchSpec, ChannelSpec, DelaysSection, OrganisationSection, OutcomesSection,
    PoliciesSection, Scenario, SimulationSection, WORKING_STAGES, snake_name,
};
use crate::stats::Estimate;

use fit::{Fit, best_fit};
use logkpi::{LogKpis, log_kpis};
use observe::{Observed, cases_in_window, observe, service_times};

/// What a calibration needs besides the log.
#[derive(Debug, Clone, Default)]
pub struct CalibrateOptions {
    /// Name of the calibrated scenario.
    pub name: String,
    /// Start of the window (default: the first report); the window starts at local
    /// midnight of its day.
    pub from: Option<DateTime<Utc>>,
    /// End of the window (default: the last event), rounded up to whole days.
    pub to: Option<DateTime<Utc>>,
    /// Staffing, working hours and seed come from here (the log does not record them).
    pub base: Option<Scenario>,
    /// The district file the calibrated scenario names (`simulation.district`).
    pub district_file: Option<PathBuf>,
}

/// One channel's fitted arrivals.
#[derive(Debug, Clone, Serialize)]
pub struct ArrivalFit {
    /// The domain's channel name.
    pub channel: String,
    /// Reports in the window.
    pub count: u64,
    /// Fitted rate per year (Poisson), with its 95% interval.
    pub per_year: Estimate,
    /// A campaign: the window `[from_day, to_day)` its reports fill.
    pub batch: Option<(u32, u32)>,
}

/// A seasonality test.
#[derive(Debug, Clone, Serialize)]
pub struct SeasonalityTest {
    /// `weekday`, `hour` or `month`.
    pub profile: &'static str,
    /// Pearson's chi-square against a flat rate.
    pub chi_square: f64,
    /// Degrees of freedom.
    pub df: u32,
    /// The 1% critical value.
    pub critical_1pct: f64,
    /// Whether the profile was put into the scenario.
    pub used: bool,
}

/// A fitted probability.
#[derive(Debug, Clone, Serialize)]
pub struct BranchFit {
    /// The scenario field it sets.
    pub field: String,
    /// Times it happened.
    pub hits: u64,
    /// Times it could have.
    pub trials: u64,
    /// The estimate with its 95% (normal approximation) interval.
    pub estimate: Estimate,
}

/// A fitted duration (service time or delay).
#[derive(Debug, Clone, Serialize)]
pub struct DurationFit {
    /// The scenario field it sets, e.g. `service.handling.locality`.
    pub field: String,
    /// The fit.
    pub fit: Fit,
}

/// A calibrated scenario and how it was fitted.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The scenario.
    pub scenario: Scenario,
    /// Events read, cases in the window.
    pub events: u64,
    /// Cases reported in the window.
    pub cases: u64,
    /// Arrivals per channel.
    pub arrivals: Vec<ArrivalFit>,
    /// Seasonality tests.
    pub seasonality: Vec<SeasonalityTest>,
    /// Branch probabilities.
    pub branches: Vec<BranchFit>,
    /// Durations.
    pub durations: Vec<DurationFit>,
    /// The log's own KPIs over the window.
    pub log: LogKpis,
    /// What the analyst should know (assumptions, what the log could not show).
    pub notes: Vec<String>,
}

/// Reads every event of the engine's log in order.
pub async fn read_log(engine: &Engine) -> Result<Vec<CaseEvent>, SimError> {
    let store = engine.store();
    let mut out = Vec::new();
    let mut from = 1u64;
    loop {
        let batch = store
            .read_all(from, 4096)
            .await
            .map_err(|e| SimError::Engine(EngineError::Store(e)))?;
        if batch.is_empty() {
            return Ok(out);
        }
        for record in &batch {
            let event = caseflow::projections::decode(record).map_err(|source| {
                SimError::Engine(EngineError::Decode {
                    stream: record.stream_id.clone(),
                    version: record.version,
                    source,
                })
            })?;
            out.push(event);
            from = record.position + 1;
        }
    }
}

fn no_cases() -> SimError {
    SimError::Option {
        option: "--calibrate".into(),
        reason: "the store has no case reported in the window".into(),
    }
}

/// Fits a scenario to `events` (the whole log in order) on `district`.
pub fn calibrate(
    events: Vec<CaseEvent>,
    district: &District,
    options: &CalibrateOptions,
) -> Result<Calibration, SimError> {
    let event_count = events.len() as u64;
    let offset = chrono::FixedOffset::east_opt(district.calendar.utc_offset_minutes * 60)
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("0 is a valid offset"));
    let first_report = events.iter().find_map(|e| match e {
        CaseEvent::CaseReported(r) if options.from.is_none_or(|f| r.at >= f) => Some(r.at),
        _ => None,
    });
    let Some(first_report) = first_report else {
        return Err(match options.from {
            Some(_) => SimError::Option {
                option: "--from".into(),
                reason: "the store has no case reported at or after this time".into(),
            },
            None => no_cases(),
        });
    };
    let from = options.from.unwrap_or(first_report);
    let last = events.iter().map(CaseEvent::at).max().unwrap_or(from);
    let to = options.to.unwrap_or(last + Duration::seconds(1));
    let start = from.with_timezone(&offset).date_naive();
    let base_time = offset
        .from_local_datetime(&start.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map_or(from, |t| t.with_timezone(&Utc));
    let span_hours = (to - base_time).num_seconds() as f64 / 3600.0;
    if span_hours <= 0.0 {
        return Err(SimError::Option {
            option: "--to".into(),
            reason: "the window ends before it starts".into(),
        });
    }
    let days = (span_hours / 24.0).ceil().max(1.0) as u32;
    let window_end = base_time + Duration::days(i64::from(days));
    let cases = cases_in_window(events, from, window_end);
    if cases.is_empty() {
        return Err(no_cases());
    }
    let base = options.base.clone();
    let mut scenario = skeleton(options, base.as_ref(), start, days, district);
    let hours = WorkingTime::new(&district.calendar, &scenario.calendar, start, days + 1);
    let observed = observe(&cases, &hours);
    let mut notes = Vec::new();
    let (arrivals, section, seasonality) =
        fit_arrivals(&observed, district, &hours, days, &mut notes);
    scenario.arrivals = section;
    let branches = fit_outcomes(&observed, &mut scenario);
    let layout = Layout::new(&scenario, district);
    let staff: HashMap<UnitId, u32> = layout
        .units
        .iter()
        .map(|u| (u.id.clone(), u.staff))
        .collect();
    let order: HashMap<UnitId, u32> = layout
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.clone(), i as u32))
        .collect();
    let services = service_times(
        &observed.work,
        district,
        &hours,
        |u| staff.get(u).copied().unwrap_or(1),
        |u| order.get(u).copied().unwrap_or(u32::MAX),
    );
    let durations = fit_durations(&observed, &services, &mut scenario);
    notes.extend(assumptions(base.is_some()));
    let log = log_kpis(
        &cases,
        &hours,
        f64::from(days) * 24.0,
        scenario.simulation.sample_every_hours,
    );
    let scenario = round_trip(&scenario, options)?;
    Ok(Calibration {
        scenario,
        events: event_count,
        cases: cases.len() as u64,
        arrivals,
        seasonality,
        branches,
        durations,
        log,
        notes,
    })
}

/// The scenario before fitting: the window, the district, and what the base scenario says
/// about staff and working hours.
fn skeleton(
    options: &CalibrateOptions,
    base: Option<&Scenario>,
    start: chrono::NaiveDate,
    days: u32,
    district: &District,
) -> Scenario {
    let name = if options.name.is_empty() {
        "calibrated".to_owned()
    } else {
        options.name.clone()
    };
    Scenario {
        simulation: SimulationSection {
            name,
            start,
            horizon_days: days,
            drain_days: 0,
            warmup_days: 0,
            seed: base.map_or(1, |b| b.simulation.seed),
            sample_every_hours: 24.0,
            district: options.district_file.clone(),
        },
        organisation: OrganisationSection::default(),
        calendar: base.map(|b| b.calendar.clone()).unwrap_or_default(),
        arrivals: ArrivalsSection {
            weekday_profile: None,
            month_profile: None,
            hour_profile: None,
            duplicate_share: 0.0,
            named_reporter_share: 0.0,
            kind_mix: BTreeMap::new(),
            focus_mix: BTreeMap::new(),
            locality_weights: BTreeMap::new(),
            channel: Vec::new(),
        },
        staffing: base.map(|b| b.staffing.clone()).unwrap_or_default(),
        service: BTreeMap::new(),
        delays: DelaysSection::default(),
        outcomes: OutcomesSection::default(),
        policies: PoliciesSection {
            cross_inspection: district.policies.cross_inspection,
            ..PoliciesSection::default()
        },
        time_limits: BTreeMap::new(),
        base_dir: None,
        notes: Vec::new(),
    }
}

/// Rounds a probability or weight for a readable scenario file.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn round_dist(spec: DistSpec) -> DistSpec {
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    match spec {
        DistSpec::Exponential { mean } => DistSpec::Exponential {
            mean: r(mean).max(0.001),
        },
        DistSpec::Lognormal { mean, sd } => DistSpec::Lognormal {
            mean: r(mean).max(0.001),
            sd: r(sd),
        },
        DistSpec::Triangular { min, mode, max } => DistSpec::Triangular {
            min: r(min),
            mode: r(mode),
            max: r(max).max(r(min) + 0.001),
        },
        DistSpec::Fixed { value } => DistSpec::Fixed { value: r(value) },
        other => other,
    }
}

fn share(hits: u64, trials: u64) -> Estimate {
    if trials == 0 {
        return Estimate {
            mean: 0.0,
            half_width: f64::INFINITY,
            n: 0,
        };
    }
    let p = hits as f64 / trials as f64;
    Estimate {
        mean: p,
        half_width: 1.96 * (p * (1.0 - p) / trials as f64).sqrt(),
        n: trials as usize,
    }
}

fn counts_of<T: Serialize>(values: impl Iterator<Item = T>) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for v in values {
        *m.entry(snake_name(&v)).or_insert(0.0) += 1.0;
    }
    m
}

/// A profile's Pearson chi-square against a rate proportional to `exposure`.
fn chi_square(observed: &[f64], exposure: &[f64]) -> f64 {
    let total: f64 = observed.iter().sum();
    let exposed: f64 = exposure.iter().sum();
    observed
        .iter()
        .zip(exposure)
        .filter(|(_, e)| **e > 0.0)
        .map(|(o, e)| {
            let expected = total * e / exposed;
            (o - expected).powi(2) / expected
        })
        .sum()
}

/// The rate per unit of exposure, mean 1 (0 where nothing was exposed).
fn profile(observed: &[f64], exposure: &[f64]) -> Vec<f64> {
    let rates: Vec<f64> = observed
        .iter()
        .zip(exposure)
        .map(|(o, e)| if *e > 0.0 { o / e } else { 0.0 })
        .collect();
    let m = rates.iter().sum::<f64>() / rates.len() as f64;
    rates
        .iter()
        .map(|r| if m > 0.0 { round4(r / m) } else { 1.0 })
        .collect()
}

fn fit_arrivals(
    o: &Observed,
    district: &District,
    hours: &WorkingTime,
    days: u32,
    notes: &mut Vec<String>,
) -> (Vec<ArrivalFit>, ArrivalsSection, Vec<SeasonalityTest>) {
    let mut fits = Vec::new();
    let mut channels = Vec::new();
    let mut by_channel: BTreeMap<String, Vec<&observe::Report>> = BTreeMap::new();
    for r in &o.reports {
        by_channel
            .entry(snake_name(&r.channel))
            .or_default()
            .push(r);
    }
    let mut streamed: Vec<&observe::Report> = Vec::new();
    for (name, reports) in &by_channel {
        let n = reports.len() as u64;
        let first = reports
            .iter()
            .map(|r| r.hours)
            .fold(f64::INFINITY, f64::min);
        let last = reports.iter().map(|r| r.hours).fold(0.0, f64::max);
        let (from_day, to_day) = (
            (first / 24.0).floor() as u32,
            (last / 24.0).floor() as u32 + 1,
        );
        // A campaign: many reports in a short stretch of a long window.
        let batch =
            (n >= 10 && days >= 28 && f64::from(to_day - from_day) <= 0.2 * f64::from(days))
                .then_some((from_day, to_day));
        let per_year = Estimate {
            mean: n as f64 / f64::from(days) * 365.0,
            half_width: 1.96 * (n as f64).sqrt() / f64::from(days) * 365.0,
            n: n as usize,
        };
        let kind_mix = counts_of(reports.iter().map(|r| r.kind));
        let channel = reports[0].channel;
        channels.push(ChannelSpec {
            name: channel,
            per_year: batch
                .is_none()
                .then(|| (per_year.mean * 100.0).round() / 100.0),
            per_hour: None,
            kind_mix: Some(kind_mix),
            batch: batch.map(|(from_day, to_day)| BatchSpec {
                count: n as u32,
                from_day,
                to_day,
            }),
        });
        if let Some((a, b)) = batch {
            notes.push(format!(
                "channel {name}: its {n} reports fill days {a}..{b} only, so it is a campaign batch"
            ));
        } else {
            streamed.extend(reports.iter().copied());
        }
        fits.push(ArrivalFit {
            channel: name.clone(),
            count: n,
            per_year,
            batch,
        });
    }
    let (section_profiles, tests) = seasonality(&streamed, hours, days);
    let all = &o.reports;
    let named = all.iter().filter(|r| r.named).count() as f64;
    let duplicate_share = round4(o.branches.merged as f64 / all.len().max(1) as f64);
    let mut locality_weights: BTreeMap<String, f64> = district
        .org
        .units_at(Level::Locality)
        .map(|l| (l.id.as_str().to_owned(), 0.0))
        .collect();
    for r in all {
        *locality_weights
            .entry(r.locality.as_str().to_owned())
            .or_insert(0.0) += 1.0;
    }
    let section = ArrivalsSection {
        weekday_profile: section_profiles.0,
        month_profile: section_profiles.1,
        hour_profile: section_profiles.2,
        duplicate_share,
        named_reporter_share: round4(named / all.len().max(1) as f64),
        kind_mix: counts_of(all.iter().map(|r| r.kind)),
        focus_mix: counts_of(all.iter().map(|r| r.focus)),
        locality_weights,
        channel: channels,
    };
    (fits, section, tests)
}

type Profiles = (Option<Vec<f64>>, Option<Vec<f64>>, Option<Vec<f64>>);

/// Weekday, month and hour-of-day profiles of the streamed (non-campaign) reports, each
/// kept only where a chi-square test against a flat rate rejects flatness at 1%.
fn seasonality(
    reports: &[&observe::Report],
    hours: &WorkingTime,
    days: u32,
) -> (Profiles, Vec<SeasonalityTest>) {
    let mut weekday = [0.0; 7];
    let mut weekday_exposure = [0.0; 7];
    let mut month = [0.0; 12];
    let mut month_exposure = [0.0; 12];
    let mut hour = [0.0; 24];
    for d in 0..i64::from(days) {
        weekday_exposure[hours.weekday_index(d)] += 1.0;
        month_exposure[hours.month_index(d)] += 1.0;
    }
    for r in reports {
        let day = (r.hours / 24.0).floor() as i64;
        weekday[hours.weekday_index(day)] += 1.0;
        month[hours.month_index(day)] += 1.0;
        let local = hours.to_utc(r.hours).with_timezone(
            &chrono::FixedOffset::east_opt(hours.calendar().utc_offset_minutes * 60)
                .unwrap_or(chrono::FixedOffset::east_opt(0).expect("0 is a valid offset")),
        );
        hour[local.hour() as usize] += 1.0;
    }
    let flat = [1.0; 24];
    let mut tests = Vec::new();
    let mut test =
        |profile: &'static str, obs: &[f64], exp: &[f64], df: u32, crit: f64, on: bool| {
            let chi = chi_square(obs, exp);
            let used = on && reports.len() >= 20 && chi > crit;
            tests.push(SeasonalityTest {
                profile,
                chi_square: chi,
                df,
                critical_1pct: crit,
                used,
            });
            used.then(|| profile_of(obs, exp))
        };
    let w = test(
        "weekday",
        &weekday,
        &weekday_exposure,
        6,
        16.812,
        days >= 14,
    );
    let m = test("month", &month, &month_exposure, 11, 24.725, days >= 365);
    let h = test("hour", &hour, &flat, 23, 41.638, true);
    ((w, m, h), tests)
}

fn profile_of(observed: &[f64], exposure: &[f64]) -> Vec<f64> {
    profile(observed, exposure)
}

fn fit_outcomes(o: &Observed, s: &mut Scenario) -> Vec<BranchFit> {
    let b = &o.branches;
    let mut fits = Vec::new();
    let mut add = |field: &str, hits: u64, trials: u64| -> Option<f64> {
        let e = share(hits, trials);
        fits.push(BranchFit {
            field: field.to_owned(),
            hits,
            trials,
            estimate: e,
        });
        (trials > 0).then_some(round4(e.mean))
    };
    let decided = b.accepted + b.declined + b.transferred;
    let out = &mut s.outcomes;
    if let Some(p) = add("outcomes.accept", b.accepted, decided) {
        out.accept = p;
    }
    if let Some(p) = add(
        "outcomes.transfer_share_of_rejected",
        b.transferred,
        b.declined + b.transferred,
    ) {
        out.transfer_share_of_rejected = p;
    }
    let findings: u64 = b.findings.iter().map(|(_, n)| n).sum();
    let count = |f: caseflow::domain::Finding| {
        b.findings
            .iter()
            .find(|(x, _)| *x == f)
            .map_or(0, |(_, n)| *n)
    };
    use caseflow::domain::Finding as F;
    out.substantiated = add("outcomes.substantiated", count(F::Substantiated), findings)
        .unwrap_or(out.substantiated);
    out.partly_substantiated = add(
        "outcomes.partly_substantiated",
        count(F::PartlySubstantiated),
        findings,
    )
    .unwrap_or(out.partly_substantiated);
    out.disposition = b
        .dispositions
        .iter()
        .map(|(d, n)| (snake_name(d), *n as f64))
        .collect();
    out.satisfaction = b
        .satisfaction
        .iter()
        .map(|(v, n)| (snake_name(v), *n as f64))
        .collect();
    if let Some(p) = add("outcomes.progress_report", b.progress.min(b.plans), b.plans) {
        out.progress_report = p;
    }
    if let Some(p) = add("outcomes.follow_up_fails", b.visits_failed, b.visits) {
        out.follow_up_fails = p;
    }
    out.max_reopen = b.max_reopen;
    if !b.disciplined.is_empty() {
        let mut counts: BTreeMap<u64, f64> = BTreeMap::new();
        for n in &b.disciplined {
            *counts.entry(*n as u64).or_insert(0.0) += 1.0;
        }
        out.disciplined_people = Some(DistSpec::Empirical {
            values: counts.keys().map(|k| *k as f64).collect(),
            weights: Some(counts.values().copied().collect()),
        });
    }
    let p = &mut s.policies;
    if let Some(x) = add(
        "policies.clue_involves_locality",
        b.clues_involving,
        b.clues_classified,
    ) {
        p.clue_involves_locality = x;
    }
    let classified: u64 = b.severity.iter().map(|(_, n)| n).sum();
    let sev = |v: Severity| {
        b.severity
            .iter()
            .find(|(x, _)| *x == v)
            .map_or(0, |(_, n)| *n)
    };
    if let Some(x) = add("policies.serious_share", sev(Severity::Serious), classified) {
        p.serious_share = x;
    }
    if let Some(x) = add("policies.grave_share", sev(Severity::Grave), classified) {
        p.grave_share = x;
    }
    if let Some(x) = add(
        "policies.department_share",
        b.matters_departmental,
        b.matters_classified,
    ) {
        p.department_share = x;
    }
    fits
}

fn fit_durations(
    o: &Observed,
    services: &HashMap<(Stage, Level), Vec<f64>>,
    s: &mut Scenario,
) -> Vec<DurationFit> {
    let mut out = Vec::new();
    for stage in WORKING_STAGES {
        for level in LEVELS {
            let Some(values) = services.get(&(stage, level)) else {
                continue;
            };
            let Some(fit) = best_fit(values) else {
                continue;
            };
            let field = format!("service.{}.{}", stage.as_str(), snake_name(&level));
            // Work that took no time takes nobody in the model: leave the stage instantaneous.
            if !matches!(fit.spec, DistSpec::Fixed { value } if value <= 0.0) {
                s.service
                    .entry(stage.as_str().to_owned())
                    .or_default()
                    .insert(snake_name(&level), round_dist(fit.spec.clone()));
            }
            out.push(DurationFit { field, fit });
        }
    }
    let mut delay = |field: &str, values: &[f64]| -> Option<DistSpec> {
        let fit = best_fit(values)?;
        let spec = round_dist(fit.spec.clone());
        out.push(DurationFit {
            field: field.to_owned(),
            fit,
        });
        Some(spec)
    };
    s.delays.rectification = delay("delays.rectification", &o.rectification);
    s.delays.until_follow_up = delay("delays.until_follow_up", &o.until_follow_up);
    s.delays.hold_for_later = delay("delays.hold_for_later", &o.hold_for_later);
    out
}

fn assumptions(had_base: bool) -> Vec<String> {
    let mut notes = vec![
        "service times assume each unit serves its work first come, first served with the \
         scenario's staff; a unit that pooled work with its zone, or staff who worked on \
         several cases at once, shows longer service and less waiting than it had"
            .to_owned(),
        "the simulation starts with no open case: cases reported before the window are left \
         out, so start the window where the log starts to compare backlogs"
            .to_owned(),
    ];
    if !had_base {
        notes.push(
            "no --scenario given: staffing and working hours are the defaults (the log does \
             not record them)"
                .to_owned(),
        );
    }
    notes
}

/// Writes the scenario out and reads it back, so the result is exactly what the file says
/// and passes the scenario checks.
fn round_trip(s: &Scenario, options: &CalibrateOptions) -> Result<Scenario, SimError> {
    let text = toml::to_string(s).map_err(|e| {
        SimError::Scenario(ScenarioError::Invalid {
            field: "calibrated scenario".into(),
            reason: e.to_string(),
        })
    })?;
    let mut back = Scenario::from_toml_str(&text)?;
    back.base_dir = options
        .district_file
        .as_ref()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    Ok(back)
}

/// The calibrated scenario as TOML, with the fit summary as comments above it.
pub fn scenario_toml(cal: &Calibration) -> Result<String, SimError> {
    let body = toml::to_string(&cal.scenario).map_err(|e| {
        SimError::Scenario(ScenarioError::Invalid {
            field: "calibrated scenario".into(),
            reason: e.to_string(),
        })
    })?;
    let mut head = String::from(
        "# Calibrated from a Caseflow store by `caseflow simulate --calibrate`.\n\
         # Service times and delays: the shipped family with the smallest\n\
         # Kolmogorov-Smirnov statistic D (5% critical value 1.36/sqrt(n)).\n",
    );
    for d in &cal.durations {
        head.push_str(&format!(
            "#   {:<34} {:<12} n={:<6} D={:.4} (crit {:.4}){}\n",
            d.field,
            d.fit.family,
            d.fit.n,
            d.fit.ks,
            d.fit.critical_5pct(),
            if d.fit.accepted() {
                ""
            } else {
                " rejected at 5%"
            }
        ));
    }
    for note in &cal.notes {
        head.push_str(&format!("# note: {note}\n"));
    }
    Ok(format!("{head}\n{body}"))
}

/// One line of the side-by-side validation.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationRow {
    /// What is compared.
    pub metric: String,
    /// The log's value.
    pub log: f64,
    /// The simulated mean with its 95% interval.
    pub simulated: Estimate,
    /// The tolerance, in words.
    pub tolerance: String,
    /// Whether the simulation reproduces the log within it.
    pub within: bool,
}

/// The side-by-side KPIs of the log and of the calibrated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// Replications simulated.
    pub replications: usize,
    /// The rows.
    pub rows: Vec<ValidationRow>,
}

impl Validation {
    /// Whether every row is within its tolerance.
    pub fn all_within(&self) -> bool {
        self.rows.iter().all(|r| r.within)
    }
}

/// A row: within when the log's value is within `relative` of the simulated mean, or
/// inside the 95% prediction interval of one more run (mean ± t·sd·√(1 + 1/n) over the
/// replications: the log is one run, not a mean), whichever is wider; rates use the
/// `absolute` tolerance instead of a relative one.
fn row(
    metric: String,
    log: f64,
    runs: &[f64],
    relative: Option<f64>,
    absolute: f64,
) -> ValidationRow {
    let simulated = Estimate::from_samples(runs);
    let sd = if simulated.n > 1 {
        let m = simulated.mean;
        (runs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (runs.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    let n = simulated.n.max(2);
    let predict = crate::stats::t_975(n - 1) * sd * (1.0 + 1.0 / n as f64).sqrt();
    let band = relative.map_or(absolute, |r| r * log.abs()).max(predict);
    let tolerance = match relative {
        Some(r) => format!("{:.0}% or 95% PI", r * 100.0),
        None => format!("±{absolute} or 95% PI"),
    };
    ValidationRow {
        metric,
        log,
        simulated,
        tolerance,
        within: (simulated.mean - log).abs() <= band + 1e-9,
    }
}

/// Simulates the calibrated scenario (model only: the engine-driven run reports the same
/// KPIs, see `tests/engine.rs`) `replications` times on `district` and compares its KPIs
/// with the log's.
pub fn validate(
    cal: &Calibration,
    district: &DistrictChoice,
    seed: u64,
    replications: usize,
) -> Result<Validation, SimError> {
    let built = crate::district::build(&cal.scenario, district)?;
    let mut runs = Vec::with_capacity(replications);
    for r in 0..replications.max(2) {
        let seed = seed.wrapping_add(r as u64);
        let mut sim = Simulation::on_district(
            &cal.scenario,
            built.clone(),
            seed,
            RunOptions {
                record_steps: false,
                digest: false,
            },
        );
        sim.run_to_end()?;
        runs.push(crate::finish_summary(&sim, seed));
    }
    let log = &cal.log;
    let col = |f: &dyn Fn(&crate::Summary) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let mut rows = vec![
        row(
            "cases reported".into(),
            log.arrived as f64,
            &col(&|s| s.cases.arrived as f64),
            Some(0.10),
            0.0,
        ),
        row(
            "cases closed".into(),
            log.closed as f64,
            &col(&|s| s.cases.closed as f64),
            Some(0.10),
            0.0,
        ),
        row(
            "open at the end".into(),
            log.open_at_end as f64,
            &col(&|s| s.cases.open_at_end as f64),
            Some(0.15),
            0.0,
        ),
    ];
    for (i, st) in log.stages.iter().enumerate() {
        if st.entered == 0 {
            continue;
        }
        let get = |f: fn(&crate::kpi::StageKpi) -> f64| {
            runs.iter()
                .map(|s| s.stages.get(i).map_or(0.0, f))
                .collect::<Vec<f64>>()
        };
        rows.push(row(
            format!("{} entered", st.stage),
            st.entered as f64,
            &get(|k| k.entered as f64),
            Some(0.10),
            0.0,
        ));
        rows.push(row(
            format!("{} time in stage, mean days", st.stage),
            st.time_mean_days,
            &get(|k| k.time_mean_days),
            Some(0.15),
            0.0,
        ));
        rows.push(row(
            format!("{} time in stage, p90 days", st.stage),
            st.time_p90_days,
            &get(|k| k.time_p90_days),
            Some(0.20),
            0.0,
        ));
    }
    rows.push(row(
        "on-time rate".into(),
        log.on_time_rate,
        &col(&|s| s.on_time_rate),
        None,
        0.05,
    ));
    rows.extend(backlog_rows(log, &runs));
    Ok(Validation {
        replications: runs.len(),
        rows,
    })
}

/// The backlog curve: its mean and peak, and the open cases at each quarter of the window.
fn backlog_rows(log: &LogKpis, runs: &[crate::Summary]) -> Vec<ValidationRow> {
    let at = |s: &crate::Summary, hours: f64| -> f64 {
        s.backlog
            .iter()
            .min_by(|a, b| (a.hours - hours).abs().total_cmp(&(b.hours - hours).abs()))
            .map_or(0.0, |p| p.open as f64)
    };
    let log_mean =
        log.backlog.iter().map(|p| p.1 as f64).sum::<f64>() / log.backlog.len().max(1) as f64;
    let log_peak = log.backlog.iter().map(|p| p.1).max().unwrap_or(0) as f64;
    let mut rows = vec![
        row(
            "backlog, mean open".into(),
            log_mean,
            &runs
                .iter()
                .map(|s| {
                    s.backlog.iter().map(|p| p.open as f64).sum::<f64>()
                        / s.backlog.len().max(1) as f64
                })
                .collect::<Vec<_>>(),
            Some(0.15),
            0.0,
        ),
        row(
            "backlog, peak open".into(),
            log_peak,
            &runs
                .iter()
                .map(|s| s.backlog.iter().map(|p| p.open).max().unwrap_or(0) as f64)
                .collect::<Vec<_>>(),
            Some(0.15),
            0.0,
        ),
    ];
    let n = log.backlog.len();
    for q in [1, 2, 3, 4] {
        let Some((hours, open)) = log.backlog.get((n * q / 4).min(n.saturating_sub(1))) else {
            continue;
        };
        rows.push(row(
            format!("backlog at day {:.0}", hours / 24.0),
            *open as f64,
            &runs.iter().map(|s| at(s, *hours)).collect::<Vec<_>>(),
            Some(0.20),
            0.0,
        ));
    }
    rows
}

/// The calibration and its validation as text: the fits, then the side-by-side KPIs.
pub fn report_text(cal: &Calibration, validation: Option<&Validation>) -> String {
    let mut t = format!(
        "calibrated `{}` from {} events, {} cases reported in {} days from {}\n\n",
        cal.scenario.simulation.name,
        cal.events,
        cal.cases,
        cal.scenario.simulation.horizon_days,
        cal.scenario.simulation.start
    );
    t.push_str("arrivals (per year, 95% CI)\n");
    for a in &cal.arrivals {
        match a.batch {
            Some((from, to)) => t.push_str(&format!(
                "  {:<28} {:>6} reports  campaign batch on days {from}..{to}\n",
                a.channel, a.count
            )),
            None => t.push_str(&format!(
                "  {:<28} {:>6} reports  {:>9.1} ± {:.1} per year\n",
                a.channel, a.count, a.per_year.mean, a.per_year.half_width
            )),
        }
    }
    t.push_str("seasonality (chi-square against a flat rate, 1% level)\n");
    for s in &cal.seasonality {
        t.push_str(&format!(
            "  {:<8} chi2 = {:>8.2}  df {:>2}  critical {:>6.2}  {}\n",
            s.profile,
            s.chi_square,
            s.df,
            s.critical_1pct,
            if s.used { "profile used" } else { "flat" }
        ));
    }
    t.push_str("branch probabilities (95% CI)\n");
    for b in &cal.branches {
        if b.trials > 0 {
            t.push_str(&format!(
                "  {:<38} {:.4} ± {:.4}  ({}/{})\n",
                b.field, b.estimate.mean, b.estimate.half_width, b.hits, b.trials
            ));
        }
    }
    t.push_str("durations, working hours (family chosen by the Kolmogorov-Smirnov statistic D)\n");
    for d in &cal.durations {
        let others: Vec<String> = d
            .fit
            .candidates
            .iter()
            .map(|(f, ks)| format!("{f} {ks:.3}"))
            .collect();
        t.push_str(&format!(
            "  {:<34} {:<11} n={:<5} mean {:>7.2} sd {:>7.2}  D={:.4} crit {:.4}{}  [{}]\n",
            d.field,
            d.fit.family,
            d.fit.n,
            d.fit.mean,
            d.fit.sd,
            d.fit.ks,
            d.fit.critical_5pct(),
            if d.fit.accepted() { "" } else { " (rejected)" },
            others.join(", ")
        ));
    }
    for note in &cal.notes {
        t.push_str(&format!("note: {note}\n"));
    }
    if let Some(v) = validation {
        t.push_str(&format!(
            "\nvalidation: the log beside the calibrated scenario ({} replications, 95% CI)\n",
            v.replications
        ));
        t.push_str(&validation_table(v));
    }
    t
}

/// The side-by-side table in Markdown.
pub fn validation_table(v: &Validation) -> String {
    let mut t = String::from(
        "| KPI | log | simulated (95% CI) | tolerance | within |\n|---|---|---|---|---|\n",
    );
    for r in &v.rows {
        t.push_str(&format!(
            "| {} | {:.3} | {:.3} ± {:.3} | {} | {} |\n",
            r.metric,
            r.log,
            r.simulated.mean,
            r.simulated.half_width,
            r.tolerance,
            if r.within { "yes" } else { "NO" }
        ));
    }
    t
}

/// Kinds in [`CaseKind::ALL`] order (used by tests that build stores with known mixes).
pub fn kinds() -> &'static [CaseKind] {
    &CaseKind::ALL
}
