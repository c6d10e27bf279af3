//! `decide`: checks a command against the case, the organisation, the actor and the time,
//! and returns the events it produces, or why it is refused. Pure: everything it needs comes
//! in through its arguments.

use chrono::{DateTime, Utc};

use crate::calendar::Calendar;
use crate::command::*;
use crate::error::DomainError;
use crate::event::*;
use crate::ids::{DepartmentId, UnitId};
use crate::model::{
    Actor, CaseOutcome, Category, Channel, DeadlineKind, Disposition, Finding, Reporter,
    ResponsibleParty, Role, Satisfaction, VisitResult,
};
use crate::org::{Level, Organisation, Unit};
use crate::policy::Policies;
use crate::state::{Case, CaseState, RectificationStatus, Stage};

/// Everything a decision needs besides the case and the command: who acts, when, and under
/// which organisation, calendar and policies.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The acting unit and role.
    pub actor: &'a Actor,
    /// When the command was issued (the engine's clock, injected).
    pub issued_at: DateTime<Utc>,
    /// The district's organisation.
    pub org: &'a Organisation,
    /// The district's working calendar.
    pub calendar: &'a Calendar,
    /// Time limits and routing policy.
    pub policies: &'a Policies,
}

impl<'a> Context<'a> {
    /// Builds a context.
    pub fn new(
        actor: &'a Actor,
        issued_at: DateTime<Utc>,
        org: &'a Organisation,
        calendar: &'a Calendar,
        policies: &'a Policies,
    ) -> Self {
        Context {
            actor,
            issued_at,
            org,
            calendar,
            policies,
        }
    }

    /// The due time of a limit of `days` working days starting now. Limits below one working
    /// day are treated as one, so a due time is always after its issue time.
    fn due(&self, days: u32) -> DateTime<Utc> {
        self.calendar.add_working_days(self.issued_at, days.max(1))
    }
}

/// The acting unit, resolved against the organisation, with helpers for the authorization
/// rules (docs/domain.md, "Authorization").
struct Acting<'c> {
    ctx: &'c Context<'c>,
    unit: &'c Unit,
    command: &'static str,
}

impl Acting<'_> {
    fn role(&self) -> Role {
        self.ctx.actor.role
    }

    fn deny(&self, rule: &'static str) -> DomainError {
        DomainError::NotAuthorized {
            command: self.command,
            unit: self.unit.id.clone(),
            role: self.role(),
            rule,
        }
    }

    fn is_lead(&self, case: &Case) -> bool {
        case.lead_unit() == Some(&self.unit.id)
    }

    fn is_zone_room(&self, case: &Case) -> bool {
        self.unit.level == Level::Room && self.unit.zone == case.zone
    }

    fn is_leader(&self) -> bool {
        self.role() == Role::Leader
    }

    /// Intake decisions: any room or team, or the case's own locality; not a village officer.
    fn may_decide_intake(&self, case: &Case) -> Result<(), DomainError> {
        match self.unit.level {
            Level::Room | Level::Team => Ok(()),
            Level::Locality if self.unit.id == case.locality => Ok(()),
            Level::Locality => Err(self.deny("a locality decides intake only in its own area")),
            Level::Village => {
                Err(self.deny("a village officer reports but does not decide intake"))
            }
        }
    }

    fn must_lead(&self, case: &Case, leader_only: bool) -> Result<(), DomainError> {
        if !self.is_lead(case) {
            return Err(self.deny("only the lead unit may do this"));
        }
        if leader_only && !self.is_leader() {
            return Err(self.deny("this is a decision for the lead unit's leader"));
        }
        Ok(())
    }

    fn must_lead_or_zone_room(&self, case: &Case, leader_only: bool) -> Result<(), DomainError> {
        if !(self.is_lead(case) || self.is_zone_room(case)) {
            return Err(self.deny("only the lead unit or a room of the case's zone may do this"));
        }
        if leader_only && !self.is_leader() {
            return Err(self.deny("this is a decision for a leader"));
        }
        Ok(())
    }

    /// The responsible party acts itself if it is a unit; a department acts through the team
    /// stationed in it.
    fn must_be_responsible(&self, party: &ResponsibleParty) -> Result<(), DomainError> {
        let ok = match party {
            ResponsibleParty::Unit(u) => &self.unit.id == u,
            ResponsibleParty::Department(d) => {
                self.ctx.org.team_stationed_in(d) == Some(&self.unit.id)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(self.deny(
                "only the responsible party (a department through its stationed team) may do this",
            ))
        }
    }
}

