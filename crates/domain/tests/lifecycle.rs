//! Happy paths: every channel and every kind through all five stages to close.

mod support;

use caseflow_domain::*;
use chrono::Duration;
use support::*;

#[track_caller]
fn run_to_close(kind: CaseKind, channel: Channel) {
    let reporter = match channel {
        // The commission's own finds are registered by a room.
        Channel::OnSiteVisit | Channel::SpecialCampaign | Channel::DepartmentTransfer => {
            officer("room-1")
        }
        _ => vil(),
    };
    let mut steps = vec![
        (reporter, report(kind, channel)),
        (officer("room-1"), accept()),
    ];
    let (rest, outcome) = path_after_acceptance(kind);
    steps.extend(rest);
    let g = Gwt::new().given(steps);
    let stages: Vec<Stage> = {
        let mut s = CaseState::default();
        let mut seen = Vec::new();
        for e in &g.events {
            evolve(&mut s, e);
            if seen.last() != Some(&s.stage()) {
                seen.push(s.stage());
            }
        }
        seen
    };
    assert_eq!(
        stages,
        vec![
            Stage::Intake,
            Stage::Classification,
            Stage::Handling,
            Stage::Rectification,
            Stage::Review,
            Stage::Closed
        ],
        "{kind:?} via {channel:?}"
    );
    let case = g.state.case().unwrap();
    assert_eq!(case.outcome, Some(outcome));
    assert_eq!(case.channel, channel);
    assert!(
        case.deadlines.is_empty(),
        "a closed case has no open deadlines"
    );
    assert!(!g.state.is_open());
}

#[test]
fn every_kind_runs_through_all_five_stages_to_close() {
    for kind in CaseKind::ALL {
        run_to_close(kind, Channel::PettyPowerMiniProgram);
    }
}

#[test]
fn every_channel_runs_through_all_five_stages_to_close() {
    for channel in Channel::ALL {
        run_to_close(CaseKind::ProblemClue, channel);
        run_to_close(CaseKind::Complaint, channel);
    }
}

#[test]
fn a_clue_not_substantiated_closes_from_handling() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::TalkOrLetterInquiry)));
    steps.push((room1(), team("room-1", &["loc-xinhua"])));
    steps.push((officer("room-1"), findings(Finding::NotSubstantiated)));
    Gwt::new()
        .given(steps)
        .when(room1(), close_case(CaseOutcome::NotSubstantiated))
        .then_events(&["CaseClosed"])
        .then_stage(Stage::Closed);
}

#[test]
fn a_clue_closed_without_action_closes_from_handling() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::CloseWithoutAction)));
    let g = Gwt::new().given(steps);
    assert!(g.state.deadline(DeadlineKind::Handling).is_none());
    g.when(room1(), close_case(CaseOutcome::ClosedWithoutAction))
        .then_events(&["CaseClosed"]);
}

#[test]
fn a_consultation_answered_closes_from_handling() {
    let mut steps = accepted(CaseKind::Consultation);
    steps.push((
        room1(),
        classify(Category::Consultation, Severity::Ordinary, false),
    ));
    steps.push((
        room1(),
        route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
    ));
    steps.push((officer("loc-chaoyang"), answer()));
    Gwt::new()
        .given(steps)
        .when(chaoyang(), close_case(CaseOutcome::Answered))
        .then_events(&["CaseClosed"]);
}

#[test]
fn a_clue_held_for_later_opens_a_hold_review_and_can_be_decided_again() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::HoldForLater)));
    let g = Gwt::new().given(steps);
    assert!(g.state.deadline(DeadlineKind::HoldReview).is_some());
    assert!(g.state.deadline(DeadlineKind::Handling).is_none());
    let o = g.when(room1(), dispose(Disposition::PreliminaryVerification));
    o.then_events(&["DispositionChosen"]);
    assert!(o.after.deadline(DeadlineKind::HoldReview).is_none());
    assert!(o.after.deadline(DeadlineKind::Handling).is_some());
}

