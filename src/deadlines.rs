//! The deadline watcher: when a time limit has passed (by the injected clock) it issues the
//! domain's `UrgeOverdue` — first the urging (督办) by the supervising unit, then, if the
//! deadline is still missed after the grace period, the escalation by a leader of a room
//! of the case's zone. Each urging of each missed deadline is issued once: its command id is
//! derived from the case, the deadline and its due time, so the store's command ledger
//! makes a repeat (another process, or the same one after a restart) write nothing.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use caseflow_domain::{
    Actor, CaseId, CaseState, Command, CommandKind, DeadlineKind, NextContext, Role, UnitId,
    UrgeOverdue, next_commands_of, urgeable,
};
use caseflow_projections::{
    Applied, ApplyFailure, CaseJsonTable, ChangedCases, Column, CommitBatch, Projection,
    ProjectionError, StoredRows, TableSpec,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info, info_span, warn};
use uuid::Uuid;

use crate::engine::{CommandEnvelope, Engine};
use crate::error::EngineError;
use crate::ids::derived_id;

/// Name of the engine's deadline read model.
pub const DEADLINE_PROJECTION: &str = "engine_deadlines";

/// Where the SQLite variant keeps each case's open deadlines.
const DEADLINE_TABLE: CaseJsonTable = CaseJsonTable::new(
    DEADLINE_PROJECTION,
    "engine_deadlines",
    &[Column::text("case_id"), Column::text("deadlines")],
);

/// One open deadline as the watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedDeadline {
    /// Which time limit.
    pub kind: DeadlineKind,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// After a first urging: when it may be escalated.
    pub respond_by: Option<DateTime<Utc>>,
    /// Whether it was escalated already.
    pub escalated: bool,
}

impl WatchedDeadline {
    /// Whether, at `now`, this deadline needs an urging (`Some(false)`) or an escalation
    /// (`Some(true)`).
    pub fn needs_urging(&self, now: DateTime<Utc>) -> Option<bool> {
        match (self.respond_by, self.escalated) {
            (None, _) if now > self.due_at => Some(false),
            (Some(respond_by), false) if now > respond_by => Some(true),
            _ => None,
        }
    }
}

/// Read model of every open deadline of every open case (the watcher's index).
#[derive(Debug, Default)]
pub struct DeadlineProjection {
    cases: BTreeMap<CaseId, Vec<WatchedDeadline>>,
    /// Cases changed since the last save (only while a SQLite runner tracks changes).
    changed: ChangedCases,
}

/// Equal when the read models hold the same deadlines (change tracking is bookkeeping).
impl PartialEq for DeadlineProjection {
    fn eq(&self, other: &Self) -> bool {
        self.cases == other.cases
    }
}

impl DeadlineProjection {
    /// An empty read model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every (case, deadline, escalate?) that needs urging at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<(CaseId, WatchedDeadline, bool)> {
        self.cases
            .iter()
            .flat_map(|(case, deadlines)| {
                deadlines
                    .iter()
                    .filter_map(move |d| d.needs_urging(now).map(|esc| (*case, d.clone(), esc)))
            })
            .collect()
    }

    /// Open deadlines of one case.
    pub fn for_case(&self, case_id: &CaseId) -> &[WatchedDeadline] {
        self.cases.get(case_id).map_or(&[], Vec::as_slice)
    }

    /// Number of cases with at least one open deadline.
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }
}

impl Projection for DeadlineProjection {
    fn name(&self) -> &'static str {
        DEADLINE_PROJECTION
    }

    fn apply(&mut self, applied: &Applied<'_>) -> Result<(), ApplyFailure> {
        let deadlines: Vec<WatchedDeadline> = if applied.state.is_open() {
            applied
                .state
                .deadlines()
                .map(|d| WatchedDeadline {
                    kind: d.kind,
                    due_at: d.due_at,
                    respond_by: d.urged.as_ref().map(|u| u.respond_by),
                    escalated: d.escalated.is_some(),
                })
                .collect()
        } else {
            Vec::new()
        };
        if deadlines.is_empty() {
            self.cases.remove(&applied.case_id);
        } else {
            self.cases.insert(applied.case_id, deadlines);
        }
        self.changed.mark(applied.case_id);
        Ok(())
    }

    fn reset(&mut self) {
        self.cases.clear();
        self.changed.clear();
    }

    fn tables(&self) -> &'static [TableSpec] {
        &[DEADLINE_TABLE.spec]
    }

    fn load(&mut self, mut rows: StoredRows) -> Result<(), ProjectionError> {
        self.cases.clear();
        let cases = &mut self.cases;
        DEADLINE_TABLE.load(rows.take(&DEADLINE_TABLE.spec), |case_id, deadlines| {
            cases.insert(case_id, deadlines);
            Ok(())
        })?;
        self.changed.clear();
        Ok(())
    }

    fn track_changes(&mut self, on: bool) {
        self.changed.track(on);
    }

    fn take_changes(&mut self, batch: &mut CommitBatch) -> Result<(), ProjectionError> {
        DEADLINE_TABLE.take_changes(batch, &mut self.changed, |case_id| self.cases.get(case_id))
    }

    fn discard_changes(&mut self) {
        self.changed.clear();
    }
}

