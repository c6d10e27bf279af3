//! One given/when/then test (at least) per `DomainError` variant, plus the authorization,
//! cross-inspection, stage-order and time-limit rules.

mod support;

use caseflow_domain::*;
use chrono::{Duration, TimeZone, Utc};
use support::*;

// ---- Actor and case identity ------------------------------------------------------------

#[test]
fn unknown_unit_as_actor_is_refused() {
    Gwt::new()
        .when(
            leader("room-99"),
            report(CaseKind::Complaint, Channel::Hotline),
        )
        .then_error(DomainError::UnknownUnit { unit: u("room-99") });
}

#[test]
fn unknown_department_in_classification_is_refused() {
    Gwt::new()
        .given(accepted(CaseKind::Complaint))
        .when(room1(), classify_dept(Category::MassDemand, "dept-nope"))
        .then_error(DomainError::UnknownDepartment {
            department: dept("dept-nope"),
        });
}

#[test]
fn an_information_officer_role_at_a_room_is_refused() {
    Gwt::new()
        .when(
            informant("room-1"),
            report(CaseKind::Complaint, Channel::Hotline),
        )
        .then_error(DomainError::RoleNotValidForLevel {
            unit: u("room-1"),
            role: Role::InformationOfficer,
            level: Level::Room,
        });
}

#[test]
fn commands_before_the_report_find_no_case() {
    Gwt::new()
        .when(officer("room-1"), accept())
        .then_error(DomainError::CaseNotFound);
}

#[test]
fn reporting_the_same_case_twice_is_refused() {
    Gwt::new()
        .given([(vil(), report(CaseKind::Complaint, Channel::Hotline))])
        .when(vil(), report(CaseKind::Complaint, Channel::Hotline))
        .then_error(DomainError::CaseAlreadyExists { case_id: CASE });
}

#[test]
fn a_command_for_another_case_is_refused() {
    Gwt::new()
        .given([(vil(), report(CaseKind::Complaint, Channel::Hotline))])
        .when(officer("room-1"), AcceptCase { case_id: OTHER }.into())
        .then_error(DomainError::CaseMismatch {
            state_case: CASE,
            command_case: OTHER,
        });
}

#[test]
fn time_cannot_run_backwards_within_a_case() {
    let g = Gwt::new().given([(vil(), report(CaseKind::Complaint, Channel::Hotline))]);
    let last = g.state.case().unwrap().last_event_at;
    g.at(t0() - Duration::days(2))
        .when(officer("room-1"), accept())
        .then_error(DomainError::IssuedBeforeLastEvent {
            issued_at: t0() - Duration::days(2) + Duration::hours(1),
            last_event_at: last,
        });
}

// ---- Stage order --------------------------------------------------------------------------

#[test]
fn a_declined_case_accepts_nothing_more() {
    Gwt::new()
        .given([
            (vil(), report(CaseKind::Complaint, Channel::Hotline)),
            (
                officer("room-1"),
                DeclineCase {
                    case_id: CASE,
                    reason: DeclineReason::AlreadyDecided,
                    explanation: "已依法处理".into(),
                }
                .into(),
            ),
        ])
        .when(officer("room-1"), accept())
        .then_error(DomainError::CaseFinished {
            stage: Stage::Declined,
        });
}

#[test]
fn a_merged_case_accepts_not_even_a_reopen() {
    Gwt::new()
        .given([
            (vil(), report(CaseKind::Complaint, Channel::Hotline)),
            (
                officer("room-1"),
                MergeCase {
                    case_id: CASE,
                    into: OTHER,
                }
                .into(),
            ),
        ])
        .when(room1(), reopen())
        .then_error(DomainError::CaseFinished {
            stage: Stage::Merged,
        });
}

