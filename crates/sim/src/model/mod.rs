//! The workflow model: cases moving through the domain's five stages, staff as resources per
//! unit.
//!
//! [`Simulation`] owns the event queue, the staff pools, the open cases and the KPI
//! collectors. It decides *when* things happen (from the arrival processes, the service-time
//! distributions, the staff available and the working hours) and draws *what* the people
//! decide (intake, classification, disposition, findings, visit, satisfaction). Which command
//! comes next, who may issue it and what it records is the domain's: every open case carries
//! its domain `CaseState`, every step is a command drafted by `next_commands` and applied with
//! `decide` and `evolve` ([`crate::casework`]), and every step is emitted as a [`Step`] that
//! the engine can execute unchanged.
//!
//! The parts: `arrivals` (channels and new cases), `flow` (what each stage's end decides),
//! `staff` (work requests and pools), `watch` (the deadline watcher at every local
//! midnight), `ledger` (the bookkeeping after every step).

mod arrivals;
mod flow;
mod ledger;
mod staff;
mod watch;

use std::collections::{BinaryHeap, HashMap, VecDeque};

use caseflow::District;
use caseflow::domain::{CaseKind, CaseState, Level, Stage};

use crate::des::{EventQueue, Pool};
use crate::dist::Dist;
use crate::district::{DistrictChoice, build};
use crate::error::SimError;
use crate::hours::WorkingTime;
use crate::kpi::Collector;
use crate::layout::Layout;
use crate::rng::{SimRng, Streams};
use crate::scenario::Scenario;
use crate::trace::{Step, TraceDigest};

use arrivals::{ChannelProcess, Draws, Profiles};
use watch::WatchEntry;

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Keep the steps for the caller (engine driving) instead of only hashing them.
    pub record_steps: bool,
    /// Hash the steps into a digest.
    pub digest: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ev {
    Arrival {
        channel: u16,
    },
    WorkDone {
        unit: u32,
        case_no: u64,
        stage: Stage,
        requested: f64,
        started: f64,
    },
    HoldOver {
        case_no: u64,
    },
    ProgressDue {
        case_no: u64,
    },
    RectificationDone {
        case_no: u64,
    },
    VisitDue {
        case_no: u64,
    },
    Midnight,
    Sample,
    WarmupEnd,
}

/// A job in a unit's queue: which case's work of which stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JobTag {
    case_no: u64,
    stage: Stage,
}

/// A case the model is working on.
struct OpenCase {
    state: CaseState,
    rng: SimRng,
    kind: CaseKind,
    /// Index of the locality in `Layout::locality_units`.
    locality: usize,
    /// The room that took the case in (pool index).
    intake_room: u32,
    arrived: f64,
    counted: bool,
    duplicate: bool,
    stage_entered: f64,
    /// The level of the unit the case waits on (for the backlog by level).
    waiting_on: Option<Level>,
    reopens: u32,
    /// Bumped whenever the case's deadlines are re-indexed for the watcher.
    watch_stamp: u32,
}

/// Service-time distributions per working stage and level, and the delays.
struct Timing {
    service: [[Option<Dist>; 4]; 5],
    rectification: Dist,
    until_follow_up: Dist,
    hold_for_later: Dist,
    disciplined: Option<Dist>,
}

/// A single seeded run of a scenario.
pub struct Simulation {
    scenario: Scenario,
    district: District,
    layout: Layout,
    hours: WorkingTime,
    streams: Streams,
    queue: EventQueue<Ev>,
    pools: Vec<Pool<JobTag>>,
    timing: Timing,
    channels: Vec<ChannelProcess>,
    profiles: Profiles,
    draws: Draws,
    cases: HashMap<u64, OpenCase>,
    recent_by_locality: Vec<VecDeque<u64>>,
    next_case_no: u64,
    arrivals_end: f64,
    end: f64,
    warmup_end: f64,
    open_by_level: [i64; 4],
    watch: BinaryHeap<WatchEntry>,
    /// KPI collector.
    pub kpi: Collector,
    digest: Option<TraceDigest>,
    pending: Vec<Step>,
    record_steps: bool,
    steps_emitted: u64,
    finished: bool,
}

