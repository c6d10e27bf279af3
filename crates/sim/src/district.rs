//! The one district of a run. The scenario either generates it (`[organisation]`: rooms,
//! teams each stationed in its own department, localities, villages, zones) or names a
//! district file (`simulation.district`, or the caller's override); the scenario's calendar,
//! time-limit and cross-inspection settings are then written into that district, and the
//! model and the engine both run on the result. A setting the district cannot take is a
//! field-named scenario error, never a silent default.
//!
//! Everything goes through the domain's own loader (`District::from_toml_str`), so the
//! organisation rules (ids, a room and two localities per zone, ...) are the domain's.

use std::path::PathBuf;

use caseflow::domain::{Channel, Level, OrgError};
use caseflow::{District, EngineError};
use toml::{Table, Value};

use crate::error::ScenarioError;
use crate::scenario::{GeneratedCounts, Scenario};

/// Where the district of a run comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistrictChoice {
    /// As the scenario says: its `simulation.district` file, or else generated from
    /// `[organisation]`.
    Scenario,
    /// This district file instead of the scenario's (e.g. `--district`).
    File(PathBuf),
    /// This district text (e.g. the sample district embedded in the binary), under a name
    /// for messages.
    Text {
        /// Shown in error messages.
        name: String,
        /// The district TOML.
        text: String,
    },
}

/// Builds the district the run uses (see the module documentation).
pub fn build(scenario: &Scenario, choice: &DistrictChoice) -> Result<District, ScenarioError> {
    let (mut value, origin) = base(scenario, choice)?;
    let table = value.as_table_mut().ok_or_else(|| ScenarioError::Invalid {
        field: origin.clone(),
        reason: "the district file is not a TOML table".into(),
    })?;
    if origin != "organisation" {
        if let Some(zones) = scenario.organisation.zones {
            rezone(table, zones);
        }
    }
    apply_calendar(scenario, table);
    apply_time_limits(scenario, table);
    let scope = crate::scenario::snake_name(&scenario.policies.cross_inspection);
    with_section(table, "policies", |p| {
        p.insert("cross_inspection".into(), Value::String(scope));
    });
    let text = toml::to_string(&value).map_err(|e| ScenarioError::Invalid {
        field: origin.clone(),
        reason: e.to_string(),
    })?;
    let district = District::from_toml_str(&text).map_err(|e| district_error(&origin, e))?;
    check_references(scenario, &district)?;
    Ok(district)
}

/// The district's TOML before the scenario's changes, and the field errors are reported on.
fn base(scenario: &Scenario, choice: &DistrictChoice) -> Result<(Value, String), ScenarioError> {
    let from_file = |path: PathBuf| -> Result<(Value, String), ScenarioError> {
        let field = "simulation.district".to_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| ScenarioError::Invalid {
            field: field.clone(),
            reason: format!("cannot read the district file {}: {e}", path.display()),
        })?;
        Ok((parse(&text, &field, &path.display().to_string())?, field))
    };
    match choice {
        DistrictChoice::File(path) => {
            refuse_generated_fields(scenario)?;
            from_file(std::path::absolute(path).unwrap_or(path.clone()))
        }
        DistrictChoice::Text { name, text } => {
            refuse_generated_fields(scenario)?;
            let field = "simulation.district".to_owned();
            Ok((parse(text, &field, name)?, field))
        }
        DistrictChoice::Scenario => match scenario.district_path() {
            Some(path) => from_file(path),
            None => Ok((
                Value::Table(generated(scenario)?),
                "organisation".to_owned(),
            )),
        },
    }
}

fn parse(text: &str, field: &str, name: &str) -> Result<Value, ScenarioError> {
    toml::from_str(text).map_err(|e| ScenarioError::Invalid {
        field: field.to_owned(),
        reason: format!("the district file {name} is not valid TOML: {e}"),
    })
}

/// A district file replaces the generated organisation, so the generating fields must not be
/// there (they would be ignored).
fn refuse_generated_fields(scenario: &Scenario) -> Result<(), ScenarioError> {
    crate::scenario::refuse_generated_organisation(&scenario.organisation)
}

fn district_error(origin: &str, e: EngineError) -> ScenarioError {
    let (field, reason) = match &e {
        EngineError::District(OrgError::InvalidCalendar { .. }) => ("calendar", e.to_string()),
        EngineError::District(OrgError::InvalidTimeLimit { .. }) => ("time_limits", e.to_string()),
        _ => (origin, e.to_string()),
    };
    ScenarioError::Invalid {
        field: field.to_owned(),
        reason,
    }
}