#[test]
fn a_closed_case_accepts_only_reopen() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::CloseWithoutAction)));
    steps.push((room1(), close_case(CaseOutcome::ClosedWithoutAction)));
    let g = Gwt::new().given(steps);
    g.when(room1(), findings(Finding::Substantiated))
        .then_error(DomainError::CaseClosed);
    g.when(room1(), urge(DeadlineKind::Handling))
        .then_error(DomainError::CaseClosed);
}

#[test]
fn classification_before_acceptance_is_in_the_wrong_stage() {
    Gwt::new()
        .given([(vil(), report(CaseKind::Complaint, Channel::Hotline))])
        .when(
            room1(),
            classify(Category::MassDemand, Severity::Ordinary, false),
        )
        .then_error(DomainError::WrongStage {
            command: "ClassifyCase",
            stage: Stage::Intake,
        });
}

#[test]
fn routing_before_classification_is_missing_a_prerequisite() {
    Gwt::new()
        .given(accepted(CaseKind::Complaint))
        .when(
            room1(),
            route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
        )
        .then_error(DomainError::PrerequisiteMissing {
            missing: "classification",
        });
}

#[test]
fn no_rectification_before_findings() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::PreliminaryVerification)));
    Gwt::new()
        .given(steps)
        .when(room1(), order(unit_party("loc-chaoyang")))
        .then_error(DomainError::PrerequisiteMissing {
            missing: "substantiated findings (or, for a consultation, its answer)",
        });
}

#[test]
fn no_rectification_before_routing() {
    Gwt::new()
        .given(accepted(CaseKind::Complaint))
        .when(room1(), order(unit_party("loc-chaoyang")))
        .then_error(DomainError::WrongStage {
            command: "OrderRectification",
            stage: Stage::Classification,
        });
}

#[test]
fn a_disposition_does_not_apply_to_a_mass_demand() {
    let mut steps = accepted(CaseKind::Complaint);
    steps.push((
        room1(),
        classify(Category::MassDemand, Severity::Ordinary, false),
    ));
    steps.push((
        room1(),
        route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
    ));
    Gwt::new()
        .given(steps)
        .when(chaoyang(), dispose(Disposition::PreliminaryVerification))
        .then_error(DomainError::NotApplicableToCategory {
            command: "ChooseDisposition",
            category: Category::MassDemand,
        });
}

#[test]
fn a_clue_cannot_be_answered_as_a_consultation() {
    Gwt::new()
        .given(clue_routed())
        .when(room1(), answer())
        .then_error(DomainError::NotApplicableToCategory {
            command: "AnswerConsultation",
            category: Category::DisciplineClue,
        });
}

// ---- Input validation ---------------------------------------------------------------------

#[test]
fn an_empty_summary_is_invalid_input() {
    let mut cmd = report(CaseKind::Complaint, Channel::Hotline);
    if let Command::ReportCase(c) = &mut cmd {
        c.summary = "  ".into();
    }
    Gwt::new()
        .when(vil(), cmd)
        .then_error(DomainError::InvalidInput {
            field: "summary",
            reason: "must not be empty",
        });
}

#[test]
fn a_department_transfer_must_name_its_department() {
    let mut cmd = report(CaseKind::ProblemClue, Channel::DepartmentTransfer);
    if let Command::ReportCase(c) = &mut cmd {
        c.source_department = None;
    }
    Gwt::new().when(officer("room-1"), cmd).then_error_matches(
        "InvalidInput on source_department",
        |e| {
            matches!(
                e,
                DomainError::InvalidInput {
                    field: "source_department",
                    ..
                }
            )
        },
    );
}

#[test]
fn a_village_of_another_locality_is_refused() {
    let mut cmd = report(CaseKind::Complaint, Channel::Hotline);
    if let Command::ReportCase(c) = &mut cmd {
        c.locality = u("loc-zhongshan");
    }
    Gwt::new()
        .when(officer("room-1"), cmd)
        .then_error(DomainError::VillageNotInLocality {
            village: u("vil-dongyuan"),
            locality: u("loc-zhongshan"),
        });
}

