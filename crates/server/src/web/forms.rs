//! Forms for exactly the commands `next_commands` lists for the signed-in actor. A form
//! shows the fields a person decides (with the legal values `command_options` gives, or
//! every value of the field's type) prefilled from the domain's draft; on submit the server
//! takes the draft again, sets those fields and hands the command to the domain, which
//! decides. Nothing about what is legal is restated here.

use caseflow::District;
use caseflow::domain::{
    CaseState, Category, Command, CommandKind, CommandOptions, DeclineReason, DisciplineMeasure,
    Disposition, Finding, FocusArea, Label, Lang, NextCommand, NextContext, Organisation,
    ResponsibleParty, Satisfaction, Severity, VisitResult, command_options,
};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use maud::{Markup, html};
use serde_json::Value;

use super::tr;
use crate::views::{machine_name, unit_name};

/// How a field is entered.
enum Input {
    /// One line of text.
    Text,
    /// Several lines of text.
    Long,
    /// One string per line (a list).
    Lines,
    /// One of the values.
    Select(Vec<(String, String)>),
    /// One of the values, or none (`null`).
    OptionalSelect(Vec<(String, String)>),
    /// Any of the values (a list).
    Multi(Vec<(String, String)>),
    /// Yes or no.
    Check,
    /// A whole number, or nothing (`null`) when optional.
    Number { min: i64, max: i64, optional: bool },
    /// A date and time in district time.
    DateTime,
    /// Responsible parties (`unit:` / `department:` ids), one or several.
    Parties {
        values: Vec<(String, String)>,
        many: bool,
    },
}

/// One field of a command form: where it goes in the command's JSON, its label, its input.
struct Field {
    pointer: &'static str,
    label: (&'static str, &'static str),
    input: Input,
}

fn field(pointer: &'static str, zh: &'static str, en: &'static str, input: Input) -> Field {
    Field {
        pointer,
        label: (zh, en),
        input,
    }
}

/// Values of a field with its labels.
fn choices<T: Label + serde::Serialize>(values: &[T], lang: Lang) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| (machine_name(v), v.label(lang).to_owned()))
        .collect()
}

// Every value of the enums forms offer. The `match`es make the compiler point here when
// the domain adds a value.
const DECLINE_REASONS: [DeclineReason; 3] = [
    DeclineReason::OutsideRemit,
    DeclineReason::InsufficientInformation,
    DeclineReason::AlreadyDecided,
];
const CATEGORIES: [Category; 3] = [
    Category::DisciplineClue,
    Category::MassDemand,
    Category::Consultation,
];
const SEVERITIES: [Severity; 3] = [Severity::Ordinary, Severity::Serious, Severity::Grave];
const DISPOSITIONS: [Disposition; 4] = [
    Disposition::TalkOrLetterInquiry,
    Disposition::PreliminaryVerification,
    Disposition::HoldForLater,
    Disposition::CloseWithoutAction,
];
const FINDINGS: [Finding; 3] = [
    Finding::Substantiated,
    Finding::PartlySubstantiated,
    Finding::NotSubstantiated,
];
const MEASURES: [DisciplineMeasure; 7] = [
    DisciplineMeasure::CriticismAndEducation,
    DisciplineMeasure::Admonishment,
    DisciplineMeasure::Warning,
    DisciplineMeasure::SeriousWarning,
    DisciplineMeasure::RemovalFromPost,
    DisciplineMeasure::Expulsion,
    DisciplineMeasure::TransferToJudiciary,
];
const VISIT_RESULTS: [VisitResult; 2] = [VisitResult::Held, VisitResult::Failed];
const SATISFACTIONS: [Satisfaction; 3] = [
    Satisfaction::Satisfied,
    Satisfaction::BasicallySatisfied,
    Satisfaction::Unsatisfied,
];

fn units(org: &Organisation, ids: &[caseflow::domain::UnitId]) -> Vec<(String, String)> {
    ids.iter()
        .map(|u| (u.to_string(), unit_name(org, u)))
        .collect()
}

fn departments(
    org: &Organisation,
    ids: &[caseflow::domain::DepartmentId],
) -> Vec<(String, String)> {
    ids.iter()
        .map(|d| {
            (
                d.to_string(),
                org.department(d)
                    .map_or_else(|| d.to_string(), |x| x.name.clone()),
            )
        })
        .collect()
}

