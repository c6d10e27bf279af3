//! A simple seeded workload for the district demo: a few months of realistic cases driven
//! through every stage by the units the rules name, with the deadline watcher running once a
//! day. (The simulator crate models workloads richly; this is the engine's own smoke load.)
//!
//! Every case follows a script chosen at its report: a problem clue cross-inspected by
//! other localities of its zone, a complaint about a department answered through the team
//! stationed there, a suggestion handled by its locality, a consultation answered (and
//! sometimes turned into a small rectification); some are declined, merged, transferred or
//! reopened after an unsatisfied reporter. Delays are random working hours; some steps are
//! slow on purpose so that time limits are missed and the watcher urges them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use caseflow_domain::{
    AcceptCase, Actor, AnswerConsultation, CaseId, CaseKind, CaseOutcome, Category, Channel,
    ChooseDisposition, ClassifyCase, CloseCase, Command, CompleteRectification, DeclineCase,
    DeclineReason, DisciplineMeasure, DisciplinedPerson, Disposition, Finding, FocusArea,
    FormVerificationTeam, Level, MergeCase, OrderRectification, ProtectedContact, RecordDiscipline,
    RecordFindings, RecordFollowUpVisit, RecordSatisfaction, ReopenCase, ReportCase,
    ReportRectificationProgress, Reporter, ReporterHandle, ResponsibleParty, Role, RouteCase,
    Satisfaction, ScheduleFollowUpVisit, Severity, SubmitRectificationPlan, TransferCase, UnitId,
    VisitResult,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;
use tracing::debug;

use crate::clock::ManualClock;
use crate::engine::{CommandEnvelope, Engine};
use crate::error::EngineError;

/// What the demo generates.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// First day (the demo starts at 09:00 local time of that day).
    pub start: DateTime<Utc>,
    /// Length in days.
    pub days: u32,
    /// Mean new cases per working day.
    pub cases_per_day: f64,
    /// Seed of the generator.
    pub seed: u64,
}

impl DemoConfig {
    /// `months` months (of 30 days) from Monday 2026-03-02, 09:00 CST.
    pub fn months(months: u32, seed: u64) -> Self {
        DemoConfig {
            start: Utc
                .with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            days: months.saturating_mul(30),
            cases_per_day: 6.0,
            seed,
        }
    }

    /// When the demo ends (the "now" of its to-do lists).
    pub fn end(&self) -> DateTime<Utc> {
        self.start + Duration::days(i64::from(self.days))
    }
}

/// What the demo did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoSummary {
    /// Cases reported.
    pub cases: u64,
    /// Commands executed successfully.
    pub commands: u64,
    /// Commands the domain refused (the case's script stops there).
    pub refused: u64,
    /// Urgings and escalations issued by the deadline watcher.
    pub urgings: u64,
    /// The first few refusals, for diagnosis.
    pub refusal_samples: Vec<String>,
}

/// A tiny deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }
    /// Poisson draw (Knuth), fine for small means.
    fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.unit();
        while p > limit && k < 1000 {
            k += 1;
            p *= self.unit();
        }
        k
    }
    /// A delay of `lo..hi` hours.
    fn hours(&mut self, lo: i64, hi: i64) -> Duration {
        let span = (hi - lo).max(1) as u64;
        Duration::minutes(lo * 60 + (self.next_u64() % (span * 60)) as i64)
    }
}

/// One scripted step: wait `delay` after the previous step, then `actor` issues `command`.
struct Step {
    delay: Duration,
    actor: Actor,
    command: Command,
}

struct Script {
    case_id: CaseId,
    steps: Vec<Step>,
    next: usize,
}

fn leader(u: &UnitId) -> Actor {
    Actor::new(u.clone(), Role::Leader)
}
fn officer(u: &UnitId) -> Actor {
    Actor::new(u.clone(), Role::CaseOfficer)
}
fn informant(u: &UnitId) -> Actor {
    Actor::new(u.clone(), Role::InformationOfficer)
}

