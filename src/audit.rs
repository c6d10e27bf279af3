//! Audit: replay a case to a past version or time, verify hash chains and read models, and
//! write audit reports (who did what and when, stage by stage) in Markdown and JSON.

use std::fmt::Write as _;

use caseflow_domain::{CaseEvent, CaseId, CaseNumber, CaseState, Stage, describe, evolve};
use caseflow_projections::{case_id_of_stream, case_stream_id};
use caseflow_store::tree::{self, PublicKey, SignedTreeHead};
use caseflow_store::{BrokenLink, EventStore, LedgerFinding, RecordedEvent};

use crate::anchor::AnchorCheck;
use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::District;
use crate::engine::{Engine, READ_BATCH, ReadModels, decode};
use crate::error::EngineError;

/// A case as it stood at some point of its history.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSnapshot {
    /// The case.
    pub case_id: CaseId,
    /// The version the state reflects (events applied).
    pub version: u64,
    /// The latest version of the case today.
    pub latest_version: u64,
    /// The state after `version` events.
    pub state: CaseState,
    /// The events applied, in order.
    pub events: Vec<CaseEvent>,
}

/// One event of an audit report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Stream version.
    pub version: u64,
    /// Global position.
    pub position: u64,
    /// Event id.
    pub event_id: String,
    /// Event type (what was done).
    pub event_type: String,
    /// Acting unit and role (who).
    pub actor: String,
    /// When it was done (the command's issue time).
    pub at: DateTime<Utc>,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Stage before the event.
    pub stage_before: Stage,
    /// Stage after the event.
    pub stage_after: Stage,
    /// The command that produced it.
    pub command_id: Option<String>,
    /// What was decided, in a line (the district's language, names, district time).
    pub decided: String,
    /// SHA-256 chain hash of the record (hex).
    pub hash: String,
    /// Hash of the previous record of the stream (hex).
    pub prev_hash: String,
}

/// Time spent in one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageStay {
    /// The stage.
    pub stage: Stage,
    /// When the case entered it.
    pub entered_at: DateTime<Utc>,
    /// When it left (None = still there at the report's end).
    pub left_at: Option<DateTime<Utc>>,
    /// Seconds spent (up to the report's end for the current stage).
    pub duration_seconds: i64,
}

/// The audit of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseAudit {
    /// The case.
    pub case_id: CaseId,
    /// Its human number (`2026-0042`).
    pub number: Option<CaseNumber>,
    /// Short title (the reported summary).
    pub title: String,
    /// The stage at the end of the report (for a range: at its end, which may be before now).
    pub stage: Stage,
    /// The stage now, after every event of the case (equal to `stage` for a case report).
    pub stage_now: Stage,
    /// Stage by stage, with durations.
    pub stages: Vec<StageStay>,
    /// Set when the case's hash chain is broken: where and how. The report then shows
    /// records that were changed after they were written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_broken: Option<String>,
    /// Every event (within the report's range).
    pub events: Vec<AuditEntry>,
}

/// An audit report over one case or a time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// What the report covers, in words.
    pub scope: String,
    /// Start of the range (inclusive), if a range.
    pub from: Option<DateTime<Utc>>,
    /// End of the range (exclusive), if a range.
    pub to: Option<DateTime<Utc>>,
    /// Cases, in order of first event.
    pub cases: Vec<CaseAudit>,
}

/// A stream whose hash chain is broken (or could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenCase {
    /// The stream.
    pub stream_id: String,
    /// The case, when the stream is a case stream.
    pub case_id: Option<CaseId>,
    /// First broken version (0 when the stream could not be read at all).
    pub version: u64,
    /// What is wrong.
    pub fault: String,
}

/// A read model that differs from a rebuild from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DivergentReadModel {
    /// The projection's name.
    pub name: String,
    /// How it differs.
    pub detail: String,
}

