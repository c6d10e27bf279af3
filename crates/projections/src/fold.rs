//! The case fold: one [`CaseState`] per case, built with the domain's `evolve`, shared by
//! every projection of a runner so each record is decoded and folded exactly once.
//!
//! The fold is a cache, not a read model. States of cases that left the workflow (closed,
//! declined, merged, transferred) are evicted to bound memory; when such a case moves
//! again (a reopen), or when a runner starts in the middle of the log, the missing state is
//! rebuilt from the case's own stream in the store before the batch is applied.

use crate::fast_hash::HashMap;

use caseflow_domain::{
    CaseEvent, CaseId, CaseState, CrossInspectionScope, Organisation, Stage, evolve, misfit,
};
use caseflow_store::{EventStore, RecordedEvent};
use uuid::Uuid;

use crate::error::{ApplyFailure, ProjectionError};
use caseflow_domain::{Assignee, Obligation, obligations};

/// The prefix of every case stream id: `case-<uuid>`.
pub const CASE_STREAM_PREFIX: &str = "case-";

/// The stream id of a case.
pub fn case_stream_id(case_id: CaseId) -> String {
    format!("{CASE_STREAM_PREFIX}{}", case_id.as_uuid())
}

/// The case id of a case stream, or `None` for a stream that is not a case stream.
pub fn case_id_of_stream(stream_id: &str) -> Option<CaseId> {
    let rest = stream_id.strip_prefix(CASE_STREAM_PREFIX)?;
    Uuid::parse_str(rest).ok().map(CaseId::new)
}

/// Decodes a stored record into a case event (the one decode path, [`crate::decode`]), as
/// an apply failure when it does not decode.
pub(crate) fn decode_to_apply(record: &RecordedEvent) -> Result<CaseEvent, ApplyFailure> {
    crate::decode::decode(record).map_err(ApplyFailure::Undecodable)
}

#[derive(Debug, Clone)]
pub(crate) struct FoldEntry {
    /// Stream version the state reflects.
    pub(crate) version: u64,
    pub(crate) state: CaseState,
    /// The who-acts table evaluated on `state`.
    pub(crate) obligations: Vec<Obligation>,
}

/// The result of folding one record: everything a projection is handed.
pub(crate) struct Folded {
    pub(crate) case_id: CaseId,
    pub(crate) event: CaseEvent,
    pub(crate) stage_before: Stage,
    pub(crate) obligations_before: Vec<Obligation>,
}

#[derive(Debug, Default)]
pub(crate) struct CaseFold {
    cases: HashMap<CaseId, FoldEntry>,
    /// The district's cross-inspection policy, which the who-acts table needs.
    pub(crate) scope: CrossInspectionScope,
}

impl CaseFold {
    pub(crate) fn clear(&mut self) {
        self.cases.clear();
    }

    pub(crate) fn get(&self, case_id: &CaseId) -> Option<&FoldEntry> {
        self.cases.get(case_id)
    }

    /// Makes sure that, for every case whose first record in `batch` is not version 1, the
    /// fold holds the state just before that record, reading the case's stream if needed.
    pub(crate) async fn prefetch(
        &mut self,
        store: &dyn EventStore,
        org: &Organisation,
        batch: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut seen: HashMap<CaseId, ()> = HashMap::default();
        for record in batch {
            let Some(case_id) = case_id_of_stream(&record.stream_id) else {
                continue;
            };
            // A cached state (at any version: one other than the record's predecessor
            // means a record was skipped or repeated, which `advance` reports with the
            // record's position) needs nothing; this is the common case, checked first so
            // that it costs one lookup.
            if self.cases.contains_key(&case_id)
                || seen.insert(case_id, ()).is_some()
                || record.version <= 1
            {
                continue;
            }
            let wanted = record.version - 1;
            let mut entry = FoldEntry {
                version: 0,
                state: CaseState::default(),
                obligations: Vec::new(),
            };
            while entry.version < wanted {
                let count = usize::try_from(wanted - entry.version).unwrap_or(usize::MAX);
                let records = store
                    .read_stream(&record.stream_id, entry.version + 1, count.min(4096))
                    .await?;
                if records.is_empty() {
                    // The stream is shorter than the record claims; the fold of the record
                    // itself reports the gap with its position.
                    break;
                }
                for earlier in &records {
                    if earlier.version != entry.version + 1 || earlier.version > wanted {
                        break;
                    }
                    let event = decode_to_apply(earlier)
                        .map_err(|failure| cannot_apply(earlier, failure))?;
                    check_fits(&entry, &event).map_err(|failure| cannot_apply(earlier, failure))?;
                    evolve(&mut entry.state, &event);
                    entry.version = earlier.version;
                }
            }
            entry.obligations = obligations(&entry.state, org, self.scope)
                .map_err(|failure| cannot_apply(record, failure.into()))?;
            self.cases.insert(case_id, entry);
        }
        Ok(())
    }

