//! Commands: what a unit asks the domain to do to one case. Every command names its case and
//! carries every id and value it needs; the domain makes no ids and reads no clock (the issue
//! time comes in [`crate::Context`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CaseId, DepartmentId, ReporterHandle, UnitId};
use crate::model::{
    CaseKind, CaseOutcome, Category, Channel, DeadlineKind, DeclineReason, DisciplinedPerson,
    Disposition, Finding, FocusArea, Reporter, ResponsibleParty, Satisfaction, Severity,
    VisitResult,
};

/// Register a new case (受理登记).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportCase {
    /// The new case's id, chosen by the caller.
    pub case_id: CaseId,
    /// How it came in.
    pub channel: Channel,
    /// What it is.
    pub kind: CaseKind,
    /// A short summary of the matter.
    pub summary: String,
    /// The town or street the matter is in.
    pub locality: UnitId,
    /// The village or community, when known; it must belong to `locality`.
    pub village: Option<UnitId>,
    /// The person or unit the matter is about.
    pub subject: String,
    /// The focus area.
    pub focus_area: FocusArea,
    /// Who reported it.
    pub reporter: Reporter,
    /// The opaque handle for the reporter, chosen by the caller.
    pub reporter_handle: ReporterHandle,
    /// The department that transferred the clue; required exactly when the channel is
    /// [`Channel::DepartmentTransfer`].
    pub source_department: Option<DepartmentId>,
}

/// Accept a reported case for classification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptCase {
    /// The case.
    pub case_id: CaseId,
}

/// Do not accept a reported case (with a reason).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclineCase {
    /// The case.
    pub case_id: CaseId,
    /// Why.
    pub reason: DeclineReason,
    /// The explanation given to the reporter.
    pub explanation: String,
}

/// Merge a duplicate into an open case. The engine checks that `into` exists and is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeCase {
    /// The duplicate.
    pub case_id: CaseId,
    /// The open case it duplicates.
    pub into: CaseId,
}

/// Transfer the matter to another authority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferCase {
    /// The case.
    pub case_id: CaseId,
    /// The receiving authority, e.g. "区信访局".
    pub to_authority: String,
    /// Why it is not for the commission.
    pub reason: String,
}

/// Classify an accepted case and put it on the demand list (分类研判).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifyCase {
    /// The case.
    pub case_id: CaseId,
    /// The category.
    pub category: Category,
    /// The focus area (may correct the reported one).
    pub focus_area: FocusArea,
    /// The severity.
    pub severity: Severity,
    /// Whether the matter involves the town or street (its cadres) itself.
    pub involves_locality: bool,
    /// A department the matter involves, if any.
    pub involved_department: Option<DepartmentId>,
}

/// Record a joint consultation (联席会商) in the zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordJointConsultation {
    /// The case.
    pub case_id: CaseId,
    /// Units that took part (all of the case's zone).
    pub participants: Vec<UnitId>,
    /// Partner departments that took part.
    pub departments: Vec<DepartmentId>,
    /// What was concluded.
    pub conclusion: String,
}

/// Route a classified case by level (分级): who leads, who answers, by when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCase {
    /// The case.
    pub case_id: CaseId,
    /// The leading unit.
    pub lead_unit: UnitId,
    /// Who answers for the problem (at least one).
    pub responsible: Vec<ResponsibleParty>,
    /// Override of the handling limit in working days (`None` = policy default).
    pub time_limit_days: Option<u32>,
}

/// Choose how to dispose of a discipline clue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChooseDisposition {
    /// The case.
    pub case_id: CaseId,
    /// The disposition.
    pub disposition: Disposition,
}

/// Form the verification team (核查组).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormVerificationTeam {
    /// The case.
    pub case_id: CaseId,
    /// The leading unit of the team.
    pub leader: UnitId,
    /// The member units (at least one, no repeats).
    pub members: Vec<UnitId>,
}

/// Record the findings of verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFindings {
    /// The case.
    pub case_id: CaseId,
    /// The result.
    pub finding: Finding,
    /// What was found.
    pub summary: String,
}

/// Record discipline for named people (处理处分).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDiscipline {
    /// The case.
    pub case_id: CaseId,
    /// The people and the measures (at least one).
    pub people: Vec<DisciplinedPerson>,
}

/// Answer a consultation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerConsultation {
    /// The case.
    pub case_id: CaseId,
    /// The answer.
    pub answer: String,
}

/// Order rectification (整改) from a responsible party of the route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRectification {
    /// The case.
    pub case_id: CaseId,
    /// Who must rectify; one of the route's responsible parties.
    pub responsible: ResponsibleParty,
    /// What must be rectified.
    pub requirements: String,
}

/// The responsible party submits its rectification plan (整改方案) with a deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRectificationPlan {
    /// The case.
    pub case_id: CaseId,
    /// The measures (at least one).
    pub measures: Vec<String>,
    /// The plan's deadline (整改时限): after the issue time and within the policy maximum.
    pub deadline: DateTime<Utc>,
}

/// The responsible party reports progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRectificationProgress {
    /// The case.
    pub case_id: CaseId,
    /// What was done.
    pub note: String,
    /// Estimated completion, 0..=100.
    pub percent_complete: u8,
}