/// Runs `f` on the sub-table `name` of `table` (created, or replacing a non-table value).
fn with_section(table: &mut Table, name: &str, f: impl FnOnce(&mut Table)) {
    let mut section = match table.remove(name) {
        Some(Value::Table(t)) => t,
        _ => Table::new(),
    };
    f(&mut section);
    table.insert(name.to_owned(), Value::Table(section));
}

fn apply_calendar(scenario: &Scenario, table: &mut Table) {
    let cal = &scenario.calendar;
    let dates = |d: &[chrono::NaiveDate]| {
        Value::Array(d.iter().map(|d| Value::String(d.to_string())).collect())
    };
    with_section(table, "calendar", |section| {
        if let Some(off) = cal.utc_offset_hours {
            section.insert(
                "utc_offset_minutes".into(),
                Value::Integer(i64::from(off) * 60),
            );
        }
        if let Some(end) = cal.work_end_hour {
            let minutes = (end * 60.0).round() as i64;
            let text = if minutes >= 24 * 60 {
                "23:59:59".to_owned()
            } else {
                format!("{:02}:{:02}", minutes / 60, minutes % 60)
            };
            section.insert("day_end".into(), Value::String(text));
        }
        if let Some(h) = &cal.holidays {
            section.insert("holidays".into(), dates(h));
        }
        if let Some(m) = &cal.makeup_days {
            section.insert("makeup_workdays".into(), dates(m));
        }
    });
}

fn apply_time_limits(scenario: &Scenario, table: &mut Table) {
    if scenario.time_limits.is_empty() {
        return;
    }
    with_section(table, "time_limits", |section| {
        for (name, days) in &scenario.time_limits {
            section.insert(name.clone(), Value::Integer(i64::from(*days)));
        }
    });
}

