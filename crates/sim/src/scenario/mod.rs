//! The scenario format: everything a simulation run needs, read from TOML.
//!
//! Every field is documented in `docs/simulation.md`. Values that name something of the
//! workflow (a channel, a kind, a disposition, a level, a stage, a time limit) use the
//! domain's own names and are parsed into the domain's types; an unknown name is an error
//! that names the field and lists the names that exist. Parsing never panics: syntax and type
//! errors name the field path (through `serde_path_to_error`), and [`Scenario::validate`]
//! checks the meaning of each value and names the offending field with the reason.
//!
//! The organisation a run uses is built by [`crate::district`]: either the scenario's
//! `[organisation]` generates the district, or `simulation.district` names a district file.
//! The model and the engine then run on that one district.

mod names;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use caseflow::domain::{
    CaseKind, Channel, CrossInspectionScope, Disposition, FocusArea, Level, Satisfaction, Stage,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::dist::DistSpec;
use crate::error::ScenarioError;

pub use names::{WORKING_STAGES, domain_name, snake_name};
pub(crate) use validate::refuse_generated_organisation;
pub use validate::{MAX_COUNT, MAX_EXPECTED_ARRIVALS};

/// A whole scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, horizon, seed, sampling, district file.
    pub simulation: SimulationSection,
    /// The district to generate (when no district file is named), or the number of zones to
    /// lay a district file's units out over.
    #[serde(default)]
    pub organisation: OrganisationSection,
    /// Working hours, and changes to the district's working calendar.
    #[serde(default)]
    pub calendar: CalendarSection,
    /// Arrival processes and the mix of what arrives.
    pub arrivals: ArrivalsSection,
    /// People per unit.
    #[serde(default)]
    pub staffing: StaffingSection,
    /// Service-time distributions per stage and level (hours of working time), e.g.
    /// `[service.handling] locality = { dist = "lognormal", mean = 24, sd = 16 }`. Keys are
    /// the domain's stage and level names (strings here so that a wrong key is reported by
    /// name rather than as `?`).
    #[serde(default)]
    pub service: BTreeMap<String, BTreeMap<String, DistSpec>>,
    /// Durations that do not occupy staff (hours of working time).
    #[serde(default)]
    pub delays: DelaysSection,
    /// Probabilities of each branch of the workflow.
    #[serde(default)]
    pub outcomes: OutcomesSection,
    /// What the classification draws, cross-inspection scope and zone pooling.
    #[serde(default)]
    pub policies: PoliciesSection,
    /// Changes to the district's time limits, in working days, by the domain's names
    /// (`intake_decision_days`, `clue_handling_days`, ...). The engine and the model both run
    /// with the result.
    #[serde(default)]
    pub time_limits: BTreeMap<String, u32>,
    /// Directory the scenario was read from (to resolve `simulation.district`); not in TOML.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    /// What validation changed on purpose (weights normalised), for the caller to print.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// `[simulation]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationSection {
    /// Human-readable name shown in reports.
    pub name: String,
    /// First simulated day (local date).
    pub start: NaiveDate,
    /// Number of calendar days during which cases arrive.
    pub horizon_days: u32,
    /// Extra calendar days after the horizon in which work continues but nothing arrives.
    #[serde(default)]
    pub drain_days: u32,
    /// Cases arriving in the first `warmup_days` are simulated but left out of the KPIs.
    #[serde(default)]
    pub warmup_days: u32,
    /// Master seed; overridden by `--seed`.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Interval of the backlog time series, in hours.
    #[serde(default = "default_sample_hours")]
    pub sample_every_hours: f64,
    /// A district file (the engine's organisation TOML), relative to the scenario. Without
    /// it, `[organisation]` generates the district.
    #[serde(default)]
    pub district: Option<PathBuf>,
}

fn default_seed() -> u64 {
    1
}
fn default_sample_hours() -> f64 {
    24.0
}

/// `[organisation]`. Without a district file every count has a default (the sample district's
/// 3 zones, 5 rooms, 5 teams, 10 localities, 103 villages). With a district file only
/// `zones` may be given: the file's rooms, teams and localities are then laid out round-robin
/// over that many zones; every other field is refused (the file defines the units).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationSection {
    /// Number of collaboration zones.
    #[serde(default)]
    pub zones: Option<u32>,
    /// Number of supervision and inspection offices.
    #[serde(default)]
    pub rooms: Option<u32>,
    /// Number of dispatched inspection teams (each stationed in its own department).
    #[serde(default)]
    pub teams: Option<u32>,
    /// Number of towns/streets.
    #[serde(default)]
    pub localities: Option<u32>,
    /// Number of villages/communities (one information officer each), spread over the
    /// localities round-robin.
    #[serde(default)]
    pub villages: Option<u32>,
    /// Explicit assignment of generated units to zones, overriding the round-robin layout.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zone_of: BTreeMap<String, String>,
}

