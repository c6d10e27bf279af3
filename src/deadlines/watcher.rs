//! The deadline watcher: when a time limit has passed (by the injected clock) it issues the
//! domain's `UrgeOverdue` — first the urging (督办) on behalf of the supervising unit, then,
//! if the deadline is still missed after the grace period, the escalation on behalf of a room
//! of the case's zone. Each urging of each missed deadline is issued once: its command id is
//! derived from the case, the deadline and its due time, so the store's command ledger
//! makes a repeat (another process, or the same one after a restart) write nothing.

use std::time::Duration as StdDuration;

use caseflow_domain::{
    Actor, Calendar, CaseId, CaseState, Command, CommandKind, DeadlineKind, Label, Lang,
    NextContext, Role, UnitId, UrgeOverdue, next_commands_of, urgeable,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tracing::{Instrument, info, info_span, warn};
use uuid::Uuid;

use caseflow_store::Leadership;

use crate::engine::{CommandEnvelope, Engine};
use crate::error::EngineError;
use crate::ids::derived_id;

/// The leadership role of the deadline watcher (one holder among the engines on a store).
pub const WATCHER_ROLE: &str = "deadline-watcher";

/// One urging the watcher issued (or found already issued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Urged {
    /// The case.
    pub case_id: CaseId,
    /// The missed deadline.
    pub deadline: DeadlineKind,
    /// The missed due time.
    pub due_at: DateTime<Utc>,
    /// False for the first urging, true for the escalation.
    pub escalated: bool,
    /// The unit that urged.
    pub by: UnitId,
    /// The command id (derived from case, deadline and due time).
    pub command_id: Uuid,
}

/// What one pass of the watcher did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchReport {
    /// Urgings written in this pass.
    pub issued: Vec<Urged>,
    /// Urgings that an earlier pass (maybe before a restart) had already written.
    pub already_issued: usize,
    /// Urgings the domain refused, with the reason (e.g. the case moved on meanwhile).
    pub refused: Vec<(CaseId, DeadlineKind, String)>,
}

/// The command id of the urging (or escalation) of one missed deadline.
pub fn urge_command_id(
    case_id: CaseId,
    kind: DeadlineKind,
    due_at: DateTime<Utc>,
    escalate: bool,
) -> Uuid {
    let kind = serde_json::to_string(&kind).unwrap_or_default();
    derived_id(
        "caseflow.deadline-watcher.v1",
        &[
            &case_id.to_string(),
            &kind,
            &due_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            if escalate { "escalate" } else { "urge" },
        ],
    )
}

/// The note an urging carries for the urged unit, in the district's language, with the due
/// time in district time. It is part of the stored event, so it is built from labels and a
/// fixed time format (never from `Debug` output, which may change with the code).
pub fn urging_note(
    kind: DeadlineKind,
    due_at: DateTime<Utc>,
    escalate: bool,
    calendar: &Calendar,
    lang: Lang,
) -> String {
    let limit = kind.label(lang);
    let due = calendar.to_local(due_at).format("%Y-%m-%d %H:%M %:z");
    match (lang, escalate) {
        (Lang::ZhCn, false) => format!("自动督办：{limit}已于 {due} 届满"),
        (Lang::ZhCn, true) => format!("升级督办：{limit}督办后仍未办结"),
        (Lang::En, false) => format!("urged by rule: the {limit} time limit passed at {due}"),
        (Lang::En, true) => {
            format!("escalated by rule: the {limit} time limit is still missed after urging")
        }
    }
}

