//! The deadline index: a read model of every open deadline of every open case, folded from
//! the log like any projection and persisted in the engine's read-model store.

use std::collections::BTreeMap;

use caseflow_domain::{CaseId, DeadlineKind};
use caseflow_projections::{
    Applied, ApplyFailure, CaseDocuments, CaseJsonTable, ChangedCases, Column, DocumentPersistence,
    Projection, ProjectionError, TableSpec,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Name of the engine's deadline read model.
pub const DEADLINE_PROJECTION: &str = "engine_deadlines";

/// Where a persistent engine keeps each case's open deadlines.
const DEADLINE_TABLE: CaseJsonTable = CaseJsonTable::new(
    DEADLINE_PROJECTION,
    "engine_deadlines",
    &[Column::text("case_id"), Column::text("deadlines")],
);

/// One open deadline as the watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedDeadline {
    /// Which time limit.
    pub kind: DeadlineKind,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// After a first urging: when it may be escalated.
    pub respond_by: Option<DateTime<Utc>>,
    /// Whether it was escalated already.
    pub escalated: bool,
}

impl WatchedDeadline {
    /// Whether, at `now`, this deadline needs an urging (`Some(false)`) or an escalation
    /// (`Some(true)`).
    pub fn needs_urging(&self, now: DateTime<Utc>) -> Option<bool> {
        match (self.respond_by, self.escalated) {
            (None, _) if now > self.due_at => Some(false),
            (Some(respond_by), false) if now > respond_by => Some(true),
            _ => None,
        }
    }
}

/// Read model of every open deadline of every open case (the watcher's index).
#[derive(Debug, Default)]
pub struct DeadlineProjection {
    cases: BTreeMap<CaseId, Vec<WatchedDeadline>>,
    /// Cases changed since the last save (only while a SQLite runner tracks changes).
    changed: ChangedCases,
}

/// Equal when the read models hold the same deadlines (change tracking is bookkeeping).
impl PartialEq for DeadlineProjection {
    fn eq(&self, other: &Self) -> bool {
        self.cases == other.cases
    }
}

impl DeadlineProjection {
    /// An empty read model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every (case, deadline, escalate?) that needs urging at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<(CaseId, WatchedDeadline, bool)> {
        self.cases
            .iter()
            .flat_map(|(case, deadlines)| {
                deadlines
                    .iter()
                    .filter_map(move |d| d.needs_urging(now).map(|esc| (*case, d.clone(), esc)))
            })
            .collect()
    }

    /// Open deadlines of one case.
    pub fn for_case(&self, case_id: &CaseId) -> &[WatchedDeadline] {
        self.cases.get(case_id).map_or(&[], Vec::as_slice)
    }

    /// The cases with an open deadline that was urged at least once.
    pub fn urged_cases(&self) -> std::collections::HashSet<CaseId> {
        self.cases
            .iter()
            .filter(|(_, deadlines)| deadlines.iter().any(|d| d.respond_by.is_some()))
            .map(|(case, _)| *case)
            .collect()
    }

    /// Number of cases with at least one open deadline.
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }
}

impl Projection for DeadlineProjection {
    fn name(&self) -> &'static str {
        DEADLINE_PROJECTION
    }

    fn apply(&mut self, applied: &Applied<'_>) -> Result<(), ApplyFailure> {
        let deadlines: Vec<WatchedDeadline> = if applied.state.is_open() {
            applied
                .state
                .deadlines()
                .map(|d| WatchedDeadline {
                    kind: d.kind,
                    due_at: d.due_at,
                    respond_by: d.urged.as_ref().map(|u| u.respond_by),
                    escalated: d.escalated.is_some(),
                })
                .collect()
        } else {
            Vec::new()
        };
        if deadlines.is_empty() {
            self.cases.remove(&applied.case_id);
        } else {
            self.cases.insert(applied.case_id, deadlines);
        }
        self.changed.mark(applied.case_id);
        Ok(())
    }

    fn reset(&mut self) {
        self.reset_documents();
    }

    fn tables(&self) -> &'static [TableSpec] {
        &[DEADLINE_TABLE.spec]
    }

    fn documents(&mut self) -> Option<&mut dyn DocumentPersistence> {
        Some(self)
    }
}

impl CaseDocuments for DeadlineProjection {
    type Document = Vec<WatchedDeadline>;

    fn table(&self) -> &CaseJsonTable {
        &DEADLINE_TABLE
    }

    fn changes(&mut self) -> &mut ChangedCases {
        &mut self.changed
    }

    fn document(&self, case_id: &CaseId) -> Option<&Vec<WatchedDeadline>> {
        self.cases.get(case_id)
    }

    fn clear_documents(&mut self) {
        self.cases.clear();
    }

    fn restore(
        &mut self,
        case_id: CaseId,
        deadlines: Vec<WatchedDeadline>,
    ) -> Result<(), ProjectionError> {
        self.cases.insert(case_id, deadlines);
        Ok(())
    }
}
