//! The state of one case, built only by [`crate::evolve`] from its events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{CaseId, DepartmentId, ReporterHandle, UnitId, ZoneId};
use crate::model::{
    Actor, CaseKind, CaseOutcome, Category, Channel, ContactErasure, DeadlineKind, DeclineReason,
    DisciplinedPerson, Disposition, Finding, FocusArea, Reporter, ResponsibleParty, Satisfaction,
    Severity, VisitResult,
};

/// Where a case stands. The five working stages come first; the four ends after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// No case yet (the state before `CaseReported`).
    None,
    /// 受理: reported, waiting for the intake decision.
    Intake,
    /// 分类研判: accepted, to be classified and routed.
    Classification,
    /// 处置/核查: routed, being handled.
    Handling,
    /// 整改: rectification ordered and not yet complete.
    Rectification,
    /// 回头看/复核: follow-up visit and satisfaction.
    Review,
    /// Closed with an outcome (only reopening changes it).
    Closed,
    /// Not accepted (final).
    Declined,
    /// Merged into another case (final).
    Merged,
    /// Transferred to another authority (final).
    Transferred,
}

impl Stage {
    /// Every stage, in order: none, the five working stages, the four ends.
    pub const ALL: [Stage; 10] = [
        Stage::None,
        Stage::Intake,
        Stage::Classification,
        Stage::Handling,
        Stage::Rectification,
        Stage::Review,
        Stage::Closed,
        Stage::Declined,
        Stage::Merged,
        Stage::Transferred,
    ];

    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "none",
            Stage::Intake => "intake",
            Stage::Classification => "classification",
            Stage::Handling => "handling",
            Stage::Rectification => "rectification",
            Stage::Review => "review",
            Stage::Closed => "closed",
            Stage::Declined => "declined",
            Stage::Merged => "merged",
            Stage::Transferred => "transferred",
        }
    }

    /// Whether work on the case is still going on (one of the five working stages).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Stage::Intake
                | Stage::Classification
                | Stage::Handling
                | Stage::Rectification
                | Stage::Review
        )
    }

    /// Whether the case ended for good (declined, merged or transferred).
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Declined | Stage::Merged | Stage::Transferred)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One urging of a deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Urging {
    /// When.
    pub at: DateTime<Utc>,
    /// By which unit.
    pub by: UnitId,
    /// After the first urging: when escalation becomes possible.
    pub respond_by: DateTime<Utc>,
}

/// An open time limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// Which limit.
    pub kind: DeadlineKind,
    /// When it started.
    pub opened_at: DateTime<Utc>,
    /// When it falls due.
    pub due_at: DateTime<Utc>,
    /// The first urging, if any.
    pub urged: Option<Urging>,
    /// The escalation, if any.
    pub escalated: Option<Urging>,
}

impl Deadline {
    /// Whether it is overdue at `now`.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        now > self.due_at
    }
}

/// The classification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// Category.
    pub category: Category,
    /// Severity.
    pub severity: Severity,
    /// Whether the town or street itself is involved.
    pub involves_locality: bool,
    /// Involved department.
    pub involved_department: Option<DepartmentId>,
}

/// The route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Leading unit (it also supervises and urges).
    pub lead_unit: UnitId,
    /// Responsible parties.
    pub responsible: Vec<ResponsibleParty>,
    /// Handling limit in working days.
    pub time_limit_days: u32,
    /// When it was routed.
    pub routed_at: DateTime<Utc>,
}

/// The verification team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationTeam {
    /// Leading unit.
    pub leader: UnitId,
    /// Member units.
    pub members: Vec<UnitId>,
}

/// A joint consultation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointConsultation {
    /// When.
    pub at: DateTime<Utc>,
    /// Units.
    pub participants: Vec<UnitId>,
    /// Departments.
    pub departments: Vec<DepartmentId>,
    /// Conclusion.
    pub conclusion: String,
}

/// Where a rectification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationStatus {
    /// Ordered; the plan is awaited.
    Ordered,
    /// The plan is in; work is under way.
    PlanSubmitted,
    /// Completed with evidence.
    Completed,
}

/// The current rectification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectification {
    /// Who must rectify.
    pub responsible: ResponsibleParty,
    /// What.
    pub requirements: String,
    /// When ordered.
    pub ordered_at: DateTime<Utc>,
    /// Status.
    pub status: RectificationStatus,
    /// Plan measures (empty until submitted).
    pub measures: Vec<String>,
    /// Plan deadline (`None` until submitted).
    pub deadline: Option<DateTime<Utc>>,
    /// Last reported progress, 0..=100.
    pub percent_complete: u8,
    /// Number of progress reports.
    pub progress_reports: u32,
    /// Completion evidence.
    pub evidence: Vec<String>,
}

/// The scheduled follow-up visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledVisit {
    /// The visiting unit.
    pub visitor: UnitId,
    /// Planned time.
    pub scheduled_for: DateTime<Utc>,
}

