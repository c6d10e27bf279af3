//! docs/reference.md, the reference of every command and event, is generated here from the
//! code and checked against the file, so it cannot drift: a changed rule, field or event
//! fails this test until the file is regenerated with
//! `CASEFLOW_WRITE_REFERENCE=1 cargo test -p caseflow --test reference`.
//!
//! Every example is real: seeded walks through `next_commands` issue each command, `decide`
//! accepts it, and the example shows the command's JSON, who may issue it (the rule `decide`
//! checks), the stages it applies in, and the event it produced. One forward walk per case
//! kind follows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use caseflow::domain::chrono::{DateTime, Duration, TimeZone, Utc};
use caseflow::domain::uuid::Uuid;
use caseflow::domain::walk::{Chooser, First, Style, next_move};
use caseflow::domain::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()
}

struct Seen {
    actor: Actor,
    command: Command,
    event: CaseEvent,
    rule: String,
    discharges: Vec<Action>,
}

fn report(n: u128, kind: CaseKind) -> Command {
    ReportCase {
        case_id: CaseId::new(Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
        )),
        channel: Channel::PettyPowerMiniProgram,
        kind,
        summary: "花园小区路灯损坏，多次反映无人修".into(),
        locality: UnitId::new("loc-chaoyang"),
        village: Some(UnitId::new("vil-dongyuan")),
        subject: "东苑社区居委会".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Anonymous,
        reporter_handle: ReporterHandle(Uuid::from_u128(n)),
        source_department: None,
    }
    .into()
}

fn decide_at(
    d: &DistrictConfig,
    state: &CaseState,
    actor: &Actor,
    c: &Command,
    at: DateTime<Utc>,
) -> Vec<CaseEvent> {
    let ctx = Context::new(actor, at, &d.org, &d.calendar, &d.policies);
    decide(state, c, &ctx).unwrap_or_else(|e| panic!("{} refused: {e}", c.name()))
}

fn apply(state: &mut CaseState, events: &[CaseEvent]) {
    for e in events {
        evolve(state, e);
    }
}

struct XorShift(u64);

