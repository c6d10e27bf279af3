//! What may happen next on a case: the commands that are legal now, who may issue each, the
//! to-do duty each discharges, and a ready-to-issue draft.
//!
//! Nothing here restates a rule. For every command that applies in the case's stage
//! ([`allowed_stages`]), a draft is built from the policies' suggestions and the same field
//! checks `decide` makes; its issuers are the actors the command's rule in
//! [`crate::authority`] admits; and the command is listed only if [`decide`] accepts the
//! draft from the first of them. The property tests check that every listed command is
//! accepted from every listed issuer, and that every duty of [`crate::obligations`] is
//! discharged by a listed command of one of its assignees.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::authority::authority;
use crate::calendar::Calendar;
use crate::command::*;
use crate::decide::{
    self, Context, allowed_stages, check_participant, check_responsible, check_route_lead,
    check_team_leader, check_team_member, check_visitor, decide, expected_outcome, urgeable,
};
use crate::ids::{CaseId, DepartmentId, UnitId};
use crate::model::{
    Actor, CaseKind, CaseOutcome, Category, DeadlineKind, DeclineReason, DisciplineMeasure,
    DisciplinedPerson, Disposition, Finding, ResponsibleParty, Satisfaction, Severity, VisitResult,
};
use crate::obligations::{Action, obligations};
use crate::org::{Organisation, Unit};
use crate::policy::{Policies, RouteSuggestion};
use crate::state::{Case, CaseState};

/// Everything [`next_commands`] needs besides the case: the district and the time it is
/// asked at (a deadline may be urged only once it has passed), and the text its drafts
/// carry in their free-text fields.
#[derive(Clone, Copy, Debug)]
pub struct NextContext<'a> {
    /// The district's organisation.
    pub org: &'a Organisation,
    /// The district's working calendar.
    pub calendar: &'a Calendar,
    /// Time limits and routing policy.
    pub policies: &'a Policies,
    /// When the commands would be issued.
    pub now: DateTime<Utc>,
    /// The text of every free-text field of a draft (summaries, notes, reasons). Never empty:
    /// an empty note is replaced by [`NextContext::DEFAULT_NOTE`].
    pub note: &'a str,
}

impl<'a> NextContext<'a> {
    /// The note drafts carry when the caller gives none.
    pub const DEFAULT_NOTE: &'static str = "—";

    /// A context at `now` whose drafts carry [`NextContext::DEFAULT_NOTE`].
    pub fn new(
        org: &'a Organisation,
        calendar: &'a Calendar,
        policies: &'a Policies,
        now: DateTime<Utc>,
    ) -> Self {
        NextContext {
            org,
            calendar,
            policies,
            now,
            note: Self::DEFAULT_NOTE,
        }
    }

    /// The same context with drafts carrying `note`.
    pub fn with_note(self, note: &'a str) -> Self {
        NextContext { note, ..self }
    }

    fn note(&self) -> String {
        if self.note.trim().is_empty() {
            Self::DEFAULT_NOTE.to_owned()
        } else {
            self.note.to_owned()
        }
    }

    fn decision_context<'c>(&'c self, actor: &'c Actor) -> Context<'c> {
        Context::new(actor, self.now, self.org, self.calendar, self.policies)
    }
}

/// One command that is legal now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NextCommand {
    /// Which command.
    pub kind: CommandKind,
    /// Every actor (unit and role) who may issue it now, the natural one first (the lead
    /// unit before the zone's rooms, a leader before a case officer).
    pub issuers: Vec<Actor>,
    /// The to-do duties it discharges (empty for optional steps such as a progress report
    /// or recording discipline).
    pub discharges: Vec<Action>,
    /// A command `decide` accepts now from any of the issuers, built from the policies'
    /// suggestions, with [`NextContext::note`] in its free-text fields; adjust any field
    /// within [`command_options`]. `None` for `MergeCase`, whose target (another open case)
    /// only the caller can choose.
    pub draft: Option<Command>,
}

impl NextCommand {
    /// Whether `actor` may issue this command now.
    pub fn may_issue(&self, actor: &Actor) -> bool {
        self.issuers.contains(actor)
    }
}

/// The commands legal now on a case, in [`CommandKind::ALL`] order (an `UrgeOverdue` for each
/// deadline that may be urged or escalated). Empty before the case is reported (the first
/// command, `ReportCase`, names its own place and needs no case) and after it ended.
pub fn next_commands(state: &CaseState, ctx: &NextContext<'_>) -> Vec<NextCommand> {
    let duties = duties(state, ctx);
    CommandKind::ALL
        .iter()
        .flat_map(|kind| listed_of(state, *kind, ctx, &duties))
        .collect()
}

