//! A generator of valid case histories for the sample district, driven by the domain itself:
//! at each step it picks a case (or reports a new one) and one of the commands the domain's
//! `next_commands` lists for it, issued by one of the listed issuers, and keeps the events
//! `decide` produces. Every history it makes is therefore a
//! history the real engine could have written. Shared by the tests and the benchmarks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use caseflow_domain::*;
use caseflow_projections::case_stream_id;
use caseflow_store::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// The sample district, loaded once.
pub fn district() -> &'static DistrictConfig {
    static D: OnceLock<DistrictConfig> = OnceLock::new();
    D.get_or_init(|| DistrictConfig::sample().expect("the sample district loads"))
}

/// The organisation of the sample district, shared.
pub fn org() -> Arc<Organisation> {
    static O: OnceLock<Arc<Organisation>> = OnceLock::new();
    O.get_or_init(|| Arc::new(district().org.clone())).clone()
}

/// Monday 2 March 2026, 09:00 in China.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()
}

/// One decided command: the case, the actor and the events to append.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The case.
    pub case_id: CaseId,
    /// The stream version before the events.
    pub expected_version: u64,
    /// Who issued it.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
    /// What the domain decided.
    pub events: Vec<CaseEvent>,
}

/// Makes histories. Deterministic: the same choices give the same history.
pub struct HistoryGen {
    cfg: &'static DistrictConfig,
    /// The current state of every case made so far.
    pub states: BTreeMap<CaseId, CaseState>,
    order: Vec<CaseId>,
    /// Open cases (order changes as cases finish; deterministic) and where each one is.
    open: Vec<CaseId>,
    open_at: std::collections::HashMap<CaseId, usize>,
    /// The generator's clock.
    pub now: DateTime<Utc>,
    next_case: u128,
    next_event: u128,
    /// Probability weight (0..=100) of starting a new case at a step.
    pub new_case_percent: u32,
    /// Divides the time that passes between steps (1 = about half a day on average).
    pub pace: u64,
    localities: Vec<UnitId>,
    departments: Vec<DepartmentId>,
}

impl HistoryGen {
    /// A generator starting at [`t0`]; `salt` separates the ids of independent generators.
    pub fn new(salt: u64) -> Self {
        let cfg = district();
        Self {
            cfg,
            states: BTreeMap::new(),
            order: Vec::new(),
            open: Vec::new(),
            open_at: std::collections::HashMap::new(),
            now: t0(),
            next_case: u128::from(salt) << 64,
            next_event: (u128::from(salt) << 64) | (1 << 40),
            new_case_percent: 10,
            pace: 1,
            localities: cfg
                .org
                .units_at(Level::Locality)
                .map(|u| u.id.clone())
                .collect(),
            departments: cfg.org.departments().map(|d| d.id.clone()).collect(),
        }
    }

    /// Number of cases made.
    pub fn case_count(&self) -> usize {
        self.order.len()
    }

    /// The ids of the open cases, in creation order.
    pub fn open_cases(&self) -> Vec<CaseId> {
        self.order
            .iter()
            .filter(|id| self.states[*id].is_open())
            .copied()
            .collect()
    }

