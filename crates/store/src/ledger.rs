//! Whether the command-id ledger covers the log exactly.
//!
//! The ledger is what makes a retried command safe: an append whose command id has a row is
//! answered from that row and writes nothing. A deleted or edited row therefore lets the same
//! command be written a second time, and an added row makes a command that never ran look
//! executed — none of which the per-stream hash chains can see, because ledger rows are not
//! hashed. So verification cross-checks the two, by three rules:
//!
//! 1. every ledger row names one batch: the positions `first_position..=last_position` hold
//!    consecutive records of the row's stream at the versions `first_version..=last_version`,
//!    and none of them carries another command id;
//! 2. every event that carries a command id lies inside that command id's ledger row (an
//!    event whose command id has no row at all means the row was deleted);
//! 3. a command id is carried by one batch only (one append: consecutive positions of one
//!    stream). Events of one command id in two places mean it was written twice.
//!
//! (A command id is carried in each event's metadata, which the hash chain covers; the
//! store does not require it — an append may have a ledger command id and events with
//! none — so rule 1 accepts records without one. The engine always sets both.)
//!
//! [`LedgerCheck`] applies the rules to any backend that can list its events in position
//! order and its ledger rows; the SQLite backend runs the same rules as SQL over its indexes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::{AppendOutcome, RecordedEvent};

/// One mismatch between the command-id ledger and the events of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LedgerFinding {
    /// A ledger row that does not name exactly its command's events (rule 1): the row was
    /// edited or added, or the events were deleted or changed.
    RowWithoutEvents {
        /// The row's command id.
        command_id: Uuid,
        /// The row's stream (`None` when the row names a stream that does not exist).
        stream_id: Option<String>,
        /// The positions the row names.
        first_position: u64,
        /// The positions the row names.
        last_position: u64,
        /// What does not match.
        reason: String,
    },
    /// Events carry a command id that has no ledger row (rule 2): the row was deleted, so a
    /// retry of that command would be written again.
    EventsWithoutRow {
        /// The command id the events carry.
        command_id: Uuid,
        /// The stream of the first such event.
        stream_id: String,
        /// The position of the first such event.
        first_position: u64,
    },
    /// One command id on two different batches (rule 3): the command was written twice.
    CommandOnTwoBatches {
        /// The command id.
        command_id: Uuid,
        /// The stream and first position of the first batch.
        first: (String, u64),
        /// The stream and first position of the second batch.
        second: (String, u64),
    },
}

impl std::fmt::Display for LedgerFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerFinding::RowWithoutEvents {
                command_id,
                stream_id,
                first_position,
                last_position,
                reason,
            } => write!(
                f,
                "ledger row of command {command_id} (stream {}, positions {first_position}..={last_position}) does not match the log: {reason}",
                stream_id.as_deref().unwrap_or("<missing>")
            ),
            LedgerFinding::EventsWithoutRow {
                command_id,
                stream_id,
                first_position,
            } => write!(
                f,
                "command {command_id} wrote events (stream {stream_id}, from position {first_position}) but has no ledger row: a retry would write it again"
            ),
            LedgerFinding::CommandOnTwoBatches {
                command_id,
                first,
                second,
            } => write!(
                f,
                "command {command_id} was written twice: stream {} from position {}, and stream {} from position {}",
                first.0, first.1, second.0, second.1
            ),
        }
    }
}

/// One ledger row as a backend stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// The command id.
    pub command_id: Uuid,
    /// The stream the row names (`None` when its stream no longer exists).
    pub stream_id: Option<String>,
    /// Versions and positions the row names.
    pub outcome: AppendOutcome,
}

/// Where one command id's events were found: its first batch, and the run it is in now.
#[derive(Debug, Clone)]
struct Batch {
    stream_id: String,
    first_position: u64,
    last_position: u64,
    /// The last event seen with this command id (stream, position, version), which may be
    /// in a later batch than the first.
    run_end: (String, u64, u64),
    /// Whether every event seen so far is in the first batch.
    one_batch: bool,
}

impl Batch {
    fn of(e: &RecordedEvent) -> Batch {
        Batch {
            stream_id: e.stream_id.clone(),
            first_position: e.position,
            last_position: e.position,
            run_end: (e.stream_id.clone(), e.position, e.version),
            one_batch: true,
        }
    }

    /// Whether `e` continues the current run (the next position and version of its stream).
    fn continued_by(&self, e: &RecordedEvent) -> bool {
        let (stream, position, version) = &self.run_end;
        *stream == e.stream_id && e.position == position + 1 && e.version == version + 1
    }
}

