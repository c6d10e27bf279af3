//! The scenario format: everything a simulation run needs, read from TOML.
//!
//! Every field is documented in `docs/simulation.md`. Parsing never panics: syntax and type
//! errors name the field path (through `serde_path_to_error`), and [`Scenario::validate`]
//! checks the meaning of each value (probabilities in `[0, 1]`, positive rates, known units)
//! and names the offending field with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::dist::DistSpec;
use crate::error::ScenarioError;

/// Levels of the four-level linkage ("room, team, locality, village").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Supervision and inspection office (纪检监察室).
    Room,
    /// Dispatched inspection team (派出纪检监察组).
    Team,
    /// Town or street discipline commission (镇/街道纪(工)委).
    Locality,
    /// Village or community information officer (村级纪检监察信息员).
    Village,
}

impl Level {
    /// The level named `name`, if any.
    pub fn parse(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// All levels in their natural order.
    pub const ALL: [Level; 4] = [Level::Room, Level::Team, Level::Locality, Level::Village];

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Room => "room",
            Level::Team => "team",
            Level::Locality => "locality",
            Level::Village => "village",
        }
    }
}

/// The five stages of a case, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    /// Intake (受理): registering, merging duplicates, declining out-of-remit matters.
    Intake,
    /// Classification and routing (分类研判).
    Classification,
    /// Handling and verification (处置 / 核查).
    Handling,
    /// Rectification (整改): writing the plan; the rectification itself is a delay.
    Rectification,
    /// Review (回头看): the follow-up visit and the satisfaction question.
    Review,
}

impl StageName {
    /// The stage named `name`, if any.
    pub fn parse(name: &str) -> Option<StageName> {
        StageName::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// All stages in order.
    pub const ALL: [StageName; 5] = [
        StageName::Intake,
        StageName::Classification,
        StageName::Handling,
        StageName::Rectification,
        StageName::Review,
    ];

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Intake => "intake",
            StageName::Classification => "classification",
            StageName::Handling => "handling",
            StageName::Rectification => "rectification",
            StageName::Review => "review",
        }
    }

    /// Index into per-stage arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Kinds of case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// 投诉.
    Complaint,
    /// 咨询.
    Consultation,
    /// 意见建议.
    Suggestion,
    /// 问题线索.
    Clue,
}

impl CaseKind {
    /// All kinds.
    pub const ALL: [CaseKind; 4] = [
        CaseKind::Complaint,
        CaseKind::Consultation,
        CaseKind::Suggestion,
        CaseKind::Clue,
    ];

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::Complaint => "complaint",
            CaseKind::Consultation => "consultation",
            CaseKind::Suggestion => "suggestion",
            CaseKind::Clue => "clue",
        }
    }
}

/// Which clues get a cross-inspection verification team drawn from the zone's localities
/// (names as in the domain's `CrossInspectionScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CrossInspection {
    /// Only clues that involve a town or street (the report's rule): they are led by a room
    /// of the zone and verified by the zone's other localities.
    #[default]
    InvolvedLocalityOnly,
    /// Every discipline clue, also those about a department (a what-if): those too are led by
    /// a room of the zone and verified by the zone's localities instead of the stationed team.
    AllClues,
}

/// Dispositions of a clue the simulator can choose (domain names).
pub const DISPOSITIONS: [&str; 3] = [
    "preliminary_verification",
    "talk_or_letter_inquiry",
    "close_without_action",
];

/// A whole scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, horizon, seed, sampling.
    pub simulation: SimulationSection,
    /// The district: how many units of each level and how they form zones.
    #[serde(default)]
    pub organisation: OrganisationSection,
    /// Working days, working hours, UTC offset.
    #[serde(default)]
    pub calendar: CalendarSection,
    /// Arrival processes and the mix of what arrives.
    pub arrivals: ArrivalsSection,
    /// People per unit.
    #[serde(default)]
    pub staffing: StaffingSection,
    /// Service-time distributions per stage and level (hours of working time), e.g.
    /// `[service.handling] locality = { dist = "lognormal", mean = 24, sd = 16 }`. Keys are
    /// stage and level names (strings here so that a wrong key is reported by name).
    #[serde(default)]
    pub service: BTreeMap<String, BTreeMap<String, DistSpec>>,
    /// Durations that do not occupy staff (hours of working time).
    #[serde(default)]
    pub delays: DelaysSection,
    /// Probabilities of each branch of the workflow.
    #[serde(default)]
    pub outcomes: OutcomesSection,
    /// Routing and time-limit policies.
    #[serde(default)]
    pub policies: PoliciesSection,
    /// Directory the scenario was read from (to resolve `simulation.district`); not in TOML.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
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
    /// Optional district file (organisation TOML of the engine), relative to the scenario.
    #[serde(default)]
    pub district: Option<PathBuf>,
}

