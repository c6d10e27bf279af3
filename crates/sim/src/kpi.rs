//! KPI collection during a run and the run's [`Summary`].
//!
//! Only cases that arrive after the warm-up are counted; unit statistics (utilisation, queue
//! length) are reset at the end of the warm-up. Waits are the time from a request for a
//! person until a person starts (nights and weekends included); stage times run from entering
//! a stage to leaving it; time to close runs from the report to the closing.

use serde::{Deserialize, Serialize};

use crate::calendar::WorkCalendar;
use crate::des::Pool;
use crate::model::Layout;
use crate::scenario::{CaseKind, Level, Scenario, StageName};
use crate::stats::{mean, percentile};
use crate::trace::Finding;

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
    /// Follow-up visits made.
    pub follow_ups: u64,
    /// Follow-up visits that found the rectification did not hold.
    pub follow_ups_failed: u64,
    /// Reporters asked about satisfaction.
    pub satisfaction_asked: u64,
    /// Reporters satisfied.
    pub satisfied: u64,
}

/// KPIs of one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageKpi {
    /// Stage name.
    pub stage: String,
    /// Times a case entered the stage.
    pub entered: u64,
    /// Times a case left the stage.
    pub completed: u64,
    /// Mean wait for staff (hours).
    pub wait_mean_hours: f64,
    /// 90th percentile wait for staff (hours).
    pub wait_p90_hours: f64,
    /// Mean time in the stage (days).
    pub time_mean_days: f64,
    /// 90th percentile time in the stage (days).
    pub time_p90_days: f64,
    /// Stage left after its time limit.
    pub breaches: u64,
    /// Urgings issued for this stage's time limit.
    pub urgings: u64,
}

/// KPIs of one unit, level or zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitKpi {
    /// Unit id, level name or zone id.
    pub name: String,
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
    /// Kind name.
    pub kind: String,
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
    /// Arrivals per channel.
    pub channels: Vec<(String, u64)>,
    /// Per stage.
    pub stages: Vec<StageKpi>,
    /// Per unit.
    pub units: Vec<UnitKpi>,
    /// Per level.
    pub levels: Vec<UnitKpi>,
    /// Per zone.
    pub zones: Vec<UnitKpi>,
    /// Time to close per kind.
    pub kinds: Vec<KindKpi>,
    /// Satisfaction rate among those asked.
    pub satisfaction_rate: f64,
    /// Backlog over time.
    pub backlog: Vec<BacklogPoint>,
    /// Workflow steps (one per command) in the run.
    pub steps: u64,
    /// SHA-256 of the step log (standalone) or of the engine's event log.
    pub digest: Option<String>,
    /// Events in the engine's log (when the engine was driven).
    pub engine_events: Option<u64>,
}

#[derive(Default, Clone)]
struct StageAcc {
    entered: u64,
    completed: u64,
    waits: Vec<f64>,
    times: Vec<f64>,
    breaches: u64,
    urgings: u64,
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

/// Accumulates KPIs during a run.
pub struct Collector {
    scenario: String,
    start: chrono::NaiveDate,
    horizon_days: u32,
    warmup_end: f64,
    cases: CaseCounts,
    channels: Vec<(String, u64)>,
    stages: Vec<StageAcc>,
    units: Vec<UnitAcc>,
    kinds: Vec<KindAcc>,
    backlog: Vec<BacklogPoint>,
    summary: Option<Summary>,
}

impl Collector {
    /// A collector for a run of `s` on `layout`.
    pub fn new(s: &Scenario, layout: &Layout, warmup_end: f64) -> Self {
        Self {
            scenario: s.simulation.name.clone(),
            start: s.simulation.start,
            horizon_days: s.simulation.horizon_days,
            warmup_end,
            cases: CaseCounts::default(),
            channels: s
                .arrivals
                .channel
                .iter()
                .map(|c| (c.name.clone(), 0))
                .collect(),
            stages: vec![StageAcc::default(); 5],
            units: vec![UnitAcc::default(); layout.units.len()],
            kinds: vec![KindAcc::default(); 4],
            backlog: Vec::new(),
            summary: None,
        }
    }

