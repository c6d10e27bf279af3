//! The who-acts table agrees with the domain: every to-do item that corresponds to a command
//! names a unit that may issue it now, and the domain accepts it. (A list that names the
//! wrong unit would send people to work they are not allowed to do.)

mod support;

use caseflow_domain::*;
use proptest::prelude::*;
use support::{HistoryGen, district, seeded};

/// The commands that discharge an action on this case (any one may be the right one).
fn commands_for(action: Action, case: &Case, state: &CaseState) -> Vec<Command> {
    let cfg = district();
    let case_id = case.id;
    let zone_localities: Vec<UnitId> = cfg
        .org
        .zone(&case.zone)
        .map(|z| z.localities.clone())
        .unwrap_or_default();
    let now_plus = |days| cfg.calendar.add_working_days(case.last_event_at, days);
    match action {
        Action::DecideIntake => vec![AcceptCase { case_id }.into()],
        Action::Classify => vec![
            ClassifyCase {
                case_id,
                category: Category::MassDemand,
                focus_area: case.focus_area,
                severity: Severity::Ordinary,
                involves_locality: false,
                involved_department: None,
            }
            .into(),
        ],
        Action::HoldJointConsultation => vec![
            RecordJointConsultation {
                case_id,
                participants: zone_localities
                    .iter()
                    .filter(|l| Some(*l) != case.involved_locality())
                    .cloned()
                    .collect(),
                departments: Vec::new(),
                conclusion: "同意".into(),
            }
            .into(),
        ],
        Action::Route => {
            let s = cfg
                .policies
                .suggest_route_for(&cfg.org, state)
                .expect("a route suggestion");
            vec![
                RouteCase {
                    case_id,
                    lead_unit: s.lead_unit,
                    responsible: s.responsible,
                    time_limit_days: None,
                }
                .into(),
            ]
        }
        Action::ChooseDisposition | Action::ReviewHeldClue => vec![
            ChooseDisposition {
                case_id,
                disposition: Disposition::PreliminaryVerification,
            }
            .into(),
        ],
        Action::FormVerificationTeam => vec![
            FormVerificationTeam {
                case_id,
                leader: case.lead_unit().unwrap().clone(),
                members: zone_localities
                    .iter()
                    .filter(|l| *l != &case.locality)
                    .take(2)
                    .cloned()
                    .collect(),
            }
            .into(),
        ],
        Action::RecordFindings => vec![
            RecordFindings {
                case_id,
                finding: Finding::Substantiated,
                summary: "属实".into(),
            }
            .into(),
        ],
        Action::AnswerConsultation => vec![
            AnswerConsultation {
                case_id,
                answer: "已答复".into(),
            }
            .into(),
        ],
        Action::OrderRectification => vec![
            OrderRectification {
                case_id,
                responsible: case.route.as_ref().unwrap().responsible[0].clone(),
                requirements: "整改".into(),
            }
            .into(),
        ],
        Action::SubmitRectificationPlan => vec![
            SubmitRectificationPlan {
                case_id,
                measures: vec!["措施".into()],
                deadline: now_plus(3),
            }
            .into(),
        ],
        Action::CarryOutRectification => vec![
            CompleteRectification {
                case_id,
                evidence: vec!["照片".into()],
                summary: "完成".into(),
            }
            .into(),
        ],
        Action::ScheduleFollowUpVisit => vec![
            ScheduleFollowUpVisit {
                case_id,
                // Never the involved locality (cross-inspection holds for visits too).
                visitor: case.village.clone().unwrap_or_else(|| {
                    zone_localities
                        .iter()
                        .find(|l| *l != &case.locality)
                        .cloned()
                        .unwrap_or_else(|| case.locality.clone())
                }),
                scheduled_for: now_plus(1),
            }
            .into(),
        ],
        Action::VisitOnSite => vec![
            RecordFollowUpVisit {
                case_id,
                result: VisitResult::Held,
                notes: "好".into(),
            }
            .into(),
        ],
        Action::AskSatisfaction => vec![
            RecordSatisfaction {
                case_id,
                satisfaction: Satisfaction::Satisfied,
                comment: String::new(),
            }
            .into(),
        ],
        Action::Reopen => vec![
            ReopenCase {
                case_id,
                reason: "不满意".into(),
            }
            .into(),
        ],
        Action::Close => [
            CaseOutcome::Rectified,
            CaseOutcome::Answered,
            CaseOutcome::NotSubstantiated,
            CaseOutcome::ClosedWithoutAction,
        ]
        .into_iter()
        .map(|outcome| {
            CloseCase {
                case_id,
                outcome,
                summary: "办结".into(),
            }
            .into()
        })
        .collect(),
        // No command of its own: verification is reported to the lead unit, supervision
        // turns into `UrgeOverdue` only once a limit has passed.
        Action::Verify | Action::SuperviseRectification => Vec::new(),
    }
}

/// The unit that acts for an assignee (a department acts through its stationed team).
fn acting_unit(assignee: &Assignee) -> Option<UnitId> {
    match assignee {
        Assignee::Unit(u) => Some(u.clone()),
        Assignee::Department(d) => district().org.team_stationed_in(d).cloned(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn every_listed_unit_may_do_what_its_list_says(seed in any::<u64>(), n in 50usize..400) {
        let cfg = district();
        let mut g = HistoryGen::new(seed);
        g.run(n, seeded(seed));
        for state in g.states.values() {
            let Some(case) = state.case() else { continue };
            for ob in obligations(state, &cfg.org, cfg.policies.cross_inspection).unwrap() {
                let commands = commands_for(ob.action, case, state);
                if commands.is_empty() {
                    continue;
                }
                let Some(unit) = acting_unit(&ob.assignee) else {
                    // A department with no stationed team cannot act in the engine at all.
                    continue;
                };
                let role = if cfg.org.level_of(&unit) == Some(Level::Village) {
                    Role::InformationOfficer
                } else {
                    Role::Leader
                };
                let actor = Actor::new(unit, role);
                // Act a minute after the case's last event (the issue time must not run back).
                let at = case.last_event_at + chrono::Duration::minutes(1);
                let ctx = Context::new(&actor, at, &cfg.org, &cfg.calendar, &cfg.policies);
                let results: Vec<_> = commands.iter().map(|c| decide(state, c, &ctx)).collect();
                prop_assert!(
                    results.iter().any(Result::is_ok),
                    "{} is listed to {} at stage {} but the domain refuses: {:?}",
                    actor, ob.action, case.stage, results.iter().filter_map(|r| r.as_ref().err()).collect::<Vec<_>>()
                );
            }
        }
    }
}
