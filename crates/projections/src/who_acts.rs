//! The who-acts table: a pure function from a case's state and the organisation to the
//! list of obligations — which unit (or department) must do what, by when, how urgently.
//!
//! This is the single place the table is written in code; `docs/projections.md` prints the
//! same table for people. The to-do lists are this function's output indexed by assignee,
//! and the statistics use it to tell whether each duty was done in time.

use std::fmt;

use caseflow_domain::{
    Case, CaseState, Category, CrossInspectionScope, DeadlineKind, DepartmentId, Disposition,
    Level, Organisation, RectificationStatus, ResponsibleParty, Satisfaction, Severity, Stage,
    UnitId, VisitResult,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApplyFailure;

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

/// What an assignee must do next. Each action corresponds to the command that discharges
/// it (named in the docs table).
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
) -> Result<Vec<Obligation>, ApplyFailure> {
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
                Some(c)
                    if c.category == Category::DisciplineClue
                        && c.severity == Severity::Grave
                        && case.joint_consultations.is_empty() =>
                {
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

fn zone_rooms(case: &Case, org: &Organisation) -> Result<Vec<UnitId>, ApplyFailure> {
    let zone = org
        .zone(&case.zone)
        .ok_or_else(|| ApplyFailure::UnknownParty(format!("zone {}", case.zone)))?;
    Ok(zone.rooms.clone())
}

fn known_unit(unit: &UnitId, org: &Organisation) -> Result<UnitId, ApplyFailure> {
    match org.unit(unit) {
        Some(u) => Ok(u.id.clone()),
        None => Err(ApplyFailure::UnknownParty(format!("unit {unit}"))),
    }
}

fn lead(case: &Case) -> Result<UnitId, ApplyFailure> {
    case.lead_unit().cloned().ok_or_else(|| {
        ApplyFailure::Invariant(format!("case at stage {} has no route", case.stage))
    })
}

fn handling(
    case: &Case,
    scope: CrossInspectionScope,
    out: &mut Table<'_>,
) -> Result<(), ApplyFailure> {
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
            return Err(ApplyFailure::Invariant(
                "a routed case without a category".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Verification: a cross-inspected clue needs its team before findings; team members
/// verify; the lead unit records the findings.
fn verification(case: &Case, lead: &UnitId, scope: CrossInspectionScope, out: &mut Table<'_>) {
    let handling = Some(DeadlineKind::Handling);
    let cross_inspected = case.classification.as_ref().is_some_and(|c| {
        c.category == Category::DisciplineClue
            && (c.involves_locality || scope == CrossInspectionScope::AllClues)
    });
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

/// Who supervises a responsible party's rectification: the team stationed in a
/// department; the locality of a village; otherwise the lead unit.
fn supervisor(
    party: &ResponsibleParty,
    lead: &UnitId,
    org: &Organisation,
) -> Result<UnitId, ApplyFailure> {
    match party {
        ResponsibleParty::Department(d) => {
            if org.department(d).is_none() {
                return Err(ApplyFailure::UnknownParty(format!("department {d}")));
            }
            Ok(org
                .team_stationed_in(d)
                .cloned()
                .unwrap_or_else(|| lead.clone()))
        }
        ResponsibleParty::Unit(u) => match org.level_of(u) {
            None => Err(ApplyFailure::UnknownParty(format!("unit {u}"))),
            Some(Level::Village) => org
                .locality_of(u)
                .cloned()
                .ok_or_else(|| ApplyFailure::UnknownParty(format!("locality of {u}"))),
            Some(_) => Ok(lead.clone()),
        },
    }
}

fn rectification(case: &Case, org: &Organisation, out: &mut Table<'_>) -> Result<(), ApplyFailure> {
    let lead = lead(case)?;
    let Some(r) = &case.rectification else {
        return Err(ApplyFailure::Invariant(
            "rectification stage without a rectification".to_owned(),
        ));
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
            return Err(ApplyFailure::Invariant(
                "rectification stage with a completed rectification".to_owned(),
            ));
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

fn review(case: &Case, org: &Organisation, out: &mut Table<'_>) -> Result<(), ApplyFailure> {
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