fn parties(org: &Organisation, list: &[ResponsibleParty]) -> Vec<(String, String)> {
    list.iter()
        .map(|p| match p {
            ResponsibleParty::Unit(u) => (format!("unit:{u}"), unit_name(org, u)),
            ResponsibleParty::Department(d) => (
                format!("department:{d}"),
                org.department(d)
                    .map_or_else(|| d.to_string(), |x| x.name.clone()),
            ),
        })
        .collect()
}

/// The fields a person fills in for a command (besides what the draft fixes).
fn fields(
    kind: CommandKind,
    options: Option<&CommandOptions>,
    org: &Organisation,
    lang: Lang,
) -> Vec<Field> {
    use CommandKind as K;
    let note = |pointer, zh, en| field(pointer, zh, en, Input::Long);
    match (kind, options) {
        (K::DeclineCase, _) => vec![
            field(
                "/reason",
                "不予受理理由",
                "Reason",
                Input::Select(choices(&DECLINE_REASONS, lang)),
            ),
            note(
                "/explanation",
                "向反映人说明",
                "Explanation for the reporter",
            ),
        ],
        (K::MergeCase, _) => vec![field(
            "/into",
            "并入的案件编号（UUID）",
            "Case it duplicates (UUID)",
            Input::Text,
        )],
        (K::TransferCase, _) => vec![
            field(
                "/to_authority",
                "移交机关",
                "Receiving authority",
                Input::Text,
            ),
            note("/reason", "移交理由", "Why"),
        ],
        (K::ClassifyCase, Some(CommandOptions::ClassifyCase { departments: d, .. })) => vec![
            field(
                "/category",
                "类别",
                "Category",
                Input::Select(choices(&CATEGORIES, lang)),
            ),
            field(
                "/focus_area",
                "重点领域",
                "Focus area",
                Input::Select(choices(&FocusArea::ALL, lang)),
            ),
            field(
                "/severity",
                "严重程度",
                "Severity",
                Input::Select(choices(&SEVERITIES, lang)),
            ),
            field(
                "/involves_locality",
                "涉及镇街本身",
                "Involves the locality itself",
                Input::Check,
            ),
            field(
                "/involved_department",
                "涉及部门",
                "Department involved",
                Input::OptionalSelect(departments(org, d)),
            ),
        ],
        (
            K::RecordJointConsultation,
            Some(CommandOptions::RecordJointConsultation {
                participants,
                departments: d,
            }),
        ) => vec![
            field(
                "/participants",
                "参会单位",
                "Units present",
                Input::Multi(units(org, participants)),
            ),
            field(
                "/departments",
                "参会部门",
                "Departments present",
                Input::Multi(departments(org, d)),
            ),
            note("/conclusion", "会商结论", "Conclusion"),
        ],
        (
            K::RouteCase,
            Some(CommandOptions::RouteCase {
                leads,
                responsible,
                max_time_limit_days,
                ..
            }),
        ) => vec![
            field(
                "/lead_unit",
                "牵头单位",
                "Lead unit",
                Input::Select(units(org, leads)),
            ),
            field(
                "/responsible",
                "责任主体",
                "Responsible",
                Input::Parties {
                    values: parties(org, responsible),
                    many: true,
                },
            ),
            field(
                "/time_limit_days",
                "办理时限（工作日，留空按规定）",
                "Handling limit (working days; empty: the rule's)",
                Input::Number {
                    min: 1,
                    max: i64::from(*max_time_limit_days),
                    optional: true,
                },
            ),
        ],
        (K::ChooseDisposition, _) => vec![field(
            "/disposition",
            "处置方式",
            "Disposition",
            Input::Select(choices(&DISPOSITIONS, lang)),
        )],
        (
            K::FormVerificationTeam,
            Some(CommandOptions::FormVerificationTeam { leaders, members }),
        ) => vec![
            field(
                "/leader",
                "组长单位",
                "Leading unit",
                Input::Select(units(org, leaders)),
            ),
            field(
                "/members",
                "成员单位",
                "Member units",
                Input::Multi(units(org, members)),
            ),
        ],
        (K::RecordFindings, _) => vec![
            field(
                "/finding",
                "核查结果",
                "Finding",
                Input::Select(choices(&FINDINGS, lang)),
            ),
            note("/summary", "核查情况", "What was found"),
        ],
        (K::RecordDiscipline, _) => vec![
            field("/people/0/name", "被处理人", "Person", Input::Text),
            field("/people/0/position", "职务", "Position", Input::Text),
            field(
                "/people/0/measure",
                "处理处分",
                "Measure",
                Input::Select(choices(&MEASURES, lang)),
            ),
        ],
        (K::AnswerConsultation, _) => vec![note("/answer", "答复内容", "Answer")],
        (K::OrderRectification, Some(CommandOptions::OrderRectification { responsible })) => vec![
            field(
                "/responsible",
                "整改责任主体",
                "Who rectifies",
                Input::Parties {
                    values: parties(org, responsible),
                    many: false,
                },
            ),
            note("/requirements", "整改要求", "Requirements"),
        ],
        (K::SubmitRectificationPlan, _) => vec![
            field(
                "/measures",
                "整改措施（每行一条）",
                "Measures (one per line)",
                Input::Lines,
            ),
            field("/deadline", "整改时限", "Deadline", Input::DateTime),
        ],
        (K::ReportRectificationProgress, _) => vec![
            note("/note", "进展情况", "Progress"),
            field(
                "/percent_complete",
                "完成比例（%）",
                "Percent complete",
                Input::Number {
                    min: 0,
                    max: 100,
                    optional: false,
                },
            ),
        ],
        (K::CompleteRectification, _) => vec![
            field(
                "/evidence",
                "佐证材料（每行一项）",
                "Evidence (one per line)",
                Input::Lines,
            ),
            note("/summary", "整改情况", "What was done"),
        ],
        (K::UrgeOverdue, _) => vec![note("/note", "督办意见", "Note to the urged unit")],
        (
            K::ScheduleFollowUpVisit,
            Some(CommandOptions::ScheduleFollowUpVisit { visitors, .. }),
        ) => vec![
            field(
                "/visitor",
                "回访单位",
                "Visiting unit",
                Input::Select(units(org, visitors)),
            ),
            field("/scheduled_for", "回访时间", "When", Input::DateTime),
        ],
        (K::RecordFollowUpVisit, _) => vec![
            field(
                "/result",
                "回访结果",
                "Result",
                Input::Select(choices(&VISIT_RESULTS, lang)),
            ),
            note("/notes", "回访情况", "What was seen"),
        ],
        (K::RecordSatisfaction, _) => vec![
            field(
                "/satisfaction",
                "满意度",
                "Satisfaction",
                Input::Select(choices(&SATISFACTIONS, lang)),
            ),
            note("/comment", "反映人意见", "Comment"),
        ],
        (K::ReopenCase, _) => vec![note("/reason", "重新办理理由", "Why")],
        (K::CloseCase, _) => vec![note("/summary", "办结情况", "Closing summary")],
        _ => Vec::new(),
    }
}

