//! The bookkeeping after every step: the step is emitted, the case's stage and time limits
//! are compared with what they were before (entering and leaving stages, limits opened, met
//! or missed), the case's deadlines are re-indexed for the watcher, and a case that ended
//! leaves the model.

use caseflow::domain::{CaseState, CommandKind, DeadlineKind, Level, NextCommand, Stage, UnitId};
use chrono::{DateTime, Utc};

use super::{OpenCase, Simulation};
use crate::casework::{Casework, Issued};
use crate::error::{CaseworkError, SimError};
use crate::kpi::backlog_slot;
use crate::trace::Step;

/// A case's stage and open time limits before a step.
pub(super) struct Snapshot {
    stage: Stage,
    deadlines: Vec<(DeadlineKind, DateTime<Utc>, DateTime<Utc>)>,
}

impl Snapshot {
    pub(super) fn of(state: &CaseState) -> Snapshot {
        Snapshot {
            stage: state.stage(),
            deadlines: state
                .deadlines()
                .map(|d| (d.kind, d.opened_at, d.due_at))
                .collect(),
        }
    }

    fn has(&self, kind: DeadlineKind, opened: DateTime<Utc>) -> bool {
        self.deadlines
            .iter()
            .any(|(k, o, _)| *k == kind && *o == opened)
    }
}

impl Simulation {
    /// Takes one step on an open case: the command of `kind` the domain offers, shaped by
    /// `shape`, issued by `prefer` (a pool index) where the domain lists that unit.
    pub(super) fn take(
        &mut self,
        now: f64,
        case_no: u64,
        kind: CommandKind,
        prefer: Option<u32>,
        shape: impl FnMut(&NextCommand) -> Option<caseflow::domain::Command>,
    ) -> Result<(), SimError> {
        let at = self.hours.to_utc(now);
        let prefer: Option<UnitId> = prefer.map(|u| self.layout.unit(u).id.clone());
        let cw = Casework::new(&self.district);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return Ok(());
        };
        let before = Snapshot::of(&case.state);
        let issued = cw.issue(&mut case.state, kind, at, prefer.as_ref(), shape);
        let issued = issued.map_err(|source| self.model_error(now, case_no, source))?;
        self.after_step(now, case_no, before, issued, false);
        Ok(())
    }

    /// Takes the domain's draft of `kind` unchanged.
    pub(super) fn take_draft(
        &mut self,
        now: f64,
        case_no: u64,
        kind: CommandKind,
        prefer: Option<u32>,
    ) -> Result<(), SimError> {
        self.take(now, case_no, kind, prefer, |o| o.draft.clone())
    }

    pub(super) fn model_error(&self, now: f64, case_no: u64, source: CaseworkError) -> SimError {
        SimError::Model {
            case_no,
            at: self.hours.local_label(now),
            source,
        }
    }

    /// Emits the step and accounts for what it changed.
    pub(super) fn after_step(
        &mut self,
        now: f64,
        case_no: u64,
        before: Snapshot,
        issued: Issued,
        by_watcher: bool,
    ) {
        self.emit(Step {
            at: now,
            case_no,
            actor: issued.actor,
            command: issued.command,
            by_watcher,
        });
        let at = self.hours.to_utc(now);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        let after = Snapshot::of(&case.state);
        for (kind, opened, due) in &before.deadlines {
            if !after.has(*kind, *opened) {
                self.kpi.deadline_closed(case.counted, *kind, at > *due);
            }
        }
        for (kind, opened, _) in &after.deadlines {
            if !before.has(*kind, *opened) {
                self.kpi.deadline_opened(case.counted, *kind);
            }
        }
        if after.stage != before.stage {
            self.kpi
                .stage_left(case.counted, before.stage, now - case.stage_entered);
            self.kpi.stage_entered(case.counted, after.stage);
            case.stage_entered = now;
        }
        if after.stage.is_open() {
            self.index_deadlines(case_no);
        } else {
            self.end_case(now, case_no, after.stage == Stage::Closed);
        }
    }

    fn end_case(&mut self, now: f64, case_no: u64, closed: bool) {
        if let Some(case) = self.cases.remove(&case_no) {
            if let Some(level) = case.waiting_on {
                self.open_by_level[backlog_slot(level)] -= 1;
            }
            self.kpi
                .case_ended(case.counted, case.kind, closed, now - case.arrived);
        }
    }

    /// Records which level the case now waits on (for the backlog by level).
    pub(super) fn wait_on(&mut self, case_no: u64, level: Level) {
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        if let Some(old) = case.waiting_on.replace(level) {
            self.open_by_level[backlog_slot(old)] -= 1;
        }
        self.open_by_level[backlog_slot(level)] += 1;
    }

    fn emit(&mut self, step: Step) {
        if let Some(d) = &mut self.digest {
            d.add(&step);
        }
        self.steps_emitted += 1;
        if self.record_steps || self.pending.is_empty() {
            // Without recording, one pending step keeps `advance` responsive.
            self.pending.push(step);
        }
    }

    /// The case the model is working on, if it is still open.
    pub(super) fn case(&self, case_no: u64) -> Option<&OpenCase> {
        self.cases.get(&case_no)
    }

    /// A uniform draw from the case's own stream (1.0 for a case no longer open, which makes
    /// every "happens with probability p" false).
    pub(super) fn draw(&mut self, case_no: u64) -> f64 {
        use rand::RngExt;
        self.cases
            .get_mut(&case_no)
            .map(|c| c.rng.random::<f64>())
            .unwrap_or(1.0)
    }
}