fn non_empty(field: &'static str, text: &str) -> Result<(), DomainError> {
    if text.trim().is_empty() {
        Err(DomainError::InvalidInput {
            field,
            reason: "must not be empty",
        })
    } else {
        Ok(())
    }
}

fn non_empty_list(field: &'static str, items: &[String]) -> Result<(), DomainError> {
    if items.is_empty() {
        return Err(DomainError::InvalidInput {
            field,
            reason: "must have at least one entry",
        });
    }
    for i in items {
        non_empty(field, i)?;
    }
    Ok(())
}

fn no_repeats<T: Ord>(field: &'static str, items: &[T]) -> Result<(), DomainError> {
    let mut seen = std::collections::BTreeSet::new();
    if items.iter().all(|i| seen.insert(i)) {
        Ok(())
    } else {
        Err(DomainError::InvalidInput {
            field,
            reason: "has a repeated entry",
        })
    }
}

fn unit<'o>(org: &'o Organisation, id: &UnitId) -> Result<&'o Unit, DomainError> {
    org.unit(id)
        .ok_or_else(|| DomainError::UnknownUnit { unit: id.clone() })
}

fn department(org: &Organisation, id: &DepartmentId) -> Result<(), DomainError> {
    org.department(id)
        .map(|_| ())
        .ok_or_else(|| DomainError::UnknownDepartment {
            department: id.clone(),
        })
}

fn stage_in(command: &'static str, case: &Case, allowed: &[Stage]) -> Result<(), DomainError> {
    if allowed.contains(&case.stage) {
        Ok(())
    } else {
        Err(DomainError::WrongStage {
            command,
            stage: case.stage,
        })
    }
}

fn category(case: &Case) -> Result<Category, DomainError> {
    case.category().ok_or(DomainError::PrerequisiteMissing {
        missing: "classification",
    })
}

/// Whether cross-inspection applies to the case, and which locality is then "involved".
fn cross_inspected<'c>(case: &'c Case, policies: &Policies) -> Option<&'c UnitId> {
    let class = case.classification.as_ref()?;
    policies
        .cross_inspection_applies(class.category, class.involves_locality)
        .then_some(&case.locality)
}

