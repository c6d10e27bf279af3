//! The given/when/then harness for the domain's rules, and builders for commands and actors.
#![allow(dead_code)]

use std::sync::OnceLock;

use caseflow_domain::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// The sample district, loaded once.
pub fn district() -> &'static DistrictConfig {
    static D: OnceLock<DistrictConfig> = OnceLock::new();
    D.get_or_init(|| DistrictConfig::sample().expect("sample district loads"))
}

/// The case every scenario works on.
pub const CASE: CaseId = CaseId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001));
/// Another case id (for merges and mismatches).
pub const OTHER: CaseId = CaseId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002));

/// Monday 2 March 2026, 09:00 in China (01:00 UTC): a plain working week.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()
}

pub fn actor(unit: &str, role: Role) -> Actor {
    Actor::new(unit, role)
}
pub fn leader(unit: &str) -> Actor {
    actor(unit, Role::Leader)
}
pub fn officer(unit: &str) -> Actor {
    actor(unit, Role::CaseOfficer)
}
pub fn informant(unit: &str) -> Actor {
    actor(unit, Role::InformationOfficer)
}
pub fn u(id: &str) -> UnitId {
    UnitId::new(id)
}
pub fn dept(id: &str) -> DepartmentId {
    DepartmentId::new(id)
}

/// A report from 东苑社区 in 朝阳街道 (zone-1), by its information officer.
pub fn report(kind: CaseKind, channel: Channel) -> Command {
    ReportCase {
        case_id: CASE,
        channel,
        kind,
        summary: "花园小区路灯损坏，多次反映无人修".into(),
        locality: u("loc-chaoyang"),
        village: Some(u("vil-dongyuan")),
        subject: "东苑社区居委会".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Named(ProtectedContact::new("王某", "13800000000")),
        reporter_handle: ReporterHandle(Uuid::from_u128(7)),
        source_department: (channel == Channel::DepartmentTransfer).then(|| dept("dept-finance")),
    }
    .into()
}

pub fn accept() -> Command {
    AcceptCase { case_id: CASE }.into()
}

pub fn classify(category: Category, severity: Severity, involves_locality: bool) -> Command {
    ClassifyCase {
        case_id: CASE,
        category,
        focus_area: FocusArea::LivingEnvironment,
        severity,
        involves_locality,
        involved_department: None,
    }
    .into()
}

pub fn classify_dept(category: Category, department: &str) -> Command {
    ClassifyCase {
        case_id: CASE,
        category,
        focus_area: FocusArea::EducationAndMedicalCare,
        severity: Severity::Ordinary,
        involves_locality: false,
        involved_department: Some(dept(department)),
    }
    .into()
}

pub fn route(lead: &str, responsible: Vec<ResponsibleParty>) -> Command {
    RouteCase {
        case_id: CASE,
        lead_unit: u(lead),
        responsible,
        time_limit_days: None,
    }
    .into()
}

pub fn unit_party(id: &str) -> ResponsibleParty {
    ResponsibleParty::Unit(u(id))
}
pub fn dept_party(id: &str) -> ResponsibleParty {
    ResponsibleParty::Department(dept(id))
}

pub fn dispose(d: Disposition) -> Command {
    ChooseDisposition {
        case_id: CASE,
        disposition: d,
    }
    .into()
}

pub fn team(leader: &str, members: &[&str]) -> Command {
    FormVerificationTeam {
        case_id: CASE,
        leader: u(leader),
        members: members.iter().map(|m| u(m)).collect(),
    }
    .into()
}

pub fn findings(f: Finding) -> Command {
    RecordFindings {
        case_id: CASE,
        finding: f,
        summary: "核查情况属实".into(),
    }
    .into()
}

pub fn discipline(names: &[&str]) -> Command {
    RecordDiscipline {
        case_id: CASE,
        people: names
            .iter()
            .map(|n| DisciplinedPerson {
                name: (*n).into(),
                position: "村委会委员".into(),
                measure: DisciplineMeasure::Warning,
            })
            .collect(),
    }
    .into()
}

pub fn answer() -> Command {
    AnswerConsultation {
        case_id: CASE,
        answer: "低保申请材料清单已在居务公开栏公布".into(),
    }
    .into()
}

pub fn order(party: ResponsibleParty) -> Command {
    OrderRectification {
        case_id: CASE,
        responsible: party,
        requirements: "一周内修复路灯".into(),
    }
    .into()
}