#[test]
fn a_room_is_not_a_locality() {
    let mut cmd = report(CaseKind::Complaint, Channel::Hotline);
    if let Command::ReportCase(c) = &mut cmd {
        c.locality = u("room-1");
        c.village = None;
    }
    Gwt::new()
        .when(officer("room-1"), cmd)
        .then_error(DomainError::WrongLevel {
            field: "locality",
            unit: u("room-1"),
            actual: Level::Room,
            expected: Level::Locality,
        });
}

#[test]
fn a_merge_into_itself_is_refused() {
    Gwt::new()
        .given([(vil(), report(CaseKind::Complaint, Channel::Hotline))])
        .when(
            officer("room-1"),
            MergeCase {
                case_id: CASE,
                into: CASE,
            }
            .into(),
        )
        .then_error(DomainError::MergeIntoSelf);
}

// ---- Routing and cross-inspection ---------------------------------------------------------

fn clue_classified() -> Vec<Step> {
    let mut s = accepted(CaseKind::ProblemClue);
    s.push((
        room1(),
        classify(Category::DisciplineClue, Severity::Serious, true),
    ));
    s
}

#[test]
fn a_clue_involving_a_locality_is_led_by_a_room_not_a_team() {
    Gwt::new()
        .given(clue_classified())
        .when(room1(), route("team-1", vec![unit_party("loc-chaoyang")]))
        .then_error(DomainError::RouteViolatesRule {
            rule: "a clue under cross-inspection is led by a room",
        });
}

#[test]
fn a_clue_involving_a_locality_is_led_by_a_room_of_its_zone() {
    Gwt::new()
        .given(clue_classified())
        .when(room1(), route("room-3", vec![unit_party("loc-chaoyang")]))
        .then_error(DomainError::OutsideZone {
            unit: u("room-3"),
            zone: ZoneId::new("zone-1"),
        });
}

#[test]
fn the_involved_locality_never_leads_its_own_case() {
    Gwt::new()
        .given(clue_classified())
        .when(
            room1(),
            route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
        )
        .then_error(DomainError::CrossInspectionViolated {
            unit: u("loc-chaoyang"),
            involved_locality: u("loc-chaoyang"),
        });
}

#[test]
fn the_involved_locality_may_not_route_its_own_case() {
    Gwt::new()
        .given(clue_classified())
        .when(
            chaoyang(),
            route("room-1", vec![unit_party("loc-chaoyang")]),
        )
        .then_not_authorized();
}

#[test]
fn a_handling_limit_outside_the_allowed_range_is_refused() {
    let g = Gwt::new().given(clue_classified());
    for days in [0, 61] {
        g.when(
            room1(),
            RouteCase {
                case_id: CASE,
                lead_unit: u("room-1"),
                responsible: vec![unit_party("loc-chaoyang")],
                time_limit_days: Some(days),
            }
            .into(),
        )
        .then_error(DomainError::TimeLimitOutOfRange { days, max_days: 60 });
    }
}

#[test]
fn the_verification_team_never_contains_the_involved_locality() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::PreliminaryVerification)));
    let g = Gwt::new().given(steps);
    g.when(room1(), team("room-1", &["loc-zhongshan", "loc-chaoyang"]))
        .then_error(DomainError::CrossInspectionViolated {
            unit: u("loc-chaoyang"),
            involved_locality: u("loc-chaoyang"),
        });
    // Nor one of its villages.
    g.when(room1(), team("room-1", &["vil-dongyuan"]))
        .then_error(DomainError::CrossInspectionViolated {
            unit: u("vil-dongyuan"),
            involved_locality: u("loc-chaoyang"),
        });
    // Members come from other localities of the same zone...
    g.when(room1(), team("room-1", &["loc-qingshan"]))
        .then_error(DomainError::OutsideZone {
            unit: u("loc-qingshan"),
            zone: ZoneId::new("zone-1"),
        });
    // ...and the team is led by a room.
    g.when(room1(), team("loc-zhongshan", &["loc-xinhua"]))
        .then_error(DomainError::WrongLevel {
            field: "leader",
            unit: u("loc-zhongshan"),
            actual: Level::Locality,
            expected: Level::Room,
        });
    g.when(room1(), team("room-2", &["loc-zhongshan", "loc-xinhua"]))
        .then_events(&["VerificationTeamFormed"]);
}

