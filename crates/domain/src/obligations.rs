//! The who-acts table: a pure function from a case's state and the organisation to the
//! list of obligations — which unit (or department) must do what, by when, how urgently.
//!
//! This is the single place the table is written in code; ARCHITECTURE.md and
//! docs/projections.md print the same table for people. The to-do lists are this function's
//! output indexed by assignee, the statistics use it to tell whether each duty was done in
//! time, and [`crate::next_commands`] names for each command the duty it discharges
//! ([`Action::discharged_by`]). The parties are the ones [`crate::authority`] admits.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::authority::supervisor_of;
use crate::command::CommandKind;
use crate::ids::{DepartmentId, UnitId, ZoneId};
use crate::model::{
    Category, DeadlineKind, Disposition, ResponsibleParty, Satisfaction, Severity, VisitResult,
};
use crate::org::Organisation;
use crate::policy::CrossInspectionScope;
use crate::state::{Case, CaseState, RectificationStatus, Stage};

/// Why the who-acts table cannot place a case's duties. Fatal for the read model that asked:
/// the case refers to something the organisation does not know (the district file changed
/// under a running store), or its state breaks an invariant `evolve` keeps for events
/// `decide` produced (the stream was written by something else).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ObligationError {
    /// A unit the case names is not in the organisation.
    #[error("unit {unit} is not in the organisation")]
    UnknownUnit {
        /// The unit.
        unit: UnitId,
    },
    /// A department the case names is not in the organisation.
    #[error("department {department} is not in the organisation")]
    UnknownDepartment {
        /// The department.
        department: DepartmentId,
    },
    /// The case's zone is not in the organisation.
    #[error("zone {zone} is not in the organisation")]
    UnknownZone {
        /// The zone.
        zone: ZoneId,
    },
    /// The case's state breaks an invariant of the workflow.
    #[error("inconsistent case: {reason}")]
    Inconsistent {
        /// Which invariant.
        reason: &'static str,
    },
}

/// Whose list an item is on: a unit of the commission at any level, or a partner
/// department (a department answers for rectifications; it works through the engine via
/// the team stationed in it, which sees the same case as a supervision item).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Assignee {
    /// A room, team, locality or village officer.
    Unit(UnitId),
    /// A partner or functional department.
    Department(DepartmentId),
}

impl Assignee {
    /// A unit assignee.
    pub fn unit(id: impl Into<UnitId>) -> Self {
        Assignee::Unit(id.into())
    }

    /// A department assignee.
    pub fn department(id: impl Into<DepartmentId>) -> Self {
        Assignee::Department(id.into())
    }
}

impl fmt::Display for Assignee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assignee::Unit(u) => write!(f, "{u}"),
            Assignee::Department(d) => write!(f, "{d}"),
        }
    }
}

impl From<ResponsibleParty> for Assignee {
    fn from(p: ResponsibleParty) -> Self {
        match p {
            ResponsibleParty::Unit(u) => Assignee::Unit(u),
            ResponsibleParty::Department(d) => Assignee::Department(d),
        }
    }
}

/// What an assignee must do next. Each action names the commands that discharge it
/// ([`Action::discharged_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Accept, decline, merge or transfer a reported case (`AcceptCase`, ...).
    DecideIntake,
    /// Classify the case and put it on the demand list (`ClassifyCase`).
    Classify,
    /// Hold the joint consultation a grave clue needs before routing (`RecordJointConsultation`).
    HoldJointConsultation,
    /// Route the case by level (`RouteCase`).
    Route,
    /// Choose the disposition of a discipline clue (`ChooseDisposition`).
    ChooseDisposition,
    /// Decide again on a clue held for later (`ChooseDisposition`).
    ReviewHeldClue,
    /// Form the cross-inspection verification team (`FormVerificationTeam`).
    FormVerificationTeam,
    /// Verify on the verification team (reports to the lead unit).
    Verify,
    /// Record the findings (`RecordFindings`).
    RecordFindings,
    /// Answer a consultation (`AnswerConsultation`).
    AnswerConsultation,
    /// Order the responsible party to rectify (`OrderRectification`), or close the case
    /// when nothing needs rectifying.
    OrderRectification,
    /// Write and submit the rectification plan (`SubmitRectificationPlan`).
    SubmitRectificationPlan,
    /// Carry out the plan and report completion (`ReportRectificationProgress`,
    /// `CompleteRectification`).
    CarryOutRectification,
    /// Supervise the responsible party's rectification and urge it when late (`UrgeOverdue`).
    SuperviseRectification,
    /// Schedule the follow-up visit (`ScheduleFollowUpVisit`).
    ScheduleFollowUpVisit,
    /// Check on site that the rectification held (`RecordFollowUpVisit`).
    VisitOnSite,
    /// Ask the reporter (or residents) whether they are satisfied (`RecordSatisfaction`).
    AskSatisfaction,
    /// Reopen the case after a failed visit or an unsatisfied reporter (`ReopenCase`).
    Reopen,
    /// Close the case with its outcome (`CloseCase`).
    Close,
}