impl Simulation {
    /// Prepares a run of a validated scenario with master seed `seed`, on the district the
    /// scenario names or generates.
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        options: RunOptions,
    ) -> Result<Simulation, SimError> {
        let district = build(scenario, &DistrictChoice::Scenario)?;
        Ok(Self::on_district(scenario, district, seed, options))
    }

    /// Prepares a run on an already built district (see [`crate::district::build`]).
    pub fn on_district(
        scenario: &Scenario,
        district: District,
        seed: u64,
        options: RunOptions,
    ) -> Simulation {
        let s = scenario.clone();
        let layout = Layout::new(&s, &district);
        let total_days = s.simulation.horizon_days + s.simulation.drain_days;
        let hours = WorkingTime::new(
            &district.calendar,
            &s.calendar,
            s.simulation.start,
            total_days + 1,
        );
        let streams = Streams::new(seed);
        let channels = arrivals::channels(&s, &streams);
        let profiles = Profiles::new(&s);
        let draws = Draws::new(&s, &district, &layout);
        let pools = layout.units.iter().map(|u| Pool::new(u.staff)).collect();
        let arrivals_end = f64::from(s.simulation.horizon_days) * 24.0;
        let end = f64::from(total_days) * 24.0;
        let warmup_end = f64::from(s.simulation.warmup_days) * 24.0;
        let kpi = Collector::new(&s, &district.org.info().name, &layout, warmup_end);
        let recent_by_locality = vec![VecDeque::new(); layout.locality_units.len()];
        let timing = Timing::new(&s);
        let mut sim = Simulation {
            scenario: s,
            district,
            layout,
            hours,
            streams,
            queue: EventQueue::with_capacity(1024),
            pools,
            timing,
            channels,
            profiles,
            draws,
            cases: HashMap::new(),
            recent_by_locality,
            next_case_no: 1,
            arrivals_end,
            end,
            warmup_end,
            open_by_level: [0; 4],
            watch: BinaryHeap::new(),
            kpi,
            digest: options.digest.then(TraceDigest::default),
            pending: Vec::new(),
            record_steps: options.record_steps,
            steps_emitted: 0,
            finished: false,
        };
        sim.schedule_initial();
        sim
    }

    fn schedule_initial(&mut self) {
        self.schedule_arrivals();
        if self.warmup_end > 0.0 {
            self.queue.schedule(self.warmup_end, Ev::WarmupEnd);
        }
        self.queue.schedule(0.0, Ev::Sample);
        if self.end >= 24.0 {
            self.queue.schedule(24.0, Ev::Midnight);
        }
    }

    /// The run's district (organisation, calendar, policies).
    pub fn district(&self) -> &District {
        &self.district
    }

    /// The layout (units and zones).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The working time of the run.
    pub fn hours(&self) -> &WorkingTime {
        &self.hours
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The master seed's streams.
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Steps emitted so far.
    pub fn steps_emitted(&self) -> u64 {
        self.steps_emitted
    }

    /// Digest of the step log so far (when enabled).
    pub fn digest(&self) -> Option<String> {
        self.digest.as_ref().map(TraceDigest::hex)
    }

    /// Hours simulated until the end of the run.
    pub fn end_hours(&self) -> f64 {
        self.end
    }

    /// Processes events until at least one step is pending or the run ends; moves pending
    /// steps into `out`. Returns `Ok(false)` when the run is over.
    pub fn advance(&mut self, out: &mut Vec<Step>) -> Result<bool, SimError> {
        while self.pending.is_empty() {
            if !self.process_next()? {
                return Ok(false);
            }
        }
        out.append(&mut self.pending);
        Ok(true)
    }

    /// Runs to the end (steps are hashed if enabled, not kept).
    pub fn run_to_end(&mut self) -> Result<(), SimError> {
        while self.process_next()? {
            self.pending.clear();
        }
        self.pending.clear();
        Ok(())
    }

    fn process_next(&mut self) -> Result<bool, SimError> {
        if self.finished {
            return Ok(false);
        }
        let Some((now, ev)) = self.queue.pop() else {
            self.finish(self.queue.now().max(self.end));
            return Ok(false);
        };
        if now > self.end {
            self.finish(self.end);
            return Ok(false);
        }
        match ev {
            Ev::Arrival { channel } => self.on_arrival(now, channel as usize)?,
            Ev::WorkDone {
                unit,
                case_no,
                stage,
                requested,
                started,
            } => self.on_work_done(now, unit, case_no, stage, requested, started)?,
            Ev::HoldOver { case_no } => self.choose_disposition(now, case_no)?,
            Ev::ProgressDue { case_no } => self.report_progress(now, case_no)?,
            Ev::RectificationDone { case_no } => self.complete_rectification(now, case_no)?,
            Ev::VisitDue { case_no } => self.visit_due(now, case_no),
            Ev::Midnight => self.on_midnight(now)?,
            Ev::Sample => self.on_sample(now),
            Ev::WarmupEnd => {
                for p in &mut self.pools {
                    p.reset_stats(now);
                }
            }
        }
        Ok(true)
    }

    fn on_sample(&mut self, now: f64) {
        let queued = self.pools.iter().map(|p| p.queue_len() as u64).sum();
        self.kpi
            .sample(now, self.cases.len() as u64, self.open_by_level, queued);
        let next = now + self.scenario.simulation.sample_every_hours;
        if next <= self.end {
            self.queue.schedule(next, Ev::Sample);
        }
    }

    fn finish(&mut self, end: f64) {
        if self.finished {
            return;
        }
        self.finished = true;
        for p in &mut self.pools {
            p.close(end);
        }
        let at = self.hours.to_utc(end);
        let mut open: Vec<(&u64, &OpenCase)> =
            self.cases.iter().filter(|(_, c)| c.counted).collect();
        open.sort_by_key(|(n, _)| **n);
        for (_, case) in open {
            let overdue: Vec<_> = case
                .state
                .deadlines()
                .filter(|d| d.is_overdue(at))
                .map(|d| d.kind)
                .collect();
            self.kpi.still_open(case.kind, &overdue);
        }
        self.kpi.finish(end, &self.layout, &self.pools, &self.hours);
    }

    /// Cases still open (at the end: the backlog left over).
    pub fn open_cases(&self) -> usize {
        self.cases.len()
    }

    /// The domain state of an open case (for consistency checks).
    pub fn open_case_state(&self, case_no: u64) -> Option<&CaseState> {
        self.cases.get(&case_no).map(|c| &c.state)
    }
}

impl Timing {
    fn new(s: &Scenario) -> Timing {
        let mut service: [[Option<Dist>; 4]; 5] = Default::default();
        for (i, stage) in crate::scenario::WORKING_STAGES.iter().enumerate() {
            for (j, level) in crate::layout::LEVELS.iter().enumerate() {
                service[i][j] = s.service_spec(*stage, *level).map(|d| d.compile());
            }
        }
        let delay = |d: &Option<crate::dist::DistSpec>| {
            d.as_ref().map_or(Dist::Fixed(0.0), |d| d.compile())
        };
        Timing {
            service,
            rectification: delay(&s.delays.rectification),
            until_follow_up: delay(&s.delays.until_follow_up),
            hold_for_later: delay(&s.delays.hold_for_later),
            disciplined: s.outcomes.disciplined_people.as_ref().map(|d| d.compile()),
        }
    }
}
