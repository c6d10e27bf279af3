//! The per-case JSON document table most read models persist in.

use caseflow_domain::CaseId;

use crate::error::ProjectionError;
use crate::fast_hash::HashSet;
use crate::persist::{Cell, Column, CommitBatch, Row, RowChange, TableSpec};

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
    pub fn load<T: serde::de::DeserializeOwned>(
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

    /// Adds the rows of the cases changed since the last call to `batch` and forgets the
    /// change set (nothing when change tracking is off): the document `current` returns, or
    /// a delete when it returns `None` (the case left the read model).
    pub fn take_changes<'a, T: serde::Serialize + 'a>(
        &self,
        batch: &mut CommitBatch,
        changed: &mut ChangedCases,
        current: impl Fn(&CaseId) -> Option<&'a T>,
    ) -> Result<(), ProjectionError> {
        let Some(set) = changed.0.as_mut() else {
            return Ok(());
        };
        // Sorted, so the stored form (and the order rows are written in) does not depend on
        // the hasher.
        let mut cases: Vec<CaseId> = set.drain().collect();
        cases.sort_unstable();
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
}
