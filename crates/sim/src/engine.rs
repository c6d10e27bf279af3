//! Driving the real engine: every simulated step becomes one domain command, executed by
//! [`caseflow::Engine`] with a [`ManualClock`] set to the step's virtual time and
//! [`SeededIds`], on a memory store or a SQLite file that other `caseflow` verbs open later.
//!
//! The simulator decides what happens and when; the domain decides whether it may happen and
//! which events follow (due times, urging, reopening rules). A command the domain refuses is
//! a disagreement between the model and the rules and fails the run with the case and
//! command named. Urging is left to the engine's own deadline watcher, which runs at every
//! local midnight of the simulated calendar, so the urgings in the log are the domain's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use caseflow::domain::{
    AcceptCase, Actor, AnswerConsultation, CaseId, CaseKind as DomainKind, CaseOutcome, Category,
    Channel, ChooseDisposition, ClassifyCase, CloseCase, Command, CompleteRectification,
    CrossInspectionScope, DeclineCase, DeclineReason, DepartmentId, DisciplineMeasure,
    DisciplinedPerson, Disposition, Finding as DomainFinding, FocusArea, FormVerificationTeam,
    Level as DomainLevel, MergeCase, OrderRectification, RecordDiscipline, RecordFindings,
    RecordFollowUpVisit, RecordSatisfaction, ReopenCase, ReportCase, Reporter, ReporterHandle,
    ResponsibleParty, Role, RouteCase, Satisfaction, ScheduleFollowUpVisit, Severity,
    SubmitRectificationPlan, TransferCase, UnitId, VisitResult,
};
use caseflow::{
    CommandEnvelope, District, Engine, EngineConfig, EngineError, ManualClock, SeededIds,
};
use sha2::{Digest, Sha256};

use crate::error::SimError;
use crate::kpi::Summary;
use crate::model::{Layout, RunOptions, Simulation, Unit};
use crate::scenario::{CaseKind, CrossInspection, DISPOSITIONS, Level, Scenario};
use crate::trace::{Action, CloseOutcome, Finding, Step};

/// Where the engine keeps its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// In memory (default; gone when the run ends).
    Memory,
    /// A SQLite file (must not exist yet).
    Sqlite(PathBuf),
}

/// The outcome of a run on the engine.
pub struct EngineRun {
    /// KPIs (from the model) with the event-log digest and event count filled in.
    pub summary: Summary,
    /// The engine, still open (for verification, to-do lists, exports).
    pub engine: Engine,
    /// Urgings the engine's deadline watcher issued.
    pub urgings: u64,
    /// Commands executed.
    pub commands: u64,
}

/// Options of an engine run.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Store.
    pub store: StoreChoice,
    /// District file to use instead of the scenario's `simulation.district` (or the sample).
    pub district: Option<PathBuf>,
    /// Run the deadline watcher at every local midnight.
    pub deadline_watcher: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            store: StoreChoice::Memory,
            district: None,
            deadline_watcher: true,
        }
    }
}

fn engine_err(e: EngineError) -> SimError {
    SimError::Engine(e.to_string())
}

