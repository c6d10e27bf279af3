//! Why a command is refused. Every variant is a caller error: the command is wrong for the
//! case, the actor or the time; retrying the same command against the same state fails the
//! same way. Nothing here is fatal, and a refusal never changes the case.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::ids::{CaseId, DepartmentId, UnitId, ZoneId};
use crate::model::{Category, DeadlineKind, Role};
use crate::org::Level;
use crate::state::Stage;

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Caller error: a unit named by the command or the actor is not in the organisation (or
    /// is not of the level the field requires).
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit.
        unit: UnitId,
    },
    /// Caller error: a department named by the command is not in the organisation.
    #[error("unknown department `{department}`")]
    UnknownDepartment {
        /// The department.
        department: DepartmentId,
    },
    /// Caller error: the actor's role does not exist at its unit's level (e.g. an information
    /// officer of a room).
    #[error("role {role} does not exist at a {level} (unit `{unit}`)")]
    RoleNotValidForLevel {
        /// The unit.
        unit: UnitId,
        /// The role.
        role: Role,
        /// The unit's level.
        level: Level,
    },
    /// Caller error: this unit and role may not issue this command for this case (see the
    /// authorization table in docs/domain.md).
    #[error("{unit} ({role}) may not {command}: {rule}")]
    NotAuthorized {
        /// The command name.
        command: &'static str,
        /// The acting unit.
        unit: UnitId,
        /// The acting role.
        role: Role,
        /// The rule that refuses it.
        rule: &'static str,
    },
    /// Caller error: the reporter is anonymous, so there is no contact to reveal or erase.
    #[error("the reporter is anonymous: there is no contact")]
    NoReporterContact,
    /// Caller error: the reporter's contact was erased; it can never be read again.
    #[error("the reporter's contact was erased at {at}")]
    ReporterContactErased {
        /// When it was erased.
        at: DateTime<Utc>,
    },
    /// Caller error: the case does not exist yet; only `ReportCase` can start it.
    #[error("no such case")]
    CaseNotFound,
    /// Caller error: `ReportCase` for a case id that already has a case.
    #[error("case {case_id} already exists")]
    CaseAlreadyExists {
        /// The case.
        case_id: CaseId,
    },
    /// Caller error: the command names a different case than the state it was decided on.
    #[error("command is for case {command_case} but the state is case {state_case}")]
    CaseMismatch {
        /// The case in the state.
        state_case: CaseId,
        /// The case in the command.
        command_case: CaseId,
    },
    /// Caller error: the command was issued before the case's last event; time cannot run
    /// backwards within a case.
    #[error("issued at {issued_at}, before the case's last event at {last_event_at}")]
    IssuedBeforeLastEvent {
        /// The command's issue time.
        issued_at: DateTime<Utc>,
        /// The last event's time.
        last_event_at: DateTime<Utc>,
    },
    /// Caller error: the case was declined, merged or transferred and accepts nothing more.
    #[error("the case is {stage} and accepts no further commands")]
    CaseFinished {
        /// The final stage.
        stage: Stage,
    },
    /// Caller error: the case is closed; only `ReopenCase` is accepted.
    #[error("the case is closed; only ReopenCase is accepted")]
    CaseClosed,
    /// Caller error: the command is not allowed in the case's current stage.
    #[error("{command} is not allowed in stage {stage}")]
    WrongStage {
        /// The command name.
        command: &'static str,
        /// The current stage.
        stage: Stage,
    },
    /// Caller error: a step that must come first has not happened (e.g. no rectification
    /// before findings, no route before classification).
    #[error("missing prerequisite: {missing}")]
    PrerequisiteMissing {
        /// What is missing.
        missing: &'static str,
    },
    /// Caller error: the command does not apply to a case of this category (e.g. a
    /// disposition for a mass demand, an answer for a discipline clue).
    #[error("{command} does not apply to a case of category {category:?}")]
    NotApplicableToCategory {
        /// The command name.
        command: &'static str,
        /// The case's category.
        category: Category,
    },
    /// Caller error: a field of the command is invalid (empty text, out-of-range number,
    /// repeated entry, a channel without its source department, ...).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Caller error: the village does not belong to the locality given.
    #[error("village `{village}` does not belong to locality `{locality}`")]
    VillageNotInLocality {
        /// The village.
        village: UnitId,
        /// The locality given.
        locality: UnitId,
    },
    /// Caller error: a unit has the wrong level for the field it fills (e.g. a village as a
    /// lead unit, a team as a case's locality).
    #[error("unit `{unit}` is a {actual}, but {field} must be a {expected}")]
    WrongLevel {
        /// The field.
        field: &'static str,
        /// The unit.
        unit: UnitId,
        /// Its level.
        actual: Level,
        /// The required level.
        expected: Level,
    },
    /// Caller error: a unit from another zone where the case's zone is required (joint
    /// consultation, cross-inspection team, routing of a clue involving a locality).
    #[error("unit `{unit}` is not in the case's zone `{zone}`")]
    OutsideZone {
        /// The unit.
        unit: UnitId,
        /// The case's zone.
        zone: ZoneId,
    },
    /// Caller error: the cross-inspection rule (交叉互查) is broken: the involved locality (or
    /// one of its villages) would verify or lead its own case.
    #[error(
        "cross-inspection: `{unit}` may not take part, the case involves `{involved_locality}`"
    )]
    CrossInspectionViolated {
        /// The offending unit.
        unit: UnitId,
        /// The involved locality.
        involved_locality: UnitId,
    },
    /// Caller error: a clue under cross-inspection needs its verification team formed before
    /// findings are recorded.
    #[error("a verification team must be formed before findings under cross-inspection")]
    VerificationTeamRequired,
    /// Caller error: a clue led by a room must be a room's (cross-inspection), and other route
    /// rules (lead unit a village, responsible party unknown level, ...).
    #[error("route refused: {rule}")]
    RouteViolatesRule {
        /// The broken rule.
        rule: &'static str,
    },
    /// Caller error: a time limit outside the allowed range.
    #[error("time limit of {days} working days is outside 1..={max_days}")]
    TimeLimitOutOfRange {
        /// Requested.
        days: u32,
        /// Maximum.
        max_days: u32,
    },
    /// Caller error: a date that must lie after the issue time (and within the policy maximum)
    /// does not.
    #[error("{field} {value} must be after {not_before} and not after {not_after}")]
    DateOutOfRange {
        /// The field.
        field: &'static str,
        /// The given date.
        value: DateTime<Utc>,
        /// Lower bound (exclusive).
        not_before: DateTime<Utc>,
        /// Upper bound (inclusive).
        not_after: DateTime<Utc>,
    },
    /// Caller error: the rectification is not at the step this command needs (e.g. a plan
    /// submitted twice, completion before the plan).
    #[error("{command} needs the rectification to be {expected}")]
    RectificationStep {
        /// The command name.
        command: &'static str,
        /// The needed status, in words.
        expected: &'static str,
    },
    /// Caller error: the case cannot close while a rectification is open.
    #[error("a rectification is still open")]
    RectificationOpen,
    /// Caller error: the deadline named is not open on this case.
    #[error("deadline {deadline:?} is not open")]
    DeadlineNotOpen {
        /// The deadline.
        deadline: DeadlineKind,
    },
    /// Caller error: the deadline (or, for an escalation, the grace period after the first
    /// urging) has not passed at the issue time.
    #[error("deadline {deadline:?} is not missed: due {due_at}")]
    DeadlineNotPassed {
        /// The deadline.
        deadline: DeadlineKind,
        /// When it (or its grace period) falls due.
        due_at: DateTime<Utc>,
    },
    /// Caller error: the deadline was already urged and escalated.
    #[error("deadline {deadline:?} was already urged and escalated")]
    AlreadyUrged {
        /// The deadline.
        deadline: DeadlineKind,
    },
    /// Caller error: the review failed (a failed visit or an unsatisfied reporter); the case
    /// must be reopened, not closed.
    #[error("review failed ({reason}); reopen the case instead")]
    ReviewFailed {
        /// What failed.
        reason: &'static str,
    },
    /// Caller error: reopening needs a failed visit or an unsatisfied reporter (or a closed
    /// case).
    #[error("nothing warrants reopening: no failed visit and no unsatisfied reporter")]
    ReopenNotWarranted,
    /// Caller error: the outcome given to `CloseCase` contradicts the case's record.
    #[error("outcome {given:?} contradicts the record (expected {expected:?})")]
    OutcomeMismatch {
        /// Given.
        given: crate::model::CaseOutcome,
        /// What the record supports.
        expected: crate::model::CaseOutcome,
    },
    /// Caller error: a case cannot be merged into itself.
    #[error("a case cannot be merged into itself")]
    MergeIntoSelf,
}
