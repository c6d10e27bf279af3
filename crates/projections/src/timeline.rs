//! The audit timeline: per case, every event in order with its actor, time, global
//! position and the stage transition it caused; and the time the case spent in each stage.

use std::collections::BTreeMap;

use crate::fast_hash::HashMap;
use std::sync::Arc;

use caseflow_domain::{Actor, CaseId, Role, Stage, UnitId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApplyFailure, ProjectionError};
use crate::persist::{Cell, Column, CommitBatch, Row, RowChange, StoredRows, TableSpec};
use crate::projection::{Applied, Projection};

/// The projection's name (checkpoint key, table prefix).
pub const TIMELINE_PROJECTION: &str = "timeline";

/// Where a persistent timeline keeps its entries: one row per event, keyed by case and
/// version; times in nanoseconds since the epoch, stages by their stable names.
const TIMELINE_TABLE: TableSpec = TableSpec {
    name: "timeline_events",
    columns: &[
        Column::text("case_id"),
        Column::integer("version"),
        Column::integer("position"),
        Column::text("event_id"),
        Column::text("event_type"),
        Column::text("actor"),
        Column::integer("at_ns"),
        Column::integer("recorded_at_ns"),
        Column::text("stage_before"),
        Column::text("stage_after"),
    ],
    key_len: 2,
};

/// One event of a case, as the audit view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Stream version (1 = the report).
    pub version: u64,
    /// Global position in the log.
    pub position: u64,
    /// The event id.
    pub event_id: Uuid,
    /// The event type, e.g. `CaseRouted`.
    pub event_type: Arc<str>,
    /// Who issued the command, as `unit/role`.
    pub actor: Arc<str>,
    /// When the command was issued (the event's own time).
    pub at: DateTime<Utc>,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Stage before the event.
    pub stage_before: Stage,
    /// Stage after the event.
    pub stage_after: Stage,
}

impl TimelineEntry {
    /// Whether the event moved the case to another stage.
    pub fn is_transition(&self) -> bool {
        self.stage_before != self.stage_after
    }
}

/// A stretch of time a case spent in one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpan {
    /// The stage.
    pub stage: Stage,
    /// When the case entered it.
    pub entered_at: DateTime<Utc>,
    /// When it left (`None`: it is still there).
    pub left_at: Option<DateTime<Utc>>,
    /// `left_at - entered_at`, or `now - entered_at` while still there (never negative).
    pub duration: Duration,
}

/// The audit timeline of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseTimeline {
    /// The case.
    pub case_id: CaseId,
    /// Every event, in stream order.
    pub entries: Vec<TimelineEntry>,
    /// Every stay in a stage, in order (a reopened case visits a stage again).
    pub spans: Vec<StageSpan>,
    /// Total time per stage (working stages only; final stages have no duration).
    pub time_in_stage: BTreeMap<Stage, Duration>,
}

/// The timeline read model.
///
/// Each event is held as a [`Held`] (56 bytes: names as indices into interned tables, the
/// version implied by the position in the case's list) rather than a [`TimelineEntry`] (96
/// bytes); entries are built when asked for. A case's list is trimmed to its length when the
/// case ends, since growth by doubling left a third of it unused on average.
#[derive(Debug, Default)]
pub struct TimelineProjection {
    cases: HashMap<CaseId, Vec<Held>>,
    /// Interned `unit/role` names, indexed by [`Held::actor`].
    names: Vec<Arc<str>>,
    name_index: HashMap<Arc<str>, u32>,
    /// Interned event types, indexed by [`Held::event_type`].
    types: Vec<Arc<str>>,
    type_index: HashMap<Arc<str>, u16>,
    /// Event types by the address and length of the domain's static name: found with an
    /// integer hash per event instead of hashing the name.
    static_types: HashMap<(usize, usize), u16>,
    /// The name index per acting unit and role, found without building the string each time.
    actors: HashMap<UnitId, Vec<(Role, u32)>>,
    changed: Option<Vec<(CaseId, usize)>>,
}

/// One event as the model holds it; version = index in the case's list + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    position: u64,
    event_id: Uuid,
    at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    actor: u32,
    event_type: u16,
    stage_before: Stage,
    stage_after: Stage,
}

impl PartialEq for TimelineProjection {
    /// Equal when every case shows the same entries (the interning order may differ: a model
    /// loaded from rows interns in case order, a folded one in log order).
    fn eq(&self, other: &Self) -> bool {
        self.cases.len() == other.cases.len()
            && self.cases.iter().all(|(case_id, held)| {
                other.cases.get(case_id).is_some_and(|theirs| {
                    held.len() == theirs.len()
                        && held
                            .iter()
                            .zip(theirs)
                            .enumerate()
                            .all(|(i, (a, b))| self.entry(i, a) == other.entry(i, b))
                })
            })
    }
}

