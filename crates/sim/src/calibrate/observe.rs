//! What a log shows, case by case: the reports, every branch taken, and every piece of work
//! as (stage, unit, requested, done) in the simulation's virtual hours.
//!
//! A piece of work ends with the event that records its decision (intake: accepted,
//! declined, transferred or merged; classification: classified; handling: findings or the
//! consultation's answer; rectification: the plan; review: the visit). It was requested
//! with the case's previous event (the watcher's urgings aside), except a visit, which is
//! requested at the time it was scheduled for: the same points at which the model asks a
//! unit for a person.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use caseflow::District;
use caseflow::domain::{
    CaseEvent, CaseId, CaseKind, Channel, Disposition, Finding, FocusArea, Level, Satisfaction,
    Severity, Stage, UnitId, VisitResult,
};

use crate::hours::WorkingTime;

/// One report.
#[derive(Debug, Clone)]
pub struct Report {
    /// Channel.
    pub channel: Channel,
    /// Kind.
    pub kind: CaseKind,
    /// Virtual hours since the start.
    pub hours: f64,
    /// Focus area.
    pub focus: FocusArea,
    /// Locality.
    pub locality: UnitId,
    /// The reporter gave a contact.
    pub named: bool,
}

/// One piece of work seen in the log.
#[derive(Debug, Clone)]
pub struct Work {
    /// Stage.
    pub stage: Stage,
    /// The unit that did the work: the one that recorded the decision, or, for the
    /// handling of a verification team, one of `candidates`.
    pub unit: UnitId,
    /// The members of a verification team other than the case's lead, one of which did
    /// the handling (the log does not say which); empty otherwise.
    pub candidates: Vec<UnitId>,
    /// When the work was asked for (virtual hours).
    pub requested: f64,
    /// When its decision was recorded (virtual hours).
    pub done: f64,
}

/// Counts of what happened at each branch.
#[derive(Debug, Clone, Default)]
pub struct Branches {
    /// Intake decisions.
    pub accepted: u64,
    /// Declined.
    pub declined: u64,
    /// Transferred.
    pub transferred: u64,
    /// Merged as duplicates.
    pub merged: u64,
    /// Dispositions chosen.
    pub dispositions: Vec<(Disposition, u64)>,
    /// Findings recorded (of complaints, suggestions and clues).
    pub findings: Vec<(Finding, u64)>,
    /// People disciplined per substantiated clue (0 where none was).
    pub disciplined: Vec<f64>,
    /// Rectification plans submitted, and those with a progress report.
    pub plans: u64,
    /// Progress reports.
    pub progress: u64,
    /// Visits, and those that found the rectification did not hold.
    pub visits: u64,
    /// Failed visits.
    pub visits_failed: u64,
    /// Reporters' answers.
    pub satisfaction: Vec<(Satisfaction, u64)>,
    /// Most reopenings of one case.
    pub max_reopen: u32,
    /// Clues classified, and those that involve their locality.
    pub clues_classified: u64,
    /// Clues whose locality is involved.
    pub clues_involving: u64,
    /// Cases classified, by severity.
    pub severity: Vec<(Severity, u64)>,
    /// Complaints and suggestions classified, and those about a department.
    pub matters_classified: u64,
    /// Complaints and suggestions about a department.
    pub matters_departmental: u64,
}

/// Everything fitted from the log, in the simulation's virtual hours.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Reports in the window.
    pub reports: Vec<Report>,
    /// Branch counts.
    pub branches: Branches,
    /// Pieces of work.
    pub work: Vec<Work>,
    /// Working hours from a plan to the completed rectification.
    pub rectification: Vec<f64>,
    /// Working hours from the completed rectification to the visit's scheduled time.
    pub until_follow_up: Vec<f64>,
    /// Working hours a clue held for later waited before its next disposition (or its
    /// review due time where no next one is in the log).
    pub hold_for_later: Vec<f64>,
}

fn bump<T: PartialEq>(counts: &mut Vec<(T, u64)>, value: T) {
    match counts.iter_mut().find(|(v, _)| *v == value) {
        Some((_, n)) => *n += 1,
        None => counts.push((value, 1)),
    }
}

/// Reads every case of `cases` (each its events in order; only cases reported in the window
/// are given).
pub fn observe(cases: &[Vec<CaseEvent>], hours: &WorkingTime) -> Observed {
    let mut o = Observed::default();
    for events in cases {
        observe_case(events, hours, &mut o);
    }
    o
}