/// Loads the district the scenario names (or the sample), applies the scenario's
/// cross-inspection policy and, when the scenario asks for another number of zones than the
/// district has, lays its rooms, teams and localities out round-robin over that many zones.
pub fn district_for(
    scenario: &Scenario,
    override_path: Option<&PathBuf>,
) -> Result<District, SimError> {
    let text = match override_path.cloned().or_else(|| scenario.district_path()) {
        Some(path) => std::fs::read_to_string(&path).map_err(|e| {
            SimError::Engine(format!(
                "cannot read the district file {}: {e}",
                path.display()
            ))
        })?,
        None => caseflow::SAMPLE_DISTRICT_TOML.to_string(),
    };
    let mut value: toml::Value = toml::from_str(&text)
        .map_err(|e| SimError::Engine(format!("district file is not valid TOML: {e}")))?;
    let zones_wanted = scenario.organisation.zones as usize;
    let zones_have = value
        .get("zones")
        .and_then(|z| z.as_array())
        .map_or(0, |z| z.len());
    if zones_wanted != zones_have {
        let ids = |key: &str| -> Vec<String> {
            value
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|u| u.get("id")?.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (rooms, teams, localities) = (ids("rooms"), ids("teams"), ids("localities"));
        let mut zones = Vec::new();
        for z in 0..zones_wanted {
            let pick = |all: &[String]| -> Vec<toml::Value> {
                all.iter()
                    .enumerate()
                    .filter(|(i, _)| i % zones_wanted == z)
                    .map(|(_, id)| toml::Value::from(id.clone()))
                    .collect()
            };
            let mut t = toml::Table::new();
            t.insert("id".into(), format!("zone-{}", z + 1).into());
            t.insert(
                "name".into(),
                format!("第{}办案协作区 (zone {})", z + 1, z + 1).into(),
            );
            t.insert("rooms".into(), toml::Value::Array(pick(&rooms)));
            t.insert("teams".into(), toml::Value::Array(pick(&teams)));
            t.insert("localities".into(), toml::Value::Array(pick(&localities)));
            zones.push(toml::Value::Table(t));
        }
        if let Some(table) = value.as_table_mut() {
            table.insert("zones".into(), toml::Value::Array(zones));
        }
    }
    let text = toml::to_string(&value).map_err(|e| SimError::Engine(e.to_string()))?;
    let mut district = District::from_toml_str(&text).map_err(engine_err)?;
    district.policies.cross_inspection = match scenario.policies.cross_inspection {
        CrossInspection::InvolvedLocalityOnly => CrossInspectionScope::InvolvedLocalityOnly,
        CrossInspection::AllClues => CrossInspectionScope::AllClues,
    };
    Ok(district)
}

/// The simulator's layout of the engine's organisation (staffing from the scenario).
pub fn layout_for(scenario: &Scenario, district: &District) -> Layout {
    let org = &district.org;
    let zone_ids: Vec<String> = org.zones().map(|z| z.id.to_string()).collect();
    let zone_no = |z: &str| {
        zone_ids
            .iter()
            .position(|x| x == z)
            .map_or(1, |i| i as u32 + 1)
    };
    let mut units = Vec::new();
    let mut village_locality = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    for level in [
        DomainLevel::Room,
        DomainLevel::Team,
        DomainLevel::Locality,
        DomainLevel::Village,
    ] {
        let sim_level = match level {
            DomainLevel::Room => Level::Room,
            DomainLevel::Team => Level::Team,
            DomainLevel::Locality => Level::Locality,
            DomainLevel::Village => Level::Village,
        };
        for u in org.units_at(level) {
            let id = u.id.to_string();
            let staff = scenario
                .staffing
                .per_unit
                .get(&id)
                .copied()
                .or_else(|| scenario.staffing.per_level.get(&sim_level).copied())
                .unwrap_or(1);
            index.insert(id.clone(), units.len() as u32);
            units.push(Unit {
                id,
                level: sim_level,
                zone: zone_no(&u.zone.to_string()),
                staff,
            });
        }
    }
    for u in org.units_at(DomainLevel::Village) {
        if let (Some(v), Some(l)) = (
            index.get(&u.id.to_string()),
            u.locality.as_ref().and_then(|l| index.get(&l.to_string())),
        ) {
            village_locality.push((*v, *l));
        }
    }
    Layout::from_units(units, &village_locality, zone_ids.len() as u32)
}

fn parse_snake<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

struct Driver<'a> {
    engine: &'a Engine,
    clock: &'a ManualClock,
    sim_layout: Layout,
    unit_ids: Vec<UnitId>,
    channels: Vec<Channel>,
    focus: Vec<FocusArea>,
    team_department: HashMap<u32, DepartmentId>,
    cases: HashMap<u64, CaseInfo>,
    commands: u64,
}

struct CaseInfo {
    id: CaseId,
    kind: CaseKind,
    locality: u32,
    village: Option<u32>,
    intake_room: u32,
    focus: FocusArea,
    lead: u32,
    responsible: Option<ResponsibleParty>,
    involves_locality: bool,
}

