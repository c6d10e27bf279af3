//! What the end of each stage's work decides, stage by stage. The model draws the people's
//! decisions (accept or not, severity, locality or department involvement, disposition,
//! finding, discipline, visit result, satisfaction); the commands, their issuers and the
//! routing are the domain's drafts (see [`crate::casework`]).

use caseflow::domain::{
    CaseKind, CaseState, Category, ClassifyCase, Command, CommandKind as K, CommandOptions,
    DepartmentId, DisciplineMeasure, DisciplinedPerson, Disposition, Finding, Level, MergeCase,
    RecordDiscipline, Satisfaction, Severity, Stage, VisitResult,
};

use super::{Ev, Simulation};
use crate::casework::Casework;
use crate::dist::pick_weighted;
use crate::error::SimError;
use crate::kpi::{CaseCounts, Outcome};

/// A visit is always strictly after its scheduling (three minutes at least).
const MIN_LEAD_HOURS: f64 = 0.05;

impl Simulation {
    /// Counts something of a counted case.
    fn count(&mut self, counted: bool, f: impl FnOnce(&mut CaseCounts)) {
        if counted {
            f(&mut self.kpi.cases);
        }
    }

    fn counted(&self, case_no: u64) -> bool {
        self.case(case_no).is_some_and(|c| c.counted)
    }

    fn state(&self, case_no: u64) -> Option<&CaseState> {
        self.case(case_no).map(|c| &c.state)
    }

    /// The pool index of the case's lead unit (once routed).
    fn lead(&self, case_no: u64) -> Option<u32> {
        let lead = self.state(case_no)?.case()?.lead_unit()?;
        self.layout.index_of(lead)
    }

    pub(super) fn finish_intake(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let Some(case) = self.case(case_no) else {
            return Ok(());
        };
        let (room, locality, duplicate, counted) = (
            case.intake_room,
            case.locality,
            case.duplicate,
            case.counted,
        );
        if duplicate {
            if let Some(into) = self.merge_target(case_no, locality) {
                let case_id = self.state(case_no).and_then(|s| s.case()).map(|c| c.id);
                self.take(now, case_no, K::MergeCase, Some(room), |_| {
                    case_id.map(|case_id| MergeCase { case_id, into }.into())
                })?;
                self.kpi.outcome(counted, Outcome::Merged);
                return Ok(());
            }
        }
        let outcomes = &self.scenario.outcomes;
        let (p_accept, p_transfer) = (outcomes.accept, outcomes.transfer_share_of_rejected);
        let accept = self.draw(case_no) < p_accept;
        let transfer = self.draw(case_no) < p_transfer;
        if !accept {
            let (kind, outcome) = if transfer {
                (K::TransferCase, Outcome::Transferred)
            } else {
                (K::DeclineCase, Outcome::Declined)
            };
            self.take_draft(now, case_no, kind, Some(room))?;
            self.kpi.outcome(counted, outcome);
            return Ok(());
        }
        self.take_draft(now, case_no, K::AcceptCase, Some(room))?;
        self.kpi.outcome(counted, Outcome::Accepted);
        let recent = &mut self.recent_by_locality[locality];
        recent.push_back(case_no);
        if recent.len() > 16 {
            recent.pop_front();
        }
        self.request_work(now, case_no, Stage::Classification, room);
        Ok(())
    }

    /// The most recent open case of the same locality a duplicate can be merged into.
    fn merge_target(&self, case_no: u64, locality: usize) -> Option<caseflow::domain::CaseId> {
        self.recent_by_locality[locality]
            .iter()
            .rev()
            .filter(|n| **n != case_no)
            .filter_map(|n| self.state(*n))
            .find(|s| s.is_open())
            .and_then(|s| s.case())
            .map(|c| c.id)
    }

    pub(super) fn finish_classification(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let p = &self.scenario.policies;
        let (grave, serious, involves_p, dept_p) = (
            p.grave_share,
            p.serious_share,
            p.clue_involves_locality,
            p.department_share,
        );
        let severity_u = self.draw(case_no);
        let involves_u = self.draw(case_no);
        let department_u = self.draw(case_no);
        let pick_u = self.draw(case_no);
        let Some(case) = self.case(case_no) else {
            return Ok(());
        };
        let (kind, room, counted) = (case.kind, case.intake_room, case.counted);
        let severity = if severity_u < grave {
            Severity::Grave
        } else if severity_u < grave + serious {
            Severity::Serious
        } else {
            Severity::Ordinary
        };
        let involves = kind == CaseKind::ProblemClue && involves_u < involves_p;
        let department = match kind {
            CaseKind::ProblemClue if !involves => self.department(pick_u),
            CaseKind::Complaint | CaseKind::Suggestion if department_u < dept_p => {
                self.department(pick_u)
            }
            _ => None,
        };
        self.take(now, case_no, K::ClassifyCase, Some(room), |o| {
            match &o.draft {
                Some(Command::ClassifyCase(c)) => Some(
                    ClassifyCase {
                        severity,
                        involves_locality: involves,
                        involved_department: department.clone(),
                        ..c.clone()
                    }
                    .into(),
                ),
                _ => None,
            }
        })?;
        if self
            .state(case_no)
            .and_then(|s| s.case())
            .is_some_and(|c| c.awaits_joint_consultation())
        {
            self.take_draft(now, case_no, K::RecordJointConsultation, Some(room))?;
            self.count(counted, |c| c.joint_consultations += 1);
        }
        self.take_draft(now, case_no, K::RouteCase, Some(room))?;
        if kind == CaseKind::ProblemClue {
            self.choose_disposition(now, case_no)
        } else {
            self.start_handling_work(now, case_no)
        }
    }

