//! Domain benchmarks: deciding and folding a whole case, replaying a stream, working-day
//! arithmetic, loading the district. Run with `cargo bench -p caseflow-domain`.

use std::hint::black_box;

use caseflow_domain::chrono::{DateTime, Duration, TimeZone, Utc};
use caseflow_domain::uuid::Uuid;
use caseflow_domain::*;
use criterion::{Criterion, criterion_group, criterion_main};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The commands of a cross-inspected clue from report to close (16 commands, 16 events).
fn clue_script(case_id: CaseId) -> Vec<(Actor, Command)> {
    let u = UnitId::new;
    let leader = |id: &str| Actor::new(id, Role::Leader);
    let officer = |id: &str| Actor::new(id, Role::CaseOfficer);
    let chaoyang = ResponsibleParty::Unit(u("loc-chaoyang"));
    vec![
        (
            Actor::new("vil-dongyuan", Role::InformationOfficer),
            ReportCase {
                case_id,
                channel: Channel::PettyPowerMiniProgram,
                kind: CaseKind::ProblemClue,
                summary: "低保评定优亲厚友".into(),
                locality: u("loc-chaoyang"),
                village: Some(u("vil-dongyuan")),
                subject: "东苑社区".into(),
                focus_area: FocusArea::ElderlyCareAndSocialSecurity,
                reporter: Reporter::Anonymous,
                reporter_handle: ReporterHandle(Uuid::from_u128(1)),
                source_department: None,
            }
            .into(),
        ),
        (officer("room-1"), AcceptCase { case_id }.into()),
        (
            leader("room-1"),
            ClassifyCase {
                case_id,
                category: Category::DisciplineClue,
                focus_area: FocusArea::ElderlyCareAndSocialSecurity,
                severity: Severity::Serious,
                involves_locality: true,
                involved_department: None,
            }
            .into(),
        ),
        (
            leader("room-1"),
            RouteCase {
                case_id,
                lead_unit: u("room-1"),
                responsible: vec![chaoyang.clone()],
                time_limit_days: None,
            }
            .into(),
        ),
        (
            leader("room-1"),
            ChooseDisposition {
                case_id,
                disposition: Disposition::PreliminaryVerification,
            }
            .into(),
        ),
        (
            leader("room-1"),
            FormVerificationTeam {
                case_id,
                leader: u("room-1"),
                members: vec![u("loc-zhongshan"), u("loc-xinhua")],
            }
            .into(),
        ),
        (
            officer("room-1"),
            RecordFindings {
                case_id,
                finding: Finding::Substantiated,
                summary: "属实".into(),
            }
            .into(),
        ),
        (
            leader("room-1"),
            RecordDiscipline {
                case_id,
                people: vec![DisciplinedPerson {
                    name: "甲".into(),
                    position: "主任".into(),
                    measure: DisciplineMeasure::Warning,
                }],
            }
            .into(),
        ),
        (
            leader("room-1"),
            OrderRectification {
                case_id,
                responsible: chaoyang,
                requirements: "整改".into(),
            }
            .into(),
        ),
        (
            leader("loc-chaoyang"),
            SubmitRectificationPlan {
                case_id,
                measures: vec!["措施".into()],
                deadline: t0() + Duration::days(14),
            }
            .into(),
        ),
        (
            officer("loc-chaoyang"),
            ReportRectificationProgress {
                case_id,
                note: "过半".into(),
                percent_complete: 50,
            }
            .into(),
        ),
        (
            leader("loc-chaoyang"),
            CompleteRectification {
                case_id,
                evidence: vec!["photo".into()],
                summary: "完成".into(),
            }
            .into(),
        ),
        (
            leader("room-1"),
            ScheduleFollowUpVisit {
                case_id,
                visitor: u("loc-zhongshan"),
                scheduled_for: t0() + Duration::days(20),
            }
            .into(),
        ),
        (
            officer("loc-zhongshan"),
            RecordFollowUpVisit {
                case_id,
                result: VisitResult::Held,
                notes: "到位".into(),
            }
            .into(),
        ),
        (
            Actor::new("vil-dongyuan", Role::InformationOfficer),
            RecordSatisfaction {
                case_id,
                satisfaction: Satisfaction::Satisfied,
                comment: String::new(),
            }
            .into(),
        ),
        (
            leader("room-1"),
            CloseCase {
                case_id,
                outcome: CaseOutcome::Rectified,
                summary: "办结".into(),
            }
            .into(),
        ),
    ]
}

/// Decides and folds the whole script; returns the events.
fn run_script(d: &DistrictConfig, script: &[(Actor, Command)]) -> Vec<CaseEvent> {
    let mut state = CaseState::default();
    let mut events = Vec::with_capacity(script.len());
    for (i, (actor, cmd)) in script.iter().enumerate() {
        let at = t0() + Duration::hours(i as i64 + 1);
        let ctx = Context::new(actor, at, &d.org, &d.calendar, &d.policies);
        if let Ok(new) = decide(&state, cmd, &ctx) {
            for e in &new {
                evolve(&mut state, e);
            }
            events.extend(new);
        }
    }
    events
}

fn benches(c: &mut Criterion) {
    let Ok(d) = DistrictConfig::sample() else {
        return;
    };
    let script = clue_script(CaseId(Uuid::from_u128(42)));
    let events = run_script(&d, &script);
    assert_eq!(
        events.len(),
        script.len(),
        "the benchmark script must run to close"
    );

    c.bench_function(
        "decide+evolve a clue from report to close (16 commands)",
        |b| b.iter(|| run_script(black_box(&d), black_box(&script))),
    );
    c.bench_function("evolve: replay a closed clue (16 events)", |b| {
        b.iter(|| CaseState::from_events(black_box(&events)))
    });
    let payloads: Vec<(&str, u32, Vec<u8>)> = events
        .iter()
        .map(|e| (e.event_type(), e.schema_version(), e.to_json()))
        .collect();
    c.bench_function("decode JSON and replay a closed clue (16 events)", |b| {
        b.iter(|| {
            let mut s = CaseState::default();
            for (ty, version, p) in &payloads {
                if let Ok(e) = CaseEvent::decode_current(ty, *version, p) {
                    evolve(&mut s, &e);
                }
            }
            s
        })
    });
    c.bench_function("calendar: add 30 working days", |b| {
        b.iter(|| d.calendar.add_working_days(black_box(t0()), black_box(30)))
    });
    c.bench_function("load and validate the sample district", |b| {
        b.iter(|| DistrictConfig::from_toml_str(black_box(SAMPLE_DISTRICT_TOML)))
    });
}

criterion_group!(domain, benches);
criterion_main!(domain);