impl Driver<'_> {
    fn unit(&self, idx: u32) -> UnitId {
        self.unit_ids[idx as usize].clone()
    }

    fn actor(&self, idx: u32, role: Role) -> Actor {
        Actor::new(self.unit(idx), role)
    }

    async fn execute(
        &mut self,
        step: &Step,
        actor: Actor,
        command: Command,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), SimError> {
        let name = command.name();
        let envelope = CommandEnvelope::new(self.engine.new_id(), actor, at, command);
        match self.engine.execute(envelope).await {
            Ok(_) => {
                self.commands += 1;
                Ok(())
            }
            Err(EngineError::Rejected { source, .. }) => Err(SimError::EngineRejected {
                case_no: step.case_no,
                command: name.to_string(),
                at: at.to_rfc3339(),
                message: source.to_string(),
            }),
            Err(e) => Err(engine_err(e)),
        }
    }

    async fn apply(
        &mut self,
        step: &Step,
        at: chrono::DateTime<chrono::Utc>,
        cal: &crate::calendar::WorkCalendar,
    ) -> Result<(), SimError> {
        use Role::{CaseOfficer, InformationOfficer, Leader};
        if let Action::Report {
            channel,
            kind,
            focus,
            locality,
            village,
            intake_unit,
        } = &step.action
        {
            let id = CaseId::new(self.engine.new_id());
            let loc_unit = self.sim_layout.locality_units[*locality as usize];
            let village_unit = self
                .sim_layout
                .village_units
                .get(*village as usize)
                .copied();
            let channel = self.channels[*channel as usize];
            let own_finding = matches!(
                channel,
                Channel::OnSiteVisit | Channel::SpecialCampaign | Channel::DepartmentTransfer
            );
            let reporter = match (village_unit, own_finding) {
                (Some(v), false) => self.actor(v, InformationOfficer),
                _ => self.actor(*intake_unit, CaseOfficer),
            };
            let source_department = (channel == Channel::DepartmentTransfer)
                .then(|| self.team_department.values().next().cloned())
                .flatten();
            let focus_area = self
                .focus
                .get(*focus as usize)
                .copied()
                .unwrap_or(FocusArea::LivelihoodGeneral);
            let command = ReportCase {
                case_id: id,
                channel,
                kind: match kind {
                    CaseKind::Complaint => DomainKind::Complaint,
                    CaseKind::Consultation => DomainKind::Consultation,
                    CaseKind::Suggestion => DomainKind::Suggestion,
                    CaseKind::Clue => DomainKind::ProblemClue,
                },
                summary: format!("simulated {} #{}", kind.as_str(), step.case_no),
                locality: self.unit(loc_unit),
                village: village_unit.map(|v| self.unit(v)),
                subject: "(simulated subject)".to_string(),
                focus_area,
                reporter: Reporter::Anonymous,
                reporter_handle: ReporterHandle(self.engine.new_id()),
                source_department,
            };
            self.cases.insert(
                step.case_no,
                CaseInfo {
                    id,
                    kind: *kind,
                    locality: loc_unit,
                    village: village_unit,
                    intake_room: *intake_unit,
                    focus: focus_area,
                    lead: *intake_unit,
                    responsible: None,
                    involves_locality: false,
                },
            );
            return self.execute(step, reporter, command.into(), at).await;
        }
        let Some(info) = self.cases.get(&step.case_no) else {
            return Err(SimError::Engine(format!(
                "step for unknown case #{}",
                step.case_no
            )));
        };
        let case_id = info.id;
        let room = info.intake_room;
        let lead = info.lead;
        let (actor, command): (Actor, Command) = match &step.action {
            Action::Report { .. } => return Ok(()),
            Action::Merge { into_case } => {
                let Some(into) = self.cases.get(into_case).map(|c| c.id) else {
                    return Ok(());
                };
                (
                    self.actor(room, CaseOfficer),
                    MergeCase { case_id, into }.into(),
                )
            }
            Action::Decline => (
                self.actor(room, CaseOfficer),
                DeclineCase {
                    case_id,
                    reason: DeclineReason::OutsideRemit,
                    explanation: "不属于受理范围 (outside the remit; simulated)".into(),
                }
                .into(),
            ),
            Action::Transfer => (
                self.actor(room, CaseOfficer),
                TransferCase {
                    case_id,
                    to_authority: "区信访局 (district petitions bureau)".into(),
                    reason: "属信访事项 (a petition matter; simulated)".into(),
                }
                .into(),
            ),
            Action::Accept => (self.actor(room, CaseOfficer), AcceptCase { case_id }.into()),
            Action::Route {
                lead: new_lead,
                handler: _,
                responsible,
                involves_locality,
                serious,
            } => {
                let kind = info.kind;
                let locality = info.locality;
                let department = self.team_department.get(responsible).cloned();
                let responsible_party = match kind {
                    CaseKind::Consultation => ResponsibleParty::Unit(self.unit(locality)),
                    _ if self.sim_layout.units[*responsible as usize].level == Level::Team => {
                        match &department {
                            Some(d) => ResponsibleParty::Department(d.clone()),
                            None => ResponsibleParty::Unit(self.unit(locality)),
                        }
                    }
                    _ => ResponsibleParty::Unit(self.unit(*responsible)),
                };
                let involved_department = match &responsible_party {
                    ResponsibleParty::Department(d) => Some(d.clone()),
                    ResponsibleParty::Unit(_) => None,
                };
                let classify = ClassifyCase {
                    case_id,
                    category: match kind {
                        CaseKind::Clue => Category::DisciplineClue,
                        CaseKind::Consultation => Category::Consultation,
                        _ => Category::MassDemand,
                    },
                    focus_area: info.focus,
                    severity: if *serious {
                        Severity::Serious
                    } else {
                        Severity::Ordinary
                    },
                    involves_locality: *involves_locality,
                    involved_department,
                };
                self.execute(step, self.actor(room, Leader), classify.into(), at)
                    .await?;
                if let Some(c) = self.cases.get_mut(&step.case_no) {
                    c.lead = *new_lead;
                    c.responsible = Some(responsible_party.clone());
                    c.involves_locality = *involves_locality;
                }
                (
                    self.actor(room, Leader),
                    RouteCase {
                        case_id,
                        lead_unit: self.unit(*new_lead),
                        responsible: vec![responsible_party],
                        time_limit_days: None,
                    }
                    .into(),
                )
            }
            Action::ChooseDisposition { disposition } => {
                let name = DISPOSITIONS
                    .get(*disposition as usize)
                    .copied()
                    .unwrap_or("preliminary_verification");
                let disposition: Disposition =
                    parse_snake(name).unwrap_or(Disposition::PreliminaryVerification);
                (
                    self.actor(lead, Leader),
                    ChooseDisposition {
                        case_id,
                        disposition,
                    }
                    .into(),
                )
            }
            Action::FormVerificationTeam { members } => (
                self.actor(lead, Leader),
                FormVerificationTeam {
                    case_id,
                    leader: self.unit(lead),
                    members: members.iter().map(|m| self.unit(*m)).collect(),
                }
                .into(),
            ),
            Action::RecordFindings { finding } => (
                self.actor(lead, CaseOfficer),
                RecordFindings {
                    case_id,
                    finding: match finding {
                        Finding::Substantiated => DomainFinding::Substantiated,
                        Finding::PartlySubstantiated => DomainFinding::PartlySubstantiated,
                        Finding::NotSubstantiated => DomainFinding::NotSubstantiated,
                    },
                    summary: "核查完毕 (verified; simulated)".into(),
                }
                .into(),
            ),
            Action::RecordDiscipline { people } => (
                self.actor(lead, Leader),
                RecordDiscipline {
                    case_id,
                    people: (0..*people)
                        .map(|i| DisciplinedPerson {
                            name: format!("干部{} (cadre {})", i + 1, i + 1),
                            position: "村委会委员 (village committee member)".into(),
                            measure: DisciplineMeasure::Warning,
                        })
                        .collect(),
                }
                .into(),
            ),
            Action::Answer => (
                self.actor(lead, CaseOfficer),
                AnswerConsultation {
                    case_id,
                    answer: "已答复 (answered; simulated)".into(),
                }
                .into(),
            ),
            Action::OrderRectification { .. } => {
                let responsible = info
                    .responsible
                    .clone()
                    .unwrap_or(ResponsibleParty::Unit(self.unit(info.locality)));
                (
                    self.actor(lead, Leader),
                    OrderRectification {
                        case_id,
                        responsible,
                        requirements: "限期整改 (rectify; simulated)".into(),
                    }
                    .into(),
                )
            }
            Action::SubmitPlan { deadline } => {
                let limit = self
                    .engine
                    .district()
                    .policies
                    .limits
                    .rectification_max_days
                    .max(1);
                let latest = self.engine.district().calendar.add_working_days(at, limit);
                let mut deadline = cal.to_utc(*deadline).min(latest);
                if deadline <= at {
                    deadline = at + chrono::Duration::minutes(1);
                }
                (
                    self.responsible_actor(step.case_no),
                    SubmitRectificationPlan {
                        case_id,
                        measures: vec!["整改措施 (corrective measures)".into()],
                        deadline,
                    }
                    .into(),
                )
            }
            Action::CompleteRectification => (
                self.responsible_actor(step.case_no),
                CompleteRectification {
                    case_id,
                    evidence: vec!["photo:after.jpg".into()],
                    summary: "整改完成 (rectified; simulated)".into(),
                }
                .into(),
            ),
            Action::Urge { .. } => return Ok(()),
            Action::ScheduleFollowUp { officer, visit_at } => {
                let scheduled_for = cal.to_utc(*visit_at).max(at + chrono::Duration::minutes(1));
                (
                    self.actor(lead, Leader),
                    ScheduleFollowUpVisit {
                        case_id,
                        visitor: self.unit(*officer),
                        scheduled_for,
                    }
                    .into(),
                )
            }
            Action::RecordFollowUp { passed } => (
                self.actor(step.actor, InformationOfficer),
                RecordFollowUpVisit {
                    case_id,
                    result: if *passed {
                        VisitResult::Held
                    } else {
                        VisitResult::Failed
                    },
                    notes: "实地查看 (checked on site; simulated)".into(),
                }
                .into(),
            ),
            Action::RecordSatisfaction { satisfied } => (
                self.actor(
                    info.village.unwrap_or(lead),
                    if info.village.is_some() {
                        InformationOfficer
                    } else {
                        Leader
                    },
                ),
                RecordSatisfaction {
                    case_id,
                    satisfaction: if *satisfied {
                        Satisfaction::Satisfied
                    } else {
                        Satisfaction::Unsatisfied
                    },
                    comment: String::new(),
                }
                .into(),
            ),
            Action::Reopen => (
                self.actor(lead, Leader),
                ReopenCase {
                    case_id,
                    reason: "复查未通过 (review failed; simulated)".into(),
                }
                .into(),
            ),
            Action::Close { outcome } => {
                let outcome = match outcome {
                    CloseOutcome::Rectified => CaseOutcome::Rectified,
                    CloseOutcome::Answered => CaseOutcome::Answered,
                    CloseOutcome::NotSubstantiated => CaseOutcome::NotSubstantiated,
                    CloseOutcome::ClosedWithoutAction => CaseOutcome::ClosedWithoutAction,
                };
                (
                    self.actor(lead, Leader),
                    CloseCase {
                        case_id,
                        outcome,
                        summary: "办结 (closed; simulated)".into(),
                    }
                    .into(),
                )
            }
        };
        let ends = matches!(
            step.action,
            Action::Close { .. } | Action::Decline | Action::Transfer
        );
        self.execute(step, actor, command, at).await?;
        // Merged cases stay known (a later duplicate may name them); closed ones are dropped.
        if ends {
            self.cases.remove(&step.case_no);
        }
        Ok(())
    }

    fn responsible_actor(&self, case_no: u64) -> Actor {
        let info = &self.cases[&case_no];
        match &info.responsible {
            Some(ResponsibleParty::Department(d)) => {
                let team = self.engine.district().org.team_stationed_in(d).cloned();
                Actor::new(
                    team.unwrap_or_else(|| self.unit(info.lead)),
                    Role::CaseOfficer,
                )
            }
            Some(ResponsibleParty::Unit(u)) => Actor::new(u.clone(), Role::Leader),
            None => self.actor(info.locality, Role::Leader),
        }
    }
}

