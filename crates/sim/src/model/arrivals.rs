//! Arrivals: the channels' processes (Poisson by thinning against the weekday, month and hour
//! profiles, or campaign batches), the draws that make a new case (kind, focus area, place,
//! reporter), and its `ReportCase`.

use caseflow::District;
use caseflow::domain::uuid::{Builder, Uuid};
use caseflow::domain::{
    Actor, CaseId, CaseKind, CaseState, Channel, ChannelGroup, DepartmentId, Disposition,
    FocusArea, ProtectedContact, ReportCase, Reporter, ReporterHandle, Role, Satisfaction,
};
use rand::RngExt;

use super::{Ev, OpenCase, Simulation};
use crate::casework::Casework;
use crate::dist::pick_weighted;
use crate::error::SimError;
use crate::layout::Layout;
use crate::rng::{SimRng, StreamFamily, Streams};
use crate::scenario::{BatchSpec, Scenario, snake_name};

/// One channel's arrival process.
pub(super) struct ChannelProcess {
    channel: Channel,
    /// Each case of the channel draws from its own stream (common random numbers).
    family: StreamFamily,
    per_hour: f64,
    profiled: bool,
    kind_weights: [f64; 4],
    rng: SimRng,
    seq: u64,
    batch: Option<BatchSpec>,
}

/// The channels of a scenario, each with its own streams.
pub(super) fn channels(s: &Scenario, streams: &Streams) -> Vec<ChannelProcess> {
    s.arrivals
        .channel
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = snake_name(&c.name);
            ChannelProcess {
                channel: c.name,
                family: StreamFamily::new(streams, &format!("case/{name}")),
                per_hour: c
                    .per_hour
                    .unwrap_or_else(|| c.per_year.unwrap_or(0.0) / (365.0 * 24.0)),
                profiled: c.per_year.is_some(),
                kind_weights: s.kind_weights(i),
                rng: streams.stream(&format!("arrivals/{name}"), 0),
                seq: 0,
                batch: c.batch.clone(),
            }
        })
        .collect()
}

/// The arrival-rate multipliers, each mean-normalised.
pub(super) struct Profiles {
    weekday: [f64; 7],
    month: [f64; 12],
    hour: [f64; 24],
    max: f64,
}

fn normalised<const N: usize>(p: Option<&Vec<f64>>) -> [f64; N] {
    let mut out = [1.0; N];
    if let Some(v) = p {
        let m = v.iter().sum::<f64>() / N as f64;
        for (o, x) in out.iter_mut().zip(v) {
            *o = x / m;
        }
    }
    out
}

impl Profiles {
    pub(super) fn new(s: &Scenario) -> Profiles {
        let weekday = normalised::<7>(s.arrivals.weekday_profile.as_ref());
        let month = normalised::<12>(s.arrivals.month_profile.as_ref());
        let hour = normalised::<24>(s.arrivals.hour_profile.as_ref());
        let top = |xs: &[f64]| xs.iter().copied().fold(0.0, f64::max);
        let max = top(&weekday) * top(&month) * top(&hour);
        Profiles {
            weekday,
            month,
            hour,
            max,
        }
    }
}

/// What a new case and its later decisions are drawn from.
pub(super) struct Draws {
    locality_weights: Vec<f64>,
    focus: Vec<FocusArea>,
    focus_weights: Vec<f64>,
    pub(super) dispositions: Vec<Disposition>,
    pub(super) disposition_weights: Vec<f64>,
    pub(super) satisfactions: Vec<Satisfaction>,
    pub(super) satisfaction_weights: Vec<f64>,
    /// Departments with a stationed team (a department matter goes there), else all.
    pub(super) matter_departments: Vec<DepartmentId>,
    all_departments: Vec<DepartmentId>,
}

