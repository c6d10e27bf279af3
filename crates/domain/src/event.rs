//! Events: the facts a case's stream is made of, named in the past tense. Each event carries
//! its case, the time the deciding command was issued (`at`) and who issued it (`by`), and
//! absolute due times (`..._due_at`) wherever a time limit starts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod fast_time;

use crate::ids::{CaseId, DepartmentId, ReporterHandle, UnitId, ZoneId};
use crate::model::{
    Actor, CaseKind, CaseOutcome, Category, Channel, DeadlineKind, DeclineReason,
    DisciplinedPerson, Disposition, Finding, FocusArea, Reporter, ResponsibleParty, Satisfaction,
    Severity, VisitResult,
};

/// A case was registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReported {
    /// The case.
    pub case_id: CaseId,
    /// When the command was issued.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who issued it.
    pub by: Actor,
    /// How it came in.
    pub channel: Channel,
    /// What it is.
    pub kind: CaseKind,
    /// Summary.
    pub summary: String,
    /// The town or street.
    pub locality: UnitId,
    /// The village or community, if known.
    pub village: Option<UnitId>,
    /// The zone of the locality (resolved from the organisation when reported).
    pub zone: ZoneId,
    /// The person or unit the matter is about.
    pub subject: String,
    /// The focus area.
    pub focus_area: FocusArea,
    /// The reporter (contact protected).
    pub reporter: Reporter,
    /// The reporter's opaque handle.
    pub reporter_handle: ReporterHandle,
    /// The department that transferred the clue, if any.
    pub source_department: Option<DepartmentId>,
    /// Due time of the intake decision.
    #[serde(with = "fast_time::utc")]
    pub intake_due_at: DateTime<Utc>,
}

/// The case was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseAccepted {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Due time of classification and routing.
    #[serde(with = "fast_time::utc")]
    pub classification_due_at: DateTime<Utc>,
}

/// The case was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseDeclined {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Why.
    pub reason: DeclineReason,
    /// Explanation.
    pub explanation: String,
}

/// The case was merged into another open case as a duplicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseMerged {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// The case it was merged into.
    pub into: CaseId,
}

/// The matter was transferred to another authority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseTransferred {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// The receiving authority.
    pub to_authority: String,
    /// Why.
    pub reason: String,
}

/// The case was classified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClassified {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Category.
    pub category: Category,
    /// Focus area.
    pub focus_area: FocusArea,
    /// Severity.
    pub severity: Severity,
    /// Whether the town or street itself is involved.
    pub involves_locality: bool,
    /// Involved department.
    pub involved_department: Option<DepartmentId>,
}

/// A joint consultation was held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointConsultationRecorded {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Participating units.
    pub participants: Vec<UnitId>,
    /// Participating departments.
    pub departments: Vec<DepartmentId>,
    /// Conclusion.
    pub conclusion: String,
}

/// The case was routed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRouted {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Leading unit.
    pub lead_unit: UnitId,
    /// Responsible parties.
    pub responsible: Vec<ResponsibleParty>,
    /// The handling limit in working days.
    pub time_limit_days: u32,
    /// Due time of handling.
    #[serde(with = "fast_time::utc")]
    pub handling_due_at: DateTime<Utc>,
}

/// A disposition was chosen for a clue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispositionChosen {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// The disposition.
    pub disposition: Disposition,
    /// The new due time: of handling (inquiry, verification) or of the hold review;
    /// `None` for close-without-action.
    #[serde(serialize_with = "fast_time::utc_opt")]
    pub due_at: Option<DateTime<Utc>>,
}

/// The verification team was formed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationTeamFormed {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Leading unit.
    pub leader: UnitId,
    /// Member units.
    pub members: Vec<UnitId>,
}

/// Findings were recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingsRecorded {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Result.
    pub finding: Finding,
    /// Summary.
    pub summary: String,
}

/// Discipline was recorded for named people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisciplineRecorded {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// People and measures.
    pub people: Vec<DisciplinedPerson>,
}

/// A consultation was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationAnswered {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// The answer.
    pub answer: String,
}

