//! Statistics: the demand list (诉求清单) and the counts a commission reports on.
//!
//! The model keeps one small row of facts per case, refreshed from the case state after
//! each event plus a few counters only events can tell (visits held and failed, each
//! satisfaction answer, deadlines met and missed). Every figure is computed from those rows
//! when asked, with `now` passed in, so the model never depends on a clock and a rebuild
//! gives exactly the live result.

use std::collections::BTreeMap;

use crate::fast_hash::HashMap;

use caseflow_domain::{
    CaseEvent, CaseId, CaseKind, Category, Channel, DeadlineKind, Disposition, Finding, FocusArea,
    Level, Satisfaction, Severity, Stage, UnitId, VisitResult,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApplyFailure, ProjectionError};
use crate::fold::overwrite_assignee;
use crate::persist::{
    CaseDocuments, CaseJsonTable, ChangedCases, Column, DocumentPersistence, TableSpec,
};
use crate::projection::{Applied, Projection};
use caseflow_domain::{Assignee, Case, Obligation};

/// The projection's name (checkpoint key, table prefix).
pub const STATS_PROJECTION: &str = "stats";

/// Where the SQLite variant keeps each case's statistics facts.
const STATS_TABLE: CaseJsonTable = CaseJsonTable::new(
    STATS_PROJECTION,
    "stats_cases",
    &[Column::text("case_id"), Column::text("facts")],
);

/// Deadlines met and missed by one assignee, as counted so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MetMissed {
    assignee: Assignee,
    met: u32,
    missed: u32,
}

/// What the statistics need to know about one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFacts {
    /// The case's summary, whole.
    pub title: String,
    /// Channel.
    pub channel: Channel,
    /// Kind.
    pub kind: CaseKind,
    /// Category, once classified.
    pub category: Option<Category>,
    /// Severity, once classified.
    pub severity: Option<Severity>,
    /// Focus area.
    pub focus_area: FocusArea,
    /// Locality.
    pub locality: UnitId,
    /// Stage.
    pub stage: Stage,
    /// When reported.
    pub reported_at: DateTime<Utc>,
    /// When closed, while closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// The leading unit, once routed.
    pub lead_unit: Option<UnitId>,
    /// The level of the leading unit.
    pub lead_level: Option<Level>,
    /// Disposition (clues).
    pub disposition: Option<Disposition>,
    /// Findings.
    pub finding: Option<Finding>,
    /// People disciplined.
    pub people_disciplined: u32,
    /// Rectifications ordered (every round).
    pub rectifications_ordered: u32,
    /// Rectifications completed (every round).
    pub rectifications_completed: u32,
    /// Rectifications completed after the plan's deadline.
    pub rectifications_completed_late: u32,
    /// Due time of the open rectification step (plan or execution), if one is open.
    pub open_rectification_due: Option<DateTime<Utc>>,
    /// Follow-up visits whose rectification held.
    pub visits_held: u32,
    /// Follow-up visits whose rectification did not hold.
    pub visits_failed: u32,
    /// Satisfaction answers: satisfied.
    pub satisfied: u32,
    /// Satisfaction answers: basically satisfied.
    pub basically_satisfied: u32,
    /// Satisfaction answers: unsatisfied.
    pub unsatisfied: u32,
    met_missed: Vec<MetMissed>,
    /// Open obligations with a due time (assignee, due), for the on-time rate at `now`.
    open_due: Vec<(Assignee, DateTime<Utc>)>,
}

/// One line of the demand list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandEntry {
    /// The case.
    pub case_id: CaseId,
    /// The case's summary, whole.
    pub title: String,
    /// Focus area.
    pub focus_area: FocusArea,
    /// Locality.
    pub locality: UnitId,
    /// Stage.
    pub stage: Stage,
    /// When reported.
    pub reported_at: DateTime<Utc>,
}

/// Rectification figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectificationStats {
    /// Rectifications ordered.
    pub ordered: u64,
    /// Rectifications completed.
    pub completed: u64,
    /// Completed after the plan's deadline.
    pub completed_late: u64,
    /// Open (plan or execution) and past their due time at `now`.
    pub overdue: u64,
}

/// Follow-up visit figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitStats {
    /// Visits that found the rectification held.
    pub held: u64,
    /// Visits that found it did not hold.
    pub failed: u64,
}