impl TimelineProjection {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cases with a timeline.
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }

    /// Number of events on all timelines.
    pub fn event_count(&self) -> usize {
        self.cases.values().map(Vec::len).sum()
    }

    /// The events of a case, in order.
    pub fn entries(&self, case_id: &CaseId) -> Option<Vec<TimelineEntry>> {
        let held = self.cases.get(case_id)?;
        Some(
            held.iter()
                .enumerate()
                .map(|(i, h)| self.entry(i, h))
                .collect(),
        )
    }

    /// The entry of the `index`-th event of a case.
    fn entry(&self, index: usize, h: &Held) -> TimelineEntry {
        TimelineEntry {
            version: index as u64 + 1,
            position: h.position,
            event_id: h.event_id,
            event_type: Arc::clone(&self.types[usize::from(h.event_type)]),
            actor: Arc::clone(&self.names[h.actor as usize]),
            at: h.at,
            recorded_at: h.recorded_at,
            stage_before: h.stage_before,
            stage_after: h.stage_after,
        }
    }

    /// The audit timeline of a case; the current stage's stay is measured up to `now`.
    pub fn timeline(&self, case_id: &CaseId, now: DateTime<Utc>) -> Option<CaseTimeline> {
        let entries = self.entries(case_id)?;
        let mut spans: Vec<StageSpan> = Vec::new();
        for entry in entries.iter().filter(|e| e.is_transition()) {
            if let Some(open) = spans.last_mut() {
                open.left_at = Some(entry.at);
                open.duration = (entry.at - open.entered_at).max(Duration::zero());
            }
            spans.push(StageSpan {
                stage: entry.stage_after,
                entered_at: entry.at,
                left_at: None,
                duration: Duration::zero(),
            });
        }
        if let Some(last) = spans.last_mut()
            && last.stage.is_open()
        {
            last.duration = (now - last.entered_at).max(Duration::zero());
        }
        let mut time_in_stage = BTreeMap::new();
        for span in spans.iter().filter(|s| s.stage.is_open()) {
            *time_in_stage
                .entry(span.stage)
                .or_insert_with(Duration::zero) += span.duration;
        }
        Some(CaseTimeline {
            case_id: *case_id,
            entries,
            spans,
            time_in_stage,
        })
    }

    fn actor(&mut self, actor: &Actor) -> Result<u32, String> {
        if let Some(known) = self
            .actors
            .get(&actor.unit)
            .and_then(|roles| roles.iter().find(|(r, _)| *r == actor.role))
        {
            return Ok(known.1);
        }
        let name = self.name(&actor.to_string())?;
        self.actors
            .entry(actor.unit.clone())
            .or_default()
            .push((actor.role, name));
        Ok(name)
    }

    fn static_type(&mut self, name: &'static str) -> Result<u16, String> {
        let address = (name.as_ptr() as usize, name.len());
        if let Some(known) = self.static_types.get(&address) {
            return Ok(*known);
        }
        let index = self.event_type(name)?;
        self.static_types.insert(address, index);
        Ok(index)
    }

    /// The index of an actor name, interned on first sight.
    fn name(&mut self, s: &str) -> Result<u32, String> {
        intern(&mut self.names, &mut self.name_index, s)
    }

    /// The index of an event type, interned on first sight.
    fn event_type(&mut self, s: &str) -> Result<u16, String> {
        intern(&mut self.types, &mut self.type_index, s)
    }
}

/// The index of `s` in `table`, added at the end on first sight; an error once the index
/// type is full (more distinct names than any district has).
fn intern<I: Copy + TryFrom<usize>>(
    table: &mut Vec<Arc<str>>,
    index: &mut HashMap<Arc<str>, I>,
    s: &str,
) -> Result<I, String> {
    if let Some(existing) = index.get(s) {
        return Ok(*existing);
    }
    let i = I::try_from(table.len()).map_err(|_| format!("more than {} names", table.len()))?;
    let new: Arc<str> = Arc::from(s);
    table.push(Arc::clone(&new));
    index.insert(new, i);
    Ok(i)
}