impl Engine {
    /// One pass of the deadline watcher at `now`: urges every missed deadline not yet urged,
    /// escalates every urged deadline still missed after its grace period. Idempotent.
    pub async fn check_deadlines(&self, now: DateTime<Utc>) -> Result<WatchReport, EngineError> {
        self.refresh().await?;
        let due = {
            let read = self.inner.read.lock().await;
            let deadlines = read.deadlines.read()?;
            deadlines.due(now)
        };
        let mut report = WatchReport::default();
        for (case_id, deadline, escalate) in due {
            let (state, _) = self.load_state(case_id).await?;
            // The index may lag a concurrent command; the case's own state decides.
            if !urgeable(&state, now).contains(&(deadline.kind, escalate)) {
                continue;
            }
            let Some(actor) = self.urging_actor(&state, deadline.kind, escalate, now) else {
                report.refused.push((
                    case_id,
                    deadline.kind,
                    "nobody may urge this deadline now".to_owned(),
                ));
                continue;
            };
            let by = actor.unit.clone();
            let command_id = urge_command_id(case_id, deadline.kind, deadline.due_at, escalate);
            let district = &self.inner.district;
            let note = urging_note(
                deadline.kind,
                deadline.due_at,
                escalate,
                &district.calendar,
                district.org.info().language,
            );
            let envelope = CommandEnvelope::new(
                command_id,
                actor,
                now,
                UrgeOverdue {
                    case_id,
                    deadline: deadline.kind,
                    note,
                },
            );
            match self.execute(envelope).await {
                Ok(outcome) if outcome.replayed => report.already_issued += 1,
                Ok(_) => {
                    info!(%case_id, deadline = ?deadline.kind, escalate, "deadline urged");
                    report.issued.push(Urged {
                        case_id,
                        deadline: deadline.kind,
                        due_at: deadline.due_at,
                        escalated: escalate,
                        by,
                        command_id,
                    });
                }
                Err(EngineError::Rejected { source, .. }) => {
                    warn!(%case_id, deadline = ?deadline.kind, %source, "urging refused");
                    report
                        .refused
                        .push((case_id, deadline.kind, source.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// On whose behalf the watcher urges a deadline, as the domain's rule for `UrgeOverdue`
    /// lists the issuers: for a first urging the natural issuer (the lead unit, else a room of
    /// the zone); for an escalation a room of the zone other than the lead unit where there is
    /// one, so it goes upwards. The actor is that unit with the `Watcher` role: the record
    /// says the rule urged, not a person.
    fn urging_actor(
        &self,
        state: &CaseState,
        kind: DeadlineKind,
        escalate: bool,
        now: DateTime<Utc>,
    ) -> Option<Actor> {
        let district = &self.inner.district;
        let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, now);
        let urge = next_commands_of(state, CommandKind::UrgeOverdue, &ctx)
            .into_iter()
            .find(|n| matches!(&n.draft, Some(Command::UrgeOverdue(c)) if c.deadline == kind))?;
        let lead = state.case().and_then(|c| c.lead_unit());
        let leaders = urge.issuers.iter().filter(|a| a.role == Role::Leader);
        let upwards = leaders.clone().find(|a| escalate && Some(&a.unit) != lead);
        let unit = upwards
            .or_else(|| leaders.clone().next())
            .or_else(|| urge.issuers.first())?
            .unit
            .clone();
        Some(Actor::new(unit, Role::Watcher))
    }

    /// Runs the watcher every `interval` (of real time) until `stop` completes, on one
    /// engine at a time among every engine on the store (see [`Engine::watch_if_leader`]).
    /// Time limits are judged by the injected clock. A retryable failure (the store is
    /// away) is logged and the pass is tried again at the next interval; any other error
    /// ends the watcher.
    pub async fn run_deadline_watcher(
        &self,
        interval: StdDuration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        tokio::pin!(stop);
        let mut lease = None;
        loop {
            match self.watch_if_leader(&mut lease).await {
                Ok(_) => {}
                Err(err) if err.is_retryable() => {
                    warn!(%err, "deadline watcher pass failed; retrying at the next interval");
                    lease = None;
                }
                Err(err) => return Err(err),
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One watcher pass, if this engine is the watcher: it keeps (or takes) the store's
    /// [`WATCHER_ROLE`] leadership in `lease`, so among several engine processes on one
    /// shared store exactly one urges at a time, and another takes over when it dies.
    /// `Ok(None)`: another engine is the watcher now. (Two watchers for a moment would still
    /// be harmless: each urging's command id is derived, so the ledger replays a repeat.)
    pub async fn watch_if_leader(
        &self,
        lease: &mut Option<Leadership>,
    ) -> Result<Option<WatchReport>, EngineError> {
        if lease.as_ref().is_some_and(|held| !held.is_held()) {
            info!("deadline watcher lost its leadership");
            *lease = None;
        }
        if lease.is_none() {
            *lease = self.inner.store.try_lead(WATCHER_ROLE).await?;
            if lease.is_some() {
                info!("this engine is now the deadline watcher");
            }
        }
        if lease.is_none() {
            return Ok(None);
        }
        let now = self.now();
        let report = self
            .check_deadlines(now)
            .instrument(info_span!("deadline_watcher", %now))
            .await?;
        Ok(Some(report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn urging_notes_name_the_limit_and_the_district_time_in_the_districts_language() {
        let calendar = crate::District::sample().expect("district").calendar;
        let due = Utc
            .with_ymd_and_hms(2026, 3, 5, 9, 30, 0)
            .single()
            .expect("time");
        let kind = DeadlineKind::IntakeDecision;
        assert_eq!(
            urging_note(kind, due, false, &calendar, Lang::ZhCn),
            "自动督办：受理时限已于 2026-03-05 17:30 +08:00 届满"
        );
        assert_eq!(
            urging_note(kind, due, true, &calendar, Lang::ZhCn),
            "升级督办：受理时限督办后仍未办结"
        );
        assert_eq!(
            urging_note(kind, due, false, &calendar, Lang::En),
            "urged by rule: the intake decision time limit passed at 2026-03-05 17:30 +08:00"
        );
        for kind in DeadlineKind::ALL {
            for escalate in [false, true] {
                let note = urging_note(kind, due, escalate, &calendar, Lang::En);
                assert!(!note.contains(&format!("{kind:?}")), "{note}");
            }
        }
    }
}