pub fn plan(deadline: DateTime<Utc>) -> Command {
    SubmitRectificationPlan {
        case_id: CASE,
        measures: vec!["更换灯具".into(), "建立巡查制度".into()],
        deadline,
    }
    .into()
}

pub fn progress(pct: u8) -> Command {
    ReportRectificationProgress {
        case_id: CASE,
        note: "灯具已采购".into(),
        percent_complete: pct,
    }
    .into()
}

pub fn complete() -> Command {
    CompleteRectification {
        case_id: CASE,
        evidence: vec!["photo:lamp-fixed.jpg".into()],
        summary: "路灯已修复".into(),
    }
    .into()
}

pub fn urge(deadline: DeadlineKind) -> Command {
    UrgeOverdue {
        case_id: CASE,
        deadline,
        note: "请尽快办理".into(),
    }
    .into()
}

pub fn schedule(visitor: &str, at: DateTime<Utc>) -> Command {
    ScheduleFollowUpVisit {
        case_id: CASE,
        visitor: u(visitor),
        scheduled_for: at,
    }
    .into()
}

pub fn visit(result: VisitResult) -> Command {
    RecordFollowUpVisit {
        case_id: CASE,
        result,
        notes: "实地查看".into(),
    }
    .into()
}

pub fn satisfied(s: Satisfaction) -> Command {
    RecordSatisfaction {
        case_id: CASE,
        satisfaction: s,
        comment: String::new(),
    }
    .into()
}

pub fn reopen() -> Command {
    ReopenCase {
        case_id: CASE,
        reason: "整改不到位".into(),
    }
    .into()
}

pub fn close_case(outcome: CaseOutcome) -> Command {
    CloseCase {
        case_id: CASE,
        outcome,
        summary: "办结".into(),
    }
    .into()
}

/// One step of a scenario: who issues which command.
pub type Step = (Actor, Command);

/// The harness: `given` steps that must succeed, `when` one step, `then` what came of it.
/// Time advances one hour per step unless set with `at`.
pub struct Gwt {
    pub state: CaseState,
    pub events: Vec<CaseEvent>,
    pub now: DateTime<Utc>,
    pub policies: Policies,
}

pub struct Outcome {
    pub before: CaseState,
    pub result: Result<Vec<CaseEvent>, DomainError>,
    pub after: CaseState,
    pub now: DateTime<Utc>,
}

impl Default for Gwt {
    fn default() -> Self {
        Gwt::new()
    }
}

impl Gwt {
    pub fn new() -> Self {
        Gwt {
            state: CaseState::default(),
            events: Vec::new(),
            now: t0(),
            policies: district().policies.clone(),
        }
    }

    pub fn with_policies(mut self, policies: Policies) -> Self {
        self.policies = policies;
        self
    }

    fn run(
        &self,
        actor: &Actor,
        cmd: &Command,
        at: DateTime<Utc>,
    ) -> Result<Vec<CaseEvent>, DomainError> {
        let d = district();
        let ctx = Context::new(actor, at, &d.org, &d.calendar, &self.policies);
        decide(&self.state, cmd, &ctx)
    }

    /// Runs steps that must all succeed.
    #[track_caller]
    pub fn given(mut self, steps: impl IntoIterator<Item = Step>) -> Self {
        for (actor, cmd) in steps {
            self.now += Duration::hours(1);
            match self.run(&actor, &cmd, self.now) {
                Ok(events) => {
                    for e in &events {
                        evolve(&mut self.state, e);
                    }
                    self.events.extend(events);
                }
                Err(e) => panic!("given step {} by {actor} was refused: {e}", cmd.name()),
            }
        }
        self
    }

    /// Moves the clock to an absolute time.
    pub fn at(mut self, t: DateTime<Utc>) -> Self {
        self.now = t;
        self
    }

    /// Advances the clock.
    pub fn after(mut self, d: Duration) -> Self {
        self.now += d;
        self
    }

    /// Runs one step and keeps its result for `then_*`.
    pub fn when(&self, actor: Actor, cmd: Command) -> Outcome {
        let now = self.now + Duration::hours(1);
        let result = self.run(&actor, &cmd, now);
        let mut after = self.state.clone();
        if let Ok(events) = &result {
            for e in events {
                evolve(&mut after, e);
            }
        }
        Outcome {
            before: self.state.clone(),
            result,
            after,
            now,
        }
    }
}

