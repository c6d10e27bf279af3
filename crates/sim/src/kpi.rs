//! KPI collection during a run and the run's [`Summary`].
//!
//! Only cases that arrive after the warm-up are counted; unit statistics (utilisation, queue
//! length) are reset at the end of the warm-up. Stages and time limits are the domain's: a
//! case enters and leaves a stage when its `CaseState` does, a time limit opens and closes
//! when the state's deadline does, and a limit is breached when it closes after its due time.
//! Waits are the time from a request for a person until a person starts (nights and
//! weekends included); time to close runs from the report to the closing.

use caseflow::domain::{CaseKind, Channel, DeadlineKind, Level, Stage};
use serde::{Deserialize, Serialize};

use crate::des::Pool;
use crate::hours::WorkingTime;
use crate::labels;
use crate::layout::{LEVELS, Layout};
use crate::scenario::{Scenario, WORKING_STAGES, snake_name};
use crate::stats::{mean, percentile};

/// Case counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseCounts {
    /// Cases that arrived (after warm-up).
    pub arrived: u64,
    /// Accepted at intake.
    pub accepted: u64,
    /// Declined at intake.
    pub declined: u64,
    /// Transferred at intake.
    pub transferred: u64,
    /// Merged into an open case.
    pub merged: u64,
    /// Closed by the end of the run.
    pub closed: u64,
    /// Still open at the end of the run.
    pub open_at_end: u64,
    /// Reopenings.
    pub reopened: u64,
    /// Joint consultations held (grave clues).
    pub joint_consultations: u64,
    /// Clues held for later (each time).
    pub held_for_later: u64,
    /// Clues closed without action at their disposition.
    pub closed_without_action: u64,
    /// Clues verified by a cross-inspection team.
    pub cross_inspections: u64,
    /// Findings: substantiated.
    pub substantiated: u64,
    /// Findings: partly substantiated.
    pub partly_substantiated: u64,
    /// Findings: not substantiated.
    pub not_substantiated: u64,
    /// People disciplined.
    pub disciplined_people: u64,
    /// Rectification progress reports.
    pub progress_reports: u64,
    /// Follow-up visits made.
    pub follow_ups: u64,
    /// Follow-up visits that found the rectification did not hold.
    pub follow_ups_failed: u64,
    /// Reporters asked about satisfaction.
    pub satisfaction_asked: u64,
    /// Reporters satisfied or basically satisfied.
    pub satisfied: u64,
}

/// KPIs of one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageKpi {
    /// The domain's stage name.
    pub stage: String,
    /// Label in the district's language.
    pub label: String,
    /// Times a case entered the stage.
    pub entered: u64,
    /// Times a case left the stage.
    pub completed: u64,
    /// Mean wait for staff of the stage's work (hours).
    pub wait_mean_hours: f64,
    /// 90th percentile wait for staff (hours).
    pub wait_p90_hours: f64,
    /// Mean time in the stage (days).
    pub time_mean_days: f64,
    /// 90th percentile time in the stage (days).
    pub time_p90_days: f64,
}

/// KPIs of one of the domain's time limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeadlineKpi {
    /// The domain's deadline name.
    pub deadline: String,
    /// Label in the district's language.
    pub label: String,
    /// Limits opened.
    pub opened: u64,
    /// Limits closed (met or missed).
    pub closed: u64,
    /// Closed after their due time.
    pub breached: u64,
    /// First urgings (督办).
    pub urged: u64,
    /// Escalations after the grace period.
    pub escalated: u64,
    /// Still open and overdue at the end of the run.
    pub overdue_at_end: u64,
}

/// KPIs of one unit, level or zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitKpi {
    /// Unit id, level name or zone id.
    pub name: String,
    /// Display name (the district's name of the unit, or a label).
    pub label: String,
    /// Level (for units).
    pub level: String,
    /// Zone (for units and zones).
    pub zone: u32,
    /// People.
    pub staff: u32,
    /// Work requests (arrivals at the unit).
    pub requests: u64,
    /// Work items completed.
    pub completed: u64,
    /// Mean wait for a person (hours).
    pub wait_mean_hours: f64,
    /// 90th percentile wait (hours).
    pub wait_p90_hours: f64,
    /// Time-weighted mean number of jobs waiting.
    pub queue_mean: f64,
    /// Longest queue.
    pub queue_max: u64,
    /// Work hours done / working hours available.
    pub utilisation: f64,
}