/// The JSON a form starts from: the draft, or for a merge (which has none) the command's
/// frame.
fn base_of(next: &NextCommand, case_id: caseflow::domain::CaseId) -> Value {
    match &next.draft {
        Some(d) => serde_json::to_value(d).unwrap_or(Value::Null),
        None => {
            serde_json::json!({ "type": next.kind.name(), "case_id": case_id.to_string(), "into": "" })
        }
    }
}

/// Which of several commands of one kind a form is for (urging names its deadline).
pub fn variant_of(next: &NextCommand) -> String {
    match &next.draft {
        Some(Command::UrgeOverdue(u)) => machine_name(&u.deadline),
        _ => String::new(),
    }
}

fn text_of(value: Option<&Value>, district: &District) -> String {
    match value {
        Some(Value::String(s)) if s == caseflow::domain::NextContext::DEFAULT_NOTE => String::new(),
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => district
                .calendar
                .to_local(t.with_timezone(&Utc))
                .format("%Y-%m-%dT%H:%M")
                .to_string(),
            Err(_) => s.clone(),
        },
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| *s != caseflow::domain::NextContext::DEFAULT_NOTE)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn selected_of(value: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => Some(format!(
            "{}:{}",
            o.get("type").and_then(Value::as_str).unwrap_or_default(),
            o.get("id").and_then(Value::as_str).unwrap_or_default()
        )),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn render_field(f: &Field, base: &Value, district: &District, lang: Lang) -> Markup {
    let name = format!("f{}", f.pointer);
    let label = tr(lang, f.label.0, f.label.1);
    let current = base.pointer(f.pointer);
    let selected = selected_of(current);
    let options = |values: &[(String, String)], blank: bool| {
        html! {
            @if blank { option value="" { "—" } }
            @for (v, l) in values {
                option value=(v) selected[selected.contains(v)] { (l) }
            }
        }
    };
    match &f.input {
        Input::Text => {
            html! { label { (label) input name=(name) value=(text_of(current, district)) required; } }
        }
        Input::Long => {
            html! { label { (label) textarea name=(name) rows="2" required { (text_of(current, district)) } } }
        }
        Input::Lines => {
            html! { label { (label) textarea name=(name) rows="3" required { (text_of(current, district)) } } }
        }
        Input::Select(values) => {
            html! { label { (label) select name=(name) { (options(values, false)) } } }
        }
        Input::OptionalSelect(values) => {
            html! { label { (label) select name=(name) { (options(values, true)) } } }
        }
        Input::Multi(values) | Input::Parties { values, many: true } => html! {
            label { (label) select name=(name) multiple size=(values.len().clamp(2, 6)) { (options(values, false)) } }
        },
        Input::Parties {
            values,
            many: false,
        } => html! { label { (label) select name=(name) { (options(values, false)) } } },
        Input::Check => html! {
            label.check { input type="checkbox" name=(name) value="true" checked[current == Some(&Value::Bool(true))]; (label) }
        },
        Input::Number { min, max, optional } => html! {
            label { (label) input type="number" name=(name) min=(min) max=(max) value=(text_of(current, district)) required[!optional]; }
        },
        Input::DateTime => html! {
            label { (label) input type="datetime-local" name=(name) value=(text_of(current, district)) required; }
        },
    }
}

/// Everything a command form needs besides the command.
pub struct FormContext<'a> {
    /// The case.
    pub state: &'a CaseState,
    /// When.
    pub ctx: NextContext<'a>,
    /// The district (names, calendar).
    pub district: &'a District,
    /// The language.
    pub lang: Lang,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// Where to come back to.
    pub return_to: &'a str,
}