/// The result of [`Engine::verify`] and [`verify_log`], in two sections.
///
/// The first section is the log itself — hash chains, the command-id ledger (and the Merkle
/// tree) — and is always complete: nothing about the read models can stop or change it.
/// The second compares the read models with a rebuild from the log; a read model that
/// cannot be opened or rebuilt is reported there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyOutcome {
    /// Streams whose chain was walked.
    pub streams_checked: u64,
    /// Events checked.
    pub events_checked: u64,
    /// Every stream with a broken chain.
    pub broken_cases: Vec<BrokenCase>,
    /// Command-id ledger rows checked against the log.
    pub ledger_rows_checked: u64,
    /// Every mismatch between the command-id ledger and the log.
    pub ledger: Vec<LedgerFinding>,
    /// The Merkle tree over the whole log: records against the stored tree (order across
    /// streams, deletions, truncation). `None` when it could not be checked (see `errors`).
    pub tree: Option<caseflow_store::tree::TreeReport>,
    /// The log against an anchor (a signed head kept outside the system), when one was given.
    pub anchor: Option<crate::anchor::AnchorCheck>,
    /// Problems that stopped part of the log check (e.g. the log cannot be read).
    pub errors: Vec<String>,
    /// Whether the read models were compared (false until the second section ran).
    pub read_models_checked: bool,
    /// True when there were no stored read models to compare (a store without a read-model
    /// file): the section then says only that the log folds into fresh read models.
    pub read_models_folded_only: bool,
    /// Every read model that differs from its rebuild.
    pub divergent_read_models: Vec<DivergentReadModel>,
    /// Problems that stopped the read-model comparison (a sidecar that cannot be opened, a
    /// log that cannot be folded).
    pub read_model_errors: Vec<String>,
}

impl VerifyOutcome {
    /// True when the log holds: every chain, the ledger, the tree, the anchor (if given),
    /// and nothing stopped the check.
    pub fn log_holds(&self) -> bool {
        self.broken_cases.is_empty()
            && self.ledger.is_empty()
            && self.tree.as_ref().is_none_or(|t| t.is_intact())
            && self.anchor.as_ref().is_none_or(|a| a.holds())
            && self.errors.is_empty()
    }

    /// Takes the read-model section of `other` (a comparison run on its own, beside the
    /// log check), keeping this outcome's log section.
    pub fn take_read_models(&mut self, other: VerifyOutcome) {
        self.read_models_checked |= other.read_models_checked;
        self.read_models_folded_only |= other.read_models_folded_only;
        self.divergent_read_models
            .extend(other.divergent_read_models);
        self.read_model_errors.extend(other.read_model_errors);
    }

    /// True when every read model compared equals its rebuild.
    pub fn read_models_hold(&self) -> bool {
        self.divergent_read_models.is_empty() && self.read_model_errors.is_empty()
    }

    /// True when the log holds and every read model equals its rebuild.
    pub fn is_ok(&self) -> bool {
        self.log_holds() && self.read_models_hold()
    }

    /// A human-readable report (Markdown): both sections.
    pub fn to_markdown(&self) -> String {
        let mut s = self.log_markdown();
        s.push_str(&self.read_models_markdown());
        s
    }

    /// The first section (the log) in Markdown.
    pub fn log_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Verify: {}\n\n## The log: {}\n\nStreams checked: {}, events checked: {}, ledger rows checked: {}.\n",
            if self.is_ok() {
                "all holds"
            } else if self.log_holds() {
                "the log holds; read models differ"
            } else {
                "BROKEN"
            },
            if self.log_holds() { "holds" } else { "BROKEN" },
            self.streams_checked,
            self.events_checked,
            self.ledger_rows_checked
        );
        if !self.broken_cases.is_empty() {
            let _ = writeln!(s, "### Broken hash chains\n");
            for b in &self.broken_cases {
                let _ = writeln!(
                    s,
                    "- case {} (stream {}), version {}: {}",
                    b.case_id.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    b.stream_id,
                    b.version,
                    b.fault
                );
            }
            s.push('\n');
        }
        self.tree_markdown(&mut s);
        if !self.ledger.is_empty() {
            let _ = writeln!(s, "### Command-id ledger mismatches\n");
            for f in &self.ledger {
                let _ = writeln!(s, "- {f}");
            }
            s.push('\n');
        }
        if !self.errors.is_empty() {
            let _ = writeln!(s, "### Log checks that could not run\n");
            for e in &self.errors {
                let _ = writeln!(s, "- {e}");
            }
            s.push('\n');
        }
        s
    }

    /// The second section (the read models) in Markdown.
    pub fn read_models_markdown(&self) -> String {
        let mut s = String::new();
        if !self.read_models_checked {
            let _ = writeln!(s, "## Read models: not compared\n");
            return s;
        }
        let _ = writeln!(
            s,
            "## Read models: {}\n",
            if !self.read_models_hold() {
                "DIFFER"
            } else if self.read_models_folded_only {
                "none stored to compare; the log folds into fresh read models without error"
            } else {
                "each equals a rebuild from the log"
            }
        );
        if !self.divergent_read_models.is_empty() {
            let _ = writeln!(s, "### Read models that differ from a rebuild\n");
            for d in &self.divergent_read_models {
                let _ = writeln!(s, "- {}: {}", d.name, d.detail);
            }
            s.push('\n');
        }
        if !self.read_model_errors.is_empty() {
            let _ = writeln!(s, "### Read-model checks that could not run\n");
            for e in &self.read_model_errors {
                let _ = writeln!(s, "- {e}");
            }
            s.push('\n');
        }
        s
    }
}