/// Decides a command. See the module documentation and docs/domain.md for the rules.
pub fn decide(
    state: &CaseState,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Vec<CaseEvent>, DomainError> {
    let actor_unit = unit(ctx.org, &ctx.actor.unit)?;
    if !ctx.actor.role.valid_at(actor_unit.level) {
        return Err(DomainError::RoleNotValidForLevel {
            unit: actor_unit.id.clone(),
            role: ctx.actor.role,
            level: actor_unit.level,
        });
    }
    let acting = Acting {
        ctx,
        unit: actor_unit,
        command: command.name(),
    };
    let Some(case) = state.case() else {
        return match command {
            Command::ReportCase(c) => report(c, &acting),
            _ => Err(DomainError::CaseNotFound),
        };
    };
    if command.case_id() != case.id {
        return Err(DomainError::CaseMismatch {
            state_case: case.id,
            command_case: command.case_id(),
        });
    }
    if matches!(command, Command::ReportCase(_)) {
        return Err(DomainError::CaseAlreadyExists { case_id: case.id });
    }
    if ctx.issued_at < case.last_event_at {
        return Err(DomainError::IssuedBeforeLastEvent {
            issued_at: ctx.issued_at,
            last_event_at: case.last_event_at,
        });
    }
    if case.stage.is_final() {
        return Err(DomainError::CaseFinished { stage: case.stage });
    }
    if case.stage == Stage::Closed && !matches!(command, Command::ReopenCase(_)) {
        return Err(DomainError::CaseClosed);
    }
    let event: CaseEvent = match command {
        Command::ReportCase(_) => return Err(DomainError::CaseAlreadyExists { case_id: case.id }),
        Command::AcceptCase(c) => accept(c, case, &acting)?,
        Command::DeclineCase(c) => decline(c, case, &acting)?,
        Command::MergeCase(c) => merge(c, case, &acting)?,
        Command::TransferCase(c) => transfer(c, case, &acting)?,
        Command::ClassifyCase(c) => classify(c, case, &acting)?,
        Command::RecordJointConsultation(c) => joint_consultation(c, case, &acting)?,
        Command::RouteCase(c) => route(c, case, &acting)?,
        Command::ChooseDisposition(c) => disposition(c, case, &acting)?,
        Command::FormVerificationTeam(c) => verification_team(c, case, &acting)?,
        Command::RecordFindings(c) => findings(c, case, &acting)?,
        Command::RecordDiscipline(c) => discipline(c, case, &acting)?,
        Command::AnswerConsultation(c) => answer(c, case, &acting)?,
        Command::OrderRectification(c) => order_rectification(c, case, &acting)?,
        Command::SubmitRectificationPlan(c) => submit_plan(c, case, &acting)?,
        Command::ReportRectificationProgress(c) => progress(c, case, &acting)?,
        Command::CompleteRectification(c) => complete(c, case, &acting)?,
        Command::UrgeOverdue(c) => urge(c, case, &acting)?,
        Command::ScheduleFollowUpVisit(c) => schedule_visit(c, case, &acting)?,
        Command::RecordFollowUpVisit(c) => record_visit(c, case, &acting)?,
        Command::RecordSatisfaction(c) => satisfaction(c, case, &acting)?,
        Command::ReopenCase(c) => reopen(c, case, &acting)?,
        Command::CloseCase(c) => close(c, case, &acting)?,
    };
    Ok(vec![event])
}

fn report(c: &ReportCase, a: &Acting<'_>) -> Result<Vec<CaseEvent>, DomainError> {
    let org = a.ctx.org;
    let locality = unit(org, &c.locality)?;
    if locality.level != Level::Locality {
        return Err(DomainError::WrongLevel {
            field: "locality",
            unit: locality.id.clone(),
            actual: locality.level,
            expected: Level::Locality,
        });
    }
    if let Some(v) = &c.village {
        let village = unit(org, v)?;
        if village.level != Level::Village {
            return Err(DomainError::WrongLevel {
                field: "village",
                unit: village.id.clone(),
                actual: village.level,
                expected: Level::Village,
            });
        }
        if village.locality.as_ref() != Some(&locality.id) {
            return Err(DomainError::VillageNotInLocality {
                village: village.id.clone(),
                locality: locality.id.clone(),
            });
        }
    }
    match a.unit.level {
        Level::Village if c.village.as_ref() != Some(&a.unit.id) => {
            return Err(a.deny("a village officer reports only for its own village or community"));
        }
        Level::Locality if c.locality != a.unit.id => {
            return Err(a.deny("a locality registers cases only in its own town or street"));
        }
        _ => {}
    }
    non_empty("summary", &c.summary)?;
    non_empty("subject", &c.subject)?;
    match (
        &c.source_department,
        c.channel == Channel::DepartmentTransfer,
    ) {
        (Some(d), true) => department(org, d)?,
        (None, false) => {}
        (None, true) => {
            return Err(DomainError::InvalidInput {
                field: "source_department",
                reason: "a department transfer names the transferring department",
            });
        }
        (Some(_), false) => {
            return Err(DomainError::InvalidInput {
                field: "source_department",
                reason: "only a department transfer names a source department",
            });
        }
    }
    if let Reporter::Named(contact) = &c.reporter {
        if contact.expose_name().trim().is_empty() && contact.expose_phone().trim().is_empty() {
            return Err(DomainError::InvalidInput {
                field: "reporter",
                reason: "a named reporter needs a name or a phone number",
            });
        }
    }
    Ok(vec![
        CaseReported {
            case_id: c.case_id,
            at: a.ctx.issued_at,
            by: a.ctx.actor.clone(),
            channel: c.channel,
            kind: c.kind,
            summary: c.summary.clone(),
            locality: locality.id.clone(),
            village: c.village.clone(),
            zone: locality.zone.clone(),
            subject: c.subject.clone(),
            focus_area: c.focus_area,
            reporter: c.reporter.clone(),
            reporter_handle: c.reporter_handle,
            source_department: c.source_department.clone(),
            intake_due_at: a.ctx.due(a.ctx.policies.limits.intake_decision_days),
        }
        .into(),
    ])
}

fn accept(c: &AcceptCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Intake])?;
    a.may_decide_intake(case)?;
    Ok(CaseAccepted {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        classification_due_at: a.ctx.due(a.ctx.policies.limits.classification_days),
    }
    .into())
}