/// Rectification was ordered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationOrdered {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Who must rectify.
    pub responsible: ResponsibleParty,
    /// What.
    pub requirements: String,
    /// Due time of the plan.
    #[serde(with = "fast_time::utc")]
    pub plan_due_at: DateTime<Utc>,
}

/// A rectification plan was submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationPlanSubmitted {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Measures.
    pub measures: Vec<String>,
    /// Due time of the rectification (the plan's deadline).
    #[serde(with = "fast_time::utc")]
    pub rectification_due_at: DateTime<Utc>,
}

/// Progress on the rectification was reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationProgressReported {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// What was done.
    pub note: String,
    /// Estimated completion, 0..=100.
    pub percent_complete: u8,
}

/// The rectification was completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationCompleted {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Evidence.
    pub evidence: Vec<String>,
    /// Summary.
    pub summary: String,
    /// Due time of the review (visit and satisfaction).
    #[serde(with = "fast_time::utc")]
    pub review_due_at: DateTime<Utc>,
}

/// A missed deadline was urged (督办), or escalated on a second urging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseUrged {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// The missed deadline.
    pub deadline: DeadlineKind,
    /// The deadline's due time that was missed.
    #[serde(with = "fast_time::utc")]
    pub missed_due_at: DateTime<Utc>,
    /// False for the first urging, true for the escalation.
    pub escalated: bool,
    /// Note for the urged unit.
    pub note: String,
    /// After a first urging: when the deadline may be escalated if still missed.
    #[serde(with = "fast_time::utc")]
    pub respond_by: DateTime<Utc>,
}

/// A follow-up visit was scheduled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpVisitScheduled {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// The visiting unit.
    pub visitor: UnitId,
    /// Planned time.
    #[serde(with = "fast_time::utc")]
    pub scheduled_for: DateTime<Utc>,
}

/// A follow-up visit was held and its result recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpVisitRecorded {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Result.
    pub result: VisitResult,
    /// Notes.
    pub notes: String,
}

/// Satisfaction was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SatisfactionRecorded {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// The answer.
    pub satisfaction: Satisfaction,
    /// Comment.
    pub comment: String,
}

/// The case was reopened; it goes back to handling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReopened {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Why.
    pub reason: String,
    /// Due time of the renewed handling.
    #[serde(with = "fast_time::utc")]
    pub handling_due_at: DateTime<Utc>,
}

/// The case was closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClosed {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// Outcome.
    pub outcome: CaseOutcome,
    /// Summary.
    pub summary: String,
}

/// Someone read a reporter's contact. Records who, when and why; never the contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReporterContactRevealed {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who looked.
    pub by: Actor,
    /// Why they needed it.
    pub reason: String,
}

/// A reporter's contact was erased: the engine destroyed the data key it was sealed with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReporterContactErased {
    /// The case.
    pub case_id: CaseId,
    /// When.
    #[serde(with = "fast_time::utc")]
    pub at: DateTime<Utc>,
    /// Who decided it.
    pub by: Actor,
    /// The reporter whose contact was erased (every case of theirs is erased).
    pub reporter_handle: ReporterHandle,
    /// Why.
    pub reason: String,
    /// The legal basis.
    pub legal_basis: String,
    /// The case the erasure was requested on.
    pub requested_on: CaseId,
}

/// Errors decoding a stored event. Fatal for the record concerned (the stored data does not
/// match any known event); not retryable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fatal: the event type is not one this version knows.
    #[error("unknown event type `{event_type}`")]
    UnknownEventType {
        /// The stored type.
        event_type: String,
    },
    /// Fatal (or: an upcaster is missing): the schema version is not one this version reads
    /// (newer than current, or older without an upcaster path).
    #[error("event type `{event_type}` has unsupported schema version {schema_version}")]
    UnsupportedSchemaVersion {
        /// The stored type.
        event_type: String,
        /// The stored version.
        schema_version: u32,
    },
    /// Fatal: an upcaster refused the stored payload of an older schema version.
    #[error("upcasting `{event_type}` from schema version {schema_version} failed: {reason}")]
    UpcastFailed {
        /// The type the failing step reads.
        event_type: String,
        /// The version the failing step reads.
        schema_version: u32,
        /// The upcaster's message.
        reason: String,
    },
    /// Fatal: the payload is not valid JSON for this event type.
    #[error("payload of `{event_type}` is invalid: {message}")]
    InvalidPayload {
        /// The stored type.
        event_type: String,
        /// The parser's message.
        message: String,
    },
}