/// Time to close per kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindKpi {
    /// The domain's kind name.
    pub kind: String,
    /// Label in the district's language.
    pub label: String,
    /// Arrived.
    pub arrived: u64,
    /// Closed.
    pub closed: u64,
    /// Still open at the end.
    pub open_at_end: u64,
    /// Mean time to close (days).
    pub close_mean_days: f64,
    /// 90th percentile time to close (days).
    pub close_p90_days: f64,
}

/// One point of the backlog time series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BacklogPoint {
    /// Virtual time (hours since start).
    pub hours: f64,
    /// Local date.
    pub date: String,
    /// Open cases.
    pub open: u64,
    /// Open cases waiting on a room.
    pub room: u64,
    /// … on a team.
    pub team: u64,
    /// … on a locality.
    pub locality: u64,
    /// … on a village officer.
    pub village: u64,
    /// Jobs queued for staff, all units.
    pub queued: u64,
}

/// The outcome of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// The district's name.
    pub district: String,
    /// Master seed.
    pub seed: u64,
    /// First simulated day.
    pub start: String,
    /// Arrival horizon (days).
    pub horizon_days: u32,
    /// Virtual hours simulated.
    pub simulated_hours: f64,
    /// Case counts.
    pub cases: CaseCounts,
    /// Arrivals per channel (the domain's channel names).
    pub channels: Vec<(String, u64)>,
    /// Per working stage.
    pub stages: Vec<StageKpi>,
    /// Per time limit.
    pub deadlines: Vec<DeadlineKpi>,
    /// Per unit.
    pub units: Vec<UnitKpi>,
    /// Per level.
    pub levels: Vec<UnitKpi>,
    /// Per zone.
    pub zones: Vec<UnitKpi>,
    /// Time to close per kind.
    pub kinds: Vec<KindKpi>,
    /// Satisfied or basically satisfied among those asked.
    pub satisfaction_rate: f64,
    /// Time limits closed in time among those closed.
    pub on_time_rate: f64,
    /// Backlog over time.
    pub backlog: Vec<BacklogPoint>,
    /// Workflow steps (one per command) in the run.
    pub steps: u64,
    /// SHA-256 of the step log (model only) or of the engine's event log.
    pub digest: Option<String>,
    /// Events in the engine's log (when the engine was driven).
    pub engine_events: Option<u64>,
    /// Urgings the engine's deadline watcher wrote (when the engine was driven); the
    /// deadline table's urgings are then the engine's.
    pub engine_urgings: Option<u64>,
}

#[derive(Default, Clone)]
struct StageAcc {
    entered: u64,
    completed: u64,
    waits: Vec<f64>,
    times: Vec<f64>,
}

#[derive(Default, Clone)]
struct DeadlineAcc {
    opened: u64,
    closed: u64,
    breached: u64,
    urged: u64,
    escalated: u64,
    overdue_at_end: u64,
}

#[derive(Default, Clone)]
struct UnitAcc {
    requests: u64,
    completed: u64,
    waits: Vec<f64>,
}

#[derive(Default, Clone)]
struct KindAcc {
    arrived: u64,
    closed: u64,
    open: u64,
    times: Vec<f64>,
}

/// What a case ended as (for the counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted at intake.
    Accepted,
    /// Declined.
    Declined,
    /// Transferred.
    Transferred,
    /// Merged.
    Merged,
}

/// Index of a working stage in per-stage arrays (`None` for the ends).
pub fn stage_index(stage: Stage) -> Option<usize> {
    WORKING_STAGES.iter().position(|s| *s == stage)
}

fn level_index(level: Level) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

fn kind_index(kind: CaseKind) -> usize {
    CaseKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

fn deadline_index(kind: DeadlineKind) -> usize {
    DeadlineKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0)
}

/// Accumulates KPIs during a run.
pub struct Collector {
    scenario: String,
    district: String,
    start: chrono::NaiveDate,
    horizon_days: u32,
    warmup_end: f64,
    /// Case counts (public to the model, which counts branch outcomes directly).
    pub(crate) cases: CaseCounts,
    channels: Vec<(Channel, u64)>,
    stages: Vec<StageAcc>,
    deadlines: Vec<DeadlineAcc>,
    units: Vec<UnitAcc>,
    kinds: Vec<KindAcc>,
    backlog: Vec<BacklogPoint>,
    summary: Option<Summary>,
}