impl Action {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::DecideIntake => "decide_intake",
            Action::Classify => "classify",
            Action::HoldJointConsultation => "hold_joint_consultation",
            Action::Route => "route",
            Action::ChooseDisposition => "choose_disposition",
            Action::ReviewHeldClue => "review_held_clue",
            Action::FormVerificationTeam => "form_verification_team",
            Action::Verify => "verify",
            Action::RecordFindings => "record_findings",
            Action::AnswerConsultation => "answer_consultation",
            Action::OrderRectification => "order_rectification",
            Action::SubmitRectificationPlan => "submit_rectification_plan",
            Action::CarryOutRectification => "carry_out_rectification",
            Action::SuperviseRectification => "supervise_rectification",
            Action::ScheduleFollowUpVisit => "schedule_follow_up_visit",
            Action::VisitOnSite => "visit_on_site",
            Action::AskSatisfaction => "ask_satisfaction",
            Action::Reopen => "reopen",
            Action::Close => "close",
        }
    }
}

impl Action {
    /// The commands that discharge this duty; empty for [`Action::Verify`] (team members
    /// report to the lead unit, which records the findings).
    pub fn discharged_by(self) -> &'static [CommandKind] {
        use CommandKind as K;
        match self {
            Action::DecideIntake => &[K::AcceptCase, K::DeclineCase, K::MergeCase, K::TransferCase],
            Action::Classify => &[K::ClassifyCase],
            Action::HoldJointConsultation => &[K::RecordJointConsultation],
            Action::Route => &[K::RouteCase],
            Action::ChooseDisposition | Action::ReviewHeldClue => &[K::ChooseDisposition],
            Action::FormVerificationTeam => &[K::FormVerificationTeam],
            Action::Verify => &[],
            Action::RecordFindings => &[K::RecordFindings],
            Action::AnswerConsultation => &[K::AnswerConsultation],
            Action::OrderRectification => &[K::OrderRectification],
            Action::SubmitRectificationPlan => &[K::SubmitRectificationPlan],
            // Progress reports are welcome but only completion ends the duty.
            Action::CarryOutRectification => &[K::CompleteRectification],
            Action::SuperviseRectification => &[K::UrgeOverdue],
            Action::ScheduleFollowUpVisit => &[K::ScheduleFollowUpVisit],
            Action::VisitOnSite => &[K::RecordFollowUpVisit],
            Action::AskSatisfaction => &[K::RecordSatisfaction],
            Action::Reopen => &[K::ReopenCase],
            Action::Close => &[K::CloseCase],
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an item is. Derived from the case alone (never from a clock), so it is the
/// same live and after a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Ordinary.
    Normal,
    /// A grave matter, or its time limit was urged (督办) once.
    High,
    /// Its time limit was escalated after a second urging.
    Urgent,
}

/// One duty the table assigns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Obligation {
    /// Who must act.
    pub assignee: Assignee,
    /// What they must do.
    pub action: Action,
    /// By when (`None`: no time limit runs for this step).
    pub due_at: Option<DateTime<Utc>>,
    /// The time limit that runs for this step, when one does: what identifies the duty
    /// across events while its due time moves (an extension, a renewed limit).
    pub deadline: Option<DeadlineKind>,
    /// How urgent.
    pub priority: Priority,
}