    /// A department for a department matter, uniformly among those with a stationed team.
    fn department(&self, u: f64) -> Option<DepartmentId> {
        let all = &self.draws.matter_departments;
        let i = ((u * all.len() as f64) as usize).min(all.len().saturating_sub(1));
        all.get(i).cloned()
    }

    /// A clue's disposition (also when a held clue comes up again).
    pub(super) fn choose_disposition(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let weights = self.draws.disposition_weights.clone();
        let Some(case) = self.cases.get_mut(&case_no) else {
            return Ok(());
        };
        let disposition = self.draws.dispositions[pick_weighted(&mut case.rng, &weights)];
        let hold_hours = self.timing.hold_for_later.sample(&mut case.rng);
        let counted = case.counted;
        let lead = self.lead(case_no);
        self.take(now, case_no, K::ChooseDisposition, lead, |o| {
            let mut c = o.draft.clone()?;
            if let Command::ChooseDisposition(d) = &mut c {
                d.disposition = disposition;
            }
            Some(c)
        })?;
        match disposition {
            Disposition::CloseWithoutAction => {
                self.count(counted, |c| c.closed_without_action += 1);
                self.take_draft(now, case_no, K::CloseCase, lead)
            }
            Disposition::HoldForLater => {
                self.count(counted, |c| c.held_for_later += 1);
                let again = self
                    .hours
                    .add_work(now, hold_hours)
                    .max(now + MIN_LEAD_HOURS);
                self.queue.schedule(again, Ev::HoldOver { case_no });
                if let Some(l) = lead {
                    self.wait_on(case_no, self.layout.level(l));
                }
                Ok(())
            }
            _ => {
                self.form_team_if_due(now, case_no)?;
                self.start_handling_work(now, case_no)
            }
        }
    }