/// One urging the watcher issued (or found already issued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Urged {
    /// The case.
    pub case_id: CaseId,
    /// The missed deadline.
    pub deadline: DeadlineKind,
    /// The missed due time.
    pub due_at: DateTime<Utc>,
    /// False for the first urging, true for the escalation.
    pub escalated: bool,
    /// The unit that urged.
    pub by: UnitId,
    /// The command id (derived from case, deadline and due time).
    pub command_id: Uuid,
}

/// What one pass of the watcher did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchReport {
    /// Urgings written in this pass.
    pub issued: Vec<Urged>,
    /// Urgings that an earlier pass (maybe before a restart) had already written.
    pub already_issued: usize,
    /// Urgings the domain refused, with the reason (e.g. the case moved on meanwhile).
    pub refused: Vec<(CaseId, DeadlineKind, String)>,
}

/// The command id of the urging (or escalation) of one missed deadline.
pub fn urge_command_id(
    case_id: CaseId,
    kind: DeadlineKind,
    due_at: DateTime<Utc>,
    escalate: bool,
) -> Uuid {
    let kind = serde_json::to_string(&kind).unwrap_or_default();
    derived_id(
        "caseflow.deadline-watcher.v1",
        &[
            &case_id.to_string(),
            &kind,
            &due_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            if escalate { "escalate" } else { "urge" },
        ],
    )
}

impl Engine {
    /// One pass of the deadline watcher at `now`: urges every missed deadline not yet urged,
    /// escalates every urged deadline still missed after its grace period. Idempotent.
    pub async fn check_deadlines(&self, now: DateTime<Utc>) -> Result<WatchReport, EngineError> {
        self.refresh().await?;
        let due = {
            let read = self.inner.read.lock().await;
            let deadlines = read.deadlines.read()?;
            deadlines.due(now)
        };
        let mut report = WatchReport::default();
        for (case_id, deadline, escalate) in due {
            let (state, _) = self.load_state(case_id).await?;
            // The index may lag a concurrent command; the case's own state decides.
            if !urgeable(&state, now).contains(&(deadline.kind, escalate)) {
                continue;
            }
            let Some(actor) = self.urging_actor(&state, deadline.kind, escalate, now) else {
                report.refused.push((
                    case_id,
                    deadline.kind,
                    "nobody may urge this deadline now".to_owned(),
                ));
                continue;
            };
            let by = actor.unit.clone();
            let command_id = urge_command_id(case_id, deadline.kind, deadline.due_at, escalate);
            let note = if escalate {
                format!(
                    "escalated: the {:?} time limit is still missed after urging",
                    deadline.kind
                )
            } else {
                format!(
                    "urged: the {:?} time limit passed on {}",
                    deadline.kind, deadline.due_at
                )
            };
            let envelope = CommandEnvelope::new(
                command_id,
                actor,
                now,
                UrgeOverdue {
                    case_id,
                    deadline: deadline.kind,
                    note,
                },
            );
            match self.execute(envelope).await {
                Ok(outcome) if outcome.replayed => report.already_issued += 1,
                Ok(_) => {
                    info!(%case_id, deadline = ?deadline.kind, escalate, "deadline urged");
                    report.issued.push(Urged {
                        case_id,
                        deadline: deadline.kind,
                        due_at: deadline.due_at,
                        escalated: escalate,
                        by,
                        command_id,
                    });
                }
                Err(EngineError::Rejected { source, .. }) => {
                    warn!(%case_id, deadline = ?deadline.kind, %source, "urging refused");
                    report
                        .refused
                        .push((case_id, deadline.kind, source.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// On whose behalf the watcher urges a deadline, as the domain's rule for `UrgeOverdue`
    /// lists the issuers: for a first urging the natural issuer (the lead unit, else a room of
    /// the zone); for an escalation a room of the zone other than the lead unit where there is
    /// one, so it goes upwards. The actor is that unit with the `Watcher` role: the record
    /// says the rule urged, not a person.
    fn urging_actor(
        &self,
        state: &CaseState,
        kind: DeadlineKind,
        escalate: bool,
        now: DateTime<Utc>,
    ) -> Option<Actor> {
        let district = &self.inner.district;
        let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, now);
        let urge = next_commands_of(state, CommandKind::UrgeOverdue, &ctx)
            .into_iter()
            .find(|n| matches!(&n.draft, Some(Command::UrgeOverdue(c)) if c.deadline == kind))?;
        let lead = state.case().and_then(|c| c.lead_unit());
        let leaders = urge.issuers.iter().filter(|a| a.role == Role::Leader);
        let upwards = leaders.clone().find(|a| escalate && Some(&a.unit) != lead);
        let unit = upwards
            .or_else(|| leaders.clone().next())
            .or_else(|| urge.issuers.first())?
            .unit
            .clone();
        Some(Actor::new(unit, Role::Watcher))
    }

    /// Runs the watcher every `interval` (of real time) until `stop` completes. Time limits
    /// are judged by the injected clock.
    pub async fn run_deadline_watcher(
        &self,
        interval: StdDuration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        tokio::pin!(stop);
        loop {
            let now = self.now();
            self.check_deadlines(now)
                .instrument(info_span!("deadline_watcher", %now))
                .await?;
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
