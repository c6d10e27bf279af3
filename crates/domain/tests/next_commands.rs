//! `next_commands` agrees with `decide` and with the who-acts table: every listed command is
//! accepted from every listed issuer, no other actor may issue it, varied drafts within the
//! listed options are accepted, and every duty on a to-do list is discharged by a listed
//! command its assignee may issue. Random walks explore every branch; forward walks close
//! every kind from every channel.

mod support;

use caseflow_domain::walk::{Chooser, First, Style, next_move, walk_forward};
use caseflow_domain::*;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use support::*;

/// A chooser fed by proptest's bytes (cycling), so a shrunk failure replays exactly.
struct Bytes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Chooser for Bytes<'_> {
    fn pick(&mut self, n: usize) -> usize {
        let b = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        usize::from(b) % n
    }
}

fn ctx(policies: &Policies, now: DateTime<Utc>) -> NextContext<'_> {
    let d = district();
    NextContext::new(&d.org, &d.calendar, policies, now).with_note("办理情况说明")
}

fn decide_at(
    state: &CaseState,
    actor: &Actor,
    command: &Command,
    policies: &Policies,
    now: DateTime<Utc>,
) -> Result<Vec<CaseEvent>, DomainError> {
    let d = district();
    decide(
        state,
        command,
        &Context::new(actor, now, &d.org, &d.calendar, policies),
    )
}

/// Every actor of the district: each unit with every role (valid or not at its level).
fn every_actor() -> Vec<Actor> {
    let roles = [Role::Leader, Role::CaseOfficer, Role::InformationOfficer];
    district()
        .org
        .units()
        .flat_map(|u| roles.iter().map(|r| Actor::new(u.id.clone(), *r)))
        .collect()
}

/// The unit that acts for an assignee: a unit itself; a department through its stationed
/// team, or the lead unit where none is stationed.
fn acting_unit(assignee: &Assignee, case: &Case) -> Option<UnitId> {
    let party = match assignee {
        Assignee::Unit(u) => ResponsibleParty::Unit(u.clone()),
        Assignee::Department(d) => ResponsibleParty::Department(d.clone()),
    };
    acting_unit_for(&party, case.lead_unit(), &district().org)
}

fn report_from(kind: CaseKind, channel: Channel, village: bool) -> CaseState {
    let mut state = CaseState::default();
    let mut command = report(kind, channel);
    if let Command::ReportCase(c) = &mut command {
        if !village {
            c.village = None;
        }
    }
    let actor = officer("room-1");
    let events = decide_at(&state, &actor, &command, &district().policies, t0())
        .expect("the report is accepted");
    for e in &events {
        evolve(&mut state, e);
    }
    state
}

fn check_listed_commands(state: &CaseState, policies: &Policies, now: DateTime<Utc>) {
    let c = ctx(policies, now);
    for next in next_commands(state, &c) {
        assert!(
            !next.issuers.is_empty(),
            "{:?} listed without issuers",
            next.kind
        );
        let Some(draft) = &next.draft else {
            assert_eq!(
                next.kind,
                CommandKind::MergeCase,
                "only a merge has no draft"
            );
            continue;
        };
        assert_eq!(draft.kind(), next.kind);
        for actor in every_actor() {
            let accepted = decide_at(state, &actor, draft, policies, now).is_ok();
            assert_eq!(
                accepted,
                next.may_issue(&actor),
                "{:?} by {actor} at stage {}: decide says {accepted}, next_commands says {}",
                next.kind,
                state.stage(),
                next.may_issue(&actor)
            );
        }
    }
}