    /// Number of open cases.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    fn track_open(&mut self, case_id: CaseId) {
        let is_open = self.states.get(&case_id).is_some_and(CaseState::is_open);
        match (is_open, self.open_at.get(&case_id).copied()) {
            (true, None) => {
                self.open_at.insert(case_id, self.open.len());
                self.open.push(case_id);
            }
            (false, Some(at)) => {
                self.open.swap_remove(at);
                self.open_at.remove(&case_id);
                if let Some(moved) = self.open.get(at) {
                    self.open_at.insert(*moved, at);
                }
            }
            _ => {}
        }
    }

    /// One step: advances the clock and decides one command. Returns `None` only when the
    /// chosen case had no acceptable command (the step is then a pure wait).
    pub fn step(&mut self, choice: u64) -> Option<Decided> {
        let mut rng = Mix(choice ^ 0x9e37_79b9_7f4a_7c15);
        // Time passes: minutes to a few days, so some deadlines are met and some missed.
        let minutes = match rng.below(10) {
            0..=5 => rng.below(240) + 5,
            6..=8 => rng.below(60 * 24) + 60,
            _ => rng.below(60 * 24 * 6) + 60,
        };
        self.now += Duration::seconds((minutes * 60 / self.pace.max(1)) as i64 + 1);
        let start_new = self.open.is_empty() || rng.below(100) < u64::from(self.new_case_percent);
        if start_new {
            return self.report(&mut rng);
        }
        let case_id = if rng.below(20) == 0 && !self.order.is_empty() {
            // Now and then, touch any case (closed ones may be reopened).
            self.order[rng.below(self.order.len() as u64) as usize]
        } else {
            self.open[rng.below(self.open.len() as u64) as usize]
        };
        self.advance(case_id, &mut rng)
    }

    /// Decides commands until `n` decisions were made.
    pub fn run(&mut self, n: usize, mut choice: impl FnMut(usize) -> u64) -> Vec<Decided> {
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while out.len() < n {
            if let Some(d) = self.step(choice(i)) {
                out.push(d);
            }
            i += 1;
        }
        out
    }

    fn report(&mut self, rng: &mut Mix) -> Option<Decided> {
        self.next_case += 1;
        let case_id = CaseId(Uuid::from_u128(self.next_case));
        let locality = self.localities[rng.below(self.localities.len() as u64) as usize].clone();
        let villages: Vec<UnitId> = self
            .cfg
            .org
            .villages_of(&locality)
            .map(|v| v.id.clone())
            .collect();
        let village = if villages.is_empty() || rng.below(8) == 0 {
            None
        } else {
            Some(villages[rng.below(villages.len() as u64) as usize].clone())
        };
        let channel = Channel::ALL[rng.below(Channel::ALL.len() as u64) as usize];
        let kind = CaseKind::ALL[rng.below(4) as usize];
        let reporter = if rng.below(3) == 0 {
            Reporter::Anonymous
        } else {
            Reporter::Named(ProtectedContact::new("王某", "13800000000"))
        };
        let summaries = [
            "花园小区路灯损坏，多次反映无人修",
            "村集体土地发包程序不公开",
            "低保评定优亲厚友",
            "学校周边占道经营影响通行",
            "小型工程项目验收走过场",
            "养老补贴发放延迟",
        ];
        let command = ReportCase {
            case_id,
            channel,
            kind,
            summary: summaries[rng.below(summaries.len() as u64) as usize].to_owned(),
            locality: locality.clone(),
            village: village.clone(),
            subject: "某村委会".to_owned(),
            focus_area: FocusArea::ALL[rng.below(8) as usize],
            reporter,
            reporter_handle: ReporterHandle(Uuid::from_u128(self.next_case | (1 << 100))),
            source_department: (channel == Channel::DepartmentTransfer)
                .then(|| self.departments[0].clone()),
        };
        let reporter_unit = village.unwrap_or(locality);
        let role = if self.cfg.org.level_of(&reporter_unit) == Some(Level::Village) {
            Role::InformationOfficer
        } else {
            Role::CaseOfficer
        };
        let actor = Actor::new(reporter_unit, role);
        let decided = self.try_decide(case_id, &[actor], &[command.into()]);
        if decided.is_some() {
            self.order.push(case_id);
        }
        decided
    }

    /// One command on an existing case, chosen among what the domain says may happen next
    /// (`next_commands`): usually a step that moves the case on (findings, satisfaction,
    /// lead unit, team and visitor drawn at random within their legal values), now and then
    /// any legal command, and at intake sometimes a merge into another open case.
    fn advance(&mut self, case_id: CaseId, rng: &mut Mix) -> Option<Decided> {
        let state = self.states[&case_id].clone();
        if state.stage() == Stage::Intake && rng.below(20) == 0 {
            if let Some(merge) = self.merge_into_another(&state, case_id) {
                return Some(merge);
            }
        }
        let style = if rng.below(6) == 0 {
            walk::Style::Explore
        } else {
            walk::Style::Branch
        };
        let next = NextContext::new(
            &self.cfg.org,
            &self.cfg.calendar,
            &self.cfg.policies,
            self.now,
        )
        .with_note("请按期办理");
        // The first pick is the command: usually the first listed (the one that moves the
        // case on, e.g. accepting rather than declining); then issuer and choice fields.
        let mut first_pick = true;
        let mut chooser = |n: usize| {
            let natural = std::mem::take(&mut first_pick) && rng.below(4) != 0;
            if natural {
                0
            } else {
                rng.below(n as u64) as usize
            }
        };
        let step = walk::next_move(&state, &next, style, &mut chooser)?;
        self.try_decide(case_id, &[step.actor], &[step.command])
    }

    /// Merges a case at intake into another open case, as whoever may.
    fn merge_into_another(&mut self, state: &CaseState, case_id: CaseId) -> Option<Decided> {
        let into = self.open.iter().copied().find(|c| *c != case_id)?;
        let next = NextContext::new(
            &self.cfg.org,
            &self.cfg.calendar,
            &self.cfg.policies,
            self.now,
        );
        let merge = next_commands_of(state, CommandKind::MergeCase, &next).pop()?;
        self.try_decide(
            case_id,
            &merge.issuers,
            &[MergeCase { case_id, into }.into()],
        )
    }

    /// Decides one scripted command at the generator's clock, as whoever may issue it
    /// (tests script exact histories with this). Panics if nobody may.
    pub fn exec(&mut self, command: impl Into<Command>) -> Decided {
        let command = command.into();
        let case_id = command.case_id();
        let actors = match (self.states.get(&case_id), &command) {
            (Some(state), _) => {
                let next = NextContext::new(
                    &self.cfg.org,
                    &self.cfg.calendar,
                    &self.cfg.policies,
                    self.now,
                );
                next_commands_of(state, command.kind(), &next)
                    .into_iter()
                    .flat_map(|n| n.issuers)
                    .collect()
            }
            (None, Command::ReportCase(r)) => {
                let unit = r.village.clone().unwrap_or_else(|| r.locality.clone());
                let role = if self.cfg.org.level_of(&unit) == Some(Level::Village) {
                    Role::InformationOfficer
                } else {
                    Role::CaseOfficer
                };
                vec![Actor::new(unit, role)]
            }
            (None, _) => Vec::new(),
        };
        let is_new = !self.states.contains_key(&case_id);
        let decided = self
            .try_decide(case_id, &actors, std::slice::from_ref(&command))
            .unwrap_or_else(|| panic!("nobody may issue {command:?}"));
        if is_new {
            self.order.push(case_id);
        }
        decided
    }

    fn try_decide(
        &mut self,
        case_id: CaseId,
        actors: &[Actor],
        commands: &[Command],
    ) -> Option<Decided> {
        let empty = CaseState::default();
        let state = self.states.get(&case_id).unwrap_or(&empty);
        for command in commands {
            for actor in actors {
                let ctx = Context::new(
                    actor,
                    self.now,
                    &self.cfg.org,
                    &self.cfg.calendar,
                    &self.cfg.policies,
                );
                if let Ok(events) = decide(state, command, &ctx) {
                    if events.is_empty() {
                        continue;
                    }
                    let expected_version = state.version();
                    let mut next = state.clone();
                    for e in &events {
                        evolve(&mut next, e);
                    }
                    self.states.insert(case_id, next);
                    self.track_open(case_id);
                    return Some(Decided {
                        case_id,
                        expected_version,
                        actor: actor.clone(),
                        at: self.now,
                        events,
                    });
                }
            }
        }
        None
    }

    /// The append request for a decision (event ids from the generator's counter).
    pub fn request(&mut self, d: &Decided) -> AppendRequest {
        let events = d
            .events
            .iter()
            .map(|e| {
                self.next_event += 1;
                NewEvent {
                    event_id: Uuid::from_u128(self.next_event),
                    event_type: e.event_type().to_owned(),
                    schema_version: e.schema_version(),
                    payload: e.to_json().into(),
                    metadata: Metadata {
                        actor: d.actor.to_string(),
                        ..Metadata::default()
                    },
                }
            })
            .collect();
        AppendRequest {
            stream_id: case_stream_id(d.case_id),
            expected: if d.expected_version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(d.expected_version)
            },
            events,
            recorded_at: d.at,
            command_id: None,
        }
    }

    /// Decides and appends `n` decisions to `store`.
    pub async fn append(
        &mut self,
        store: &dyn EventStore,
        n: usize,
        choice: impl FnMut(usize) -> u64,
    ) {
        for d in self.run(n, choice) {
            let request = self.request(&d);
            store
                .append(request)
                .await
                .expect("append a decided command");
        }
    }
}

/// A tiny deterministic mixer (splitmix64) turning one choice into many.
pub struct Mix(pub u64);

impl Mix {
    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A choice sequence from one seed.
pub fn seeded(seed: u64) -> impl FnMut(usize) -> u64 {
    let mut mix = Mix(seed);
    move |_| mix.next()
}

/// A memory store with at least `open` open cases (a busy district's backlog), and the
/// generator's clock at the end.
pub async fn store_with_open_cases(
    open: usize,
) -> (Arc<caseflow_store::MemoryStore>, DateTime<Utc>) {
    let store = Arc::new(caseflow_store::MemoryStore::new());
    let mut g = HistoryGen::new(0x70d0);
    g.new_case_percent = 35;
    g.pace = 20;
    let mut choice = seeded(0x70d0);
    let mut i = 0usize;
    while g.open_count() < open {
        let decided = g.run(10_000, |_| {
            i += 1;
            choice(i)
        });
        for d in decided {
            let request = g.request(&d);
            store
                .append(request)
                .await
                .expect("append to a memory store");
        }
    }
    (store, g.now)
}
