//! Caseflow: an event-sourced case-workflow engine.
//!
//! This facade re-exports the pure domain; the engine (store, projections, clock and id
//! injection) is added on top of it.

pub use caseflow_domain as domain;
