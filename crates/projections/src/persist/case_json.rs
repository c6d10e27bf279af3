//! The per-case JSON document table most read models persist in.

use caseflow_domain::CaseId;

use crate::error::ProjectionError;
use crate::fast_hash::HashSet;
use crate::persist::{Cell, Column, CommitBatch, Row, RowChange, StoredRows, TableSpec};

/// A read-model table holding one JSON document per case: `(case_id TEXT, <column> TEXT)`,
/// keyed by the case.
///
/// Projections whose state is a map from case to a serde value (the to-do entries, the
/// statistics facts, the engine's deadline index) persist it through this one piece, so the
/// encode / decode / changed-cases logic and its corruption checks exist once, for every
/// backend.
#[derive(Debug, Clone, Copy)]
pub struct CaseJsonTable {
    /// The projection's name, used in errors.
    pub projection: &'static str,
    /// The table: two text columns, the case id (the key) and the document.
    pub spec: TableSpec,
}

impl CaseJsonTable {
    /// The table `name` of `projection` with the document in `column`.
    pub const fn new(
        projection: &'static str,
        name: &'static str,
        columns: &'static [Column; 2],
    ) -> Self {
        CaseJsonTable {
            projection,
            spec: TableSpec {
                name,
                columns,
                key_len: 1,
            },
        }
    }

    /// Decodes every stored row and hands each document to `each`. A row whose case id or
    /// document does not decode is a `CorruptReadModel` error naming the projection.
    fn load<T: serde::de::DeserializeOwned>(
        &self,
        rows: Vec<Row>,
        mut each: impl FnMut(CaseId, T) -> Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        for row in rows {
            let (Some(id), Some(text)) = (row.text(0), row.text(1)) else {
                return Err(self.corrupt("a row without a case id and a document".to_owned()));
            };
            let case_id = uuid::Uuid::parse_str(id)
                .map(CaseId::new)
                .map_err(|e| self.corrupt(format!("case id {id:?}: {e}")))?;
            let document = serde_json::from_str(text).map_err(|e| self.corrupt(e.to_string()))?;
            each(case_id, document)?;
        }
        Ok(())
    }

    /// Adds the rows of `cases` to `batch`: the document `current` returns, or a delete when
    /// it returns `None` (the case left the read model).
    fn push_rows<'a, T: serde::Serialize + 'a>(
        &self,
        batch: &mut CommitBatch,
        cases: Vec<CaseId>,
        current: impl Fn(&CaseId) -> Option<&'a T>,
    ) -> Result<(), ProjectionError> {
        for case_id in cases {
            let key = Cell::Text(case_id.to_string());
            let change = match current(&case_id) {
                Some(document) => {
                    let text = serde_json::to_string(document).map_err(|e| {
                        self.corrupt(format!("cannot encode the row of case {case_id}: {e}"))
                    })?;
                    RowChange::Upsert(Row(vec![key, Cell::Text(text)]))
                }
                None => RowChange::Delete(Row(vec![key])),
            };
            batch.push(self.spec, change);
        }
        Ok(())
    }

    /// A `CorruptReadModel` error naming the projection and the table.
    pub fn corrupt_row(&self, reason: String) -> ProjectionError {
        self.corrupt(reason)
    }

    fn corrupt(&self, reason: String) -> ProjectionError {
        ProjectionError::CorruptReadModel {
            projection: self.projection.to_owned(),
            reason: format!("{}: {reason}", self.spec.name),
        }
    }
}

/// The cases a projection changed since its last save. Kept only while a persistent runner
/// tracks changes, so the in-memory variant never pays for it.
#[derive(Debug, Default, Clone)]
pub struct ChangedCases(Option<HashSet<CaseId>>);

impl ChangedCases {
    /// Starts (with an empty set) or stops tracking.
    pub fn track(&mut self, on: bool) {
        self.0 = on.then(HashSet::default);
    }

    /// Notes that `case_id` changed (a no-op while not tracking).
    pub fn mark(&mut self, case_id: CaseId) {
        if let Some(set) = &mut self.0 {
            set.insert(case_id);
        }
    }

    /// Forgets the changes (after a rebuild, a load, or a discarded batch), still tracking
    /// if tracking was on.
    pub fn clear(&mut self) {
        if let Some(set) = &mut self.0 {
            set.clear();
        }
    }

    /// Takes the changed cases out, sorted so the stored form (and the order rows are
    /// written in) does not depend on the hasher; empty while not tracking.
    fn drain_sorted(&mut self) -> Vec<CaseId> {
        let Some(set) = self.0.as_mut() else {
            return Vec::new();
        };
        let mut cases: Vec<CaseId> = set.drain().collect();
        cases.sort_unstable();
        cases
    }
}

/// A read model kept as one JSON document per case in one [`CaseJsonTable`] (the to-do
/// entries, the statistics facts, the case numbers, the engine's deadline index).
///
/// It states only what is its own: its table, its change set, where a case's document is,
/// how to forget every document and how to put one loaded document back. Every such model
/// gets the rest — loading, change tracking, turning changes into rows, discarding them,
/// resetting — from [`DocumentPersistence`], which the [`crate::Projection`] trait reaches
/// through [`crate::Projection::documents`].
pub trait CaseDocuments {
    /// What is stored per case.
    type Document: serde::Serialize + serde::de::DeserializeOwned;

    /// The table the documents live in.
    fn table(&self) -> &CaseJsonTable;

    /// The cases changed since the last save.
    fn changes(&mut self) -> &mut ChangedCases;

    /// The current document of a case (`None`: the case is not in the read model).
    fn document(&self, case_id: &CaseId) -> Option<&Self::Document>;

    /// Forgets every document (and whatever the model derives from them).
    fn clear_documents(&mut self);

    /// Puts back one stored document; an error when it contradicts its row.
    fn restore(&mut self, case_id: CaseId, document: Self::Document)
    -> Result<(), ProjectionError>;
}

/// The persistence half of a projection, written once for every [`CaseDocuments`] model.
/// Dyn-compatible, so [`crate::Projection`]'s default methods can call it.
pub trait DocumentPersistence {
    /// Forgets everything: every document and the change set.
    fn reset_documents(&mut self);
    /// Replaces the model by the stored rows of its table.
    fn load_documents(&mut self, rows: StoredRows) -> Result<(), ProjectionError>;
    /// Starts or stops recording changed cases.
    fn track_document_changes(&mut self, on: bool);
    /// Adds the rows of the cases changed since the last call to `batch`.
    fn take_document_changes(&mut self, batch: &mut CommitBatch) -> Result<(), ProjectionError>;
    /// Forgets the change set without writing.
    fn discard_document_changes(&mut self);
}

impl<M: CaseDocuments> DocumentPersistence for M {
    fn reset_documents(&mut self) {
        self.clear_documents();
        self.changes().clear();
    }

    fn load_documents(&mut self, mut rows: StoredRows) -> Result<(), ProjectionError> {
        self.clear_documents();
        let table = *self.table();
        table.load(rows.take(&table.spec), |case_id, document| {
            self.restore(case_id, document)
        })?;
        self.changes().clear();
        Ok(())
    }

    fn track_document_changes(&mut self, on: bool) {
        self.changes().track(on);
    }

    fn take_document_changes(&mut self, batch: &mut CommitBatch) -> Result<(), ProjectionError> {
        let cases = self.changes().drain_sorted();
        let table = *self.table();
        table.push_rows(batch, cases, |case_id| self.document(case_id))
    }

    fn discard_document_changes(&mut self) {
        self.changes().clear();
    }
}