const SUMMARIES: &[(&str, FocusArea)] = &[
    (
        "花园小区路灯损坏，多次反映无人修 (broken street lamp in the estate)",
        FocusArea::LivingEnvironment,
    ),
    (
        "村集体鱼塘发包未公开招标 (village pond contracted without tender)",
        FocusArea::VillageCollectiveResources,
    ),
    (
        "低保评定优亲厚友 (subsistence allowance favours relatives)",
        FocusArea::ElderlyCareAndSocialSecurity,
    ),
    (
        "村道硬化工程偷工减料 (village road works skimp on materials)",
        FocusArea::SmallEngineeringProjects,
    ),
    (
        "卫生院收费不透明 (clinic fees not published)",
        FocusArea::EducationAndMedicalCare,
    ),
    (
        "入学登记吃拿卡要 (school enrolment officials demand favours)",
        FocusArea::EmploymentAndSchoolEnrolment,
    ),
    (
        "高标准农田补贴虚报冒领 (false claims for farmland subsidies)",
        FocusArea::RuralRevitalisation,
    ),
    (
        "小区垃圾清运不及时 (rubbish not collected on time)",
        FocusArea::LivelihoodGeneral,
    ),
];

struct Planner<'a> {
    engine: &'a Engine,
    rng: Rng,
    localities: Vec<UnitId>,
    dept_teams: Vec<(caseflow_domain::DepartmentId, UnitId)>,
}

