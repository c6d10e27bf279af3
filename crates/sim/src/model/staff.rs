//! Work requests: a stage's work waits (FIFO) for a free person of the unit doing it, takes a
//! drawn number of working hours inside working time, and then the stage's decision follows.
//! A stage without a service-time distribution for the unit's level is instantaneous and
//! takes nobody. Zone pooling lets a busy unit's work go to a free peer of its zone.

use caseflow::domain::{Level, Stage};

use super::{Ev, JobTag, Simulation};
use crate::des::{Job, Seized};
use crate::dist::Dist;
use crate::error::SimError;
use crate::kpi::stage_index;
use crate::layout::LEVELS;

impl Simulation {
    /// The service-time distribution of a stage's work at a level (`None`: instantaneous).
    pub(super) fn service_dist(&self, stage: Stage, level: Level) -> Option<&Dist> {
        let s = stage_index(stage)?;
        let l = LEVELS.iter().position(|x| *x == level)?;
        self.timing.service[s][l]
            .as_ref()
            .filter(|d| !d.is_instant())
    }

    /// Asks `unit` (a pool index) for the stage's work on the case.
    pub(super) fn request_work(&mut self, now: f64, case_no: u64, stage: Stage, unit: u32) {
        let level = self.layout.level(unit);
        self.wait_on(case_no, level);
        let Some(dist) = self.service_dist(stage, level).cloned() else {
            // Instantaneous: no staff, no wait.
            self.queue.schedule(
                now,
                Ev::WorkDone {
                    unit: u32::MAX,
                    case_no,
                    stage,
                    requested: now,
                    started: now,
                },
            );
            return;
        };
        let unit = self.pick_unit(unit);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return;
        };
        let work = dist.sample(&mut case.rng);
        self.kpi.requested(case.counted, unit);
        let job = Job {
            payload: JobTag { case_no, stage },
            work,
            requested_at: now,
        };
        if let Seized::Started(job) = self.pools[unit as usize].request(now, job) {
            self.start_job(now, unit, job);
        }
    }

    /// Picks the unit that does the work (zone pooling may pick a peer with free staff).
    fn pick_unit(&self, unit: u32) -> u32 {
        let level = self.layout.level(unit);
        if !self.scenario.policies.zone_pooling.contains(&level) {
            return unit;
        }
        let free = |u: u32| {
            let p = &self.pools[u as usize];
            p.busy() < p.capacity()
        };
        if free(unit) {
            return unit;
        }
        let peers = self.layout.peers(unit);
        if let Some(p) = peers.iter().copied().find(|p| free(*p)) {
            return p;
        }
        peers
            .iter()
            .copied()
            .min_by_key(|p| (self.pools[*p as usize].queue_len(), *p != unit, *p))
            .unwrap_or(unit)
    }

    fn start_job(&mut self, now: f64, unit: u32, job: Job<JobTag>) {
        let start = self.hours.next_open(now);
        let done = self.hours.add_work(start, job.work);
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

    pub(super) fn on_work_done(
        &mut self,
        now: f64,
        unit: u32,
        case_no: u64,
        stage: Stage,
        requested: f64,
        started: f64,
    ) -> Result<(), SimError> {
        if unit != u32::MAX {
            if let Some(next) = self.pools[unit as usize].release(now) {
                self.start_job(now, unit, next);
            }
            let counted = self.cases.get(&case_no).is_some_and(|c| c.counted);
            self.kpi
                .work_done(counted, unit, stage, started - requested);
        }
        if !self.cases.contains_key(&case_no) {
            return Ok(());
        }
        match stage {
            Stage::Intake => self.finish_intake(now, case_no),
            Stage::Classification => self.finish_classification(now, case_no),
            Stage::Handling => self.finish_handling(now, case_no),
            Stage::Rectification => self.finish_plan(now, case_no),
            Stage::Review => self.finish_review(now, case_no),
            _ => Ok(()),
        }
    }
}