impl Outcome {
    /// The step succeeded; returns its events.
    #[track_caller]
    pub fn then_ok(&self) -> &[CaseEvent] {
        match &self.result {
            Ok(ev) => ev,
            Err(e) => panic!("expected success, got {e:?}"),
        }
    }

    /// The step produced exactly these event types.
    #[track_caller]
    pub fn then_events(&self, types: &[&str]) -> &Self {
        let got: Vec<&str> = self.then_ok().iter().map(|e| e.event_type()).collect();
        assert_eq!(got, types, "event types");
        self
    }

    /// The step was refused with exactly this error; the state is unchanged.
    #[track_caller]
    pub fn then_error(&self, expected: DomainError) {
        match &self.result {
            Err(e) => assert_eq!(e, &expected),
            Ok(ev) => panic!("expected {expected:?}, got events {ev:?}"),
        }
        assert_eq!(self.before, self.after);
    }

    /// The step was refused with an error matching the predicate.
    #[track_caller]
    pub fn then_error_matches(&self, what: &str, pred: impl Fn(&DomainError) -> bool) {
        match &self.result {
            Err(e) => assert!(pred(e), "expected {what}, got {e:?}"),
            Ok(ev) => panic!("expected {what}, got events {ev:?}"),
        }
    }

    /// The step was refused as not authorized.
    #[track_caller]
    pub fn then_not_authorized(&self) {
        self.then_error_matches("NotAuthorized", |e| {
            matches!(e, DomainError::NotAuthorized { .. })
        });
    }

    /// The stage after the step.
    #[track_caller]
    pub fn then_stage(&self, stage: Stage) -> &Self {
        assert_eq!(self.after.stage(), stage);
        self
    }
}

// ---- Canned prefixes -------------------------------------------------------------------

pub fn vil() -> Actor {
    informant("vil-dongyuan")
}
pub fn room1() -> Actor {
    leader("room-1")
}
pub fn chaoyang() -> Actor {
    leader("loc-chaoyang")
}

/// Reported and accepted.
pub fn accepted(kind: CaseKind) -> Vec<Step> {
    vec![
        (vil(), report(kind, Channel::PettyPowerMiniProgram)),
        (officer("room-1"), accept()),
    ]
}

/// A discipline clue involving 朝阳街道, routed to room-1 with cross-inspection.
pub fn clue_routed() -> Vec<Step> {
    let mut s = accepted(CaseKind::ProblemClue);
    s.push((
        room1(),
        classify(Category::DisciplineClue, Severity::Serious, true),
    ));
    s.push((room1(), route("room-1", vec![unit_party("loc-chaoyang")])));
    s
}

/// ... with preliminary verification, a cross-inspection team and substantiated findings.
pub fn clue_substantiated() -> Vec<Step> {
    let mut s = clue_routed();
    s.push((room1(), dispose(Disposition::PreliminaryVerification)));
    s.push((room1(), team("room-1", &["loc-zhongshan", "loc-xinhua"])));
    s.push((officer("room-1"), findings(Finding::Substantiated)));
    s
}

/// ... with rectification ordered from 朝阳街道.
pub fn clue_rectification_ordered() -> Vec<Step> {
    let mut s = clue_substantiated();
    s.push((room1(), order(unit_party("loc-chaoyang"))));
    s
}

/// ... with the plan submitted (deadline 10 days after t0).
pub fn clue_plan_submitted() -> Vec<Step> {
    let mut s = clue_rectification_ordered();
    s.push((chaoyang(), plan(t0() + Duration::days(10))));
    s
}

/// ... rectification completed: the case is in review.
pub fn clue_in_review() -> Vec<Step> {
    let mut s = clue_plan_submitted();
    s.push((chaoyang(), complete()));
    s
}

/// ... a follow-up visit by 文化宫社区's locality (中山街道) scheduled.
pub fn clue_visit_scheduled() -> Vec<Step> {
    let mut s = clue_in_review();
    s.push((
        room1(),
        schedule("loc-zhongshan", t0() + Duration::days(20)),
    ));
    s
}

