//! [`EventStore`] for [`SqliteStore`] and the subscriptions' [`LogSource`].

use super::*;

#[async_trait]
impl LogSource for Shared {
    async fn read_batch(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        // Subscriptions read small batches; doing it inline avoids a thread hop per batch.
        self.with_reader(|conn, shared| read_log(conn, shared, from, max))
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        request.validate()?;
        if self.is_read_only() {
            return Err(StoreError::ReadOnly {
                path: self.shared.path.display().to_string(),
                reason: "the store was opened read-only".to_owned(),
            });
        }
        self.shared.check_writable()?;
        let Some(queue) = &self.queue else {
            return Err(StoreError::Unavailable {
                reason: "store is closing".into(),
            });
        };
        let (reply, answer) = oneshot::channel();
        queue
            .send(WriteRequest { request, reply })
            .await
            .map_err(|_| StoreError::Unavailable {
                reason: "the writer has stopped".into(),
            })?;
        answer.await.map_err(|_| StoreError::Unavailable {
            reason: "the writer stopped before answering".into(),
        })?
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_id(stream_id)?;
        // Short, indexed reads run inline: a thread hop would cost more than the read.
        self.shared.with_reader(|conn, shared| {
            read_stream_rows(conn, shared, stream_id, from_version, max_count)
        })
    }

    async fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if max_count <= 1024 {
            return self
                .shared
                .with_reader(|conn, shared| read_log(conn, shared, from_position, max_count));
        }
        self.blocking_read(move |conn, shared| read_log(conn, shared, from_position, max_count))
            .await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        validate_stream_id(stream_id)?;
        self.shared.with_reader(|conn, shared| {
            Ok(stream_key_of(conn, shared.format, stream_id)?.map(|(_, v)| v))
        })
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        if let Some(head_tx) = &self.read_only_head {
            // No writer of ours publishes the head: read it (another process may append).
            let head: i64 = self.shared.with_reader(|conn, _| {
                Ok(
                    conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
                        r.get(0)
                    })?,
                )
            })?;
            head_tx.send_if_modified(|h| {
                let grown = head as u64 > *h;
                if grown {
                    *h = head as u64;
                }
                grown
            });
        }
        Ok(*self.head_rx.borrow())
    }

    async fn command_outcome(&self, command_id: Uuid) -> Result<Option<AppendOutcome>, StoreError> {
        self.shared.with_reader(|conn, _| {
            let row: Option<(i64, i64, i64, i64)> = conn
                .prepare_cached(
                    "SELECT first_version, last_version, first_position, last_position \
                     FROM commands WHERE command_id = ?1",
                )?
                .query_row([command_id.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            Ok(row.map(|(fv, lv, fp, lp)| AppendOutcome {
                first_version: fv as u64,
                last_version: lv as u64,
                first_position: fp as u64,
                last_position: lp as u64,
                deduplicated: false,
            }))
        })
    }

    async fn subscribe(&self, from_position: u64) -> Result<Subscription, StoreError> {
        Ok(Subscription::follow(
            self.shared.clone(),
            self.head_rx.clone(),
            from_position,
        ))
    }

    async fn verify_stream(&self, stream_id: &str) -> Result<VerifyReport, StoreError> {
        validate_stream_id(stream_id)?;
        let stream_id = stream_id.to_owned();
        self.blocking_read(move |conn, shared| {
            let mut report = VerifyReport::default();
            let streams = streams_to_verify(conn, shared.format, Some(&stream_id))?;
            if let Some((key, id, head)) = streams.into_iter().next() {
                report.first_broken = verify_one(conn, &id, key, head, &mut report)?;
            }
            Ok(report)
        })
        .await
    }

    async fn tree_nodes(&self, nodes: &[TreeNode]) -> Result<Vec<Hash>, StoreError> {
        let size = *self.head_rx.borrow();
        let nodes = nodes.to_vec();
        self.blocking_read(move |conn, shared| {
            read_tree_nodes(conn, shared.tree_layout, &nodes, size)
        })
        .await
    }

    async fn stored_tree_size(&self) -> Result<u64, StoreError> {
        self.blocking_read(|conn, shared| stored_leaf_count(conn, shared.tree_layout))
            .await
    }

    async fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        self.blocking_read(|conn, shared| {
            // One consistent snapshot for the whole walk.
            conn.execute_batch("BEGIN")?;
            let result = verify_chains(conn, shared);
            let _ = conn.execute_batch("COMMIT");
            result
        })
        .await
    }

    async fn verify_log(&self, prefix_size: Option<u64>) -> LogVerification {
        if let Ok(head) = self.head_position().await {
            let one_pass = self
                .blocking_read(move |conn, shared| {
                    Ok(log_in_one_pass(conn, shared, head, prefix_size))
                })
                .await;
            if let Ok(Some(done)) = one_pass {
                return done;
            }
        }
        LogVerification::in_two_walks(self, prefix_size).await
    }
}

/// `verify_all` inside the caller's read transaction.
fn verify_chains(conn: &Connection, shared: &Shared) -> Result<VerifyReport, StoreError> {
    let streams = streams_to_verify(conn, shared.format, None)?;
    let mut report = VerifyReport::default();
    // Every chain is walked even after a broken one: the counts and the ledger
    // check below cover the whole store.
    for (key, id, head) in streams {
        let broken = verify_one(conn, &id, key, head, &mut report)?;
        if report.first_broken.is_none() {
            report.first_broken = broken;
        }
    }
    (report.ledger_rows_checked, report.ledger) = crate::sqlite_ledger::check_ledger(conn)?;
    file_check(conn)?;
    // Records whose stream row is missing are invisible to the walk above.
    let orphans: i64 = conn.query_row(
        "SELECT count(*) FROM events e WHERE NOT EXISTS \
         (SELECT 1 FROM streams s WHERE s.stream_key = e.stream_key)",
        [],
        |r| r.get(0),
    )?;
    if orphans > 0 {
        return Err(StoreError::corrupt(format!(
            "{orphans} records belong to no stream"
        )));
    }
    Ok(report)
}
