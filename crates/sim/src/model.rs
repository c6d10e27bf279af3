//! The workflow model: cases moving through the five stages, staff as resources per unit.
//!
//! [`Simulation`] owns the event queue, the pools, the open cases and the KPI collectors. It
//! decides *what* happens to each case (from the scenario's probabilities and the routing
//! policy) and *when* (from the service-time distributions, the staff available and the
//! working calendar), and emits each decision as a [`Step`]. The steps can be hashed
//! (standalone) or executed as commands by the real engine (see `engine`).

use std::collections::{HashMap, VecDeque};

use rand::RngExt;

use crate::calendar::WorkCalendar;
use crate::des::{EventQueue, Job, Pool, Seized};
use crate::dist::{Dist, pick_weighted};
use crate::kpi::Collector;
use crate::rng::{SimRng, StreamFamily, Streams};
use crate::scenario::{CaseKind, CrossInspection, DISPOSITIONS, Level, Scenario, StageName};
use crate::trace::{Action, CloseOutcome, Finding, Step, TraceDigest};

/// One unit of the organisation with its staff.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Id such as `room-1`, `team-2`, `loc-3`, `vil-17`.
    pub id: String,
    /// Level.
    pub level: Level,
    /// Zone number (1-based).
    pub zone: u32,
    /// People.
    pub staff: u32,
}

/// The district layout the simulation runs on.
#[derive(Debug, Clone)]
pub struct Layout {
    /// All units: rooms, teams, localities, villages, in that order.
    pub units: Vec<Unit>,
    /// Number of zones.
    pub zones: u32,
    rooms_by_zone: Vec<Vec<u32>>,
    all_rooms: Vec<u32>,
    all_teams: Vec<u32>,
    locs_by_zone: Vec<Vec<u32>>,
    /// Unit index of each locality.
    pub locality_units: Vec<u32>,
    /// Unit index of each village.
    pub village_units: Vec<u32>,
    villages_of_locality: Vec<Vec<u32>>,
    peers: Vec<Vec<u32>>,
}

