//! Who may read what. Commands are authorised by the domain alone (`decide` with the user's
//! unit and role); queries by the rules below, written once here and printed in
//! docs/server.md:
//!
//! | what | staff (unit + role) | auditor | admin |
//! |---|---|---|---|
//! | a unit's list | their own unit's; a room leader also every unit's of the room's zone | all | no |
//! | a zone's list | a room leader of that zone | all | no |
//! | a level's list | a room leader: the level's units in the room's zone | all | no |
//! | a department's list | the team stationed in it; a room leader of that team's zone | all | no |
//! | a case (state, timeline, as-of, audit, next commands) | a unit involved in it (below) | all | no |
//! | statistics, the overview | a room's staff | yes | no |
//! | verify | no | yes | yes |
//! | exports (XES, OCEL) and range audits | no | yes | no |
//! | the live feed | changes of cases they may read | all | no |
//!
//! A unit is **involved** in a case when it is the case's locality or village, a room of the
//! case's zone, holds the case on its to-do list now, has acted on it (its history), or may
//! issue one of its next commands. Nobody reads a reporter's contact through these paths:
//! every view shows only the opaque reporter handle.

use caseflow::domain::{
    Actor, Assignee, CaseState, DepartmentId, Level, NextCommand, Organisation, Role, UnitId,
    ZoneId,
};

use crate::users::Access;

/// Whether an actor is a leader of a room (who watches the room's zone).
pub fn is_room_leader(actor: &Actor, org: &Organisation) -> bool {
    actor.role == Role::Leader && org.level_of(&actor.unit) == Some(Level::Room)
}

/// The zone a room leader watches.
pub fn watched_zone<'a>(actor: &Actor, org: &'a Organisation) -> Option<&'a ZoneId> {
    if is_room_leader(actor, org) {
        org.zone_of(&actor.unit)
    } else {
        None
    }
}

/// A unit's list.
pub fn may_read_unit_list(access: &Access, unit: &UnitId, org: &Organisation) -> bool {
    match access {
        Access::Auditor => true,
        Access::Admin => false,
        Access::Staff { actor } => {
            &actor.unit == unit
                || watched_zone(actor, org).is_some_and(|z| org.zone_of(unit) == Some(z))
        }
    }
}

/// A zone's list.
pub fn may_read_zone(access: &Access, zone: &ZoneId, org: &Organisation) -> bool {
    match access {
        Access::Auditor => true,
        Access::Admin => false,
        Access::Staff { actor } => watched_zone(actor, org) == Some(zone),
    }
}

/// Which units of a level's list a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelScope<'a> {
    /// Every unit of the level (an auditor).
    Everywhere,
    /// The level's units in one zone (the room leader watching it).
    Zone(&'a ZoneId),
}

/// What of a level's list the reader sees; `None` when they may not read it at all.
pub fn level_scope<'a>(access: &Access, org: &'a Organisation) -> Option<LevelScope<'a>> {
    match access {
        Access::Auditor => Some(LevelScope::Everywhere),
        Access::Admin => None,
        Access::Staff { actor } => watched_zone(actor, org).map(LevelScope::Zone),
    }
}

/// A department's list.
pub fn may_read_department(access: &Access, department: &DepartmentId, org: &Organisation) -> bool {
    match access {
        Access::Auditor => true,
        Access::Admin => false,
        Access::Staff { actor } => {
            let team = org.team_stationed_in(department);
            team == Some(&actor.unit)
                || team.is_some_and(|t| {
                    watched_zone(actor, org).is_some_and(|z| org.zone_of(t) == Some(z))
                })
        }
    }
}

/// What decides whether a unit is involved in a case.
#[derive(Debug, Clone, Copy)]
pub struct CaseContext<'a> {
    /// The case.
    pub state: &'a CaseState,
    /// Who holds it on a to-do list now.
    pub holders: &'a [Assignee],
    /// The actors of its history (`unit/role` as recorded).
    pub history_actors: &'a [String],
    /// Its next commands.
    pub next: &'a [NextCommand],
}

/// A case and everything shown of it.
pub fn may_read_case(access: &Access, case: &CaseContext<'_>, org: &Organisation) -> bool {
    match access {
        Access::Auditor => true,
        Access::Admin => false,
        Access::Staff { actor } => is_involved(&actor.unit, case, org),
    }
}