impl Chooser for XorShift {
    fn pick(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One accepted example of every command the walks reach (the first one seen, so the
/// reference is stable).
fn examples(d: &DistrictConfig) -> BTreeMap<CommandKind, Seen> {
    let mut seen: BTreeMap<CommandKind, Seen> = BTreeMap::new();
    let mut chooser = XorShift(0x9e37_79b9);
    let reporter = Actor::new("vil-dongyuan", Role::InformationOfficer);
    for n in 0..300u128 {
        let kind = CaseKind::ALL[(n % 4) as usize];
        let mut state = CaseState::default();
        let first = report(n, kind);
        let events = decide_at(d, &state, &reporter, &first, t0());
        seen.entry(CommandKind::ReportCase).or_insert_with(|| Seen {
            actor: reporter.clone(),
            command: first.clone(),
            event: events[0].clone(),
            rule: "anyone; a village officer only for its own village, a locality only in its own area".into(),
            discharges: Vec::new(),
        });
        apply(&mut state, &events);
        let mut now = t0();
        for _ in 0..30 {
            now += Duration::hours(40);
            let next =
                NextContext::new(&d.org, &d.calendar, &d.policies, now).with_note("情况说明");
            let Some(m) = next_move(&state, &next, Style::Explore, &mut chooser) else {
                break;
            };
            let listed = next_commands_of(&state, m.command.kind(), &next);
            let rule = who_may_issue(&m.command, &state)
                .unwrap_or_default()
                .to_owned();
            let events = decide_at(d, &state, &m.actor, &m.command, now);
            seen.entry(m.command.kind()).or_insert_with(|| Seen {
                actor: m.actor.clone(),
                command: m.command.clone(),
                event: events[0].clone(),
                rule,
                discharges: listed
                    .first()
                    .map(|l| l.discharges.clone())
                    .unwrap_or_default(),
            });
            apply(&mut state, &events);
        }
    }
    seen
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("serialisable")
}

fn stages(kind: CommandKind) -> String {
    allowed_stages(kind)
        .iter()
        .map(|s| format!("{} ({})", s.as_str(), s.label(Lang::ZhCn)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn command_section(out: &mut String, kind: CommandKind, seen: Option<&Seen>) {
    let _ = writeln!(out, "### `{}` — {}\n", kind.name(), kind.label(Lang::ZhCn));
    let _ = writeln!(out, "- Applies in: {}", stages(kind));
    let Some(s) = seen else {
        let why = match kind {
            CommandKind::RevealReporterContact | CommandKind::EraseReporterContact => {
                "Reporter protection, not a workflow step: `next_commands` does not list it (who may issue it: domain.md, \"Reporter protection\"; the engine's `reveal_reporter_contact` and `erase_reporter_contact` issue it)."
            }
            _ => {
                "Needs a second case (the engine checks the target); no walk issues it on its own."
            }
        };
        let _ = writeln!(out, "- {why}\n");
        return;
    };
    let _ = writeln!(out, "- Who may issue it: {}", s.rule);
    if !s.discharges.is_empty() {
        let duties: Vec<&str> = s.discharges.iter().map(|a| a.as_str()).collect();
        let _ = writeln!(out, "- Discharges: {}", duties.join(", "));
    }
    let _ = writeln!(
        out,
        "- Produces: `{}` (schema version {})\n",
        s.event.event_type(),
        s.event.schema_version()
    );
    let _ = writeln!(
        out,
        "Issued by `{}`:\n\n```json\n{}\n```\n",
        s.actor,
        json(&s.command)
    );
    let _ = writeln!(
        out,
        "The event (stored as this payload without `type`, the type and schema version beside it):\n\n```json\n{}\n```\n",
        json(&s.event)
    );
}

/// The commands of a forward walk of one case of each kind, as an embedder would send them.
fn walks(d: &DistrictConfig, out: &mut String) {
    let reporter = Actor::new("vil-dongyuan", Role::InformationOfficer);
    for (i, kind) in CaseKind::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "### A {} ({})\n",
            kind.label(Lang::En),
            kind.label(Lang::ZhCn)
        );
        let mut state = CaseState::default();
        let mut now = t0();
        let mut step = (reporter.clone(), report(1000 + i as u128, *kind));
        let mut rows = Vec::new();
        loop {
            let events = decide_at(d, &state, &step.0, &step.1, now);
            rows.push(format!(
                "| `{}` | `{}` | {} |",
                step.1.name(),
                step.0,
                events
                    .iter()
                    .map(|e| format!("`{}`", e.event_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            apply(&mut state, &events);
            now += Duration::hours(2);
            let next =
                NextContext::new(&d.org, &d.calendar, &d.policies, now).with_note("情况说明");
            match next_move(&state, &next, Style::Forward, &mut First) {
                Some(m) => step = (m.actor, m.command),
                None => break,
            }
        }
        let _ = writeln!(out, "| command | issued by | events |\n|---|---|---|");
        for r in rows {
            let _ = writeln!(out, "{r}");
        }
        let _ = writeln!(out, "\nEnds: {}.\n", state.stage().as_str());
    }
}

fn reference() -> String {
    let d = DistrictConfig::sample().expect("sample district");
    let seen = examples(&d);
    let mut out = String::from(
        "# Command and event reference\n\n\
         Generated from the code by `tests/reference.rs` (`CASEFLOW_WRITE_REFERENCE=1 cargo test -p caseflow --test reference`);\n\
         the test fails when this file and the code disagree. Every example below was accepted by\n\
         `decide` in a seeded walk of the sample district through `next_commands`. Commands are\n\
         JSON objects tagged with `type`; events are stored as their payload (the type and schema\n\
         version beside it). Rules in words: [domain.md](domain.md).\n\n## Commands\n\n",
    );
    for kind in CommandKind::ALL {
        command_section(&mut out, *kind, seen.get(kind));
    }
    out.push_str("## One case of each kind, from report to close\n\n");
    out.push_str("Each step is the first command `next_commands` lists that discharges a duty, by its first listed issuer (the path the policies suggest).\n\n");
    walks(&d, &mut out);
    out
}

#[test]
fn the_reference_is_generated_from_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md");
    let generated = reference();
    if std::env::var_os("CASEFLOW_WRITE_REFERENCE").is_some() {
        std::fs::write(path, &generated).expect("write docs/reference.md");
        return;
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/reference.md is out of date: run CASEFLOW_WRITE_REFERENCE=1 cargo test -p caseflow --test reference"
    );
}

#[test]
fn the_reference_covers_every_command_and_shows_every_reachable_one_in_use() {
    let text = reference();
    for kind in CommandKind::ALL {
        assert!(
            text.contains(&format!("### `{}`", kind.name())),
            "{kind} missing"
        );
    }
    let d = DistrictConfig::sample().expect("sample district");
    let seen = examples(&d);
    let missing: Vec<_> = CommandKind::ALL
        .iter()
        .filter(|k| !seen.contains_key(k))
        .collect();
    assert_eq!(
        missing,
        [
            &CommandKind::MergeCase,
            &CommandKind::RevealReporterContact,
            &CommandKind::EraseReporterContact
        ],
        "only the merge needs a second case; reveals and erasures are not workflow steps"
    );
}
