//! Walks one case of each kind (problem clue, complaint, suggestion, consultation) through all
//! five stages of the sample district, printing every event on one line:
//! time (China Standard Time), stage after the event, actor, event and what it says.
//!
//! Run with `cargo run --example lifecycle [path/to/district.toml]`.

use std::process::ExitCode;

use caseflow::domain::chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use caseflow::domain::uuid::Uuid;
use caseflow::domain::*;

/// One case being walked: its state, its clock, and the district it lives in.
struct Walk<'a> {
    district: &'a DistrictConfig,
    case_id: CaseId,
    state: CaseState,
    now: DateTime<Utc>,
}

impl<'a> Walk<'a> {
    fn new(district: &'a DistrictConfig, n: u128, start: DateTime<Utc>) -> Self {
        Walk {
            district,
            case_id: CaseId(Uuid::from_u128(
                0x0198_0000_0000_7000_8000_0000_0000_0000 + n,
            )),
            state: CaseState::default(),
            now: start,
        }
    }

    /// Advances the clock, decides the command, applies and prints the events.
    fn step(
        &mut self,
        after: Duration,
        unit: &str,
        role: Role,
        command: impl Into<Command>,
    ) -> Result<(), String> {
        self.now = at_work(&self.district.calendar, self.now + after);
        let actor = Actor::new(unit, role);
        let command = command.into();
        let d = self.district;
        let ctx = Context::new(&actor, self.now, &d.org, &d.calendar, &d.policies);
        let events = decide(&self.state, &command, &ctx)
            .map_err(|e| format!("{} by {actor} refused: {e}", command.name()))?;
        for event in &events {
            evolve(&mut self.state, event);
            println!(
                "{}  {:<14}  {:<34}  {:<30}  {}",
                local(event.at()),
                self.state.stage().as_str(),
                event.actor().to_string(),
                event.event_type(),
                describe(event)
            );
        }
        Ok(())
    }
}

/// Moves a time into working hours (09:00 to the calendar's end of day, on a working day), so
/// the walk reads like an office's week rather than a robot's.
fn at_work(cal: &Calendar, t: DateTime<Utc>) -> DateTime<Utc> {
    let offset = Duration::minutes(i64::from(cal.utc_offset_minutes));
    let local = t + offset;
    let opening = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN);
    let mut day = local.date_naive();
    if cal.is_working_day(day) && local.time() >= opening && local.time() < cal.day_end {
        return t;
    }
    if !(cal.is_working_day(day) && local.time() < opening) {
        day = day.succ_opt().unwrap_or(day);
        while !cal.is_working_day(day) {
            day = day.succ_opt().unwrap_or(day);
        }
    }
    Utc.from_utc_datetime(&(day.and_time(opening) - offset))
}

fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap())
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&cst()).format("%Y-%m-%d %H:%M").to_string()
}

