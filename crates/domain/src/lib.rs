//! # caseflow-domain
//!
//! The pure case domain of Caseflow: the organisation of a district (室组地村, zones, partner
//! departments), its working calendar and time limits, and the life of a case as
//! `decide(&CaseState, &Command, &Context) -> Result<Vec<CaseEvent>, DomainError>` and
//! `evolve(&mut CaseState, &CaseEvent)`.
//!
//! This crate does no IO, spawns nothing, reads no clock and draws no random numbers: time,
//! ids and the organisation come in as arguments, so the same inputs always give the same
//! events. See `docs/domain.md` for the lifecycle, the authorization table, the time limits
//! and the cross-inspection rule.

mod authority;
mod calendar;
mod command;
mod config;
mod decide;
mod describe;
mod error;
mod event;
mod evolve;
mod ids;
mod labels;
mod model;
mod next;
mod obligations;
mod org;
mod policy;
mod state;
mod upcast;
pub mod walk;

pub use authority::{acting_unit_for, supervisor_of, who_may_issue};
pub use calendar::Calendar;
pub use command::*;
pub use config::{DistrictConfig, MAX_LIMIT_DAYS};
pub use decide::{Context, allowed_stages, decide, latest_visit, urgeable};
pub use describe::describe;
pub use error::DomainError;
pub use event::*;
pub use evolve::{Misfit, evolve, evolve_checked, misfit};
pub use ids::{CaseId, CaseNumber, DepartmentId, ReporterHandle, UnitId, ZoneId};
pub use labels::{Label, Lang};
pub use model::*;
pub use next::{
    CommandOptions, NextCommand, NextContext, command_options, next_commands, next_commands_of,
    suggested_category,
};
pub use obligations::{Action, Assignee, Obligation, ObligationError, Priority, obligations};
pub use org::{
    Department, DistrictInfo, Level, MIN_LOCALITIES_PER_ZONE, OrgError, Organisation, Unit, Zone,
};
pub use policy::{CrossInspectionScope, Policies, RouteInput, RouteSuggestion, TimeLimits};
pub use state::{
    Case, CaseState, Classification, Deadline, JointConsultation, Rectification,
    RectificationStatus, Route, ScheduledVisit, Stage, Urging, VerificationTeam,
};
pub use upcast::{PayloadUpcaster, UPCASTERS};

/// The sample district shipped as `examples/district.toml` (5 rooms, 5 teams, 10 localities,
/// 103 villages and communities, 3 zones), embedded so tests, examples and simulations in any
/// crate can load it without touching the file system.
pub const SAMPLE_DISTRICT_TOML: &str = include_str!("../../../examples/district.toml");

impl DistrictConfig {
    /// Loads the embedded sample district. It is validated by this crate's tests, so an error
    /// here means the embedded file was damaged at build time.
    pub fn sample() -> Result<DistrictConfig, OrgError> {
        DistrictConfig::from_toml_str(SAMPLE_DISTRICT_TOML)
    }
}

/// Re-exported so callers build times and ids with exactly the versions the domain uses.
pub use chrono;
/// Re-exported so callers build case ids and reporter handles with the domain's `uuid`.
pub use uuid;
