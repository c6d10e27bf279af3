//! `decide`: checks a command against the case, the organisation, the actor and the time,
//! and returns the events it produces, or why it is refused. Pure: everything it needs comes
//! in through its arguments.

use chrono::{DateTime, Utc};

use crate::authority::authority;
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

    fn latest_plan_deadline(&self) -> DateTime<Utc> {
        latest_plan_deadline(self.calendar, self.policies, self.issued_at)
    }

    fn latest_visit(&self) -> DateTime<Utc> {
        latest_visit(self.calendar, self.policies, self.issued_at)
    }
}

/// The latest deadline a rectification plan submitted at `at` may set.
pub(crate) fn latest_plan_deadline(
    calendar: &Calendar,
    policies: &Policies,
    at: DateTime<Utc>,
) -> DateTime<Utc> {
    calendar.add_working_days(at, policies.limits.rectification_max_days.max(1))
}

/// The latest time a follow-up visit scheduled at `at` may be planned for (also listed by
/// [`crate::command_options`]; a caller that needs only this date need not list visitors).
pub fn latest_visit(calendar: &Calendar, policies: &Policies, at: DateTime<Utc>) -> DateTime<Utc> {
    calendar.add_working_days(at, policies.limits.route_limit_max_days.max(1))
}

impl Context<'_> {}

/// The acting unit, resolved against the organisation, and the command it issues.
struct Acting<'c> {
    ctx: &'c Context<'c>,
    unit: &'c Unit,
    issued: &'c Command,
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

    /// Checks the actor against the command's rule in [`crate::authority`].
    fn authorize(&self, case: &Case) -> Result<(), DomainError> {
        let Some(rule) = authority(self.issued, case) else {
            return Ok(());
        };
        if self.role() == Role::Watcher && !rule.admits_role(Role::Watcher, self.issued) {
            return Err(self.deny("the deadline watcher only urges missed time limits"));
        }
        if !rule.admits_unit(self.unit, case, self.ctx.org) {
            return Err(self.deny(rule.rule));
        }
        if !rule.admits_role(self.role(), self.issued) {
            return Err(self.deny(rule.rule));
        }
        Ok(())
    }

    /// The prologue of every category-specific step: the stage, a category the command
    /// `applies_to`, then the actor's authority (in that order, so errors stay the same).
    fn admit_for_category(
        &self,
        case: &Case,
        applies_to: impl Fn(Category) -> bool,
    ) -> Result<Category, DomainError> {
        self.in_stage(case)?;
        let category = category(case)?;
        if !applies_to(category) {
            return Err(DomainError::NotApplicableToCategory {
                command: self.command,
                category,
            });
        }
        self.authorize(case)?;
        Ok(category)
    }

    /// Checks that the case is in a stage where the command applies.
    fn in_stage(&self, case: &Case) -> Result<(), DomainError> {
        if allowed_stages(self.issued.kind()).contains(&case.stage) {
            Ok(())
        } else {
            Err(DomainError::WrongStage {
                command: self.command,
                stage: case.stage,
            })
        }
    }
}

const OPEN_STAGES: &[Stage] = &[
    Stage::Intake,
    Stage::Classification,
    Stage::Handling,
    Stage::Rectification,
    Stage::Review,
];

