//! `evolve`: applies one event to a case state. Total: it never panics and never fails, in any
//! build. An event that does not fit the state (which `decide` never produces) is applied as
//! tolerantly as possible, so replaying a damaged or hand-made stream cannot bring a service
//! down; callers that want to notice such events use [`evolve_checked`] or [`misfit`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::event::CaseEvent;
use crate::model::{ContactErasure, DeadlineKind};
use thiserror::Error;

use crate::state::{
    Case, CaseState, Classification, Deadline, JointConsultation, Rectification,
    RectificationStatus, Route, ScheduledVisit, Stage, Urging, VerificationTeam,
};

fn open(case: &mut Case, kind: DeadlineKind, at: DateTime<Utc>, due_at: DateTime<Utc>) {
    case.deadlines.insert(
        kind,
        Deadline {
            kind,
            opened_at: at,
            due_at,
            urged: None,
            escalated: None,
        },
    );
}

fn close(case: &mut Case, kind: DeadlineKind) {
    case.deadlines.remove(&kind);
}

/// An event that does not fit the state it is applied to. `decide` never produces one; seeing
/// one means the stream was damaged or written by something else. Fatal for the stream's
/// trustworthiness (report it), though [`evolve`] still applies the event tolerantly.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("event {event_type} does not fit the case: {reason}")]
pub struct Misfit {
    /// The event's type.
    pub event_type: &'static str,
    /// Why it does not fit.
    pub reason: &'static str,
}

/// Says whether an event does not fit a state (`None` = it fits). Checks what `evolve` relies
/// on: the case exists (or not, for `CaseReported`), the ids match, time does not run
/// backwards, a final or closed case changes only as the rules allow, and urgings, plans,
/// progress and completion find what they refer to.
pub fn misfit(state: &CaseState, event: &CaseEvent) -> Option<Misfit> {
    let m = |reason| {
        Some(Misfit {
            event_type: event.event_type(),
            reason,
        })
    };
    let Some(case) = state.case.as_ref() else {
        return match event {
            CaseEvent::CaseReported(_) => None,
            _ => m("the case has not been reported"),
        };
    };
    if matches!(event, CaseEvent::CaseReported(_)) {
        return m("the case was already reported");
    }
    if event.case_id() != case.id {
        return m("it belongs to another case");
    }
    if event.at() < case.last_event_at {
        return m("it is older than the case's last event");
    }
    // A reporter's contact may be erased whatever became of the case.
    let erasure = matches!(event, CaseEvent::ReporterContactErased(_));
    if case.stage.is_final() && !erasure {
        return m("the case was declined, merged or transferred");
    }
    if case.stage == Stage::Closed && !erasure && !matches!(event, CaseEvent::CaseReopened(_)) {
        return m("the case is closed");
    }
    match event {
        CaseEvent::CaseUrged(e) if !case.deadlines.contains_key(&e.deadline) => {
            m("the urged deadline is not open")
        }
        CaseEvent::RectificationPlanSubmitted(_)
        | CaseEvent::RectificationProgressReported(_)
        | CaseEvent::RectificationCompleted(_)
            if case.rectification.is_none() =>
        {
            m("no rectification was ordered")
        }
        _ => None,
    }
}

/// Applies one event like [`evolve`], first reporting whether it fits the state. The event is
/// applied either way, so the state matches what `evolve` alone would give.
pub fn evolve_checked(state: &mut CaseState, event: &CaseEvent) -> Result<(), Misfit> {
    let problem = misfit(state, event);
    evolve(state, event);
    problem.map_or(Ok(()), Err)
}