impl VerifyOutcome {
    /// The Merkle tree and anchor sections of the report.
    fn tree_markdown(&self, s: &mut String) {
        if let Some(tree) = &self.tree {
            let _ = writeln!(
                s,
                "### Merkle tree\n\n{} records, root {}: {}.\n",
                tree.computed.tree_size,
                hex::encode(tree.computed.root_hash),
                match &tree.first_fault {
                    None => "the records and the stored tree agree".to_owned(),
                    Some(f) if tree.faults > 1 =>
                        format!("{f} (and {} more faults)", tree.faults - 1),
                    Some(f) => f.to_string(),
                }
            );
        }
        if let Some(anchor) = &self.anchor {
            let _ = writeln!(
                s,
                "### Anchor\n\nSigned head of {} records, root {}, signed at {} by key {}{}.\n",
                anchor.anchored.tree_size,
                hex::encode(anchor.anchored.root_hash),
                anchor.signed_at,
                anchor.public_key,
                if anchor.key_trusted {
                    " (the trusted key)"
                } else {
                    " (the head's own key: pass --pubkey to check who signed it)"
                }
            );
            if anchor.holds() {
                let _ = writeln!(
                    s,
                    "The log of {} records extends the anchored log: consistency proven.\n",
                    anchor.current_size
                );
            } else {
                for f in &anchor.findings {
                    let _ = writeln!(s, "- {f}");
                }
                s.push('\n');
            }
        }
    }
}