impl Collector {
    /// A collector for a run of `s` on `layout`.
    pub fn new(s: &Scenario, district: &str, layout: &Layout, warmup_end: f64) -> Self {
        Self {
            scenario: s.simulation.name.clone(),
            district: district.to_owned(),
            start: s.simulation.start,
            horizon_days: s.simulation.horizon_days,
            warmup_end,
            cases: CaseCounts::default(),
            channels: s.arrivals.channel.iter().map(|c| (c.name, 0)).collect(),
            stages: vec![StageAcc::default(); WORKING_STAGES.len()],
            deadlines: vec![DeadlineAcc::default(); DeadlineKind::ALL.len()],
            units: vec![UnitAcc::default(); layout.units.len()],
            kinds: vec![KindAcc::default(); CaseKind::ALL.len()],
            backlog: Vec::new(),
            summary: None,
        }
    }

    pub(crate) fn arrival(&mut self, counted: bool, kind: CaseKind, channel: usize) {
        if counted {
            self.cases.arrived += 1;
            self.kinds[kind_index(kind)].arrived += 1;
            if let Some(c) = self.channels.get_mut(channel) {
                c.1 += 1;
            }
        }
    }

    pub(crate) fn outcome(&mut self, counted: bool, outcome: Outcome) {
        if !counted {
            return;
        }
        let c = &mut self.cases;
        match outcome {
            Outcome::Accepted => c.accepted += 1,
            Outcome::Declined => c.declined += 1,
            Outcome::Transferred => c.transferred += 1,
            Outcome::Merged => c.merged += 1,
        }
    }

    pub(crate) fn stage_entered(&mut self, counted: bool, stage: Stage) {
        if let (true, Some(i)) = (counted, stage_index(stage)) {
            self.stages[i].entered += 1;
        }
    }

    pub(crate) fn stage_left(&mut self, counted: bool, stage: Stage, hours: f64) {
        if let (true, Some(i)) = (counted, stage_index(stage)) {
            let s = &mut self.stages[i];
            s.completed += 1;
            s.times.push(hours / 24.0);
        }
    }

    pub(crate) fn deadline_opened(&mut self, counted: bool, kind: DeadlineKind) {
        if counted {
            self.deadlines[deadline_index(kind)].opened += 1;
        }
    }

    pub(crate) fn deadline_closed(&mut self, counted: bool, kind: DeadlineKind, late: bool) {
        if counted {
            let d = &mut self.deadlines[deadline_index(kind)];
            d.closed += 1;
            if late {
                d.breached += 1;
            }
        }
    }

    pub(crate) fn urged(&mut self, counted: bool, kind: DeadlineKind, escalated: bool) {
        if counted {
            let d = &mut self.deadlines[deadline_index(kind)];
            if escalated {
                d.escalated += 1;
            } else {
                d.urged += 1;
            }
        }
    }

    pub(crate) fn requested(&mut self, counted: bool, unit: u32) {
        if counted {
            self.units[unit as usize].requests += 1;
        }
    }

    pub(crate) fn work_done(&mut self, counted: bool, unit: u32, stage: Stage, wait: f64) {
        if !counted {
            return;
        }
        let u = &mut self.units[unit as usize];
        u.completed += 1;
        u.waits.push(wait);
        if let Some(i) = stage_index(stage) {
            self.stages[i].waits.push(wait);
        }
    }

    pub(crate) fn case_ended(&mut self, counted: bool, kind: CaseKind, closed: bool, hours: f64) {
        if counted && closed {
            self.cases.closed += 1;
            let k = &mut self.kinds[kind_index(kind)];
            k.closed += 1;
            k.times.push(hours / 24.0);
        }
    }

    pub(crate) fn sample(&mut self, now: f64, open: u64, by_level: [i64; 4], queued: u64) {
        let date = (self.start + chrono::Duration::days((now / 24.0).floor() as i64)).to_string();
        self.backlog.push(BacklogPoint {
            hours: now,
            date,
            open,
            room: by_level[0].max(0) as u64,
            team: by_level[1].max(0) as u64,
            locality: by_level[2].max(0) as u64,
            village: by_level[3].max(0) as u64,
            queued,
        });
    }

    /// What is still open when the run ends.
    pub(crate) fn still_open(&mut self, kind: CaseKind, overdue: &[DeadlineKind]) {
        self.cases.open_at_end += 1;
        self.kinds[kind_index(kind)].open += 1;
        for k in overdue {
            self.deadlines[deadline_index(*k)].overdue_at_end += 1;
        }
    }