#[test]
fn findings_under_cross_inspection_need_a_verification_team() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::PreliminaryVerification)));
    Gwt::new()
        .given(steps)
        .when(room1(), findings(Finding::Substantiated))
        .then_error(DomainError::VerificationTeamRequired);
}

#[test]
fn cross_inspection_for_all_clues_applies_to_clues_not_involving_a_locality() {
    let policies = Policies {
        cross_inspection: CrossInspectionScope::AllClues,
        ..district().policies.clone()
    };
    let mut steps = accepted(CaseKind::ProblemClue);
    steps.push((
        room1(),
        classify(Category::DisciplineClue, Severity::Ordinary, false),
    ));
    let g = Gwt::new().with_policies(policies).given(steps);
    g.when(
        room1(),
        route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
    )
    .then_error(DomainError::RouteViolatesRule {
        rule: "a clue under cross-inspection is led by a room",
    });
    let g = g.given([
        (room1(), route("room-1", vec![unit_party("loc-chaoyang")])),
        (room1(), dispose(Disposition::PreliminaryVerification)),
    ]);
    g.when(room1(), team("room-1", &["loc-chaoyang"]))
        .then_error_matches("CrossInspectionViolated", |e| {
            matches!(e, DomainError::CrossInspectionViolated { .. })
        });
}

// ---- Authorization ------------------------------------------------------------------------

#[test]
fn a_village_officer_reports_but_cannot_classify_record_findings_or_close() {
    Gwt::new()
        .given(accepted(CaseKind::Complaint))
        .when(
            vil(),
            classify(Category::MassDemand, Severity::Ordinary, false),
        )
        .then_not_authorized();
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::PreliminaryVerification)));
    steps.push((room1(), team("room-1", &["loc-zhongshan"])));
    let g = Gwt::new().given(steps);
    g.when(vil(), findings(Finding::Substantiated))
        .then_not_authorized();
    g.when(vil(), close_case(CaseOutcome::NotSubstantiated))
        .then_not_authorized();
}

#[test]
fn a_village_officer_reports_only_for_its_own_village() {
    Gwt::new()
        .when(
            informant("vil-wenhuagong"),
            report(CaseKind::Complaint, Channel::BenchMeeting),
        )
        .then_not_authorized();
}

#[test]
fn only_the_lead_unit_records_findings() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::PreliminaryVerification)));
    steps.push((room1(), team("room-1", &["loc-zhongshan"])));
    let g = Gwt::new().given(steps);
    g.when(leader("room-2"), findings(Finding::Substantiated))
        .then_not_authorized();
    g.when(officer("room-1"), findings(Finding::Substantiated))
        .then_events(&["FindingsRecorded"]);
}

#[test]
fn only_the_responsible_unit_submits_a_plan() {
    let g = Gwt::new().given(clue_rectification_ordered());
    g.when(room1(), plan(t0() + Duration::days(10)))
        .then_not_authorized();
    g.when(leader("loc-zhongshan"), plan(t0() + Duration::days(10)))
        .then_not_authorized();
    g.when(officer("loc-chaoyang"), plan(t0() + Duration::days(10)))
        .then_events(&["RectificationPlanSubmitted"]);
}

