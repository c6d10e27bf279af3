//! Walking a case through its life by asking the domain what may happen next, for tests,
//! benchmarks, examples and demos: no hand-written script of the five stages, so a new or
//! changed rule is exercised everywhere as soon as `decide` and [`crate::next_commands`]
//! know it.
//!
//! Pure like the rest of the crate: the caller supplies the choices (a seeded generator, or
//! "always the first" for the happy path) through [`Chooser`].

use crate::command::Command;
use crate::ids::UnitId;
use crate::model::{
    Actor, CaseOutcome, Disposition, Finding, ResponsibleParty, Satisfaction, Severity, VisitResult,
};
use crate::next::{CommandOptions, NextCommand, NextContext, command_options, next_commands};
use crate::state::CaseState;

/// Picks one of `n >= 1` alternatives (an index below `n`).
pub trait Chooser {
    /// The index chosen, below `n`.
    fn pick(&mut self, n: usize) -> usize;
}

/// Always the first alternative: the happy path.
#[derive(Clone, Copy, Debug, Default)]
pub struct First;

impl Chooser for First {
    fn pick(&mut self, _n: usize) -> usize {
        0
    }
}

impl<F: FnMut(usize) -> usize> Chooser for F {
    fn pick(&mut self, n: usize) -> usize {
        self(n) % n.max(1)
    }
}

/// How a walk chooses among the legal commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Only commands that discharge a duty on a to-do list, each as the domain drafts it:
    /// the case moves forward (with [`First`], along the path the policies suggest).
    Forward,
    /// Only commands that discharge a duty, with their choice fields (findings,
    /// satisfaction, lead unit, team, visitor, ...) drawn from [`command_options`]: the case
    /// moves on along every branch of the workflow.
    Branch,
    /// Any legal command (but `MergeCase`, which needs a second case), with its choice
    /// fields (findings, satisfaction, lead unit, team, visitor, ...) drawn from
    /// [`command_options`]: every branch of the workflow.
    Explore,
}

/// One command of a walk and who issues it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// The issuer, one of the command's listed issuers.
    pub actor: Actor,
    /// The command, accepted by `decide` from `actor` at the context's time.
    pub command: Command,
}

/// The next move of a walk, or `None` when nothing moves the case on (it ended, or in
/// [`Style::Forward`] it waits only for time to pass).
pub fn next_move(
    state: &CaseState,
    ctx: &NextContext<'_>,
    style: Style,
    chooser: &mut impl Chooser,
) -> Option<Move> {
    let candidates: Vec<NextCommand> = next_commands(state, ctx)
        .into_iter()
        .filter(|c| c.draft.is_some())
        .filter(|c| style == Style::Explore || !c.discharges.is_empty())
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let chosen = &candidates[chooser.pick(candidates.len())];
    let actor = chosen.issuers[chooser.pick(chosen.issuers.len())].clone();
    let mut command = chosen.draft.clone()?;
    if style != Style::Forward {
        if let Some(options) = command_options(state, chosen.kind, ctx) {
            vary(&mut command, &options, chooser);
        }
    }
    Some(Move { actor, command })
}

fn pick<T: Clone>(items: &[T], chooser: &mut impl Chooser) -> Option<T> {
    (!items.is_empty()).then(|| items[chooser.pick(items.len())].clone())
}

fn pick_units(items: &[UnitId], chooser: &mut impl Chooser) -> Vec<UnitId> {
    let first = pick(items, chooser).into_iter();
    let second = pick(items, chooser).into_iter();
    first.chain(second).fold(Vec::new(), |mut acc, u| {
        if !acc.contains(&u) {
            acc.push(u);
        }
        acc
    })
}