/// Declares [`CaseEvent`] from `Variant => "StoredName" @ current_schema_version` lines. The
/// stored names are written out (never derived from the Rust identifiers), so renaming a
/// type in code cannot change what is stored; `tests/codec.rs` pins every one of them.
macro_rules! events {
    ($($variant:ident => $name:literal @ $version:literal),* $(,)?) => {
        /// Every event of a case stream. Serialized (as a whole) with a `type` tag holding the
        /// stored event type name; [`CaseEvent::to_json`] writes the payload alone, without
        /// the tag.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum CaseEvent {
            $(
                #[allow(missing_docs)]
                #[serde(rename = $name)]
                $variant($variant),
            )*
        }

        impl CaseEvent {
            /// Every stored event type name, in a stable order.
            pub const EVENT_TYPES: &'static [&'static str] = &[$($name),*];

            /// Every stored event type name with the schema version this release writes.
            pub const SCHEMA_VERSIONS: &'static [(&'static str, u32)] = &[$(($name, $version)),*];

            /// The stored event type name, e.g. `"CaseReported"`.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(CaseEvent::$variant(_) => $name,)*
                }
            }

            /// The schema version of this event's payload (the version this release writes).
            pub fn schema_version(&self) -> u32 {
                match self {
                    $(CaseEvent::$variant(_) => $version,)*
                }
            }

            /// The schema version this release writes for a stored type name, if it knows
            /// the type.
            pub fn current_schema_version(event_type: &str) -> Option<u32> {
                match event_type {
                    $($name => Some($version),)*
                    _ => None,
                }
            }

            /// The case the event belongs to.
            pub fn case_id(&self) -> CaseId {
                match self {
                    $(CaseEvent::$variant(e) => e.case_id,)*
                }
            }

            /// When the command that produced it was issued.
            pub fn at(&self) -> DateTime<Utc> {
                match self {
                    $(CaseEvent::$variant(e) => e.at,)*
                }
            }

            /// Who issued the command that produced it.
            pub fn actor(&self) -> &Actor {
                match self {
                    $(CaseEvent::$variant(e) => &e.by,)*
                }
            }

            /// The payload as JSON bytes (without the type tag; the type is stored beside it).
            pub fn to_json(&self) -> Vec<u8> {
                // Serializing these plain structs (string keys, no maps with non-string keys)
                // cannot fail; an empty object is a safe, detectable fallback all the same.
                serde_json::to_vec(&self.payload()).unwrap_or_else(|_| b"{}".to_vec())
            }

            /// The payload to serialise: the event's fields without the type tag, as
            /// [`CaseEvent::to_json`] writes them (for a caller that serialises it itself).
            pub fn payload(&self) -> EventPayload<'_> {
                EventPayload(self)
            }

            /// Decodes a payload of the *current* schema version of its type, as
            /// [`CaseEvent::to_json`] writes it; any other version is refused. Stored records
            /// are decoded by `caseflow_projections::decode`, which brings older versions to
            /// the current shape with the domain's [`crate::UPCASTERS`] first.
            pub fn decode_current(
                event_type: &str,
                schema_version: u32,
                payload: &[u8],
            ) -> Result<CaseEvent, DecodeError> {
                Self::check_current(event_type, schema_version)?;
                let invalid = |e: serde_json::Error| DecodeError::InvalidPayload {
                    event_type: event_type.to_owned(),
                    message: e.to_string(),
                };
                // A payload that is valid UTF-8 as a whole (every payload the codec writes)
                // is parsed as a `str`, which spares serde_json a UTF-8 check of every string
                // inside it; anything else takes the byte path, so its error is unchanged.
                let text = std::str::from_utf8(payload).ok();
                match event_type {
                    $($name => match text {
                        Some(text) => serde_json::from_str::<$variant>(text),
                        None => serde_json::from_slice::<$variant>(payload),
                    }
                    .map(CaseEvent::$variant)
                    .map_err(invalid),)*
                    _ => Err(DecodeError::UnknownEventType {
                        event_type: event_type.to_owned(),
                    }),
                }
            }

            /// Decodes a payload already brought to the current schema version of its type
            /// (the end of an upcasting path).
            pub fn decode_current_value(
                event_type: &str,
                schema_version: u32,
                payload: serde_json::Value,
            ) -> Result<CaseEvent, DecodeError> {
                Self::check_current(event_type, schema_version)?;
                let invalid = |e: serde_json::Error| DecodeError::InvalidPayload {
                    event_type: event_type.to_owned(),
                    message: e.to_string(),
                };
                match event_type {
                    $($name => serde_json::from_value::<$variant>(payload)
                        .map(CaseEvent::$variant)
                        .map_err(invalid),)*
                    _ => Err(DecodeError::UnknownEventType {
                        event_type: event_type.to_owned(),
                    }),
                }
            }
        }

        /// An event's payload: serialises as its variant's fields alone, without the type
        /// tag (see [`CaseEvent::payload`]).
        #[derive(Clone, Copy, Debug)]
        pub struct EventPayload<'a>(&'a CaseEvent);

        impl Serialize for EventPayload<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.0 {
                    $(CaseEvent::$variant(e) => e.serialize(s),)*
                }
            }
        }

        $(
            impl From<$variant> for CaseEvent {
                fn from(e: $variant) -> Self {
                    CaseEvent::$variant(e)
                }
            }
        )*
    };
}

