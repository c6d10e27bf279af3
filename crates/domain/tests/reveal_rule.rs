//! Who may read a reporter's contact, checked against the rule as docs/domain.md states it:
//! while the case is open, a leader or case officer (the handler) of a room of the case's
//! zone until it is routed, and of the lead unit alone once it is; nobody else, nobody
//! after the case is finished, nobody once the contact is erased, and never for an
//! anonymous reporter. A proptest walks cases to random stages (any legal command, via
//! `next_commands`) and asks `decide` for every actor of the district.

mod support;

use caseflow_domain::walk::{Chooser, Style, next_move};
use caseflow_domain::*;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use support::*;

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

fn decide_at(
    state: &CaseState,
    actor: &Actor,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Vec<CaseEvent>, DomainError> {
    let d = district();
    decide(
        state,
        command,
        &Context::new(actor, now, &d.org, &d.calendar, &d.policies),
    )
}

fn apply(state: &mut CaseState, events: &[CaseEvent]) {
    for e in events {
        evolve(state, e);
    }
}

/// Every actor: each unit with each role (valid at its level or not), and the watcher.
fn every_actor() -> Vec<Actor> {
    let roles = [
        Role::Leader,
        Role::CaseOfficer,
        Role::InformationOfficer,
        Role::Watcher,
    ];
    district()
        .org
        .units()
        .flat_map(|u| roles.iter().map(|r| Actor::new(u.id.clone(), *r)))
        .collect()
}

/// The documented rule, restated as the test's oracle.
fn documented_rule(case: &Case, actor: &Actor) -> bool {
    let org = &district().org;
    let Some(unit) = org.unit(&actor.unit) else {
        return false;
    };
    let open = !matches!(
        case.stage,
        Stage::Closed | Stage::Declined | Stage::Merged | Stage::Transferred
    );
    let needs_to_know = match case.lead_unit() {
        Some(lead) => &unit.id == lead,
        None => unit.level == Level::Room && unit.zone == case.zone,
    };
    let person = matches!(actor.role, Role::Leader | Role::CaseOfficer);
    open && needs_to_know
        && person
        && !case.reporter.is_anonymous()
        && case.contact_erased.is_none()
}

fn reveal(case: &Case) -> Command {
    RevealReporterContact {
        case_id: case.id,
        reason: "call the reporter back".into(),
    }
    .into()
}

/// A case reported (named or anonymous), walked `steps` legal commands on, and erased
/// half-way when `erase_at` says so.
fn walked(
    bytes: &[u8],
    steps: usize,
    named: bool,
    erase_at: Option<usize>,
) -> (CaseState, DateTime<Utc>) {
    let mut state = CaseState::default();
    let mut command = report(CaseKind::ProblemClue, Channel::Hotline);
    if let (false, Command::ReportCase(c)) = (named, &mut command) {
        c.reporter = Reporter::Anonymous;
    }
    let mut now = t0();
    let events = decide_at(&state, &informant("vil-dongyuan"), &command, now).expect("report");
    apply(&mut state, &events);
    let mut chooser = Bytes { bytes, at: 0 };
    let d = district();
    for step in 0..steps {
        now += Duration::hours(20);
        if erase_at == Some(step) && named {
            let erase: Command = EraseReporterContact {
                case_id: CASE,
                reason: "the reporter withdrew".into(),
                legal_basis: "PIPL art. 47".into(),
                requested_on: CASE,
            }
            .into();
            let events = decide_at(&state, &leader("room-1"), &erase, now).expect("erasure");
            apply(&mut state, &events);
            continue;
        }
        let next = NextContext::new(&d.org, &d.calendar, &d.policies, now).with_note("说明");
        let Some(m) = next_move(&state, &next, Style::Explore, &mut chooser) else {
            break;
        };
        let events = decide_at(&state, &m.actor, &m.command, now).expect("a listed move");
        apply(&mut state, &events);
    }
    (state, now + Duration::hours(1))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decide_admits_exactly_the_actors_the_documented_rule_names(
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
        steps in 0usize..24,
        named in any::<bool>(),
        erase_at in proptest::option::of(0usize..24),
    ) {
        let (state, now) = walked(&bytes, steps, named, erase_at);
        let case = state.case().expect("reported").clone();
        for actor in every_actor() {
            let result = decide_at(&state, &actor, &reveal(&case), now);
            prop_assert_eq!(
                result.is_ok(),
                documented_rule(&case, &actor),
                "{} at stage {} (lead {:?}): {:?}",
                actor,
                case.stage,
                case.lead_unit(),
                result
            );
            if let Ok(events) = result {
                prop_assert_eq!(events.len(), 1);
                prop_assert!(matches!(&events[0], CaseEvent::ReporterContactRevealed(e) if e.by == actor));
            }
        }
    }
}

#[test]
fn a_refused_reveal_says_why() {
    let (state, now) = walked(&[0], 0, true, None);
    let case = state.case().expect("reported").clone();
    let refused = decide_at(&state, &informant("vil-dongyuan"), &reveal(&case), now);
    assert!(matches!(refused, Err(DomainError::NotAuthorized { .. })));
    let (erased, now) = walked(&[0], 1, true, Some(0));
    let case = erased.case().expect("reported").clone();
    let refused = decide_at(&erased, &officer("room-1"), &reveal(&case), now);
    assert!(
        matches!(refused, Err(DomainError::ReporterContactErased { .. })),
        "{refused:?}"
    );
    let (anonymous, now) = walked(&[0], 0, false, None);
    let case = anonymous.case().expect("reported").clone();
    let refused = decide_at(&anonymous, &officer("room-1"), &reveal(&case), now);
    assert!(matches!(refused, Err(DomainError::NoReporterContact)));
}

#[test]
fn only_a_rooms_leader_erases_and_a_finished_case_can_still_be_erased() {
    let (state, now) = walked(&[3, 1, 4, 1, 5], 30, true, None);
    let case = state.case().expect("reported").clone();
    let erase: Command = EraseReporterContact {
        case_id: case.id,
        reason: "erasure request".into(),
        legal_basis: "PIPL art. 47".into(),
        requested_on: case.id,
    }
    .into();
    for actor in every_actor() {
        let unit = district().org.unit(&actor.unit).expect("unit");
        let allowed = unit.level == Level::Room && actor.role == Role::Leader;
        assert_eq!(
            decide_at(&state, &actor, &erase, now).is_ok(),
            allowed,
            "{actor} at stage {}",
            case.stage
        );
    }
}