/// Satisfaction figures (every answer counts, including answers later followed by a reopening).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SatisfactionStats {
    /// Satisfied.
    pub satisfied: u64,
    /// Basically satisfied.
    pub basically_satisfied: u64,
    /// Unsatisfied.
    pub unsatisfied: u64,
    /// (satisfied + basically satisfied) / all answers; `None` without answers.
    pub rate: Option<f64>,
}

/// Time-to-close figures for a group of closed cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseTimes {
    /// Closed cases in the group.
    pub count: u64,
    /// Median time from report to close (nearest rank).
    pub median: Duration,
    /// 90th percentile (nearest rank).
    pub p90: Duration,
}

/// On-time figures of one unit or department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnTime {
    /// The unit or department.
    pub assignee: Assignee,
    /// Items that left its list by their due time.
    pub met: u64,
    /// Items that left its list after their due time.
    pub missed: u64,
    /// Items still on its list and past due at `now` (they count as missed).
    pub open_overdue: u64,
    /// met / (met + missed + open_overdue); `None` when nothing has fallen due.
    pub rate: Option<f64>,
}

/// Every statistic at one `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    /// The time the figures are for.
    pub now: DateTime<Utc>,
    /// Cases reported.
    pub cases: u64,
    /// Cases in one of the five working stages.
    pub open_cases: u64,
    /// The demand list's size by category.
    pub by_category: BTreeMap<Category, u64>,
    /// Cases not classified (yet, or ever: declined, merged, transferred at intake).
    pub unclassified: u64,
    /// Cases by channel.
    pub by_channel: BTreeMap<Channel, u64>,
    /// Cases by kind.
    pub by_kind: BTreeMap<CaseKind, u64>,
    /// Cases by focus area.
    pub by_focus_area: BTreeMap<FocusArea, u64>,
    /// Cases by locality.
    pub by_locality: BTreeMap<UnitId, u64>,
    /// Cases by stage.
    pub by_stage: BTreeMap<Stage, u64>,
    /// Discipline clues by disposition.
    pub clues_by_disposition: BTreeMap<Disposition, u64>,
    /// Discipline clues without a disposition yet.
    pub clues_without_disposition: u64,
    /// People disciplined.
    pub people_disciplined: u64,
    /// Rectifications.
    pub rectifications: RectificationStats,
    /// Follow-up visits.
    pub follow_up_visits: VisitStats,
    /// Satisfaction.
    pub satisfaction: SatisfactionStats,
    /// Time to close by kind.
    pub time_to_close_by_kind: BTreeMap<CaseKind, CloseTimes>,
    /// Time to close by the level of the leading unit.
    pub time_to_close_by_level: BTreeMap<Level, CloseTimes>,
    /// On-time rate per unit and department, ordered by assignee.
    pub on_time: Vec<OnTime>,
}

/// The statistics read model.
#[derive(Debug, Default)]
pub struct StatsProjection {
    cases: HashMap<CaseId, CaseFacts>,
    changed: ChangedCases,
}

impl PartialEq for StatsProjection {
    fn eq(&self, other: &Self) -> bool {
        self.cases == other.cases
    }
}

impl StatsProjection {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// The facts of one case.
    pub fn facts(&self, case_id: &CaseId) -> Option<&CaseFacts> {
        self.cases.get(case_id)
    }

    /// The demand list (诉求清单): classified cases of a category, oldest report first.
    pub fn demand_list(&self, category: Category) -> Vec<DemandEntry> {
        let mut list: Vec<DemandEntry> = self
            .cases
            .iter()
            .filter(|(_, f)| f.category == Some(category))
            .map(|(id, f)| DemandEntry {
                case_id: *id,
                title: f.title.clone(),
                focus_area: f.focus_area,
                locality: f.locality.clone(),
                stage: f.stage,
                reported_at: f.reported_at,
            })
            .collect();
        list.sort_by(|a, b| {
            a.reported_at
                .cmp(&b.reported_at)
                .then(a.case_id.cmp(&b.case_id))
        });
        list
    }

