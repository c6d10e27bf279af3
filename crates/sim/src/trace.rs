//! The workflow steps the simulator decides, in the order it decides them.
//!
//! A [`Step`] is one business action on one case at one virtual time. In a standalone run the
//! steps are hashed into a digest (the model's log); when driving the engine each step
//! becomes exactly one domain command (see `engine` module), so the engine's event log follows
//! the same order.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::scenario::{CaseKind, StageName};

/// Findings of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// 属实.
    Substantiated,
    /// 部分属实.
    PartlySubstantiated,
    /// 不属实.
    NotSubstantiated,
}

/// One business action; unit fields are indexes into the run's [`crate::model::Layout`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A case arrives (ReportCase).
    Report {
        /// Channel index into the scenario's channels.
        channel: u16,
        /// Kind.
        kind: CaseKind,
        /// Focus-area index into the scenario's focus mix (sorted by name).
        focus: u16,
        /// Locality index (0-based; unit id `loc-{n+1}`).
        locality: u32,
        /// Village index (0-based; unit id `vil-{n+1}`).
        village: u32,
        /// The room that takes it in.
        intake_unit: u32,
    },
    /// Merged into an open case (MergeCase).
    Merge {
        /// The case number it duplicates.
        into_case: u64,
    },
    /// Not accepted (DeclineCase).
    Decline,
    /// Transferred to another authority (TransferCase).
    Transfer,
    /// Accepted (AcceptCase).
    Accept,
    /// Classified and routed (ClassifyCase + RouteCase).
    Route {
        /// Leading unit.
        lead: u32,
        /// Unit that does the handling work.
        handler: u32,
        /// Unit responsible for any rectification (a team stands for its department).
        responsible: u32,
        /// Whether the case involves its town or street (clues only).
        involves_locality: bool,
        /// Whether the case was classified as serious.
        serious: bool,
    },
    /// A cross-inspection verification team (FormVerificationTeam).
    FormVerificationTeam {
        /// Member units (localities other than the involved one).
        members: Vec<u32>,
    },
    /// Clue disposition (ChooseDisposition); index into the sorted disposition names.
    ChooseDisposition {
        /// Index.
        disposition: u16,
    },
    /// Findings recorded (RecordFindings).
    RecordFindings {
        /// The finding.
        finding: Finding,
    },
    /// People disciplined (RecordDiscipline).
    RecordDiscipline {
        /// Number of people.
        people: u32,
    },
    /// Consultation answered or suggestion replied (AnswerConsultation).
    Answer,
    /// Rectification ordered (OrderRectification).
    OrderRectification {
        /// Responsible unit.
        unit: u32,
    },
    /// Plan submitted (SubmitRectificationPlan).
    SubmitPlan {
        /// The plan's deadline (virtual hours).
        deadline: f64,
    },
    /// Rectification completed (CompleteRectification).
    CompleteRectification,
    /// A missed time limit urged (UrgeOverdue).
    Urge {
        /// The stage whose time limit was missed.
        stage: StageName,
    },
    /// Follow-up visit scheduled (ScheduleFollowUpVisit).
    ScheduleFollowUp {
        /// Village officer unit.
        officer: u32,
        /// When the visit is to happen (virtual hours).
        visit_at: f64,
    },
    /// Follow-up visit result (RecordFollowUpVisit).
    RecordFollowUp {
        /// Whether the rectification held.
        passed: bool,
    },
    /// Reporter's satisfaction (RecordSatisfaction).
    RecordSatisfaction {
        /// Satisfied or not.
        satisfied: bool,
    },
    /// Reopened (ReopenCase).
    Reopen,
    /// Closed (CloseCase).
    Close {
        /// The outcome.
        outcome: CloseOutcome,
    },
}

/// How a case was closed (the domain's `CaseOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseOutcome {
    /// Rectified and reviewed.
    Rectified,
    /// Consultation answered.
    Answered,
    /// Findings: not substantiated.
    NotSubstantiated,
    /// Clue closed without action.
    ClosedWithoutAction,
}

impl Action {
    /// Stable name of the command this action becomes.
    pub fn command_name(&self) -> &'static str {
        match self {
            Action::Report { .. } => "ReportCase",
            Action::Merge { .. } => "MergeCase",
            Action::Decline => "DeclineCase",
            Action::Transfer => "TransferCase",
            Action::Accept => "AcceptCase",
            Action::Route { .. } => "RouteCase",
            Action::FormVerificationTeam { .. } => "FormVerificationTeam",
            Action::ChooseDisposition { .. } => "ChooseDisposition",
            Action::RecordFindings { .. } => "RecordFindings",
            Action::RecordDiscipline { .. } => "RecordDiscipline",
            Action::Answer => "AnswerConsultation",
            Action::OrderRectification { .. } => "OrderRectification",
            Action::SubmitPlan { .. } => "SubmitRectificationPlan",
            Action::CompleteRectification => "CompleteRectification",
            Action::Urge { .. } => "UrgeOverdue",
            Action::ScheduleFollowUp { .. } => "ScheduleFollowUpVisit",
            Action::RecordFollowUp { .. } => "RecordFollowUpVisit",
            Action::RecordSatisfaction { .. } => "RecordSatisfaction",
            Action::Reopen => "ReopenCase",
            Action::Close { .. } => "CloseCase",
        }
    }
}

/// One step: who (unit), what, on which case, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Virtual time in hours since the start.
    pub at: f64,
    /// Sequence number of the case (1-based, in arrival order).
    pub case_no: u64,
    /// The unit acting.
    pub actor: u32,
    /// What happens.
    pub action: Action,
}

/// Running SHA-256 digest of a step log.
#[derive(Debug, Clone, Default)]
pub struct TraceDigest {
    hasher: Sha256,
    steps: u64,
}

impl TraceDigest {
    /// Adds one step (its JSON line, with time rounded to milliseconds).
    pub fn add(&mut self, step: &Step) {
        let ms = (step.at * 3_600_000.0).round() as i64;
        let action = serde_json::to_string(&step.action).unwrap_or_default();
        self.hasher
            .update(format!("{ms} {} {} {action}\n", step.case_no, step.actor).as_bytes());
        self.steps += 1;
    }

    /// Number of steps hashed.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Hex digest of everything added so far.
    pub fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}