fn check_duties_are_dischargeable(state: &CaseState, policies: &Policies, now: DateTime<Utc>) {
    let Some(case) = state.case() else { return };
    let duties = obligations(state, &district().org, policies.cross_inspection)
        .expect("the sample district places every duty");
    let listed = next_commands(state, &ctx(policies, now));
    for duty in duties {
        let late = duty.due_at.is_some_and(|due| now > due);
        // A team member verifies and reports to the lead (no command); supervision turns
        // into an urging only once the rectification is late.
        if duty.action == Action::Verify || (duty.action == Action::SuperviseRectification && !late)
        {
            continue;
        }
        let unit = acting_unit(&duty.assignee, case).expect("an acting unit");
        let discharged = listed.iter().any(|n| {
            duty.action.discharged_by().contains(&n.kind)
                && n.discharges.contains(&duty.action)
                && n.issuers.iter().any(|a| a.unit == unit)
        });
        // An urged supervision duty waits for the escalation, which is a zone room's.
        let escalation_pending = duty.action == Action::SuperviseRectification
            && state
                .deadlines()
                .any(|d| d.urged.is_some() && d.escalated.is_none());
        assert!(
            discharged || escalation_pending,
            "{} must {} at stage {} but no listed command lets it",
            duty.assignee,
            duty.action,
            state.stage()
        );
    }
}

