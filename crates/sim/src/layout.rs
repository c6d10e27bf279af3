//! The units of the run's district as the model's staff pools: one entry per unit (rooms,
//! teams, localities, villages, in the district file's order), with its people, its zone and
//! the indexes the model needs (a unit id back to its pool, the villages of a locality, the
//! zone peers that pool work).

use std::collections::HashMap;

use caseflow::District;
use caseflow::domain::{Level, UnitId, ZoneId};

use crate::scenario::Scenario;

/// One unit of the district with its staff.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The domain's id, e.g. `room-1`, `loc-chaoyang`.
    pub id: UnitId,
    /// The display name from the district file.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Zone number (1-based, in the district's zone order).
    pub zone: u32,
    /// People.
    pub staff: u32,
}

/// The district's units as staff pools.
#[derive(Debug, Clone)]
pub struct Layout {
    /// All units: rooms, teams, localities, villages, in that order.
    pub units: Vec<Unit>,
    /// Zone ids, zone `n` (1-based) at index `n - 1`.
    pub zone_ids: Vec<ZoneId>,
    /// Unit index of each locality.
    pub locality_units: Vec<u32>,
    index: HashMap<UnitId, u32>,
    villages_of_locality: Vec<Vec<u32>>,
    rooms_by_zone: Vec<Vec<u32>>,
    peers: Vec<Vec<u32>>,
}

/// The levels in their natural order.
pub const LEVELS: [Level; 4] = [Level::Room, Level::Team, Level::Locality, Level::Village];

impl Layout {
    /// The layout of `district`, staffed as the scenario says.
    pub fn new(scenario: &Scenario, district: &District) -> Layout {
        let org = &district.org;
        let zone_ids: Vec<ZoneId> = org.zones().map(|z| z.id.clone()).collect();
        let zone_no = |z: &ZoneId| {
            zone_ids
                .iter()
                .position(|x| x == z)
                .map_or(1, |i| i as u32 + 1)
        };
        let mut units = Vec::new();
        let mut index = HashMap::new();
        for level in LEVELS {
            for u in org.units_at(level) {
                let staff = scenario
                    .staffing
                    .per_unit
                    .get(u.id.as_str())
                    .copied()
                    .unwrap_or_else(|| scenario.staff_per_level(level));
                index.insert(u.id.clone(), units.len() as u32);
                units.push(Unit {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    level,
                    zone: zone_no(&u.zone),
                    staff,
                });
            }
        }
        let of_level = |l: Level| -> Vec<u32> {
            (0..units.len() as u32)
                .filter(|i| units[*i as usize].level == l)
                .collect()
        };
        let locality_units = of_level(Level::Locality);
        let villages_of_locality = locality_units
            .iter()
            .map(|l| {
                org.villages_of(&units[*l as usize].id)
                    .filter_map(|v| index.get(&v.id).copied())
                    .collect()
            })
            .collect();
        let mut rooms_by_zone = vec![Vec::new(); zone_ids.len() + 1];
        for r in of_level(Level::Room) {
            rooms_by_zone[units[r as usize].zone as usize].push(r);
        }
        let peers = peers_of(&units);
        Layout {
            units,
            zone_ids,
            locality_units,
            index,
            villages_of_locality,
            rooms_by_zone,
            peers,
        }
    }

    /// The pool index of a unit id of the district.
    pub fn index_of(&self, id: &UnitId) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The unit at a pool index.
    pub fn unit(&self, index: u32) -> &Unit {
        &self.units[index as usize]
    }

    /// The level of the unit at a pool index.
    pub fn level(&self, index: u32) -> Level {
        self.units[index as usize].level
    }

    /// The village units of the `n`-th locality.
    pub fn villages_of(&self, locality: usize) -> &[u32] {
        self.villages_of_locality
            .get(locality)
            .map_or(&[], Vec::as_slice)
    }

    /// The rooms of a zone (1-based), or every room when the zone has none.
    pub fn rooms_of_zone(&self, zone: u32) -> &[u32] {
        match self.rooms_by_zone.get(zone as usize) {
            Some(rooms) if !rooms.is_empty() => rooms,
            _ => self
                .rooms_by_zone
                .iter()
                .find(|r| !r.is_empty())
                .map_or(&[], Vec::as_slice),
        }
    }

    /// The units of the same level and zone as `unit` (itself included): the staff a zone
    /// pools for shared work.
    pub fn peers(&self, unit: u32) -> &[u32] {
        &self.peers[unit as usize]
    }

    /// Number of zones.
    pub fn zones(&self) -> u32 {
        self.zone_ids.len() as u32
    }
}

/// For every unit, the indices of the units of the same level in the same zone.
fn peers_of(units: &[Unit]) -> Vec<Vec<u32>> {
    let mut groups: HashMap<(Level, u32), Vec<u32>> = HashMap::new();
    for (i, u) in units.iter().enumerate() {
        groups.entry((u.level, u.zone)).or_default().push(i as u32);
    }
    units
        .iter()
        .map(|u| groups.get(&(u.level, u.zone)).cloned().unwrap_or_default())
        .collect()
}