/// Runs `scenario` with master seed `seed` on the real engine.
pub async fn run_on_engine(
    scenario: &Scenario,
    seed: u64,
    options: &EngineOptions,
) -> Result<EngineRun, SimError> {
    let district = district_for(scenario, options.district.as_ref())?;
    let layout = layout_for(scenario, &district);
    let mut channels = Vec::new();
    for (i, ch) in scenario.arrivals.channel.iter().enumerate() {
        let c: Channel = parse_snake(&ch.name).ok_or_else(|| SimError::Scenario(crate::ScenarioError::Invalid {
            field: format!("arrivals.channel[{i}].name"),
            reason: format!(
                "`{}` is not a channel the engine knows (photo_report_app, petty_power_mini_program, petition_window, \
                 hotline, mailbox, hearing, forum, bench_meeting, on_site_visit, special_campaign, department_transfer)",
                ch.name
            ),
        }))?;
        channels.push(c);
    }
    let mut focus = Vec::new();
    for name in scenario.arrivals.focus_mix.keys() {
        let f: FocusArea = parse_snake(name).ok_or_else(|| SimError::Scenario(crate::ScenarioError::Invalid {
            field: format!("arrivals.focus_mix.{name}"),
            reason: "not a focus area the engine knows (education_and_medical_care, elderly_care_and_social_security, \
                     employment_and_school_enrolment, living_environment, rural_revitalisation, \
                     village_collective_resources, small_engineering_projects, livelihood_general)"
                .into(),
        }))?;
        focus.push(f);
    }
    let mut sim = Simulation::with_layout(
        scenario,
        layout.clone(),
        seed,
        RunOptions {
            record_steps: true,
            digest: true,
        },
    );
    let start = sim.calendar().to_utc(0.0);
    let clock = Arc::new(ManualClock::new(start));
    let config = match &options.store {
        StoreChoice::Memory => EngineConfig::memory(district.clone()),
        StoreChoice::Sqlite(path) => {
            if path.exists() {
                return Err(SimError::Option {
                    option: "--db".into(),
                    reason: format!(
                        "{} exists already; the simulator writes a fresh store",
                        path.display()
                    ),
                });
            }
            EngineConfig::sqlite(path.clone(), district.clone())
        }
    };
    let engine = Engine::open(
        config
            .clock(clock.clone())
            .ids(Arc::new(SeededIds::new(seed))),
    )
    .await
    .map_err(engine_err)?;
    let org = &engine.district().org;
    let unit_ids: Vec<UnitId> = layout
        .units
        .iter()
        .map(|u| UnitId::new(u.id.clone()))
        .collect();
    let mut team_department = HashMap::new();
    for d in org.departments() {
        if let Some(team) = org.team_stationed_in(&d.id) {
            if let Some(i) = unit_ids.iter().position(|u| u == team) {
                team_department
                    .entry(i as u32)
                    .or_insert_with(|| d.id.clone());
            }
        }
    }
    let mut driver = Driver {
        engine: &engine,
        clock: &clock,
        sim_layout: layout,
        unit_ids,
        channels,
        focus,
        team_department,
        cases: HashMap::new(),
        commands: 0,
    };
    let cal = sim.calendar().clone();
    let mut steps = Vec::new();
    let mut watched_day = 0i64;
    let mut urgings = 0u64;
    while sim.advance(&mut steps) {
        for step in steps.drain(..) {
            let day = (step.at / 24.0).floor() as i64;
            if options.deadline_watcher {
                while watched_day < day {
                    watched_day += 1;
                    let t = cal.to_utc(watched_day as f64 * 24.0);
                    driver.clock.set(t);
                    urgings += engine
                        .check_deadlines(t)
                        .await
                        .map_err(engine_err)?
                        .issued
                        .len() as u64;
                }
            }
            let at = cal.to_utc(step.at);
            driver.clock.set(at);
            driver.apply(&step, at, &cal).await?;
        }
    }
    let commands = driver.commands;
    let end = cal.to_utc(sim.kpi.summary().map_or(0.0, |s| s.simulated_hours));
    clock.set(end);
    engine.refresh().await.map_err(engine_err)?;
    let (digest, events) = log_digest(&engine).await?;
    let mut summary = crate::finish_summary(&sim, seed);
    summary.digest = Some(digest);
    summary.engine_events = Some(events);
    Ok(EngineRun {
        summary,
        engine,
        urgings,
        commands,
    })
}

/// SHA-256 over every record of the engine's global log (its JSON envelope, in position
/// order), and the number of records.
pub async fn log_digest(engine: &Engine) -> Result<(String, u64), SimError> {
    let store = engine.store();
    let mut hasher = Sha256::new();
    let mut from = 1u64;
    let mut count = 0u64;
    loop {
        let batch = store
            .read_all(from, 4096)
            .await
            .map_err(|e| SimError::Engine(e.to_string()))?;
        if batch.is_empty() {
            break;
        }
        for record in &batch {
            let json = serde_json::to_vec(record).map_err(|e| SimError::Engine(e.to_string()))?;
            hasher.update(&json);
            hasher.update(b"\n");
            count += 1;
            from = record.position + 1;
        }
    }
    Ok((hex::encode(hasher.finalize()), count))
}
