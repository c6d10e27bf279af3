//! The organisation of a district: four levels of units (室组地村), partner departments and
//! collaboration zones, loaded from TOML and validated before use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{DepartmentId, UnitId, ZoneId};

/// The four levels of the "room, team, locality, village" linkage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Supervision and inspection office (纪检监察室).
    Room,
    /// Dispatched inspection team (派出纪检监察组), stationed in departments.
    Team,
    /// Town or street discipline commission (镇/街道 纪(工)委).
    Locality,
    /// Village or community information officer (村级纪检监察信息员).
    Village,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Room => "room",
            Level::Team => "team",
            Level::Locality => "locality",
            Level::Village => "village",
        })
    }
}

/// One unit of the commission's network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Stable id, e.g. `loc-zhongshan`.
    pub id: UnitId,
    /// Display name, e.g. "中山街道纪工委".
    pub name: String,
    /// The unit's level.
    pub level: Level,
    /// For a village: its locality. For a locality: itself. Otherwise `None`.
    pub locality: Option<UnitId>,
    /// For a team: the departments it is stationed in.
    pub stationed_in: Vec<DepartmentId>,
    /// The zone of a room, team or locality; for a village, the zone of its locality.
    pub zone: ZoneId,
    /// True where the name is a sample name rather than one from the source report.
    pub sample_name: bool,
}

/// A partner or functional department.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    /// Stable id, e.g. `dept-finance`.
    pub id: DepartmentId,
    /// Display name, e.g. "区财政局".
    pub name: String,
    /// The team stationed in it, if any.
    pub team: Option<UnitId>,
}

/// A collaboration zone (办案协作区): rooms, teams and localities whose staff are pooled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// Stable id, e.g. `zone-1`.
    pub id: ZoneId,
    /// Display name.
    pub name: String,
    /// Rooms of the zone, in file order.
    pub rooms: Vec<UnitId>,
    /// Teams of the zone, in file order.
    pub teams: Vec<UnitId>,
    /// Localities of the zone, in file order.
    pub localities: Vec<UnitId>,
}