fn decline(c: &DeclineCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Intake])?;
    a.may_decide_intake(case)?;
    non_empty("explanation", &c.explanation)?;
    Ok(CaseDeclined {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        reason: c.reason,
        explanation: c.explanation.clone(),
    }
    .into())
}

fn merge(c: &MergeCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Intake, Stage::Classification])?;
    a.may_decide_intake(case)?;
    if c.into == c.case_id {
        return Err(DomainError::MergeIntoSelf);
    }
    Ok(CaseMerged {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        into: c.into,
    }
    .into())
}

fn transfer(c: &TransferCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Intake, Stage::Classification])?;
    a.may_decide_intake(case)?;
    non_empty("to_authority", &c.to_authority)?;
    non_empty("reason", &c.reason)?;
    Ok(CaseTransferred {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        to_authority: c.to_authority.clone(),
        reason: c.reason.clone(),
    }
    .into())
}

fn classify(c: &ClassifyCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Classification])?;
    match a.unit.level {
        Level::Room => {}
        Level::Locality if a.unit.id == case.locality => {}
        _ => return Err(a.deny("a room, or the case's own locality, classifies")),
    }
    if let Some(d) = &c.involved_department {
        department(a.ctx.org, d)?;
    }
    Ok(CaseClassified {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        category: c.category,
        focus_area: c.focus_area,
        severity: c.severity,
        involves_locality: c.involves_locality,
        involved_department: c.involved_department.clone(),
    }
    .into())
}

fn joint_consultation(
    c: &RecordJointConsultation,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Classification, Stage::Handling])?;
    a.must_lead_or_zone_room(case, false)?;
    category(case)?;
    if c.participants.is_empty() {
        return Err(DomainError::InvalidInput {
            field: "participants",
            reason: "must have at least one entry",
        });
    }
    no_repeats("participants", &c.participants)?;
    no_repeats("departments", &c.departments)?;
    let involved = case.involved_locality();
    for p in &c.participants {
        let u = unit(a.ctx.org, p)?;
        if Some(&u.id) == involved {
            return Err(DomainError::CrossInspectionViolated {
                unit: u.id.clone(),
                involved_locality: case.locality.clone(),
            });
        }
        if u.level == Level::Village {
            return Err(DomainError::WrongLevel {
                field: "participants",
                unit: u.id.clone(),
                actual: u.level,
                expected: Level::Locality,
            });
        }
        if u.zone != case.zone {
            return Err(DomainError::OutsideZone {
                unit: u.id.clone(),
                zone: case.zone.clone(),
            });
        }
    }
    for d in &c.departments {
        department(a.ctx.org, d)?;
    }
    non_empty("conclusion", &c.conclusion)?;
    Ok(JointConsultationRecorded {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        participants: c.participants.clone(),
        departments: c.departments.clone(),
        conclusion: c.conclusion.clone(),
    }
    .into())
}

