//! Domain benchmarks: deciding and folding a whole case, replaying a stream, working-day
//! arithmetic, loading the district. Run with `cargo bench -p caseflow-domain`.

use std::hint::black_box;

use caseflow_domain::chrono::{DateTime, Duration, TimeZone, Utc};
use caseflow_domain::uuid::Uuid;
use caseflow_domain::*;
use criterion::{Criterion, criterion_group, criterion_main};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The commands of a clue from report to close, as a forward walk through `next_commands`
/// makes them (the path the policies suggest), so the benchmark follows the rules as they
/// are rather than a script of its own.
fn clue_script(d: &DistrictConfig, case_id: CaseId) -> Vec<(Actor, Command)> {
    let reporter = Actor::new("vil-dongyuan", Role::InformationOfficer);
    let report: Command = ReportCase {
        case_id,
        channel: Channel::PettyPowerMiniProgram,
        kind: CaseKind::ProblemClue,
        summary: "低保评定优亲厚友".into(),
        locality: UnitId::new("loc-chaoyang"),
        village: Some(UnitId::new("vil-dongyuan")),
        subject: "东苑社区".into(),
        focus_area: FocusArea::ElderlyCareAndSocialSecurity,
        reporter: Reporter::Anonymous,
        reporter_handle: ReporterHandle(Uuid::from_u128(1)),
        source_department: None,
    }
    .into();
    let mut state = CaseState::default();
    let ctx = Context::new(&reporter, t0(), &d.org, &d.calendar, &d.policies);
    for e in decide(&state, &report, &ctx).unwrap_or_default() {
        evolve(&mut state, &e);
    }
    let next = NextContext::new(&d.org, &d.calendar, &d.policies, t0()).with_note("办理情况");
    let (moves, _) = walk::walk_forward(&mut state, &next, &mut walk::First, 64);
    std::iter::once((reporter, report))
        .chain(moves.into_iter().map(|m| (m.actor, m.command)))
        .collect()
}

/// Decides and folds the whole script; returns the events.
fn run_script(d: &DistrictConfig, script: &[(Actor, Command)]) -> Vec<CaseEvent> {
    let mut state = CaseState::default();
    let mut events = Vec::with_capacity(script.len());
    for (i, (actor, cmd)) in script.iter().enumerate() {
        let at = t0() + Duration::hours(i as i64 + 1);
        let ctx = Context::new(actor, at, &d.org, &d.calendar, &d.policies);
        if let Ok(new) = decide(&state, cmd, &ctx) {
            for e in &new {
                evolve(&mut state, e);
            }
            events.extend(new);
        }
    }
    events
}

fn benches(c: &mut Criterion) {
    let Ok(d) = DistrictConfig::sample() else {
        return;
    };
    let script = clue_script(&d, CaseId(Uuid::from_u128(42)));
    let events = run_script(&d, &script);
    assert_eq!(
        events.len(),
        script.len(),
        "the benchmark script must run to close"
    );
    let n = script.len();
    c.bench_function(
        &format!("decide+evolve a clue from report to close ({n} commands)"),
        |b| b.iter(|| run_script(black_box(&d), black_box(&script))),
    );
    c.bench_function(&format!("evolve: replay a closed clue ({n} events)"), |b| {
        b.iter(|| CaseState::from_events(black_box(&events)))
    });
    let routed = CaseState::from_events(&events[..3]);
    let next = NextContext::new(&d.org, &d.calendar, &d.policies, t0() + Duration::days(1));
    c.bench_function("next_commands of a case in classification", |b| {
        b.iter(|| next_commands(black_box(&routed), black_box(&next)))
    });
    let payloads: Vec<(&str, u32, Vec<u8>)> = events
        .iter()
        .map(|e| (e.event_type(), e.schema_version(), e.to_json()))
        .collect();
    c.bench_function(
        &format!("decode JSON and replay a closed clue ({n} events)"),
        |b| {
            b.iter(|| {
                let mut s = CaseState::default();
                for (ty, version, p) in &payloads {
                    if let Ok(e) = CaseEvent::decode_current(ty, *version, p) {
                        evolve(&mut s, &e);
                    }
                }
                s
            })
        },
    );
    c.bench_function("calendar: add 30 working days", |b| {
        b.iter(|| d.calendar.add_working_days(black_box(t0()), black_box(30)))
    });
    c.bench_function("load and validate the sample district", |b| {
        b.iter(|| DistrictConfig::from_toml_str(black_box(SAMPLE_DISTRICT_TOML)))
    });
}

criterion_group!(domain, benches);
criterion_main!(domain);