#[test]
fn a_department_submits_its_plan_through_its_stationed_team() {
    let mut steps = accepted(CaseKind::Complaint);
    steps.push((room1(), classify_dept(Category::MassDemand, "dept-health")));
    steps.push((room1(), route("team-2", vec![dept_party("dept-health")])));
    steps.push((officer("team-2"), findings(Finding::Substantiated)));
    steps.push((leader("team-2"), order(dept_party("dept-health"))));
    let g = Gwt::new().given(steps);
    g.when(officer("team-1"), plan(t0() + Duration::days(8)))
        .then_not_authorized();
    g.when(officer("team-2"), plan(t0() + Duration::days(8)))
        .then_events(&["RectificationPlanSubmitted"]);
}

#[test]
fn routing_is_a_leaders_decision() {
    Gwt::new()
        .given(clue_classified())
        .when(
            officer("room-1"),
            route("room-1", vec![unit_party("loc-chaoyang")]),
        )
        .then_not_authorized();
}

// ---- Rectification ------------------------------------------------------------------------

#[test]
fn a_plan_deadline_must_lie_after_now_and_within_the_maximum() {
    let g = Gwt::new().given(clue_rectification_ordered());
    let o = g.when(chaoyang(), plan(t0() - Duration::hours(1)));
    o.then_error_matches("DateOutOfRange", |e| {
        matches!(
            e,
            DomainError::DateOutOfRange {
                field: "deadline",
                ..
            }
        )
    });
    g.when(chaoyang(), plan(t0() + Duration::days(90)))
        .then_error_matches("DateOutOfRange", |e| {
            matches!(
                e,
                DomainError::DateOutOfRange {
                    field: "deadline",
                    ..
                }
            )
        });
}

#[test]
fn a_plan_cannot_be_submitted_twice() {
    Gwt::new()
        .given(clue_plan_submitted())
        .when(chaoyang(), plan(t0() + Duration::days(12)))
        .then_error(DomainError::RectificationStep {
            command: "SubmitRectificationPlan",
            expected: "ordered and without a plan",
        });
}

#[test]
fn completion_needs_a_plan_and_evidence() {
    Gwt::new()
        .given(clue_rectification_ordered())
        .when(chaoyang(), complete())
        .then_error(DomainError::RectificationStep {
            command: "CompleteRectification",
            expected: "under way (plan submitted)",
        });
    Gwt::new()
        .given(clue_plan_submitted())
        .when(
            chaoyang(),
            CompleteRectification {
                case_id: CASE,
                evidence: vec![],
                summary: "done".into(),
            }
            .into(),
        )
        .then_error(DomainError::InvalidInput {
            field: "evidence",
            reason: "must have at least one entry",
        });
}

#[test]
fn no_close_while_rectification_is_open() {
    Gwt::new()
        .given(clue_plan_submitted())
        .when(room1(), close_case(CaseOutcome::Rectified))
        .then_error(DomainError::RectificationOpen);
}

#[test]
fn the_outcome_must_agree_with_the_record() {
    let mut steps = clue_routed();
    steps.push((room1(), dispose(Disposition::CloseWithoutAction)));
    Gwt::new()
        .given(steps)
        .when(room1(), close_case(CaseOutcome::Rectified))
        .then_error(DomainError::OutcomeMismatch {
            given: CaseOutcome::Rectified,
            expected: CaseOutcome::ClosedWithoutAction,
        });
}

// ---- Urging -------------------------------------------------------------------------------

#[test]
fn urging_needs_an_open_deadline() {
    Gwt::new()
        .given(clue_routed())
        .when(room1(), urge(DeadlineKind::Review))
        .then_error(DomainError::DeadlineNotOpen {
            deadline: DeadlineKind::Review,
        });
}

#[test]
fn urging_before_the_deadline_is_refused() {
    let g = Gwt::new().given(clue_rectification_ordered());
    let due = g
        .state
        .deadline(DeadlineKind::RectificationPlan)
        .unwrap()
        .due_at;
    g.when(room1(), urge(DeadlineKind::RectificationPlan))
        .then_error(DomainError::DeadlineNotPassed {
            deadline: DeadlineKind::RectificationPlan,
            due_at: due,
        });
}