impl Projection for TimelineProjection {
    fn name(&self) -> &'static str {
        TIMELINE_PROJECTION
    }

    fn apply(&mut self, applied: &Applied<'_>) -> Result<(), ApplyFailure> {
        let record = applied.record;
        let next = self
            .cases
            .get(&applied.case_id)
            .map_or(1, |v| v.len() as u64 + 1);
        if record.version != next {
            return Err(ApplyFailure::VersionGap {
                expected: next,
                found: record.version,
            });
        }
        let event_type = self
            .static_type(applied.event.event_type())
            .map_err(ApplyFailure::Invariant)?;
        let actor = self
            .actor(applied.event.actor())
            .map_err(ApplyFailure::Invariant)?;
        let held = Held {
            position: record.position,
            event_id: record.event_id,
            at: applied.event.at(),
            recorded_at: record.recorded_at,
            actor,
            event_type,
            stage_before: applied.stage_before,
            stage_after: applied.state.stage(),
        };
        let entries = self.cases.entry(applied.case_id).or_default();
        entries.push(held);
        if !held.stage_after.is_open() {
            // An ended case gets few or no more events: give back the growth headroom.
            entries.shrink_to_fit();
        }
        let index = entries.len() - 1;
        if let Some(changed) = &mut self.changed {
            changed.push((applied.case_id, index));
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.cases.clear();
        self.names.clear();
        self.name_index.clear();
        self.types.clear();
        self.type_index.clear();
        self.static_types.clear();
        self.actors.clear();
        if let Some(changed) = &mut self.changed {
            changed.clear();
        }
    }

    fn tables(&self) -> &'static [TableSpec] {
        &[TIMELINE_TABLE]
    }

    fn load(&mut self, mut rows: StoredRows) -> Result<(), ProjectionError> {
        let tracking = self.changed.is_some();
        self.reset();
        // Rows come in key order: by case, then version.
        for row in rows.take(&TIMELINE_TABLE) {
            let (case_id, version, held) = self.held_of_row(&row)?;
            let entries = self.cases.entry(case_id).or_default();
            if version != entries.len() as u64 + 1 {
                return Err(corrupt(format!(
                    "case {case_id} misses versions before {version}"
                )));
            }
            entries.push(held);
        }
        for entries in self.cases.values_mut() {
            entries.shrink_to_fit();
        }
        self.changed = tracking.then(Vec::new);
        Ok(())
    }

    fn track_changes(&mut self, on: bool) {
        self.changed = on.then(Vec::new);
    }

    fn take_changes(&mut self, batch: &mut CommitBatch) -> Result<(), ProjectionError> {
        let Some(mut changed) = self.changed.take() else {
            return Ok(());
        };
        for (case_id, index) in changed.drain(..) {
            let Some(h) = self.cases.get(&case_id).and_then(|v| v.get(index)) else {
                continue;
            };
            let entry = self.entry(index, h);
            batch.push(
                TIMELINE_TABLE,
                RowChange::Upsert(row_of_entry(case_id, &entry)),
            );
        }
        self.changed = Some(changed);
        Ok(())
    }

    fn discard_changes(&mut self) {
        if let Some(changed) = &mut self.changed {
            changed.clear();
        }
    }
}

/// Nanoseconds since the epoch; event times are validated by the store to fit.
fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn corrupt(reason: String) -> ProjectionError {
    ProjectionError::CorruptReadModel {
        projection: TIMELINE_PROJECTION.to_owned(),
        reason,
    }
}

/// The stored row of one entry.
fn row_of_entry(case_id: CaseId, e: &TimelineEntry) -> Row {
    Row(vec![
        Cell::Text(case_id.to_string()),
        Cell::Integer(i64::try_from(e.version).unwrap_or(i64::MAX)),
        Cell::Integer(i64::try_from(e.position).unwrap_or(i64::MAX)),
        Cell::Text(e.event_id.to_string()),
        Cell::from(e.event_type.as_ref()),
        Cell::from(e.actor.as_ref()),
        Cell::Integer(nanos(e.at)),
        Cell::Integer(nanos(e.recorded_at)),
        Cell::from(e.stage_before.as_str()),
        Cell::from(e.stage_after.as_str()),
    ])
}

impl TimelineProjection {
    /// Decodes a stored row (strings interned as when applied): the case, the version and
    /// the entry as held.
    fn held_of_row(&mut self, row: &Row) -> Result<(CaseId, u64, Held), ProjectionError> {
        let text = |i: usize| {
            row.text(i)
                .ok_or_else(|| corrupt(format!("column {i} is not text")))
        };
        let integer = |i: usize| {
            row.integer(i)
                .ok_or_else(|| corrupt(format!("column {i} is not an integer")))
        };
        let count = |i: usize| {
            integer(i).and_then(|v| u64::try_from(v).map_err(|_| corrupt(format!("{v} < 0"))))
        };
        let case_text = text(0)?;
        let case_id = Uuid::parse_str(case_text)
            .map(CaseId::new)
            .map_err(|e| corrupt(format!("case id {case_text:?}: {e}")))?;
        let event_text = text(3)?;
        let stage = |i: usize| {
            text(i).and_then(|name| {
                parse_stage(name).ok_or_else(|| corrupt(format!("stage {name:?}")))
            })
        };
        let held = Held {
            position: count(2)?,
            event_id: Uuid::parse_str(event_text)
                .map_err(|e| corrupt(format!("event id {event_text:?}: {e}")))?,
            event_type: self.event_type(text(4)?).map_err(corrupt)?,
            actor: self.name(text(5)?).map_err(corrupt)?,
            at: DateTime::from_timestamp_nanos(integer(6)?),
            recorded_at: DateTime::from_timestamp_nanos(integer(7)?),
            stage_before: stage(8)?,
            stage_after: stage(9)?,
        };
        Ok((case_id, count(1)?, held))
    }
}

/// Parses a stage from its stable name.
pub fn parse_stage(name: &str) -> Option<Stage> {
    Stage::ALL.into_iter().find(|s| s.as_str() == name)
}