fn apply(state: &mut CaseState, events: &[CaseEvent]) {
    for e in events {
        evolve(state, e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Random walks (any legal command, choice fields drawn from the options, time passing
    /// so deadlines are missed): every command a walk issues is accepted, the listed
    /// commands agree with `decide` actor by actor, and every duty can be discharged.
    #[test]
    fn next_commands_agree_with_decide_and_the_who_acts_table(
        kind in 0usize..4,
        channel in 0usize..11,
        village in any::<bool>(),
        all_clues in any::<bool>(),
        hours in proptest::collection::vec(0i64..120, 24),
        bytes in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let mut policies = district().policies.clone();
        if all_clues {
            policies.cross_inspection = CrossInspectionScope::AllClues;
        }
        let mut state = report_from(CaseKind::ALL[kind], Channel::ALL[channel], village);
        let mut chooser = Bytes { bytes: &bytes, at: 0 };
        let mut now = t0() + Duration::hours(1);
        for h in hours {
            now += Duration::hours(h);
            check_listed_commands(&state, &policies, now);
            check_duties_are_dischargeable(&state, &policies, now);
            let Some(m) = next_move(&state, &ctx(&policies, now), Style::Explore, &mut chooser)
            else {
                break;
            };
            let events = decide_at(&state, &m.actor, &m.command, &policies, now);
            prop_assert!(
                events.is_ok(),
                "{} by {} was listed but refused: {:?}",
                m.command.name(),
                m.actor,
                events.err()
            );
            apply(&mut state, &events.unwrap_or_default());
        }
    }
}

#[test]
fn nothing_is_listed_before_a_report_or_after_the_end() {
    let policies = &district().policies;
    assert!(next_commands(&CaseState::default(), &ctx(policies, t0())).is_empty());

    let mut state = report_from(CaseKind::Complaint, Channel::Hotline, true);
    let decline = next_commands_of(&state, CommandKind::DeclineCase, &ctx(policies, t0()));
    let draft = decline[0].draft.clone().expect("a draft");
    let events = decide_at(&state, &decline[0].issuers[0], &draft, policies, t0()).unwrap();
    apply(&mut state, &events);
    assert_eq!(state.stage(), Stage::Declined);
    assert!(next_commands(&state, &ctx(policies, t0())).is_empty());
}

#[test]
fn given_a_report_when_asked_then_intake_commands_are_listed_for_rooms_teams_and_the_locality() {
    let state = report_from(CaseKind::Complaint, Channel::Hotline, true);
    let listed = next_commands(&state, &ctx(&district().policies, t0()));
    let kinds: Vec<CommandKind> = listed.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [
            CommandKind::AcceptCase,
            CommandKind::DeclineCase,
            CommandKind::MergeCase,
            CommandKind::TransferCase
        ]
    );
    let accept = &listed[0];
    assert_eq!(accept.discharges, [Action::DecideIntake]);
    assert!(
        accept.may_issue(&officer("room-4")),
        "any room decides intake"
    );
    assert!(
        accept.may_issue(&leader("team-3")),
        "any team decides intake"
    );
    assert!(
        accept.may_issue(&officer("loc-chaoyang")),
        "the own locality"
    );
    assert!(
        !accept.may_issue(&officer("loc-zhongshan")),
        "not another locality"
    );
    assert!(
        !accept.may_issue(&informant("vil-dongyuan")),
        "not a village officer"
    );
}

#[test]
fn given_a_late_rectification_when_asked_then_its_supervisor_may_urge_it() {
    // A department with a stationed team answers; the case is led by the locality, so the
    // team supervises the rectification and may urge it once it is late.
    let policies = &district().policies;
    let team = district()
        .org
        .team_stationed_in(&dept("dept-finance"))
        .cloned()
        .expect("a team is stationed in finance");
    let given = Gwt::new().given([
        (
            informant("vil-dongyuan"),
            report(CaseKind::Complaint, Channel::Hotline),
        ),
        (officer("loc-chaoyang"), accept()),
        (
            leader("loc-chaoyang"),
            classify(Category::MassDemand, Severity::Ordinary, false),
        ),
        (
            leader("loc-chaoyang"),
            route("loc-chaoyang", vec![dept_party("dept-finance")]),
        ),
        (leader("loc-chaoyang"), findings(Finding::Substantiated)),
        (leader("loc-chaoyang"), order(dept_party("dept-finance"))),
    ]);
    let late = given.now + Duration::days(30);
    let urges = next_commands_of(&given.state, CommandKind::UrgeOverdue, &ctx(policies, late));
    assert_eq!(
        urges.len(),
        1,
        "the plan deadline is the one open and missed"
    );
    assert!(urges[0].may_issue(&officer(team.as_str())));
    assert!(
        urges[0]
            .discharges
            .contains(&Action::SuperviseRectification)
    );
}

#[test]
fn given_a_department_without_a_team_when_it_must_plan_then_the_lead_unit_acts_for_it() {
    // The sample district with housing left without a stationed team.
    let toml = SAMPLE_DISTRICT_TOML.replace(
        r#"stationed_in = ["dept-urban-management", "dept-housing"]"#,
        r#"stationed_in = ["dept-urban-management"]"#,
    );
    let d = DistrictConfig::from_toml_str(&toml).expect("the edited district loads");
    let lone = dept("dept-housing");
    assert!(d.org.team_stationed_in(&lone).is_none());
    let steps = [
        (
            informant("vil-dongyuan"),
            report(CaseKind::Complaint, Channel::Hotline),
        ),
        (officer("loc-chaoyang"), accept()),
        (
            leader("loc-chaoyang"),
            classify(Category::MassDemand, Severity::Ordinary, false),
        ),
        (
            leader("loc-chaoyang"),
            route(
                "loc-chaoyang",
                vec![ResponsibleParty::Department(lone.clone())],
            ),
        ),
        (leader("loc-chaoyang"), findings(Finding::Substantiated)),
        (
            leader("loc-chaoyang"),
            order(ResponsibleParty::Department(lone)),
        ),
    ];
    let mut state = CaseState::default();
    let mut now = t0();
    for (actor, command) in &steps {
        now += Duration::hours(1);
        let context = Context::new(actor, now, &d.org, &d.calendar, &d.policies);
        let events = decide(&state, command, &context).expect("the step is accepted");
        apply(&mut state, &events);
    }
    let next = NextContext::new(&d.org, &d.calendar, &d.policies, now);
    let plans = next_commands_of(&state, CommandKind::SubmitRectificationPlan, &next);
    assert_eq!(plans.len(), 1, "somebody can submit the department's plan");
    assert!(
        plans[0].may_issue(&officer("loc-chaoyang")),
        "the lead unit acts for it"
    );
    assert!(
        !plans[0].may_issue(&officer("team-5")),
        "the team is not stationed there"
    );
}

#[test]
fn forward_walks_close_every_kind_from_every_channel() {
    let policies = &district().policies;
    for kind in CaseKind::ALL {
        for channel in Channel::ALL {
            let mut state = report_from(kind, channel, true);
            let now = t0() + Duration::hours(2);
            let (moves, outcome) = walk_forward(&mut state, &ctx(policies, now), &mut First, 64);
            assert_eq!(
                state.stage(),
                Stage::Closed,
                "{kind:?} via {channel:?} stopped at {} after {:?}",
                state.stage(),
                moves.iter().map(|m| m.command.name()).collect::<Vec<_>>()
            );
            assert!(outcome.is_some());
        }
    }
}

#[test]
fn a_forward_walk_of_a_clue_follows_the_five_stages() {
    let policies = &district().policies;
    let mut state = report_from(CaseKind::ProblemClue, Channel::PhotoReportApp, true);
    let (moves, outcome) = walk_forward(&mut state, &ctx(policies, t0()), &mut First, 64);
    let names: Vec<&str> = moves.iter().map(|m| m.command.name()).collect();
    assert_eq!(
        names,
        [
            "AcceptCase",
            "ClassifyCase",
            "RouteCase",
            "ChooseDisposition",
            "RecordFindings",
            "OrderRectification",
            "SubmitRectificationPlan",
            "CompleteRectification",
            "ScheduleFollowUpVisit",
            "RecordFollowUpVisit",
            "RecordSatisfaction",
            "CloseCase",
        ]
    );
    assert_eq!(outcome, Some(CaseOutcome::Rectified));
}

#[test]
fn options_of_a_cross_inspected_clue_exclude_the_involved_locality() {
    let policies = &district().policies;
    let given = Gwt::new().given([
        (
            informant("vil-dongyuan"),
            report(CaseKind::ProblemClue, Channel::Hotline),
        ),
        (officer("room-1"), accept()),
        (
            leader("room-1"),
            classify(Category::DisciplineClue, Severity::Ordinary, true),
        ),
    ]);
    let Some(CommandOptions::RouteCase { leads, .. }) = command_options(
        &given.state,
        CommandKind::RouteCase,
        &ctx(policies, given.now),
    ) else {
        panic!("routing is legal");
    };
    let zone = district().org.zone_of(&u("loc-chaoyang")).cloned().unwrap();
    assert!(!leads.is_empty());
    for lead in &leads {
        let unit = district().org.unit(lead).unwrap();
        assert_eq!(
            unit.level,
            Level::Room,
            "{lead} leads a cross-inspected clue"
        );
        assert_eq!(unit.zone, zone);
    }
    let route_next = next_commands_of(
        &given.state,
        CommandKind::RouteCase,
        &ctx(policies, given.now),
    );
    assert!(
        !route_next[0].may_issue(&leader("loc-chaoyang")),
        "the involved locality does not route"
    );
}

/// The random walks above are not trivial: seeded explorations issue every command but the
/// report (issued before the walk) and the merge (which needs a second case).
#[test]
fn exploring_walks_issue_every_command() {
    let mut issued = std::collections::BTreeSet::new();
    let mut seed = 0x9e37_79b9_u64;
    for walk in 0..400u64 {
        let policies = &district().policies;
        let kind = CaseKind::ALL[(walk % 4) as usize];
        let mut state = report_from(kind, Channel::ALL[(walk % 11) as usize], walk % 3 != 0);
        let mut now = t0();
        let mut chooser = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..40 {
            now += Duration::hours(30);
            let Some(m) = next_move(&state, &ctx(policies, now), Style::Explore, &mut chooser)
            else {
                break;
            };
            let events = decide_at(&state, &m.actor, &m.command, policies, now).unwrap();
            issued.insert(m.command.kind());
            apply(&mut state, &events);
        }
    }
    let missing: Vec<CommandKind> = CommandKind::ALL
        .iter()
        .copied()
        .filter(|k| !issued.contains(k))
        .collect();
    // A reveal and an erasure are not workflow steps: next_commands never lists them
    // (tests/reveal_rule.rs checks who may issue them).
    assert_eq!(
        missing,
        [
            CommandKind::ReportCase,
            CommandKind::MergeCase,
            CommandKind::RevealReporterContact,
            CommandKind::EraseReporterContact
        ],
        "commands no walk issued"
    );
}