fn route(c: &RouteCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Classification])?;
    let class = case
        .classification
        .as_ref()
        .ok_or(DomainError::PrerequisiteMissing {
            missing: "classification",
        })?;
    match a.unit.level {
        Level::Room => {}
        Level::Locality if a.unit.id == case.locality && !class.involves_locality => {}
        Level::Locality if a.unit.id == case.locality => {
            return Err(a.deny("a locality may not route a case that involves itself"));
        }
        _ => return Err(a.deny("a room, or the case's own locality, routes")),
    }
    if !a.is_leader() {
        return Err(a.deny("routing by level (分级) is a leader's decision"));
    }
    if class.category == Category::DisciplineClue
        && class.severity == crate::model::Severity::Grave
        && case.joint_consultations.is_empty()
    {
        return Err(DomainError::PrerequisiteMissing {
            missing: "a joint consultation for a grave clue",
        });
    }
    let org = a.ctx.org;
    let lead = unit(org, &c.lead_unit)?;
    if lead.level == Level::Village {
        return Err(DomainError::RouteViolatesRule {
            rule: "a village officer cannot lead a case",
        });
    }
    if class.involves_locality && lead.id == case.locality {
        return Err(DomainError::CrossInspectionViolated {
            unit: lead.id.clone(),
            involved_locality: case.locality.clone(),
        });
    }
    if cross_inspected(case, a.ctx.policies).is_some() {
        if lead.level != Level::Room {
            return Err(DomainError::RouteViolatesRule {
                rule: "a clue under cross-inspection is led by a room",
            });
        }
        if lead.zone != case.zone {
            return Err(DomainError::OutsideZone {
                unit: lead.id.clone(),
                zone: case.zone.clone(),
            });
        }
    }
    if c.responsible.is_empty() {
        return Err(DomainError::InvalidInput {
            field: "responsible",
            reason: "must have at least one entry",
        });
    }
    no_repeats("responsible", &c.responsible)?;
    for r in &c.responsible {
        match r {
            ResponsibleParty::Unit(u) => {
                let u = unit(org, u)?;
                if !matches!(u.level, Level::Locality | Level::Village) {
                    return Err(DomainError::RouteViolatesRule {
                        rule: "responsible units are localities or villages (or departments)",
                    });
                }
            }
            ResponsibleParty::Department(d) => department(org, d)?,
        }
    }
    let limits = &a.ctx.policies.limits;
    let days = match c.time_limit_days {
        Some(d) if d == 0 || d > limits.route_limit_max_days => {
            return Err(DomainError::TimeLimitOutOfRange {
                days: d,
                max_days: limits.route_limit_max_days,
            });
        }
        Some(d) => d,
        None => limits.handling_days(class.category, class.severity).max(1),
    };
    Ok(CaseRouted {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        lead_unit: lead.id.clone(),
        responsible: c.responsible.clone(),
        time_limit_days: days,
        handling_due_at: a.ctx.due(days),
    }
    .into())
}

fn disposition(
    c: &ChooseDisposition,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Handling])?;
    let cat = category(case)?;
    if cat != Category::DisciplineClue {
        return Err(DomainError::NotApplicableToCategory {
            command: a.command,
            category: cat,
        });
    }
    a.must_lead(case, true)?;
    if case.finding.is_some() {
        return Err(DomainError::InvalidInput {
            field: "disposition",
            reason: "findings are already recorded",
        });
    }
    let due_at = a
        .ctx
        .policies
        .limits
        .disposition_days(c.disposition)
        .map(|d| a.ctx.due(d));
    Ok(DispositionChosen {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        disposition: c.disposition,
        due_at,
    }
    .into())
}

fn verifying_disposition(case: &Case) -> Result<(), DomainError> {
    if case.category() == Some(Category::DisciplineClue)
        && !matches!(
            case.disposition,
            Some(Disposition::TalkOrLetterInquiry | Disposition::PreliminaryVerification)
        )
    {
        return Err(DomainError::PrerequisiteMissing {
            missing: "a disposition of inquiry or preliminary verification",
        });
    }
    Ok(())
}

fn verification_team(
    c: &FormVerificationTeam,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Handling])?;
    let cat = category(case)?;
    if cat == Category::Consultation {
        return Err(DomainError::NotApplicableToCategory {
            command: a.command,
            category: cat,
        });
    }
    a.must_lead(case, true)?;
    verifying_disposition(case)?;
    if c.members.is_empty() {
        return Err(DomainError::InvalidInput {
            field: "members",
            reason: "must have at least one entry",
        });
    }
    no_repeats("members", &c.members)?;
    let org = a.ctx.org;
    let leader = unit(org, &c.leader)?;
    let involved = cross_inspected(case, a.ctx.policies);
    let expected_leader = if involved.is_some() {
        Level::Room
    } else {
        leader.level
    };
    if let Some(inv) = involved {
        if &leader.id == inv {
            return Err(DomainError::CrossInspectionViolated {
                unit: leader.id.clone(),
                involved_locality: inv.clone(),
            });
        }
    }
    if leader.level == Level::Village || leader.level != expected_leader {
        return Err(DomainError::WrongLevel {
            field: "leader",
            unit: leader.id.clone(),
            actual: leader.level,
            expected: Level::Room,
        });
    }
    if involved.is_some() && leader.zone != case.zone {
        return Err(DomainError::OutsideZone {
            unit: leader.id.clone(),
            zone: case.zone.clone(),
        });
    }
    for m in &c.members {
        let u = unit(org, m)?;
        if let Some(inv) = involved {
            if &u.id == inv || u.locality.as_ref() == Some(inv) {
                return Err(DomainError::CrossInspectionViolated {
                    unit: u.id.clone(),
                    involved_locality: inv.clone(),
                });
            }
            if u.level != Level::Locality {
                return Err(DomainError::WrongLevel {
                    field: "members",
                    unit: u.id.clone(),
                    actual: u.level,
                    expected: Level::Locality,
                });
            }
            if u.zone != case.zone {
                return Err(DomainError::OutsideZone {
                    unit: u.id.clone(),
                    zone: case.zone.clone(),
                });
            }
        } else if u.level == Level::Village {
            return Err(DomainError::WrongLevel {
                field: "members",
                unit: u.id.clone(),
                actual: u.level,
                expected: Level::Locality,
            });
        }
    }
    Ok(VerificationTeamFormed {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        leader: leader.id.clone(),
        members: c.members.clone(),
    }
    .into())
}