    /// Folds one record. On error the fold is unchanged except that the case's cached state
    /// is dropped (it will be re-read from the store if needed again).
    pub(crate) fn advance(
        &mut self,
        record: &RecordedEvent,
        decoded: Result<CaseEvent, ApplyFailure>,
        org: &Organisation,
    ) -> Result<Folded, ApplyFailure> {
        let case_id = case_id_of_stream(&record.stream_id)
            .ok_or_else(|| ApplyFailure::NotACaseStream(record.stream_id.clone()))?;
        let event = decoded?;
        if let Some(in_event) = event_case_id(&event)
            && in_event != case_id
        {
            return Err(ApplyFailure::CaseIdMismatch {
                in_event: in_event.to_string(),
                in_stream: case_id.to_string(),
            });
        }
        // Fold in place: a case state is large, so it is never moved in or out of the map.
        let scope = self.scope;
        let entry = self.cases.entry(case_id).or_insert_with(|| FoldEntry {
            version: 0,
            state: CaseState::default(),
            obligations: Vec::new(),
        });
        match fold_into(entry, record, &event, org, scope) {
            Ok((stage_before, obligations_before)) => Ok(Folded {
                case_id,
                event,
                stage_before,
                obligations_before,
            }),
            Err(failure) => {
                self.cases.remove(&case_id);
                Err(failure)
            }
        }
    }

    /// Drops the state of a case that left the workflow, to bound memory.
    pub(crate) fn evict_if_finished(&mut self, case_id: &CaseId) {
        if self
            .cases
            .get(case_id)
            .is_some_and(|e| !e.state.is_open() && e.version > 0)
        {
            self.cases.remove(case_id);
        }
    }

    /// Number of case states held.
    pub(crate) fn len(&self) -> usize {
        self.cases.len()
    }
}

/// Applies one decoded record to a cached case state; returns the stage and obligations
/// from before it.
fn fold_into(
    entry: &mut FoldEntry,
    record: &RecordedEvent,
    event: &CaseEvent,
    org: &Organisation,
    scope: CrossInspectionScope,
) -> Result<(Stage, Vec<Obligation>), ApplyFailure> {
    if record.version != entry.version + 1 {
        return Err(ApplyFailure::VersionGap {
            expected: entry.version + 1,
            found: record.version,
        });
    }
    check_fits(entry, event)?;
    let stage_before = entry.state.stage();
    evolve(&mut entry.state, event);
    let after = obligations(&entry.state, org, scope)?;
    entry.version = record.version;
    Ok((
        stage_before,
        std::mem::replace(&mut entry.obligations, after),
    ))
}

/// The event must fit the state (the domain's own check of what `evolve` relies on): the
/// first event reports the case and only the first, ids match, time does not run
/// backwards, a final case does not change, and so on.
fn check_fits(entry: &FoldEntry, event: &CaseEvent) -> Result<(), ApplyFailure> {
    match misfit(&entry.state, event) {
        None => Ok(()),
        Some(m) => Err(ApplyFailure::OutOfOrder {
            event_type: m.event_type.to_owned(),
            stage: format!("{}: {}", entry.state.stage(), m.reason),
        }),
    }
}

/// Makes `into` equal to `from`, reusing the buffer of the id `into` holds when both are
/// the same kind of assignee (a derived `clone_from` would allocate a new one).
pub(crate) fn overwrite_assignee(into: &mut Assignee, from: &Assignee) {
    match (into, from) {
        (Assignee::Unit(into), Assignee::Unit(from)) => into.0.clone_from(&from.0),
        (Assignee::Department(into), Assignee::Department(from)) => into.0.clone_from(&from.0),
        (into, from) => *into = from.clone(),
    }
}

fn event_case_id(event: &CaseEvent) -> Option<CaseId> {
    Some(event.case_id())
}

pub(crate) fn cannot_apply(record: &RecordedEvent, failure: ApplyFailure) -> ProjectionError {
    ProjectionError::CannotApply(Box::new(crate::error::CannotApply {
        projection: "*".to_owned(),
        position: record.position,
        event_id: record.event_id,
        stream_id: record.stream_id.clone(),
        version: record.version,
        event_type: record.event_type.clone(),
        failure,
    }))
}