    pub(crate) fn finish<T: Copy>(
        &mut self,
        end: f64,
        layout: &Layout,
        pools: &[Pool<T>],
        hours: &WorkingTime,
    ) {
        let units = self.unit_kpis(end, layout, pools, hours);
        let levels = LEVELS
            .iter()
            .map(|l| {
                let members = (0..units.len()).filter(|i| layout.units[*i].level == *l);
                group(
                    &units,
                    &self.units,
                    snake_name(l),
                    labels::level(*l),
                    0,
                    members.collect(),
                )
            })
            .collect();
        let zones = (1..=layout.zones())
            .map(|z| {
                let members = (0..units.len()).filter(|i| layout.units[*i].zone == z);
                let id = layout.zone_ids[z as usize - 1].to_string();
                group(&units, &self.units, id.clone(), id, z, members.collect())
            })
            .collect();
        let c = &self.cases;
        let satisfaction_rate = ratio(c.satisfied, c.satisfaction_asked);
        let closed: u64 = self.deadlines.iter().map(|d| d.closed).sum();
        let breached: u64 = self.deadlines.iter().map(|d| d.breached).sum();
        self.summary = Some(Summary {
            scenario: self.scenario.clone(),
            district: self.district.clone(),
            seed: 0,
            start: self.start.to_string(),
            horizon_days: self.horizon_days,
            simulated_hours: end,
            cases: self.cases.clone(),
            channels: self
                .channels
                .iter()
                .map(|(c, n)| (snake_name(c), *n))
                .collect(),
            stages: self.stage_kpis(),
            deadlines: self.deadline_kpis(),
            units,
            levels,
            zones,
            kinds: self.kind_kpis(),
            satisfaction_rate,
            on_time_rate: ratio(closed - breached, closed),
            backlog: std::mem::take(&mut self.backlog),
            steps: 0,
            digest: None,
            engine_events: None,
            engine_urgings: None,
        });
    }

    fn unit_kpis<T: Copy>(
        &self,
        end: f64,
        layout: &Layout,
        pools: &[Pool<T>],
        hours: &WorkingTime,
    ) -> Vec<UnitKpi> {
        // Working hours available per person over the counted period.
        let span = (end - self.warmup_end).max(f64::MIN_POSITIVE);
        let working_hours = hours.work_between(self.warmup_end, end);
        layout
            .units
            .iter()
            .zip(pools)
            .zip(&self.units)
            .map(|((u, p), acc)| UnitKpi {
                name: u.id.to_string(),
                label: u.name.clone(),
                level: snake_name(&u.level),
                zone: u.zone,
                staff: u.staff,
                requests: acc.requests,
                completed: acc.completed,
                wait_mean_hours: mean(&acc.waits),
                wait_p90_hours: percentile(&acc.waits, 0.9),
                queue_mean: p.queue_area() / span,
                queue_max: p.max_queue() as u64,
                utilisation: if working_hours > 0.0 {
                    p.work_started / (f64::from(u.staff) * working_hours)
                } else {
                    0.0
                },
            })
            .collect()
    }

    fn stage_kpis(&self) -> Vec<StageKpi> {
        WORKING_STAGES
            .iter()
            .zip(&self.stages)
            .map(|(s, a)| StageKpi {
                stage: s.as_str().to_owned(),
                label: labels::stage(*s),
                entered: a.entered,
                completed: a.completed,
                wait_mean_hours: mean(&a.waits),
                wait_p90_hours: percentile(&a.waits, 0.9),
                time_mean_days: mean(&a.times),
                time_p90_days: percentile(&a.times, 0.9),
            })
            .collect()
    }

    fn deadline_kpis(&self) -> Vec<DeadlineKpi> {
        DeadlineKind::ALL
            .iter()
            .zip(&self.deadlines)
            .map(|(k, a)| DeadlineKpi {
                deadline: snake_name(k),
                label: labels::deadline(*k),
                opened: a.opened,
                closed: a.closed,
                breached: a.breached,
                urged: a.urged,
                escalated: a.escalated,
                overdue_at_end: a.overdue_at_end,
            })
            .collect()
    }