/// The generated organisation's counts when the scenario gives none (the sample district's).
pub const DEFAULT_ORGANISATION: GeneratedCounts = GeneratedCounts {
    zones: 3,
    rooms: 5,
    teams: 5,
    localities: 10,
    villages: 103,
};

/// The counts of a generated organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedCounts {
    /// Zones.
    pub zones: u32,
    /// Rooms.
    pub rooms: u32,
    /// Teams.
    pub teams: u32,
    /// Localities.
    pub localities: u32,
    /// Villages.
    pub villages: u32,
}

impl OrganisationSection {
    /// The counts to generate, with defaults filled in.
    pub fn counts(&self) -> GeneratedCounts {
        let d = DEFAULT_ORGANISATION;
        GeneratedCounts {
            zones: self.zones.unwrap_or(d.zones),
            rooms: self.rooms.unwrap_or(d.rooms),
            teams: self.teams.unwrap_or(d.teams),
            localities: self.localities.unwrap_or(d.localities),
            villages: self.villages.unwrap_or(d.villages),
        }
    }
}

/// `[calendar]`. Working *days* are the district calendar's (weekends, public holidays,
/// make-up working days); these fields set the working *hours* staff work, and may change the
/// district calendar itself (offset, holidays, make-up days, end of the working day), which
/// the engine then uses too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSection {
    /// Offset of local time from UTC in hours (replaces the district's).
    #[serde(default)]
    pub utc_offset_hours: Option<i32>,
    /// Staff work around the clock every day (for textbook queue models). Time limits still
    /// count the district's working days.
    #[serde(default)]
    pub always_open: bool,
    /// Start of the working day, local hours (default 8.5 = 08:30).
    #[serde(default)]
    pub work_start_hour: Option<f64>,
    /// End of the working day, local hours; it is also when a time limit falls due (the
    /// district's `day_end`, default 17:30).
    #[serde(default)]
    pub work_end_hour: Option<f64>,
    /// Days of the week off. The domain's calendar has Saturday and Sunday off; only that
    /// value is accepted (use `holidays` and `makeup_days` for other days).
    #[serde(default)]
    pub weekend: Option<Vec<String>>,
    /// Public holidays (replaces the district's list).
    #[serde(default)]
    pub holidays: Option<Vec<NaiveDate>>,
    /// Make-up working days (replaces the district's list).
    #[serde(default)]
    pub makeup_days: Option<Vec<NaiveDate>>,
}

/// Default start of the working day (08:30).
pub const DEFAULT_WORK_START_HOUR: f64 = 8.5;

/// `[arrivals]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalsSection {
    /// Multipliers per weekday, Monday first (7 values); mean-normalised internally.
    #[serde(default)]
    pub weekday_profile: Option<Vec<f64>>,
    /// Multipliers per month, January first (12 values); mean-normalised internally.
    #[serde(default)]
    pub month_profile: Option<Vec<f64>>,
    /// Multipliers per local hour of the day, 00:00 first (24 values); mean-normalised.
    #[serde(default)]
    pub hour_profile: Option<Vec<f64>>,
    /// Share of arrivals that duplicate an open case and are merged at intake.
    #[serde(default)]
    pub duplicate_share: f64,
    /// Share of reporters who give their name and phone (protected in the store).
    #[serde(default)]
    pub named_reporter_share: f64,
    /// Mix of kinds (weights by the domain's kind names) for channels without their own.
    pub kind_mix: BTreeMap<String, f64>,
    /// Mix of focus areas (weights by the domain's focus-area names); default uniform.
    #[serde(default)]
    pub focus_mix: BTreeMap<String, f64>,
    /// Weights of the localities by unit id; a locality not named has weight 1.
    #[serde(default)]
    pub locality_weights: BTreeMap<String, f64>,
    /// Arrival channels.
    pub channel: Vec<ChannelSpec>,
}

/// One `[[arrivals.channel]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// The domain's channel, e.g. `hotline` or `photo_report_app`.
    pub name: Channel,
    /// Mean number of arrivals per year (Poisson; shaped by the profiles).
    #[serde(default)]
    pub per_year: Option<f64>,
    /// Mean number of arrivals per hour, flat (no profiles); for textbook queue models.
    #[serde(default)]
    pub per_hour: Option<f64>,
    /// Mix of kinds for this channel (weights); default `arrivals.kind_mix`.
    #[serde(default)]
    pub kind_mix: Option<BTreeMap<String, f64>>,
    /// A one-off batch (a campaign or a follow-up round): `count` cases spread uniformly
    /// over `[from_day, to_day)` instead of a Poisson stream.
    #[serde(default)]
    pub batch: Option<BatchSpec>,
}