/// Lays the file's rooms, teams and localities out round-robin over `zones` zones (when the
/// file has another number of zones).
fn rezone(table: &mut Table, zones: u32) {
    let have = table
        .get("zones")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if have == zones as usize {
        return;
    }
    let ids = |key: &str| -> Vec<String> {
        table
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.get("id")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let layout = ZoneLayout {
        zones,
        rooms: ids("rooms"),
        teams: ids("teams"),
        localities: ids("localities"),
    };
    table.insert("zones".into(), layout.round_robin(&|_| None));
}

struct ZoneLayout {
    zones: u32,
    rooms: Vec<String>,
    teams: Vec<String>,
    localities: Vec<String>,
}

impl ZoneLayout {
    /// The `[[zones]]` array: unit `i` of each level goes to zone `i % zones + 1` unless
    /// `fixed` names its zone.
    fn round_robin(&self, fixed: &dyn Fn(&str) -> Option<u32>) -> Value {
        let zone_of = |i: usize, id: &str| fixed(id).unwrap_or(i as u32 % self.zones + 1);
        let pick = |all: &[String], z: u32| -> Value {
            Value::Array(
                all.iter()
                    .enumerate()
                    .filter(|(i, id)| zone_of(*i, id) == z)
                    .map(|(_, id)| Value::String(id.clone()))
                    .collect(),
            )
        };
        let zones = (1..=self.zones)
            .map(|z| {
                let mut t = Table::new();
                t.insert("id".into(), format!("zone-{z}").into());
                t.insert("name".into(), format!("第{z}办案协作区").into());
                t.insert("rooms".into(), pick(&self.rooms, z));
                t.insert("teams".into(), pick(&self.teams, z));
                t.insert("localities".into(), pick(&self.localities, z));
                Value::Table(t)
            })
            .collect();
        Value::Array(zones)
    }
}

/// The generated district of `[organisation]`: `room-N`, `team-N` (stationed in `dept-N`),
/// `loc-N`, `vil-N` (village N in locality N round-robin), zones round-robin or as
/// `zone_of` says.
fn generated(scenario: &Scenario) -> Result<Table, ScenarioError> {
    let counts = scenario.organisation.counts();
    let GeneratedCounts {
        zones,
        rooms,
        teams,
        localities,
        villages,
    } = counts;
    let ids = |prefix: &str, n: u32| -> Vec<String> {
        (1..=n).map(|i| format!("{prefix}-{i}")).collect()
    };
    let layout = ZoneLayout {
        zones,
        rooms: ids("room", rooms),
        teams: ids("team", teams),
        localities: ids("loc", localities),
    };
    let fixed = zone_overrides(scenario, &layout)?;
    let mut t = Table::new();
    let mut info = Table::new();
    info.insert("name".into(), "模拟区 (generated district)".into());
    info.insert(
        "note".into(),
        "generated from a simulation scenario's [organisation]".into(),
    );
    t.insert("district".into(), Value::Table(info));
    let entries =
        |ids: &[String], name: &dyn Fn(usize) -> String, extra: &dyn Fn(usize, &mut Table)| {
            Value::Array(
                ids.iter()
                    .enumerate()
                    .map(|(i, id)| {
                        let mut e = Table::new();
                        e.insert("id".into(), id.clone().into());
                        e.insert("name".into(), name(i + 1).into());
                        extra(i, &mut e);
                        Value::Table(e)
                    })
                    .collect(),
            )
        };
    let sample = |_: usize, e: &mut Table| {
        e.insert("sample_name".into(), true.into());
    };
    let departments = ids("dept", teams);
    t.insert(
        "departments".into(),
        entries(&departments, &|i| format!("第{i}职能部门"), &|_, _| {}),
    );
    t.insert(
        "rooms".into(),
        entries(&layout.rooms, &|i| format!("第{i}纪检监察室"), &sample),
    );
    t.insert(
        "teams".into(),
        entries(
            &layout.teams,
            &|i| format!("第{i}派出纪检监察组"),
            &|i, e| {
                sample(i, e);
                e.insert(
                    "stationed_in".into(),
                    Value::Array(vec![Value::String(format!("dept-{}", i + 1))]),
                );
            },
        ),
    );
    t.insert(
        "localities".into(),
        entries(&layout.localities, &|i| format!("第{i}街道纪工委"), &sample),
    );
    let village_ids = ids("vil", villages);
    t.insert(
        "villages".into(),
        entries(&village_ids, &|i| format!("第{i}社区"), &|i, e| {
            sample(i, e);
            e.insert(
                "locality".into(),
                format!("loc-{}", i as u32 % localities.max(1) + 1).into(),
            );
        }),
    );
    t.insert(
        "zones".into(),
        layout.round_robin(&|id| fixed.get(id).copied()),
    );
    Ok(t)
}

/// `organisation.zone_of`, checked against the generated units and zones.
fn zone_overrides(
    scenario: &Scenario,
    layout: &ZoneLayout,
) -> Result<std::collections::BTreeMap<String, u32>, ScenarioError> {
    let mut fixed = std::collections::BTreeMap::new();
    for (unit, zone) in &scenario.organisation.zone_of {
        let field = format!("organisation.zone_of.{unit}");
        let known = layout
            .rooms
            .iter()
            .chain(&layout.teams)
            .chain(&layout.localities)
            .any(|u| u == unit);
        if !known {
            return Err(ScenarioError::Invalid {
                field,
                reason: "names no room, team or locality of the generated organisation \
                         (ids are room-N, team-N, loc-N)"
                    .into(),
            });
        }
        let n = zone
            .strip_prefix("zone-")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=layout.zones).contains(n));
        let Some(n) = n else {
            return Err(ScenarioError::Invalid {
                field,
                reason: format!(
                    "zone `{zone}` is not one of zone-1 .. zone-{}",
                    layout.zones
                ),
            });
        };
        fixed.insert(unit.clone(), n);
    }
    Ok(fixed)
}

/// Names in the scenario that must exist in the district: staffed units, weighted
/// localities, the departments a department transfer or a department case needs.
fn check_references(scenario: &Scenario, district: &District) -> Result<(), ScenarioError> {
    let org = &district.org;
    let invalid = |field: String, reason: String| Err(ScenarioError::Invalid { field, reason });
    for unit in scenario.staffing.per_unit.keys() {
        if org.unit(&unit.as_str().into()).is_none() {
            return invalid(
                format!("staffing.per_unit.{unit}"),
                "names no unit of the run's district".into(),
            );
        }
    }
    for id in scenario.arrivals.locality_weights.keys() {
        if org.level_of(&id.as_str().into()) != Some(Level::Locality) {
            return invalid(
                format!("arrivals.locality_weights.{id}"),
                "names no locality of the run's district".into(),
            );
        }
    }
    let localities = org.units_at(Level::Locality).count();
    let weighted_out = org.units_at(Level::Locality).all(|l| {
        scenario
            .arrivals
            .locality_weights
            .get(l.id.as_str())
            .is_some_and(|w| *w == 0.0)
    });
    if localities == 0 || weighted_out {
        return invalid(
            "arrivals.locality_weights".into(),
            "leaves no locality for cases to come from".into(),
        );
    }
    let departments = org.departments().count();
    for (i, ch) in scenario.arrivals.channel.iter().enumerate() {
        if ch.name == Channel::DepartmentTransfer && departments == 0 {
            return invalid(
                format!("arrivals.channel[{i}].name"),
                "a department transfer needs a department in the run's district".into(),
            );
        }
    }
    Ok(())
}