/// Applies one event. Always succeeds; see the module documentation.
pub fn evolve(state: &mut CaseState, event: &CaseEvent) {
    state.version += 1;
    if let CaseEvent::CaseReported(e) = event {
        // A second report (never produced by `decide`) replaces the case: the last word wins,
        // as for any other fact.
        let mut case = Case {
            id: e.case_id,
            stage: Stage::Intake,
            reported_at: e.at,
            reported_by: e.by.clone(),
            channel: e.channel,
            kind: e.kind,
            summary: e.summary.clone(),
            locality: e.locality.clone(),
            village: e.village.clone(),
            zone: e.zone.clone(),
            subject: e.subject.clone(),
            focus_area: e.focus_area,
            reporter: e.reporter.clone(),
            reporter_handle: e.reporter_handle,
            source_department: e.source_department.clone(),
            classification: None,
            joint_consultations: Vec::new(),
            route: None,
            disposition: None,
            verification_team: None,
            finding: None,
            disciplined: Vec::new(),
            answer: None,
            rectification: None,
            earlier_rectifications: 0,
            scheduled_visit: None,
            last_visit: None,
            visits_held: 0,
            satisfaction: None,
            deadlines: BTreeMap::new(),
            reopen_count: 0,
            outcome: None,
            closed_at: None,
            decline_reason: None,
            merged_into: None,
            transferred_to: None,
            contact_reveals: 0,
            contact_erased: None,
            last_event_at: e.at,
        };
        open(
            &mut case,
            DeadlineKind::IntakeDecision,
            e.at,
            e.intake_due_at,
        );
        state.case = Some(case);
        return;
    }
    let Some(case) = state.case.as_mut() else {
        // An event before CaseReported: nothing to apply it to. `decide` never produces this.
        return;
    };
    if event.at() > case.last_event_at {
        case.last_event_at = event.at();
    }
    match event {
        CaseEvent::CaseReported(_) => {}
        CaseEvent::CaseAccepted(e) => {
            case.stage = Stage::Classification;
            close(case, DeadlineKind::IntakeDecision);
            open(
                case,
                DeadlineKind::Classification,
                e.at,
                e.classification_due_at,
            );
        }
        CaseEvent::CaseDeclined(e) => {
            case.stage = Stage::Declined;
            case.decline_reason = Some(e.reason);
            case.deadlines.clear();
        }
        CaseEvent::CaseMerged(e) => {
            case.stage = Stage::Merged;
            case.merged_into = Some(e.into);
            case.deadlines.clear();
        }
        CaseEvent::CaseTransferred(e) => {
            case.stage = Stage::Transferred;
            case.transferred_to = Some(e.to_authority.clone());
            case.deadlines.clear();
        }
        CaseEvent::CaseClassified(e) => {
            case.focus_area = e.focus_area;
            case.classification = Some(Classification {
                category: e.category,
                severity: e.severity,
                involves_locality: e.involves_locality,
                involved_department: e.involved_department.clone(),
            });
        }
        CaseEvent::JointConsultationRecorded(e) => {
            case.joint_consultations.push(JointConsultation {
                at: e.at,
                participants: e.participants.clone(),
                departments: e.departments.clone(),
                conclusion: e.conclusion.clone(),
            });
        }
        CaseEvent::CaseRouted(e) => {
            case.stage = Stage::Handling;
            case.route = Some(Route {
                lead_unit: e.lead_unit.clone(),
                responsible: e.responsible.clone(),
                time_limit_days: e.time_limit_days,
                routed_at: e.at,
            });
            close(case, DeadlineKind::Classification);
            open(case, DeadlineKind::Handling, e.at, e.handling_due_at);
        }
        CaseEvent::DispositionChosen(e) => {
            use crate::model::Disposition as D;
            case.disposition = Some(e.disposition);
            close(case, DeadlineKind::Handling);
            close(case, DeadlineKind::HoldReview);
            match (e.disposition, e.due_at) {
                (D::HoldForLater, Some(due)) => open(case, DeadlineKind::HoldReview, e.at, due),
                (D::TalkOrLetterInquiry | D::PreliminaryVerification, Some(due)) => {
                    open(case, DeadlineKind::Handling, e.at, due)
                }
                _ => {}
            }
        }
        CaseEvent::VerificationTeamFormed(e) => {
            case.verification_team = Some(VerificationTeam {
                leader: e.leader.clone(),
                members: e.members.clone(),
            });
        }
        CaseEvent::FindingsRecorded(e) => {
            case.finding = Some(e.finding);
            close(case, DeadlineKind::Handling);
        }
        CaseEvent::DisciplineRecorded(e) => {
            case.disciplined.extend(e.people.iter().cloned());
        }
        CaseEvent::ConsultationAnswered(e) => {
            case.answer = Some(e.answer.clone());
            close(case, DeadlineKind::Handling);
        }
        CaseEvent::RectificationOrdered(e) => {
            case.stage = Stage::Rectification;
            case.rectification = Some(Rectification {
                responsible: e.responsible.clone(),
                requirements: e.requirements.clone(),
                ordered_at: e.at,
                status: RectificationStatus::Ordered,
                measures: Vec::new(),
                deadline: None,
                percent_complete: 0,
                progress_reports: 0,
                evidence: Vec::new(),
            });
            close(case, DeadlineKind::Handling);
            open(case, DeadlineKind::RectificationPlan, e.at, e.plan_due_at);
        }
        CaseEvent::RectificationPlanSubmitted(e) => {
            if let Some(r) = case.rectification.as_mut() {
                r.status = RectificationStatus::PlanSubmitted;
                r.measures = e.measures.clone();
                r.deadline = Some(e.rectification_due_at);
            }
            close(case, DeadlineKind::RectificationPlan);
            open(
                case,
                DeadlineKind::Rectification,
                e.at,
                e.rectification_due_at,
            );
        }
        CaseEvent::RectificationProgressReported(e) => {
            if let Some(r) = case.rectification.as_mut() {
                r.percent_complete = e.percent_complete;
                r.progress_reports += 1;
            }
        }
        CaseEvent::RectificationCompleted(e) => {
            case.stage = Stage::Review;
            if let Some(r) = case.rectification.as_mut() {
                r.status = RectificationStatus::Completed;
                r.percent_complete = 100;
                r.evidence = e.evidence.clone();
            }
            close(case, DeadlineKind::Rectification);
            open(case, DeadlineKind::Review, e.at, e.review_due_at);
        }
        CaseEvent::CaseUrged(e) => {
            // An urging of a deadline that is not open (never decided; see `misfit`) changes
            // nothing: `evolve` is total in every build, so replaying a damaged stream can
            // report it without a debug build aborting.
            if let Some(d) = case.deadlines.get_mut(&e.deadline) {
                let urging = Urging {
                    at: e.at,
                    by: e.by.unit.clone(),
                    respond_by: e.respond_by,
                };
                if e.escalated {
                    d.escalated = Some(urging);
                } else {
                    d.urged = Some(urging);
                }
            }
        }
        CaseEvent::FollowUpVisitScheduled(e) => {
            case.scheduled_visit = Some(ScheduledVisit {
                visitor: e.visitor.clone(),
                scheduled_for: e.scheduled_for,
            });
        }
        CaseEvent::FollowUpVisitRecorded(e) => {
            case.last_visit = Some(e.result);
            case.visits_held += 1;
            case.scheduled_visit = None;
        }
        CaseEvent::SatisfactionRecorded(e) => {
            case.satisfaction = Some(e.satisfaction);
        }
        CaseEvent::CaseReopened(e) => {
            use crate::model::{Disposition as D, Finding as F};
            case.stage = Stage::Handling;
            case.reopen_count += 1;
            // Whatever allowed closing straight from handling must be decided afresh;
            // substantiated findings stand, so a new rectification can be ordered at once.
            if case.finding == Some(F::NotSubstantiated) {
                case.finding = None;
            }
            if matches!(
                case.disposition,
                Some(D::CloseWithoutAction | D::HoldForLater)
            ) {
                case.disposition = None;
            }
            case.answer = None;
            if case.rectification.take().is_some() {
                case.earlier_rectifications += 1;
            }
            case.scheduled_visit = None;
            case.last_visit = None;
            case.satisfaction = None;
            case.outcome = None;
            case.closed_at = None;
            case.deadlines.clear();
            open(case, DeadlineKind::Handling, e.at, e.handling_due_at);
        }
        CaseEvent::CaseClosed(e) => {
            case.stage = Stage::Closed;
            case.outcome = Some(e.outcome);
            case.closed_at = Some(e.at);
            case.scheduled_visit = None;
            case.deadlines.clear();
        }
        CaseEvent::ReporterContactRevealed(_) => {
            case.contact_reveals += 1;
        }
        CaseEvent::ReporterContactErased(e) => {
            case.contact_erased = Some(ContactErasure {
                at: e.at,
                by: e.by.clone(),
                reason: e.reason.clone(),
                legal_basis: e.legal_basis.clone(),
            });
        }
    }
}
