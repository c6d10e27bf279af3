//! Who may issue which command on a case, written once as data. [`crate::decide`] checks an
//! actor against it; [`crate::next_commands`] lists the actors it admits; the who-acts table
//! ([`crate::obligations`]) names the same parties. docs/domain.md prints it for people.

use crate::command::Command;
use crate::ids::UnitId;
use crate::model::{Actor, DeadlineKind, ResponsibleParty, Role};
use crate::org::{Level, Organisation, Unit};
use crate::state::Case;

/// One kind of party a rule admits, judged against a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Party {
    /// Any room of the district.
    AnyRoom,
    /// Any dispatched team of the district.
    AnyTeam,
    /// The commission of the case's own town or street.
    OwnLocality,
    /// The case's own locality, unless the case's classification says it is involved.
    OwnLocalityUnlessInvolved,
    /// A room of the case's collaboration zone.
    ZoneRoom,
    /// The unit the route made lead.
    Lead,
    /// The unit acting for the current rectification's responsible party.
    Responsible,
    /// The unit supervising the current rectification (it urges it when late).
    Supervisor,
    /// The unit scheduled for the follow-up visit.
    ScheduledVisitor,
    /// The information officer of the case's own village or community.
    OwnVillage,
}

/// A rule: one of `parties` may issue the command, and only a leader when `leader_only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Authority {
    pub(crate) parties: &'static [Party],
    pub(crate) leader_only: bool,
    /// The rule in words, for [`crate::DomainError::NotAuthorized`].
    pub(crate) rule: &'static str,
}

const fn rule(parties: &'static [Party], leader_only: bool, rule: &'static str) -> Authority {
    Authority {
        parties,
        leader_only,
        rule,
    }
}

use Party::*;

const INTAKE: Authority = rule(
    &[AnyRoom, AnyTeam, OwnLocality],
    false,
    "any room or team, or the case's own locality, decides intake; a village officer reports but does not decide",
);
const LEAD_OR_ZONE_ROOM: Authority = rule(
    &[Lead, ZoneRoom],
    false,
    "only the lead unit or a room of the case's zone may do this",
);
const LEAD_OR_ZONE_ROOM_LEADER: Authority = rule(
    &[Lead, ZoneRoom],
    true,
    "this is a decision for a leader of the lead unit or of a room of the case's zone",
);
const LEAD: Authority = rule(&[Lead], false, "only the lead unit may do this");
const LEAD_LEADER: Authority = rule(
    &[Lead],
    true,
    "this is a decision for the lead unit's leader",
);
const RESPONSIBLE: Authority = rule(
    &[Responsible],
    false,
    "only the responsible party (a department through its stationed team, or the lead unit where none is stationed) may do this",
);

/// The rule for a command on an existing case. `None` for `ReportCase`, whose rule depends on
/// the place it names rather than on a case (see `decide`).
pub(crate) fn authority(command: &Command, case: &Case) -> Option<Authority> {
    Some(match command {
        Command::ReportCase(_) => return None,
        Command::AcceptCase(_)
        | Command::DeclineCase(_)
        | Command::MergeCase(_)
        | Command::TransferCase(_) => INTAKE,
        Command::ClassifyCase(_) => rule(
            &[AnyRoom, OwnLocality],
            false,
            "a room, or the case's own locality, classifies",
        ),
        Command::RouteCase(_) => rule(
            &[AnyRoom, OwnLocalityUnlessInvolved],
            true,
            "a leader of a room, or of the case's own locality unless the case involves it, routes by level (分级)",
        ),
        Command::RecordJointConsultation(_) | Command::ScheduleFollowUpVisit(_) => {
            LEAD_OR_ZONE_ROOM
        }
        Command::ChooseDisposition(_)
        | Command::FormVerificationTeam(_)
        | Command::RecordDiscipline(_)
        | Command::OrderRectification(_) => LEAD_LEADER,
        Command::RecordFindings(_) | Command::AnswerConsultation(_) => LEAD,
        Command::SubmitRectificationPlan(_)
        | Command::ReportRectificationProgress(_)
        | Command::CompleteRectification(_) => RESPONSIBLE,
        Command::UrgeOverdue(c) => urge_authority(case, c.deadline),
        Command::RecordFollowUpVisit(_) => rule(
            &[ScheduledVisitor],
            false,
            "only the scheduled visitor records the visit",
        ),
        Command::RecordSatisfaction(_) => rule(
            &[OwnVillage, Lead],
            false,
            "the case's village officer or the lead unit asks the reporter",
        ),
        Command::ReopenCase(_) | Command::CloseCase(_) => LEAD_OR_ZONE_ROOM_LEADER,
        Command::RevealReporterContact(_) => reveal_authority(case),
        Command::EraseReporterContact(_) => rule(
            &[AnyRoom],
            true,
            "an erasure is a legal decision for a leader of a room (the district's letters-and-visits office)",
        ),
    })
}