fn observe_case(events: &[CaseEvent], hours: &WorkingTime, o: &mut Observed) {
    let h = |e: &CaseEvent| hours.hours_of(e.at());
    let mut previous: Option<f64> = None;
    let mut kind = None;
    let mut substantiated_clue = false;
    let mut disciplined = 0.0;
    let mut reopens = 0;
    let mut plan_at = None;
    let mut completed_at = None;
    let mut scheduled_for = None;
    let mut held_since: Option<(f64, f64)> = None;
    let b = &mut o.branches;
    // The handling of a verification team is done by one of its members other than the
    // case's lead and recorded by the lead; which member is for `service_times` to decide.
    let mut team: Vec<UnitId> = Vec::new();
    for e in events {
        let mut work = |stage: Stage, e: &CaseEvent, requested: Option<f64>| {
            if let Some(requested) = requested {
                // The model gives a team's work to a member other than the case's lead,
                // which records the findings.
                let lead = &e.actor().unit;
                let candidates = if stage == Stage::Handling {
                    team.iter().filter(|m| *m != lead).cloned().collect()
                } else {
                    Vec::new()
                };
                o.work.push(Work {
                    stage,
                    unit: e.actor().unit.clone(),
                    candidates,
                    requested,
                    done: h(e),
                });
            }
        };
        let now = h(e);
        match e {
            CaseEvent::CaseReported(r) => {
                kind = Some(r.kind);
                o.reports.push(Report {
                    channel: r.channel,
                    kind: r.kind,
                    hours: now,
                    focus: r.focus_area,
                    locality: r.locality.clone(),
                    named: !r.reporter.is_anonymous(),
                });
            }
            CaseEvent::CaseAccepted(_) => {
                b.accepted += 1;
                work(Stage::Intake, e, previous);
            }
            CaseEvent::CaseDeclined(_) => {
                b.declined += 1;
                work(Stage::Intake, e, previous);
            }
            CaseEvent::CaseTransferred(_) => {
                b.transferred += 1;
                work(Stage::Intake, e, previous);
            }
            CaseEvent::CaseMerged(_) => {
                b.merged += 1;
                work(Stage::Intake, e, previous);
            }
            CaseEvent::CaseClassified(c) => {
                work(Stage::Classification, e, previous);
                bump(&mut b.severity, c.severity);
                match kind {
                    Some(CaseKind::ProblemClue) => {
                        b.clues_classified += 1;
                        b.clues_involving += u64::from(c.involves_locality);
                    }
                    Some(CaseKind::Complaint | CaseKind::Suggestion) => {
                        b.matters_classified += 1;
                        b.matters_departmental += u64::from(c.involved_department.is_some());
                    }
                    _ => {}
                }
            }
            CaseEvent::DispositionChosen(d) => {
                if let Some((since, _)) = held_since.take() {
                    o.hold_for_later.push(hours.work_between(since, now));
                }
                bump(&mut b.dispositions, d.disposition);
                if d.disposition == Disposition::HoldForLater {
                    let due = d.due_at.map_or(now, |t| hours.hours_of(t));
                    held_since = Some((now, due));
                }
            }
            CaseEvent::FindingsRecorded(f) => {
                work(Stage::Handling, e, previous);
                bump(&mut b.findings, f.finding);
                substantiated_clue =
                    kind == Some(CaseKind::ProblemClue) && f.finding == Finding::Substantiated;
            }
            CaseEvent::ConsultationAnswered(_) => work(Stage::Handling, e, previous),
            CaseEvent::DisciplineRecorded(d) => disciplined += d.people.len() as f64,
            CaseEvent::RectificationPlanSubmitted(_) => {
                work(Stage::Rectification, e, previous);
                b.plans += 1;
                plan_at = Some(now);
            }
            CaseEvent::RectificationProgressReported(_) => b.progress += 1,
            CaseEvent::RectificationCompleted(_) => {
                if let Some(p) = plan_at.take() {
                    o.rectification.push(hours.work_between(p, now));
                }
                completed_at = Some(now);
            }
            CaseEvent::FollowUpVisitScheduled(v) => {
                let due = hours.hours_of(v.scheduled_for);
                if let Some(c) = completed_at.take() {
                    o.until_follow_up.push(hours.work_between(c, due));
                }
                scheduled_for = Some(due);
            }
            CaseEvent::FollowUpVisitRecorded(v) => {
                work(Stage::Review, e, scheduled_for.take());
                b.visits += 1;
                b.visits_failed += u64::from(v.result == VisitResult::Failed);
            }
            CaseEvent::VerificationTeamFormed(t) => {
                team = t.members.clone();
            }
            CaseEvent::SatisfactionRecorded(s) => bump(&mut b.satisfaction, s.satisfaction),
            CaseEvent::CaseReopened(_) => reopens += 1,
            _ => {}
        }
        if !matches!(e, CaseEvent::CaseUrged(_)) {
            previous = Some(now);
        }
    }
    if let Some((since, due)) = held_since {
        o.hold_for_later.push(hours.work_between(since, due));
    }
    if substantiated_clue {
        b.disciplined.push(disciplined);
    }
    b.max_reopen = b.max_reopen.max(reopens);
}