/// The actions on the case's to-do lists now (empty where the table cannot place them).
fn duties(state: &CaseState, ctx: &NextContext<'_>) -> Vec<Action> {
    let mut actions: Vec<Action> = obligations(state, ctx.org, ctx.policies.cross_inspection)
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.action)
        .collect();
    actions.dedup();
    actions
}

/// The commands of one kind legal now on a case (usually none or one; `UrgeOverdue` once per
/// urgeable deadline). Cheaper than [`next_commands`] when the caller knows what it wants.
pub fn next_commands_of(
    state: &CaseState,
    kind: CommandKind,
    ctx: &NextContext<'_>,
) -> Vec<NextCommand> {
    listed_of(state, kind, ctx, &duties(state, ctx))
}

fn listed_of(
    state: &CaseState,
    kind: CommandKind,
    ctx: &NextContext<'_>,
    duties: &[Action],
) -> Vec<NextCommand> {
    let Some(case) = state.case() else {
        return Vec::new();
    };
    if !allowed_stages(kind).contains(&case.stage) {
        return Vec::new();
    }
    probes(kind, state, case, ctx)
        .into_iter()
        .filter_map(|probe| admitted(state, case, probe, ctx, duties))
        .collect()
}

/// A command built to ask `decide` whether its kind is legal now, and whether it is a draft
/// the caller can issue as is.
struct Probe {
    command: Command,
    is_draft: bool,
}

fn admitted(
    state: &CaseState,
    case: &Case,
    probe: Probe,
    ctx: &NextContext<'_>,
    duties: &[Action],
) -> Option<NextCommand> {
    let rule = authority(&probe.command, case)?;
    let issuers = rule.actors(case, ctx.org);
    let first = issuers.first()?;
    decide(state, &probe.command, &ctx.decision_context(first)).ok()?;
    let kind = probe.command.kind();
    let discharges = duties
        .iter()
        .copied()
        .filter(|a| a.discharged_by().contains(&kind))
        .fold(Vec::new(), push_unique);
    Some(NextCommand {
        kind,
        issuers,
        discharges,
        draft: probe.is_draft.then_some(probe.command),
    })
}

fn draft(command: impl Into<Command>) -> Vec<Probe> {
    vec![Probe {
        command: command.into(),
        is_draft: true,
    }]
}

/// The category a case of this kind is usually given at classification.
pub fn suggested_category(kind: CaseKind) -> Category {
    match kind {
        CaseKind::ProblemClue => Category::DisciplineClue,
        CaseKind::Consultation => Category::Consultation,
        CaseKind::Complaint | CaseKind::Suggestion => Category::MassDemand,
    }
}

fn probes(kind: CommandKind, state: &CaseState, case: &Case, ctx: &NextContext<'_>) -> Vec<Probe> {
    let case_id = case.id;
    let note = ctx.note();
    use CommandKind as K;
    match kind {
        K::ReportCase => Vec::new(),
        K::AcceptCase => draft(AcceptCase { case_id }),
        K::DeclineCase => draft(DeclineCase {
            case_id,
            reason: DeclineReason::OutsideRemit,
            explanation: note,
        }),
        K::MergeCase => vec![Probe {
            command: MergeCase {
                case_id,
                into: other_case(case_id),
            }
            .into(),
            is_draft: false,
        }],
        K::TransferCase => draft(TransferCase {
            case_id,
            to_authority: note.clone(),
            reason: note,
        }),
        K::ClassifyCase => draft(ClassifyCase {
            case_id,
            category: suggested_category(case.kind),
            focus_area: case.focus_area,
            severity: Severity::Ordinary,
            involves_locality: false,
            involved_department: None,
        }),
        K::RecordJointConsultation => draft(RecordJointConsultation {
            case_id,
            participants: participants(case, ctx).into_iter().take(1).collect(),
            departments: Vec::new(),
            conclusion: note,
        }),
        K::RouteCase => route_probe(state, case, ctx),
        K::ChooseDisposition => draft(ChooseDisposition {
            case_id,
            disposition: Disposition::PreliminaryVerification,
        }),
        K::FormVerificationTeam => team_probe(case, ctx),
        K::RecordFindings => draft(RecordFindings {
            case_id,
            finding: Finding::Substantiated,
            summary: note,
        }),
        K::RecordDiscipline => draft(RecordDiscipline {
            case_id,
            people: vec![DisciplinedPerson {
                name: note.clone(),
                position: note,
                measure: DisciplineMeasure::CriticismAndEducation,
            }],
        }),
        K::AnswerConsultation => draft(AnswerConsultation {
            case_id,
            answer: note,
        }),
        K::OrderRectification => order_probe(case, note),
        other => later_probes(other, state, case, ctx, note),
    }
}

