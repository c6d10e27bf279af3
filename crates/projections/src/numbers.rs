//! The case numbers people use (`2026-0042`): each report's place among its year's reports, in
//! log order (see [`CaseNumber`]). A read model rather than a field of the event, so numbers
//! need no coordination between engine instances and never leave a gap; the log's order is
//! what makes them stable.

use std::collections::BTreeMap;

use caseflow_domain::{Calendar, CaseEvent, CaseId, CaseNumber};
use chrono::Datelike;

use crate::error::{ApplyFailure, ProjectionError};
use crate::persist::{
    CaseDocuments, CaseJsonTable, ChangedCases, Column, DocumentPersistence, TableSpec,
};
use crate::projection::{Applied, Projection};

/// Name of the case-number read model.
pub const CASE_NUMBERS: &str = "case_numbers";

const NUMBER_TABLE: CaseJsonTable = CaseJsonTable::new(
    CASE_NUMBERS,
    "case_numbers",
    &[Column::text("case_id"), Column::text("number")],
);

/// Every case's number, and the last number given in each year.
#[derive(Debug, Clone, Default)]
pub struct CaseNumbers {
    calendar: Calendar,
    numbers: BTreeMap<CaseId, CaseNumber>,
    last_in_year: BTreeMap<i32, u32>,
    changed: ChangedCases,
}

/// Equal when the same cases have the same numbers (change tracking is bookkeeping).
impl PartialEq for CaseNumbers {
    fn eq(&self, other: &Self) -> bool {
        self.numbers == other.numbers
    }
}

impl CaseNumbers {
    /// An empty read model whose years are the district's (reports near midnight on 31
    /// December belong to the year of the district's calendar, not UTC's).
    pub fn new(calendar: Calendar) -> Self {
        CaseNumbers {
            calendar,
            ..CaseNumbers::default()
        }
    }

    /// A case's number.
    pub fn number(&self, case_id: &CaseId) -> Option<CaseNumber> {
        self.numbers.get(case_id).copied()
    }

    /// The case with this number.
    pub fn case_with(&self, number: CaseNumber) -> Option<CaseId> {
        self.numbers
            .iter()
            .find(|(_, n)| **n == number)
            .map(|(id, _)| *id)
    }

    /// How many cases are numbered.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Whether no case is numbered yet.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }
}

impl Projection for CaseNumbers {
    fn name(&self) -> &'static str {
        CASE_NUMBERS
    }

    fn apply(&mut self, applied: &Applied<'_>) -> Result<(), ApplyFailure> {
        let CaseEvent::CaseReported(report) = applied.event else {
            return Ok(());
        };
        if self.numbers.contains_key(&applied.case_id) {
            return Err(ApplyFailure::Invariant(
                "a case reported twice cannot get a second number".to_owned(),
            ));
        }
        let year = self.calendar.local_date(report.at).year();
        let seq = self.last_in_year.get(&year).copied().unwrap_or(0) + 1;
        self.last_in_year.insert(year, seq);
        self.numbers
            .insert(applied.case_id, CaseNumber { year, seq });
        self.changed.mark(applied.case_id);
        Ok(())
    }

    fn reset(&mut self) {
        self.reset_documents();
    }

    fn tables(&self) -> &'static [TableSpec] {
        &[NUMBER_TABLE.spec]
    }

    fn documents(&mut self) -> Option<&mut dyn DocumentPersistence> {
        Some(self)
    }
}

impl CaseDocuments for CaseNumbers {
    type Document = CaseNumber;

    fn table(&self) -> &CaseJsonTable {
        &NUMBER_TABLE
    }

    fn changes(&mut self) -> &mut ChangedCases {
        &mut self.changed
    }

    fn document(&self, case_id: &CaseId) -> Option<&CaseNumber> {
        self.numbers.get(case_id)
    }

    fn clear_documents(&mut self) {
        self.numbers.clear();
        self.last_in_year.clear();
    }

    fn restore(&mut self, case_id: CaseId, number: CaseNumber) -> Result<(), ProjectionError> {
        self.numbers.insert(case_id, number);
        let top = self.last_in_year.entry(number.year).or_insert(0);
        *top = (*top).max(number.seq);
        Ok(())
    }
}