/// The who-acts table. Returns the obligations of a case in a deterministic order; an
/// empty list for a case that is not open (closed, declined, merged, transferred) or does
/// not exist. `scope` is the district's cross-inspection policy (it decides whether a clue
/// needs a verification team before findings). Fails only when the case names a unit or
/// department the organisation does not know (the table then cannot place the duty).
pub fn obligations(
    state: &CaseState,
    org: &Organisation,
    scope: CrossInspectionScope,
) -> Result<Vec<Obligation>, ObligationError> {
    let Some(case) = state.case() else {
        return Ok(Vec::new());
    };
    if !case.stage.is_open() {
        return Ok(Vec::new());
    }
    let mut out = Table {
        case,
        list: Vec::new(),
    };
    match case.stage {
        Stage::Intake => {
            // The rooms of the case's zone (whose staff are pooled) and the case's own
            // locality may decide intake; the case waits on all of them.
            let deadline = Some(DeadlineKind::IntakeDecision);
            for room in zone_rooms(case, org)? {
                out.push(Assignee::Unit(room), Action::DecideIntake, deadline);
            }
            out.push(
                Assignee::Unit(known_unit(&case.locality, org)?),
                Action::DecideIntake,
                deadline,
            );
        }
        Stage::Classification => {
            let deadline = Some(DeadlineKind::Classification);
            let (action, locality_may) = match &case.classification {
                None => (Action::Classify, true),
                Some(_) if case.awaits_joint_consultation() => {
                    // Before routing there is no lead unit: the zone's rooms convene it.
                    (Action::HoldJointConsultation, false)
                }
                // A locality may not route a case that involves itself.
                Some(c) => (Action::Route, !c.involves_locality),
            };
            for room in zone_rooms(case, org)? {
                out.push(Assignee::Unit(room), action, deadline);
            }
            if locality_may {
                out.push(
                    Assignee::Unit(known_unit(&case.locality, org)?),
                    action,
                    deadline,
                );
            }
        }
        Stage::Handling => handling(case, scope, &mut out)?,
        Stage::Rectification => rectification(case, org, &mut out)?,
        Stage::Review => review(case, org, &mut out)?,
        Stage::None | Stage::Closed | Stage::Declined | Stage::Merged | Stage::Transferred => {}
    }
    Ok(out.list)
}

struct Table<'a> {
    case: &'a Case,
    list: Vec<Obligation>,
}

impl Table<'_> {
    fn push(&mut self, assignee: Assignee, action: Action, deadline: Option<DeadlineKind>) {
        let open = deadline.and_then(|k| self.case.deadlines.get(&k));
        let grave = self
            .case
            .classification
            .as_ref()
            .is_some_and(|c| c.severity == Severity::Grave);
        let priority = match open {
            Some(d) if d.escalated.is_some() => Priority::Urgent,
            Some(d) if d.urged.is_some() => Priority::High,
            _ if grave => Priority::High,
            _ => Priority::Normal,
        };
        let obligation = Obligation {
            assignee,
            action,
            due_at: open.map(|d| d.due_at),
            deadline: open.and(deadline),
            priority,
        };
        // One unit can be named twice (e.g. lead and supervisor); keep one item per duty.
        if !self
            .list
            .iter()
            .any(|o| o.assignee == obligation.assignee && o.action == obligation.action)
        {
            self.list.push(obligation);
        }
    }
}

fn zone_rooms(case: &Case, org: &Organisation) -> Result<Vec<UnitId>, ObligationError> {
    let zone = org
        .zone(&case.zone)
        .ok_or_else(|| ObligationError::UnknownZone {
            zone: case.zone.clone(),
        })?;
    Ok(zone.rooms.clone())
}

fn known_unit(unit: &UnitId, org: &Organisation) -> Result<UnitId, ObligationError> {
    match org.unit(unit) {
        Some(u) => Ok(u.id.clone()),
        None => Err(ObligationError::UnknownUnit { unit: unit.clone() }),
    }
}

fn lead(case: &Case) -> Result<UnitId, ObligationError> {
    case.lead_unit()
        .cloned()
        .ok_or(ObligationError::Inconsistent {
            reason: "a case past classification has no route",
        })
}

fn handling(
    case: &Case,
    scope: CrossInspectionScope,
    out: &mut Table<'_>,
) -> Result<(), ObligationError> {
    let lead = lead(case)?;
    let handling = Some(DeadlineKind::Handling);
    let category = case.category();
    // After a reopening the earlier findings or answer stand and a new handling limit
    // runs: the lead unit rectifies again (or records new findings), by that limit.
    if let Some(finding) = case.finding {
        let action = if finding.is_substantiated() {
            Action::OrderRectification
        } else {
            Action::Close
        };
        out.push(Assignee::Unit(lead), action, handling);
        return Ok(());
    }
    match category {
        Some(Category::Consultation) => {
            let action = if case.answer.is_some() {
                Action::Close
            } else {
                Action::AnswerConsultation
            };
            out.push(Assignee::Unit(lead), action, handling);
        }
        Some(Category::DisciplineClue) => match case.disposition {
            None => out.push(Assignee::Unit(lead), Action::ChooseDisposition, handling),
            Some(Disposition::HoldForLater) => {
                out.push(
                    Assignee::Unit(lead),
                    Action::ReviewHeldClue,
                    Some(DeadlineKind::HoldReview),
                );
            }
            Some(Disposition::CloseWithoutAction) => {
                out.push(Assignee::Unit(lead), Action::Close, None)
            }
            Some(Disposition::PreliminaryVerification | Disposition::TalkOrLetterInquiry) => {
                verification(case, &lead, scope, out);
            }
        },
        // A mass demand: the lead unit establishes the facts with the responsible parties
        // (with a verification team if it formed one) and records findings.
        Some(Category::MassDemand) => verification(case, &lead, scope, out),
        None => {
            return Err(ObligationError::Inconsistent {
                reason: "a routed case without a category",
            });
        }
    }
    Ok(())
}