/// The probes of the rectification and review stages, and of urging.
fn later_probes(
    kind: CommandKind,
    state: &CaseState,
    case: &Case,
    ctx: &NextContext<'_>,
    note: String,
) -> Vec<Probe> {
    let case_id = case.id;
    use CommandKind as K;
    match kind {
        K::SubmitRectificationPlan => draft(SubmitRectificationPlan {
            case_id,
            measures: vec![note],
            deadline: latest_plan_deadline(ctx),
        }),
        K::ReportRectificationProgress => draft(ReportRectificationProgress {
            case_id,
            note,
            percent_complete: 50,
        }),
        K::CompleteRectification => draft(CompleteRectification {
            case_id,
            evidence: vec![note.clone()],
            summary: note,
        }),
        K::UrgeOverdue => urgeable(state, ctx.now)
            .into_iter()
            .flat_map(|(deadline, _)| {
                draft(UrgeOverdue {
                    case_id,
                    deadline,
                    note: note.clone(),
                })
            })
            .collect(),
        K::ScheduleFollowUpVisit => visit_probe(case, ctx),
        K::RecordFollowUpVisit => draft(RecordFollowUpVisit {
            case_id,
            result: VisitResult::Held,
            notes: note,
        }),
        K::RecordSatisfaction => draft(RecordSatisfaction {
            case_id,
            satisfaction: Satisfaction::Satisfied,
            comment: note,
        }),
        K::ReopenCase => draft(ReopenCase {
            case_id,
            reason: note,
        }),
        K::CloseCase => match expected_outcome(case) {
            Ok(outcome) => draft(CloseCase {
                case_id,
                outcome,
                summary: note,
            }),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// An id other than the case's own, to ask whether a merge is legal at all (the domain sees
/// one stream; the engine checks the real target).
fn other_case(case_id: CaseId) -> CaseId {
    CaseId::new(Uuid::from_u128(case_id.as_uuid().as_u128() ^ 1))
}

fn route_probe(state: &CaseState, case: &Case, ctx: &NextContext<'_>) -> Vec<Probe> {
    match ctx.policies.suggest_route_for(ctx.org, state) {
        Ok(s) => draft(RouteCase {
            case_id: case.id,
            lead_unit: s.lead_unit,
            responsible: s.responsible,
            time_limit_days: None,
        }),
        Err(_) => Vec::new(),
    }
}

fn team_probe(case: &Case, ctx: &NextContext<'_>) -> Vec<Probe> {
    let leader = first_passing(team_leader_candidates(case, ctx), ctx, |u| {
        check_team_leader(u, case, ctx.policies).is_ok()
    });
    let member = first_passing(team_member_candidates(case, ctx), ctx, |u| {
        check_team_member(u, case, ctx.policies).is_ok()
    });
    match (leader, member) {
        (Some(leader), Some(member)) => draft(FormVerificationTeam {
            case_id: case.id,
            leader,
            members: vec![member],
        }),
        _ => Vec::new(),
    }
}

fn order_probe(case: &Case, note: String) -> Vec<Probe> {
    match case.route.as_ref().and_then(|r| r.responsible.first()) {
        Some(responsible) => draft(OrderRectification {
            case_id: case.id,
            responsible: responsible.clone(),
            requirements: note,
        }),
        None => Vec::new(),
    }
}

fn visit_probe(case: &Case, ctx: &NextContext<'_>) -> Vec<Probe> {
    let first = first_passing(visitor_candidates(case, ctx), ctx, |u| {
        check_visitor(u, case).is_ok()
    });
    let Some(visitor) = first else {
        return Vec::new();
    };
    let scheduled_for = ctx.calendar.add_working_days(ctx.now, 1);
    draft(ScheduleFollowUpVisit {
        case_id: case.id,
        visitor,
        scheduled_for,
    })
}

fn latest_plan_deadline(ctx: &NextContext<'_>) -> DateTime<Utc> {
    decide::latest_plan_deadline(ctx.calendar, ctx.policies, ctx.now)
}

/// The units of the case's zone that may sit in its joint consultation: rooms, teams, then
/// localities, in the district file's order.
fn participants(case: &Case, ctx: &NextContext<'_>) -> Vec<UnitId> {
    let Some(zone) = ctx.org.zone(&case.zone) else {
        return Vec::new();
    };
    let zone_units = zone.rooms.iter().chain(&zone.teams).chain(&zone.localities);
    passing(zone_units.cloned(), ctx, |u| {
        check_participant(u, case).is_ok()
    })
}

/// The candidates the organisation knows that pass a check of `decide`, each once, in order.
/// A set keeps them unique: a linear search per candidate made listing the visitors of a
/// 136-unit district cost ~9,000 id comparisons, three times per scheduled visit.
fn passing(
    candidates: impl Iterator<Item = UnitId>,
    ctx: &NextContext<'_>,
    check: impl Fn(&Unit) -> bool,
) -> Vec<UnitId> {
    let mut seen = BTreeSet::new();
    candidates
        .filter(|id| ctx.org.unit(id).is_some_and(&check))
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// The first of [`passing`] without listing the rest (a probe needs only one).
fn first_passing(
    mut candidates: impl Iterator<Item = UnitId>,
    ctx: &NextContext<'_>,
    check: impl Fn(&Unit) -> bool,
) -> Option<UnitId> {
    candidates.find(|id| ctx.org.unit(id).is_some_and(&check))
}

/// Every unit of the district, in file order.
fn all_units<'c>(ctx: &NextContext<'c>) -> impl Iterator<Item = UnitId> + 'c {
    ctx.org.units().map(|u| u.id.clone())
}

/// The units that may lead the verification team, the lead unit first.
fn team_leaders(case: &Case, ctx: &NextContext<'_>) -> Vec<UnitId> {
    passing(team_leader_candidates(case, ctx), ctx, |u| {
        check_team_leader(u, case, ctx.policies).is_ok()
    })
}

fn team_leader_candidates<'c>(
    case: &Case,
    ctx: &NextContext<'c>,
) -> impl Iterator<Item = UnitId> + 'c {
    case.lead_unit().cloned().into_iter().chain(all_units(ctx))
}

