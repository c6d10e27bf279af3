//! The deadline watcher of the model: at every local midnight it urges each missed time
//! limit and escalates each one still missed after its grace period, as the engine's own
//! watcher does (`Engine::check_deadlines`). What may be urged is the domain's `urgeable`;
//! who urges is chosen among the issuers the domain lists as the engine chooses (a leader;
//! for an escalation a room other than the lead unit where there is one). In an
//! engine-driven run the engine's watcher issues these urgings and the driver checks that
//! it urged exactly what the model did.
//!
//! Only cases whose next due time has passed are looked at: each open case's earliest
//! "next thing to urge" (a due time, or the end of a grace period) is kept in a heap.

use std::cmp::Ordering;

use caseflow::domain::{Command, CommandKind, DeadlineKind, Role, urgeable};

use super::{Ev, Simulation};
use crate::casework::Casework;
use crate::error::SimError;

/// When a case next needs the watcher, and the stamp that tells a stale entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WatchEntry {
    at: f64,
    case_no: u64,
    stamp: u32,
}

impl Eq for WatchEntry {}

impl PartialOrd for WatchEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WatchEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap is a max-heap and the earliest entry must come first.
        other
            .at
            .total_cmp(&self.at)
            .then_with(|| other.case_no.cmp(&self.case_no))
            .then_with(|| other.stamp.cmp(&self.stamp))
    }
}

impl Simulation {
    /// Re-indexes an open case's next due time (after a step changed its deadlines).
    pub(super) fn index_deadlines(&mut self, case_no: u64) {
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        let next = case
            .state
            .deadlines()
            .filter_map(|d| match (&d.urged, &d.escalated) {
                (None, _) => Some(d.due_at),
                (Some(u), None) => Some(u.respond_by),
                (Some(_), Some(_)) => None,
            })
            .min();
        case.watch_stamp = case.watch_stamp.wrapping_add(1);
        if let Some(next) = next {
            self.watch.push(WatchEntry {
                at: self.hours.hours_of(next),
                case_no,
                stamp: case.watch_stamp,
            });
        }
    }

    pub(super) fn on_midnight(&mut self, now: f64) -> Result<(), SimError> {
        if now + 24.0 <= self.end {
            self.queue.schedule(now + 24.0, Ev::Midnight);
        }
        let mut due = Vec::new();
        while let Some(top) = self.watch.peek() {
            if top.at >= now {
                break;
            }
            let entry = *top;
            self.watch.pop();
            let live = self
                .cases
                .get(&entry.case_no)
                .is_some_and(|c| c.watch_stamp == entry.stamp);
            if live {
                due.push(entry.case_no);
            }
        }
        due.sort_unstable();
        due.dedup();
        for case_no in due {
            self.urge_case(now, case_no)?;
            self.index_deadlines(case_no);
        }
        Ok(())
    }

    fn urge_case(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let at = self.hours.to_utc(now);
        let Some(state) = self.cases.get(&case_no).map(|c| &c.state) else {
            return Ok(());
        };
        for (kind, escalate) in urgeable(state, at) {
            self.urge(now, case_no, kind, escalate)?;
        }
        Ok(())
    }

    fn urge(
        &mut self,
        now: f64,
        case_no: u64,
        deadline: DeadlineKind,
        escalate: bool,
    ) -> Result<(), SimError> {
        let at = self.hours.to_utc(now);
        let cw = Casework::new(&self.district);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return Ok(());
        };
        let offer = cw
            .offers(&case.state, CommandKind::UrgeOverdue, at)
            .into_iter()
            .find(|o| matches!(&o.draft, Some(Command::UrgeOverdue(c)) if c.deadline == deadline));
        let Some(offer) = offer else {
            return Ok(());
        };
        let lead = case.state.case().and_then(|c| c.lead_unit()).cloned();
        let leaders = offer.issuers.iter().filter(|a| a.role == Role::Leader);
        let upwards = leaders
            .clone()
            .find(|a| escalate && Some(&a.unit) != lead.as_ref());
        let by = upwards
            .or_else(|| leaders.clone().next())
            .or_else(|| offer.issuers.first())
            .map(|a| a.unit.clone());
        let before = super::ledger::Snapshot::of(&case.state);
        let counted = case.counted;
        let issued = cw.issue(
            &mut case.state,
            CommandKind::UrgeOverdue,
            at,
            by.as_ref(),
            |o| match &o.draft {
                Some(Command::UrgeOverdue(c)) if c.deadline == deadline => o.draft.clone(),
                _ => None,
            },
        );
        let issued = issued.map_err(|source| self.model_error(now, case_no, source))?;
        self.kpi.urged(counted, deadline, escalate);
        self.after_step(now, case_no, before, issued, true);
        Ok(())
    }
}
