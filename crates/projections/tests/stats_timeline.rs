//! Statistics and the audit timeline over a small scripted history whose figures are known
//! exactly.

mod support;

use std::sync::Arc;

use caseflow_domain::*;
use caseflow_projections::*;
use caseflow_store::MemoryStore;
use chrono::{DateTime, Duration, Utc};
use support::{HistoryGen, org};
use uuid::Uuid;

const A: CaseId = CaseId(Uuid::from_u128(0xa));
const B: CaseId = CaseId(Uuid::from_u128(0xb));
const C: CaseId = CaseId(Uuid::from_u128(0xc));
const D: CaseId = CaseId(Uuid::from_u128(0xd));

fn report(case_id: CaseId, kind: CaseKind, channel: Channel, village: &str) -> ReportCase {
    ReportCase {
        case_id,
        channel,
        kind,
        summary: "花园小区路灯损坏，多次反映无人修，晚上出行很不方便".into(),
        locality: UnitId::new("loc-chaoyang"),
        village: Some(UnitId::new(village)),
        subject: "东苑社区居委会".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Named(ProtectedContact::new("王某", "13800000000")),
        reporter_handle: ReporterHandle(Uuid::from_u128(0x1000 + case_id.0.as_u128())),
        source_department: None,
    }
}

struct Run {
    g: HistoryGen,
    log: Vec<support::Decided>,
    reported_a: DateTime<Utc>,
    closed_a: DateTime<Utc>,
}

impl Run {
    fn exec(&mut self, command: impl Into<Command>) {
        let d = self.g.exec(command);
        self.log.push(d);
    }
    fn wait(&mut self, hours: i64) {
        self.g.now += Duration::hours(hours);
    }
}

fn route_as_suggested(g: &HistoryGen, case_id: CaseId) -> RouteCase {
    let cfg = support::district();
    let s = cfg
        .policies
        .suggest_route_for(&cfg.org, &g.states[&case_id])
        .unwrap();
    RouteCase {
        case_id,
        lead_unit: s.lead_unit,
        responsible: s.responsible,
        time_limit_days: None,
    }
}

/// A: a complaint rectified and closed; B: a consultation answered and closed; C: declined;
/// D: a clue, two people disciplined, rectified, the visit failed and it was reopened.
fn scripted() -> Run {
    let mut r = Run {
        g: HistoryGen::new(99),
        log: Vec::new(),
        reported_a: support::t0(),
        closed_a: support::t0(),
    };
    r.reported_a = r.g.now;
    r.exec(report(
        A,
        CaseKind::Complaint,
        Channel::Hotline,
        "vil-dongyuan",
    ));
    r.exec(report(
        B,
        CaseKind::Consultation,
        Channel::PettyPowerMiniProgram,
        "vil-dongyuan",
    ));
    r.exec(report(
        C,
        CaseKind::Suggestion,
        Channel::Mailbox,
        "vil-dongyuan",
    ));
    r.exec(report(
        D,
        CaseKind::ProblemClue,
        Channel::PhotoReportApp,
        "vil-dongyuan",
    ));
    r.wait(2);
    for case_id in [A, B, D] {
        r.exec(AcceptCase { case_id });
    }
    r.exec(DeclineCase {
        case_id: C,
        reason: DeclineReason::OutsideRemit,
        explanation: "不属于受理范围".into(),
    });
    r.wait(2);
    let classify = |case_id, category| ClassifyCase {
        case_id,
        category,
        focus_area: FocusArea::LivingEnvironment,
        severity: Severity::Ordinary,
        involves_locality: false,
        involved_department: None,
    };
    r.exec(classify(A, Category::MassDemand));
    r.exec(classify(B, Category::Consultation));
    r.exec(classify(D, Category::DisciplineClue));
    for case_id in [A, B, D] {
        let route = route_as_suggested(&r.g, case_id);
        r.exec(route);
    }
    r.wait(3);
    r.exec(AnswerConsultation {
        case_id: B,
        answer: "已答复".into(),
    });
    r.exec(CloseCase {
        case_id: B,
        outcome: CaseOutcome::Answered,
        summary: "办结".into(),
    });
    r.exec(RecordFindings {
        case_id: A,
        finding: Finding::Substantiated,
        summary: "属实".into(),
    });
    r.exec(ChooseDisposition {
        case_id: D,
        disposition: Disposition::PreliminaryVerification,
    });
    r.exec(RecordFindings {
        case_id: D,
        finding: Finding::PartlySubstantiated,
        summary: "部分属实".into(),
    });
    let person = |name: &str| DisciplinedPerson {
        name: name.into(),
        position: "村委会主任".into(),
        measure: DisciplineMeasure::Warning,
    };
    r.exec(RecordDiscipline {
        case_id: D,
        people: vec![person("甲"), person("乙")],
    });
    for case_id in [A, D] {
        let responsible = r.g.states[&case_id]
            .case()
            .unwrap()
            .route
            .as_ref()
            .unwrap()
            .responsible[0]
            .clone();
        r.exec(OrderRectification {
            case_id,
            responsible,
            requirements: "限期整改".into(),
        });
    }
    r.wait(1);
    for case_id in [A, D] {
        let deadline = support::district().calendar.add_working_days(r.g.now, 3);
        r.exec(SubmitRectificationPlan {
            case_id,
            measures: vec!["更换路灯".into()],
            deadline,
        });
    }
    r.wait(4);
    for case_id in [A, D] {
        r.exec(CompleteRectification {
            case_id,
            evidence: vec!["照片".into()],
            summary: "已修复".into(),
        });
    }
    r.wait(1);
    for case_id in [A, D] {
        let scheduled_for = support::district().calendar.add_working_days(r.g.now, 1);
        r.exec(ScheduleFollowUpVisit {
            case_id,
            visitor: UnitId::new("vil-dongyuan"),
            scheduled_for,
        });
    }
    r.wait(24);
    r.exec(RecordFollowUpVisit {
        case_id: A,
        result: VisitResult::Held,
        notes: "路灯正常".into(),
    });
    r.exec(RecordFollowUpVisit {
        case_id: D,
        result: VisitResult::Failed,
        notes: "问题反弹".into(),
    });
    r.exec(RecordSatisfaction {
        case_id: A,
        satisfaction: Satisfaction::Satisfied,
        comment: String::new(),
    });
    r.wait(1);
    r.closed_a = r.g.now;
    r.exec(CloseCase {
        case_id: A,
        outcome: CaseOutcome::Rectified,
        summary: "办结".into(),
    });
    r.exec(ReopenCase {
        case_id: D,
        reason: "整改不到位".into(),
    });
    r
}

