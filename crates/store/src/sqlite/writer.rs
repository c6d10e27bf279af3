//! The one writer thread: group commit with a savepoint per request.

use super::*;

impl Writer {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<WriteRequest>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < self.batch_requests_max {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    /// Runs a parameterless statement through the statement cache (transaction control
    /// runs several times per batch; re-parsing it each time is measurable).
    pub(super) fn exec(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    pub(super) fn load_head(&self, stream_id: &str) -> Result<Option<StreamHead>, StoreError> {
        if let Some(h) = self.heads.get(stream_id) {
            return Ok(Some(*h));
        }
        // The head is the stream's last record (format 3 stores no head row); a stream row
        // without records (only a damaged file has one) starts from the genesis hash.
        let row: Option<(i64, Option<i64>, Option<Vec<u8>>)> = self
            .conn
            .prepare_cached(
                "SELECT s.stream_key, e.version, e.hash FROM streams s \
                 LEFT JOIN events e ON e.stream_key = s.stream_key \
                 WHERE s.stream_id = ?1 ORDER BY e.version DESC LIMIT 1",
            )?
            .query_row([stream_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(key, version, hash)| {
            Ok(StreamHead {
                key,
                version: version.unwrap_or(0) as u64,
                hash: match hash {
                    Some(h) => blob_hash(&h, "stream head hash")?,
                    None => GENESIS_HASH,
                },
            })
        })
        .transpose()
    }

    pub(super) fn ledger_lookup(
        &self,
        command_id: Uuid,
    ) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        let row: Option<(String, i64, i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT s.stream_id, c.first_version, c.last_version, c.first_position, \
                 c.last_position FROM commands c JOIN streams s ON s.stream_key = c.stream_key \
                 WHERE c.command_id = ?1",
            )?
            .query_row([command_id.as_bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        Ok(row.map(|(s, fv, lv, fp, lp)| {
            (
                s,
                AppendOutcome {
                    first_version: fv as u64,
                    last_version: lv as u64,
                    first_position: fp as u64,
                    last_position: lp as u64,
                    deduplicated: true,
                },
            )
        }))
    }

    /// Stages one request inside the open transaction, in its own savepoint.
    /// `Err` means the whole batch must be abandoned (an I/O error, not a caller error).
    pub(super) fn stage(
        &self,
        req: &AppendRequest,
        batch_heads: &HashMap<String, StreamHead>,
        batch_ledger: &HashMap<Uuid, (String, AppendOutcome)>,
        next_position: u64,
        frontier: &mut Frontier,
    ) -> Result<Staged, StoreError> {
        if let Some(cid) = req.command_id {
            let found = match batch_ledger.get(&cid) {
                Some(x) => Some(x.clone()),
                None => self.ledger_lookup(cid)?,
            };
            if let Some((stream, outcome)) = found {
                if stream != req.stream_id {
                    return Ok(Staged::Answered(Err(StoreError::CommandIdReused {
                        command_id: cid,
                        original_stream: stream,
                        stream: req.stream_id.clone(),
                    })));
                }
                return Ok(Staged::Answered(Ok(AppendOutcome {
                    deduplicated: true,
                    ..outcome
                })));
            }
        }
        let head = match batch_heads.get(&req.stream_id) {
            Some(h) => Some(*h),
            None => self.load_head(&req.stream_id)?,
        };
        let actual = head.map_or(0, |h| h.version);
        if !req.expected.admits(actual) {
            return Ok(Staged::Answered(Err(StoreError::VersionConflict {
                stream: req.stream_id.clone(),
                expected: req.expected,
                actual,
            })));
        }
        self.exec("SAVEPOINT append")?;
        // The tree grows on a copy, kept only if the savepoint is.
        let mut grown = frontier.clone();
        match self.write_rows(req, head, next_position, &mut grown) {
            Ok((head, outcome)) => {
                self.exec("RELEASE append")?;
                *frontier = grown;
                Ok(Staged::Written {
                    stream: req.stream_id.clone(),
                    head,
                    outcome,
                })
            }
            Err(err) => {
                // After some errors (SQLITE_FULL among them) SQLite has already rolled the
                // whole transaction back: no savepoint is left, and the error to report is
                // the original one, which then aborts the whole batch.
                let undone = self
                    .exec("ROLLBACK TO append")
                    .and_then(|()| self.exec("RELEASE append"));
                match err {
                    e @ StoreError::DuplicateEventId { .. } if undone.is_ok() => {
                        Ok(Staged::Answered(Err(e)))
                    }
                    e => Err(e),
                }
            }
        }
    }

    pub(super) fn write_rows(
        &self,
        req: &AppendRequest,
        head: Option<StreamHead>,
        first_position: u64,
        frontier: &mut Frontier,
    ) -> Result<(StreamHead, AppendOutcome), StoreError> {
        let key = match head {
            Some(h) => h.key,
            None => {
                self.conn
                    .prepare_cached("INSERT INTO streams (stream_id) VALUES (?1)")?
                    .execute(params![req.stream_id])?;
                self.conn.last_insert_rowid()
            }
        };
        let mut prev = head.map_or(GENESIS_HASH, |h| h.hash);
        let first_version = head.map_or(0, |h| h.version) + 1;
        let recorded_at_ns = req.recorded_at.timestamp_nanos_opt().unwrap_or_default();
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO events ({EVENT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))?;
        let mut put_node = self
            .conn
            .prepare_cached("INSERT INTO tree (leaf, nodes) VALUES (?1, ?2)")?;
        for (i, ev) in req.events.iter().enumerate() {
            let version = first_version + i as u64;
            let hash = record_hash(
                &prev,
                &HashInput {
                    stream_id: &req.stream_id,
                    version,
                    event_id: ev.event_id,
                    recorded_at_ns,
                    event_type: &ev.event_type,
                    schema_version: ev.schema_version,
                    payload: &ev.payload,
                    metadata: (&ev.metadata).into(),
                },
            );
            let m = &ev.metadata;
            let result = insert.execute(params![
                (first_position + i as u64) as i64,
                key,
                version as i64,
                ev.event_id.as_bytes(),
                recorded_at_ns,
                ev.event_type,
                ev.schema_version,
                ev.payload.as_bytes(),
                m.actor,
                m.command_id.as_ref().map(|u| u.as_bytes()),
                encode_correlation(m),
                m.causation_id.as_ref().map(|u| u.as_bytes()),
                &prev[..],
                &hash[..],
            ]);
            if let Err(err) = result {
                if is_unique_violation(&err, "event_id") {
                    return Err(StoreError::DuplicateEventId {
                        event_id: ev.event_id,
                    });
                }
                if is_unique_violation(&err, "events.position")
                    || is_unique_violation(&err, "events.stream_key")
                {
                    // Positions and versions come from this writer alone; a clash means
                    // another process writes to the same file, which the format forbids.
                    let reason = "another writer is appending to this store file".to_owned();
                    self.shared.poison(reason.clone());
                    return Err(StoreError::WritesRefused { reason });
                }
                return Err(err.into());
            }
            put_leaf(
                &self.conn,
                &mut put_node,
                frontier,
                first_position + i as u64,
                &hash,
            )?;
            prev = hash;
        }
        let n = req.events.len() as u64;
        let last_version = first_version + n - 1;
        let outcome = AppendOutcome {
            first_version,
            last_version,
            first_position,
            last_position: first_position + n - 1,
            deduplicated: false,
        };
        if let Some(cid) = req.command_id {
            self.conn
                .prepare_cached(
                    "INSERT INTO commands (command_id, stream_key, first_version, last_version, \
                     first_position, last_position) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    cid.as_bytes(),
                    key,
                    first_version as i64,
                    last_version as i64,
                    first_position as i64,
                    outcome.last_position as i64
                ])?;
        }
        Ok((
            StreamHead {
                key,
                version: last_version,
                hash: prev,
            },
            outcome,
        ))
    }

    pub(super) fn commit_batch(&mut self, batch: Vec<WriteRequest>) {
        if let Err(err) = self.shared.check_writable() {
            for r in batch {
                let _ = r.reply.send(Err(clone_refusal(&err)));
            }
            return;
        }
        match self.try_commit_batch(&batch) {
            Ok((results, written)) => {
                // Appends per group commit, i.e. per fsync (a no-op unless the embedding
                // process installed a metrics recorder, as `caseflow serve` does).
                metrics::histogram!("caseflow_store_commit_batch_requests")
                    .record(batch.len() as f64);
                for (stream, head) in written {
                    if self.heads.len() >= STREAM_CACHE_MAX {
                        self.heads.clear();
                    }
                    self.heads.insert(stream, head);
                }
                let last = results
                    .iter()
                    .filter_map(|r| match r {
                        Ok(o) if !o.deduplicated => Some(o.last_position),
                        _ => None,
                    })
                    .max();
                if let Some(last) = last {
                    self.next_position = last + 1;
                    // Publish only after COMMIT returned: readers can see the rows now.
                    self.head_tx.send_replace(last);
                }
                for (r, result) in batch.into_iter().zip(results) {
                    let _ = r.reply.send(result);
                }
            }
            Err((err, committing)) => {
                // Nothing of this batch is known to be durable. After a failed COMMIT
                // (a failed fsync looks like this) SQLite's view of the file cannot be
                // trusted, so refuse writes until the store is reopened.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.heads.clear();
                let reason = err.to_string();
                let disk_full = match &err {
                    StoreError::DiskFull { reason } => Some(reason.clone()),
                    _ => None,
                };
                if disk_full.is_some() {
                    // Out of space: refuse writes rather than fail every append one by one
                    // (each would stage rows, fail and roll back). Reopening after space is
                    // freed resumes from the last commit, which is intact.
                    self.shared.poison(err.to_string());
                } else if committing || matches!(err, StoreError::Corrupt { .. }) {
                    self.shared.poison(format!("commit failed: {reason}"));
                }
                for r in batch {
                    let _ = r.reply.send(Err(match &disk_full {
                        Some(full) => StoreError::DiskFull {
                            reason: full.clone(),
                        },
                        None => StoreError::Io {
                            reason: reason.clone(),
                        },
                    }));
                }
            }
        }
    }

    /// Returns each request's result and the stream heads written, or the error that
    /// aborted the batch and whether it came from COMMIT.
    #[allow(clippy::type_complexity)]
    pub(super) fn try_commit_batch(
        &mut self,
        batch: &[WriteRequest],
    ) -> Result<
        (
            Vec<Result<AppendOutcome, StoreError>>,
            HashMap<String, StreamHead>,
        ),
        (StoreError, bool),
    > {
        self.exec("BEGIN IMMEDIATE").map_err(|e| (e, false))?;
        let mut batch_heads: HashMap<String, StreamHead> = HashMap::new();
        let mut batch_ledger: HashMap<Uuid, (String, AppendOutcome)> = HashMap::new();
        let mut next_position = self.next_position;
        let mut frontier = self.frontier.clone();
        let mut results = Vec::with_capacity(batch.len());
        for r in batch {
            let staged = self
                .stage(
                    &r.request,
                    &batch_heads,
                    &batch_ledger,
                    next_position,
                    &mut frontier,
                )
                .map_err(|e| (e, false))?;
            match staged {
                Staged::Written {
                    stream,
                    head,
                    outcome,
                } => {
                    next_position = outcome.last_position + 1;
                    if let Some(cid) = r.request.command_id {
                        batch_ledger.insert(cid, (stream.clone(), outcome));
                    }
                    batch_heads.insert(stream, head);
                    results.push(Ok(outcome));
                }
                Staged::Answered(result) => results.push(result),
            }
        }
        if self.shared.fail_commits.load(Ordering::SeqCst) {
            // Test hook: behave exactly like a COMMIT whose fsync failed.
            return Err((
                StoreError::Io {
                    reason: "injected commit failure (simulated fsync error)".into(),
                },
                true,
            ));
        }
        self.exec("COMMIT").map_err(|e| (e, true))?;
        self.frontier = frontier;
        Ok((results, batch_heads))
    }
}

pub(super) fn clone_refusal(err: &StoreError) -> StoreError {
    StoreError::WritesRefused {
        reason: match err {
            StoreError::WritesRefused { reason } => reason.clone(),
            other => other.to_string(),
        },
    }
}

pub(super) fn is_unique_violation(err: &rusqlite::Error, column: &str) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(e, Some(msg)) => {
            e.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column)
        }
        _ => false,
    }
}