/// The facts of one case. Obtainable only by shared reference from a [`CaseState`], so it can
/// be read freely but changed only by [`crate::evolve`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The case id.
    pub id: CaseId,
    /// Stage.
    pub stage: Stage,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
    /// Who registered it.
    pub reported_by: Actor,
    /// Channel.
    pub channel: Channel,
    /// Kind.
    pub kind: CaseKind,
    /// Summary.
    pub summary: String,
    /// The town or street.
    pub locality: UnitId,
    /// The village or community.
    pub village: Option<UnitId>,
    /// The zone of the locality.
    pub zone: ZoneId,
    /// Subject.
    pub subject: String,
    /// Focus area (as reported, or as corrected at classification).
    pub focus_area: FocusArea,
    /// Reporter (contact protected).
    pub reporter: Reporter,
    /// Reporter's opaque handle.
    pub reporter_handle: ReporterHandle,
    /// Transferring department.
    pub source_department: Option<DepartmentId>,
    /// Classification, once classified.
    pub classification: Option<Classification>,
    /// Joint consultations held.
    pub joint_consultations: Vec<JointConsultation>,
    /// Route, once routed.
    pub route: Option<Route>,
    /// Disposition (clues).
    pub disposition: Option<Disposition>,
    /// Verification team.
    pub verification_team: Option<VerificationTeam>,
    /// Findings.
    pub finding: Option<Finding>,
    /// People disciplined.
    pub disciplined: Vec<DisciplinedPerson>,
    /// Answer to a consultation.
    pub answer: Option<String>,
    /// Current rectification.
    pub rectification: Option<Rectification>,
    /// Rectifications completed in earlier rounds (before a reopening).
    pub earlier_rectifications: u32,
    /// Scheduled follow-up visit.
    pub scheduled_visit: Option<ScheduledVisit>,
    /// Result of the last follow-up visit in this round.
    pub last_visit: Option<VisitResult>,
    /// Follow-up visits held in total.
    pub visits_held: u32,
    /// Satisfaction recorded in this round.
    pub satisfaction: Option<Satisfaction>,
    /// Open deadlines.
    pub deadlines: BTreeMap<DeadlineKind, Deadline>,
    /// How many times the case was reopened.
    pub reopen_count: u32,
    /// Outcome, once closed.
    pub outcome: Option<CaseOutcome>,
    /// When closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Decline reason.
    pub decline_reason: Option<DeclineReason>,
    /// Case merged into.
    pub merged_into: Option<CaseId>,
    /// Authority transferred to.
    pub transferred_to: Option<String>,
    /// How many times the reporter's contact was revealed.
    #[serde(default)]
    pub contact_reveals: u32,
    /// The erasure of the reporter's contact, once erased.
    #[serde(default)]
    pub contact_erased: Option<ContactErasure>,
    /// Time of the last event.
    pub last_event_at: DateTime<Utc>,
}

impl Case {
    /// The category, once classified.
    pub fn category(&self) -> Option<Category> {
        self.classification.as_ref().map(|c| c.category)
    }

    /// The classification, or the error every step that needs one returns before it.
    pub fn classified(&self) -> Result<&Classification, DomainError> {
        self.classification
            .as_ref()
            .ok_or(DomainError::PrerequisiteMissing {
                missing: "classification",
            })
    }

    /// The leading unit, once routed.
    pub fn lead_unit(&self) -> Option<&UnitId> {
        self.route.as_ref().map(|r| &r.lead_unit)
    }

    /// The locality involved for cross-inspection purposes: the case's locality when the
    /// classification says the town or street itself is involved.
    pub fn involved_locality(&self) -> Option<&UnitId> {
        match &self.classification {
            Some(c) if c.involves_locality => Some(&self.locality),
            _ => None,
        }
    }

    /// Whether the case waits for the joint consultation a grave discipline clue needs
    /// before it may be routed.
    pub fn awaits_joint_consultation(&self) -> bool {
        self.classification.as_ref().is_some_and(|c| {
            c.category == Category::DisciplineClue && c.severity == Severity::Grave
        }) && self.joint_consultations.is_empty()
    }

    /// The supervising unit: the lead unit once routed (it urges missed limits); before
    /// routing, nobody below the zone's rooms.
    pub fn supervising_unit(&self) -> Option<&UnitId> {
        self.lead_unit()
    }
}

/// The state of a case stream; `Default` is "no case yet".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseState {
    pub(crate) case: Option<Case>,
    pub(crate) version: u64,
}

impl CaseState {
    /// The empty state (no case yet).
    pub fn new() -> Self {
        CaseState::default()
    }

    /// Folds events into a fresh state.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a crate::CaseEvent>) -> Self {
        let mut s = CaseState::default();
        for e in events {
            crate::evolve(&mut s, e);
        }
        s
    }

    /// The case's facts, once reported.
    pub fn case(&self) -> Option<&Case> {
        self.case.as_ref()
    }

    /// The number of events applied (the stream version).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The stage ([`Stage::None`] before the case is reported).
    pub fn stage(&self) -> Stage {
        self.case.as_ref().map_or(Stage::None, |c| c.stage)
    }

    /// Whether the case exists and is in one of the five working stages.
    pub fn is_open(&self) -> bool {
        self.stage().is_open()
    }

    /// The open deadlines, by kind.
    pub fn deadlines(&self) -> impl Iterator<Item = &Deadline> {
        self.case.iter().flat_map(|c| c.deadlines.values())
    }

    /// The open deadline of a kind.
    pub fn deadline(&self, kind: DeadlineKind) -> Option<&Deadline> {
        self.case.as_ref()?.deadlines.get(&kind)
    }
}