    pub(crate) fn arrival(&mut self, counted: bool, kind: CaseKind, channel: usize) {
        if counted {
            self.cases.arrived += 1;
            self.kinds[kind as usize].arrived += 1;
            self.channels[channel].1 += 1;
        }
    }
    pub(crate) fn outcome(&mut self, counted: bool, label: &str) {
        if !counted {
            return;
        }
        match label {
            "merged" => self.cases.merged += 1,
            "declined" => self.cases.declined += 1,
            "transferred" => self.cases.transferred += 1,
            "closed_without_action" => self.cases.closed_without_action += 1,
            _ => self.cases.accepted += 1,
        }
    }
    pub(crate) fn stage_entered(&mut self, counted: bool, stage: StageName) {
        if counted {
            self.stages[stage.index()].entered += 1;
        }
    }
    pub(crate) fn stage_left(
        &mut self,
        counted: bool,
        stage: StageName,
        duration: f64,
        breached: bool,
    ) {
        if counted {
            let s = &mut self.stages[stage.index()];
            s.completed += 1;
            s.times.push(duration / 24.0);
            if breached {
                s.breaches += 1;
            }
        }
    }
    pub(crate) fn requested(&mut self, counted: bool, unit: u32) {
        if counted {
            self.units[unit as usize].requests += 1;
        }
    }
    pub(crate) fn work_done(&mut self, counted: bool, unit: u32, stage: StageName, wait: f64) {
        if counted {
            let u = &mut self.units[unit as usize];
            u.completed += 1;
            u.waits.push(wait);
            self.stages[stage.index()].waits.push(wait);
        }
    }
    pub(crate) fn urged(&mut self, counted: bool, stage: StageName) {
        if counted {
            self.stages[stage.index()].urgings += 1;
        }
    }
    pub(crate) fn case_ended(&mut self, counted: bool, kind: CaseKind, closed: bool, time: f64) {
        if counted && closed {
            self.cases.closed += 1;
            let k = &mut self.kinds[kind as usize];
            k.closed += 1;
            k.times.push(time / 24.0);
        }
    }
    pub(crate) fn cross_inspection(&mut self, counted: bool) {
        if counted {
            self.cases.cross_inspections += 1;
        }
    }
    pub(crate) fn finding(&mut self, counted: bool, f: Finding) {
        if counted {
            match f {
                Finding::Substantiated => self.cases.substantiated += 1,
                Finding::PartlySubstantiated => self.cases.partly_substantiated += 1,
                Finding::NotSubstantiated => self.cases.not_substantiated += 1,
            }
        }
    }
    pub(crate) fn disciplined(&mut self, counted: bool, people: u32) {
        if counted {
            self.cases.disciplined_people += people as u64;
        }
    }
    pub(crate) fn follow_up(&mut self, counted: bool, passed: bool) {
        if counted {
            self.cases.follow_ups += 1;
            if !passed {
                self.cases.follow_ups_failed += 1;
            }
        }
    }
    pub(crate) fn satisfaction(&mut self, counted: bool, satisfied: bool) {
        if counted {
            self.cases.satisfaction_asked += 1;
            if satisfied {
                self.cases.satisfied += 1;
            }
        }
    }
    pub(crate) fn reopened(&mut self, counted: bool) {
        if counted {
            self.cases.reopened += 1;
        }
    }
    pub(crate) fn sample(&mut self, now: f64, open: u64, by_level: [i64; 4], queued: [u64; 4]) {
        let date = (self.start + chrono::Duration::days((now / 24.0).floor() as i64)).to_string();
        self.backlog.push(BacklogPoint {
            hours: now,
            date,
            open,
            room: by_level[0].max(0) as u64,
            team: by_level[1].max(0) as u64,
            locality: by_level[2].max(0) as u64,
            village: by_level[3].max(0) as u64,
            queued: queued.iter().sum(),
        });
    }