async fn projections_of(run: &mut Run) -> StandardProjections {
    let store = Arc::new(MemoryStore::new());
    for d in run.log.clone() {
        let request = run.g.request(&d);
        caseflow_store::EventStore::append(store.as_ref(), request)
            .await
            .unwrap();
    }
    let mut runner = ProjectionRunner::in_memory(store, org());
    let p = StandardProjections::register(&mut runner).await.unwrap();
    runner.catch_up().await.unwrap();
    p
}

#[tokio::test]
async fn statistics_of_a_scripted_history() {
    let mut run = scripted();
    let p = projections_of(&mut run).await;
    let now = run.g.now + Duration::days(1);
    let r = p.stats.read().unwrap().report(now);
    assert_eq!(r.cases, 4);
    assert_eq!(r.open_cases, 1, "only the reopened clue is open");
    assert_eq!(r.by_stage.get(&Stage::Closed), Some(&2));
    assert_eq!(r.by_stage.get(&Stage::Declined), Some(&1));
    assert_eq!(r.by_stage.get(&Stage::Handling), Some(&1));
    assert_eq!(r.by_category.get(&Category::MassDemand), Some(&1));
    assert_eq!(r.by_category.get(&Category::Consultation), Some(&1));
    assert_eq!(r.by_category.get(&Category::DisciplineClue), Some(&1));
    assert_eq!(r.unclassified, 1);
    assert_eq!(r.by_channel.get(&Channel::Hotline), Some(&1));
    assert_eq!(r.by_kind.get(&CaseKind::ProblemClue), Some(&1));
    assert_eq!(r.by_focus_area.get(&FocusArea::LivingEnvironment), Some(&4));
    assert_eq!(r.by_locality.get(&UnitId::new("loc-chaoyang")), Some(&4));
    assert_eq!(
        r.clues_by_disposition
            .get(&Disposition::PreliminaryVerification),
        Some(&1)
    );
    assert_eq!(r.people_disciplined, 2);
    assert_eq!(r.rectifications.ordered, 2);
    assert_eq!(r.rectifications.completed, 2);
    assert_eq!(r.rectifications.completed_late, 0);
    assert_eq!(r.rectifications.overdue, 0);
    assert_eq!((r.follow_up_visits.held, r.follow_up_visits.failed), (1, 1));
    assert_eq!(r.satisfaction.satisfied, 1);
    assert_eq!(r.satisfaction.rate, Some(1.0));
    let complaint = &r.time_to_close_by_kind[&CaseKind::Complaint];
    assert_eq!(complaint.count, 1);
    assert_eq!(complaint.median, run.closed_a - run.reported_a);
    assert_eq!(complaint.p90, complaint.median);
    assert_eq!(r.time_to_close_by_kind[&CaseKind::Consultation].count, 1);
    assert!(!r.time_to_close_by_kind.contains_key(&CaseKind::Suggestion));
    // Both closed cases were led by the locality (the routing policy's choice here).
    assert_eq!(r.time_to_close_by_level[&Level::Locality].count, 2);
    // Everything this history asked was done within its time limits.
    assert!(!r.on_time.is_empty());
    for unit in &r.on_time {
        assert_eq!((unit.missed, unit.open_overdue), (0, 0), "{unit:?}");
        assert_eq!(unit.rate, Some(1.0));
    }
    // The demand list, by category.
    let demands = p.stats.read().unwrap().demand_list(Category::MassDemand);
    assert_eq!(demands.len(), 1);
    assert_eq!(demands[0].case_id, A);
    assert_eq!(demands[0].stage, Stage::Closed);
    // Long after, the reopened clue's handling limit has passed: the lead misses it.
    let later = p.stats.read().unwrap().report(now + Duration::days(60));
    assert!(
        later
            .on_time
            .iter()
            .any(|u| u.open_overdue == 1 && u.rate.is_some_and(|x| x < 1.0))
    );
    // No statistic shows the reporter.
    let shown = format!("{r:?} {demands:?}");
    assert!(!shown.contains("王某") && !shown.contains("13800000000"));
}

