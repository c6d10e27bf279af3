//! A seeded many-case workload for the engine's integration tests (audit, export, determinism):
//! cases of every kind and channel are reported each working day and each is walked along the
//! branches of the workflow by asking the domain what may happen next
//! (`caseflow_domain::walk::next_move`), some slowly enough to miss their time limits, with the
//! engine's deadline watcher running every night. No script of the five stages: a new rule is
//! exercised here as soon as the domain knows it. Shared by the tests, `benches/engine.rs` and
//! `examples/audit_replay.rs` (through `#[path]`). The district demo itself is a simulator
//! scenario, `examples/scenarios/demo.toml`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use caseflow::domain::walk::{Style, next_move};
use caseflow::domain::*;
use caseflow::{CommandEnvelope, Engine, ManualClock};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// What the workload did.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Cases reported.
    pub cases: u64,
    /// Commands executed or tried (the reports and the walk's moves; urgings not included).
    pub commands: u64,
    /// Urgings and escalations the deadline watcher wrote.
    pub urgings: u64,
    /// When the workload stopped.
    pub end: DateTime<Utc>,
}

/// SplitMix64: small, seeded, portable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn hours(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::minutes(lo * 60 + self.below(((hi - lo) * 60) as usize) as i64)
    }
}

/// Runs `days` days of the workload from `start` on `engine` (whose clock is `clock`).
pub async fn walked_workload(
    engine: &Engine,
    clock: &ManualClock,
    start: DateTime<Utc>,
    days: u32,
    seed: u64,
) -> Workload {
    let mut rng = Rng(seed);
    let mut out = Workload::default();
    // Cases by their next move's time, so the clock only moves forward.
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, u64, u128)>> = BinaryHeap::new();
    let mut seq = 0u64;
    for day in 0..i64::from(days) {
        let day_start = start + Duration::days(day);
        let day_end = day_start + Duration::days(1);
        let calendar = &engine.district().calendar;
        if calendar.is_working_day(calendar.local_date(day_start)) {
            let mut reports: Vec<DateTime<Utc>> = (0..2 + rng.below(5))
                .map(|_| day_start + rng.hours(0, 8))
                .collect();
            reports.sort();
            for at in reports {
                queue.push(Reverse((at, seq, 0)));
                seq += 1;
            }
        }
        while let Some(Reverse((at, _, id))) = queue.peek().copied() {
            if at >= day_end {
                break;
            }
            queue.pop();
            let (next, moved) = if id == 0 {
                let id = report_one(engine, clock, &mut rng, at).await;
                out.cases += 1;
                (Some((at + rng.hours(1, 30), id.as_uuid().as_u128())), true)
            } else {
                let (next, moved) = step(
                    engine,
                    clock,
                    &mut rng,
                    CaseId::new(Uuid::from_u128(id)),
                    at,
                )
                .await;
                (next.map(|t| (t, id)), moved)
            };
            out.commands += u64::from(moved);
            if let Some((t, id)) = next {
                queue.push(Reverse((t, seq, id)));
                seq += 1;
            }
        }
        clock.set(day_end);
        let report = engine.check_deadlines(day_end).await.expect("watcher");
        out.urgings += report.issued.len() as u64;
        out.end = day_end;
    }
    out
}

/// Reports one case of a drawn kind, channel and place, as the place's village officer (a
/// resident's report) or as a room of its zone (a case the commission found itself).
async fn report_one(
    engine: &Engine,
    clock: &ManualClock,
    rng: &mut Rng,
    at: DateTime<Utc>,
) -> CaseId {
    let org = &engine.district().org;
    let localities: Vec<&Unit> = org.units_at(Level::Locality).collect();
    let locality = localities[rng.below(localities.len())];
    let villages: Vec<&Unit> = org.villages_of(&locality.id).collect();
    let village = villages
        .get(rng.below(villages.len()))
        .map(|v| v.id.clone());
    let channel = Channel::ALL[rng.below(Channel::ALL.len())];
    let kind = CaseKind::ALL[rng.below(CaseKind::ALL.len())];
    let focus = FocusArea::ALL[rng.below(FocusArea::ALL.len())];
    let room = org
        .zone(&locality.zone)
        .and_then(|z| z.rooms.first().cloned())
        .expect("every zone has a room");
    let actor = match (&village, channel.group()) {
        (Some(v), ChannelGroup::Online | ChannelGroup::Offline) => {
            Actor::new(v.clone(), Role::InformationOfficer)
        }
        _ => Actor::new(room, Role::CaseOfficer),
    };
    let id = CaseId::new(Uuid::from_u128(
        u128::from(rng.next()) << 64 | u128::from(rng.next()),
    ));
    let command = ReportCase {
        case_id: id,
        channel,
        kind,
        summary: format!("工作量案件 (workload case) {id}"),
        locality: locality.id.clone(),
        village,
        subject: "村（社区）干部 (a cadre)".into(),
        focus_area: focus,
        reporter: if rng.below(2) == 0 {
            Reporter::Anonymous
        } else {
            Reporter::Named(ProtectedContact::new("居民", "13800000000"))
        },
        reporter_handle: ReporterHandle(Uuid::from_u128(u128::from(rng.next()))),
        source_department: (channel == Channel::DepartmentTransfer)
            .then(|| org.departments().next().map(|d| d.id.clone()))
            .flatten(),
    };
    execute(engine, clock, at, actor, command.into()).await;
    id
}

/// One move of a case along a drawn branch at `at`: the time of its next move (`None` once it
/// ended) and whether it moved. When nothing moves it on now (it waits for time to pass) it
/// tries again a day later.
async fn step(
    engine: &Engine,
    clock: &ManualClock,
    rng: &mut Rng,
    id: CaseId,
    at: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, bool) {
    let state = engine.case_state(id).await.expect("state");
    if !state.is_open() {
        return (None, false);
    }
    let d = engine.district();
    let ctx = NextContext::new(&d.org, &d.calendar, &d.policies, at);
    let mut chooser = |n: usize| rng.below(n);
    let Some(m) = next_move(&state, &ctx, Style::Branch, &mut chooser) else {
        return (Some(at + Duration::days(1)), false);
    };
    execute(engine, clock, at, m.actor, m.command).await;
    // Now and then a unit is slow, so limits are missed and the watcher urges.
    let slow = rng.below(10) == 0;
    let wait = if slow {
        rng.hours(72, 240)
    } else {
        rng.hours(2, 30)
    };
    (Some(at + wait), true)
}

async fn execute(
    engine: &Engine,
    clock: &ManualClock,
    at: DateTime<Utc>,
    actor: Actor,
    command: Command,
) {
    clock.set(at);
    let name = command.name();
    engine
        .execute(CommandEnvelope::new(engine.new_id(), actor, at, command))
        .await
        .unwrap_or_else(|e| panic!("{name} at {at}: {e}"));
}