/// The steps after acceptance that take a case of this kind through to close.
pub fn path_after_acceptance(kind: CaseKind) -> (Vec<Step>, CaseOutcome) {
    let mut s: Vec<Step> = Vec::new();
    let visit_at = t0() + Duration::days(20);
    match kind {
        CaseKind::ProblemClue => {
            // A clue involving 朝阳街道: led by a room of zone-1, cross-inspected.
            s.push((
                room1(),
                classify(Category::DisciplineClue, Severity::Serious, true),
            ));
            s.push((room1(), route("room-1", vec![unit_party("loc-chaoyang")])));
            s.push((room1(), dispose(Disposition::PreliminaryVerification)));
            s.push((room1(), team("room-1", &["loc-zhongshan", "loc-xinhua"])));
            s.push((officer("room-1"), findings(Finding::Substantiated)));
            s.push((room1(), discipline(&["张某", "李某"])));
            s.push((room1(), order(unit_party("loc-chaoyang"))));
            s.push((chaoyang(), plan(t0() + Duration::days(10))));
            s.push((officer("loc-chaoyang"), progress(50)));
            s.push((chaoyang(), complete()));
            s.push((room1(), schedule("loc-zhongshan", visit_at)));
            s.push((leader("loc-zhongshan"), visit(VisitResult::Held)));
            s.push((vil(), satisfied(Satisfaction::Satisfied)));
            s.push((room1(), close_case(CaseOutcome::Rectified)));
        }
        CaseKind::Complaint => {
            // A mass demand about a department: the stationed team leads, the department answers.
            s.push((
                room1(),
                classify_dept(Category::MassDemand, "dept-education"),
            ));
            s.push((room1(), route("team-2", vec![dept_party("dept-education")])));
            s.push((officer("team-2"), findings(Finding::PartlySubstantiated)));
            s.push((leader("team-2"), order(dept_party("dept-education"))));
            s.push((officer("team-2"), plan(t0() + Duration::days(10))));
            s.push((officer("team-2"), complete()));
            s.push((leader("team-2"), schedule("vil-dongyuan", visit_at)));
            s.push((vil(), visit(VisitResult::Held)));
            s.push((vil(), satisfied(Satisfaction::BasicallySatisfied)));
            s.push((leader("team-2"), close_case(CaseOutcome::Rectified)));
        }
        CaseKind::Suggestion => {
            // A mass demand in the locality: the locality leads and answers.
            s.push((
                chaoyang(),
                classify(Category::MassDemand, Severity::Grave, false),
            ));
            s.push((
                chaoyang(),
                route("loc-chaoyang", vec![unit_party("loc-chaoyang")]),
            ));
            s.push((officer("loc-chaoyang"), findings(Finding::Substantiated)));
            s.push((chaoyang(), order(unit_party("loc-chaoyang"))));
            s.push((chaoyang(), plan(t0() + Duration::days(5))));
            s.push((chaoyang(), complete()));
            s.push((chaoyang(), schedule("vil-dongyuan", visit_at)));
            s.push((vil(), visit(VisitResult::Held)));
            s.push((vil(), satisfied(Satisfaction::Satisfied)));
            s.push((chaoyang(), close_case(CaseOutcome::Rectified)));
        }
        CaseKind::Consultation => {
            // A consultation whose answer showed a gap in published village affairs.
            s.push((
                room1(),
                classify(Category::Consultation, Severity::Ordinary, false),
            ));
            s.push((
                room1(),
                route("loc-chaoyang", vec![unit_party("vil-dongyuan")]),
            ));
            s.push((officer("loc-chaoyang"), answer()));
            s.push((chaoyang(), order(unit_party("vil-dongyuan"))));
            s.push((vil(), plan(t0() + Duration::days(6))));
            s.push((vil(), complete()));
            s.push((chaoyang(), schedule("loc-chaoyang", visit_at)));
            s.push((chaoyang(), visit(VisitResult::Held)));
            s.push((chaoyang(), satisfied(Satisfaction::Satisfied)));
            s.push((chaoyang(), close_case(CaseOutcome::Rectified)));
        }
    }
    (s, kind_outcome(kind))
}

pub fn kind_outcome(_kind: CaseKind) -> CaseOutcome {
    CaseOutcome::Rectified
}

/// A whole happy path for a kind: reported by the village officer, accepted, through to close.
pub fn happy_path(kind: CaseKind) -> Vec<Step> {
    let mut s = accepted(kind);
    s.extend(path_after_acceptance(kind).0);
    s
}