/// Service times (working hours) of the log's work, per stage and level, reconstructed
/// under the model's own discipline: each unit serves its requests first come, first
/// served with `staff(unit)` people, so a request starts when it is made or when the
/// earliest of the people before it is done, whichever is later; its service is the working
/// time from that start to its decision. A verification team's handling goes, as in the
/// model, to the member (other than the case's lead) with the fewest jobs in hand beyond its
/// staff at the time of the request, the first in `order` on a tie.
pub fn service_times(
    work: &[Work],
    district: &District,
    hours: &WorkingTime,
    staff: impl Fn(&UnitId) -> u32,
    order: impl Fn(&UnitId) -> u32,
) -> HashMap<(Stage, Level), Vec<f64>> {
    let mut jobs: Vec<&Work> = work.iter().collect();
    jobs.sort_by(|a, b| {
        a.requested
            .total_cmp(&b.requested)
            .then(a.done.total_cmp(&b.done))
    });
    // Per unit: when each person is next free, and the decision times of the jobs in hand
    // (min-heaps, so that many people or a long queue cost a logarithm per job).
    let mut free: HashMap<UnitId, BinaryHeap<Reverse<Decided>>> = HashMap::new();
    let mut in_hand: HashMap<UnitId, BinaryHeap<Reverse<Decided>>> = HashMap::new();
    let mut out: HashMap<(Stage, Level), Vec<f64>> = HashMap::new();
    for job in jobs {
        let now = job.requested;
        let unit = if job.candidates.is_empty() {
            job.unit.clone()
        } else {
            for u in &job.candidates {
                release_until(in_hand.get_mut(u), now);
            }
            let load = |u: &UnitId| {
                let held = in_hand.get(u).map_or(0, BinaryHeap::len);
                (held as i64 - i64::from(staff(u)), order(u))
            };
            job.candidates
                .iter()
                .min_by_key(|u| load(u))
                .cloned()
                .unwrap_or_else(|| job.unit.clone())
        };
        let Some(level) = district.org.level_of(&unit) else {
            continue;
        };
        // Instantaneous work takes nobody in the model.
        if job.done <= job.requested {
            out.entry((job.stage, level)).or_default().push(0.0);
            continue;
        }
        let people = free.entry(unit.clone()).or_insert_with(|| {
            let idle = Reverse(Decided(f64::NEG_INFINITY));
            std::iter::repeat_n(idle, staff(&unit).max(1) as usize).collect()
        });
        let earliest = people.pop().map_or(f64::NEG_INFINITY, |Reverse(d)| d.0);
        let start = now.max(earliest).min(job.done);
        people.push(Reverse(Decided(job.done)));
        let held = in_hand.entry(unit).or_default();
        release_until(Some(&mut *held), now);
        held.push(Reverse(Decided(job.done)));
        out.entry((job.stage, level))
            .or_default()
            .push(hours.work_between(start, job.done));
    }
    out
}

/// A decision time, ordered (never NaN: times come from timestamps).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decided(f64);

impl Eq for Decided {}

impl PartialOrd for Decided {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decided {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Drops the jobs decided by `now` from a unit's jobs in hand.
fn release_until(held: Option<&mut BinaryHeap<Reverse<Decided>>>, now: f64) {
    let Some(held) = held else {
        return;
    };
    while held.peek().is_some_and(|Reverse(d)| d.0 <= now) {
        held.pop();
    }
}

/// The cases of a log, each its events in log order, keeping those reported in
/// `[from, to)` and their events before `to`.
pub fn cases_in_window(
    events: Vec<CaseEvent>,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Vec<Vec<CaseEvent>> {
    let mut order: Vec<CaseId> = Vec::new();
    let mut by_case: HashMap<CaseId, Vec<CaseEvent>> = HashMap::new();
    for e in events {
        if e.at() >= to {
            continue;
        }
        let id = e.case_id();
        if let CaseEvent::CaseReported(r) = &e {
            if r.at < from {
                continue;
            }
            order.push(id);
            by_case.insert(id, Vec::new());
        }
        if let Some(list) = by_case.get_mut(&id) {
            list.push(e);
        }
    }
    order
        .into_iter()
        .filter_map(|id| by_case.remove(&id))
        .collect()
}