    /// Every statistic at `now`.
    pub fn report(&self, now: DateTime<Utc>) -> StatsReport {
        let mut r = StatsReport {
            now,
            cases: 0,
            open_cases: 0,
            by_category: BTreeMap::new(),
            unclassified: 0,
            by_channel: BTreeMap::new(),
            by_kind: BTreeMap::new(),
            by_focus_area: BTreeMap::new(),
            by_locality: BTreeMap::new(),
            by_stage: BTreeMap::new(),
            clues_by_disposition: BTreeMap::new(),
            clues_without_disposition: 0,
            people_disciplined: 0,
            rectifications: RectificationStats::default(),
            follow_up_visits: VisitStats::default(),
            satisfaction: SatisfactionStats::default(),
            time_to_close_by_kind: BTreeMap::new(),
            time_to_close_by_level: BTreeMap::new(),
            on_time: Vec::new(),
        };
        let mut close_by_kind: BTreeMap<CaseKind, Vec<Duration>> = BTreeMap::new();
        let mut close_by_level: BTreeMap<Level, Vec<Duration>> = BTreeMap::new();
        let mut on_time: BTreeMap<&Assignee, (u64, u64, u64)> = BTreeMap::new();
        for f in self.cases.values() {
            r.cases += 1;
            if f.stage.is_open() {
                r.open_cases += 1;
            }
            match f.category {
                Some(c) => *r.by_category.entry(c).or_default() += 1,
                None => r.unclassified += 1,
            }
            *r.by_channel.entry(f.channel).or_default() += 1;
            *r.by_kind.entry(f.kind).or_default() += 1;
            *r.by_focus_area.entry(f.focus_area).or_default() += 1;
            *r.by_locality.entry(f.locality.clone()).or_default() += 1;
            *r.by_stage.entry(f.stage).or_default() += 1;
            if f.category == Some(Category::DisciplineClue) {
                match f.disposition {
                    Some(d) => *r.clues_by_disposition.entry(d).or_default() += 1,
                    None => r.clues_without_disposition += 1,
                }
            }
            r.people_disciplined += u64::from(f.people_disciplined);
            r.rectifications.ordered += u64::from(f.rectifications_ordered);
            r.rectifications.completed += u64::from(f.rectifications_completed);
            r.rectifications.completed_late += u64::from(f.rectifications_completed_late);
            if f.open_rectification_due.is_some_and(|due| due < now) {
                r.rectifications.overdue += 1;
            }
            r.follow_up_visits.held += u64::from(f.visits_held);
            r.follow_up_visits.failed += u64::from(f.visits_failed);
            r.satisfaction.satisfied += u64::from(f.satisfied);
            r.satisfaction.basically_satisfied += u64::from(f.basically_satisfied);
            r.satisfaction.unsatisfied += u64::from(f.unsatisfied);
            if let (Stage::Closed, Some(closed_at)) = (f.stage, f.closed_at) {
                let took = (closed_at - f.reported_at).max(Duration::zero());
                close_by_kind.entry(f.kind).or_default().push(took);
                if let Some(level) = f.lead_level {
                    close_by_level.entry(level).or_default().push(took);
                }
            }
            for m in &f.met_missed {
                let e = on_time.entry(&m.assignee).or_default();
                e.0 += u64::from(m.met);
                e.1 += u64::from(m.missed);
            }
            for (assignee, due) in &f.open_due {
                let e = on_time.entry(assignee).or_default();
                if *due < now {
                    e.2 += 1;
                }
            }
        }
        let answers = r.satisfaction.satisfied
            + r.satisfaction.basically_satisfied
            + r.satisfaction.unsatisfied;
        r.satisfaction.rate = ratio(
            r.satisfaction.satisfied + r.satisfaction.basically_satisfied,
            answers,
        );
        r.time_to_close_by_kind = close_by_kind
            .into_iter()
            .map(|(k, v)| (k, close_times(v)))
            .collect();
        r.time_to_close_by_level = close_by_level
            .into_iter()
            .map(|(k, v)| (k, close_times(v)))
            .collect();
        r.on_time = on_time
            .into_iter()
            .map(|(assignee, (met, missed, open_overdue))| OnTime {
                assignee: assignee.clone(),
                met,
                missed,
                open_overdue,
                rate: ratio(met, met + missed + open_overdue),
            })
            .collect();
        r
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    // Counts stay far below 2^53, so the conversion is exact.
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Nearest-rank percentiles over a non-empty list.
fn close_times(mut took: Vec<Duration>) -> CloseTimes {
    took.sort();
    let rank = |p: usize| {
        let n = took.len();
        // Nearest rank: the smallest value with at least p% of the values at or below it.
        let index = (p * n).div_ceil(100).max(1) - 1;
        took[index.min(n - 1)]
    };
    CloseTimes {
        count: took.len() as u64,
        median: rank(50),
        p90: rank(90),
    }
}

impl CaseFacts {
    /// The row of a case as it is reported.
    fn reported(case: &Case) -> CaseFacts {
        CaseFacts {
            title: case.summary.clone(),
            channel: case.channel,
            kind: case.kind,
            category: None,
            severity: None,
            focus_area: case.focus_area,
            locality: case.locality.clone(),
            stage: case.stage,
            reported_at: case.reported_at,
            closed_at: None,
            lead_unit: None,
            lead_level: None,
            disposition: None,
            finding: None,
            people_disciplined: 0,
            rectifications_ordered: 0,
            rectifications_completed: 0,
            rectifications_completed_late: 0,
            open_rectification_due: None,
            visits_held: 0,
            visits_failed: 0,
            satisfied: 0,
            basically_satisfied: 0,
            unsatisfied: 0,
            met_missed: Vec::new(),
            open_due: Vec::new(),
        }
    }

    /// The fields that mirror the case state after the event.
    fn refresh(&mut self, case: &Case, applied: &Applied<'_>) {
        self.category = case.category();
        self.severity = case.classification.as_ref().map(|c| c.severity);
        self.focus_area = case.focus_area;
        self.stage = case.stage;
        self.closed_at = if case.stage == Stage::Closed {
            case.closed_at
        } else {
            None
        };
        if self.lead_unit.as_ref() != case.lead_unit() {
            self.lead_unit = case.lead_unit().cloned();
            self.lead_level = case.lead_unit().and_then(|u| applied.org.level_of(u));
        }
        self.disposition = case.disposition;
        self.finding = case.finding;
        self.people_disciplined = u32::try_from(case.disciplined.len()).unwrap_or(u32::MAX);
        self.open_rectification_due = applied
            .state
            .deadline(DeadlineKind::RectificationPlan)
            .or_else(|| applied.state.deadline(DeadlineKind::Rectification))
            .map(|d| d.due_at);
    }

    /// The counters an event moves.
    fn count(&mut self, event: &CaseEvent, case: &Case) {
        match event {
            CaseEvent::RectificationOrdered(_) => self.rectifications_ordered += 1,
            CaseEvent::RectificationCompleted(e) => {
                self.rectifications_completed += 1;
                let deadline = case.rectification.as_ref().and_then(|r| r.deadline);
                if deadline.is_some_and(|d| e.at > d) {
                    self.rectifications_completed_late += 1;
                }
            }
            CaseEvent::FollowUpVisitRecorded(e) => match e.result {
                VisitResult::Held => self.visits_held += 1,
                VisitResult::Failed => self.visits_failed += 1,
            },
            CaseEvent::SatisfactionRecorded(e) => match e.satisfaction {
                Satisfaction::Satisfied => self.satisfied += 1,
                Satisfaction::BasicallySatisfied => self.basically_satisfied += 1,
                Satisfaction::Unsatisfied => self.unsatisfied += 1,
            },
            _ => {}
        }
    }

    /// An obligation with a due time that is no longer asked for after this event was
    /// discharged now: on time when the event's time is not after its due time.
    fn settle_duties(&mut self, applied: &Applied<'_>) {
        let at = applied.event.at();
        for before in applied.obligations_before {
            let Some(due) = before.due_at else { continue };
            if applied
                .obligations
                .iter()
                .any(|after| same_duty(before, after))
            {
                continue;
            }
            let slot = self.met_missed_of(&before.assignee);
            if at <= due {
                slot.met += 1;
            } else {
                slot.missed += 1;
            }
        }
        // Overwritten in place: the assignees' strings reuse the buffers they had.
        let mut kept = 0;
        for (assignee, due) in applied
            .obligations
            .iter()
            .filter_map(|o| o.due_at.map(|d| (&o.assignee, d)))
        {
            match self.open_due.get_mut(kept) {
                Some(slot) => {
                    overwrite_assignee(&mut slot.0, assignee);
                    slot.1 = due;
                }
                None => self.open_due.push((assignee.clone(), due)),
            }
            kept += 1;
        }
        self.open_due.truncate(kept);
    }

    fn met_missed_of(&mut self, assignee: &Assignee) -> &mut MetMissed {
        let index = match self.met_missed.iter().position(|m| m.assignee == *assignee) {
            Some(i) => i,
            None => {
                self.met_missed.push(MetMissed {
                    assignee: assignee.clone(),
                    met: 0,
                    missed: 0,
                });
                self.met_missed.len() - 1
            }
        };
        &mut self.met_missed[index]
    }
}

impl Projection for StatsProjection {
    fn name(&self) -> &'static str {
        STATS_PROJECTION
    }

    fn apply(&mut self, applied: &Applied<'_>) -> Result<(), ApplyFailure> {
        let Some(case) = applied.state.case() else {
            return Err(ApplyFailure::Invariant(
                "an event left no case behind".to_owned(),
            ));
        };
        let is_report = matches!(applied.event, CaseEvent::CaseReported(_));
        if !is_report && !self.cases.contains_key(&applied.case_id) {
            return Err(ApplyFailure::Invariant(format!(
                "{} for a case the statistics have not seen reported",
                applied.event.event_type()
            )));
        }
        // The row is updated in place: most events change a field or two, and the strings
        // (title, locality) are fixed when the case is reported.
        let facts = self
            .cases
            .entry(applied.case_id)
            .or_insert_with(|| CaseFacts::reported(case));
        facts.refresh(case, applied);
        facts.count(applied.event, case);
        if applied.obligations_before != applied.obligations {
            facts.settle_duties(applied);
        }
        if !case.stage.is_open() {
            // An ended case keeps its counts for years: give back the lists' headroom (the
            // open duties are gone, so that buffer is freed altogether).
            facts.open_due.shrink_to_fit();
            facts.met_missed.shrink_to_fit();
        }
        self.changed.mark(applied.case_id);
        Ok(())
    }

    fn reset(&mut self) {
        self.reset_documents();
    }

    fn tables(&self) -> &'static [TableSpec] {
        &[STATS_TABLE.spec]
    }