/// Verification: a cross-inspected clue needs its team before findings; team members
/// verify; the lead unit records the findings.
fn verification(case: &Case, lead: &UnitId, scope: CrossInspectionScope, out: &mut Table<'_>) {
    let handling = Some(DeadlineKind::Handling);
    let cross_inspected = case
        .classification
        .as_ref()
        .is_some_and(|c| scope.applies(c.category, c.involves_locality));
    match &case.verification_team {
        None if cross_inspected => {
            out.push(
                Assignee::Unit(lead.clone()),
                Action::FormVerificationTeam,
                handling,
            );
            return;
        }
        None => {}
        Some(team) => {
            for member in &team.members {
                if member != lead {
                    out.push(Assignee::Unit(member.clone()), Action::Verify, handling);
                }
            }
        }
    }
    out.push(
        Assignee::Unit(lead.clone()),
        Action::RecordFindings,
        handling,
    );
}

/// Who supervises a responsible party's rectification ([`supervisor_of`]), or why the
/// organisation cannot say.
fn supervisor(
    party: &ResponsibleParty,
    lead: &UnitId,
    org: &Organisation,
) -> Result<UnitId, ObligationError> {
    supervisor_of(party, lead, org).ok_or_else(|| match party {
        ResponsibleParty::Department(d) => ObligationError::UnknownDepartment {
            department: d.clone(),
        },
        ResponsibleParty::Unit(u) => ObligationError::UnknownUnit { unit: u.clone() },
    })
}

fn rectification(
    case: &Case,
    org: &Organisation,
    out: &mut Table<'_>,
) -> Result<(), ObligationError> {
    let lead = lead(case)?;
    let Some(r) = &case.rectification else {
        return Err(ObligationError::Inconsistent {
            reason: "rectification stage without a rectification",
        });
    };
    let (action, deadline) = match r.status {
        RectificationStatus::Ordered => (
            Action::SubmitRectificationPlan,
            DeadlineKind::RectificationPlan,
        ),
        RectificationStatus::PlanSubmitted => {
            (Action::CarryOutRectification, DeadlineKind::Rectification)
        }
        RectificationStatus::Completed => {
            return Err(ObligationError::Inconsistent {
                reason: "rectification stage with a completed rectification",
            });
        }
    };
    let supervising = supervisor(&r.responsible, &lead, org)?;
    out.push(
        Assignee::from(r.responsible.clone()),
        action,
        Some(deadline),
    );
    if Assignee::Unit(supervising.clone()) != Assignee::from(r.responsible.clone()) {
        out.push(
            Assignee::Unit(supervising),
            Action::SuperviseRectification,
            Some(deadline),
        );
    }
    Ok(())
}

fn review(case: &Case, org: &Organisation, out: &mut Table<'_>) -> Result<(), ObligationError> {
    let lead = lead(case)?;
    let review = Some(DeadlineKind::Review);
    // The village officer of the case's village asks the reporter; without a village the
    // lead unit does.
    let asker = match &case.village {
        Some(v) => known_unit(v, org)?,
        None => lead.clone(),
    };
    if case.last_visit == Some(VisitResult::Failed)
        || case.satisfaction == Some(Satisfaction::Unsatisfied)
    {
        out.push(Assignee::Unit(lead), Action::Reopen, review);
        return Ok(());
    }
    match (&case.scheduled_visit, case.last_visit) {
        (Some(visit), _) => {
            out.push(
                Assignee::Unit(visit.visitor.clone()),
                Action::VisitOnSite,
                review,
            );
        }
        (None, None) => out.push(
            Assignee::Unit(lead.clone()),
            Action::ScheduleFollowUpVisit,
            review,
        ),
        (None, Some(_)) => {}
    }
    if case.satisfaction.is_none() {
        out.push(Assignee::Unit(asker), Action::AskSatisfaction, review);
    }
    if case.last_visit == Some(VisitResult::Held) && case.satisfaction.is_some() {
        out.push(Assignee::Unit(lead), Action::Close, review);
    }
    Ok(())
}