fn findings(c: &RecordFindings, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Handling])?;
    let cat = category(case)?;
    if cat == Category::Consultation {
        return Err(DomainError::NotApplicableToCategory {
            command: a.command,
            category: cat,
        });
    }
    a.must_lead(case, false)?;
    verifying_disposition(case)?;
    if cross_inspected(case, a.ctx.policies).is_some() && case.verification_team.is_none() {
        return Err(DomainError::VerificationTeamRequired);
    }
    non_empty("summary", &c.summary)?;
    Ok(FindingsRecorded {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        finding: c.finding,
        summary: c.summary.clone(),
    }
    .into())
}

fn discipline(c: &RecordDiscipline, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(
        a.command,
        case,
        &[Stage::Handling, Stage::Rectification, Stage::Review],
    )?;
    let cat = category(case)?;
    if cat != Category::DisciplineClue {
        return Err(DomainError::NotApplicableToCategory {
            command: a.command,
            category: cat,
        });
    }
    a.must_lead(case, true)?;
    if !case.finding.is_some_and(Finding::is_substantiated) {
        return Err(DomainError::PrerequisiteMissing {
            missing: "substantiated findings",
        });
    }
    if c.people.is_empty() {
        return Err(DomainError::InvalidInput {
            field: "people",
            reason: "must have at least one entry",
        });
    }
    for p in &c.people {
        non_empty("people.name", &p.name)?;
        non_empty("people.position", &p.position)?;
    }
    Ok(DisciplineRecorded {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        people: c.people.clone(),
    }
    .into())
}

fn answer(c: &AnswerConsultation, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Handling])?;
    let cat = category(case)?;
    if cat != Category::Consultation {
        return Err(DomainError::NotApplicableToCategory {
            command: a.command,
            category: cat,
        });
    }
    a.must_lead(case, false)?;
    non_empty("answer", &c.answer)?;
    Ok(ConsultationAnswered {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        answer: c.answer.clone(),
    }
    .into())
}

fn order_rectification(
    c: &OrderRectification,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Handling])?;
    let cat = category(case)?;
    a.must_lead(case, true)?;
    let ready = match cat {
        Category::Consultation => case.answer.is_some(),
        _ => case.finding.is_some_and(Finding::is_substantiated),
    };
    if !ready {
        return Err(DomainError::PrerequisiteMissing {
            missing: "substantiated findings (or, for a consultation, its answer)",
        });
    }
    let route = case
        .route
        .as_ref()
        .ok_or(DomainError::PrerequisiteMissing { missing: "a route" })?;
    if !route.responsible.contains(&c.responsible) {
        return Err(DomainError::RouteViolatesRule {
            rule: "rectification is ordered from a responsible party of the route",
        });
    }
    non_empty("requirements", &c.requirements)?;
    Ok(RectificationOrdered {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        responsible: c.responsible.clone(),
        requirements: c.requirements.clone(),
        plan_due_at: a.ctx.due(a.ctx.policies.limits.rectification_plan_days),
    }
    .into())
}

fn rectification_at<'c>(
    case: &'c Case,
    a: &Acting<'_>,
    status: RectificationStatus,
    expected: &'static str,
) -> Result<&'c crate::state::Rectification, DomainError> {
    stage_in(a.command, case, &[Stage::Rectification])?;
    let r = case
        .rectification
        .as_ref()
        .ok_or(DomainError::RectificationStep {
            command: a.command,
            expected,
        })?;
    a.must_be_responsible(&r.responsible)?;
    if r.status != status {
        return Err(DomainError::RectificationStep {
            command: a.command,
            expected,
        });
    }
    Ok(r)
}