/// The units that may serve on the verification team: the other localities of the case's
/// zone first, then everyone else the rules admit.
fn team_members(case: &Case, ctx: &NextContext<'_>) -> Vec<UnitId> {
    passing(team_member_candidates(case, ctx), ctx, |u| {
        check_team_member(u, case, ctx.policies).is_ok()
    })
}

fn team_member_candidates<'c>(
    case: &Case,
    ctx: &NextContext<'c>,
) -> impl Iterator<Item = UnitId> + 'c {
    let zone_localities = ctx
        .org
        .zone(&case.zone)
        .map(|z| z.localities.clone())
        .unwrap_or_default();
    let own = case.locality.clone();
    let preferred = zone_localities.into_iter().filter(move |l| l != &own);
    preferred.chain(all_units(ctx))
}

/// The units that may make the follow-up visit: the case's village officer first, then the
/// lead unit, then everyone else the rules admit.
fn visitors(case: &Case, ctx: &NextContext<'_>) -> Vec<UnitId> {
    passing(visitor_candidates(case, ctx), ctx, |u| {
        check_visitor(u, case).is_ok()
    })
}

fn visitor_candidates<'c>(case: &Case, ctx: &NextContext<'c>) -> impl Iterator<Item = UnitId> + 'c {
    let first: Vec<UnitId> = case
        .village
        .iter()
        .chain(case.lead_unit())
        .cloned()
        .collect();
    first.into_iter().chain(all_units(ctx))
}

fn push_unique<T: PartialEq>(mut acc: Vec<T>, item: T) -> Vec<T> {
    if !acc.contains(&item) {
        acc.push(item);
    }
    acc
}

