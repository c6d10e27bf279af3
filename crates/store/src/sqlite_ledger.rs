//! The ledger rules of [`crate::ledger`] as SQL over the SQLite store's indexes.
//!
//! One pass that touches each record once: a merge of the ledger rows (in position order)
//! with the records (rule 1, and a count of the records that carry their row's command id),
//! counting on the way the records that carry any command id. When the two counts agree,
//! every record that carries a command id lies inside its own row (rules 2 and 3 hold),
//! because a record carries one command id and command ids are the ledger's key. Only when
//! they differ does another query list the records outside their row, to name them. The
//! records come from [`check_ledger`]'s own scan, or from `verify_log`'s one pass.

use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ledger::{LedgerCheck, LedgerFinding, LedgerRow};
use crate::sqlite::{EVENT_COLUMNS, decode_row};
use crate::types::{AppendOutcome, RecordedEvent};

/// Checks the ledger against the log inside the caller's read transaction; returns the
/// rows checked and every finding.
pub(crate) fn check_ledger(conn: &Connection) -> Result<(u64, Vec<LedgerFinding>), StoreError> {
    let mut rows = LedgerMerge::statement(conn)?;
    let mut merge = LedgerMerge::new(&mut rows)?;
    let mut events_stmt = conn.prepare(
        "SELECT position, stream_key, version, command_id FROM events ORDER BY position",
    )?;
    let mut events = events_stmt.query([])?;
    while let Some(slot) = next_slot(&mut events)? {
        merge.record(&slot)?;
    }
    merge.finish(conn)
}

/// One record as the ledger rules look at it.
pub(crate) struct Slot {
    pub(crate) position: i64,
    pub(crate) stream_key: i64,
    pub(crate) version: i64,
    pub(crate) command_id: Option<[u8; 16]>,
}

fn next_slot(rows: &mut rusqlite::Rows<'_>) -> Result<Option<Slot>, StoreError> {
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let command_id = match r.get_ref(3)?.as_blob_or_null()? {
        None => None,
        Some(b) => Some(
            <[u8; 16]>::try_from(b)
                .map_err(|_| StoreError::corrupt("a record's command id is not 16 bytes"))?,
        ),
    };
    Ok(Some(Slot {
        position: r.get(0)?,
        stream_key: r.get(1)?,
        version: r.get(2)?,
        command_id,
    }))
}

/// A ledger row, as read for the merge.
struct CommandRow {
    command_id: [u8; 16],
    stream: Option<String>,
    stream_key: i64,
    first_version: i64,
    last_version: i64,
    first_position: i64,
    last_position: i64,
}

impl CommandRow {
    /// Whether its versions and positions are a batch's (a row of another shape, or of no
    /// stream, is a suspect at once).
    fn mergeable(&self) -> bool {
        let (fv, lv, fp, lp) = (
            self.first_version,
            self.last_version,
            self.first_position,
            self.last_position,
        );
        self.stream.is_some() && fp >= 1 && fv >= 1 && lp >= fp && lp - fp == lv - fv
    }

    fn fits(&self, e: &Slot) -> bool {
        e.stream_key == self.stream_key
            && e.version == self.first_version + (e.position - self.first_position)
            && e.command_id.is_none_or(|c| c == self.command_id)
    }

    fn suspect(self) -> LedgerRow {
        LedgerRow {
            command_id: Uuid::from_bytes(self.command_id),
            stream_id: self.stream,
            outcome: AppendOutcome {
                first_version: self.first_version.max(0) as u64,
                last_version: self.last_version.max(0) as u64,
                first_position: self.first_position.max(0) as u64,
                last_position: self.last_position.max(0) as u64,
                deduplicated: false,
            },
        }
    }
}