impl Planner<'_> {
    fn org(&self) -> &caseflow_domain::Organisation {
        &self.engine.district().org
    }

    fn zone_rooms(&self, locality: &UnitId) -> Vec<UnitId> {
        let org = self.org();
        org.zone_of(locality)
            .and_then(|z| org.zone(z))
            .map(|z| z.rooms.clone())
            .unwrap_or_default()
    }

    fn zone_localities(&self, locality: &UnitId) -> Vec<UnitId> {
        let org = self.org();
        org.zone_of(locality)
            .and_then(|z| org.zone(z))
            .map(|z| {
                z.localities
                    .iter()
                    .filter(|l| *l != locality)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn villages(&self, locality: &UnitId) -> Vec<UnitId> {
        self.org()
            .villages_of(locality)
            .map(|u| u.id.clone())
            .collect()
    }

    /// Plans one new case reported at `at`.
    fn plan(&mut self, case_id: CaseId, open_cases: &[(CaseId, UnitId)]) -> Option<Script> {
        let r = &mut self.rng;
        let locality = r.pick(&self.localities)?.clone();
        let villages = self.villages(&locality);
        let village = self.rng.pick(&villages).cloned();
        let rooms = self.zone_rooms(&locality);
        let room = self.rng.pick(&rooms)?.clone();
        let others = self.zone_localities(&locality);
        let kind = match self.rng.below(100) {
            0..=29 => CaseKind::ProblemClue,
            30..=64 => CaseKind::Complaint,
            65..=79 => CaseKind::Suggestion,
            _ => CaseKind::Consultation,
        };
        let own_find = kind == CaseKind::ProblemClue && self.rng.chance(0.3);
        let channel = if own_find {
            *self.rng.pick(&[
                Channel::OnSiteVisit,
                Channel::SpecialCampaign,
                Channel::DepartmentTransfer,
            ])?
        } else {
            *self.rng.pick(&Channel::ALL[..8])?
        };
        let (summary, focus_area) = *self.rng.pick(SUMMARIES)?;
        let reporter_actor = match (&village, own_find) {
            (Some(v), false) => informant(v),
            _ => officer(&room),
        };
        let source_department =
            (channel == Channel::DepartmentTransfer).then(|| "dept-finance".into());
        let handle = ReporterHandle(self.engine.new_id());
        let reporter = if self.rng.chance(0.4) {
            Reporter::Anonymous
        } else {
            Reporter::Named(ProtectedContact::new("居民 (resident)", "138-0000-0000"))
        };
        let r = &mut self.rng;
        let mut steps = vec![Step {
            delay: Duration::zero(),
            actor: reporter_actor,
            command: ReportCase {
                case_id,
                channel,
                kind,
                summary: summary.to_owned(),
                locality: locality.clone(),
                village: village.clone(),
                subject: "(sample subject)".to_owned(),
                focus_area,
                reporter,
                reporter_handle: handle,
                source_department,
            }
            .into(),
        }];
        // A few cases never get past intake.
        let roll = r.below(100);
        if roll < 4 {
            steps.push(Step {
                delay: r.hours(2, 30),
                actor: officer(&room),
                command: DeclineCase {
                    case_id,
                    reason: DeclineReason::OutsideRemit,
                    explanation: "不属于纪检监察机关受理范围 (outside the commission's remit)"
                        .to_owned(),
                }
                .into(),
            });
            return Some(Script {
                case_id,
                steps,
                next: 0,
            });
        }
        if roll < 6 {
            steps.push(Step {
                delay: r.hours(2, 30),
                actor: officer(&room),
                command: TransferCase {
                    case_id,
                    to_authority: "区信访局 (district petitions bureau)".to_owned(),
                    reason: "属信访事项 (a petition matter)".to_owned(),
                }
                .into(),
            });
            return Some(Script {
                case_id,
                steps,
                next: 0,
            });
        }
        if roll < 9 {
            if let Some((into, _)) = open_cases.iter().rev().find(|(_, l)| *l == locality) {
                steps.push(Step {
                    delay: r.hours(1, 20),
                    actor: officer(&room),
                    command: MergeCase {
                        case_id,
                        into: *into,
                    }
                    .into(),
                });
                return Some(Script {
                    case_id,
                    steps,
                    next: 0,
                });
            }
        }
        // Slow units miss time limits now and then; the watcher then urges them.
        let slow = |r: &mut Rng| {
            if r.chance(0.12) {
                r.hours(72, 200)
            } else {
                r.hours(2, 40)
            }
        };
        steps.push(Step {
            delay: slow(r),
            actor: officer(&room),
            command: AcceptCase { case_id }.into(),
        });
        let visitor_locality = others.first().cloned().unwrap_or_else(|| locality.clone());
        let visit_step = |r: &mut Rng,
                          steps: &mut Vec<Step>,
                          scheduler: Actor,
                          visitor: UnitId,
                          visit_actor: Actor| {
            let lead_time = r.hours(24, 96);
            steps.push(Step {
                delay: r.hours(4, 40),
                actor: scheduler,
                command: ScheduleFollowUpVisit {
                    case_id,
                    visitor,
                    scheduled_for: Utc.timestamp_opt(0, 0).single().unwrap_or_default() + lead_time,
                }
                .into(),
            });
            steps.push(Step {
                delay: lead_time + Duration::hours(1),
                actor: visit_actor,
                command: RecordFollowUpVisit {
                    case_id,
                    result: VisitResult::Held,
                    notes: "实地查看，整改到位 (checked on site)".to_owned(),
                }
                .into(),
            });
        };
        let plan_step =
            |r: &mut Rng, steps: &mut Vec<Step>, actor: Actor, progress_actor: Actor| {
                let plan_days = 3 + r.below(10) as i64;
                steps.push(Step {
                    delay: slow(r),
                    actor: actor.clone(),
                    command: SubmitRectificationPlan {
                        case_id,
                        measures: vec![
                            "制定整改措施 (corrective measures)".to_owned(),
                            "建立长效机制 (standing rules)".to_owned(),
                        ],
                        // Relative: fixed up when the step runs (see `materialise`).
                        deadline: Utc.timestamp_opt(0, 0).single().unwrap_or_default()
                            + Duration::days(plan_days),
                    }
                    .into(),
                });
                if r.chance(0.6) {
                    steps.push(Step {
                        delay: r.hours(20, 60),
                        actor: progress_actor,
                        command: ReportRectificationProgress {
                            case_id,
                            note: "整改推进中 (in progress)".to_owned(),
                            percent_complete: 50,
                        }
                        .into(),
                    });
                }
                steps.push(Step {
                    delay: if r.chance(0.1) {
                        r.hours(200, 400)
                    } else {
                        r.hours(20, 80)
                    },
                    actor,
                    command: CompleteRectification {
                        case_id,
                        evidence: vec!["photo:after.jpg".to_owned()],
                        summary: "整改完成 (rectified)".to_owned(),
                    }
                    .into(),
                });
            };
        let satisfaction = |r: &mut Rng| {
            let x = r.below(100);
            if x < 70 {
                Satisfaction::Satisfied
            } else if x < 92 {
                Satisfaction::BasicallySatisfied
            } else {
                Satisfaction::Unsatisfied
            }
        };
        let resident = village
            .clone()
            .map_or_else(|| leader(&locality), |v| informant(&v));
        match kind {
            CaseKind::ProblemClue => {
                let lead = leader(&room);
                steps.push(Step {
                    delay: slow(r),
                    actor: lead.clone(),
                    command: ClassifyCase {
                        case_id,
                        category: Category::DisciplineClue,
                        focus_area,
                        severity: Severity::Serious,
                        involves_locality: true,
                        involved_department: None,
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: lead.clone(),
                    command: RouteCase {
                        case_id,
                        lead_unit: room.clone(),
                        responsible: vec![ResponsibleParty::Unit(locality.clone())],
                        time_limit_days: None,
                    }
                    .into(),
                });
                let disposition = if r.chance(0.1) {
                    Disposition::CloseWithoutAction
                } else if r.chance(0.3) {
                    Disposition::TalkOrLetterInquiry
                } else {
                    Disposition::PreliminaryVerification
                };
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: lead.clone(),
                    command: ChooseDisposition {
                        case_id,
                        disposition,
                    }
                    .into(),
                });
                if disposition == Disposition::CloseWithoutAction {
                    steps.push(Step {
                        delay: r.hours(2, 30),
                        actor: lead,
                        command: CloseCase {
                            case_id,
                            outcome: CaseOutcome::ClosedWithoutAction,
                            summary: "予以了结 (closed without action)".to_owned(),
                        }
                        .into(),
                    });
                    return Some(Script {
                        case_id,
                        steps,
                        next: 0,
                    });
                }
                let members: Vec<UnitId> = others.iter().take(2).cloned().collect();
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: lead.clone(),
                    command: FormVerificationTeam {
                        case_id,
                        leader: room.clone(),
                        members,
                    }
                    .into(),
                });
                let finding = match r.below(100) {
                    0..=54 => Finding::Substantiated,
                    55..=74 => Finding::PartlySubstantiated,
                    _ => Finding::NotSubstantiated,
                };
                steps.push(Step {
                    delay: slow(r) + r.hours(24, 120),
                    actor: officer(&room),
                    command: RecordFindings {
                        case_id,
                        finding,
                        summary: "交叉核查完毕 (cross-inspection done)".to_owned(),
                    }
                    .into(),
                });
                if finding == Finding::NotSubstantiated {
                    steps.push(Step {
                        delay: r.hours(2, 30),
                        actor: lead,
                        command: CloseCase {
                            case_id,
                            outcome: CaseOutcome::NotSubstantiated,
                            summary: "反映问题不属实 (not substantiated)".to_owned(),
                        }
                        .into(),
                    });
                    return Some(Script {
                        case_id,
                        steps,
                        next: 0,
                    });
                }
                if finding == Finding::Substantiated {
                    let people = 1 + r.below(3);
                    steps.push(Step {
                        delay: r.hours(4, 60),
                        actor: lead.clone(),
                        command: RecordDiscipline {
                            case_id,
                            people: (0..people)
                                .map(|i| DisciplinedPerson {
                                    name: format!("干部{} (cadre {})", i + 1, i + 1),
                                    position: "村委会委员 (village committee member)".to_owned(),
                                    measure: if i == 0 {
                                        DisciplineMeasure::Warning
                                    } else {
                                        DisciplineMeasure::Admonishment
                                    },
                                })
                                .collect(),
                        }
                        .into(),
                    });
                }
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: lead.clone(),
                    command: OrderRectification {
                        case_id,
                        responsible: ResponsibleParty::Unit(locality.clone()),
                        requirements: "限期整改 (rectify within the limit)".to_owned(),
                    }
                    .into(),
                });
                plan_step(r, &mut steps, leader(&locality), officer(&locality));
                visit_step(
                    r,
                    &mut steps,
                    lead.clone(),
                    visitor_locality.clone(),
                    leader(&visitor_locality),
                );
                let s = satisfaction(r);
                self.finish(&mut steps, s, resident, lead, leader(&visitor_locality));
            }
            CaseKind::Complaint => {
                let (dept, team) = self.rng.pick(&self.dept_teams)?.clone();
                let r = &mut self.rng;
                steps.push(Step {
                    delay: slow(r),
                    actor: leader(&room),
                    command: ClassifyCase {
                        case_id,
                        category: Category::MassDemand,
                        focus_area,
                        severity: Severity::Ordinary,
                        involves_locality: false,
                        involved_department: Some(dept.clone()),
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: leader(&room),
                    command: RouteCase {
                        case_id,
                        lead_unit: team.clone(),
                        responsible: vec![ResponsibleParty::Department(dept.clone())],
                        time_limit_days: None,
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: slow(r) + r.hours(8, 60),
                    actor: officer(&team),
                    command: RecordFindings {
                        case_id,
                        finding: Finding::PartlySubstantiated,
                        summary: "部门答题 (the department answers)".to_owned(),
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: leader(&team),
                    command: OrderRectification {
                        case_id,
                        responsible: ResponsibleParty::Department(dept),
                        requirements: "限期整改 (rectify within the limit)".to_owned(),
                    }
                    .into(),
                });
                plan_step(r, &mut steps, officer(&team), officer(&team));
                let visitor = village.clone().unwrap_or_else(|| locality.clone());
                let visit_actor = village
                    .clone()
                    .map_or_else(|| leader(&locality), |v| informant(&v));
                visit_step(r, &mut steps, leader(&team), visitor, visit_actor.clone());
                let s = satisfaction(r);
                self.finish(&mut steps, s, resident, leader(&team), visit_actor);
            }
            CaseKind::Suggestion => {
                let lead = leader(&locality);
                steps.push(Step {
                    delay: slow(r),
                    actor: lead.clone(),
                    command: ClassifyCase {
                        case_id,
                        category: Category::MassDemand,
                        focus_area,
                        severity: Severity::Ordinary,
                        involves_locality: false,
                        involved_department: None,
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: lead.clone(),
                    command: RouteCase {
                        case_id,
                        lead_unit: locality.clone(),
                        responsible: vec![ResponsibleParty::Unit(locality.clone())],
                        time_limit_days: None,
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: slow(r) + r.hours(4, 40),
                    actor: officer(&locality),
                    command: RecordFindings {
                        case_id,
                        finding: Finding::Substantiated,
                        summary: "建议合理 (the suggestion is sound)".to_owned(),
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: lead.clone(),
                    command: OrderRectification {
                        case_id,
                        responsible: ResponsibleParty::Unit(locality.clone()),
                        requirements: "采纳建议并落实 (adopt and carry out)".to_owned(),
                    }
                    .into(),
                });
                plan_step(r, &mut steps, lead.clone(), officer(&locality));
                let visitor = village.clone().unwrap_or_else(|| locality.clone());
                let visit_actor = village
                    .clone()
                    .map_or_else(|| leader(&locality), |v| informant(&v));
                visit_step(r, &mut steps, lead.clone(), visitor, visit_actor.clone());
                let s = satisfaction(r);
                self.finish(&mut steps, s, resident, lead, visit_actor);
            }
            CaseKind::Consultation => {
                steps.push(Step {
                    delay: slow(r),
                    actor: leader(&room),
                    command: ClassifyCase {
                        case_id,
                        category: Category::Consultation,
                        focus_area,
                        severity: Severity::Ordinary,
                        involves_locality: false,
                        involved_department: None,
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: leader(&room),
                    command: RouteCase {
                        case_id,
                        lead_unit: locality.clone(),
                        responsible: vec![ResponsibleParty::Unit(locality.clone())],
                        time_limit_days: None,
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: slow(r),
                    actor: officer(&locality),
                    command: AnswerConsultation {
                        case_id,
                        answer: "政策已答复并在居务公开栏公布 (answered and published)".to_owned(),
                    }
                    .into(),
                });
                steps.push(Step {
                    delay: r.hours(2, 30),
                    actor: leader(&locality),
                    command: CloseCase {
                        case_id,
                        outcome: CaseOutcome::Answered,
                        summary: "已答复 (answered)".to_owned(),
                    }
                    .into(),
                });
            }
        }
        Some(Script {
            case_id,
            steps,
            next: 0,
        })
    }

    /// Satisfaction, then close — or, when unsatisfied, reopen and a second round.
    fn finish(
        &mut self,
        steps: &mut Vec<Step>,
        s: Satisfaction,
        resident: Actor,
        lead: Actor,
        visitor: Actor,
    ) {
        let r = &mut self.rng;
        let case_id = steps[0].command.case_id();
        steps.push(Step {
            delay: r.hours(2, 30),
            actor: resident.clone(),
            command: RecordSatisfaction {
                case_id,
                satisfaction: s,
                comment: String::new(),
            }
            .into(),
        });
        if s == Satisfaction::Unsatisfied {
            steps.push(Step {
                delay: r.hours(2, 30),
                actor: lead.clone(),
                command: ReopenCase {
                    case_id,
                    reason: "群众不满意，重新办理 (the reporter is unsatisfied)".to_owned(),
                }
                .into(),
            });
            // The second round ends the script; the reopened case stays on the to-do lists.
            let _ = visitor;
            return;
        }
        steps.push(Step {
            delay: r.hours(2, 30),
            actor: lead,
            command: CloseCase {
                case_id,
                outcome: CaseOutcome::Rectified,
                summary: "整改到位，群众满意 (rectified; residents satisfied)".to_owned(),
            }
            .into(),
        });
    }
}

/// Turns times in a planned command that were relative to the epoch into absolute times
/// relative to `now` (plan deadlines and visit dates are planned before the run knows when
/// the step will happen).
fn materialise(command: &Command, now: DateTime<Utc>) -> Command {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let mut c = command.clone();
    match &mut c {
        Command::SubmitRectificationPlan(p) => p.deadline = now + (p.deadline - epoch),
        Command::ScheduleFollowUpVisit(v) => v.scheduled_for = now + (v.scheduled_for - epoch),
        _ => {}
    }
    c
}

/// Moves `t` into working hours: 08:30–17:30 district time on a working day. Work that
/// would fall in the evening, at night or on a day off happens the next working morning
/// (keeping the minutes past the hour, so steps do not all land at 08:30 sharp).
fn into_working_hours(calendar: &caseflow_domain::Calendar, t: DateTime<Utc>) -> DateTime<Utc> {
    let offset = Duration::minutes(i64::from(calendar.utc_offset_minutes));
    let mut local = t + offset;
    let open = chrono::NaiveTime::from_hms_opt(8, 30, 0).unwrap_or_default();
    let close = chrono::NaiveTime::from_hms_opt(17, 30, 0).unwrap_or_default();
    for _ in 0..60 {
        let date = local.date_naive();
        let time = local.time();
        if calendar.is_working_day(date) && time >= open && time < close {
            return local - offset;
        }
        let next_date = if time < open && calendar.is_working_day(date) {
            date
        } else {
            date.succ_opt().unwrap_or(date)
        };
        let minutes = i64::from(chrono::Timelike::minute(&time));
        local = next_date.and_time(open).and_utc() + Duration::minutes(30 + minutes);
    }
    t
}

/// Runs the demo workload on `engine` (whose clock must be `clock`). `progress(day, days)`
/// is called once per simulated day.
pub async fn run_demo(
    engine: &Engine,
    clock: &ManualClock,
    config: &DemoConfig,
    mut progress: impl FnMut(u32, u32),
) -> Result<DemoSummary, EngineError> {
    let org = &engine.district().org;
    let mut planner = Planner {
        engine,
        rng: Rng(config.seed),
        localities: org
            .units_at(Level::Locality)
            .map(|u| u.id.clone())
            .collect(),
        dept_teams: org
            .departments()
            .filter_map(|d| {
                org.team_stationed_in(&d.id)
                    .map(|t| (d.id.clone(), t.clone()))
            })
            .collect(),
    };
    let mut summary = DemoSummary::default();
    let mut scripts: Vec<Script> = Vec::new();
    // (time, sequence, script index): the sequence keeps equal times in a stable order.
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, u64, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut open: Vec<(CaseId, UnitId)> = Vec::new();
    let calendar = engine.district().calendar.clone();
    for day in 0..config.days {
        let day_start = config.start + Duration::days(i64::from(day));
        let day_end = day_start + Duration::days(1);
        if calendar.is_working_day(calendar.local_date(day_start)) {
            let n = planner.rng.poisson(config.cases_per_day);
            for _ in 0..n {
                let at = day_start + planner.rng.hours(0, 8);
                clock.set(at);
                let case_id = CaseId::new(engine.new_id());
                if let Some(script) = planner.plan(case_id, &open) {
                    if let Command::ReportCase(rc) = &script.steps[0].command {
                        open.push((case_id, rc.locality.clone()));
                        if open.len() > 50 {
                            open.remove(0);
                        }
                    }
                    scripts.push(script);
                    seq += 1;
                    queue.push(Reverse((at, seq, scripts.len() - 1)));
                }
            }
        }
        // Run every step due today, in time order.
        while let Some(Reverse((at, _, index))) = queue.peek().copied() {
            if at >= day_end {
                break;
            }
            queue.pop();
            clock.set(at);
            let script = &mut scripts[index];
            let Some(step) = script.steps.get(script.next) else {
                continue;
            };
            let command = materialise(&step.command, at);
            let envelope = CommandEnvelope::new(engine.new_id(), step.actor.clone(), at, command);
            let name = envelope.command.name();
            match engine.execute(envelope).await {
                Ok(_) => {
                    summary.commands += 1;
                    if name == "ReportCase" {
                        summary.cases += 1;
                    }
                    script.next += 1;
                    if let Some(next) = script.steps.get(script.next) {
                        seq += 1;
                        let when = into_working_hours(&calendar, at + next.delay);
                        queue.push(Reverse((when, seq, index)));
                    }
                }
                Err(EngineError::MergeTargetNotOpen { case_id, .. }) => {
                    // The duplicate's original closed meanwhile: decline it as decided.
                    let decline = CommandEnvelope::new(
                        engine.new_id(),
                        step.actor.clone(),
                        at,
                        DeclineCase {
                            case_id,
                            reason: DeclineReason::AlreadyDecided,
                            explanation: "原案已办结 (the original case is already closed)"
                                .to_owned(),
                        },
                    );
                    engine.execute(decline).await?;
                    summary.commands += 1;
                    script.next = script.steps.len();
                }
                Err(EngineError::Rejected { source, .. }) => {
                    debug!(case = %script.case_id, command = name, %source, "demo step refused");
                    summary.refused += 1;
                    if summary.refusal_samples.len() < 5 {
                        summary.refusal_samples.push(format!("{name}: {source}"));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // The watcher runs each morning at 09:00 local (the start time of day).
        let watch_at = day_end;
        clock.set(watch_at);
        let report = engine.check_deadlines(watch_at).await?;
        summary.urgings += report.issued.len() as u64;
        progress(day + 1, config.days);
    }
    clock.set(config.end());
    Ok(summary)
}