/// Errors found while loading a district file. All are caller errors (a broken file): fix the
/// file named in the message and load again; none is retryable as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OrgError {
    /// Caller error: the text is not valid TOML or does not have the expected shape.
    #[error("district file is not valid: {message}")]
    Parse {
        /// The parser's message, with line and column.
        message: String,
    },
    /// Caller error: two entries (of any kind) share an id.
    #[error("duplicate id `{id}`")]
    DuplicateId {
        /// The repeated id.
        id: String,
    },
    /// Caller error: an id is empty or uses characters other than a-z, 0-9 and '-'.
    #[error("invalid id `{id}`: ids use only a-z, 0-9 and '-' and are not empty")]
    InvalidId {
        /// The offending id.
        id: String,
    },
    /// Caller error: an entry has an empty name.
    #[error("entry `{id}` has an empty name")]
    EmptyName {
        /// The entry's id.
        id: String,
    },
    /// Caller error: a village names a locality that does not exist.
    #[error("village `{village}` belongs to unknown locality `{locality}`")]
    UnknownLocality {
        /// The village.
        village: String,
        /// The missing locality.
        locality: String,
    },
    /// Caller error: a team is stationed in a department that does not exist.
    #[error("team `{team}` is stationed in unknown department `{department}`")]
    UnknownDepartment {
        /// The team.
        team: String,
        /// The missing department.
        department: String,
    },
    /// Caller error: two teams are stationed in the same department.
    #[error("department `{department}` has two stationed teams: `{first}` and `{second}`")]
    DepartmentStationedTwice {
        /// The department.
        department: String,
        /// The first team.
        first: String,
        /// The second team.
        second: String,
    },
    /// Caller error: a zone lists a unit that does not exist.
    #[error("zone `{zone}` lists unknown unit `{unit}`")]
    UnknownZoneMember {
        /// The zone.
        zone: String,
        /// The missing unit.
        unit: String,
    },
    /// Caller error: a zone lists a unit under the wrong level (e.g. a village, or a team
    /// among the rooms).
    #[error("zone `{zone}` lists `{unit}` as a {listed_as} but it is a {actual}")]
    ZoneMemberWrongLevel {
        /// The zone.
        zone: String,
        /// The unit.
        unit: String,
        /// The list it appears in.
        listed_as: Level,
        /// Its real level.
        actual: Level,
    },
    /// Caller error: a room, team or locality belongs to no zone.
    #[error("unit `{unit}` is in no zone")]
    UnitInNoZone {
        /// The unit.
        unit: String,
    },
    /// Caller error: a room, team or locality is listed in two zones.
    #[error("unit `{unit}` is in two zones: `{first}` and `{second}`")]
    UnitInSeveralZones {
        /// The unit.
        unit: String,
        /// The first zone.
        first: String,
        /// The second zone.
        second: String,
    },
    /// Caller error: a zone has fewer localities than cross-inspection needs (the involved
    /// one plus at least one other to draw the verification team from).
    #[error("zone `{zone}` has {count} localities; cross-inspection needs at least {min}")]
    ZoneTooFewLocalities {
        /// The zone.
        zone: String,
        /// How many it has.
        count: usize,
        /// How many it needs.
        min: usize,
    },
    /// Caller error: the `[calendar]` section is invalid (bad date or time, a day both holiday
    /// and make-up working day, an offset beyond ±14 hours).
    #[error("invalid calendar: {reason}")]
    InvalidCalendar {
        /// What is wrong, naming the entry.
        reason: String,
    },
    /// Caller error: a time limit in `[time_limits]` is zero or longer than
    /// [`crate::MAX_LIMIT_DAYS`].
    #[error("time limit `{name}` must be between 1 and 2500 working days")]
    InvalidTimeLimit {
        /// The limit's name.
        name: String,
    },
    /// Caller error: a zone has no room, so nothing can lead a clue involving its localities.
    #[error("zone `{zone}` has no room to lead clues that involve its localities")]
    ZoneWithoutRoom {
        /// The zone.
        zone: String,
    },
}

/// The least number of localities a zone needs for cross-inspection.
pub const MIN_LOCALITIES_PER_ZONE: usize = 2;

/// The raw shape of the organisation part of a district file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrgFile {
    #[serde(default)]
    pub(crate) district: DistrictInfo,
    #[serde(default)]
    pub(crate) departments: Vec<DepartmentEntry>,
    #[serde(default)]
    pub(crate) rooms: Vec<UnitEntry>,
    #[serde(default)]
    pub(crate) teams: Vec<TeamEntry>,
    #[serde(default)]
    pub(crate) localities: Vec<UnitEntry>,
    #[serde(default)]
    pub(crate) villages: Vec<VillageEntry>,
    #[serde(default)]
    pub(crate) zones: Vec<ZoneEntry>,
    // The calendar and time limits live in the same file; they are read by
    // `crate::DistrictConfig` and ignored here.
    #[serde(default)]
    pub(crate) calendar: Option<toml::Value>,
    #[serde(default)]
    pub(crate) time_limits: Option<toml::Value>,
    #[serde(default)]
    pub(crate) policies: Option<toml::Value>,
}