fn default_seed() -> u64 {
    1
}
fn default_sample_hours() -> f64 {
    24.0
}

/// `[organisation]`: the generated district layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationSection {
    /// Number of collaboration zones.
    pub zones: u32,
    /// Number of supervision and inspection offices.
    pub rooms: u32,
    /// Number of dispatched inspection teams.
    pub teams: u32,
    /// Number of towns/streets.
    pub localities: u32,
    /// Number of villages/communities (one information officer each).
    pub villages: u32,
    /// Optional explicit assignment of units to zones, overriding the round-robin layout.
    #[serde(default)]
    pub zone_of: BTreeMap<String, String>,
}

impl Default for OrganisationSection {
    fn default() -> Self {
        Self {
            zones: 3,
            rooms: 5,
            teams: 5,
            localities: 10,
            villages: 103,
            zone_of: BTreeMap::new(),
        }
    }
}

/// `[calendar]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSection {
    /// Offset of local time from UTC in hours.
    #[serde(default = "default_offset")]
    pub utc_offset_hours: i32,
    /// Staff work around the clock every day (for textbook queue models).
    #[serde(default)]
    pub always_open: bool,
    /// Start of the working day, local hours (8.5 = 08:30).
    #[serde(default = "default_work_start")]
    pub work_start_hour: f64,
    /// End of the working day, local hours.
    #[serde(default = "default_work_end")]
    pub work_end_hour: f64,
    /// Days of the week off: `mon` … `sun`.
    #[serde(default = "default_weekend")]
    pub weekend: Vec<String>,
    /// Public holidays (no work even on weekdays).
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Make-up working days (work even on a weekend day).
    #[serde(default)]
    pub makeup_days: Vec<NaiveDate>,
}

fn default_offset() -> i32 {
    8
}
fn default_work_start() -> f64 {
    8.5
}
fn default_work_end() -> f64 {
    17.5
}
fn default_weekend() -> Vec<String> {
    vec!["sat".into(), "sun".into()]
}

impl Default for CalendarSection {
    fn default() -> Self {
        Self {
            utc_offset_hours: default_offset(),
            always_open: false,
            work_start_hour: default_work_start(),
            work_end_hour: default_work_end(),
            weekend: default_weekend(),
            holidays: Vec::new(),
            makeup_days: Vec::new(),
        }
    }
}

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
    /// Share of arrivals that duplicate an open case and are merged at intake.
    #[serde(default)]
    pub duplicate_share: f64,
    /// Default mix of kinds (weights) for channels without their own.
    pub kind_mix: BTreeMap<CaseKind, f64>,
    /// Mix of focus areas (weights; free names such as `living_environment`).
    #[serde(default)]
    pub focus_mix: BTreeMap<String, f64>,
    /// Weights of the localities (by index, `loc-1` first); default uniform.
    #[serde(default)]
    pub locality_weights: Option<Vec<f64>>,
    /// Arrival channels.
    pub channel: Vec<ChannelSpec>,
}

/// One `[[arrivals.channel]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// Channel name, e.g. `online_photo_app` or `hotline`.
    pub name: String,
    /// Mean number of arrivals per year (Poisson; shaped by the profiles).
    #[serde(default)]
    pub per_year: Option<f64>,
    /// Mean number of arrivals per hour, flat (no profiles); for textbook queue models.
    #[serde(default)]
    pub per_hour: Option<f64>,
    /// Mix of kinds for this channel (weights); default `arrivals.kind_mix`.
    #[serde(default)]
    pub kind_mix: Option<BTreeMap<CaseKind, f64>>,
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
    /// People per unit of each level.
    #[serde(default = "default_staff")]
    pub per_level: BTreeMap<Level, u32>,
    /// Overrides per unit id (`room-1`, `loc-3`, …).
    #[serde(default)]
    pub per_unit: BTreeMap<String, u32>,
}