/// Who may read a reporter's contact (need to know, docs/domain.md): the unit that must be
/// able to call the reporter back. Until the case is routed that is a room of the case's
/// zone (it takes the report in, decides intake and classifies); once routed it is the lead
/// unit alone (it handles the matter and answers the reporter). A leader or a case officer
/// (the handler) of that unit may; a village officer, the deadline watcher and every other
/// unit may not, and nobody may once the case is finished (`allowed_stages`).
fn reveal_authority(case: &Case) -> Authority {
    if case.lead_unit().is_some() {
        rule(
            &[Lead],
            false,
            "once a case is routed, only the lead unit's leader or handler may read the reporter's contact",
        )
    } else {
        rule(
            &[ZoneRoom],
            false,
            "before a case is routed, only a leader or handler of a room of the case's zone may read the reporter's contact",
        )
    }
}

/// Who may issue this command on this case, in words (the rule `decide` checks), or `None`
/// before the case exists (a report's rule depends on the place it names; docs/domain.md).
pub fn who_may_issue(command: &Command, state: &crate::state::CaseState) -> Option<&'static str> {
    state
        .case()
        .and_then(|case| authority(command, case))
        .map(|rule| rule.rule)
}

/// The first urging of a deadline is for the lead unit or a zone room (and, for a
/// rectification's deadlines, for the unit supervising it); after that, escalation goes to a
/// leader of a room of the zone.
fn urge_authority(case: &Case, deadline: DeadlineKind) -> Authority {
    let urged = case
        .deadlines
        .get(&deadline)
        .is_some_and(|d| d.urged.is_some());
    let rectification = matches!(
        deadline,
        DeadlineKind::RectificationPlan | DeadlineKind::Rectification
    );
    match (urged, rectification) {
        (true, _) => rule(
            &[ZoneRoom],
            true,
            "escalation goes to a leader of a room of the case's zone",
        ),
        (false, true) => rule(
            &[Lead, ZoneRoom, Supervisor],
            false,
            "the lead unit, a room of the case's zone or the rectification's supervisor urges it",
        ),
        (false, false) => LEAD_OR_ZONE_ROOM,
    }
}

impl Authority {
    /// Whether the rule admits this unit (whatever its role).
    pub(crate) fn admits_unit(&self, unit: &Unit, case: &Case, org: &Organisation) -> bool {
        self.parties.iter().any(|p| p.admits(unit, case, org))
    }

    /// Whether the rule admits this role (given an admitted unit). The deadline watcher acts
    /// by the rule itself, so it may urge (and escalate) wherever its unit may; it issues
    /// nothing else.
    pub(crate) fn admits_role(&self, role: Role, command: &Command) -> bool {
        match role {
            Role::Watcher => matches!(command, Command::UrgeOverdue(_)),
            _ => !self.leader_only || role == Role::Leader,
        }
    }

    /// Every actor the rule admits on this case, in the order of the rule's parties (so the
    /// first is the natural one: the lead before the zone's rooms), each unit once.
    pub(crate) fn actors(&self, case: &Case, org: &Organisation) -> Vec<Actor> {
        let mut units: Vec<&Unit> = Vec::new();
        for party in self.parties {
            for id in party.candidates(case, org) {
                let Some(unit) = org.unit(&id) else { continue };
                if !units.iter().any(|u| u.id == unit.id) && party.admits(unit, case, org) {
                    units.push(unit);
                }
            }
        }
        units
            .into_iter()
            .flat_map(|unit| {
                roles_at(unit.level)
                    .iter()
                    .filter(|r| !self.leader_only || **r == Role::Leader)
                    .map(|r| Actor::new(unit.id.clone(), *r))
            })
            .collect()
    }
}