#[tokio::test]
async fn audit_timeline_of_a_scripted_case() {
    let mut run = scripted();
    let p = projections_of(&mut run).await;
    let now = run.g.now + Duration::hours(5);
    let t = p.timeline.read().unwrap().timeline(&A, now).unwrap();
    let types: Vec<&str> = t.entries.iter().map(|e| e.event_type.as_ref()).collect();
    assert_eq!(
        types,
        [
            "CaseReported",
            "CaseAccepted",
            "CaseClassified",
            "CaseRouted",
            "FindingsRecorded",
            "RectificationOrdered",
            "RectificationPlanSubmitted",
            "RectificationCompleted",
            "FollowUpVisitScheduled",
            "FollowUpVisitRecorded",
            "SatisfactionRecorded",
            "CaseClosed",
        ]
    );
    assert!(
        t.entries
            .windows(2)
            .all(|w| w[0].version + 1 == w[1].version && w[0].position < w[1].position)
    );
    assert_eq!(
        t.entries[0].actor.as_ref(),
        "vil-dongyuan/information_officer"
    );
    assert_eq!(t.entries[0].at, run.reported_a);
    let stages: Vec<Stage> = t.spans.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Intake,
            Stage::Classification,
            Stage::Handling,
            Stage::Rectification,
            Stage::Review,
            Stage::Closed
        ]
    );
    // The stays add up to the time from report to close.
    let total: Duration = t.time_in_stage.values().copied().sum();
    assert_eq!(total, run.closed_a - run.reported_a);
    assert_eq!(t.time_in_stage[&Stage::Intake], Duration::hours(2));
    assert_eq!(t.spans.last().unwrap().left_at, None);

    // A reopened case visits handling twice; its current stay runs up to `now`.
    let d = p.timeline.read().unwrap().timeline(&D, now).unwrap();
    let handling: Vec<_> = d
        .spans
        .iter()
        .filter(|s| s.stage == Stage::Handling)
        .collect();
    assert_eq!(handling.len(), 2);
    let last = d.spans.last().unwrap();
    assert_eq!(last.stage, Stage::Handling);
    assert_eq!(last.duration, now - last.entered_at);
}

#[tokio::test]
async fn the_reopened_clue_waits_on_its_lead_unit_again() {
    let mut run = scripted();
    let p = projections_of(&mut run).await;
    let todo = p.todo.read().unwrap();
    let (card, obligations) = todo.case(&D).expect("the reopened clue waits on somebody");
    assert_eq!(card.stage, Stage::Handling);
    let lead = run.g.states[&D]
        .case()
        .unwrap()
        .lead_unit()
        .unwrap()
        .clone();
    assert_eq!(obligations.len(), 1);
    assert_eq!(obligations[0].assignee, Assignee::Unit(lead));
    assert_eq!(obligations[0].action, Action::OrderRectification);
    assert!(
        obligations[0].due_at.is_some(),
        "the renewed handling limit runs"
    );
    for case_id in [A, B, C] {
        assert!(todo.case(&case_id).is_none());
    }
    // Read models keep the whole title; shortening is the display's business.
    assert_eq!(
        card.title,
        "花园小区路灯损坏，多次反映无人修，晚上出行很不方便"
    );
}