fn submit_plan(
    c: &SubmitRectificationPlan,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    rectification_at(
        case,
        a,
        RectificationStatus::Ordered,
        "ordered and without a plan",
    )?;
    non_empty_list("measures", &c.measures)?;
    let latest = a.ctx.calendar.add_working_days(
        a.ctx.issued_at,
        a.ctx.policies.limits.rectification_max_days.max(1),
    );
    if c.deadline <= a.ctx.issued_at || c.deadline > latest {
        return Err(DomainError::DateOutOfRange {
            field: "deadline",
            value: c.deadline,
            not_before: a.ctx.issued_at,
            not_after: latest,
        });
    }
    Ok(RectificationPlanSubmitted {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        measures: c.measures.clone(),
        rectification_due_at: c.deadline,
    }
    .into())
}

fn progress(
    c: &ReportRectificationProgress,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    rectification_at(
        case,
        a,
        RectificationStatus::PlanSubmitted,
        "under way (plan submitted)",
    )?;
    non_empty("note", &c.note)?;
    if c.percent_complete > 100 {
        return Err(DomainError::InvalidInput {
            field: "percent_complete",
            reason: "must be at most 100",
        });
    }
    Ok(RectificationProgressReported {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        note: c.note.clone(),
        percent_complete: c.percent_complete,
    }
    .into())
}

fn complete(
    c: &CompleteRectification,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    rectification_at(
        case,
        a,
        RectificationStatus::PlanSubmitted,
        "under way (plan submitted)",
    )?;
    non_empty_list("evidence", &c.evidence)?;
    non_empty("summary", &c.summary)?;
    Ok(RectificationCompleted {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        evidence: c.evidence.clone(),
        summary: c.summary.clone(),
        review_due_at: a.ctx.due(a.ctx.policies.limits.review_days),
    }
    .into())
}

fn urge(c: &UrgeOverdue, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    let d = case
        .deadlines
        .get(&c.deadline)
        .ok_or(DomainError::DeadlineNotOpen {
            deadline: c.deadline,
        })?;
    let grace = a.ctx.policies.limits.urge_grace_days;
    let (escalated, missed) = match (&d.urged, &d.escalated) {
        (None, _) => {
            a.must_lead_or_zone_room(case, false)?;
            (false, d.due_at)
        }
        (Some(first), None) => {
            if !(a.is_zone_room(case) && a.is_leader()) {
                return Err(a.deny("escalation goes to a leader of a room of the case's zone"));
            }
            (true, first.respond_by)
        }
        (Some(_), Some(_)) => {
            return Err(DomainError::AlreadyUrged {
                deadline: c.deadline,
            });
        }
    };
    if a.ctx.issued_at <= missed {
        return Err(DomainError::DeadlineNotPassed {
            deadline: c.deadline,
            due_at: missed,
        });
    }
    Ok(CaseUrged {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        deadline: c.deadline,
        missed_due_at: d.due_at,
        escalated,
        note: c.note.clone(),
        respond_by: a.ctx.due(grace),
    }
    .into())
}

fn review_not_failed(case: &Case) -> Result<(), DomainError> {
    if case.last_visit == Some(VisitResult::Failed) {
        return Err(DomainError::ReviewFailed {
            reason: "a follow-up visit failed",
        });
    }
    if case.satisfaction == Some(Satisfaction::Unsatisfied) {
        return Err(DomainError::ReviewFailed {
            reason: "the reporter is unsatisfied",
        });
    }
    Ok(())
}

fn schedule_visit(
    c: &ScheduleFollowUpVisit,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Review])?;
    a.must_lead_or_zone_room(case, false)?;
    review_not_failed(case)?;
    let visitor = unit(a.ctx.org, &c.visitor)?;
    if let Some(inv) = case.involved_locality() {
        if &visitor.id == inv {
            return Err(DomainError::CrossInspectionViolated {
                unit: visitor.id.clone(),
                involved_locality: inv.clone(),
            });
        }
    }
    let latest = a.ctx.calendar.add_working_days(
        a.ctx.issued_at,
        a.ctx.policies.limits.route_limit_max_days.max(1),
    );
    if c.scheduled_for <= a.ctx.issued_at || c.scheduled_for > latest {
        return Err(DomainError::DateOutOfRange {
            field: "scheduled_for",
            value: c.scheduled_for,
            not_before: a.ctx.issued_at,
            not_after: latest,
        });
    }
    Ok(FollowUpVisitScheduled {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        visitor: visitor.id.clone(),
        scheduled_for: c.scheduled_for,
    }
    .into())
}

