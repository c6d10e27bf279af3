//! Identifiers. Case ids are UUIDs chosen by the caller (the domain makes no ids); unit,
//! department and zone ids are short human-readable strings taken from the district file.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The identity of one case (one event stream). Chosen by the caller, never by the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(pub Uuid);

impl CaseId {
    /// Wraps a UUID as a case id.
    pub fn new(id: Uuid) -> Self {
        CaseId(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The opaque handle of a reporter. It is the only reporter datum that projections, logs and
/// exports may show; the contact itself stays inside [`crate::ProtectedContact`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReporterHandle(pub Uuid);

impl fmt::Display for ReporterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Builds the id from any string-like value.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
    };
}

string_id!(
    /// A unit of the commission at any of the four levels, e.g. `room-1`, `team-2`,
    /// `loc-zhongshan`, `vil-wenhuagong`.
    UnitId
);
string_id!(
    /// A partner or functional department, e.g. `dept-finance`.
    DepartmentId
);
string_id!(
    /// A collaboration zone (办案协作区), e.g. `zone-1`.
    ZoneId
);

/// A case's human number: the year it was reported in (district time) and its place among
/// that year's reports in the order the log recorded them, shown as `2026-0042`. Short, stable
/// and unique: an append-only log only ever adds later reports, so a number once shown never
/// changes, and every engine instance reading the same log gives the same numbers without
/// coordinating. The case id (a UUID) stays the identity; the number is for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CaseNumber {
    /// The year of the report, in district time.
    pub year: i32,
    /// 1 for the first report of the year, then one more for each.
    pub seq: u32,
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:04}", self.year, self.seq)
    }
}

impl std::str::FromStr for CaseNumber {
    type Err = &'static str;

    /// Parses `2026-0042` (or `2026-42`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (year, seq) = s
            .trim()
            .split_once('-')
            .ok_or("a case number is YEAR-NUMBER")?;
        let year = year
            .parse()
            .map_err(|_| "the year of a case number is a number")?;
        let seq = seq.parse().map_err(|_| "a case number ends in a number")?;
        if seq == 0 {
            return Err("case numbers start at 1");
        }
        Ok(CaseNumber { year, seq })
    }
}