fn default_staff() -> BTreeMap<Level, u32> {
    BTreeMap::from([
        (Level::Room, 4),
        (Level::Team, 3),
        (Level::Locality, 3),
        (Level::Village, 1),
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
    /// Weights of clue dispositions: `preliminary_verification`, `talk_or_letter_inquiry`
    /// (both lead to verification) and `close_without_action` (closed at once). Default: all
    /// clues get preliminary verification.
    #[serde(default)]
    pub disposition: BTreeMap<String, f64>,
    /// Number of people disciplined for a substantiated clue (a distribution over counts;
    /// values are rounded to whole people).
    #[serde(default)]
    pub disciplined_people: Option<DistSpec>,
    /// Probability that the follow-up visit finds the rectification did not hold.
    #[serde(default)]
    pub follow_up_fails: f64,
    /// Probability that the reporter is satisfied or basically satisfied (asked at review);
    /// an unsatisfied reporter reopens the case.
    #[serde(default = "one")]
    pub satisfied: f64,
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
            follow_up_fails: 0.0,
            satisfied: 1.0,
            max_reopen: 2,
        }
    }
}

/// `[policies]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesSection {
    /// Which clues get a cross-inspection team.
    #[serde(default)]
    pub cross_inspection: CrossInspection,
    /// Share of clues that involve a town or street (the rest concern a department).
    #[serde(default = "default_involves")]
    pub clue_involves_locality: f64,
    /// Share of cases classified as serious (较重) rather than ordinary.
    #[serde(default = "half")]
    pub serious_share: f64,
    /// Share of complaints/suggestions about a department (handled by its stationed team);
    /// the rest are handled by the locality.
    #[serde(default)]
    pub department_share: f64,
    /// Time limits in working days per stage.
    #[serde(default)]
    pub time_limits_days: BTreeMap<StageName, u32>,
    /// Levels that may take case work from another unit of the same zone (zone pooling).
    #[serde(default)]
    pub zone_pooling: Vec<Level>,
}

fn default_involves() -> f64 {
    0.8
}