fn record_visit(
    c: &RecordFollowUpVisit,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Review])?;
    let scheduled = case
        .scheduled_visit
        .as_ref()
        .ok_or(DomainError::PrerequisiteMissing {
            missing: "a scheduled follow-up visit",
        })?;
    if scheduled.visitor != a.unit.id {
        return Err(a.deny("only the scheduled visitor records the visit"));
    }
    review_not_failed(case)?;
    non_empty("notes", &c.notes)?;
    Ok(FollowUpVisitRecorded {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        result: c.result,
        notes: c.notes.clone(),
    }
    .into())
}

fn satisfaction(
    c: &RecordSatisfaction,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Review])?;
    let own_village = a.unit.level == Level::Village && case.village.as_ref() == Some(&a.unit.id);
    if !(own_village || a.is_lead(case)) {
        return Err(a.deny("the case's village officer or the lead unit asks the reporter"));
    }
    review_not_failed(case)?;
    if case.satisfaction.is_some() {
        return Err(DomainError::InvalidInput {
            field: "satisfaction",
            reason: "already recorded in this review round",
        });
    }
    Ok(SatisfactionRecorded {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        satisfaction: c.satisfaction,
        comment: c.comment.clone(),
    }
    .into())
}

fn reopen(c: &ReopenCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(a.command, case, &[Stage::Review, Stage::Closed])?;
    a.must_lead_or_zone_room(case, true)?;
    if case.stage == Stage::Review && review_not_failed(case).is_ok() {
        return Err(DomainError::ReopenNotWarranted);
    }
    non_empty("reason", &c.reason)?;
    Ok(CaseReopened {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        reason: c.reason.clone(),
        handling_due_at: a.ctx.due(a.ctx.policies.limits.reopen_handling_days),
    }
    .into())
}

/// The outcome a case's record supports in its current stage.
fn expected_outcome(case: &Case) -> Result<CaseOutcome, DomainError> {
    match case.stage {
        Stage::Rectification => Err(DomainError::RectificationOpen),
        Stage::Handling => {
            if case.disposition == Some(Disposition::CloseWithoutAction) {
                Ok(CaseOutcome::ClosedWithoutAction)
            } else if case.category() == Some(Category::Consultation) && case.answer.is_some() {
                Ok(CaseOutcome::Answered)
            } else if case.finding == Some(Finding::NotSubstantiated) {
                Ok(CaseOutcome::NotSubstantiated)
            } else {
                Err(DomainError::PrerequisiteMissing {
                    missing: "findings, an answer, or a close-without-action disposition",
                })
            }
        }
        Stage::Review => {
            review_not_failed(case)?;
            if case.last_visit.is_none() {
                return Err(DomainError::PrerequisiteMissing {
                    missing: "a held follow-up visit",
                });
            }
            if case.satisfaction.is_none() {
                return Err(DomainError::PrerequisiteMissing {
                    missing: "the reporter's satisfaction",
                });
            }
            Ok(CaseOutcome::Rectified)
        }
        stage => Err(DomainError::WrongStage {
            command: "CloseCase",
            stage,
        }),
    }
}

fn close(c: &CloseCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    stage_in(
        a.command,
        case,
        &[Stage::Handling, Stage::Rectification, Stage::Review],
    )?;
    a.must_lead_or_zone_room(case, true)?;
    let expected = expected_outcome(case)?;
    if c.outcome != expected {
        return Err(DomainError::OutcomeMismatch {
            given: c.outcome,
            expected,
        });
    }
    non_empty("summary", &c.summary)?;
    Ok(CaseClosed {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        outcome: c.outcome,
        summary: c.summary.clone(),
    }
    .into())
}

/// Which deadline kinds a supervising unit would urge, for callers that want to scan.
pub fn urgeable(state: &CaseState, now: DateTime<Utc>) -> Vec<(DeadlineKind, bool)> {
    state
        .deadlines()
        .filter_map(|d| match (&d.urged, &d.escalated) {
            (None, _) if now > d.due_at => Some((d.kind, false)),
            (Some(u), None) if now > u.respond_by => Some((d.kind, true)),
            _ => None,
        })
        .collect()
}