    /// Forms the verification team when the domain lists it as a duty (cross-inspection):
    /// the localities of the case's zone the domain admits as members.
    fn form_team_if_due(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let at = self.hours.to_utc(now);
        let cw = Casework::new(&self.district);
        let Some(case) = self.case(case_no) else {
            return Ok(());
        };
        let due = cw
            .offers(&case.state, K::FormVerificationTeam, at)
            .iter()
            .any(|o| !o.discharges.is_empty());
        if !due {
            return Ok(());
        }
        let zone = case.state.case().map(|c| c.zone.clone());
        let org = &self.district.org;
        let members: Vec<_> = match cw.options(&case.state, K::FormVerificationTeam, at) {
            Some(CommandOptions::FormVerificationTeam { members, .. }) => members
                .into_iter()
                .filter(|m| {
                    org.unit(m).is_some_and(|u| {
                        u.level == Level::Locality && Some(&u.zone) == zone.as_ref()
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        let counted = case.counted;
        let lead = self.lead(case_no);
        self.take(now, case_no, K::FormVerificationTeam, lead, |o| {
            let mut c = o.draft.clone()?;
            if let (Command::FormVerificationTeam(t), false) = (&mut c, members.is_empty()) {
                t.members = members.clone();
            }
            Some(c)
        })?;
        self.count(counted, |c| c.cross_inspections += 1);
        Ok(())
    }

    /// Handling work: by the verification team's member with the most free staff, else by
    /// the lead unit.
    fn start_handling_work(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let Some(lead) = self.lead(case_no) else {
            return Ok(());
        };
        let members: Vec<u32> = self
            .state(case_no)
            .and_then(|s| s.case())
            .and_then(|c| c.verification_team.as_ref())
            .map(|t| {
                t.members
                    .iter()
                    .filter_map(|m| self.layout.index_of(m))
                    .filter(|m| *m != lead)
                    .collect()
            })
            .unwrap_or_default();
        let worker = members
            .iter()
            .copied()
            .min_by_key(|m| {
                let p = &self.pools[*m as usize];
                (
                    i64::from(p.busy()) + p.queue_len() as i64 - i64::from(p.capacity()),
                    *m,
                )
            })
            .unwrap_or(lead);
        self.request_work(now, case_no, Stage::Handling, worker);
        Ok(())
    }

    pub(super) fn finish_handling(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let (p_full, p_partly) = (
            self.scenario.outcomes.substantiated,
            self.scenario.outcomes.partly_substantiated,
        );
        let u = self.draw(case_no);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return Ok(());
        };
        let people = match &self.timing.disciplined {
            Some(d) => d.sample(&mut case.rng).round() as u32,
            None => 0,
        };
        let (kind, counted) = (case.kind, case.counted);
        let category = case.state.case().and_then(|c| c.category());
        let lead = self.lead(case_no);
        if category == Some(Category::Consultation) {
            self.take_draft(now, case_no, K::AnswerConsultation, lead)?;
            return self.take_draft(now, case_no, K::CloseCase, lead);
        }
        let finding = if u < p_full {
            Finding::Substantiated
        } else if u < p_full + p_partly {
            Finding::PartlySubstantiated
        } else {
            Finding::NotSubstantiated
        };
        self.take(now, case_no, K::RecordFindings, lead, |o| {
            let mut c = o.draft.clone()?;
            if let Command::RecordFindings(f) = &mut c {
                f.finding = finding;
            }
            Some(c)
        })?;
        self.count(counted, |c| match finding {
            Finding::Substantiated => c.substantiated += 1,
            Finding::PartlySubstantiated => c.partly_substantiated += 1,
            Finding::NotSubstantiated => c.not_substantiated += 1,
        });
        if !finding.is_substantiated() {
            return self.take_draft(now, case_no, K::CloseCase, lead);
        }
        if kind == CaseKind::ProblemClue && people > 0 {
            self.record_discipline(now, case_no, people, counted)?;
        }
        self.order_rectification(now, case_no)
    }

    fn record_discipline(
        &mut self,
        now: f64,
        case_no: u64,
        people: u32,
        counted: bool,
    ) -> Result<(), SimError> {
        let at = self.hours.to_utc(now);
        let offered = self.state(case_no).is_some_and(|s| {
            !Casework::new(&self.district)
                .offers(s, K::RecordDiscipline, at)
                .is_empty()
        });
        if !offered {
            return Ok(());
        }
        let lead = self.lead(case_no);
        self.take(now, case_no, K::RecordDiscipline, lead, |o| {
            match &o.draft {
                Some(Command::RecordDiscipline(d)) => Some(
                    RecordDiscipline {
                        people: (1..=people)
                            .map(|i| DisciplinedPerson {
                                name: format!("干部{i} (cadre {i})"),
                                position: "村委会委员 (village committee member)".into(),
                                measure: DisciplineMeasure::Warning,
                            })
                            .collect(),
                        ..d.clone()
                    }
                    .into(),
                ),
                _ => None,
            }
        })?;
        self.count(counted, |c| c.disciplined_people += u64::from(people));
        Ok(())
    }

    /// Orders rectification; the unit the domain lets submit the plan writes it.
    fn order_rectification(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let lead = self.lead(case_no);
        self.take_draft(now, case_no, K::OrderRectification, lead)?;
        let at = self.hours.to_utc(now);
        let writer = self
            .state(case_no)
            .map(|s| Casework::new(&self.district).offers(s, K::SubmitRectificationPlan, at))
            .and_then(|o| o.into_iter().next())
            .and_then(|o| {
                o.issuers
                    .first()
                    .and_then(|a| self.layout.index_of(&a.unit))
            })
            .or(lead);
        if let Some(writer) = writer {
            self.request_work(now, case_no, Stage::Rectification, writer);
        }
        Ok(())
    }

    /// The plan is in (it promises the longest deadline the domain allows); the work itself
    /// takes the rectification delay, without holding staff.
    pub(super) fn finish_plan(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        self.take_draft(now, case_no, K::SubmitRectificationPlan, None)?;
        let p_progress = self.scenario.outcomes.progress_report;
        let progress = self.draw(case_no) < p_progress;
        let Some(case) = self.cases.get_mut(&case_no) else {
            return Ok(());
        };
        let d = self.timing.rectification.sample(&mut case.rng);
        let done = if d > 0.0 {
            self.hours.add_work(now, d)
        } else {
            now
        };
        if progress && done > now {
            self.queue
                .schedule((now + done) / 2.0, Ev::ProgressDue { case_no });
        }
        self.queue.schedule(done, Ev::RectificationDone { case_no });
        Ok(())
    }

    pub(super) fn report_progress(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let counted = self.counted(case_no);
        self.take_draft(now, case_no, K::ReportRectificationProgress, None)?;
        self.count(counted, |c| c.progress_reports += 1);
        Ok(())
    }

    pub(super) fn complete_rectification(
        &mut self,
        now: f64,
        case_no: u64,
    ) -> Result<(), SimError> {
        if self.case(case_no).is_none() {
            return Ok(());
        }
        self.take_draft(now, case_no, K::CompleteRectification, None)?;
        self.schedule_visit(now, case_no)
    }

    /// Schedules the follow-up visit after the scenario's delay (within the domain's latest
    /// date), with the visitor the domain drafts (the village officer first).
    fn schedule_visit(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let at = self.hours.to_utc(now);
        let Some(case) = self.cases.get_mut(&case_no) else {
            return Ok(());
        };
        let delay = self.timing.until_follow_up.sample(&mut case.rng);
        let visit_at = if delay > 0.0 {
            self.hours.add_work(now, delay)
        } else {
            now
        }
        .max(now + MIN_LEAD_HOURS);
        // Only the latest date is needed: `command_options` would also list every visitor.
        let d = &self.district;
        let latest = caseflow::domain::latest_visit(&d.calendar, &d.policies, at);
        let scheduled_for = self.hours.to_utc(visit_at).min(latest);
        let lead = self.lead(case_no);
        self.take(now, case_no, K::ScheduleFollowUpVisit, lead, |o| {
            let mut c = o.draft.clone()?;
            if let Command::ScheduleFollowUpVisit(v) = &mut c {
                v.scheduled_for = scheduled_for;
            }
            Some(c)
        })?;
        if let Some(visitor) = self.visitor(case_no) {
            self.wait_on(case_no, self.layout.level(visitor));
        }
        let due = self.hours.hours_of(scheduled_for);
        self.queue.schedule(due, Ev::VisitDue { case_no });
        Ok(())
    }

    fn visitor(&self, case_no: u64) -> Option<u32> {
        let visit = self.state(case_no)?.case()?.scheduled_visit.as_ref()?;
        self.layout.index_of(&visit.visitor)
    }

    pub(super) fn visit_due(&mut self, now: f64, case_no: u64) {
        if let Some(visitor) = self.visitor(case_no) {
            self.request_work(now, case_no, Stage::Review, visitor);
        }
    }

    pub(super) fn finish_review(&mut self, now: f64, case_no: u64) -> Result<(), SimError> {
        let outcomes = &self.scenario.outcomes;
        let (p_fail, max_reopen) = (outcomes.follow_up_fails, outcomes.max_reopen);
        let fails_u = self.draw(case_no);
        let weights = self.draws.satisfaction_weights.clone();
        let Some(case) = self.cases.get_mut(&case_no) else {
            return Ok(());
        };
        let drawn = self.draws.satisfactions[pick_weighted(&mut case.rng, &weights)];
        let (counted, reopens) = (case.counted, case.reopens);
        // After the last allowed reopening the review passes, so the case can close.
        let may_reopen = reopens < max_reopen;
        let failed = fails_u < p_fail && may_reopen;
        let satisfaction = match drawn {
            Satisfaction::Unsatisfied if !may_reopen => Satisfaction::Satisfied,
            s => s,
        };
        let result = if failed {
            VisitResult::Failed
        } else {
            VisitResult::Held
        };
        self.take(now, case_no, K::RecordFollowUpVisit, None, |o| {
            let mut c = o.draft.clone()?;
            if let Command::RecordFollowUpVisit(v) = &mut c {
                v.result = result;
            }
            Some(c)
        })?;
        self.count(counted, |c| {
            c.follow_ups += 1;
            c.follow_ups_failed += u64::from(failed);
        });
        if failed {
            return self.reopen_and_rectify(now, case_no, counted);
        }
        self.take(now, case_no, K::RecordSatisfaction, None, |o| {
            let mut c = o.draft.clone()?;
            if let Command::RecordSatisfaction(s) = &mut c {
                s.satisfaction = satisfaction;
            }
            Some(c)
        })?;
        let unsatisfied = satisfaction == Satisfaction::Unsatisfied;
        self.count(counted, |c| {
            c.satisfaction_asked += 1;
            c.satisfied += u64::from(!unsatisfied);
        });
        if unsatisfied {
            return self.reopen_and_rectify(now, case_no, counted);
        }
        let lead = self.lead(case_no);
        self.take_draft(now, case_no, K::CloseCase, lead)
    }

    /// Reopens after a failed visit or an unsatisfied reporter; the substantiated findings
    /// stand, so rectification is ordered again at once.
    fn reopen_and_rectify(
        &mut self,
        now: f64,
        case_no: u64,
        counted: bool,
    ) -> Result<(), SimError> {
        let lead = self.lead(case_no);
        self.take_draft(now, case_no, K::ReopenCase, lead)?;
        if let Some(c) = self.cases.get_mut(&case_no) {
            c.reopens += 1;
        }
        self.count(counted, |c| c.reopened += 1);
        self.order_rectification(now, case_no)
    }
}
