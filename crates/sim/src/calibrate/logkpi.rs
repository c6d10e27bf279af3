//! The log's own KPIs, measured the way the simulator measures its runs (`crate::kpi`):
//! each case is replayed through the domain's `evolve`; it enters and leaves a stage when its
//! state does, a time limit closes when the state's deadline does and is late when that is
//! after its due time, and the backlog is the number of open cases at each sample time.

use caseflow::domain::{CaseEvent, CaseState, DeadlineKind, Stage, evolve};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::hours::WorkingTime;
use crate::scenario::WORKING_STAGES;
use crate::stats::{mean, percentile};

/// Time in one stage as the log shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogStage {
    /// The domain's stage name.
    pub stage: String,
    /// Times a case entered the stage.
    pub entered: u64,
    /// Times a case left it.
    pub completed: u64,
    /// Mean time in the stage (days).
    pub time_mean_days: f64,
    /// 90th percentile (days).
    pub time_p90_days: f64,
}

/// The KPIs of a log over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogKpis {
    /// Cases reported in the window.
    pub arrived: u64,
    /// Closed by its end.
    pub closed: u64,
    /// Still open at its end.
    pub open_at_end: u64,
    /// Per working stage.
    pub stages: Vec<LogStage>,
    /// Time limits closed in time among those closed.
    pub on_time_rate: f64,
    /// Open cases at hours 0, every, 2·every, … up to the end.
    pub backlog: Vec<(f64, u64)>,
}

type Open = Vec<(DeadlineKind, DateTime<Utc>, DateTime<Utc>)>;

fn open_deadlines(state: &CaseState) -> Open {
    state
        .deadlines()
        .map(|d| (d.kind, d.opened_at, d.due_at))
        .collect()
}

/// Measures `cases` (as from [`super::observe::cases_in_window`]) up to virtual hour `end`.
pub fn log_kpis(
    cases: &[Vec<CaseEvent>],
    hours: &WorkingTime,
    end: f64,
    sample_every: f64,
) -> LogKpis {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); WORKING_STAGES.len()];
    let mut entered = vec![0u64; WORKING_STAGES.len()];
    let (mut closed_limits, mut late) = (0u64, 0u64);
    let mut spans = Vec::with_capacity(cases.len());
    let mut k = LogKpis {
        arrived: cases.len() as u64,
        ..LogKpis::default()
    };
    for events in cases {
        let mut state = CaseState::new();
        let mut since = 0.0;
        let mut reported = None;
        let mut ended = None;
        for e in events {
            let now = hours.hours_of(e.at());
            reported.get_or_insert(now);
            let (stage, before) = (state.stage(), open_deadlines(&state));
            evolve(&mut state, e);
            let after = open_deadlines(&state);
            for (kind, opened, due) in &before {
                if !after.iter().any(|(k, o, _)| k == kind && o == opened) {
                    closed_limits += 1;
                    late += u64::from(e.at() > *due);
                }
            }
            if state.stage() != stage {
                if let Some(i) = WORKING_STAGES.iter().position(|s| *s == stage) {
                    times[i].push((now - since) / 24.0);
                }
                if let Some(i) = WORKING_STAGES.iter().position(|s| *s == state.stage()) {
                    entered[i] += 1;
                }
                since = now;
            }
            if !state.stage().is_open() && ended.is_none() {
                ended = Some(now);
                k.closed += u64::from(state.stage() == Stage::Closed);
            }
        }
        k.open_at_end += u64::from(ended.is_none());
        spans.push((reported.unwrap_or(0.0), ended.unwrap_or(f64::INFINITY)));
    }
    k.stages = WORKING_STAGES
        .iter()
        .enumerate()
        .map(|(i, s)| LogStage {
            stage: s.as_str().to_owned(),
            entered: entered[i],
            completed: times[i].len() as u64,
            time_mean_days: mean(&times[i]),
            time_p90_days: percentile(&times[i], 0.9),
        })
        .collect();
    k.on_time_rate = if closed_limits == 0 {
        0.0
    } else {
        (closed_limits - late) as f64 / closed_limits as f64
    };
    let mut t = 0.0;
    while t <= end {
        let open = spans.iter().filter(|(a, b)| *a <= t && *b > t).count() as u64;
        k.backlog.push((t, open));
        t += sample_every;
    }
    k
}