/// The roles a person acting for a unit of this level can have (the watcher is not a
/// person: the engine's watcher takes its unit from the listed issuers).
pub(crate) fn roles_at(level: Level) -> &'static [Role] {
    match level {
        Level::Village => &[Role::InformationOfficer],
        Level::Room | Level::Team | Level::Locality => &[Role::Leader, Role::CaseOfficer],
    }
}

impl Party {
    fn admits(self, unit: &Unit, case: &Case, org: &Organisation) -> bool {
        match self {
            AnyRoom => unit.level == Level::Room,
            AnyTeam => unit.level == Level::Team,
            OwnLocality => unit.id == case.locality,
            OwnLocalityUnlessInvolved => {
                unit.id == case.locality && case.involved_locality().is_none()
            }
            ZoneRoom => unit.level == Level::Room && unit.zone == case.zone,
            Lead => case.lead_unit() == Some(&unit.id),
            Responsible => responsible_unit(case, org).as_ref() == Some(&unit.id),
            Supervisor => rectification_supervisor(case, org).as_ref() == Some(&unit.id),
            ScheduledVisitor => case
                .scheduled_visit
                .as_ref()
                .is_some_and(|v| v.visitor == unit.id),
            OwnVillage => unit.level == Level::Village && case.village.as_ref() == Some(&unit.id),
        }
    }

    /// The units that may satisfy this party (a superset is fine: `admits` filters).
    fn candidates(self, case: &Case, org: &Organisation) -> Vec<UnitId> {
        let one = |u: Option<&UnitId>| u.into_iter().cloned().collect::<Vec<_>>();
        match self {
            AnyRoom => org.units_at(Level::Room).map(|u| u.id.clone()).collect(),
            AnyTeam => org.units_at(Level::Team).map(|u| u.id.clone()).collect(),
            OwnLocality | OwnLocalityUnlessInvolved => vec![case.locality.clone()],
            ZoneRoom => org
                .zone(&case.zone)
                .map(|z| z.rooms.clone())
                .unwrap_or_default(),
            Lead => one(case.lead_unit()),
            Responsible => responsible_unit(case, org).into_iter().collect(),
            Supervisor => rectification_supervisor(case, org).into_iter().collect(),
            ScheduledVisitor => one(case.scheduled_visit.as_ref().map(|v| &v.visitor)),
            OwnVillage => one(case.village.as_ref()),
        }
    }
}

/// The unit that acts for a responsible party: a unit acts itself; a department acts through
/// the team stationed in it, or, where no team is stationed, through the case's lead unit
/// (which then records the department's answers on its behalf).
pub fn acting_unit_for(
    party: &ResponsibleParty,
    lead: Option<&UnitId>,
    org: &Organisation,
) -> Option<UnitId> {
    match party {
        ResponsibleParty::Unit(u) => Some(u.clone()),
        ResponsibleParty::Department(d) => org.team_stationed_in(d).or(lead).cloned(),
    }
}

/// The unit that supervises a responsible party's rectification: the team stationed in a
/// department; the locality of a village; otherwise the lead unit. `None` when the party or
/// its locality is unknown to the organisation.
pub fn supervisor_of(
    party: &ResponsibleParty,
    lead: &UnitId,
    org: &Organisation,
) -> Option<UnitId> {
    match party {
        ResponsibleParty::Department(d) => {
            org.department(d)?;
            Some(org.team_stationed_in(d).unwrap_or(lead).clone())
        }
        ResponsibleParty::Unit(u) => match org.level_of(u)? {
            Level::Village => org.locality_of(u).cloned(),
            _ => Some(lead.clone()),
        },
    }
}

fn responsible_unit(case: &Case, org: &Organisation) -> Option<UnitId> {
    let r = case.rectification.as_ref()?;
    acting_unit_for(&r.responsible, case.lead_unit(), org)
}

fn rectification_supervisor(case: &Case, org: &Organisation) -> Option<UnitId> {
    let r = case.rectification.as_ref()?;
    supervisor_of(&r.responsible, case.lead_unit()?, org)
}