/// The legal values of a command's constrained fields, for a form or a simulation to choose
/// from. Fields not named here are free text, or take every value of their type (a finding,
/// a satisfaction, a disposition, a severity, a focus area).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommandOptions {
    /// Nothing constrained beyond the field types.
    Free,
    /// `into`: another open case (the engine checks it exists and is open).
    MergeCase,
    /// Classification.
    ClassifyCase {
        /// The category the case's kind is usually given.
        suggested_category: Category,
        /// Departments the case may involve.
        departments: Vec<DepartmentId>,
    },
    /// Joint consultation.
    RecordJointConsultation {
        /// Units that may take part.
        participants: Vec<UnitId>,
        /// Departments that may take part.
        departments: Vec<DepartmentId>,
    },
    /// Routing.
    RouteCase {
        /// Units that may lead.
        leads: Vec<UnitId>,
        /// Parties that may answer for the case.
        responsible: Vec<ResponsibleParty>,
        /// The routing policy's suggestion.
        suggestion: Option<RouteSuggestion>,
        /// The longest handling limit an override may set.
        max_time_limit_days: u32,
    },
    /// The verification team.
    FormVerificationTeam {
        /// Units that may lead it.
        leaders: Vec<UnitId>,
        /// Units that may serve on it.
        members: Vec<UnitId>,
    },
    /// Ordering rectification.
    OrderRectification {
        /// The route's responsible parties.
        responsible: Vec<ResponsibleParty>,
    },
    /// The rectification plan.
    SubmitRectificationPlan {
        /// The plan's deadline must be after now and not after this.
        latest_deadline: DateTime<Utc>,
    },
    /// Urging.
    UrgeOverdue {
        /// The deadlines that may be urged now, and whether urging one now escalates it.
        deadlines: Vec<(DeadlineKind, bool)>,
    },
    /// The follow-up visit.
    ScheduleFollowUpVisit {
        /// Units that may visit.
        visitors: Vec<UnitId>,
        /// The visit must be planned after now and not after this.
        latest: DateTime<Utc>,
    },
    /// Closing.
    CloseCase {
        /// The one outcome the case's record supports.
        outcome: CaseOutcome,
    },
}

/// The legal values of the constrained fields of `kind` on this case now, or `None` when the
/// command is not legal now (see [`next_commands_of`]).
pub fn command_options(
    state: &CaseState,
    kind: CommandKind,
    ctx: &NextContext<'_>,
) -> Option<CommandOptions> {
    let legal = next_commands_of(state, kind, ctx);
    if legal.is_empty() {
        return None;
    }
    let case = state.case()?;
    let departments = || ctx.org.departments().map(|d| d.id.clone()).collect();
    use CommandKind as K;
    Some(match kind {
        K::MergeCase => CommandOptions::MergeCase,
        K::ClassifyCase => CommandOptions::ClassifyCase {
            suggested_category: suggested_category(case.kind),
            departments: departments(),
        },
        K::RecordJointConsultation => CommandOptions::RecordJointConsultation {
            participants: participants(case, ctx),
            departments: departments(),
        },
        K::RouteCase => route_options(state, case, ctx),
        K::FormVerificationTeam => CommandOptions::FormVerificationTeam {
            leaders: team_leaders(case, ctx),
            members: team_members(case, ctx),
        },
        K::OrderRectification => CommandOptions::OrderRectification {
            responsible: case
                .route
                .as_ref()
                .map(|r| r.responsible.clone())
                .unwrap_or_default(),
        },
        K::SubmitRectificationPlan => CommandOptions::SubmitRectificationPlan {
            latest_deadline: latest_plan_deadline(ctx),
        },
        K::UrgeOverdue => CommandOptions::UrgeOverdue {
            deadlines: urgeable(state, ctx.now),
        },
        K::ScheduleFollowUpVisit => CommandOptions::ScheduleFollowUpVisit {
            visitors: visitors(case, ctx),
            latest: decide::latest_visit(ctx.calendar, ctx.policies, ctx.now),
        },
        K::CloseCase => CommandOptions::CloseCase {
            outcome: expected_outcome(case).ok()?,
        },
        _ => CommandOptions::Free,
    })
}

fn route_options(state: &CaseState, case: &Case, ctx: &NextContext<'_>) -> CommandOptions {
    let leads = ctx
        .org
        .units()
        .filter(|u| check_route_lead(u, case, ctx.policies).is_ok())
        .map(|u| u.id.clone())
        .collect();
    let units = ctx
        .org
        .units()
        .map(|u| ResponsibleParty::Unit(u.id.clone()));
    let departments = ctx
        .org
        .departments()
        .map(|d| ResponsibleParty::Department(d.id.clone()));
    let responsible = units
        .chain(departments)
        .filter(|p| check_responsible(p, ctx.org).is_ok())
        .collect();
    CommandOptions::RouteCase {
        leads,
        responsible,
        suggestion: ctx.policies.suggest_route_for(ctx.org, state).ok(),
        max_time_limit_days: ctx.policies.limits.route_limit_max_days,
    }
}