/// A campaign batch of arrivals.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// Number of cases.
    pub count: u32,
    /// First day (offset from the start) of the window.
    pub from_day: u32,
    /// Day after the last day of the window.
    pub to_day: u32,
}

/// `[staffing]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffingSection {
    /// People per unit of each level (`room`, `team`, `locality`, `village`).
    #[serde(default = "default_staff")]
    pub per_level: BTreeMap<String, u32>,
    /// Overrides per unit id of the run's district.
    #[serde(default)]
    pub per_unit: BTreeMap<String, u32>,
}

fn default_staff() -> BTreeMap<String, u32> {
    BTreeMap::from([
        ("room".to_owned(), 4),
        ("team".to_owned(), 3),
        ("locality".to_owned(), 3),
        ("village".to_owned(), 1),
    ])
}

impl Default for StaffingSection {
    fn default() -> Self {
        Self {
            per_level: default_staff(),
            per_unit: BTreeMap::new(),
        }
    }
}

/// `[delays]`: durations that take time but no staff.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DelaysSection {
    /// Time the responsible unit needs to carry out a rectification after its plan.
    #[serde(default)]
    pub rectification: Option<DistSpec>,
    /// Time from the end of rectification to the follow-up visit.
    #[serde(default)]
    pub until_follow_up: Option<DistSpec>,
    /// Time a clue held for later (`hold_for_later`) waits before it is decided again;
    /// required when that disposition has a weight.
    #[serde(default)]
    pub hold_for_later: Option<DistSpec>,
}

/// `[outcomes]`: branch probabilities.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomesSection {
    /// Probability that a non-duplicate case is accepted (else declined or transferred).
    #[serde(default = "one")]
    pub accept: f64,
    /// Of the cases not accepted, the share transferred to another authority.
    #[serde(default)]
    pub transfer_share_of_rejected: f64,
    /// Probability that a complaint, suggestion or clue is substantiated (fully). Substantiated
    /// and partly substantiated cases are rectified; others are closed as not substantiated.
    #[serde(default = "half")]
    pub substantiated: f64,
    /// Probability that it is partly substantiated.
    #[serde(default)]
    pub partly_substantiated: f64,
    /// Weights of clue dispositions by the domain's names (`talk_or_letter_inquiry`,
    /// `preliminary_verification`, `hold_for_later`, `close_without_action`). Default: all
    /// clues get preliminary verification.
    #[serde(default)]
    pub disposition: BTreeMap<String, f64>,
    /// Number of people disciplined for a substantiated clue (a distribution over counts;
    /// values are rounded to whole people).
    #[serde(default)]
    pub disciplined_people: Option<DistSpec>,
    /// Probability that a rectification reports its progress half way.
    #[serde(default)]
    pub progress_report: f64,
    /// Probability that the follow-up visit finds the rectification did not hold.
    #[serde(default)]
    pub follow_up_fails: f64,
    /// Weights of the reporter's answer by the domain's names (`satisfied`,
    /// `basically_satisfied`, `unsatisfied`); an unsatisfied reporter reopens the case.
    /// Default: all satisfied.
    #[serde(default)]
    pub satisfaction: BTreeMap<String, f64>,
    /// A case is reopened at most this many times; after that, its reviews pass (the loop
    /// ends, as the domain allows closing only after a passed review).
    #[serde(default = "default_reopen")]
    pub max_reopen: u32,
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn default_reopen() -> u32 {
    2
}

impl Default for OutcomesSection {
    fn default() -> Self {
        Self {
            accept: 1.0,
            transfer_share_of_rejected: 0.0,
            substantiated: 0.5,
            partly_substantiated: 0.0,
            disposition: BTreeMap::new(),
            disciplined_people: None,
            progress_report: 0.0,
            follow_up_fails: 0.0,
            satisfaction: BTreeMap::new(),
            max_reopen: 2,
        }
    }
}