/// The stages in which a command applies; the one table `decide` checks and
/// [`crate::next_commands`] consults before it asks `decide`.
pub fn allowed_stages(kind: CommandKind) -> &'static [Stage] {
    use CommandKind as K;
    match kind {
        K::ReportCase => &[Stage::None],
        K::AcceptCase | K::DeclineCase => &[Stage::Intake],
        K::MergeCase | K::TransferCase => &[Stage::Intake, Stage::Classification],
        K::ClassifyCase | K::RouteCase => &[Stage::Classification],
        K::RecordJointConsultation => &[Stage::Classification, Stage::Handling],
        K::ChooseDisposition
        | K::FormVerificationTeam
        | K::RecordFindings
        | K::AnswerConsultation
        | K::OrderRectification => &[Stage::Handling],
        K::RecordDiscipline => &[Stage::Handling, Stage::Rectification, Stage::Review],
        K::SubmitRectificationPlan | K::ReportRectificationProgress | K::CompleteRectification => {
            &[Stage::Rectification]
        }
        K::UrgeOverdue => OPEN_STAGES,
        K::ScheduleFollowUpVisit | K::RecordFollowUpVisit | K::RecordSatisfaction => {
            &[Stage::Review]
        }
        K::ReopenCase => &[Stage::Review, Stage::Closed],
        K::CloseCase => &[Stage::Handling, Stage::Rectification, Stage::Review],
        // Need to know ends with the case: nobody reads a contact of a finished case.
        K::RevealReporterContact => OPEN_STAGES,
        // An erasure request is honoured whatever became of the case.
        K::EraseReporterContact => &[
            Stage::Intake,
            Stage::Classification,
            Stage::Handling,
            Stage::Rectification,
            Stage::Review,
            Stage::Closed,
            Stage::Declined,
            Stage::Merged,
            Stage::Transferred,
        ],
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

/// `OutsideZone` unless the unit is in the case's collaboration zone.
fn in_case_zone(u: &Unit, case: &Case) -> Result<(), DomainError> {
    if u.zone == case.zone {
        Ok(())
    } else {
        Err(DomainError::OutsideZone {
            unit: u.id.clone(),
            zone: case.zone.clone(),
        })
    }
}

fn wrong_level(field: &'static str, u: &Unit, expected: Level) -> DomainError {
    DomainError::WrongLevel {
        field,
        unit: u.id.clone(),
        actual: u.level,
        expected,
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

fn category(case: &Case) -> Result<Category, DomainError> {
    case.classified().map(|class| class.category)
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
        issued: command,
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
    // A reporter's contact may be erased whatever became of the case (allowed_stages).
    let erasure = matches!(command, Command::EraseReporterContact(_));
    if case.stage.is_final() && !erasure {
        return Err(DomainError::CaseFinished { stage: case.stage });
    }
    if case.stage == Stage::Closed && !erasure && !matches!(command, Command::ReopenCase(_)) {
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
        Command::RevealReporterContact(c) => reveal_contact(c, case, &acting)?,
        Command::EraseReporterContact(c) => erase_contact(c, case, &acting)?,
    };
    Ok(vec![event])
}

fn report(c: &ReportCase, a: &Acting<'_>) -> Result<Vec<CaseEvent>, DomainError> {
    let org = a.ctx.org;
    let locality = unit(org, &c.locality)?;
    if locality.level != Level::Locality {
        return Err(wrong_level("locality", locality, Level::Locality));
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
    if a.role() == Role::Watcher {
        return Err(a.deny("the deadline watcher only urges missed time limits"));
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
    match &c.reporter {
        Reporter::Named(contact)
            if contact.expose_name().trim().is_empty()
                && contact.expose_phone().trim().is_empty() =>
        {
            return Err(DomainError::InvalidInput {
                field: "reporter",
                reason: "a named reporter needs a name or a phone number",
            });
        }
        Reporter::Sealed(_) => {
            return Err(DomainError::InvalidInput {
                field: "reporter",
                reason: "a report gives the contact as given; only the engine seals it",
            });
        }
        Reporter::Anonymous | Reporter::Named(_) => {}
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
    a.in_stage(case)?;
    a.authorize(case)?;
    Ok(CaseAccepted {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        classification_due_at: a.ctx.due(a.ctx.policies.limits.classification_days),
    }
    .into())
}

fn decline(c: &DeclineCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    a.in_stage(case)?;
    a.authorize(case)?;
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
    a.in_stage(case)?;
    a.authorize(case)?;
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
    a.in_stage(case)?;
    a.authorize(case)?;
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
    a.in_stage(case)?;
    a.authorize(case)?;
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
    a.in_stage(case)?;
    a.authorize(case)?;
    category(case)?;
    if c.participants.is_empty() {
        return Err(DomainError::InvalidInput {
            field: "participants",
            reason: "must have at least one entry",
        });
    }
    no_repeats("participants", &c.participants)?;
    no_repeats("departments", &c.departments)?;
    for p in &c.participants {
        check_participant(unit(a.ctx.org, p)?, case)?;
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

/// Whether a unit may take part in the case's joint consultation: a room, team or locality
/// of the case's zone, never the involved locality.
pub(crate) fn check_participant(u: &Unit, case: &Case) -> Result<(), DomainError> {
    if case.involved_locality() == Some(&u.id) {
        return Err(DomainError::CrossInspectionViolated {
            unit: u.id.clone(),
            involved_locality: case.locality.clone(),
        });
    }
    if u.level == Level::Village {
        return Err(wrong_level("participants", u, Level::Locality));
    }
    in_case_zone(u, case)?;
    Ok(())
}

fn route(c: &RouteCase, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    a.in_stage(case)?;
    let class = case.classified()?;
    a.authorize(case)?;
    if case.awaits_joint_consultation() {
        return Err(DomainError::PrerequisiteMissing {
            missing: "a joint consultation for a grave clue",
        });
    }
    let org = a.ctx.org;
    let lead = unit(org, &c.lead_unit)?;
    check_route_lead(lead, case, a.ctx.policies)?;
    if c.responsible.is_empty() {
        return Err(DomainError::InvalidInput {
            field: "responsible",
            reason: "must have at least one entry",
        });
    }
    no_repeats("responsible", &c.responsible)?;
    for r in &c.responsible {
        check_responsible(r, org)?;
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

/// Whether `lead` may lead the case: never a village officer, never the involved locality,
/// and a room of the case's zone under cross-inspection.
pub(crate) fn check_route_lead(
    lead: &Unit,
    case: &Case,
    policies: &Policies,
) -> Result<(), DomainError> {
    if lead.level == Level::Village {
        return Err(DomainError::RouteViolatesRule {
            rule: "a village officer cannot lead a case",
        });
    }
    if case.involved_locality() == Some(&lead.id) {
        return Err(DomainError::CrossInspectionViolated {
            unit: lead.id.clone(),
            involved_locality: case.locality.clone(),
        });
    }
    if cross_inspected(case, policies).is_some() {
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
    Ok(())
}

/// Whether a party may answer for a case: a locality, a village or a known department.
pub(crate) fn check_responsible(
    party: &ResponsibleParty,
    org: &Organisation,
) -> Result<(), DomainError> {
    match party {
        ResponsibleParty::Unit(u) => {
            let u = unit(org, u)?;
            if !matches!(u.level, Level::Locality | Level::Village) {
                return Err(DomainError::RouteViolatesRule {
                    rule: "responsible units are localities or villages (or departments)",
                });
            }
            Ok(())
        }
        ResponsibleParty::Department(d) => department(org, d),
    }
}

fn disposition(
    c: &ChooseDisposition,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    a.admit_for_category(case, |cat| cat == Category::DisciplineClue)?;
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
    a.admit_for_category(case, |cat| cat != Category::Consultation)?;
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
    check_team_leader(leader, case, a.ctx.policies)?;
    for m in &c.members {
        check_team_member(unit(org, m)?, case, a.ctx.policies)?;
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

/// Whether a unit may lead the verification team: not a village officer; under
/// cross-inspection a room of the case's zone (never the involved locality).
pub(crate) fn check_team_leader(
    leader: &Unit,
    case: &Case,
    policies: &Policies,
) -> Result<(), DomainError> {
    let involved = cross_inspected(case, policies);
    if let Some(inv) = involved {
        if &leader.id == inv {
            return Err(DomainError::CrossInspectionViolated {
                unit: leader.id.clone(),
                involved_locality: inv.clone(),
            });
        }
    }
    let leads_wrongly =
        leader.level == Level::Village || (involved.is_some() && leader.level != Level::Room);
    if leads_wrongly {
        return Err(wrong_level("leader", leader, Level::Room));
    }
    if involved.is_some() {
        in_case_zone(leader, case)?;
    }
    Ok(())
}

/// Whether a unit may serve on the verification team: not a village officer; under
/// cross-inspection another locality of the case's zone (never the involved one or one of
/// its villages).
pub(crate) fn check_team_member(
    u: &Unit,
    case: &Case,
    policies: &Policies,
) -> Result<(), DomainError> {
    let Some(inv) = cross_inspected(case, policies) else {
        if u.level == Level::Village {
            return Err(DomainError::WrongLevel {
                field: "members",
                unit: u.id.clone(),
                actual: u.level,
                expected: Level::Locality,
            });
        }
        return Ok(());
    };
    if &u.id == inv || u.locality.as_ref() == Some(inv) {
        return Err(DomainError::CrossInspectionViolated {
            unit: u.id.clone(),
            involved_locality: inv.clone(),
        });
    }
    if u.level != Level::Locality {
        return Err(wrong_level("members", u, Level::Locality));
    }
    in_case_zone(u, case)?;
    Ok(())
}

fn findings(c: &RecordFindings, case: &Case, a: &Acting<'_>) -> Result<CaseEvent, DomainError> {
    a.admit_for_category(case, |cat| cat != Category::Consultation)?;
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
    a.admit_for_category(case, |cat| cat == Category::DisciplineClue)?;
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
    a.admit_for_category(case, |cat| cat == Category::Consultation)?;
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
    a.in_stage(case)?;
    let cat = category(case)?;
    a.authorize(case)?;
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
    a.in_stage(case)?;
    let r = case
        .rectification
        .as_ref()
        .ok_or(DomainError::RectificationStep {
            command: a.command,
            expected,
        })?;
    a.authorize(case)?;
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
    let latest = a.ctx.latest_plan_deadline();
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
        (None, _) => (false, d.due_at),
        (Some(first), None) => (true, first.respond_by),
        (Some(_), Some(_)) => {
            return Err(DomainError::AlreadyUrged {
                deadline: c.deadline,
            });
        }
    };
    a.authorize(case)?;
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

/// Whether a unit may make the follow-up visit: anyone but the involved locality.
pub(crate) fn check_visitor(visitor: &Unit, case: &Case) -> Result<(), DomainError> {
    match case.involved_locality() {
        Some(inv) if &visitor.id == inv => Err(DomainError::CrossInspectionViolated {
            unit: visitor.id.clone(),
            involved_locality: inv.clone(),
        }),
        _ => Ok(()),
    }
}

fn schedule_visit(
    c: &ScheduleFollowUpVisit,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    a.in_stage(case)?;
    a.authorize(case)?;
    review_not_failed(case)?;
    let visitor = unit(a.ctx.org, &c.visitor)?;
    check_visitor(visitor, case)?;
    let latest = a.ctx.latest_visit();
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
    a.in_stage(case)?;
    if case.scheduled_visit.is_none() {
        return Err(DomainError::PrerequisiteMissing {
            missing: "a scheduled follow-up visit",
        });
    }
    a.authorize(case)?;
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
    a.in_stage(case)?;
    a.authorize(case)?;
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
    a.in_stage(case)?;
    a.authorize(case)?;
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
pub(crate) fn expected_outcome(case: &Case) -> Result<CaseOutcome, DomainError> {
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
    a.in_stage(case)?;
    a.authorize(case)?;
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

/// The prologue of both reporter-contact steps: the stage, the actor's authority, a contact
/// that exists and was not erased, and a reason.
fn admit_contact_step(case: &Case, a: &Acting<'_>, reason: &str) -> Result<(), DomainError> {
    a.in_stage(case)?;
    a.authorize(case)?;
    contact_available(case)?;
    non_empty("reason", reason)
}

/// The reporter's contact must exist and must not have been erased.
fn contact_available(case: &Case) -> Result<(), DomainError> {
    if case.reporter.is_anonymous() {
        return Err(DomainError::NoReporterContact);
    }
    if let Some(erasure) = &case.contact_erased {
        return Err(DomainError::ReporterContactErased { at: erasure.at });
    }
    Ok(())
}

fn reveal_contact(
    c: &RevealReporterContact,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    admit_contact_step(case, a, &c.reason)?;
    Ok(ReporterContactRevealed {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        reason: c.reason.clone(),
    }
    .into())
}

fn erase_contact(
    c: &EraseReporterContact,
    case: &Case,
    a: &Acting<'_>,
) -> Result<CaseEvent, DomainError> {
    admit_contact_step(case, a, &c.reason)?;
    non_empty("legal_basis", &c.legal_basis)?;
    Ok(ReporterContactErased {
        case_id: c.case_id,
        at: a.ctx.issued_at,
        by: a.ctx.actor.clone(),
        reporter_handle: case.reporter_handle,
        reason: c.reason.clone(),
        legal_basis: c.legal_basis.clone(),
        requested_on: c.requested_on,
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