impl Layout {
    /// Builds the layout of a validated scenario.
    pub fn new(s: &Scenario) -> Layout {
        let org = &s.organisation;
        let zone_for = |id: &str, i: u32| -> u32 {
            org.zone_of
                .get(id)
                .and_then(|z| z.strip_prefix("zone-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(i % org.zones + 1)
        };
        let staff_for = |id: &str, level: Level| -> u32 {
            s.staffing
                .per_unit
                .get(id)
                .copied()
                .or_else(|| s.staffing.per_level.get(&level).copied())
                .unwrap_or(1)
        };
        let mut units = Vec::new();
        let push = |units: &mut Vec<Unit>,
                    prefix: &str,
                    level: Level,
                    count: u32,
                    zone: &dyn Fn(&str, u32) -> u32| {
            let mut idx = Vec::new();
            for i in 0..count {
                let id = format!("{prefix}-{}", i + 1);
                idx.push(units.len() as u32);
                units.push(Unit {
                    zone: zone(&id, i),
                    staff: staff_for(&id, level),
                    id,
                    level,
                });
            }
            idx
        };
        let all_rooms = push(&mut units, "room", Level::Room, org.rooms, &zone_for);
        let all_teams = push(&mut units, "team", Level::Team, org.teams, &zone_for);
        let locality_units = push(
            &mut units,
            "loc",
            Level::Locality,
            org.localities,
            &zone_for,
        );
        let loc_zones: Vec<u32> = locality_units
            .iter()
            .map(|u| units[*u as usize].zone)
            .collect();
        let village_zone = |_: &str, i: u32| loc_zones[(i % org.localities) as usize];
        let village_units = push(
            &mut units,
            "vil",
            Level::Village,
            org.villages,
            &village_zone,
        );
        let zones = org.zones;
        let mut rooms_by_zone = vec![Vec::new(); zones as usize + 1];
        let mut locs_by_zone = vec![Vec::new(); zones as usize + 1];
        for r in &all_rooms {
            rooms_by_zone[units[*r as usize].zone as usize].push(*r);
        }
        for l in &locality_units {
            locs_by_zone[units[*l as usize].zone as usize].push(*l);
        }
        let mut villages_of_locality = vec![Vec::new(); org.localities as usize];
        for v in 0..org.villages {
            villages_of_locality[(v % org.localities) as usize].push(v);
        }
        let peers = peers_of(&units);
        Layout {
            units,
            zones,
            rooms_by_zone,
            all_rooms,
            all_teams,
            locs_by_zone,
            locality_units,
            village_units,
            villages_of_locality,
            peers,
        }
    }

    /// A layout from explicit units: `units` in any order (each with its zone, 1-based) and, for
    /// each village unit, the unit index of its locality. Used to run on the engine's district.
    pub fn from_units(units: Vec<Unit>, village_locality: &[(u32, u32)], zones: u32) -> Layout {
        let of_level = |l: Level| -> Vec<u32> {
            units
                .iter()
                .enumerate()
                .filter(|(_, u)| u.level == l)
                .map(|(i, _)| i as u32)
                .collect()
        };
        let all_rooms = of_level(Level::Room);
        let all_teams = of_level(Level::Team);
        let locality_units = of_level(Level::Locality);
        let village_units = of_level(Level::Village);
        let mut rooms_by_zone = vec![Vec::new(); zones as usize + 1];
        let mut locs_by_zone = vec![Vec::new(); zones as usize + 1];
        for r in &all_rooms {
            rooms_by_zone[units[*r as usize].zone as usize].push(*r);
        }
        for l in &locality_units {
            locs_by_zone[units[*l as usize].zone as usize].push(*l);
        }
        let mut villages_of_locality = vec![Vec::new(); locality_units.len()];
        for (v_index, v_unit) in village_units.iter().enumerate() {
            let loc = village_locality
                .iter()
                .find(|(v, _)| v == v_unit)
                .map(|(_, l)| *l);
            if let Some(li) = loc.and_then(|l| locality_units.iter().position(|x| *x == l)) {
                villages_of_locality[li].push(v_index as u32);
            }
        }
        let peers = peers_of(&units);
        Layout {
            units,
            zones,
            rooms_by_zone,
            all_rooms,
            all_teams,
            locs_by_zone,
            locality_units,
            village_units,
            villages_of_locality,
            peers,
        }
    }

    /// The room that leads cases of `zone` (`pick` spreads cases over several rooms).
    pub fn room_for_zone(&self, zone: u32, pick: u64) -> u32 {
        let rooms = self
            .rooms_by_zone
            .get(zone as usize)
            .filter(|r| !r.is_empty())
            .unwrap_or(&self.all_rooms);
        rooms[(pick % rooms.len() as u64) as usize]
    }

    /// Localities of the zone other than `locality_unit`.
    pub fn other_localities(&self, locality_unit: u32) -> Vec<u32> {
        let zone = self.units[locality_unit as usize].zone;
        self.locs_by_zone[zone as usize]
            .iter()
            .copied()
            .filter(|l| *l != locality_unit)
            .collect()
    }

    /// Zone of a unit.
    pub fn zone_of(&self, unit: u32) -> u32 {
        self.units[unit as usize].zone
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ev {
    Arrival {
        channel: u16,
    },
    WorkDone {
        unit: u32,
        case_no: u64,
        stage: StageName,
        requested: f64,
        started: f64,
    },
    RectificationDone {
        case_no: u64,
    },
    FollowUpDue {
        case_no: u64,
    },
    Sample,
    WarmupEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JobTag {
    case_no: u64,
    stage: StageName,
}

struct Case {
    rng: SimRng,
    kind: CaseKind,
    zone: u32,
    locality: u32,
    village: u32,
    arrived: f64,
    counted: bool,
    duplicate: bool,
    stage: StageName,
    stage_entered: f64,
    due: Option<f64>,
    generation: u32,
    urged: bool,
    acting_level: Option<Level>,
    lead: u32,
    handler: u32,
    responsible: u32,
    had_rectification: bool,
    reopened: u32,
}

struct Channel {
    family: StreamFamily,
    per_hour: f64,
    profiled: bool,
    kind_weights: [f64; 4],
    rng: SimRng,
    seq: u64,
}

/// A single seeded run of a scenario.
pub struct Simulation {
    scenario: Scenario,
    layout: Layout,
    cal: WorkCalendar,
    streams: Streams,
    queue: EventQueue<Ev>,
    pools: Vec<Pool<JobTag>>,
    service: [[Option<Dist>; 4]; 5],
    rectification: Dist,
    until_follow_up: Dist,
    disciplined: Option<Dist>,
    limits: [Option<u32>; 5],
    channels: Vec<Channel>,
    weekday: [f64; 7],
    month: [f64; 12],
    profile_max: f64,
    locality_weights: Vec<f64>,
    focus_weights: Vec<f64>,
    disposition_weights: Vec<f64>,
    cases: HashMap<u64, Case>,
    recent_by_locality: Vec<VecDeque<u64>>,
    next_case_no: u64,
    arrivals_end: f64,
    end: f64,
    warmup_end: f64,
    open_by_level: [i64; 4],
    /// Pending time limits per stage, in due order: a stage's limit is a fixed number of
    /// working days and stages are entered in time order, so each list is sorted by
    /// construction and a FIFO replaces a heap (which grew to hundreds of thousands of stale
    /// entries at province scale).
    deadlines: [VecDeque<(f64, u64, u32)>; 5],
    /// KPI collector.
    pub kpi: Collector,
    digest: Option<TraceDigest>,
    pending: Vec<Step>,
    record_steps: bool,
    steps_emitted: u64,
    finished: bool,
}

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Keep the steps for the caller (engine driving) instead of only hashing them.
    pub record_steps: bool,
    /// Hash the steps into a digest.
    pub digest: bool,
}

impl Simulation {
    /// Prepares a run of a validated scenario with master seed `seed`.
    pub fn new(scenario: &Scenario, seed: u64, options: RunOptions) -> Simulation {
        Self::with_layout(scenario, Layout::new(scenario), seed, options)
    }

    /// Prepares a run on an explicit layout (e.g. the engine's district). The scenario's
    /// `organisation` counts are then not used; `arrivals.locality_weights`, if given, must
    /// match the layout's localities or is ignored.
    pub fn with_layout(
        scenario: &Scenario,
        layout: Layout,
        seed: u64,
        options: RunOptions,
    ) -> Simulation {
        let s = scenario.clone();
        let total_days = s.simulation.horizon_days + s.simulation.drain_days;
        let cal = WorkCalendar::new(&s.calendar, s.simulation.start, total_days + 400);
        let streams = Streams::new(seed);
        let mut service: [[Option<Dist>; 4]; 5] = Default::default();
        for (stage, per_level) in &s.service {
            for (level, spec) in per_level {
                if let (Some(stage), Some(level)) = (StageName::parse(stage), Level::parse(level)) {
                    service[stage.index()][level as usize] = Some(spec.compile());
                }
            }
        }
        let fixed0 = Dist::Fixed(0.0);
        let rectification = s
            .delays
            .rectification
            .as_ref()
            .map(|d| d.compile())
            .unwrap_or(fixed0.clone());
        let until_follow_up = s
            .delays
            .until_follow_up
            .as_ref()
            .map(|d| d.compile())
            .unwrap_or(fixed0);
        let disciplined = s.outcomes.disciplined_people.as_ref().map(|d| d.compile());
        let mut limits = [None; 5];
        for (stage, days) in &s.policies.time_limits_days {
            limits[stage.index()] = Some(*days);
        }
        let normalise = |p: Option<&Vec<f64>>, n: usize| -> Vec<f64> {
            match p {
                Some(v) => {
                    let m = v.iter().sum::<f64>() / n as f64;
                    v.iter().map(|x| x / m).collect()
                }
                None => vec![1.0; n],
            }
        };
        let wd = normalise(s.arrivals.weekday_profile.as_ref(), 7);
        let mo = normalise(s.arrivals.month_profile.as_ref(), 12);
        let mut weekday = [1.0; 7];
        weekday.copy_from_slice(&wd);
        let mut month = [1.0; 12];
        month.copy_from_slice(&mo);
        let profile_max =
            wd.iter().copied().fold(0.0, f64::max) * mo.iter().copied().fold(0.0, f64::max);
        let kind_weights = |mix: &std::collections::BTreeMap<CaseKind, f64>| {
            let mut w = [0.0; 4];
            for (k, v) in mix {
                w[*k as usize] = *v;
            }
            w
        };
        let channels = s
            .arrivals
            .channel
            .iter()
            .map(|c| Channel {
                family: StreamFamily::new(&streams, &format!("case/{}", c.name)),
                per_hour: c
                    .per_hour
                    .unwrap_or_else(|| c.per_year.unwrap_or(0.0) / (365.0 * 24.0)),
                profiled: c.per_year.is_some(),
                kind_weights: kind_weights(c.kind_mix.as_ref().unwrap_or(&s.arrivals.kind_mix)),
                rng: streams.stream(&format!("arrivals/{}", c.name), 0),
                seq: 0,
            })
            .collect();
        let n_localities = layout.locality_units.len();
        let locality_weights = s
            .arrivals
            .locality_weights
            .clone()
            .filter(|w| w.len() == n_localities)
            .unwrap_or_else(|| vec![1.0; n_localities]);
        let focus_weights = s.arrivals.focus_mix.values().copied().collect();
        let disposition_weights = s.outcomes.disposition.values().copied().collect();
        let pools = layout.units.iter().map(|u| Pool::new(u.staff)).collect();
        let arrivals_end = s.simulation.horizon_days as f64 * 24.0;
        let end = total_days as f64 * 24.0;
        let warmup_end = s.simulation.warmup_days as f64 * 24.0;
        let kpi = Collector::new(&s, &layout, warmup_end);
        let recent_by_locality = vec![VecDeque::new(); n_localities];
        let mut sim = Simulation {
            scenario: s,
            layout,
            cal,
            streams,
            queue: EventQueue::with_capacity(1024),
            pools,
            service,
            rectification,
            until_follow_up,
            disciplined,
            limits,
            channels,
            weekday,
            month,
            profile_max,
            locality_weights,
            focus_weights,
            disposition_weights,
            cases: HashMap::new(),
            recent_by_locality,
            next_case_no: 1,
            arrivals_end,
            end,
            warmup_end,
            open_by_level: [0; 4],
            deadlines: Default::default(),
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
        for i in 0..self.channels.len() {
            let spec = &self.scenario.arrivals.channel[i];
            if let Some(batch) = spec.batch.clone() {
                let rng = &mut self.channels[i].rng;
                let lo = batch.from_day as f64 * 24.0;
                let hi = (batch.to_day.min(self.scenario.simulation.horizon_days)) as f64 * 24.0;
                let mut times: Vec<f64> = (0..batch.count)
                    .map(|_| lo + rng.random::<f64>() * (hi - lo))
                    .collect();
                times.sort_by(f64::total_cmp);
                for t in times {
                    self.queue.schedule(t, Ev::Arrival { channel: i as u16 });
                }
            } else if let Some(t) = self.next_arrival_time(i, 0.0) {
                self.queue.schedule(t, Ev::Arrival { channel: i as u16 });
            }
        }
        if self.warmup_end > 0.0 {
            self.queue.schedule(self.warmup_end, Ev::WarmupEnd);
        }
        self.queue.schedule(0.0, Ev::Sample);
    }

    /// Next arrival after `t` of a Poisson channel, by thinning against the profiles.
    fn next_arrival_time(&mut self, channel: usize, mut t: f64) -> Option<f64> {
        let ch = &mut self.channels[channel];
        let profiled = ch.profiled;
        let max_rate = ch.per_hour * if profiled { self.profile_max } else { 1.0 };
        if max_rate <= 0.0 {
            return None;
        }
        loop {
            let u: f64 = ch.rng.random();
            t += -(1.0 - u).ln() / max_rate;
            if t >= self.arrivals_end {
                return None;
            }
            if !profiled {
                return Some(t);
            }
            let day = (t / 24.0).floor() as i64;
            let rate = ch.per_hour
                * self.weekday[self.cal.weekday_index(day)]
                * self.month[self.cal.month_index(day)];
            let accept: f64 = ch.rng.random();
            if accept * max_rate <= rate {
                return Some(t);
            }
        }
    }

    /// The layout (units and zones).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The working calendar.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.cal
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

    /// Processes events until at least one step is pending or the run ends; moves pending
    /// steps into `out`. Returns `false` when the run is over.
    pub fn advance(&mut self, out: &mut Vec<Step>) -> bool {
        while self.pending.is_empty() {
            if !self.process_next() {
                return false;
            }
        }
        out.append(&mut self.pending);
        true
    }

    /// Runs to the end (steps are hashed if enabled, not kept).
    pub fn run_to_end(&mut self) {
        while self.process_next() {
            self.pending.clear();
        }
        self.pending.clear();
    }

    fn process_next(&mut self) -> bool {
        if self.finished {
            return false;
        }
        // A time limit due no later than the next queued event goes first.
        let next_deadline = (0..5)
            .filter_map(|i| self.deadlines[i].front().map(|d| (d.0, i)))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some((due, i)) = next_deadline {
            if due <= self.end && self.queue.peek_time().is_none_or(|t| due <= t) {
                if let Some((due, case_no, generation)) = self.deadlines[i].pop_front() {
                    self.queue.advance_to(due);
                    self.on_deadline(due, case_no, generation);
                }
                return true;
            }
        }
        let Some((now, ev)) = self.queue.pop() else {
            self.finish(self.queue.now().max(self.end));
            return false;
        };
        if now > self.end {
            self.finish(self.end);
            return false;
        }
        match ev {
            Ev::Arrival { channel } => self.on_arrival(now, channel as usize),
            Ev::WorkDone {
                unit,
                case_no,
                stage,
                requested,
                started,
            } => self.on_work_done(now, unit, case_no, stage, requested, started),
            Ev::RectificationDone { case_no } => self.on_rectification_done(now, case_no),
            Ev::FollowUpDue { case_no } => self.on_follow_up_due(now, case_no),
            Ev::Sample => {
                let queues = self.queue_by_level();
                self.kpi
                    .sample(now, self.cases.len() as u64, self.open_by_level, queues);
                let next = now + self.scenario.simulation.sample_every_hours;
                if next <= self.end {
                    self.queue.schedule(next, Ev::Sample);
                }
            }
            Ev::WarmupEnd => {
                for p in &mut self.pools {
                    p.reset_stats(now);
                }
            }
        }
        true
    }

    fn queue_by_level(&self) -> [u64; 4] {
        let mut q = [0u64; 4];
        for (u, p) in self.layout.units.iter().zip(&self.pools) {
            q[u.level as usize] += p.queue_len() as u64;
        }
        q
    }

    fn finish(&mut self, end: f64) {
        if self.finished {
            return;
        }
        self.finished = true;
        for p in &mut self.pools {
            p.close(end);
        }
        let open_ages: Vec<(CaseKind, bool)> =
            self.cases.values().map(|c| (c.kind, c.counted)).collect();
        self.kpi
            .finish(end, &self.layout, &self.pools, &self.cal, &open_ages);
    }

    fn emit(&mut self, at: f64, case_no: u64, actor: u32, action: Action) {
        let step = Step {
            at,
            case_no,
            actor,
            action,
        };
        if let Some(d) = &mut self.digest {
            d.add(&step);
        }
        self.steps_emitted += 1;
        if self.record_steps {
            self.pending.push(step);
        } else {
            // Keep `advance` responsive without holding steps.
            if self.pending.is_empty() {
                self.pending.push(step);
            }
        }
    }

    fn on_arrival(&mut self, now: f64, channel: usize) {
        if self.scenario.arrivals.channel[channel].batch.is_none() {
            if let Some(t) = self.next_arrival_time(channel, now) {
                self.queue.schedule(
                    t,
                    Ev::Arrival {
                        channel: channel as u16,
                    },
                );
            }
        }
        let case_no = self.next_case_no;
        self.next_case_no += 1;
        let ch = &mut self.channels[channel];
        let mut rng = ch.family.get(ch.seq);
        ch.seq += 1;
        let kind = CaseKind::ALL[pick_weighted(&mut rng, &ch.kind_weights)];
        let focus = if self.focus_weights.is_empty() {
            0
        } else {
            pick_weighted(&mut rng, &self.focus_weights)
        } as u16;
        let locality = pick_weighted(&mut rng, &self.locality_weights) as u32;
        let villages = &self.layout.villages_of_locality[locality as usize];
        let village = if villages.is_empty() {
            0
        } else {
            villages[rng.random_range(0..villages.len())]
        };
        let duplicate = rng.random::<f64>() < self.scenario.arrivals.duplicate_share;
        let loc_unit = self.layout.locality_units[locality as usize];
        let zone = self.layout.zone_of(loc_unit);
        let pick: u64 = rng.random();
        let lead = self.layout.room_for_zone(zone, pick);
        let counted = now >= self.warmup_end;
        self.cases.insert(
            case_no,
            Case {
                rng,
                kind,
                zone,
                locality,
                village,
                arrived: now,
                counted,
                duplicate,
                stage: StageName::Intake,
                stage_entered: now,
                due: None,
                generation: 0,
                urged: false,
                acting_level: None,
                lead,
                handler: lead,
                responsible: loc_unit,
                had_rectification: false,
                reopened: 0,
            },
        );
        self.kpi.arrival(counted, kind, channel);
        let village_unit = self
            .layout
            .village_units
            .get(village as usize)
            .copied()
            .unwrap_or(lead);
        self.emit(
            now,
            case_no,
            village_unit,
            Action::Report {
                channel: channel as u16,
                kind,
                focus,
                locality,
                village,
                intake_unit: lead,
            },
        );
        self.start_stage(now, case_no, StageName::Intake, lead);
    }

    /// Enters a stage: sets its time limit and asks `unit` for the stage's work.
    fn start_stage(&mut self, now: f64, case_no: u64, stage: StageName, unit: u32) {
        let limit = self.limits[stage.index()];
        let due = limit.map(|d| self.cal.add_working_days(now, d));
        let level = self.layout.units[unit as usize].level;
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        case.stage = stage;
        case.stage_entered = now;
        case.due = due;
        case.urged = false;
        case.generation += 1;
        let generation = case.generation;
        let counted = case.counted;
        if let Some(old) = case.acting_level.replace(level) {
            self.open_by_level[old as usize] -= 1;
        }
        self.open_by_level[level as usize] += 1;
        self.kpi.stage_entered(counted, stage);
        if let Some(due) = due {
            self.deadlines[stage.index()].push_back((due, case_no, generation));
        }
        if stage != StageName::Rectification || self.service_dist(stage, level).is_some() {
            self.request_work(now, case_no, stage, unit);
        }
    }

    fn service_dist(&self, stage: StageName, level: Level) -> Option<&Dist> {
        self.service[stage.index()][level as usize]
            .as_ref()
            .filter(|d| !d.is_instant())
    }

    /// Picks the unit that does the work (zone pooling may pick a peer with free staff).
    fn pick_unit(&self, unit: u32) -> u32 {
        let level = self.layout.units[unit as usize].level;
        if !self.scenario.policies.zone_pooling.contains(&level) {
            return unit;
        }
        let peers = &self.layout.peers[unit as usize];
        let free = |u: u32| {
            let p = &self.pools[u as usize];
            p.busy() < p.capacity()
        };
        if free(unit) {
            return unit;
        }
        if let Some(p) = peers.iter().copied().find(|p| free(*p)) {
            return p;
        }
        peers
            .iter()
            .copied()
            .min_by_key(|p| (self.pools[*p as usize].queue_len(), *p != unit, *p))
            .unwrap_or(unit)
    }

    fn request_work(&mut self, now: f64, case_no: u64, stage: StageName, unit: u32) {
        let level = self.layout.units[unit as usize].level;
        let Some(dist) = self.service_dist(stage, level).cloned() else {
            // Instantaneous stage: no staff, no wait.
            self.on_work_done(now, u32::MAX, case_no, stage, now, now);
            return;
        };
        let unit = self.pick_unit(unit);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        let work = dist.sample(&mut case.rng);
        let counted = case.counted;
        self.kpi.requested(counted, unit);
        let tag = JobTag { case_no, stage };
        if let Seized::Started(job) = self.pools[unit as usize].request(
            now,
            Job {
                payload: tag,
                work,
                requested_at: now,
            },
        ) {
            self.start_job(now, unit, job);
        }
    }

    fn start_job(&mut self, now: f64, unit: u32, job: Job<JobTag>) {
        let start = self.cal.next_open(now);
        let done = self.cal.add_work(start, job.work);
        self.queue.schedule(
            done,
            Ev::WorkDone {
                unit,
                case_no: job.payload.case_no,
                stage: job.payload.stage,
                requested: job.requested_at,
                started: start,
            },
        );
    }

    fn on_work_done(
        &mut self,
        now: f64,
        unit: u32,
        case_no: u64,
        stage: StageName,
        requested: f64,
        started: f64,
    ) {
        if unit != u32::MAX {
            if let Some(next) = self.pools[unit as usize].release(now) {
                self.start_job(now, unit, next);
            }
            let counted = self.cases.get(&case_no).is_some_and(|c| c.counted);
            self.kpi
                .work_done(counted, unit, stage, started - requested);
        }
        if !self.cases.contains_key(&case_no) {
            return;
        }
        match stage {
            StageName::Intake => self.finish_intake(now, case_no),
            StageName::Classification => self.finish_classification(now, case_no),
            StageName::Handling => self.finish_handling(now, case_no),
            StageName::Rectification => self.finish_plan(now, case_no),
            StageName::Review => self.finish_review(now, case_no),
        }
    }

    fn end_stage(&mut self, now: f64, case_no: u64) {
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        case.generation += 1;
        let breached = case.due.is_some_and(|d| now > d);
        let (counted, stage, entered) = (case.counted, case.stage, case.stage_entered);
        self.kpi.stage_left(counted, stage, now - entered, breached);
    }

    fn end_case(&mut self, now: f64, case_no: u64, closed: bool) {
        self.end_stage(now, case_no);
        if let Some(case) = self.cases.remove(&case_no) {
            if let Some(level) = case.acting_level {
                self.open_by_level[level as usize] -= 1;
            }
            self.kpi
                .case_ended(case.counted, case.kind, closed, now - case.arrived);
        }
    }

    fn draw(&mut self, case_no: u64) -> f64 {
        self.cases
            .get_mut(&case_no)
            .map(|c| c.rng.random::<f64>())
            .unwrap_or(1.0)
    }

    fn finish_intake(&mut self, now: f64, case_no: u64) {
        let Some(case) = self.cases.get(&case_no) else {
            return;
        };
        let (lead, locality, duplicate) = (case.lead, case.locality as usize, case.duplicate);
        if duplicate {
            let target = self.recent_by_locality[locality]
                .iter()
                .rev()
                .copied()
                .find(|n| self.cases.contains_key(n));
            if let Some(into_case) = target {
                self.emit(now, case_no, lead, Action::Merge { into_case });
                self.kpi.outcome(self.cases[&case_no].counted, "merged");
                self.end_case(now, case_no, false);
                return;
            }
        }
        let accept = self.draw(case_no) < self.scenario.outcomes.accept;
        let transfer = self.draw(case_no) < self.scenario.outcomes.transfer_share_of_rejected;
        let counted = self.cases[&case_no].counted;
        if !accept {
            let (action, label) = if transfer {
                (Action::Transfer, "transferred")
            } else {
                (Action::Decline, "declined")
            };
            self.emit(now, case_no, lead, action);
            self.kpi.outcome(counted, label);
            self.end_case(now, case_no, false);
            return;
        }
        self.emit(now, case_no, lead, Action::Accept);
        self.kpi.outcome(counted, "accepted");
        let recent = &mut self.recent_by_locality[locality];
        recent.push_back(case_no);
        if recent.len() > 16 {
            recent.pop_front();
        }
        self.end_stage(now, case_no);
        self.start_stage(now, case_no, StageName::Classification, lead);
    }

    fn finish_classification(&mut self, now: f64, case_no: u64) {
        let p = self.scenario.policies.clone();
        let serious = self.draw(case_no) < p.serious_share;
        let involves = self.draw(case_no) < p.clue_involves_locality;
        let to_department = self.draw(case_no) < p.department_share;
        let team_pick: u64 = self
            .cases
            .get_mut(&case_no)
            .map(|c| c.rng.random())
            .unwrap_or(0);
        let disposition = if self.disposition_weights.is_empty() {
            0
        } else {
            let w = self.disposition_weights.clone();
            self.cases
                .get_mut(&case_no)
                .map(|c| pick_weighted(&mut c.rng, &w) as u16)
                .unwrap_or(0)
        };
        let Some(case) = self.cases.get(&case_no) else {
            return;
        };
        let (kind, room, locality) = (case.kind, case.lead, case.locality);
        let loc_unit = self.layout.locality_units[locality as usize];
        let team = if self.layout.all_teams.is_empty() {
            None
        } else {
            Some(self.layout.all_teams[(team_pick % self.layout.all_teams.len() as u64) as usize])
        };
        let zone_localities = |except: Option<u32>| -> Vec<u32> {
            let zone = self.layout.zone_of(loc_unit);
            self.layout.locs_by_zone[zone as usize]
                .iter()
                .copied()
                .filter(|l| Some(*l) != except)
                .collect()
        };
        let mut members = Vec::new();
        let involves_locality = kind == CaseKind::Clue && involves;
        let (lead, handler, responsible) = match kind {
            CaseKind::Clue => {
                let cross = involves || p.cross_inspection == CrossInspection::AllClues;
                let responsible = if involves {
                    loc_unit
                } else {
                    team.unwrap_or(loc_unit)
                };
                if cross {
                    members = zone_localities(if involves { Some(loc_unit) } else { None });
                    let handler = if members.is_empty() {
                        room
                    } else {
                        self.pick_member(&members)
                    };
                    (room, handler, responsible)
                } else {
                    let t = team.unwrap_or(room);
                    (t, t, t)
                }
            }
            CaseKind::Consultation => (room, room, room),
            CaseKind::Complaint | CaseKind::Suggestion => match team {
                Some(t) if to_department => (t, t, t),
                _ => (loc_unit, loc_unit, loc_unit),
            },
        };
        if let Some(c) = self.cases.get_mut(&case_no) {
            c.lead = lead;
            c.handler = handler;
            c.responsible = responsible;
        }
        self.emit(
            now,
            case_no,
            room,
            Action::Route {
                lead,
                handler,
                responsible,
                involves_locality,
                serious,
            },
        );
        self.end_stage(now, case_no);
        let counted = self.cases[&case_no].counted;
        if kind == CaseKind::Clue {
            let name = self
                .scenario
                .outcomes
                .disposition
                .keys()
                .nth(disposition as usize)
                .map(String::as_str);
            let index = name
                .and_then(|n| DISPOSITIONS.iter().position(|d| *d == n))
                .unwrap_or(0) as u16;
            self.emit(
                now,
                case_no,
                lead,
                Action::ChooseDisposition { disposition: index },
            );
            if DISPOSITIONS[index as usize] == "close_without_action" {
                self.kpi.outcome(counted, "closed_without_action");
                self.start_stage_without_work(now, case_no, StageName::Handling, lead);
                self.end_stage(now, case_no);
                self.close(now, case_no, CloseOutcome::ClosedWithoutAction);
                return;
            }
            if !members.is_empty() {
                self.kpi.cross_inspection(counted);
                self.emit(now, case_no, lead, Action::FormVerificationTeam { members });
            }
        }
        self.start_stage(now, case_no, StageName::Handling, handler);
    }

    fn pick_member(&self, members: &[u32]) -> u32 {
        members
            .iter()
            .copied()
            .min_by_key(|m| {
                let p = &self.pools[*m as usize];
                (
                    p.busy() as i64 + p.queue_len() as i64 - p.capacity() as i64,
                    *m,
                )
            })
            .unwrap_or(members[0])
    }

    /// Enters a stage whose work is not done by staff here (the time limit still runs).
    fn start_stage_without_work(&mut self, now: f64, case_no: u64, stage: StageName, acting: u32) {
        let limit = self.limits[stage.index()];
        let due = limit.map(|d| self.cal.add_working_days(now, d));
        let level = self.layout.units[acting as usize].level;
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        case.stage = stage;
        case.stage_entered = now;
        case.due = due;
        case.urged = false;
        case.generation += 1;
        let generation = case.generation;
        let counted = case.counted;
        if let Some(old) = case.acting_level.replace(level) {
            self.open_by_level[old as usize] -= 1;
        }
        self.open_by_level[level as usize] += 1;
        self.kpi.stage_entered(counted, stage);
        if let Some(due) = due {
            self.deadlines[stage.index()].push_back((due, case_no, generation));
        }
    }

    fn finish_handling(&mut self, now: f64, case_no: u64) {
        let outcomes = self.scenario.outcomes.clone();
        let u = self.draw(case_no);
        let Some(case) = self.cases.get(&case_no) else {
            return;
        };
        let (kind, lead, handler, responsible, counted) = (
            case.kind,
            case.lead,
            case.handler,
            case.responsible,
            case.counted,
        );
        if kind == CaseKind::Consultation {
            self.emit(now, case_no, handler, Action::Answer);
            self.end_stage(now, case_no);
            self.close(now, case_no, CloseOutcome::Answered);
            return;
        }
        let finding = if u < outcomes.substantiated {
            Finding::Substantiated
        } else if u < outcomes.substantiated + outcomes.partly_substantiated {
            Finding::PartlySubstantiated
        } else {
            Finding::NotSubstantiated
        };
        self.kpi.finding(counted, finding);
        self.emit(now, case_no, lead, Action::RecordFindings { finding });
        if finding == Finding::NotSubstantiated {
            self.end_stage(now, case_no);
            self.close(now, case_no, CloseOutcome::NotSubstantiated);
            return;
        }
        if kind == CaseKind::Clue {
            let people = match &self.disciplined {
                Some(d) => {
                    let d = d.clone();
                    self.cases
                        .get_mut(&case_no)
                        .map(|c| d.sample(&mut c.rng).round() as u32)
                        .unwrap_or(0)
                }
                None => 0,
            };
            if people > 0 {
                self.kpi.disciplined(counted, people);
                self.emit(now, case_no, lead, Action::RecordDiscipline { people });
            }
        }
        self.end_stage(now, case_no);
        self.order_rectification(now, case_no, responsible);
    }

    fn order_rectification(&mut self, now: f64, case_no: u64, responsible: u32) {
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        case.had_rectification = true;
        let lead = case.lead;
        self.emit(
            now,
            case_no,
            lead,
            Action::OrderRectification { unit: responsible },
        );
        let level = self.layout.units[responsible as usize].level;
        let has_plan_work = self.service_dist(StageName::Rectification, level).is_some();
        self.start_stage(now, case_no, StageName::Rectification, responsible);
        if !has_plan_work {
            self.finish_plan(now, case_no);
        }
    }

    fn finish_plan(&mut self, now: f64, case_no: u64) {
        let limit_days = self.limits[StageName::Rectification.index()].unwrap_or(30);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        let responsible = case.responsible;
        let d = self.rectification.sample(&mut case.rng);
        // The plan promises the time limit; a slow rectification then misses it and is urged.
        let deadline = self.cal.add_working_days(now, limit_days);
        self.emit(now, case_no, responsible, Action::SubmitPlan { deadline });
        let done = if d > 0.0 {
            self.cal.add_work(now, d)
        } else {
            now
        };
        self.queue.schedule(done, Ev::RectificationDone { case_no });
    }

    fn on_rectification_done(&mut self, now: f64, case_no: u64) {
        let Some(case) = self.cases.get(&case_no) else {
            return;
        };
        let responsible = case.responsible;
        self.emit(now, case_no, responsible, Action::CompleteRectification);
        self.end_stage(now, case_no);
        self.start_review(now, case_no);
    }

    fn start_review(&mut self, now: f64, case_no: u64) {
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        let officer = self
            .layout
            .village_units
            .get(case.village as usize)
            .copied()
            .unwrap_or(case.lead);
        let delay = self.until_follow_up.sample(&mut case.rng);
        let lead = case.lead;
        // A visit is always strictly after its scheduling (three minutes at least).
        let visit_at = if delay > 0.0 {
            self.cal.add_work(now, delay)
        } else {
            now
        }
        .max(now + 0.05);
        self.emit(
            now,
            case_no,
            lead,
            Action::ScheduleFollowUp { officer, visit_at },
        );
        // The review stage (and its time limit) starts now; the officer's work is requested
        // when the visit is due.
        self.start_stage_without_work(now, case_no, StageName::Review, officer);
        self.queue.schedule(visit_at, Ev::FollowUpDue { case_no });
    }

    fn on_follow_up_due(&mut self, now: f64, case_no: u64) {
        let Some(case) = self.cases.get(&case_no) else {
            return;
        };
        let officer = self
            .layout
            .village_units
            .get(case.village as usize)
            .copied()
            .unwrap_or(case.lead);
        self.request_work(now, case_no, StageName::Review, officer);
    }

    fn finish_review(&mut self, now: f64, case_no: u64) {
        let outcomes = self.scenario.outcomes.clone();
        let fails = self.draw(case_no) < outcomes.follow_up_fails;
        let satisfied = self.draw(case_no) < outcomes.satisfied;
        let Some(case) = self.cases.get(&case_no) else {
            return;
        };
        let officer = self
            .layout
            .village_units
            .get(case.village as usize)
            .copied()
            .unwrap_or(case.lead);
        let (reopened, counted, lead, responsible) =
            (case.reopened, case.counted, case.lead, case.responsible);
        // After the last allowed reopening the review passes, so the case can close.
        let can_reopen = reopened < outcomes.max_reopen;
        let fails = fails && can_reopen;
        let satisfied = satisfied || !can_reopen;
        self.emit(
            now,
            case_no,
            officer,
            Action::RecordFollowUp { passed: !fails },
        );
        self.kpi.follow_up(counted, !fails);
        if fails {
            self.reopen(now, case_no, lead);
            self.order_rectification(now, case_no, responsible);
            return;
        }
        self.emit(
            now,
            case_no,
            officer,
            Action::RecordSatisfaction { satisfied },
        );
        self.kpi.satisfaction(counted, satisfied);
        if !satisfied {
            self.reopen(now, case_no, lead);
            self.order_rectification(now, case_no, responsible);
            return;
        }
        self.end_stage(now, case_no);
        self.close(now, case_no, CloseOutcome::Rectified);
    }

    fn reopen(&mut self, now: f64, case_no: u64, lead: u32) {
        self.end_stage(now, case_no);
        if let Some(c) = self.cases.get_mut(&case_no) {
            c.reopened += 1;
            self.kpi.reopened(c.counted);
        }
        self.emit(now, case_no, lead, Action::Reopen);
    }

    /// Closes a case whose current stage the caller has already ended.
    fn close(&mut self, now: f64, case_no: u64, outcome: CloseOutcome) {
        let Some(case) = self.cases.get(&case_no) else {
            return;
        };
        let lead = case.lead;
        self.emit(now, case_no, lead, Action::Close { outcome });
        if let Some(case) = self.cases.remove(&case_no) {
            if let Some(level) = case.acting_level {
                self.open_by_level[level as usize] -= 1;
            }
            self.kpi
                .case_ended(case.counted, case.kind, true, now - case.arrived);
        }
    }

    fn on_deadline(&mut self, now: f64, case_no: u64, generation: u32) {
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        if case.generation != generation || case.urged {
            return;
        }
        case.urged = true;
        let (stage, lead, counted) = (case.stage, case.lead, case.counted);
        self.kpi.urged(counted, stage);
        self.emit(now, case_no, lead, Action::Urge { stage });
    }

    /// Cases still open (at the end: the backlog left over).
    pub fn open_cases(&self) -> usize {
        self.cases.len()
    }

    /// Zone and kind of an open case (for consistency checks).
    pub fn open_case_info(&self, case_no: u64) -> Option<(u32, CaseKind, StageName)> {
        self.cases.get(&case_no).map(|c| (c.zone, c.kind, c.stage))
    }
}

/// For every unit, the indices of the units of the same level in the same zone (itself
/// included): the staff a zone pools for cross-inspection and shared work.
fn peers_of(units: &[Unit]) -> Vec<Vec<u32>> {
    units
        .iter()
        .map(|u| {
            units
                .iter()
                .enumerate()
                .filter(|(_, o)| o.level == u.level && o.zone == u.zone)
                .map(|(i, _)| i as u32)
                .collect()
        })
        .collect()
}
