//! What an event says, in a line people read: the audit report's "what was decided", the
//! case page's timeline, the lifecycle example. Units and departments by name, times in
//! district time, values by their labels; never the reporter's contact (only whether the
//! reporter is named).

use chrono::{DateTime, Utc};

use crate::calendar::Calendar;
use crate::event::*;
use crate::ids::{DepartmentId, UnitId};
use crate::labels::{Label, Lang};
use crate::model::ResponsibleParty;
use crate::org::Organisation;

/// Names and times for one description.
struct Words<'a> {
    org: &'a Organisation,
    calendar: &'a Calendar,
    lang: Lang,
}

impl Words<'_> {
    fn pick(&self, zh: &'static str, en: &'static str) -> &'static str {
        match self.lang {
            Lang::ZhCn => zh,
            Lang::En => en,
        }
    }

    fn unit(&self, id: &UnitId) -> String {
        self.org
            .unit(id)
            .map_or_else(|| id.to_string(), |u| u.name.clone())
    }

    fn department(&self, id: &DepartmentId) -> String {
        self.org
            .department(id)
            .map_or_else(|| id.to_string(), |d| d.name.clone())
    }

    fn party(&self, p: &ResponsibleParty) -> String {
        match p {
            ResponsibleParty::Unit(u) => self.unit(u),
            ResponsibleParty::Department(d) => self.department(d),
        }
    }

    fn parties(&self, ps: &[ResponsibleParty]) -> String {
        ps.iter()
            .map(|p| self.party(p))
            .collect::<Vec<_>>()
            .join("、")
    }

    fn units(&self, us: &[UnitId]) -> String {
        us.iter()
            .map(|u| self.unit(u))
            .collect::<Vec<_>>()
            .join("、")
    }

    fn time(&self, t: DateTime<Utc>) -> String {
        self.calendar
            .to_local(t)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }
}

/// One line saying what an event recorded, in `lang`.
pub fn describe(event: &CaseEvent, org: &Organisation, calendar: &Calendar, lang: Lang) -> String {
    let w = Words {
        org,
        calendar,
        lang,
    };
    let line = sentence(&w, event);
    match lang {
        Lang::ZhCn => line,
        Lang::En => western_punctuation(&line),
    }
}

/// The lines are written with Chinese punctuation; English text reads it the Western way.
fn western_punctuation(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '：' => out.push_str(": "),
            '，' | '、' => out.push_str(", "),
            '；' => out.push_str("; "),
            '（' => out.push_str(" ("),
            '）' => out.push(')'),
            c => out.push(c),
        }
    }
    out
}

fn sentence(w: &Words<'_>, event: &CaseEvent) -> String {
    let lang = w.lang;
    match event {
        CaseEvent::CaseReported(e) => reported(w, e),
        CaseEvent::CaseAccepted(e) => format!(
            "{} {}",
            w.pick("研判期限", "classify by"),
            w.time(e.classification_due_at)
        ),
        CaseEvent::CaseDeclined(e) => format!("{}：{}", e.reason.label(lang), e.explanation),
        CaseEvent::CaseMerged(e) => format!("{} {}", w.pick("并入", "merged into"), e.into),
        CaseEvent::CaseTransferred(e) => {
            format!("{} {}：{}", w.pick("移交", "to"), e.to_authority, e.reason)
        }
        CaseEvent::CaseClassified(e) => classified(w, e),
        CaseEvent::JointConsultationRecorded(e) => format!(
            "{} {}：{}",
            w.pick("参会", "with"),
            w.units(&e.participants),
            e.conclusion
        ),
        CaseEvent::CaseRouted(e) => routed(w, e),
        CaseEvent::DispositionChosen(e) => match e.due_at {
            Some(due) => format!(
                "{}，{} {}",
                e.disposition.label(lang),
                w.pick("期限", "due"),
                w.time(due)
            ),
            None => e.disposition.label(lang).to_owned(),
        },
        CaseEvent::VerificationTeamFormed(e) => format!(
            "{} {}，{} {}",
            w.pick("组长单位", "led by"),
            w.unit(&e.leader),
            w.pick("成员", "members"),
            w.units(&e.members)
        ),
        CaseEvent::FindingsRecorded(e) => format!("{}：{}", e.finding.label(lang), e.summary),
        CaseEvent::DisciplineRecorded(e) => e
            .people
            .iter()
            .map(|p| format!("{} {} {}", p.position, p.name, p.measure.label(lang)))
            .collect::<Vec<_>>()
            .join("；"),
        CaseEvent::ConsultationAnswered(e) => e.answer.clone(),
        other => later(w, other),
    }
}

