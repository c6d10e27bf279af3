//! Taking one workflow step on a simulated case through the domain, in process.
//!
//! The model keeps each open case's domain `CaseState`. When it has decided *what* happens
//! (the next command's kind and the values it draws: a finding, a satisfaction, a
//! disposition), it asks the domain which commands are legal now ([`next_commands_of`]), takes
//! the domain's draft of that command, lets the model set the drawn fields, picks an issuer
//! the domain lists (the unit doing the work where it is listed, else the natural one), and
//! applies the events `decide` returns with `evolve`. The engine later executes exactly that
//! command from exactly that actor, so both runs share one vocabulary and one set of rules.

use caseflow::District;
use caseflow::domain::{
    Actor, CaseEvent, CaseState, Command, CommandKind, CommandOptions, Context, NextCommand,
    NextContext, ReportCase, UnitId, command_options, decide, evolve, next_commands_of,
};
use chrono::{DateTime, Utc};

use crate::error::CaseworkError;

/// One step taken: who issued which command, and the events the domain recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    /// The issuer, one the domain listed.
    pub actor: Actor,
    /// The command.
    pub command: Command,
    /// The events `decide` produced (already applied to the case's state).
    pub events: Vec<CaseEvent>,
}

/// The district's rules, ready to drive cases.
#[derive(Clone, Copy)]
pub struct Casework<'a> {
    district: &'a District,
}

impl<'a> Casework<'a> {
    /// Casework under `district`'s organisation, calendar and policies.
    pub fn new(district: &'a District) -> Self {
        Casework { district }
    }

    fn context(&self, now: DateTime<Utc>, kind: CommandKind) -> NextContext<'a> {
        let d = self.district;
        NextContext::new(&d.org, &d.calendar, &d.policies, now).with_note(note_for(kind))
    }

    /// The commands of `kind` the domain allows on the case now.
    pub fn offers(
        &self,
        state: &CaseState,
        kind: CommandKind,
        now: DateTime<Utc>,
    ) -> Vec<NextCommand> {
        next_commands_of(state, kind, &self.context(now, kind))
    }

    /// The legal values of the constrained fields of `kind` now.
    pub fn options(
        &self,
        state: &CaseState,
        kind: CommandKind,
        now: DateTime<Utc>,
    ) -> Option<CommandOptions> {
        command_options(state, kind, &self.context(now, kind))
    }

    /// Issues a command of `kind`: the first offer `shape` turns into a command (usually the
    /// draft with the model's drawn fields set), by `prefer` when the domain lists that unit
    /// as an issuer, else by the domain's natural issuer.
    pub fn issue(
        &self,
        state: &mut CaseState,
        kind: CommandKind,
        now: DateTime<Utc>,
        prefer: Option<&UnitId>,
        shape: impl FnMut(&NextCommand) -> Option<Command>,
    ) -> Result<Issued, CaseworkError> {
        let offers = self.offers(state, kind, now);
        let (offer, command) = offers
            .iter()
            .zip(offers.iter().map(shape))
            .find_map(|(o, c)| c.map(|c| (o, c)))
            .ok_or(CaseworkError::NotOffered {
                kind,
                stage: state.stage(),
            })?;
        let actor = issuer(offer, prefer).ok_or(CaseworkError::NotOffered {
            kind,
            stage: state.stage(),
        })?;
        self.apply(state, actor, command, now)
    }

    /// Issues the domain's draft of `kind` unchanged.
    pub fn issue_draft(
        &self,
        state: &mut CaseState,
        kind: CommandKind,
        now: DateTime<Utc>,
        prefer: Option<&UnitId>,
    ) -> Result<Issued, CaseworkError> {
        self.issue(state, kind, now, prefer, |o| o.draft.clone())
    }

    /// Reports a new case (the one command that comes before any case state, so the caller
    /// names the reporter and the place).
    pub fn report(
        &self,
        state: &mut CaseState,
        actor: Actor,
        report: ReportCase,
        now: DateTime<Utc>,
    ) -> Result<Issued, CaseworkError> {
        self.apply(state, actor, report.into(), now)
    }

    fn apply(
        &self,
        state: &mut CaseState,
        actor: Actor,
        command: Command,
        now: DateTime<Utc>,
    ) -> Result<Issued, CaseworkError> {
        let d = self.district;
        let ctx = Context::new(&actor, now, &d.org, &d.calendar, &d.policies);
        let events = decide(state, &command, &ctx).map_err(|source| CaseworkError::Refused {
            kind: command.kind(),
            source,
        })?;
        for e in &events {
            evolve(state, e);
        }
        Ok(Issued {
            actor,
            command,
            events,
        })
    }
}

/// The listed issuer of `prefer`'s unit, else the first listed.
fn issuer(offer: &NextCommand, prefer: Option<&UnitId>) -> Option<Actor> {
    prefer
        .and_then(|u| offer.issuers.iter().find(|a| &a.unit == u))
        .or_else(|| offer.issuers.first())
        .cloned()
}

/// The free text a simulated command carries (the district's language first, English after).
pub fn note_for(kind: CommandKind) -> &'static str {
    use CommandKind as K;
    match kind {
        K::DeclineCase => "不属于受理范围 (outside the remit; simulated)",
        K::TransferCase => "转区信访局办理 (to the district petitions bureau; simulated)",
        K::RecordJointConsultation => "联席会商：同意立案核查 (joint consultation; simulated)",
        K::RecordFindings => "核查完毕 (verified; simulated)",
        K::RecordDiscipline => "村委会委员 (village committee member; simulated)",
        K::AnswerConsultation => "已答复并公开 (answered and published; simulated)",
        K::OrderRectification => "限期整改 (rectify within the limit; simulated)",
        K::SubmitRectificationPlan => "制定整改措施 (corrective measures; simulated)",
        K::ReportRectificationProgress => "整改推进中 (in progress; simulated)",
        K::CompleteRectification => "整改完成 (rectified; simulated)",
        K::UrgeOverdue => "逾期督办 (urged: the time limit passed; simulated)",
        K::RecordFollowUpVisit => "实地查看 (checked on site; simulated)",
        K::RecordSatisfaction => "回访群众 (the reporter was asked; simulated)",
        K::ReopenCase => "复查未通过，重新办理 (the review failed; simulated)",
        K::CloseCase => "办结 (closed; simulated)",
        _ => "模拟 (simulated)",
    }
}