/// `[policies]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesSection {
    /// Which clues get a cross-inspection team (the domain's `CrossInspectionScope`; set on
    /// the run's district).
    #[serde(default)]
    pub cross_inspection: CrossInspectionScope,
    /// Share of clues that involve their town or street (the rest concern a department).
    #[serde(default = "default_involves")]
    pub clue_involves_locality: f64,
    /// Share of cases classified serious (较重).
    #[serde(default = "half")]
    pub serious_share: f64,
    /// Share of cases classified grave (重大); a grave clue needs a joint consultation.
    #[serde(default)]
    pub grave_share: f64,
    /// Share of complaints and suggestions about a department (the routing policy sends them
    /// to the team stationed there).
    #[serde(default)]
    pub department_share: f64,
    /// Levels whose units take work from a busy peer of the same zone (zone pooling).
    #[serde(default)]
    pub zone_pooling: Vec<Level>,
}

fn default_involves() -> f64 {
    0.8
}

impl Default for PoliciesSection {
    fn default() -> Self {
        Self {
            cross_inspection: CrossInspectionScope::default(),
            clue_involves_locality: default_involves(),
            serious_share: 0.5,
            grave_share: 0.0,
            department_share: 0.0,
            zone_pooling: Vec::new(),
        }
    }
}

impl Scenario {
    /// Parses and validates a scenario from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Scenario, ScenarioError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ScenarioError::Syntax {
            message: e.to_string(),
        })?;
        let mut scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let mut reason = first_line(inner.message());
            if let Some(span) = inner.span() {
                let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
                reason = format!("{reason} (line {line})");
            }
            ScenarioError::Invalid { field, reason }
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn from_path(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut scenario = Self::from_toml_str(&text)?;
        scenario.base_dir = path.parent().map(Path::to_path_buf);
        Ok(scenario)
    }

    /// The district file path resolved against the scenario's directory (absolute where the
    /// working directory is known, so an error can show exactly which file was meant).
    pub fn district_path(&self) -> Option<PathBuf> {
        let rel = self.simulation.district.as_ref()?;
        let joined = match &self.base_dir {
            Some(dir) if rel.is_relative() => dir.join(rel),
            _ => rel.clone(),
        };
        Some(std::path::absolute(&joined).unwrap_or(joined))
    }

    /// Checks the meaning of every value; the error names the field and the reason. Weights
    /// that do not sum to 1 are normalised, with a note in [`Scenario::notes`].
    pub fn validate(&mut self) -> Result<(), ScenarioError> {
        validate::validate(self)
    }

    /// The kind weights of channel `i`, in [`CaseKind::ALL`] order.
    pub fn kind_weights(&self, channel: usize) -> [f64; 4] {
        let mix = self
            .arrivals
            .channel
            .get(channel)
            .and_then(|c| c.kind_mix.as_ref())
            .unwrap_or(&self.arrivals.kind_mix);
        let mut w = [0.0; 4];
        for (name, weight) in mix {
            if let Some(i) = CaseKind::ALL
                .iter()
                .position(|k| snake_name(k) == name.as_str())
            {
                w[i] = *weight;
            }
        }
        w
    }

    /// The focus areas and their weights (uniform over all when the scenario gives none).
    pub fn focus_weights(&self) -> Vec<(FocusArea, f64)> {
        if self.arrivals.focus_mix.is_empty() {
            return FocusArea::ALL.iter().map(|f| (*f, 1.0)).collect();
        }
        parsed_weights(&self.arrivals.focus_mix)
    }

    /// The clue dispositions and their weights (default: all preliminary verification).
    pub fn disposition_weights(&self) -> Vec<(Disposition, f64)> {
        if self.outcomes.disposition.is_empty() {
            return vec![(Disposition::PreliminaryVerification, 1.0)];
        }
        parsed_weights(&self.outcomes.disposition)
    }

    /// The reporters' answers and their weights (default: all satisfied).
    pub fn satisfaction_weights(&self) -> Vec<(Satisfaction, f64)> {
        if self.outcomes.satisfaction.is_empty() {
            return vec![(Satisfaction::Satisfied, 1.0)];
        }
        parsed_weights(&self.outcomes.satisfaction)
    }

    /// The service-time distribution of a stage's work at a level, if the scenario gives one.
    pub fn service_spec(&self, stage: Stage, level: Level) -> Option<&DistSpec> {
        self.service
            .get(stage.as_str())?
            .get(snake_name(&level).as_str())
    }

    /// People per unit of a level (1 when the scenario names none for the level).
    pub fn staff_per_level(&self, level: Level) -> u32 {
        self.staffing
            .per_level
            .get(snake_name(&level).as_str())
            .copied()
            .unwrap_or(1)
    }
}

/// Weights keyed by domain names, parsed (validation has checked every name).
fn parsed_weights<T: serde::de::DeserializeOwned>(map: &BTreeMap<String, f64>) -> Vec<(T, f64)> {
    map.iter()
        .filter_map(|(name, w)| names::parse_snake::<T>(name).map(|v| (v, *w)))
        .collect()
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}