impl Draws {
    pub(super) fn new(s: &Scenario, district: &District, layout: &Layout) -> Draws {
        let locality_weights = layout
            .locality_units
            .iter()
            .map(|l| {
                let id = layout.unit(*l).id.as_str();
                s.arrivals.locality_weights.get(id).copied().unwrap_or(1.0)
            })
            .collect();
        let (focus, focus_weights) = s.focus_weights().into_iter().unzip();
        let (dispositions, disposition_weights) = s.disposition_weights().into_iter().unzip();
        let (satisfactions, satisfaction_weights) = s.satisfaction_weights().into_iter().unzip();
        let all_departments: Vec<DepartmentId> =
            district.org.departments().map(|d| d.id.clone()).collect();
        let teamed: Vec<DepartmentId> = district
            .org
            .departments()
            .filter(|d| d.team.is_some())
            .map(|d| d.id.clone())
            .collect();
        Draws {
            locality_weights,
            focus,
            focus_weights,
            dispositions,
            disposition_weights,
            satisfactions,
            satisfaction_weights,
            matter_departments: if teamed.is_empty() {
                all_departments.clone()
            } else {
                teamed
            },
            all_departments,
        }
    }
}

/// A uuid from 16 drawn bytes (version 4 bits set).
fn drawn_uuid(rng: &mut SimRng) -> Uuid {
    let (a, b): (u64, u64) = (rng.random(), rng.random());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    Builder::from_random_bytes(bytes).into_uuid()
}

/// A uniform index below `n` (0 when `n` is 0), always drawing one number so the stream
/// stays aligned whatever the district.
fn below(rng: &mut SimRng, n: usize) -> usize {
    let x: u64 = rng.random();
    if n == 0 { 0 } else { (x % n as u64) as usize }
}

/// The attributes of a new case.
struct NewCase {
    rng: SimRng,
    kind: CaseKind,
    focus: FocusArea,
    locality: usize,
    village: Option<u32>,
    duplicate: bool,
    intake_room: u32,
    named: bool,
    case_id: CaseId,
    handle: ReporterHandle,
    source_department: Option<DepartmentId>,
}

