//! A whole district file: organisation, calendar, time limits and policies in one TOML text.

use std::collections::BTreeSet;

use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;

use crate::calendar::Calendar;
use crate::org::{OrgError, OrgFile, Organisation};
use crate::policy::{CrossInspectionScope, Policies, TimeLimits};

/// Everything a district file configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistrictConfig {
    /// The organisation.
    pub org: Organisation,
    /// The working calendar (default: CST, weekends only).
    pub calendar: Calendar,
    /// Time limits and routing policy (default: [`Policies::default`]).
    pub policies: Policies,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarSection {
    #[serde(default)]
    utc_offset_minutes: Option<i32>,
    #[serde(default)]
    day_end: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    makeup_workdays: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoliciesSection {
    #[serde(default)]
    cross_inspection: CrossInspectionScope,
}

fn parse_err(e: impl std::fmt::Display) -> OrgError {
    OrgError::Parse {
        message: e.to_string(),
    }
}

fn dates(list: &[String], what: &str) -> Result<BTreeSet<NaiveDate>, OrgError> {
    list.iter()
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| OrgError::InvalidCalendar {
                reason: format!("{what} `{s}` is not a date like 2026-10-01"),
            })
        })
        .collect()
}

fn calendar(value: Option<toml::Value>) -> Result<Calendar, OrgError> {
    let Some(value) = value else {
        return Ok(Calendar::default());
    };
    let section: CalendarSection = value.try_into().map_err(parse_err)?;
    let mut cal = Calendar::default();
    if let Some(off) = section.utc_offset_minutes {
        if !(-14 * 60..=14 * 60).contains(&off) {
            return Err(OrgError::InvalidCalendar {
                reason: format!("utc_offset_minutes {off} is beyond ±840"),
            });
        }
        cal.utc_offset_minutes = off;
    }
    if let Some(end) = section.day_end {
        cal.day_end = NaiveTime::parse_from_str(&end, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(&end, "%H:%M:%S"))
            .map_err(|_| OrgError::InvalidCalendar {
                reason: format!("day_end `{end}` is not a time like 17:30"),
            })?;
    }
    cal.holidays = dates(&section.holidays, "holiday")?;
    cal.makeup_workdays = dates(&section.makeup_workdays, "make-up working day")?;
    if let Some(both) = cal.holidays.intersection(&cal.makeup_workdays).next() {
        return Err(OrgError::InvalidCalendar {
            reason: format!("{both} is both a holiday and a make-up working day"),
        });
    }
    Ok(cal)
}

/// The longest time limit a district file may set (about ten years of working days); longer
/// limits are certainly typos and would make working-day arithmetic slow.
pub const MAX_LIMIT_DAYS: u32 = 2500;

impl DistrictConfig {
    /// Parses and validates a whole district file. Never panics, whatever the input.
    pub fn from_toml_str(text: &str) -> Result<DistrictConfig, OrgError> {
        let mut file: OrgFile = toml::from_str(text).map_err(parse_err)?;
        let cal = calendar(file.calendar.take())?;
        let limits: TimeLimits = match file.time_limits.take() {
            Some(v) => v.try_into().map_err(parse_err)?,
            None => TimeLimits::default(),
        };
        if let Some((name, _)) = limits
            .named()
            .into_iter()
            .find(|(_, d)| *d == 0 || *d > MAX_LIMIT_DAYS)
        {
            return Err(OrgError::InvalidTimeLimit {
                name: name.to_owned(),
            });
        }
        let section: PoliciesSection = match file.policies.take() {
            Some(v) => v.try_into().map_err(parse_err)?,
            None => PoliciesSection::default(),
        };
        let org = Organisation::from_file(file)?;
        Ok(DistrictConfig {
            org,
            calendar: cal,
            policies: Policies {
                limits,
                cross_inspection: section.cross_inspection,
            },
        })
    }
}