/// Why the records at a ledger row's positions are not the batch it names (rule 1).
fn row_mismatch(row: &LedgerRow, records: &[RecordedEvent]) -> Option<String> {
    let o = &row.outcome;
    let span = o.last_position.checked_sub(o.first_position).map(|n| n + 1);
    let versions = o.last_version.checked_sub(o.first_version).map(|n| n + 1);
    if o.first_position == 0 || o.first_version == 0 || span.is_none() || span != versions {
        return Some(format!(
            "it names versions {}..={} at positions {}..={}, which is not one batch",
            o.first_version, o.last_version, o.first_position, o.last_position
        ));
    }
    let Some(stream) = row.stream_id.as_deref() else {
        return Some("its stream does not exist".to_owned());
    };
    if records.len() as u64 != span.unwrap_or(0) {
        return Some(format!(
            "{} of its {} positions hold no record",
            span.unwrap_or(0) - records.len() as u64,
            span.unwrap_or(0)
        ));
    }
    for (i, r) in records.iter().enumerate() {
        let (position, version) = (o.first_position + i as u64, o.first_version + i as u64);
        if r.position != position || r.stream_id != stream || r.version != version {
            return Some(format!(
                "position {position} holds version {} of stream {}, not version {version} of {stream}",
                r.version, r.stream_id
            ));
        }
        if let Some(other) = r.metadata.command_id.filter(|c| *c != row.command_id) {
            return Some(format!(
                "position {position} was written by command {other}"
            ));
        }
    }
    None
}

/// The three ledger rules over a backend's events and ledger rows.
///
/// Feed every event in position order ([`LedgerCheck::event`]), then every ledger row with
/// the records at its positions ([`LedgerCheck::row`]), then call [`LedgerCheck::finish`].
/// Memory grows with the number of distinct command ids.
#[derive(Debug, Default)]
pub struct LedgerCheck {
    batches: HashMap<Uuid, Batch>,
    findings: Vec<LedgerFinding>,
    rows: u64,
}

impl LedgerCheck {
    /// An empty check.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next event of the log (in position order).
    pub fn event(&mut self, e: &RecordedEvent) {
        let Some(cid) = e.metadata.command_id else {
            return;
        };
        match self.batches.get_mut(&cid) {
            None => {
                self.batches.insert(cid, Batch::of(e));
            }
            Some(batch) => {
                if batch.continued_by(e) {
                    if batch.one_batch {
                        batch.last_position = e.position;
                    }
                } else {
                    // A new run of the same command id starts here: a second batch.
                    batch.one_batch = false;
                    self.findings.push(LedgerFinding::CommandOnTwoBatches {
                        command_id: cid,
                        first: (batch.stream_id.clone(), batch.first_position),
                        second: (e.stream_id.clone(), e.position),
                    });
                }
                batch.run_end = (e.stream_id.clone(), e.position, e.version);
            }
        }
    }

    /// Takes one ledger row (any order, after every event) with the records stored at the
    /// positions it names (as many as exist).
    pub fn row(&mut self, row: &LedgerRow, records: &[RecordedEvent]) {
        self.rows += 1;
        let o = &row.outcome;
        let cid = row.command_id;
        let bad = |reason: String| LedgerFinding::RowWithoutEvents {
            command_id: cid,
            stream_id: row.stream_id.clone(),
            first_position: o.first_position,
            last_position: o.last_position,
            reason,
        };
        let batch = self.batches.remove(&cid);
        if let Some(reason) = row_mismatch(row, records) {
            self.findings.push(bad(reason));
            return;
        }
        // The row's records are consistent; the first batch carrying the command id must be
        // those records (a later batch was reported by `event` as a second batch).
        if let Some(b) = batch {
            if b.first_position < o.first_position || b.last_position > o.last_position {
                self.findings.push(bad(format!(
                    "events carrying it are at positions {}..={} of stream {}",
                    b.first_position, b.last_position, b.stream_id
                )));
            }
        }
    }

    /// Ledger rows taken so far.
    pub fn rows_checked(&self) -> u64 {
        self.rows
    }