impl Simulation {
    pub(super) fn schedule_arrivals(&mut self) {
        for i in 0..self.channels.len() {
            if let Some(batch) = self.channels[i].batch.clone() {
                let horizon = self.scenario.simulation.horizon_days;
                let rng = &mut self.channels[i].rng;
                let lo = f64::from(batch.from_day) * 24.0;
                let hi = f64::from(batch.to_day.min(horizon)) * 24.0;
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
    }

    /// Next arrival after `t` of a Poisson channel, by thinning against the profiles.
    fn next_arrival_time(&mut self, channel: usize, mut t: f64) -> Option<f64> {
        let p = &self.profiles;
        let ch = &mut self.channels[channel];
        let max_rate = ch.per_hour * if ch.profiled { p.max } else { 1.0 };
        if max_rate <= 0.0 {
            return None;
        }
        loop {
            let u: f64 = ch.rng.random();
            t += -(1.0 - u).ln() / max_rate;
            if t >= self.arrivals_end {
                return None;
            }
            if !ch.profiled {
                return Some(t);
            }
            let day = (t / 24.0).floor() as i64;
            let hour = ((t - day as f64 * 24.0).floor() as usize).min(23);
            let rate = ch.per_hour
                * p.weekday[self.hours.weekday_index(day)]
                * p.month[self.hours.month_index(day)]
                * p.hour[hour];
            let accept: f64 = ch.rng.random();
            if accept * max_rate <= rate {
                return Some(t);
            }
        }
    }

    pub(super) fn on_arrival(&mut self, now: f64, channel: usize) -> Result<(), SimError> {
        if self.channels[channel].batch.is_none() {
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
        let new = self.draw_case(channel);
        let counted = now >= self.warmup_end;
        self.kpi.arrival(counted, new.kind, channel);
        let (actor, report) = self.report_of(channel, case_no, &new);
        let intake_room = new.intake_room;
        let mut case = OpenCase {
            state: CaseState::new(),
            rng: new.rng,
            kind: new.kind,
            locality: new.locality,
            intake_room,
            arrived: now,
            counted,
            duplicate: new.duplicate,
            stage_entered: now,
            waiting_on: None,
            reopens: 0,
            watch_stamp: 0,
        };
        let before = super::ledger::Snapshot::of(&case.state);
        let issued = Casework::new(&self.district)
            .report(&mut case.state, actor, report, self.hours.to_utc(now))
            .map_err(|source| self.model_error(now, case_no, source))?;
        self.cases.insert(case_no, case);
        self.after_step(now, case_no, before, issued, false);
        self.request_work(now, case_no, caseflow::domain::Stage::Intake, intake_room);
        Ok(())
    }

    fn draw_case(&mut self, channel: usize) -> NewCase {
        let ch = &mut self.channels[channel];
        let mut rng = ch.family.get(ch.seq);
        ch.seq += 1;
        let kind = CaseKind::ALL[pick_weighted(&mut rng, &ch.kind_weights)];
        let d = &self.draws;
        let focus = d.focus[pick_weighted(&mut rng, &d.focus_weights).min(d.focus.len() - 1)];
        let locality = pick_weighted(&mut rng, &d.locality_weights);
        let villages = self.layout.villages_of(locality);
        let village_pick = below(&mut rng, villages.len());
        let village = villages.get(village_pick).copied();
        let duplicate = rng.random::<f64>() < self.scenario.arrivals.duplicate_share;
        let loc_unit = self.layout.locality_units[locality];
        let rooms = self.layout.rooms_of_zone(self.layout.unit(loc_unit).zone);
        let intake_room = rooms[below(&mut rng, rooms.len()).min(rooms.len().saturating_sub(1))];
        let named = rng.random::<f64>() < self.scenario.arrivals.named_reporter_share;
        let case_id = CaseId::new(drawn_uuid(&mut rng));
        let handle = ReporterHandle(drawn_uuid(&mut rng));
        let dept_pick = below(&mut rng, d.all_departments.len());
        let source_department = (self.channels[channel].channel == Channel::DepartmentTransfer)
            .then(|| d.all_departments.get(dept_pick).cloned())
            .flatten();
        NewCase {
            rng,
            kind,
            focus,
            locality,
            village,
            duplicate,
            intake_room,
            named,
            case_id,
            handle,
            source_department,
        }
    }

    /// The report of a new case and who registers it: a resident's report through the
    /// village officer of the place, a report the commission found itself (or one with no
    /// village) through the intake room's case officer.
    fn report_of(&self, channel: usize, case_no: u64, new: &NewCase) -> (Actor, ReportCase) {
        let ch = self.channels[channel].channel;
        let unit = |i: u32| self.layout.unit(i).id.clone();
        let loc_unit = self.layout.locality_units[new.locality];
        let actor = match new.village {
            Some(v) if ch.group() != ChannelGroup::OwnFinding => {
                Actor::new(unit(v), Role::InformationOfficer)
            }
            _ => Actor::new(unit(new.intake_room), Role::CaseOfficer),
        };
        let reporter = if new.named {
            Reporter::Named(ProtectedContact::new("居民 (resident)", "138-0000-0000"))
        } else {
            Reporter::Anonymous
        };
        let report = ReportCase {
            case_id: new.case_id,
            channel: ch,
            kind: new.kind,
            summary: format!("{} #{case_no}", summary_of(new.focus)),
            locality: unit(loc_unit),
            village: new.village.map(unit),
            subject: "村（社区）干部 (a village or community cadre; simulated)".to_owned(),
            focus_area: new.focus,
            reporter,
            reporter_handle: new.handle,
            source_department: new.source_department.clone(),
        };
        (actor, report)
    }
}

/// A typical matter of each focus area (from the source report's examples).
fn summary_of(focus: FocusArea) -> &'static str {
    match focus {
        FocusArea::EducationAndMedicalCare => "卫生院收费不透明 (clinic fees not published)",
        FocusArea::ElderlyCareAndSocialSecurity => {
            "低保评定优亲厚友 (subsistence allowance favours relatives)"
        }
        FocusArea::EmploymentAndSchoolEnrolment => {
            "入学登记吃拿卡要 (school enrolment officials demand favours)"
        }
        FocusArea::LivingEnvironment => {
            "花园小区路灯损坏，多次反映无人修 (broken street lamp in the estate)"
        }
        FocusArea::RuralRevitalisation => {
            "高标准农田补贴虚报冒领 (false claims for farmland subsidies)"
        }
        FocusArea::VillageCollectiveResources => {
            "村集体鱼塘发包未公开招标 (village pond contracted without tender)"
        }
        FocusArea::SmallEngineeringProjects => {
            "村道硬化工程偷工减料 (village road works skimp on materials)"
        }
        FocusArea::LivelihoodGeneral => "小区垃圾清运不及时 (rubbish not collected on time)",
    }
}