impl CaseEvent {
    /// A known type at its current version, or the typed reason why not.
    fn check_current(event_type: &str, schema_version: u32) -> Result<(), DecodeError> {
        match Self::current_schema_version(event_type) {
            None => Err(DecodeError::UnknownEventType {
                event_type: event_type.to_owned(),
            }),
            Some(current) if current != schema_version => {
                Err(DecodeError::UnsupportedSchemaVersion {
                    event_type: event_type.to_owned(),
                    schema_version,
                })
            }
            Some(_) => Ok(()),
        }
    }
}

events!(
    CaseReported => "CaseReported" @ 2,
    CaseAccepted => "CaseAccepted" @ 1,
    CaseDeclined => "CaseDeclined" @ 1,
    CaseMerged => "CaseMerged" @ 1,
    CaseTransferred => "CaseTransferred" @ 1,
    CaseClassified => "CaseClassified" @ 1,
    JointConsultationRecorded => "JointConsultationRecorded" @ 1,
    CaseRouted => "CaseRouted" @ 1,
    DispositionChosen => "DispositionChosen" @ 1,
    VerificationTeamFormed => "VerificationTeamFormed" @ 1,
    FindingsRecorded => "FindingsRecorded" @ 1,
    DisciplineRecorded => "DisciplineRecorded" @ 1,
    ConsultationAnswered => "ConsultationAnswered" @ 1,
    RectificationOrdered => "RectificationOrdered" @ 1,
    RectificationPlanSubmitted => "RectificationPlanSubmitted" @ 1,
    RectificationProgressReported => "RectificationProgressReported" @ 1,
    RectificationCompleted => "RectificationCompleted" @ 1,
    CaseUrged => "CaseUrged" @ 1,
    FollowUpVisitScheduled => "FollowUpVisitScheduled" @ 1,
    FollowUpVisitRecorded => "FollowUpVisitRecorded" @ 1,
    SatisfactionRecorded => "SatisfactionRecorded" @ 1,
    CaseReopened => "CaseReopened" @ 1,
    CaseClosed => "CaseClosed" @ 1,
    ReporterContactRevealed => "ReporterContactRevealed" @ 1,
    ReporterContactErased => "ReporterContactErased" @ 1,
);