    /// Every finding: the command ids left without a row, then the others in the order found.
    pub fn finish(mut self) -> Vec<LedgerFinding> {
        let mut orphans: Vec<(Uuid, Batch)> = self.batches.drain().collect();
        orphans.sort_by_key(|(_, b)| b.first_position);
        for (command_id, batch) in orphans {
            self.findings.push(LedgerFinding::EventsWithoutRow {
                command_id,
                stream_id: batch.stream_id,
                first_position: batch.first_position,
            });
        }
        self.findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Metadata;
    use chrono::DateTime;

    fn event(position: u64, stream: &str, version: u64, cid: u128) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::from_u128(position as u128 + 1000),
            stream_id: stream.to_owned(),
            version,
            position,
            recorded_at: DateTime::from_timestamp_nanos(0),
            event_type: "T".into(),
            schema_version: 1,
            payload: b"{}".to_vec(),
            metadata: Metadata {
                actor: "a".into(),
                command_id: Some(Uuid::from_u128(cid)),
                ..Metadata::default()
            },
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    fn row(cid: u128, stream: &str, fv: u64, lv: u64, fp: u64, lp: u64) -> LedgerRow {
        LedgerRow {
            command_id: Uuid::from_u128(cid),
            stream_id: Some(stream.to_owned()),
            outcome: AppendOutcome {
                first_version: fv,
                last_version: lv,
                first_position: fp,
                last_position: lp,
                deduplicated: false,
            },
        }
    }

    fn check(events: &[RecordedEvent], rows: &[LedgerRow]) -> Vec<LedgerFinding> {
        let mut c = LedgerCheck::new();
        events.iter().for_each(|e| c.event(e));
        for r in rows {
            let at: Vec<RecordedEvent> = events
                .iter()
                .filter(|e| {
                    (r.outcome.first_position..=r.outcome.last_position).contains(&e.position)
                })
                .cloned()
                .collect();
            c.row(r, &at);
        }
        c.finish()
    }

    #[test]
    fn a_covered_log_has_no_findings() {
        let events = [
            event(1, "a", 1, 1),
            event(2, "a", 2, 1),
            event(3, "b", 1, 2),
        ];
        let rows = [row(1, "a", 1, 2, 1, 2), row(2, "b", 1, 1, 3, 3)];
        assert!(check(&events, &rows).is_empty());
    }

    #[test]
    fn a_deleted_ledger_row_leaves_events_without_a_row() {
        let events = [event(1, "a", 1, 1), event(2, "b", 1, 2)];
        let found = check(&events, &[row(1, "a", 1, 1, 1, 1)]);
        assert!(matches!(
            &found[..],
            [LedgerFinding::EventsWithoutRow {
                first_position: 2,
                ..
            }]
        ));
    }

    #[test]
    fn an_added_ledger_row_past_the_log_holds_no_records() {
        let events = [event(1, "a", 1, 1)];
        let found = check(&events, &[row(1, "a", 1, 1, 1, 1), row(9, "a", 2, 2, 2, 2)]);
        assert!(
            matches!(&found[..], [LedgerFinding::RowWithoutEvents { command_id, .. }] if *command_id == Uuid::from_u128(9))
        );
    }

    #[test]
    fn an_edited_ledger_row_does_not_match_its_events() {
        let events = [event(1, "a", 1, 1), event(2, "a", 2, 1)];
        let found = check(&events, &[row(1, "a", 1, 1, 1, 1)]);
        assert!(matches!(
            &found[..],
            [LedgerFinding::RowWithoutEvents { .. }]
        ));
    }

    #[test]
    fn an_added_ledger_row_names_another_commands_events() {
        let events = [event(1, "a", 1, 1)];
        let found = check(&events, &[row(1, "a", 1, 1, 1, 1), row(9, "a", 1, 1, 1, 1)]);
        assert!(
            matches!(&found[..], [LedgerFinding::RowWithoutEvents { command_id, .. }] if *command_id == Uuid::from_u128(9))
        );
    }

    #[test]
    fn a_command_written_twice_is_on_two_batches_reported_once() {
        let events = [
            event(1, "a", 1, 1),
            event(2, "b", 1, 2),
            event(3, "a", 2, 1),
            event(4, "a", 3, 1),
        ];
        let found = check(&events, &[row(1, "a", 1, 1, 1, 1), row(2, "b", 1, 1, 2, 2)]);
        let twice: Vec<_> = found
            .iter()
            .filter(|f| matches!(f, LedgerFinding::CommandOnTwoBatches { .. }))
            .collect();
        assert!(
            matches!(&twice[..], [LedgerFinding::CommandOnTwoBatches { second, .. }] if second.1 == 3),
            "{found:?}"
        );
    }
}