/// The events of rectification, urging, review and the end.
fn later(w: &Words<'_>, event: &CaseEvent) -> String {
    let lang = w.lang;
    match event {
        CaseEvent::RectificationOrdered(e) => format!(
            "{} {}：{}；{} {}",
            w.pick("责任单位", "responsible"),
            w.party(&e.responsible),
            e.requirements,
            w.pick("方案期限", "plan due"),
            w.time(e.plan_due_at)
        ),
        CaseEvent::RectificationPlanSubmitted(e) => format!(
            "{}；{} {}",
            e.measures.join("；"),
            w.pick("整改期限", "deadline"),
            w.time(e.rectification_due_at)
        ),
        CaseEvent::RectificationProgressReported(e) => {
            format!("{}%：{}", e.percent_complete, e.note)
        }
        CaseEvent::RectificationCompleted(e) => format!(
            "{}（{} {}）",
            e.summary,
            w.pick("佐证", "evidence"),
            e.evidence.join("、")
        ),
        CaseEvent::CaseUrged(e) => format!(
            "{} {}（{} {}）{}",
            e.deadline.label(lang),
            w.pick("超期", "missed"),
            w.pick("原定", "due"),
            w.time(e.missed_due_at),
            if e.escalated {
                w.pick("，升级督办", ", escalated")
            } else {
                ""
            }
        ),
        CaseEvent::FollowUpVisitScheduled(e) => format!(
            "{} {} {}",
            w.unit(&e.visitor),
            w.pick("回访于", "visits on"),
            w.time(e.scheduled_for)
        ),
        CaseEvent::FollowUpVisitRecorded(e) => format!("{}：{}", e.result.label(lang), e.notes),
        CaseEvent::SatisfactionRecorded(e) if e.comment.trim().is_empty() => {
            e.satisfaction.label(lang).to_owned()
        }
        CaseEvent::SatisfactionRecorded(e) => {
            format!("{}：{}", e.satisfaction.label(lang), e.comment)
        }
        CaseEvent::CaseReopened(e) => e.reason.clone(),
        CaseEvent::CaseClosed(e) => format!("{}：{}", e.outcome.label(lang), e.summary),
        // Who looked and why; never the contact.
        CaseEvent::ReporterContactRevealed(e) => {
            format!("{}：{}", w.pick("查阅原因", "reason"), e.reason)
        }
        CaseEvent::ReporterContactErased(e) => format!(
            "{}：{} · {}：{}",
            w.pick("依据", "legal basis"),
            e.legal_basis,
            w.pick("原因", "reason"),
            e.reason
        ),
        // Handled by `sentence` before it calls here.
        _ => String::new(),
    }
}

fn reported(w: &Words<'_>, e: &CaseReported) -> String {
    let place = match &e.village {
        Some(v) => w.unit(v),
        None => w.unit(&e.locality),
    };
    let reporter = if e.reporter.is_anonymous() {
        w.pick("匿名", "anonymous")
    } else {
        w.pick("实名（受保护）", "named (protected)")
    };
    format!(
        "{} · {} · {} · {} {} · {} {}",
        e.kind.label(w.lang),
        e.channel.label(w.lang),
        place,
        w.pick("举报人", "reporter"),
        reporter,
        w.pick("受理期限", "intake due"),
        w.time(e.intake_due_at)
    )
}

fn classified(w: &Words<'_>, e: &CaseClassified) -> String {
    let mut text = format!(
        "{} · {} · {}",
        e.category.label(w.lang),
        e.severity.label(w.lang),
        e.focus_area.label(w.lang)
    );
    if e.involves_locality {
        text.push_str(w.pick(
            " · 涉及镇街（交叉互查）",
            " · involves the locality (cross-inspection)",
        ));
    }
    if let Some(d) = &e.involved_department {
        text.push_str(&format!(
            " · {} {}",
            w.pick("涉及部门", "department"),
            w.department(d)
        ));
    }
    text
}

fn routed(w: &Words<'_>, e: &CaseRouted) -> String {
    format!(
        "{} {}，{} {}，{} {} {}，{} {}",
        w.pick("牵头", "lead"),
        w.unit(&e.lead_unit),
        w.pick("责任", "responsible"),
        w.parties(&e.responsible),
        w.pick("时限", "limit"),
        e.time_limit_days,
        w.pick("个工作日", "working days"),
        w.pick("到期", "due"),
        w.time(e.handling_due_at)
    )
}