/// Formats a duration like `3d 4h 05m`.
pub fn human_duration(seconds: i64) -> String {
    let d = Duration::seconds(seconds.max(0));
    let days = d.num_days();
    let hours = d.num_hours() % 24;
    let minutes = d.num_minutes() % 60;
    if days > 0 {
        format!("{days}d {hours}h {minutes:02}m")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else {
        format!("{minutes}m")
    }
}

impl Engine {
    /// The state of a case after its first `version` events.
    pub async fn state_as_of_version(
        &self,
        case_id: CaseId,
        version: u64,
    ) -> Result<CaseSnapshot, EngineError> {
        let records = self.read_stream_all(&case_stream_id(case_id)).await?;
        let latest = records.len() as u64;
        if latest == 0 {
            return Err(EngineError::CaseNotFound(case_id));
        }
        if version == 0 || version > latest {
            return Err(EngineError::VersionOutOfRange {
                case_id,
                requested: version,
                latest,
            });
        }
        let keep = usize::try_from(version).unwrap_or(usize::MAX);
        snapshot(case_id, &records[..keep], latest)
    }

    /// The state of a case as the store recorded it at `at`: every event recorded at or
    /// before that instant. (Recorded time, not the business time in the event: an auditor
    /// asks what the system knew then.)
    pub async fn state_as_of_time(
        &self,
        case_id: CaseId,
        at: DateTime<Utc>,
    ) -> Result<CaseSnapshot, EngineError> {
        let records = self.read_stream_all(&case_stream_id(case_id)).await?;
        let latest = records.len() as u64;
        if latest == 0 {
            return Err(EngineError::CaseNotFound(case_id));
        }
        let keep = records.iter().take_while(|r| r.recorded_at <= at).count();
        if keep == 0 {
            return Err(EngineError::NotYetReported {
                case_id,
                at,
                reported_at: records[0].recorded_at,
            });
        }
        snapshot(case_id, &records[..keep], latest)
    }

    /// Verifies the log ([`verify_log`]: every hash chain and the command-id ledger), then
    /// rebuilds every read model from the log and compares it with the live one. The outcome
    /// names each broken case, each ledger mismatch and each divergent model; a read-model
    /// problem never hides or stops the log's section.
    pub async fn verify(&self) -> Result<VerifyOutcome, EngineError> {
        self.verify_with_anchor(None).await
    }

    /// [`Engine::verify`], and with an anchor (a signed head and, if the auditor has it, the
    /// key they trust) also that the log extends the anchored one. A head whose signature
    /// or key does not check is an error: nothing can be proven against it.
    pub async fn verify_with_anchor(
        &self,
        anchor: Option<(&SignedTreeHead, Option<&PublicKey>)>,
    ) -> Result<VerifyOutcome, EngineError> {
        let mut outcome = verify_log(self.inner.store.as_ref(), anchor).await?;
        self.verify_read_models(&mut outcome).await;
        Ok(outcome)
    }

    /// The second section of [`Engine::verify`]: compares the live read models with a
    /// rebuild from the log, recording the result in `outcome`.
    pub async fn verify_read_models(&self, outcome: &mut VerifyOutcome) {
        outcome.read_models_checked = true;
        self.compare_read_models(outcome).await;
    }

    /// The second section of a verify for an engine just opened with in-memory read models:
    /// opening folded the whole log into them, which is the check (every record decoded and
    /// folded, or the open failed), so they are not folded a second time to compare with
    /// themselves. Reports any projection that stopped. On an engine whose read models were
    /// kept up to date live, or loaded from a file, use [`Engine::verify_read_models`].
    pub async fn verify_rebuilt_read_models(&self, outcome: &mut VerifyOutcome) {
        outcome.read_models_checked = true;
        outcome.read_models_folded_only = true;
        let read = self.inner.read.lock().await;
        for status in read.runner.status().projections {
            if let Some(reason) = status.stopped {
                outcome.divergent_read_models.push(DivergentReadModel {
                    name: status.name.to_owned(),
                    detail: format!("stopped: {reason}"),
                });
            }
        }
    }

    async fn compare_read_models(&self, outcome: &mut VerifyOutcome) {
        let mut live = self.inner.read.lock().await;
        if let Err(e) = live.runner.catch_up().await {
            outcome.divergent_read_models.push(DivergentReadModel {
                name: "*".to_owned(),
                detail: format!("the live read models cannot catch up with the log: {e}"),
            });
            return;
        }
        let mut fresh = match ReadModels::new(
            std::sync::Arc::clone(&self.inner.store),
            &self.inner.district,
            None,
        )
        .await
        {
            Ok(fresh) => fresh,
            Err(e) => {
                outcome
                    .read_model_errors
                    .push(format!("cannot set up a rebuild: {e}"));
                return;
            }
        };
        if let Err(e) = fresh.runner.catch_up().await {
            outcome.divergent_read_models.push(DivergentReadModel {
                name: "*".to_owned(),
                detail: format!("a rebuild from the log fails: {e}"),
            });
            return;
        }
        macro_rules! compare {
            ($field:ident, $count:ident) => {{
                match (live.$field.read(), fresh.$field.read()) {
                    (Ok(l), Ok(f)) => {
                        if l.stopped().is_some() {
                            outcome.divergent_read_models.push(DivergentReadModel {
                                name: live.$field.name().to_owned(),
                                detail: format!("stopped: {}", l.stopped().unwrap_or_default()),
                            });
                        } else if *l != *f {
                            outcome.divergent_read_models.push(DivergentReadModel {
                                name: live.$field.name().to_owned(),
                                detail: format!(
                                    "differs from a rebuild (live: {} cases at position {}, rebuild: {} cases at position {})",
                                    l.$count(),
                                    l.checkpoint(),
                                    f.$count(),
                                    f.checkpoint()
                                ),
                            });
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => outcome.read_model_errors.push(format!("read model unavailable: {e}")),
                }
            }};
        }
        compare!(todo, case_count);
        compare!(timeline, case_count);
        compare!(deadlines, case_count);
        compare!(numbers, len);
        match (live.stats.read(), fresh.stats.read()) {
            (Ok(l), Ok(f)) => {
                if *l != *f {
                    outcome.divergent_read_models.push(DivergentReadModel {
                        name: live.stats.name().to_owned(),
                        detail: "differs from a rebuild".to_owned(),
                    });
                }
            }
            (Err(e), _) | (_, Err(e)) => outcome
                .read_model_errors
                .push(format!("read model unavailable: {e}")),
        }
    }

    /// The audit report of one case: every event with who, when, stage transitions and
    /// hashes, and the time spent in each stage (the current stage up to `now`).
    pub async fn audit_case(
        &self,
        case_id: CaseId,
        now: DateTime<Utc>,
    ) -> Result<AuditReport, EngineError> {
        let records = self.read_stream_all(&case_stream_id(case_id)).await?;
        if records.is_empty() {
            return Err(EngineError::CaseNotFound(case_id));
        }
        let mut audit = case_audit(self.district(), case_id, &records, None, now)?;
        audit.number = self.case_number(case_id).await?;
        audit.chain_broken = self.chain_fault(case_id).await;
        Ok(AuditReport {
            scope: format!("case {case_id}"),
            from: None,
            to: None,
            cases: vec![audit],
        })
    }

    /// Where and how a case's hash chain is broken, or `None` when it holds. A chain that
    /// cannot even be walked counts as broken.
    pub async fn chain_fault(&self, case_id: CaseId) -> Option<String> {
        match self
            .inner
            .store
            .verify_stream(&case_stream_id(case_id))
            .await
        {
            Ok(report) => report
                .first_broken
                .map(|b| format!("at version {}: {}", b.version, b.fault)),
            Err(e) => Some(format!("the chain cannot be walked: {e}")),
        }
    }

    /// The audit report of everything recorded in `[from, to)`, case by case.
    pub async fn audit_range(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<AuditReport, EngineError> {
        self.audit_range_with(from, to, &crate::Silent).await
    }

    /// [`Engine::audit_range`], reporting the cases read.
    pub async fn audit_range_with(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: &dyn crate::Progress,
    ) -> Result<AuditReport, EngineError> {
        let mut cases = Vec::new();
        let case_ids = self.case_ids().await?;
        let numbers = self.case_numbers(&case_ids).await?;
        progress.total(case_ids.len() as u64);
        for (done, case_id) in case_ids.into_iter().enumerate() {
            progress.done(done as u64);
            let records = self.read_stream_all(&case_stream_id(case_id)).await?;
            if !records
                .iter()
                .any(|r| r.recorded_at >= from && r.recorded_at < to)
            {
                continue;
            }
            let mut audit = case_audit(self.district(), case_id, &records, Some((from, to)), to)?;
            audit.number = numbers.get(&case_id).copied();
            audit.chain_broken = self.chain_fault(case_id).await;
            cases.push(audit);
        }
        Ok(AuditReport {
            scope: format!(
                "events recorded from {} to {}",
                from.to_rfc3339(),
                to.to_rfc3339()
            ),
            from: Some(from),
            to: Some(to),
            cases,
        })
    }
}

fn snapshot(
    case_id: CaseId,
    records: &[RecordedEvent],
    latest: u64,
) -> Result<CaseSnapshot, EngineError> {
    let mut state = CaseState::default();
    let mut events = Vec::with_capacity(records.len());
    for r in records {
        let e = decode(r)?;
        evolve(&mut state, &e);
        events.push(e);
    }
    Ok(CaseSnapshot {
        case_id,
        version: records.len() as u64,
        latest_version: latest,
        state,
        events,
    })
}

fn case_audit(
    district: &District,
    case_id: CaseId,
    records: &[RecordedEvent],
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    end: DateTime<Utc>,
) -> Result<CaseAudit, EngineError> {
    let lang = district.org.info().language;
    let mut state = CaseState::default();
    let mut stage_at_end = None;
    let mut entries = Vec::new();
    let mut stages: Vec<StageStay> = Vec::new();
    for r in records {
        if let Some((_, to)) = range {
            if r.recorded_at >= to && stage_at_end.is_none() {
                stage_at_end = Some(state.stage());
            }
        }
        let event = decode(r)?;
        if stage_at_end.is_some() {
            // After the range: only the stage now is wanted.
            evolve(&mut state, &event);
            continue;
        }
        let before = state.stage();
        evolve(&mut state, &event);
        let after = state.stage();
        let at = event.at();
        if before != after || stages.is_empty() {
            if let Some(last) = stages.last_mut() {
                last.left_at = Some(at);
                last.duration_seconds = (at - last.entered_at).num_seconds();
            }
            stages.push(StageStay {
                stage: after,
                entered_at: at,
                left_at: None,
                duration_seconds: 0,
            });
        }
        let in_range = range.is_none_or(|(from, to)| r.recorded_at >= from && r.recorded_at < to);
        if in_range {
            entries.push(AuditEntry {
                version: r.version,
                position: r.position,
                event_id: r.event_id.to_string(),
                event_type: r.event_type.clone(),
                actor: event.actor().to_string(),
                at,
                recorded_at: r.recorded_at,
                stage_before: before,
                stage_after: after,
                command_id: r.metadata.command_id.map(|c| c.to_string()),
                decided: describe(&event, &district.org, &district.calendar, lang),
                hash: hex::encode(r.hash),
                prev_hash: hex::encode(r.prev_hash),
            });
        }
    }
    if let Some(last) = stages.last_mut() {
        if last.left_at.is_none() {
            last.duration_seconds = (end - last.entered_at).num_seconds().max(0);
        }
    }
    Ok(CaseAudit {
        case_id,
        number: None,
        title: state.case().map(|c| c.summary.clone()).unwrap_or_default(),
        stage: stage_at_end.unwrap_or(state.stage()),
        stage_now: state.stage(),
        stages,
        events: entries,
        chain_broken: None,
    })
}

impl AuditReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as Markdown, times shown at `offset` (the district's UTC offset): every
    /// event with when it was issued and recorded, who, what was decided, the command that
    /// decided it and both hashes, so a reader of the Markdown sees what the JSON holds.
    pub fn to_markdown(&self, offset: FixedOffset) -> String {
        let t = |d: &DateTime<Utc>| {
            d.with_timezone(&offset)
                .to_rfc3339_opts(SecondsFormat::Secs, false)
        };
        let mut s = String::new();
        let _ = writeln!(s, "# Audit report: {}\n", self.scope);
        let _ = writeln!(s, "{} case(s).\n", self.cases.len());
        for case in &self.cases {
            match case.number {
                Some(n) => writeln!(s, "## Case {n} ({})\n", case.case_id),
                None => writeln!(s, "## Case {}\n", case.case_id),
            }
            .ok();
            if let Some(fault) = &case.chain_broken {
                let _ = writeln!(
                    s,
                    "- **Hash chain BROKEN** {fault}: records of this case were changed after they were written; run `caseflow verify`."
                );
            }
            let _ = writeln!(s, "- Title: {}", case.title);
            if self.to.is_some() {
                let _ = writeln!(s, "- Stage at the end of the range: {}", case.stage);
            }
            let _ = writeln!(s, "- Stage now: {}\n", case.stage_now);
            write_stages(&mut s, case, &t);
            write_events(&mut s, case, &t);
            s.push('\n');
        }
        s
    }
}

fn write_stages(s: &mut String, case: &CaseAudit, t: &dyn Fn(&DateTime<Utc>) -> String) {
    let _ = writeln!(
        s,
        "### Stages\n\n| stage | entered | left | duration |\n|---|---|---|---|"
    );
    for st in &case.stages {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            st.stage,
            t(&st.entered_at),
            st.left_at
                .as_ref()
                .map_or_else(|| "(current)".to_owned(), t),
            human_duration(st.duration_seconds)
        );
    }
}

fn write_events(s: &mut String, case: &CaseAudit, t: &dyn Fn(&DateTime<Utc>) -> String) {
    let _ = writeln!(
        s,
        "\n### Events\n\n| v | issued | recorded | who | what | decided | stage | command | prev hash | hash |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for e in &case.events {
        let stage = if e.stage_before == e.stage_after {
            e.stage_after.to_string()
        } else {
            format!("{} → {}", e.stage_before, e.stage_after)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | `{}` | `{}` | `{}` |",
            e.version,
            t(&e.at),
            t(&e.recorded_at),
            e.actor,
            e.event_type,
            e.decided.replace('|', "\\|"),
            stage,
            e.command_id.as_deref().unwrap_or("-"),
            &e.prev_hash,
            &e.hash
        );
    }
}

/// Verifies the log alone — the first section of a verify report, which nothing about the
/// read models can stop: `verify_all` (every chain, the command-id ledger, the file's
/// integrity), when a chain is broken each stream's chain (so that every broken case is
/// named, not only the first), the Merkle tree, and the anchor if one is given. A check that
/// cannot run is listed in [`VerifyOutcome::errors`]; the only error is an anchor whose
/// signature or key does not check (nothing can be proven against it).
pub async fn verify_log(
    store: &dyn EventStore,
    anchor: Option<(&SignedTreeHead, Option<&PublicKey>)>,
) -> Result<VerifyOutcome, EngineError> {
    let anchored = match anchor {
        Some((head, trusted)) => Some((head, trusted, head.verify(trusted)?)),
        None => None,
    };
    let mut outcome = VerifyOutcome::default();
    let prefix = anchored.as_ref().map(|(_, _, a)| a.tree_size);
    // Chains, ledger and tree from one read of the log where the backend can.
    let checked = store.verify_log(prefix).await;
    let whole = checked.chains;
    let walk_each_stream = match &whole {
        Ok(report) => {
            outcome.streams_checked = report.streams_checked;
            outcome.events_checked = report.events_checked;
            outcome.ledger_rows_checked = report.ledger_rows_checked;
            outcome.ledger = report.ledger.clone();
            report.first_broken.is_some()
        }
        Err(e) => {
            outcome
                .errors
                .push(format!("the whole-store check failed: {e}"));
            true
        }
    };
    if walk_each_stream {
        walk_streams(store, &mut outcome).await;
    }
    if let Ok(report) = whole {
        if let Some(broken) = report.first_broken {
            if !outcome
                .broken_cases
                .iter()
                .any(|b| b.stream_id == broken.stream_id)
            {
                outcome.broken_cases.push(broken_case(&broken));
            }
        }
    }
    match checked.tree {
        Ok(report) => {
            if let Some((head, trusted, anchored)) = anchored {
                outcome.anchor = Some(AnchorCheck {
                    findings: tree::anchor_findings(store, &anchored, &report).await,
                    anchored,
                    signed_at: head.timestamp.clone(),
                    public_key: head.public_key.clone(),
                    key_trusted: trusted.is_some(),
                    current_size: report.computed.tree_size,
                });
            }
            outcome.tree = Some(report);
        }
        Err(e) => {
            // A tree that cannot be read (a record or node removed) proves nothing: against
            // an anchor that is a finding of its own, so the anchor section still says so.
            if let Some((head, trusted, anchored)) = anchored {
                outcome.anchor = Some(AnchorCheck {
                    findings: vec![format!(
                        "the log cannot be proven to extend the anchor: its Merkle tree cannot \
                         be checked ({e})"
                    )],
                    anchored,
                    signed_at: head.timestamp.clone(),
                    public_key: head.public_key.clone(),
                    key_trusted: trusted.is_some(),
                    current_size: outcome.events_checked,
                });
            }
            outcome
                .errors
                .push(format!("the Merkle tree cannot be checked: {e}"))
        }
    }
    Ok(outcome)
}

fn broken_case(broken: &BrokenLink) -> BrokenCase {
    BrokenCase {
        stream_id: broken.stream_id.clone(),
        case_id: case_id_of_stream(&broken.stream_id),
        version: broken.version,
        fault: broken.fault.to_string(),
    }
}

/// Walks each stream of the log on its own, naming every broken chain (the store's
/// `verify_all` names the first only).
async fn walk_streams(store: &dyn EventStore, outcome: &mut VerifyOutcome) {
    let mut streams: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut from = 1u64;
    loop {
        match store.read_all(from, READ_BATCH).await {
            Ok(batch) => {
                let Some(last) = batch.last() else { break };
                from = last.position + 1;
                for r in &batch {
                    if seen.insert(r.stream_id.clone()) {
                        streams.push(r.stream_id.clone());
                    }
                }
            }
            Err(e) => {
                outcome.errors.push(format!(
                    "the global log cannot be read from position {from}: {e}"
                ));
                break;
            }
        }
    }
    let (mut streams_checked, mut events_checked) = (0, 0);
    for stream in &streams {
        match store.verify_stream(stream).await {
            Ok(report) => {
                streams_checked += report.streams_checked.max(1);
                events_checked += report.events_checked;
                if let Some(broken) = report.first_broken {
                    outcome.broken_cases.push(broken_case(&broken));
                }
            }
            Err(e) => outcome.broken_cases.push(BrokenCase {
                stream_id: stream.clone(),
                case_id: case_id_of_stream(stream),
                version: 0,
                fault: format!("cannot be read: {e}"),
            }),
        }
    }
    outcome.streams_checked = outcome.streams_checked.max(streams_checked);
    outcome.events_checked = outcome.events_checked.max(events_checked);
}