/// General facts about the district.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictInfo {
    /// The district's name.
    #[serde(default)]
    pub name: String,
    /// A free note (e.g. where the names come from).
    #[serde(default)]
    pub note: String,
    /// The language its staff read (`zh-CN` unless the file says otherwise): the labels of
    /// every to-do list, report and page are given in it.
    #[serde(default)]
    pub language: crate::labels::Lang,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DepartmentEntry {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnitEntry {
    id: String,
    name: String,
    #[serde(default)]
    sample_name: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamEntry {
    id: String,
    name: String,
    #[serde(default)]
    stationed_in: Vec<String>,
    #[serde(default)]
    sample_name: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VillageEntry {
    id: String,
    name: String,
    locality: String,
    #[serde(default)]
    sample_name: bool,
    /// Housing estates in the village or community (e.g. 花园小区); informational.
    #[serde(default)]
    estates: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZoneEntry {
    id: String,
    name: String,
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    localities: Vec<String>,
}

/// A validated district organisation. Built only by [`Organisation::from_toml_str`] (or
/// [`crate::DistrictConfig::from_toml_str`]), so every lookup it answers is consistent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Organisation {
    info: DistrictInfo,
    units: BTreeMap<UnitId, Unit>,
    departments: BTreeMap<DepartmentId, Department>,
    zones: BTreeMap<ZoneId, Zone>,
    /// Unit ids in file order per level, so iteration is stable and meaningful.
    order: BTreeMap<Level, Vec<UnitId>>,
    estates: BTreeMap<UnitId, Vec<String>>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Every id well formed and used once in the whole file; every name non-empty.
fn check_ids(file: &OrgFile) -> Result<(), OrgError> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let entries = file
        .departments
        .iter()
        .map(|d| (&d.id, &d.name))
        .chain(
            file.rooms
                .iter()
                .chain(&file.localities)
                .map(|u| (&u.id, &u.name)),
        )
        .chain(file.teams.iter().map(|t| (&t.id, &t.name)))
        .chain(file.villages.iter().map(|v| (&v.id, &v.name)))
        .chain(file.zones.iter().map(|z| (&z.id, &z.name)));
    for (id, name) in entries {
        if !valid_id(id) {
            return Err(OrgError::InvalidId { id: id.clone() });
        }
        if !seen.insert(id) {
            return Err(OrgError::DuplicateId { id: id.clone() });
        }
        if name.trim().is_empty() {
            return Err(OrgError::EmptyName { id: id.clone() });
        }
    }
    Ok(())
}

/// The departments, each with the team stationed in it (at most one).
fn departments_with_teams(file: &OrgFile) -> Result<BTreeMap<DepartmentId, Department>, OrgError> {
    let mut departments: BTreeMap<DepartmentId, Department> = file
        .departments
        .iter()
        .map(|d| {
            let id = DepartmentId::new(&d.id);
            let department = Department {
                id: id.clone(),
                name: d.name.clone(),
                team: None,
            };
            (id, department)
        })
        .collect();
    for t in &file.teams {
        for d in &t.stationed_in {
            let Some(dept) = departments.get_mut(&DepartmentId::new(d)) else {
                return Err(OrgError::UnknownDepartment {
                    team: t.id.clone(),
                    department: d.clone(),
                });
            };
            if let Some(first) = &dept.team {
                return Err(OrgError::DepartmentStationedTwice {
                    department: d.clone(),
                    first: first.to_string(),
                    second: t.id.clone(),
                });
            }
            dept.team = Some(UnitId::new(&t.id));
        }
    }
    Ok(departments)
}

/// The level of every unit id in the file.
fn levels_of(file: &OrgFile) -> BTreeMap<String, Level> {
    let rooms = file.rooms.iter().map(|r| (r.id.clone(), Level::Room));
    let teams = file.teams.iter().map(|t| (t.id.clone(), Level::Team));
    let localities = file
        .localities
        .iter()
        .map(|l| (l.id.clone(), Level::Locality));
    let villages = file.villages.iter().map(|v| (v.id.clone(), Level::Village));
    rooms
        .chain(teams)
        .chain(localities)
        .chain(villages)
        .collect()
}

/// Every village belongs to a locality of the file.
fn check_villages(file: &OrgFile, level_of: &BTreeMap<String, Level>) -> Result<(), OrgError> {
    match file
        .villages
        .iter()
        .find(|v| level_of.get(&v.locality) != Some(&Level::Locality))
    {
        Some(v) => Err(OrgError::UnknownLocality {
            village: v.id.clone(),
            locality: v.locality.clone(),
        }),
        None => Ok(()),
    }
}

/// The zones by id, and each member unit's zone id.
type ZonesAndMembers = (BTreeMap<ZoneId, Zone>, BTreeMap<String, String>);

/// The zones, and the zone of each member: every room, team and locality in exactly one zone,
/// listed at its own level; each zone with a room and enough localities.
fn zones_of(
    file: &OrgFile,
    level_of: &BTreeMap<String, Level>,
) -> Result<ZonesAndMembers, OrgError> {
    let mut zone_of: BTreeMap<String, String> = BTreeMap::new();
    let mut zones = BTreeMap::new();
    for z in &file.zones {
        for (list, listed_as) in [
            (&z.rooms, Level::Room),
            (&z.teams, Level::Team),
            (&z.localities, Level::Locality),
        ] {
            for u in list {
                check_zone_member(z, u, listed_as, level_of)?;
                if let Some(first) = zone_of.insert(u.clone(), z.id.clone()) {
                    return Err(OrgError::UnitInSeveralZones {
                        unit: u.clone(),
                        first,
                        second: z.id.clone(),
                    });
                }
            }
        }
        let zone = checked_zone(z)?;
        zones.insert(zone.id.clone(), zone);
    }
    Ok((zones, zone_of))
}

fn check_zone_member(
    z: &ZoneEntry,
    unit: &str,
    listed_as: Level,
    level_of: &BTreeMap<String, Level>,
) -> Result<(), OrgError> {
    let Some(actual) = level_of.get(unit) else {
        return Err(OrgError::UnknownZoneMember {
            zone: z.id.clone(),
            unit: unit.to_owned(),
        });
    };
    if *actual != listed_as {
        return Err(OrgError::ZoneMemberWrongLevel {
            zone: z.id.clone(),
            unit: unit.to_owned(),
            listed_as,
            actual: *actual,
        });
    }
    Ok(())
}

fn checked_zone(z: &ZoneEntry) -> Result<Zone, OrgError> {
    if z.rooms.is_empty() {
        return Err(OrgError::ZoneWithoutRoom { zone: z.id.clone() });
    }
    if z.localities.len() < MIN_LOCALITIES_PER_ZONE {
        return Err(OrgError::ZoneTooFewLocalities {
            zone: z.id.clone(),
            count: z.localities.len(),
            min: MIN_LOCALITIES_PER_ZONE,
        });
    }
    let ids = |v: &Vec<String>| v.iter().map(UnitId::new).collect::<Vec<_>>();
    Ok(Zone {
        id: ZoneId::new(&z.id),
        name: z.name.clone(),
        rooms: ids(&z.rooms),
        teams: ids(&z.teams),
        localities: ids(&z.localities),
    })
}

type UnitsInOrder = (
    BTreeMap<UnitId, Unit>,
    BTreeMap<Level, Vec<UnitId>>,
    BTreeMap<UnitId, Vec<String>>,
);

/// The units in file order per level, each in its zone (a village in its locality's), and
/// the housing estates of the villages that list them.
fn units_of(file: &OrgFile, zone_of: &BTreeMap<String, String>) -> Result<UnitsInOrder, OrgError> {
    let zone_for = |id: &str| -> Result<ZoneId, OrgError> {
        zone_of
            .get(id)
            .map(ZoneId::new)
            .ok_or_else(|| OrgError::UnitInNoZone {
                unit: id.to_owned(),
            })
    };
    let unit = |id: &str, name: &str, level, locality: Option<&str>, zone_key: &str, sample| {
        Ok::<_, OrgError>(Unit {
            id: UnitId::new(id),
            name: name.to_owned(),
            level,
            locality: locality.map(UnitId::new),
            stationed_in: Vec::new(),
            zone: zone_for(zone_key)?,
            sample_name: sample,
        })
    };
    let mut all = Vec::new();
    for r in &file.rooms {
        all.push(unit(
            &r.id,
            &r.name,
            Level::Room,
            None,
            &r.id,
            r.sample_name,
        )?);
    }
    for t in &file.teams {
        let mut team = unit(&t.id, &t.name, Level::Team, None, &t.id, t.sample_name)?;
        team.stationed_in = t.stationed_in.iter().map(DepartmentId::new).collect();
        all.push(team);
    }
    for l in &file.localities {
        all.push(unit(
            &l.id,
            &l.name,
            Level::Locality,
            Some(&l.id),
            &l.id,
            l.sample_name,
        )?);
    }
    for v in &file.villages {
        let village = Some(v.locality.as_str());
        all.push(unit(
            &v.id,
            &v.name,
            Level::Village,
            village,
            &v.locality,
            v.sample_name,
        )?);
    }
    let estates = file
        .villages
        .iter()
        .filter(|v| !v.estates.is_empty())
        .map(|v| (UnitId::new(&v.id), v.estates.clone()))
        .collect();
    let mut units = BTreeMap::new();
    let mut order: BTreeMap<Level, Vec<UnitId>> = BTreeMap::new();
    for u in all {
        order.entry(u.level).or_default().push(u.id.clone());
        units.insert(u.id.clone(), u);
    }
    Ok((units, order, estates))
}

impl Organisation {
    /// Parses and validates a district file. Never panics, whatever the input.
    pub fn from_toml_str(text: &str) -> Result<Organisation, OrgError> {
        let file: OrgFile = toml::from_str(text).map_err(|e| OrgError::Parse {
            message: e.to_string(),
        })?;
        Organisation::from_file(file)
    }

    /// Validates a parsed district file in named steps; each step's refusals come in the
    /// order a reader of the file would meet them (ids, stations, villages, zones, units).
    pub(crate) fn from_file(file: OrgFile) -> Result<Organisation, OrgError> {
        check_ids(&file)?;
        let departments = departments_with_teams(&file)?;
        let level_of = levels_of(&file);
        check_villages(&file, &level_of)?;
        let (zones, zone_of) = zones_of(&file, &level_of)?;
        let (units, order, estates) = units_of(&file, &zone_of)?;
        Ok(Organisation {
            info: file.district,
            units,
            departments,
            zones,
            order,
            estates,
        })
    }

    /// The district's name and note.
    pub fn info(&self) -> &DistrictInfo {
        &self.info
    }

    /// A unit by id.
    pub fn unit(&self, id: &UnitId) -> Option<&Unit> {
        self.units.get(id)
    }

    /// The level of a unit.
    pub fn level_of(&self, id: &UnitId) -> Option<Level> {
        self.units.get(id).map(|u| u.level)
    }

    /// All units, ordered by id.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.values()
    }

    /// The units of one level, in file order.
    pub fn units_at(&self, level: Level) -> impl Iterator<Item = &Unit> {
        self.order
            .get(&level)
            .into_iter()
            .flatten()
            .filter_map(|id| self.units.get(id))
    }

    /// A department by id.
    pub fn department(&self, id: &DepartmentId) -> Option<&Department> {
        self.departments.get(id)
    }

    /// All departments, ordered by id.
    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    /// A zone by id.
    pub fn zone(&self, id: &ZoneId) -> Option<&Zone> {
        self.zones.get(id)
    }

    /// All zones, ordered by id.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values()
    }

    /// The team stationed in a department, if any.
    pub fn team_stationed_in(&self, department: &DepartmentId) -> Option<&UnitId> {
        self.departments.get(department)?.team.as_ref()
    }

    /// The locality a village belongs to (a locality answers itself).
    pub fn locality_of(&self, unit: &UnitId) -> Option<&UnitId> {
        self.units.get(unit)?.locality.as_ref()
    }

    /// The zone of a unit (a village is in its locality's zone).
    pub fn zone_of(&self, unit: &UnitId) -> Option<&ZoneId> {
        self.units.get(unit).map(|u| &u.zone)
    }

    /// The villages of a locality, in file order.
    pub fn villages_of<'a>(&'a self, locality: &'a UnitId) -> impl Iterator<Item = &'a Unit> + 'a {
        self.units_at(Level::Village)
            .filter(move |v| v.locality.as_ref() == Some(locality))
    }

    /// The housing estates listed for a village or community.
    pub fn estates_of(&self, village: &UnitId) -> &[String] {
        self.estates.get(village).map(Vec::as_slice).unwrap_or(&[])
    }
}
