//! Walks one case of each kind (problem clue, complaint, suggestion, consultation) through
//! the sample district, printing every event on one line: time (district time), stage after
//! the event, actor, event and what it says.
//!
//! Nothing here scripts the workflow: each step is the first command the domain's
//! `next_commands` lists that discharges a duty on somebody's to-do list, issued by its first
//! listed issuer on the next working morning. Each kind only sets the facts a person would
//! decide (how the case is classified, what was found, whether people are disciplined), so a
//! change to the rules shows up here without editing this file.
//!
//! Run with `cargo run --example lifecycle [path/to/district.toml]`.

use std::process::ExitCode;

use caseflow::domain::chrono::{DateTime, Duration, TimeZone, Utc};
use caseflow::domain::uuid::Uuid;
use caseflow::domain::*;

/// What a person decides along the way: the facts the walk cannot take from the policies'
/// suggestions, set on the draft of the command that records them.
struct Facts {
    kind: CaseKind,
    channel: Channel,
    summary: &'static str,
    /// Classification: severity, whether the town or street itself is involved, and a
    /// department the matter concerns.
    severity: Severity,
    involves_locality: bool,
    department: Option<&'static str>,
    /// Optional steps the walk takes when they become legal (recording discipline, ordering
    /// a rectification after a consultation's answer, a progress report).
    optional: &'static [CommandKind],
}

const WALKS: [Facts; 4] = [
    Facts {
        kind: CaseKind::ProblemClue,
        channel: Channel::PettyPowerMiniProgram,
        summary: "村干部在低保评定中优亲厚友",
        severity: Severity::Serious,
        involves_locality: true,
        department: None,
        optional: &[
            CommandKind::RecordDiscipline,
            CommandKind::ReportRectificationProgress,
        ],
    },
    Facts {
        kind: CaseKind::Complaint,
        channel: Channel::Hotline,
        summary: "学校食堂收费不公开",
        severity: Severity::Ordinary,
        involves_locality: false,
        department: Some("dept-education"),
        optional: &[],
    },
    Facts {
        kind: CaseKind::Suggestion,
        channel: Channel::BenchMeeting,
        summary: "花园小区路灯损坏，多次反映无人修",
        severity: Severity::Grave,
        involves_locality: false,
        department: None,
        optional: &[],
    },
    Facts {
        kind: CaseKind::Consultation,
        channel: Channel::PetitionWindow,
        summary: "居务公开栏多月未更新，咨询补贴标准",
        severity: Severity::Ordinary,
        involves_locality: false,
        department: None,
        optional: &[CommandKind::OrderRectification],
    },
];

fn report(facts: &Facts, case_id: CaseId) -> ReportCase {
    ReportCase {
        case_id,
        channel: facts.channel,
        kind: facts.kind,
        summary: facts.summary.into(),
        locality: UnitId::new("loc-chaoyang"),
        village: Some(UnitId::new("vil-dongyuan")),
        subject: "东苑社区".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Named(ProtectedContact::new("居民", "139-0000-0000")),
        reporter_handle: ReporterHandle(Uuid::from_u128(0xfeed)),
        source_department: None,
    }
}

/// Sets the person's decisions on a draft.
fn decide_facts(facts: &Facts, command: &mut Command) {
    match command {
        Command::ClassifyCase(c) => {
            c.severity = facts.severity;
            c.involves_locality = facts.involves_locality;
            c.involved_department = facts.department.map(DepartmentId::new);
        }
        Command::RecordDiscipline(c) => {
            c.people = vec![DisciplinedPerson {
                name: "张某".into(),
                position: "村委会主任".into(),
                measure: DisciplineMeasure::Warning,
            }];
        }
        _ => {}
    }
}