/// A few words about what an event says (never the reporter's contact).
fn describe(event: &CaseEvent) -> String {
    match event {
        CaseEvent::CaseReported(e) => format!(
            "{:?} via {} at {}/{}; reporter {}; intake due {}",
            e.kind,
            e.channel.as_str(),
            e.locality,
            e.village.as_ref().map_or("-", |v| v.as_str()),
            if e.reporter.is_anonymous() {
                "anonymous"
            } else {
                "named (protected)"
            },
            local(e.intake_due_at)
        ),
        CaseEvent::CaseAccepted(e) => {
            format!("classify by {}", local(e.classification_due_at))
        }
        CaseEvent::CaseClassified(e) => format!(
            "{:?}, {:?}, involves locality: {}{}",
            e.category,
            e.severity,
            e.involves_locality,
            e.involved_department
                .as_ref()
                .map_or(String::new(), |d| format!(", department {d}"))
        ),
        CaseEvent::JointConsultationRecorded(e) => format!(
            "{} units, {} departments: {}",
            e.participants.len(),
            e.departments.len(),
            e.conclusion
        ),
        CaseEvent::CaseRouted(e) => format!(
            "lead {}, responsible {}, {} working days, due {}",
            e.lead_unit,
            e.responsible
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("+"),
            e.time_limit_days,
            local(e.handling_due_at)
        ),
        CaseEvent::DispositionChosen(e) => format!(
            "{:?}{}",
            e.disposition,
            e.due_at
                .map_or(String::new(), |d| format!(", due {}", local(d)))
        ),
        CaseEvent::VerificationTeamFormed(e) => format!(
            "led by {}, members {} (cross-inspection)",
            e.leader,
            e.members
                .iter()
                .map(UnitId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CaseEvent::FindingsRecorded(e) => format!("{:?}: {}", e.finding, e.summary),
        CaseEvent::DisciplineRecorded(e) => format!(
            "{} people: {}",
            e.people.len(),
            e.people
                .iter()
                .map(|p| format!("{} {:?}", p.position, p.measure))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        CaseEvent::ConsultationAnswered(e) => e.answer.clone(),
        CaseEvent::RectificationOrdered(e) => format!(
            "{} must rectify: {}; plan due {}",
            e.responsible,
            e.requirements,
            local(e.plan_due_at)
        ),
        CaseEvent::RectificationPlanSubmitted(e) => format!(
            "{} measures, deadline {}",
            e.measures.len(),
            local(e.rectification_due_at)
        ),
        CaseEvent::RectificationProgressReported(e) => {
            format!("{}%: {}", e.percent_complete, e.note)
        }
        CaseEvent::RectificationCompleted(e) => format!(
            "{} (evidence: {}); review due {}",
            e.summary,
            e.evidence.join(", "),
            local(e.review_due_at)
        ),
        CaseEvent::CaseUrged(e) => format!(
            "{:?} missed (due {}){}; respond by {}",
            e.deadline,
            local(e.missed_due_at),
            if e.escalated { ", escalated" } else { "" },
            local(e.respond_by)
        ),
        CaseEvent::FollowUpVisitScheduled(e) => {
            format!("{} visits on {}", e.visitor, local(e.scheduled_for))
        }
        CaseEvent::FollowUpVisitRecorded(e) => format!("{:?}: {}", e.result, e.notes),
        CaseEvent::SatisfactionRecorded(e) => format!("{:?}", e.satisfaction),
        CaseEvent::CaseReopened(e) => e.reason.clone(),
        CaseEvent::CaseClosed(e) => format!("{:?}: {}", e.outcome, e.summary),
        CaseEvent::CaseDeclined(e) => format!("{:?}: {}", e.reason, e.explanation),
        CaseEvent::CaseMerged(e) => format!("into {}", e.into),
        CaseEvent::CaseTransferred(e) => format!("to {}: {}", e.to_authority, e.reason),
    }
}

fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

fn days(d: i64) -> Duration {
    Duration::days(d)
}

fn unit(id: &str) -> UnitId {
    UnitId::new(id)
}

fn report(w: &Walk<'_>, kind: CaseKind, channel: Channel, summary: &str) -> ReportCase {
    ReportCase {
        case_id: w.case_id,
        channel,
        kind,
        summary: summary.into(),
        locality: unit("loc-chaoyang"),
        village: Some(unit("vil-dongyuan")),
        subject: "东苑社区".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Named(ProtectedContact::new("居民", "139-0000-0000")),
        reporter_handle: ReporterHandle(Uuid::from_u128(0xfeed)),
        source_department: None,
    }
}

/// Review stage shared by every walk: schedule, visit, ask, close.
fn review(w: &mut Walk<'_>, lead: &str, visitor: &str, asker: (&str, Role)) -> Result<(), String> {
    let id = w.case_id;
    let visit_at = at_work(&w.district.calendar, w.now + days(3));
    w.step(
        hours(2),
        lead,
        Role::Leader,
        ScheduleFollowUpVisit {
            case_id: id,
            visitor: unit(visitor),
            scheduled_for: visit_at,
        },
    )?;
    let visitor_role = if visitor.starts_with("vil-") {
        Role::InformationOfficer
    } else {
        Role::CaseOfficer
    };
    w.step(
        days(3),
        visitor,
        visitor_role,
        RecordFollowUpVisit {
            case_id: id,
            result: VisitResult::Held,
            notes: "回头看：整改到位".into(),
        },
    )?;
    w.step(
        hours(3),
        asker.0,
        asker.1,
        RecordSatisfaction {
            case_id: id,
            satisfaction: Satisfaction::Satisfied,
            comment: "群众满意".into(),
        },
    )?;
    w.step(
        days(1),
        lead,
        Role::Leader,
        CloseCase {
            case_id: id,
            outcome: CaseOutcome::Rectified,
            summary: "办结".into(),
        },
    )
}

/// A problem clue involving 朝阳街道 itself: a room of zone-1 leads, a cross-inspection team
/// from the other localities of the zone verifies, two people are disciplined.
fn problem_clue(d: &DistrictConfig, start: DateTime<Utc>) -> Result<(), String> {
    let mut w = Walk::new(d, 1, start);
    let id = w.case_id;
    let r = report(
        &w,
        CaseKind::ProblemClue,
        Channel::PettyPowerMiniProgram,
        "低保评定优亲厚友",
    );
    w.step(hours(0), "vil-dongyuan", Role::InformationOfficer, r)?;
    w.step(
        hours(5),
        "room-1",
        Role::CaseOfficer,
        AcceptCase { case_id: id },
    )?;
    w.step(
        days(1),
        "room-1",
        Role::Leader,
        ClassifyCase {
            case_id: id,
            category: Category::DisciplineClue,
            focus_area: FocusArea::ElderlyCareAndSocialSecurity,
            severity: Severity::Serious,
            involves_locality: true,
            involved_department: Some(DepartmentId::new("dept-civil-affairs")),
        },
    )?;
    let suggestion = d
        .policies
        .suggest_route_for(&d.org, &w.state)
        .map_err(|e| e.to_string())?;
    w.step(
        hours(2),
        "room-1",
        Role::Leader,
        RouteCase {
            case_id: id,
            lead_unit: suggestion.lead_unit.clone(),
            responsible: suggestion.responsible,
            time_limit_days: None,
        },
    )?;
    let lead = suggestion.lead_unit.to_string();
    w.step(
        hours(3),
        &lead,
        Role::Leader,
        ChooseDisposition {
            case_id: id,
            disposition: Disposition::PreliminaryVerification,
        },
    )?;
    w.step(
        hours(1),
        &lead,
        Role::Leader,
        FormVerificationTeam {
            case_id: id,
            leader: unit(&lead),
            members: vec![unit("loc-zhongshan"), unit("loc-xinhua")],
        },
    )?;
    w.step(
        days(8),
        &lead,
        Role::CaseOfficer,
        RecordFindings {
            case_id: id,
            finding: Finding::Substantiated,
            summary: "村干部为亲属违规办理低保".into(),
        },
    )?;
    w.step(
        days(2),
        &lead,
        Role::Leader,
        RecordDiscipline {
            case_id: id,
            people: vec![
                DisciplinedPerson {
                    name: "甲".into(),
                    position: "社区主任".into(),
                    measure: DisciplineMeasure::Warning,
                },
                DisciplinedPerson {
                    name: "乙".into(),
                    position: "社区委员".into(),
                    measure: DisciplineMeasure::Admonishment,
                },
            ],
        },
    )?;
    w.step(
        hours(1),
        &lead,
        Role::Leader,
        OrderRectification {
            case_id: id,
            responsible: ResponsibleParty::Unit(unit("loc-chaoyang")),
            requirements: "清退违规低保，复查全街道低保名单".into(),
        },
    )?;
    let deadline = d.calendar.add_working_days(w.now + days(2), 10);
    w.step(
        days(2),
        "loc-chaoyang",
        Role::Leader,
        SubmitRectificationPlan {
            case_id: id,
            measures: vec!["清退违规低保".into(), "全面复查".into(), "公示结果".into()],
            deadline,
        },
    )?;
    w.step(
        days(5),
        "loc-chaoyang",
        Role::CaseOfficer,
        ReportRectificationProgress {
            case_id: id,
            note: "已清退 2 户".into(),
            percent_complete: 60,
        },
    )?;
    w.step(
        days(4),
        "loc-chaoyang",
        Role::Leader,
        CompleteRectification {
            case_id: id,
            evidence: vec!["doc:复查报告.pdf".into(), "photo:公示栏.jpg".into()],
            summary: "复查完毕并公示".into(),
        },
    )?;
    review(
        &mut w,
        &lead,
        "loc-zhongshan",
        ("vil-dongyuan", Role::InformationOfficer),
    )
}

/// A complaint about the education bureau: the team stationed there leads; the plan comes
/// late and is urged.
fn complaint(d: &DistrictConfig, start: DateTime<Utc>) -> Result<(), String> {
    let mut w = Walk::new(d, 2, start);
    let id = w.case_id;
    let mut r = report(
        &w,
        CaseKind::Complaint,
        Channel::Hotline,
        "入学资格审核吃拿卡要",
    );
    r.reporter = Reporter::Anonymous;
    w.step(hours(0), "room-2", Role::CaseOfficer, r)?;
    w.step(
        hours(4),
        "room-2",
        Role::CaseOfficer,
        AcceptCase { case_id: id },
    )?;
    w.step(
        days(1),
        "room-2",
        Role::Leader,
        ClassifyCase {
            case_id: id,
            category: Category::MassDemand,
            focus_area: FocusArea::EmploymentAndSchoolEnrolment,
            severity: Severity::Ordinary,
            involves_locality: false,
            involved_department: Some(DepartmentId::new("dept-education")),
        },
    )?;
    let education = ResponsibleParty::Department(DepartmentId::new("dept-education"));
    w.step(
        hours(2),
        "room-2",
        Role::Leader,
        RouteCase {
            case_id: id,
            lead_unit: unit("team-2"),
            responsible: vec![education.clone()],
            time_limit_days: None,
        },
    )?;
    w.step(
        days(6),
        "team-2",
        Role::CaseOfficer,
        RecordFindings {
            case_id: id,
            finding: Finding::PartlySubstantiated,
            summary: "审核窗口要求提供非必要证明".into(),
        },
    )?;
    w.step(
        hours(1),
        "team-2",
        Role::Leader,
        OrderRectification {
            case_id: id,
            responsible: education,
            requirements: "精简入学证明材料，公开办事清单".into(),
        },
    )?;
    // The plan is late: the team urges it once the limit has passed.
    let plan_due = w
        .state
        .deadline(DeadlineKind::RectificationPlan)
        .map(|dl| dl.due_at)
        .ok_or("no plan deadline")?;
    w.now = plan_due;
    w.step(
        hours(16),
        "team-2",
        Role::Leader,
        UrgeOverdue {
            case_id: id,
            deadline: DeadlineKind::RectificationPlan,
            note: "请立即报送整改方案".into(),
        },
    )?;
    let deadline = d.calendar.add_working_days(w.now + days(1), 7);
    w.step(
        days(1),
        "team-2",
        Role::CaseOfficer,
        SubmitRectificationPlan {
            case_id: id,
            measures: vec!["精简材料清单".into(), "窗口公开承诺".into()],
            deadline,
        },
    )?;
    w.step(
        days(6),
        "team-2",
        Role::CaseOfficer,
        CompleteRectification {
            case_id: id,
            evidence: vec!["doc:入学材料清单.pdf".into()],
            summary: "清单已公开".into(),
        },
    )?;
    review(
        &mut w,
        "team-2",
        "vil-dongyuan",
        ("team-2", Role::CaseOfficer),
    )
}

/// A suggestion about the 花园小区 street lamp: the locality leads and fixes it within a week.
fn suggestion(d: &DistrictConfig, start: DateTime<Utc>) -> Result<(), String> {
    let mut w = Walk::new(d, 3, start);
    let id = w.case_id;
    let r = report(
        &w,
        CaseKind::Suggestion,
        Channel::BenchMeeting,
        "板凳会上居民建议尽快修复花园小区损坏路灯",
    );
    w.step(hours(0), "vil-dongyuan", Role::InformationOfficer, r)?;
    w.step(
        hours(2),
        "loc-chaoyang",
        Role::CaseOfficer,
        AcceptCase { case_id: id },
    )?;
    w.step(
        hours(3),
        "loc-chaoyang",
        Role::Leader,
        ClassifyCase {
            case_id: id,
            category: Category::MassDemand,
            focus_area: FocusArea::LivingEnvironment,
            severity: Severity::Grave,
            involves_locality: false,
            involved_department: None,
        },
    )?;
    w.step(
        hours(1),
        "loc-chaoyang",
        Role::Leader,
        RouteCase {
            case_id: id,
            lead_unit: unit("loc-chaoyang"),
            responsible: vec![ResponsibleParty::Unit(unit("loc-chaoyang"))],
            time_limit_days: None,
        },
    )?;
    w.step(
        hours(20),
        "loc-chaoyang",
        Role::CaseOfficer,
        RecordFindings {
            case_id: id,
            finding: Finding::Substantiated,
            summary: "3 盏路灯损坏".into(),
        },
    )?;
    w.step(
        hours(1),
        "loc-chaoyang",
        Role::Leader,
        OrderRectification {
            case_id: id,
            responsible: ResponsibleParty::Unit(unit("loc-chaoyang")),
            requirements: "一周内修复路灯".into(),
        },
    )?;
    let deadline = w.now + days(6);
    w.step(
        hours(3),
        "loc-chaoyang",
        Role::Leader,
        SubmitRectificationPlan {
            case_id: id,
            measures: vec!["更换灯具".into(), "建立巡查制度".into()],
            deadline,
        },
    )?;
    w.step(
        days(4),
        "loc-chaoyang",
        Role::Leader,
        CompleteRectification {
            case_id: id,
            evidence: vec!["photo:路灯已亮.jpg".into()],
            summary: "路灯修复".into(),
        },
    )?;
    review(
        &mut w,
        "loc-chaoyang",
        "vil-dongyuan",
        ("vil-dongyuan", Role::InformationOfficer),
    )
}

/// A consultation about low-income allowance rules; the answer shows the village affairs board
/// is out of date, so 东苑社区 is asked to update it.
fn consultation(d: &DistrictConfig, start: DateTime<Utc>) -> Result<(), String> {
    let mut w = Walk::new(d, 4, start);
    let id = w.case_id;
    let r = report(
        &w,
        CaseKind::Consultation,
        Channel::PetitionWindow,
        "咨询低保申请条件与公示情况",
    );
    w.step(hours(0), "loc-chaoyang", Role::CaseOfficer, r)?;
    w.step(
        hours(1),
        "loc-chaoyang",
        Role::CaseOfficer,
        AcceptCase { case_id: id },
    )?;
    w.step(
        hours(2),
        "loc-chaoyang",
        Role::CaseOfficer,
        ClassifyCase {
            case_id: id,
            category: Category::Consultation,
            focus_area: FocusArea::ElderlyCareAndSocialSecurity,
            severity: Severity::Ordinary,
            involves_locality: false,
            involved_department: None,
        },
    )?;
    w.step(
        hours(1),
        "loc-chaoyang",
        Role::Leader,
        RouteCase {
            case_id: id,
            lead_unit: unit("loc-chaoyang"),
            responsible: vec![ResponsibleParty::Unit(unit("vil-dongyuan"))],
            time_limit_days: None,
        },
    )?;
    w.step(
        days(1),
        "loc-chaoyang",
        Role::CaseOfficer,
        AnswerConsultation {
            case_id: id,
            answer: "已告知申请条件；发现社区公示栏信息过期".into(),
        },
    )?;
    w.step(
        hours(1),
        "loc-chaoyang",
        Role::Leader,
        OrderRectification {
            case_id: id,
            responsible: ResponsibleParty::Unit(unit("vil-dongyuan")),
            requirements: "更新居务公开栏，同步到一点通".into(),
        },
    )?;
    let deadline = d.calendar.add_working_days(w.now, 5);
    w.step(
        hours(4),
        "vil-dongyuan",
        Role::InformationOfficer,
        SubmitRectificationPlan {
            case_id: id,
            measures: vec!["更新公示栏".into(), "小程序同步公开".into()],
            deadline,
        },
    )?;
    w.step(
        days(2),
        "vil-dongyuan",
        Role::InformationOfficer,
        CompleteRectification {
            case_id: id,
            evidence: vec!["photo:公示栏.jpg".into(), "url:一点通公示页".into()],
            summary: "已更新".into(),
        },
    )?;
    review(
        &mut w,
        "loc-chaoyang",
        "loc-chaoyang",
        ("vil-dongyuan", Role::InformationOfficer),
    )
}

/// A walk of one case from report to close.
type WalkFn = fn(&DistrictConfig, DateTime<Utc>) -> Result<(), String>;

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/district.toml").into());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let district = match DistrictConfig::from_toml_str(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let org = &district.org;
    println!(
        "{}: {} rooms, {} teams, {} localities, {} villages/communities, {} zones, {} departments",
        org.info().name,
        org.units_at(Level::Room).count(),
        org.units_at(Level::Team).count(),
        org.units_at(Level::Locality).count(),
        org.units_at(Level::Village).count(),
        org.zones().count(),
        org.departments().count()
    );
    // Monday 2 March 2026, 09:00 China time.
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).single();
    let Some(start) = start else {
        return ExitCode::FAILURE;
    };
    let walks: [(&str, WalkFn); 4] = [
        ("problem clue (问题线索)", problem_clue),
        ("complaint (投诉)", complaint),
        ("suggestion (意见建议)", suggestion),
        ("consultation (咨询)", consultation),
    ];
    for (i, (title, walk)) in walks.iter().enumerate() {
        println!("\n== {title} ==");
        println!(
            "{:<16}  {:<14}  {:<34}  {:<30}  details",
            "time (CST)", "stage", "actor", "event"
        );
        if let Err(e) = walk(&district, start + Duration::days(i as i64)) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