/// Draws the command's choice fields from their legal values.
fn vary(command: &mut Command, options: &CommandOptions, chooser: &mut impl Chooser) {
    match (command, options) {
        (Command::ClassifyCase(c), CommandOptions::ClassifyCase { departments, .. }) => {
            c.severity = [Severity::Ordinary, Severity::Serious, Severity::Grave][chooser.pick(3)];
            c.involves_locality = chooser.pick(2) == 1;
            c.involved_department = if chooser.pick(3) == 0 {
                pick(departments, chooser)
            } else {
                None
            };
        }
        (
            Command::RouteCase(c),
            CommandOptions::RouteCase {
                leads, responsible, ..
            },
        ) => {
            if chooser.pick(2) == 1 {
                c.lead_unit = pick(leads, chooser).unwrap_or(c.lead_unit.clone());
                c.responsible = pick_parties(responsible, chooser).unwrap_or(c.responsible.clone());
            }
        }
        (
            Command::FormVerificationTeam(c),
            CommandOptions::FormVerificationTeam { leaders, members },
        ) => {
            c.leader = pick(leaders, chooser).unwrap_or(c.leader.clone());
            let chosen = pick_units(members, chooser);
            if !chosen.is_empty() {
                c.members = chosen;
            }
        }
        (Command::OrderRectification(c), CommandOptions::OrderRectification { responsible }) => {
            c.responsible = pick(responsible, chooser).unwrap_or(c.responsible.clone());
        }
        (
            Command::ScheduleFollowUpVisit(c),
            CommandOptions::ScheduleFollowUpVisit { visitors, .. },
        ) => {
            c.visitor = pick(visitors, chooser).unwrap_or(c.visitor.clone());
        }
        (command, _) => vary_free_choices(command, chooser),
    }
}

fn pick_parties(
    parties: &[ResponsibleParty],
    chooser: &mut impl Chooser,
) -> Option<Vec<ResponsibleParty>> {
    let first = pick(parties, chooser)?;
    let second = pick(parties, chooser).filter(|p| *p != first);
    Some(std::iter::once(first).chain(second).collect())
}

/// Fields that take every value of their type.
fn vary_free_choices(command: &mut Command, chooser: &mut impl Chooser) {
    match command {
        Command::ChooseDisposition(c) => {
            c.disposition = [
                Disposition::TalkOrLetterInquiry,
                Disposition::PreliminaryVerification,
                Disposition::HoldForLater,
                Disposition::CloseWithoutAction,
            ][chooser.pick(4)];
        }
        Command::RecordFindings(c) => {
            c.finding = [
                Finding::Substantiated,
                Finding::PartlySubstantiated,
                Finding::NotSubstantiated,
            ][chooser.pick(3)];
        }
        Command::RecordFollowUpVisit(c) => {
            c.result = [VisitResult::Held, VisitResult::Failed][chooser.pick(2)];
        }
        Command::RecordSatisfaction(c) => {
            c.satisfaction = [
                Satisfaction::Satisfied,
                Satisfaction::BasicallySatisfied,
                Satisfaction::Unsatisfied,
            ][chooser.pick(3)];
        }
        _ => {}
    }
}

/// Walks a case forward along the domain's drafts until nothing moves it on, applying each
/// accepted command's events; returns the moves made and the outcome it closed with, if it
/// closed. At most `max_moves` moves (a walk never loops, but a bound keeps a bug finite).
pub fn walk_forward(
    state: &mut CaseState,
    ctx: &NextContext<'_>,
    chooser: &mut impl Chooser,
    max_moves: usize,
) -> (Vec<Move>, Option<CaseOutcome>) {
    let mut moves = Vec::new();
    while moves.len() < max_moves {
        let Some(m) = next_move(state, ctx, Style::Forward, chooser) else {
            break;
        };
        let decision =
            crate::decide::Context::new(&m.actor, ctx.now, ctx.org, ctx.calendar, ctx.policies);
        let Ok(events) = crate::decide(state, &m.command, &decision) else {
            break;
        };
        for e in &events {
            crate::evolve(state, e);
        }
        moves.push(m);
    }
    let outcome = state.case().and_then(|c| c.outcome);
    (moves, outcome)
}