    pub(crate) fn finish<T: Copy>(
        &mut self,
        end: f64,
        layout: &Layout,
        pools: &[Pool<T>],
        cal: &WorkCalendar,
        open: &[(CaseKind, bool)],
    ) {
        for (kind, counted) in open {
            if *counted {
                self.cases.open_at_end += 1;
                self.kinds[*kind as usize].open += 1;
            }
        }
        // Working hours available per person over the counted period.
        let first_day = (self.warmup_end / 24.0).floor() as i64;
        let last_day = (end / 24.0).ceil() as i64;
        let span = (end - self.warmup_end).max(f64::MIN_POSITIVE);
        let working_hours: f64 = (first_day..last_day)
            .filter(|d| cal.is_working_day(*d))
            .map(|d| {
                let day_start = d as f64 * 24.0;
                let from = day_start.max(self.warmup_end);
                let to = (day_start + 24.0).min(end);
                (to - from).max(0.0) / 24.0 * cal.hours_per_day()
            })
            .sum();
        let mut units = Vec::new();
        for (i, (u, p)) in layout.units.iter().zip(pools).enumerate() {
            let acc = &self.units[i];
            units.push(UnitKpi {
                name: u.id.clone(),
                level: u.level.as_str().into(),
                zone: u.zone,
                staff: u.staff,
                requests: acc.requests,
                completed: acc.completed,
                wait_mean_hours: mean(&acc.waits),
                wait_p90_hours: percentile(&acc.waits, 0.9),
                queue_mean: p.queue_area() / span,
                queue_max: p.max_queue() as u64,
                utilisation: if working_hours > 0.0 {
                    p.work_started / (u.staff as f64 * working_hours)
                } else {
                    0.0
                },
            });
        }
        let group = |name: String, level: String, zone: u32, members: Vec<usize>| -> UnitKpi {
            let waits: Vec<f64> = members
                .iter()
                .flat_map(|i| self.units[*i].waits.iter().copied())
                .collect();
            let staff: u32 = members.iter().map(|i| units[*i].staff).sum();
            let staff_f = staff.max(1) as f64;
            UnitKpi {
                name,
                level,
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
                    .map(|i| units[*i].utilisation * units[*i].staff as f64)
                    .sum::<f64>()
                    / staff_f,
            }
        };
        let levels = Level::ALL
            .iter()
            .map(|l| {
                let members = layout
                    .units
                    .iter()
                    .enumerate()
                    .filter(|(_, u)| u.level == *l)
                    .map(|(i, _)| i)
                    .collect();
                group(l.as_str().into(), l.as_str().into(), 0, members)
            })
            .collect();
        let zones = (1..=layout.zones)
            .map(|z| {
                let members = layout
                    .units
                    .iter()
                    .enumerate()
                    .filter(|(_, u)| u.zone == z)
                    .map(|(i, _)| i)
                    .collect();
                group(format!("zone-{z}"), String::new(), z, members)
            })
            .collect();
        let stages = StageName::ALL
            .iter()
            .map(|s| {
                let a = &self.stages[s.index()];
                StageKpi {
                    stage: s.as_str().into(),
                    entered: a.entered,
                    completed: a.completed,
                    wait_mean_hours: mean(&a.waits),
                    wait_p90_hours: percentile(&a.waits, 0.9),
                    time_mean_days: mean(&a.times),
                    time_p90_days: percentile(&a.times, 0.9),
                    breaches: a.breaches,
                    urgings: a.urgings,
                }
            })
            .collect();
        let kinds = CaseKind::ALL
            .iter()
            .map(|k| {
                let a = &self.kinds[*k as usize];
                KindKpi {
                    kind: k.as_str().into(),
                    arrived: a.arrived,
                    closed: a.closed,
                    open_at_end: a.open,
                    close_mean_days: mean(&a.times),
                    close_p90_days: percentile(&a.times, 0.9),
                }
            })
            .collect();
        let satisfaction_rate = if self.cases.satisfaction_asked > 0 {
            self.cases.satisfied as f64 / self.cases.satisfaction_asked as f64
        } else {
            0.0
        };
        self.summary = Some(Summary {
            scenario: self.scenario.clone(),
            seed: 0,
            start: self.start.to_string(),
            horizon_days: self.horizon_days,
            simulated_hours: end,
            cases: self.cases.clone(),
            channels: self.channels.clone(),
            stages,
            units,
            levels,
            zones,
            kinds,
            satisfaction_rate,
            backlog: std::mem::take(&mut self.backlog),
            steps: 0,
            digest: None,
            engine_events: None,
        });
    }

    /// The summary, once the run has finished.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }
}

impl Summary {
    /// Flat named scalars (for replications and comparison), in a stable order.
    pub fn scalars(&self) -> Vec<(String, f64)> {
        let mut v = vec![
            ("cases.arrived".to_string(), self.cases.arrived as f64),
            ("cases.closed".into(), self.cases.closed as f64),
            ("cases.open_at_end".into(), self.cases.open_at_end as f64),
            ("cases.reopened".into(), self.cases.reopened as f64),
            (
                "cases.cross_inspections".into(),
                self.cases.cross_inspections as f64,
            ),
            (
                "cases.disciplined_people".into(),
                self.cases.disciplined_people as f64,
            ),
            (
                "cases.follow_ups_failed".into(),
                self.cases.follow_ups_failed as f64,
            ),
            ("satisfaction_rate".into(), self.satisfaction_rate),
        ];
        for s in &self.stages {
            v.push((
                format!("stage.{}.wait_mean_hours", s.stage),
                s.wait_mean_hours,
            ));
            v.push((
                format!("stage.{}.wait_p90_hours", s.stage),
                s.wait_p90_hours,
            ));
            v.push((
                format!("stage.{}.time_mean_days", s.stage),
                s.time_mean_days,
            ));
            v.push((format!("stage.{}.breaches", s.stage), s.breaches as f64));
            v.push((format!("stage.{}.urgings", s.stage), s.urgings as f64));
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
}