    fn kind_kpis(&self) -> Vec<KindKpi> {
        CaseKind::ALL
            .iter()
            .zip(&self.kinds)
            .map(|(k, a)| KindKpi {
                kind: snake_name(k),
                label: labels::kind(*k),
                arrived: a.arrived,
                closed: a.closed,
                open_at_end: a.open,
                close_mean_days: mean(&a.times),
                close_p90_days: percentile(&a.times, 0.9),
            })
            .collect()
    }

    /// The summary, once the run has finished.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The KPIs of a group of units (a level or a zone).
fn group(
    units: &[UnitKpi],
    accs: &[UnitAcc],
    name: String,
    label: String,
    zone: u32,
    members: Vec<usize>,
) -> UnitKpi {
    let waits: Vec<f64> = members
        .iter()
        .flat_map(|i| accs[*i].waits.iter().copied())
        .collect();
    let staff: u32 = members.iter().map(|i| units[*i].staff).sum();
    UnitKpi {
        name,
        label,
        level: String::new(),
        zone,
        staff,
        requests: members.iter().map(|i| units[*i].requests).sum(),
        completed: members.iter().map(|i| units[*i].completed).sum(),
        wait_mean_hours: mean(&waits),
        wait_p90_hours: percentile(&waits, 0.9),
        queue_mean: members.iter().map(|i| units[*i].queue_mean).sum(),
        queue_max: members
            .iter()
            .map(|i| units[*i].queue_max)
            .max()
            .unwrap_or(0),
        utilisation: members
            .iter()
            .map(|i| units[*i].utilisation * f64::from(units[*i].staff))
            .sum::<f64>()
            / f64::from(staff.max(1)),
    }
}

impl Summary {
    /// Flat named scalars (for replications and comparison), in a stable order.
    pub fn scalars(&self) -> Vec<(String, f64)> {
        let c = &self.cases;
        let mut v = vec![
            ("cases.arrived".to_string(), c.arrived as f64),
            ("cases.closed".into(), c.closed as f64),
            ("cases.open_at_end".into(), c.open_at_end as f64),
            ("cases.reopened".into(), c.reopened as f64),
            ("cases.cross_inspections".into(), c.cross_inspections as f64),
            (
                "cases.disciplined_people".into(),
                c.disciplined_people as f64,
            ),
            ("cases.follow_ups_failed".into(), c.follow_ups_failed as f64),
            ("satisfaction_rate".into(), self.satisfaction_rate),
            ("on_time_rate".into(), self.on_time_rate),
        ];
        for s in &self.stages {
            let name = |m: &str| format!("stage.{}.{m}", s.stage);
            v.push((name("wait_mean_hours"), s.wait_mean_hours));
            v.push((name("wait_p90_hours"), s.wait_p90_hours));
            v.push((name("time_mean_days"), s.time_mean_days));
            v.push((name("time_p90_days"), s.time_p90_days));
        }
        for d in &self.deadlines {
            let name = |m: &str| format!("limit.{}.{m}", d.deadline);
            v.push((name("breached"), d.breached as f64));
            v.push((name("urged"), d.urged as f64));
        }
        for l in self.levels.iter().chain(&self.zones) {
            v.push((format!("{}.utilisation", l.name), l.utilisation));
            v.push((format!("{}.wait_mean_hours", l.name), l.wait_mean_hours));
            v.push((format!("{}.queue_mean", l.name), l.queue_mean));
        }
        for k in &self.kinds {
            v.push((
                format!("kind.{}.close_mean_days", k.kind),
                k.close_mean_days,
            ));
        }
        let peak = self.backlog.iter().map(|b| b.open).max().unwrap_or(0);
        v.push(("backlog.peak_open".into(), peak as f64));
        v
    }

    /// The deadline KPI of a time limit.
    pub fn deadline(&self, kind: DeadlineKind) -> Option<&DeadlineKpi> {
        let name = snake_name(&kind);
        self.deadlines.iter().find(|d| d.deadline == name)
    }

    /// The stage KPI of a working stage.
    pub fn stage(&self, stage: Stage) -> Option<&StageKpi> {
        self.stages.iter().find(|s| s.stage == stage.as_str())
    }

    /// Urgings and escalations, all limits.
    pub fn urgings(&self) -> u64 {
        self.deadlines.iter().map(|d| d.urged + d.escalated).sum()
    }
}

/// Level index for the backlog counters.
pub(crate) fn backlog_slot(level: Level) -> usize {
    level_index(level)
}