#[test]
fn a_missed_deadline_is_urged_once_then_escalated_once_to_a_zone_room() {
    let g = Gwt::new().given(clue_rectification_ordered());
    let due = g
        .state
        .deadline(DeadlineKind::RectificationPlan)
        .unwrap()
        .due_at;
    assert_eq!(urgeable(&g.state, due), vec![]);
    let g = g.at(due);
    assert_eq!(
        urgeable(&g.state, due + Duration::hours(1)),
        vec![(DeadlineKind::RectificationPlan, false)]
    );
    // A unit that does not supervise the case cannot urge it.
    g.when(
        leader("loc-zhongshan"),
        urge(DeadlineKind::RectificationPlan),
    )
    .then_not_authorized();
    let g = g.given([(officer("room-1"), urge(DeadlineKind::RectificationPlan))]);
    let urged = g
        .state
        .deadline(DeadlineKind::RectificationPlan)
        .unwrap()
        .clone();
    let first = urged.urged.clone().unwrap();
    assert!(urged.escalated.is_none());
    // Escalation waits for the grace period...
    g.when(leader("room-2"), urge(DeadlineKind::RectificationPlan))
        .then_error(DomainError::DeadlineNotPassed {
            deadline: DeadlineKind::RectificationPlan,
            due_at: first.respond_by,
        });
    let g = g.at(first.respond_by);
    assert_eq!(
        urgeable(&g.state, first.respond_by + Duration::hours(1)),
        vec![(DeadlineKind::RectificationPlan, true)]
    );
    // ...and goes to a leader of a room of the case's zone.
    g.when(officer("room-2"), urge(DeadlineKind::RectificationPlan))
        .then_not_authorized();
    g.when(leader("room-3"), urge(DeadlineKind::RectificationPlan))
        .then_not_authorized();
    let g = g.given([(leader("room-2"), urge(DeadlineKind::RectificationPlan))]);
    assert!(
        g.state
            .deadline(DeadlineKind::RectificationPlan)
            .unwrap()
            .escalated
            .is_some()
    );
    g.after(Duration::days(30))
        .when(leader("room-2"), urge(DeadlineKind::RectificationPlan))
        .then_error(DomainError::AlreadyUrged {
            deadline: DeadlineKind::RectificationPlan,
        });
}

#[test]
fn the_deadline_watcher_urges_and_escalates_by_the_rule_and_does_nothing_else() {
    let g = Gwt::new().given(clue_rectification_ordered());
    let due = g
        .state
        .deadline(DeadlineKind::RectificationPlan)
        .unwrap()
        .due_at;
    let g = g.at(due);
    let watcher = |unit: &str| actor(unit, Role::Watcher);
    // The watcher acts for a unit the rule admits, never for another.
    g.when(
        watcher("loc-zhongshan"),
        urge(DeadlineKind::RectificationPlan),
    )
    .then_not_authorized();
    g.when(watcher("room-1"), urge(DeadlineKind::RectificationPlan))
        .then_events(&["CaseUrged"]);
    // It issues nothing but urgings.
    g.when(watcher("room-1"), close_case(CaseOutcome::Rectified))
        .then_not_authorized();
    g.when(watcher("loc-chaoyang"), plan(due + Duration::days(5)))
        .then_not_authorized();
    Gwt::new()
        .when(
            watcher("room-1"),
            report(CaseKind::Complaint, Channel::Hotline),
        )
        .then_not_authorized();
    // An escalation is a leader's; the watcher escalates by the rule for a zone room.
    let g = g.given([(watcher("room-1"), urge(DeadlineKind::RectificationPlan))]);
    let respond_by = g
        .state
        .deadline(DeadlineKind::RectificationPlan)
        .unwrap()
        .urged
        .clone()
        .unwrap()
        .respond_by;
    let g = g.at(respond_by);
    g.when(watcher("room-2"), urge(DeadlineKind::RectificationPlan))
        .then_events(&["CaseUrged"]);
    // A watcher does not exist in a village.
    g.when(
        watcher("vil-dongyuan"),
        urge(DeadlineKind::RectificationPlan),
    )
    .then_error_matches("role not valid", |e| {
        matches!(e, DomainError::RoleNotValidForLevel { .. })
    });
}