/// Whether `unit` is involved in the case (see the module documentation).
pub fn is_involved(unit: &UnitId, case: &CaseContext<'_>, org: &Organisation) -> bool {
    let Some(c) = case.state.case() else {
        return false;
    };
    let zone_room = org.level_of(unit) == Some(Level::Room) && org.zone_of(unit) == Some(&c.zone);
    let prefix = format!("{unit}/");
    zone_room
        || &c.locality == unit
        || c.village.as_ref() == Some(unit)
        || case.holders.contains(&Assignee::Unit(unit.clone()))
        || case.history_actors.iter().any(|a| a.starts_with(&prefix))
        || case
            .next
            .iter()
            .any(|n| n.issuers.iter().any(|i| &i.unit == unit))
}

/// Statistics and the leaders' overview.
pub fn may_read_stats(access: &Access, org: &Organisation) -> bool {
    match access {
        Access::Auditor => true,
        Access::Admin => false,
        Access::Staff { actor } => org.level_of(&actor.unit) == Some(Level::Room),
    }
}

/// The integrity check.
pub fn may_verify(access: &Access) -> bool {
    matches!(access, Access::Auditor | Access::Admin)
}

/// Whole-log exports and range audits.
pub fn may_export(access: &Access) -> bool {
    matches!(access, Access::Auditor)
}

/// Whether the reader sees changes of this case on the live feed (a cheaper form of
/// [`may_read_case`] over what the feed knows: the case's zone and place and the units
/// that held it before or after the change).
pub fn may_follow(access: &Access, zone: &ZoneId, units: &[UnitId], org: &Organisation) -> bool {
    match access {
        Access::Auditor => true,
        Access::Admin => false,
        Access::Staff { actor } => {
            units.contains(&actor.unit)
                || (org.level_of(&actor.unit) == Some(Level::Room)
                    && org.zone_of(&actor.unit) == Some(zone))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caseflow::District;

    fn staff(unit: &str, role: Role) -> Access {
        Access::Staff {
            actor: Actor::new(unit, role),
        }
    }

    #[test]
    fn a_unit_reads_its_own_list_a_room_leader_its_zone_and_an_admin_none() {
        let org = District::sample().unwrap().org;
        let room = org.units_at(Level::Room).next().unwrap().clone();
        let same_zone = org
            .units()
            .find(|u| u.zone == room.zone && u.id != room.id)
            .unwrap()
            .id
            .clone();
        let other_zone = org
            .units()
            .find(|u| u.zone != room.zone)
            .unwrap()
            .id
            .clone();
        let leader = staff(room.id.as_str(), Role::Leader);
        let officer = staff(room.id.as_str(), Role::CaseOfficer);
        assert!(may_read_unit_list(&leader, &room.id, &org));
        assert!(may_read_unit_list(&leader, &same_zone, &org));
        assert!(!may_read_unit_list(&leader, &other_zone, &org));
        assert!(may_read_unit_list(&officer, &room.id, &org));
        assert!(!may_read_unit_list(&officer, &same_zone, &org));
        assert!(may_read_unit_list(&Access::Auditor, &other_zone, &org));
        assert!(!may_read_unit_list(&Access::Admin, &room.id, &org));
        assert!(may_read_zone(&leader, &room.zone, &org));
        assert!(!may_read_zone(&officer, &room.zone, &org));
        assert_eq!(
            level_scope(&leader, &org),
            Some(LevelScope::Zone(&room.zone))
        );
        assert_eq!(level_scope(&officer, &org), None);
        assert_eq!(
            level_scope(&Access::Auditor, &org),
            Some(LevelScope::Everywhere)
        );
    }

    #[test]
    fn a_department_list_is_for_its_stationed_team_and_the_zone_leaders_of_that_team() {
        let org = District::sample().unwrap().org;
        let dept = org
            .departments()
            .find(|d| d.team.is_some())
            .unwrap()
            .clone();
        let team = dept.team.clone().unwrap();
        let team_zone = org.zone_of(&team).unwrap().clone();
        let room_same = org
            .units_at(Level::Room)
            .find(|u| u.zone == team_zone)
            .unwrap();
        let room_other = org.units_at(Level::Room).find(|u| u.zone != team_zone);
        assert!(may_read_department(
            &staff(team.as_str(), Role::CaseOfficer),
            &dept.id,
            &org
        ));
        assert!(may_read_department(
            &staff(room_same.id.as_str(), Role::Leader),
            &dept.id,
            &org
        ));
        assert!(!may_read_department(
            &staff(room_same.id.as_str(), Role::CaseOfficer),
            &dept.id,
            &org
        ));
        if let Some(r) = room_other {
            assert!(!may_read_department(
                &staff(r.id.as_str(), Role::Leader),
                &dept.id,
                &org
            ));
        }
        assert!(may_read_department(&Access::Auditor, &dept.id, &org));
    }
}