/// The responsible party reports completion with evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteRectification {
    /// The case.
    pub case_id: CaseId,
    /// Evidence (photos, documents; references, at least one).
    pub evidence: Vec<String>,
    /// What was done.
    pub summary: String,
}

/// Urge (督办) a missed time limit. The first urging of a deadline is done by the supervising
/// unit; a second urging after the grace period escalates to a room of the case's zone. Each
/// deadline can be urged once and escalated once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrgeOverdue {
    /// The case.
    pub case_id: CaseId,
    /// The missed deadline.
    pub deadline: DeadlineKind,
    /// A note for the urged unit.
    pub note: String,
}

/// Schedule a follow-up visit (回头看).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleFollowUpVisit {
    /// The case.
    pub case_id: CaseId,
    /// The unit that visits.
    pub visitor: UnitId,
    /// When the visit is planned (after the issue time).
    pub scheduled_for: DateTime<Utc>,
}

/// Record the result of a follow-up visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFollowUpVisit {
    /// The case.
    pub case_id: CaseId,
    /// Held or failed.
    pub result: VisitResult,
    /// What was seen.
    pub notes: String,
}

/// Record the reporter's (or, for an anonymous report, the residents') satisfaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSatisfaction {
    /// The case.
    pub case_id: CaseId,
    /// The answer.
    pub satisfaction: Satisfaction,
    /// Any comment.
    pub comment: String,
}

/// Reopen a case after a failed visit, an unsatisfied reporter, or (once closed) new facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReopenCase {
    /// The case.
    pub case_id: CaseId,
    /// Why.
    pub reason: String,
}

/// Close a case with an outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseCase {
    /// The case.
    pub case_id: CaseId,
    /// How it ended; must agree with the case's record.
    pub outcome: CaseOutcome,
    /// A closing summary.
    pub summary: String,
}

/// Read a named reporter's contact (need to know). Not a workflow step: it discharges no
/// duty and `next_commands` does not list it. The event it produces records who looked and
/// why, never the contact; the engine decrypts the contact only after that event is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealReporterContact {
    /// The case.
    pub case_id: CaseId,
    /// Why the actor needs the contact (recorded for the audit trail).
    pub reason: String,
}

/// Erase a reporter's contact (a legal erasure request, or a reporter who withdraws): the
/// engine destroys the reporter's data key, so the stored ciphertext can never be read
/// again, and the case's workflow continues. Not a workflow step (`next_commands` does not
/// list it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseReporterContact {
    /// The case.
    pub case_id: CaseId,
    /// Why.
    pub reason: String,
    /// The legal basis (the provision or decision that requires the erasure).
    pub legal_basis: String,
    /// The case the erasure was requested on: the case itself, or, when the engine carries
    /// one reporter's erasure to their other cases, the case it was requested on.
    pub requested_on: CaseId,
}

macro_rules! commands {
    ($($variant:ident),* $(,)?) => {
        /// Every command the domain understands. Serialized with a `type` tag holding the
        /// command's name (e.g. `{"type":"ReportCase", ...}`).
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum Command {
            $(
                #[allow(missing_docs)]
                $variant($variant),
            )*
        }

        /// Which command, without its fields: what [`crate::next_commands`] lists and the
        /// to-do actions name as the commands that discharge them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum CommandKind {
            $(
                #[allow(missing_docs)]
                $variant,
            )*
        }

        impl CommandKind {
            /// Every kind, in a stable order.
            pub const ALL: &'static [CommandKind] = &[$(CommandKind::$variant),*];

            /// The command's stable name, e.g. `"ReportCase"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(CommandKind::$variant => stringify!($variant),)*
                }
            }
        }

        impl std::fmt::Display for CommandKind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Command {
            /// Which command this is.
            pub fn kind(&self) -> CommandKind {
                match self {
                    $(Command::$variant(_) => CommandKind::$variant,)*
                }
            }

            /// The command's stable name, e.g. `"ReportCase"`.
            pub fn name(&self) -> &'static str {
                self.kind().name()
            }

            /// The case the command is for.
            pub fn case_id(&self) -> CaseId {
                match self {
                    $(Command::$variant(c) => c.case_id,)*
                }
            }

            /// Every command name, in a stable order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($variant)),*];
        }

        $(
            impl From<$variant> for Command {
                fn from(c: $variant) -> Self {
                    Command::$variant(c)
                }
            }
        )*
    };
}

commands!(
    ReportCase,
    AcceptCase,
    DeclineCase,
    MergeCase,
    TransferCase,
    ClassifyCase,
    RecordJointConsultation,
    RouteCase,
    ChooseDisposition,
    FormVerificationTeam,
    RecordFindings,
    RecordDiscipline,
    AnswerConsultation,
    OrderRectification,
    SubmitRectificationPlan,
    ReportRectificationProgress,
    CompleteRectification,
    UrgeOverdue,
    ScheduleFollowUpVisit,
    RecordFollowUpVisit,
    RecordSatisfaction,
    ReopenCase,
    CloseCase,
    RevealReporterContact,
    EraseReporterContact,
);