/// Rule 1 for every row, and a count of the records that carry any command id, as one
/// merge of the rows (in position order) with the records, which the caller feeds in
/// position order ([`LedgerMerge::record`]) from whatever pass of the log it makes (a join
/// per row was three times slower at a million rows). Each record counts for at most one
/// row. A row the merge cannot confirm — its records missing or changed, or overlapping an
/// earlier row's — is a suspect, checked exactly in [`LedgerMerge::finish`] against the
/// records at its positions.
pub(crate) struct LedgerMerge<'s> {
    rows: rusqlite::Rows<'s>,
    rows_exhausted: bool,
    /// The row the records are being matched against, with its matching records so far.
    current: Option<(CommandRow, i64)>,
    rows_checked: u64,
    /// Records inside their row's positions that carry its command id.
    carrying_inside: u64,
    /// Records that carry a command id.
    carrying: u64,
    suspects: Vec<LedgerRow>,
}

impl<'s> LedgerMerge<'s> {
    /// The ledger rows in the merge's order; pass it to [`LedgerMerge::new`].
    pub(crate) fn statement(conn: &Connection) -> Result<rusqlite::Statement<'_>, StoreError> {
        Ok(conn.prepare(
            "SELECT c.command_id, s.stream_id, c.stream_key, c.first_version, c.last_version, \
                    c.first_position, c.last_position \
             FROM commands c LEFT JOIN streams s ON s.stream_key = c.stream_key \
             ORDER BY c.first_position",
        )?)
    }

    pub(crate) fn new(statement: &'s mut rusqlite::Statement<'_>) -> Result<Self, StoreError> {
        Ok(LedgerMerge {
            rows: statement.query([])?,
            rows_exhausted: false,
            current: None,
            rows_checked: 0,
            carrying_inside: 0,
            carrying: 0,
            suspects: Vec::new(),
        })
    }

    /// The next mergeable row (rows of another shape become suspects on the way).
    fn next_row(&mut self) -> Result<Option<CommandRow>, StoreError> {
        while !self.rows_exhausted {
            let Some(r) = self.rows.next()? else {
                self.rows_exhausted = true;
                break;
            };
            self.rows_checked += 1;
            let row = CommandRow {
                command_id: <[u8; 16]>::try_from(r.get_ref(0)?.as_blob()?)
                    .map_err(|_| StoreError::corrupt("a ledger command id is not 16 bytes"))?,
                stream: r.get(1)?,
                stream_key: r.get(2)?,
                first_version: r.get(3)?,
                last_version: r.get(4)?,
                first_position: r.get(5)?,
                last_position: r.get(6)?,
            };
            if row.mergeable() {
                return Ok(Some(row));
            }
            self.suspects.push(row.suspect());
        }
        Ok(None)
    }

    /// The current row is done: it is confirmed when every position of it matched.
    fn close_current(&mut self) {
        if let Some((row, matching)) = self.current.take() {
            if matching != row.last_position - row.first_position + 1 {
                self.suspects.push(row.suspect());
            }
        }
    }

    /// The next record of the log, in position order.
    pub(crate) fn record(&mut self, e: &Slot) -> Result<(), StoreError> {
        self.carrying += u64::from(e.command_id.is_some());
        loop {
            match &mut self.current {
                None => match self.next_row()? {
                    Some(row) => self.current = Some((row, 0)),
                    None => return Ok(()),
                },
                Some((row, _)) if e.position > row.last_position => self.close_current(),
                Some((row, _)) if e.position < row.first_position => return Ok(()),
                Some((row, matching)) => {
                    if row.fits(e) {
                        *matching += 1;
                        self.carrying_inside += u64::from(e.command_id == Some(row.command_id));
                    }
                    return Ok(());
                }
            }
        }
    }

    /// After the last record: the rows checked and every finding.
    pub(crate) fn finish(
        mut self,
        conn: &Connection,
    ) -> Result<(u64, Vec<LedgerFinding>), StoreError> {
        self.close_current();
        while let Some(row) = self.next_row()? {
            self.suspects.push(row.suspect());
        }
        let mut findings = Vec::new();
        // Name what is wrong with each suspect row by the one rule text of `crate::ledger`
        // (a suspect the exact check clears was only overlapped in the merge).
        for row in std::mem::take(&mut self.suspects) {
            let records =
                records_between(conn, row.outcome.first_position, row.outcome.last_position)?;
            let mut one = LedgerCheck::new();
            one.row(&row, &records);
            findings.extend(one.finish());
        }
        // When every record that carries a command id lies inside its own row, rules 2
        // and 3 hold (a record carries one command id, and command ids are the ledger's key).
        if self.carrying != self.carrying_inside {
            findings.extend(records_outside_their_row(conn)?);
        }
        Ok((self.rows_checked, findings))
    }
}