/// The form (or single button) for one next command.
pub fn command_form(next: &NextCommand, fc: &FormContext<'_>) -> Markup {
    let Some(case) = fc.state.case() else {
        return html! {};
    };
    let options = command_options(fc.state, next.kind, &fc.ctx);
    let fields = fields(next.kind, options.as_ref(), &fc.district.org, fc.lang);
    let base = base_of(next, case.id);
    let label = next.kind.label(fc.lang);
    let variant = variant_of(next);
    let caption = if variant.is_empty() {
        label.to_owned()
    } else {
        let deadline = match &next.draft {
            Some(Command::UrgeOverdue(u)) => u.deadline.label(fc.lang),
            _ => "",
        };
        format!("{label}：{deadline}")
    };
    let hidden = html! {
        input type="hidden" name="csrf" value=(fc.csrf);
        input type="hidden" name="command_id" value=(uuid::Uuid::new_v4().to_string());
        input type="hidden" name="kind" value=(next.kind.name());
        input type="hidden" name="variant" value=(variant);
        input type="hidden" name="return_to" value=(fc.return_to);
    };
    let action = format!("/cases/{}/act", case.id);
    if fields.is_empty() {
        return html! {
            form.button-only method="post" action=(action) {
                (hidden)
                button.primary type="submit" data-command=(next.kind.name()) { (caption) }
            }
        };
    }
    html! {
        details.act {
            summary data-command=(next.kind.name()) { (caption) }
            form method="post" action=(action) {
                (hidden)
                @for f in &fields { (render_field(f, &base, fc.district, fc.lang)) }
                button.primary type="submit" { (tr(fc.lang, "提交", "Submit")) " · " (label) }
            }
        }
    }
}

/// Why a submitted form could not become a command.
#[derive(Debug)]
pub struct FormError(pub String);

/// The command a submitted form asks for: the draft of `next` with the form's fields set.
pub fn command_from_form(
    next: &NextCommand,
    state: &CaseState,
    ctx: &NextContext<'_>,
    district: &District,
    submitted: &[(String, String)],
) -> Result<Command, FormError> {
    let case = state
        .case()
        .ok_or_else(|| FormError("no case".to_owned()))?;
    let options = command_options(state, next.kind, ctx);
    let mut value = base_of(next, case.id);
    for f in fields(next.kind, options.as_ref(), &district.org, Lang::En) {
        let name = format!("f{}", f.pointer);
        let given: Vec<&str> = submitted
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        let new = parse_field(&f, &given, district)?;
        match value.pointer_mut(f.pointer) {
            Some(slot) => *slot = new,
            None => return Err(FormError(format!("the command has no field {}", f.pointer))),
        }
    }
    serde_json::from_value(value).map_err(|e| FormError(e.to_string()))
}