// ---- Review -------------------------------------------------------------------------------

#[test]
fn a_failed_visit_blocks_closing_and_warrants_reopening() {
    let mut steps = clue_visit_scheduled();
    steps.push((leader("loc-zhongshan"), visit(VisitResult::Failed)));
    let g = Gwt::new().given(steps);
    g.when(room1(), close_case(CaseOutcome::Rectified))
        .then_error(DomainError::ReviewFailed {
            reason: "a follow-up visit failed",
        });
    g.when(room1(), reopen()).then_events(&["CaseReopened"]);
}

#[test]
fn reopening_a_review_that_went_well_is_not_warranted() {
    let mut steps = clue_visit_scheduled();
    steps.push((leader("loc-zhongshan"), visit(VisitResult::Held)));
    Gwt::new()
        .given(steps)
        .when(room1(), reopen())
        .then_error(DomainError::ReopenNotWarranted);
}

#[test]
fn closing_a_review_needs_a_held_visit_and_satisfaction() {
    let g = Gwt::new().given(clue_visit_scheduled());
    g.when(room1(), close_case(CaseOutcome::Rectified))
        .then_error(DomainError::PrerequisiteMissing {
            missing: "a held follow-up visit",
        });
    let g = g.given([(leader("loc-zhongshan"), visit(VisitResult::Held))]);
    g.when(room1(), close_case(CaseOutcome::Rectified))
        .then_error(DomainError::PrerequisiteMissing {
            missing: "the reporter's satisfaction",
        });
}

#[test]
fn only_the_scheduled_visitor_records_the_visit() {
    Gwt::new()
        .given(clue_visit_scheduled())
        .when(leader("loc-xinhua"), visit(VisitResult::Held))
        .then_not_authorized();
}

#[test]
fn the_involved_locality_does_not_review_itself() {
    Gwt::new()
        .given(clue_in_review())
        .when(room1(), schedule("loc-chaoyang", t0() + Duration::days(20)))
        .then_error(DomainError::CrossInspectionViolated {
            unit: u("loc-chaoyang"),
            involved_locality: u("loc-chaoyang"),
        });
}

// ---- Time limits --------------------------------------------------------------------------

#[test]
fn due_times_count_working_days_skipping_weekends() {
    // Reported Friday 6 March 2026, 10:00 China time: 3 working days -> Wednesday 11 March,
    // 17:30 China time (09:30 UTC).
    let friday = Utc.with_ymd_and_hms(2026, 3, 6, 2, 0, 0).unwrap();
    let g = Gwt::new().at(friday - Duration::hours(1));
    let o = g.when(vil(), report(CaseKind::Complaint, Channel::Hotline));
    let due = o
        .after
        .deadline(DeadlineKind::IntakeDecision)
        .unwrap()
        .due_at;
    assert_eq!(due, Utc.with_ymd_and_hms(2026, 3, 11, 9, 30, 0).unwrap());
}

#[test]
fn due_times_skip_public_holidays_and_count_make_up_days() {
    // Accepted Tuesday 29 September 2026: 5 working days = 30 Sep, [1-7 Oct holiday],
    // 8 Oct, 9 Oct, 10 Oct (a Saturday make-up working day), 12 Oct.
    let tuesday = Utc.with_ymd_and_hms(2026, 9, 29, 2, 0, 0).unwrap();
    let g = Gwt::new()
        .at(tuesday - Duration::hours(3))
        .given([(vil(), report(CaseKind::Complaint, Channel::Hotline))])
        .at(tuesday - Duration::hours(1));
    let o = g.when(officer("room-1"), accept());
    let due = o
        .after
        .deadline(DeadlineKind::Classification)
        .unwrap()
        .due_at;
    assert_eq!(due, Utc.with_ymd_and_hms(2026, 10, 12, 9, 30, 0).unwrap());
}