/// The records at positions `from..=to` (at most a batch's worth is ever asked for).
fn records_between(
    conn: &Connection,
    from: u64,
    to: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let to = to.min(from.saturating_add(crate::types::EVENTS_PER_APPEND_MAX as u64));
    let mut stmt = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS}, (SELECT s.stream_id FROM streams s \
         WHERE s.stream_key = events.stream_key) FROM events \
         WHERE position BETWEEN ?1 AND ?2 ORDER BY position"
    ))?;
    let mut q = stmt.query(params![from as i64, to as i64])?;
    let mut out = Vec::new();
    while let Some(r) = q.next()? {
        let stream: Option<String> = r.get(14)?;
        out.push(decode_row(r, stream.unwrap_or_default())?);
    }
    Ok(out)
}

/// Rules 2 and 3: every record carrying a command id outside that id's ledger row.
fn records_outside_their_row(conn: &Connection) -> Result<Vec<LedgerFinding>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT e.position, e.command_id, coalesce(s.stream_id, ''), e.version, \
                c.first_position, cs.stream_id \
         FROM events e \
         LEFT JOIN streams s ON s.stream_key = e.stream_key \
         LEFT JOIN commands c ON c.command_id = e.command_id \
         LEFT JOIN streams cs ON cs.stream_key = c.stream_key \
         WHERE e.command_id IS NOT NULL \
           AND (c.command_id IS NULL OR e.position NOT BETWEEN c.first_position AND c.last_position) \
         ORDER BY e.position",
    )?;
    let mut q = stmt.query([])?;
    // Records whose command id has no row go through the generic rules (first batch: no
    // row; later batches: written twice). Records outside an existing row are a second batch.
    let mut orphans = LedgerCheck::new();
    let mut findings = Vec::new();
    let mut last_outside: Option<(Uuid, String, u64)> = None;
    while let Some(r) = q.next()? {
        let position: i64 = r.get(0)?;
        let cid: Vec<u8> = r.get(1)?;
        let cid = Uuid::from_slice(&cid)
            .map_err(|_| StoreError::corrupt("a record's command id is not 16 bytes"))?;
        let stream: String = r.get(2)?;
        let version: i64 = r.get(3)?;
        let row_start: Option<i64> = r.get(4)?;
        match row_start {
            None => orphans.event(&minimal_record(
                position as u64,
                stream,
                version as u64,
                cid,
            )),
            Some(start) => {
                let continues = matches!(&last_outside, Some((c, s, p))
                    if *c == cid && *s == stream && p + 1 == position as u64);
                if !continues {
                    let row_stream: Option<String> = r.get(5)?;
                    let row_batch = (row_stream.unwrap_or_default(), start as u64);
                    let this_batch = (stream.clone(), position as u64);
                    // Name the two batches in log order.
                    let (first, second) = if position < start {
                        (this_batch, row_batch)
                    } else {
                        (row_batch, this_batch)
                    };
                    findings.push(LedgerFinding::CommandOnTwoBatches {
                        command_id: cid,
                        first,
                        second,
                    });
                }
                last_outside = Some((cid, stream, position as u64));
            }
        }
    }
    let mut all = orphans.finish();
    all.extend(findings);
    Ok(all)
}

/// A record with only the fields the ledger rules look at.
fn minimal_record(position: u64, stream_id: String, version: u64, cid: Uuid) -> RecordedEvent {
    RecordedEvent {
        event_id: Uuid::nil(),
        stream_id,
        version,
        position,
        recorded_at: chrono::DateTime::UNIX_EPOCH,
        event_type: String::new(),
        schema_version: 1,
        payload: Vec::new(),
        metadata: crate::types::Metadata {
            command_id: Some(cid),
            ..crate::types::Metadata::default()
        },
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}