/// The next command: an optional step of this walk if one is legal now and not yet taken,
/// else the first command that discharges a duty.
fn choose(listed: Vec<NextCommand>, facts: &Facts, taken: &[CommandKind]) -> Option<NextCommand> {
    let optional = listed
        .iter()
        .position(|n| facts.optional.contains(&n.kind) && !taken.contains(&n.kind));
    match optional {
        Some(i) => listed.into_iter().nth(i),
        None => listed
            .into_iter()
            .find(|n| !n.discharges.is_empty() && n.draft.is_some()),
    }
}

/// The next working morning (09:30 district time on the next working day).
fn next_morning(calendar: &Calendar, t: DateTime<Utc>) -> DateTime<Utc> {
    calendar.add_working_days(t, 1) - Duration::hours(8)
}

fn print_event(d: &DistrictConfig, state: &CaseState, event: &CaseEvent) {
    let lang = d.org.info().language;
    println!(
        "{}  {}  {:<34}  {:<30}  {}",
        local(&d.calendar, event.at()),
        pad(state.stage().label(lang), 10),
        event.actor().to_string(),
        event.event_type(),
        describe(event, &d.org, &d.calendar, lang)
    );
}

fn walk(d: &DistrictConfig, facts: &Facts, n: u128, start: DateTime<Utc>) -> Result<(), String> {
    let case_id = CaseId(Uuid::from_u128(
        0x0198_0000_0000_7000_8000_0000_0000_0000 + n,
    ));
    let mut state = CaseState::default();
    let mut now = start;
    let mut command: Command = report(facts, case_id).into();
    let mut actor = Actor::new("vil-dongyuan", Role::InformationOfficer);
    let mut taken = Vec::new();
    for _ in 0..64 {
        let ctx = Context::new(&actor, now, &d.org, &d.calendar, &d.policies);
        let events = decide(&state, &command, &ctx)
            .map_err(|e| format!("{} by {actor} refused: {e}", command.name()))?;
        taken.push(command.kind());
        for event in &events {
            evolve(&mut state, event);
            print_event(d, &state, event);
        }
        now = next_morning(&d.calendar, now);
        let next =
            NextContext::new(&d.org, &d.calendar, &d.policies, now).with_note("已按要求办理");
        let Some(chosen) = choose(next_commands(&state, &next), facts, &taken) else {
            return Ok(());
        };
        actor = chosen.issuers[0].clone();
        command = chosen.draft.ok_or("the chosen command has no draft")?;
        decide_facts(facts, &mut command);
    }
    Err("the walk did not end within 64 steps".into())
}

/// Pads to `width` terminal columns (a CJK character takes two).
fn pad(text: &str, width: usize) -> String {
    let columns: usize = text
        .chars()
        .map(|c| if c > '\u{2e80}' { 2 } else { 1 })
        .sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(columns)))
}

fn local(calendar: &Calendar, t: DateTime<Utc>) -> String {
    calendar.to_local(t).format("%Y-%m-%d %H:%M").to_string()
}

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/district.toml").into());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let district = match DistrictConfig::from_toml_str(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let org = &district.org;
    println!(
        "{}: {} rooms, {} teams, {} localities, {} villages/communities, {} zones, {} departments",
        org.info().name,
        org.units_at(Level::Room).count(),
        org.units_at(Level::Team).count(),
        org.units_at(Level::Locality).count(),
        org.units_at(Level::Village).count(),
        org.zones().count(),
        org.departments().count()
    );
    // Monday 2 March 2026, 09:00 China time.
    let Some(start) = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).single() else {
        return ExitCode::FAILURE;
    };
    let titles = [
        "problem clue (问题线索)",
        "complaint (投诉)",
        "suggestion (意见建议)",
        "consultation (咨询)",
    ];
    for (i, (title, facts)) in titles.iter().zip(&WALKS).enumerate() {
        println!("\n== {title} ==");
        println!(
            "{:<16}  {:<10}  {:<34}  {:<30}  details",
            "time (district)", "stage", "actor", "event"
        );
        if let Err(e) = walk(
            &district,
            facts,
            i as u128,
            start + Duration::days(i as i64),
        ) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