    fn documents(&mut self) -> Option<&mut dyn DocumentPersistence> {
        Some(self)
    }
}

impl CaseDocuments for StatsProjection {
    type Document = CaseFacts;

    fn table(&self) -> &CaseJsonTable {
        &STATS_TABLE
    }

    fn changes(&mut self) -> &mut ChangedCases {
        &mut self.changed
    }

    fn document(&self, case_id: &CaseId) -> Option<&CaseFacts> {
        self.cases.get(case_id)
    }

    fn clear_documents(&mut self) {
        self.cases.clear();
    }

    fn restore(&mut self, case_id: CaseId, facts: CaseFacts) -> Result<(), ProjectionError> {
        self.cases.insert(case_id, facts);
        Ok(())
    }
}

/// Whether two obligations are the same duty: the same assignee doing the same thing under
/// the same time limit. Its priority may change while it stays open (an urging), and so may
/// its due time (an extended or renewed limit): neither discharges it.
fn same_duty(a: &Obligation, b: &Obligation) -> bool {
    a.assignee == b.assignee && a.action == b.action && a.deadline == b.deadline
}

#[cfg(test)]
mod tests {
    use super::*;
    use caseflow_domain::{Action, DeadlineKind, Priority};
    use chrono::TimeZone;

    fn duty(deadline: Option<DeadlineKind>, due_day: u32) -> Obligation {
        Obligation {
            assignee: Assignee::unit("loc-chaoyang"),
            action: Action::SuperviseRectification,
            due_at: Utc.with_ymd_and_hms(2026, 3, due_day, 1, 0, 0).single(),
            deadline,
            priority: Priority::Normal,
        }
    }

    #[test]
    fn a_duty_whose_due_time_moves_is_still_the_same_duty() {
        let before = duty(Some(DeadlineKind::Rectification), 10);
        let extended = duty(Some(DeadlineKind::Rectification), 20);
        assert!(same_duty(&before, &extended));
        let urged = Obligation {
            priority: Priority::High,
            ..before.clone()
        };
        assert!(same_duty(&before, &urged));
    }

    #[test]
    fn the_same_action_under_another_time_limit_is_another_duty() {
        // Supervising the plan's submission is discharged when the plan comes in, even
        // though supervising its execution follows under the next limit.
        let plan = duty(Some(DeadlineKind::RectificationPlan), 10);
        let execution = duty(Some(DeadlineKind::Rectification), 20);
        assert!(!same_duty(&plan, &execution));
    }
}