#[test]
fn an_unsatisfied_reporter_reopens_the_case_and_it_closes_after_a_second_round() {
    let mut steps = clue_visit_scheduled();
    steps.push((leader("loc-zhongshan"), visit(VisitResult::Held)));
    steps.push((vil(), satisfied(Satisfaction::Unsatisfied)));
    let g = Gwt::new().given(steps);
    g.when(room1(), close_case(CaseOutcome::Rectified))
        .then_error(DomainError::ReviewFailed {
            reason: "the reporter is unsatisfied",
        });
    let g = g.given([(room1(), reopen())]);
    assert_eq!(g.state.stage(), Stage::Handling);
    let case = g.state.case().unwrap();
    assert_eq!(case.reopen_count, 1);
    assert_eq!(case.earlier_rectifications, 1);
    assert!(case.rectification.is_none());
    let g = g.given([
        (room1(), order(unit_party("loc-chaoyang"))),
        (chaoyang(), plan(t0() + Duration::days(12))),
        (chaoyang(), complete()),
        (room1(), schedule("loc-xinhua", t0() + Duration::days(25))),
        (leader("loc-xinhua"), visit(VisitResult::Held)),
        (vil(), satisfied(Satisfaction::Satisfied)),
        (room1(), close_case(CaseOutcome::Rectified)),
    ]);
    assert_eq!(g.state.stage(), Stage::Closed);
    assert_eq!(g.state.case().unwrap().visits_held, 2);
}

#[test]
fn a_closed_case_is_reopened_by_a_room_leader() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::CloseWithoutAction)));
    steps.push((room1(), close_case(CaseOutcome::ClosedWithoutAction)));
    let g = Gwt::new().given(steps);
    g.when(leader("room-2"), reopen())
        .then_events(&["CaseReopened"])
        .then_stage(Stage::Handling);
    g.when(officer("room-2"), reopen()).then_not_authorized();
    // Reopened, the case needs a fresh decision before it can close from handling again.
    let g = g.given([(leader("room-2"), reopen())]);
    g.when(room1(), close_case(CaseOutcome::ClosedWithoutAction))
        .then_error(DomainError::PrerequisiteMissing {
            missing: "findings, an answer, or a close-without-action disposition",
        });
}

#[test]
fn events_that_do_not_fit_are_applied_tolerantly_and_reported() {
    let g = Gwt::new().given(clue_routed());
    // A stream that starts in the middle: evolve ignores the event, misfit names it.
    let routed = g.events.last().unwrap().clone();
    let mut empty = CaseState::default();
    let m = evolve_checked(&mut empty, &routed).unwrap_err();
    assert_eq!(m.event_type, "CaseRouted");
    assert_eq!(empty.stage(), Stage::None);
    assert_eq!(empty.version(), 1);
    // A report replayed twice.
    let mut twice = g.state.clone();
    assert!(misfit(&twice, &g.events[0]).is_some());
    evolve(&mut twice, &g.events[0]);
    assert_eq!(twice.stage(), Stage::Intake);
    // Every event decide produced fits.
    let mut s = CaseState::default();
    for e in &g.events {
        evolve_checked(&mut s, e).unwrap();
    }
    assert_eq!(s, g.state);
}

#[test]
fn duplicates_merge_and_outside_matters_transfer_or_decline() {
    let g = Gwt::new().given([(vil(), report(CaseKind::Complaint, Channel::Hotline))]);
    g.when(
        officer("room-2"),
        MergeCase {
            case_id: CASE,
            into: OTHER,
        }
        .into(),
    )
    .then_events(&["CaseMerged"])
    .then_stage(Stage::Merged);
    g.when(
        chaoyang(),
        TransferCase {
            case_id: CASE,
            to_authority: "区信访局".into(),
            reason: "涉法涉诉".into(),
        }
        .into(),
    )
    .then_stage(Stage::Transferred);
    let o = g.when(
        officer("team-1"),
        DeclineCase {
            case_id: CASE,
            reason: DeclineReason::OutsideRemit,
            explanation: "不属于受理范围".into(),
        }
        .into(),
    );
    o.then_stage(Stage::Declined);
    assert!(o.after.case().unwrap().deadlines.is_empty());
}

#[test]
fn a_grave_clue_is_routed_after_a_joint_consultation_in_the_zone() {
    let mut steps = accepted(CaseKind::ProblemClue);
    steps.push((
        room1(),
        classify(Category::DisciplineClue, Severity::Grave, true),
    ));
    let g = Gwt::new().given(steps);
    g.when(room1(), route("room-2", vec![unit_party("loc-chaoyang")]))
        .then_error(DomainError::PrerequisiteMissing {
            missing: "a joint consultation for a grave clue",
        });
    let g = g.given([(
        officer("room-2"),
        RecordJointConsultation {
            case_id: CASE,
            participants: vec![u("room-1"), u("room-2"), u("loc-zhongshan"), u("team-1")],
            departments: vec![dept("dept-finance"), dept("dept-audit")],
            conclusion: "线索较重，由第二纪检监察室牵头初核".into(),
        }
        .into(),
    )]);
    g.when(room1(), route("room-2", vec![unit_party("loc-chaoyang")]))
        .then_events(&["CaseRouted"]);
}