impl Default for PoliciesSection {
    fn default() -> Self {
        Self {
            cross_inspection: CrossInspection::default(),
            clue_involves_locality: default_involves(),
            serious_share: 0.5,
            department_share: 0.0,
            time_limits_days: BTreeMap::new(),
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
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
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

    /// The district file path resolved against the scenario's directory.
    pub fn district_path(&self) -> Option<PathBuf> {
        let rel = self.simulation.district.as_ref()?;
        Some(match &self.base_dir {
            Some(dir) if rel.is_relative() => dir.join(rel),
            _ => rel.clone(),
        })
    }

    /// Checks the meaning of every value; the error names the field and the reason.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let sim = &self.simulation;
        if sim.name.trim().is_empty() {
            return invalid("simulation.name", "must not be empty");
        }
        if sim.horizon_days == 0 {
            return invalid("simulation.horizon_days", "must be at least 1");
        }
        if sim.horizon_days > 366 * 50 {
            return invalid("simulation.horizon_days", "must be at most 50 years");
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
        let org = &self.organisation;
        for (field, value) in [
            ("organisation.zones", org.zones),
            ("organisation.rooms", org.rooms),
            ("organisation.localities", org.localities),
            ("organisation.villages", org.villages),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1");
            }
            if value > 100_000 {
                return invalid(field, "must be at most 100000");
            }
        }
        if org.teams > 100_000 {
            return invalid("organisation.teams", "must be at most 100000");
        }
        let known_units = self.unit_ids();
        for (unit, zone) in &org.zone_of {
            if !known_units.iter().any(|u| u == unit) {
                return invalid(
                    &format!("organisation.zone_of.{unit}"),
                    "names no unit of this organisation (ids are room-N, team-N, loc-N)",
                );
            }
            let ok = zone
                .strip_prefix("zone-")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 1 && n <= org.zones);
            if !ok {
                return invalid(
                    &format!("organisation.zone_of.{unit}"),
                    &format!("zone `{zone}` is not one of zone-1 .. zone-{}", org.zones),
                );
            }
        }
        let cal = &self.calendar;
        if !(-14..=14).contains(&cal.utc_offset_hours) {
            return invalid("calendar.utc_offset_hours", "must lie between -14 and 14");
        }
        if !cal.always_open {
            if !(0.0..24.0).contains(&cal.work_start_hour) {
                return invalid("calendar.work_start_hour", "must lie in [0, 24)");
            }
            if !(cal.work_end_hour > cal.work_start_hour && cal.work_end_hour <= 24.0) {
                return invalid(
                    "calendar.work_end_hour",
                    "must be after work_start_hour and <= 24",
                );
            }
        }
        for (i, day) in cal.weekend.iter().enumerate() {
            if crate::calendar::parse_weekday(day).is_none() {
                return invalid(
                    &format!("calendar.weekend[{i}]"),
                    &format!("`{day}` is not a weekday (mon, tue, wed, thu, fri, sat, sun)"),
                );
            }
        }
        if cal.weekend.len() >= 7 && cal.makeup_days.is_empty() && !cal.always_open {
            return invalid("calendar.weekend", "leaves no working day");
        }
        let arr = &self.arrivals;
        check_profile(
            "arrivals.weekday_profile",
            arr.weekday_profile.as_deref(),
            7,
        )?;
        check_profile("arrivals.month_profile", arr.month_profile.as_deref(), 12)?;
        check_probability("arrivals.duplicate_share", arr.duplicate_share)?;
        check_weights("arrivals.kind_mix", arr.kind_mix.values().copied())?;
        if !arr.focus_mix.is_empty() {
            check_weights("arrivals.focus_mix", arr.focus_mix.values().copied())?;
        }
        if let Some(w) = &arr.locality_weights {
            if w.len() != org.localities as usize {
                return invalid(
                    "arrivals.locality_weights",
                    &format!(
                        "has {} values but the organisation has {} localities",
                        w.len(),
                        org.localities
                    ),
                );
            }
            check_weights("arrivals.locality_weights", w.iter().copied())?;
        }
        if arr.channel.is_empty() {
            return invalid("arrivals.channel", "needs at least one channel");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, ch) in arr.channel.iter().enumerate() {
            let f = |rest: &str| format!("arrivals.channel[{i}].{rest}");
            if ch.name.trim().is_empty() {
                return invalid(&f("name"), "must not be empty");
            }
            if !names.insert(ch.name.as_str()) {
                return invalid(
                    &f("name"),
                    &format!("channel `{}` is defined twice", ch.name),
                );
            }
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
                if !(r.is_finite() && r > 0.0 && r <= 1e9) {
                    return invalid(&f("per_year"), "must be a positive rate (at most 1e9)");
                }
            }
            if let Some(r) = ch.per_hour {
                if !(r.is_finite() && r > 0.0 && r <= 1e6) {
                    return invalid(&f("per_hour"), "must be a positive rate (at most 1e6)");
                }
            }
            if let Some(b) = &ch.batch {
                if b.to_day <= b.from_day {
                    return invalid(&f("batch.to_day"), "must be after batch.from_day");
                }
                if b.from_day >= sim.horizon_days {
                    return invalid(&f("batch.from_day"), "lies beyond the horizon");
                }
            }
            if let Some(mix) = &ch.kind_mix {
                check_weights(&f("kind_mix"), mix.values().copied())?;
            }
        }
        for (level, n) in &self.staffing.per_level {
            if *n == 0 {
                return invalid(
                    &format!("staffing.per_level.{}", level.as_str()),
                    "must be at least 1 person",
                );
            }
        }
        for (unit, n) in &self.staffing.per_unit {
            if !known_units.iter().any(|u| u == unit) && !unit.starts_with("vil-") {
                return invalid(
                    &format!("staffing.per_unit.{unit}"),
                    "names no unit of this organisation",
                );
            }
            if *n == 0 {
                return invalid(
                    &format!("staffing.per_unit.{unit}"),
                    "must be at least 1 person",
                );
            }
        }
        for (stage, per_level) in &self.service {
            if !StageName::ALL.iter().any(|s| s.as_str() == stage) {
                return invalid(
                    &format!("service.{stage}"),
                    "unknown stage; use intake, classification, handling, rectification or review",
                );
            }
            for (level, dist) in per_level {
                if !Level::ALL.iter().any(|l| l.as_str() == level) {
                    return invalid(
                        &format!("service.{stage}.{level}"),
                        "unknown level; use room, team, locality or village",
                    );
                }
                dist.validate(&format!("service.{stage}.{level}"))?;
            }
        }
        if let Some(d) = &self.delays.rectification {
            d.validate("delays.rectification")?;
        }
        if let Some(d) = &self.delays.until_follow_up {
            d.validate("delays.until_follow_up")?;
        }
        let out = &self.outcomes;
        for (field, p) in [
            ("outcomes.accept", out.accept),
            (
                "outcomes.transfer_share_of_rejected",
                out.transfer_share_of_rejected,
            ),
            ("outcomes.substantiated", out.substantiated),
            ("outcomes.partly_substantiated", out.partly_substantiated),
            ("outcomes.follow_up_fails", out.follow_up_fails),
            ("outcomes.satisfied", out.satisfied),
            ("policies.serious_share", self.policies.serious_share),
            (
                "policies.clue_involves_locality",
                self.policies.clue_involves_locality,
            ),
            ("policies.department_share", self.policies.department_share),
        ] {
            check_probability(field, p)?;
        }
        if out.substantiated + out.partly_substantiated > 1.0 + 1e-9 {
            return invalid(
                "outcomes.partly_substantiated",
                "substantiated + partly_substantiated must not exceed 1",
            );
        }
        if !out.disposition.is_empty() {
            for name in out.disposition.keys() {
                if !DISPOSITIONS.contains(&name.as_str()) {
                    return invalid(
                        &format!("outcomes.disposition.{name}"),
                        &format!(
                            "unknown disposition; use one of {}",
                            DISPOSITIONS.join(", ")
                        ),
                    );
                }
            }
            check_weights("outcomes.disposition", out.disposition.values().copied())?;
        }
        if let Some(d) = &out.disciplined_people {
            d.validate("outcomes.disciplined_people")?;
        }
        if out.max_reopen > 100 {
            return invalid("outcomes.max_reopen", "must be at most 100");
        }
        for (stage, days) in &self.policies.time_limits_days {
            if *days == 0 || *days > 3650 {
                return invalid(
                    &format!("policies.time_limits_days.{}", stage.as_str()),
                    "must be between 1 and 3650 working days",
                );
            }
        }
        if self.policies.department_share > 0.0 && org.teams == 0 {
            return invalid(
                "policies.department_share",
                "needs at least one team in the organisation",
            );
        }
        Ok(())
    }

    /// Kinds with a positive weight in any channel's mix.
    pub fn kinds_arriving(&self) -> Vec<CaseKind> {
        let mut kinds: Vec<CaseKind> = Vec::new();
        for ch in &self.arrivals.channel {
            for (k, w) in ch.kind_mix.as_ref().unwrap_or(&self.arrivals.kind_mix) {
                if *w > 0.0 && !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
        }
        kinds
    }

    /// Ids of the rooms, teams and localities this scenario's organisation has.
    pub fn unit_ids(&self) -> Vec<String> {
        let org = &self.organisation;
        let mut ids = Vec::new();
        ids.extend((1..=org.rooms).map(|i| format!("room-{i}")));
        ids.extend((1..=org.teams).map(|i| format!("team-{i}")));
        ids.extend((1..=org.localities).map(|i| format!("loc-{i}")));
        ids
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

fn invalid<T>(field: &str, reason: &str) -> Result<T, ScenarioError> {
    Err(ScenarioError::Invalid {
        field: field.to_string(),
        reason: reason.to_string(),
    })
}

fn check_probability(field: &str, p: f64) -> Result<(), ScenarioError> {
    if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
        return invalid(field, &format!("must be a probability in [0, 1], got {p}"));
    }
    Ok(())
}

fn check_weights(field: &str, weights: impl Iterator<Item = f64>) -> Result<(), ScenarioError> {
    let mut sum = 0.0;
    let mut n = 0;
    for w in weights {
        if !(w.is_finite() && w >= 0.0) {
            return invalid(field, &format!("weights must be finite and >= 0, got {w}"));
        }
        sum += w;
        n += 1;
    }
    if n == 0 || sum <= 0.0 {
        return invalid(field, "needs at least one positive weight");
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
    check_weights(field, p.iter().copied())
}