fn parse_field(f: &Field, given: &[&str], district: &District) -> Result<Value, FormError> {
    let first = given.first().copied().unwrap_or_default().trim();
    let bad = |what: &str| FormError(format!("{}: {what}", f.label.1));
    Ok(match &f.input {
        Input::Text | Input::Long | Input::Select(_) => Value::String(first.to_owned()),
        Input::OptionalSelect(_) if first.is_empty() => Value::Null,
        Input::OptionalSelect(_) => Value::String(first.to_owned()),
        Input::Lines => Value::Array(
            first
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_owned()))
                .collect(),
        ),
        Input::Multi(_) => Value::Array(
            given
                .iter()
                .map(|v| Value::String((*v).to_owned()))
                .collect(),
        ),
        Input::Check => Value::Bool(first == "true"),
        Input::Number { optional: true, .. } if first.is_empty() => Value::Null,
        Input::Number { .. } => Value::from(
            first
                .parse::<i64>()
                .map_err(|_| bad("not a whole number"))?,
        ),
        Input::DateTime => Value::String(
            local_to_utc(first, district)
                .ok_or_else(|| bad("not a date and time"))?
                .to_rfc3339(),
        ),
        Input::Parties { many, .. } => {
            let list = given
                .iter()
                .map(|v| party_json(v).ok_or_else(|| bad("not a unit or department")))
                .collect::<Result<Vec<_>, _>>()?;
            if *many {
                Value::Array(list)
            } else {
                list.into_iter().next().ok_or_else(|| bad("choose one"))?
            }
        }
    })
}

fn party_json(value: &str) -> Option<Value> {
    let (kind, id) = value.split_once(':')?;
    matches!(kind, "unit" | "department").then(|| serde_json::json!({ "type": kind, "id": id }))
}

/// A `datetime-local` value (district time) as UTC.
pub fn local_to_utc(text: &str, district: &District) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    district
        .calendar
        .utc_offset()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `match`es make this test stop compiling when the domain adds a value the lists
    /// above do not offer.
    #[test]
    fn every_value_of_the_offered_enums_is_listed() {
        use DisciplineMeasure as M;
        for v in DECLINE_REASONS {
            match v {
                DeclineReason::OutsideRemit
                | DeclineReason::InsufficientInformation
                | DeclineReason::AlreadyDecided => {}
            }
        }
        for v in CATEGORIES {
            match v {
                Category::DisciplineClue | Category::MassDemand | Category::Consultation => {}
            }
        }
        for v in SEVERITIES {
            match v {
                Severity::Ordinary | Severity::Serious | Severity::Grave => {}
            }
        }
        for v in DISPOSITIONS {
            match v {
                Disposition::TalkOrLetterInquiry
                | Disposition::PreliminaryVerification
                | Disposition::HoldForLater
                | Disposition::CloseWithoutAction => {}
            }
        }
        for v in FINDINGS {
            match v {
                Finding::Substantiated
                | Finding::PartlySubstantiated
                | Finding::NotSubstantiated => {}
            }
        }
        for v in MEASURES {
            match v {
                M::CriticismAndEducation
                | M::Admonishment
                | M::Warning
                | M::SeriousWarning
                | M::RemovalFromPost
                | M::Expulsion
                | M::TransferToJudiciary => {}
            }
        }
        for v in VISIT_RESULTS {
            match v {
                VisitResult::Held | VisitResult::Failed => {}
            }
        }
        for v in SATISFACTIONS {
            match v {
                Satisfaction::Satisfied
                | Satisfaction::BasicallySatisfied
                | Satisfaction::Unsatisfied => {}
            }
        }
    }

    #[test]
    fn a_district_time_form_value_is_read_in_the_district_offset() {
        let district = District::sample().unwrap();
        let t = local_to_utc("2026-05-04T09:30", &district).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-05-04T01:30:00+00:00");
        assert!(local_to_utc("tomorrow", &district).is_none());
    }
}