#[test]
fn the_route_carries_the_mass_demand_limits_of_7_or_15_working_days() {
    let mut steps = accepted(CaseKind::Complaint);
    steps.push((
        chaoyang(),
        classify(Category::MassDemand, Severity::Grave, false),
    ));
    let o = Gwt::new().given(steps).when(
        chaoyang(),
        route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
    );
    match &o.then_ok()[0] {
        CaseEvent::CaseRouted(e) => assert_eq!(e.time_limit_days, 7),
        e => panic!("unexpected {e:?}"),
    }
    let mut steps = accepted(CaseKind::Complaint);
    steps.push((
        chaoyang(),
        classify(Category::MassDemand, Severity::Ordinary, false),
    ));
    let o = Gwt::new().given(steps).when(
        chaoyang(),
        route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
    );
    match &o.then_ok()[0] {
        CaseEvent::CaseRouted(e) => assert_eq!(e.time_limit_days, 15),
        e => panic!("unexpected {e:?}"),
    }
}

// ---- Routing policy -----------------------------------------------------------------------

#[test]
fn the_routing_policy_suggests_rooms_teams_and_localities() {
    let d = district();
    let input = |category, involves_locality, department: Option<&str>| RouteInput {
        case_id: CASE,
        category,
        severity: Severity::Ordinary,
        locality: u("loc-chaoyang"),
        involves_locality,
        involved_department: department.map(dept),
    };
    let s = d
        .policies
        .suggest_route(&d.org, &input(Category::DisciplineClue, true, None))
        .unwrap();
    let zone = d.org.zone(&ZoneId::new("zone-1")).unwrap();
    assert!(zone.rooms.contains(&s.lead_unit), "{s:?}");
    assert_eq!(s.responsible, vec![unit_party("loc-chaoyang")]);
    let s = d
        .policies
        .suggest_route(
            &d.org,
            &input(Category::DisciplineClue, false, Some("dept-audit")),
        )
        .unwrap();
    assert_eq!(s.lead_unit, u("team-1"));
    assert_eq!(s.responsible, vec![dept_party("dept-audit")]);
    let s = d
        .policies
        .suggest_route(&d.org, &input(Category::MassDemand, false, None))
        .unwrap();
    assert_eq!(s.lead_unit, u("loc-chaoyang"));
    assert_eq!(s.time_limit_days, 15);
    assert_eq!(
        d.policies
            .suggest_route(&d.org, &input(Category::MassDemand, false, Some("dept-x"))),
        Err(DomainError::UnknownDepartment {
            department: dept("dept-x")
        })
    );
}

#[test]
fn a_suggested_route_is_accepted_by_decide() {
    let g = Gwt::new().given(clue_classified());
    let d = district();
    let s = d.policies.suggest_route_for(&d.org, &g.state).unwrap();
    g.when(
        room1(),
        RouteCase {
            case_id: CASE,
            lead_unit: s.lead_unit,
            responsible: s.responsible,
            time_limit_days: Some(s.time_limit_days),
        }
        .into(),
    )
    .then_events(&["CaseRouted"]);
}

// ---- Reporter protection ------------------------------------------------------------------

#[test]
fn the_reporters_contact_never_shows_in_debug_or_display() {
    let g = Gwt::new().given([(vil(), report(CaseKind::Complaint, Channel::Hotline))]);
    let text = format!("{:?} {:?}", g.state, g.events);
    assert!(!text.contains("13800000000"), "phone leaked");
    assert!(!text.contains("王某"), "name leaked");
    let c = ProtectedContact::new("王某", "13800000000");
    assert_eq!(c.to_string(), "<protected contact>");
    assert_eq!(c.expose_phone(), "13800000000");
}
