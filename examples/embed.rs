//! A tokio service embedding the Caseflow engine: it opens a SQLite store, executes commands
//! for a few cases as the units would, runs the deadline watcher, and queries to-do lists.
//!
//! Run with `cargo run --example embed` (it writes `embed-example.db` in a temp directory).

use std::sync::Arc;

use caseflow::domain::{
    AcceptCase, Actor, CaseId, CaseKind, Category, Channel, ClassifyCase, FocusArea, ReportCase,
    Reporter, ReporterHandle, ResponsibleParty, Role, RouteCase, Severity, UnitId,
};
use caseflow::{
    CommandEnvelope, District, Engine, EngineConfig, EngineError, ManualClock, SeededIds,
};
use chrono::{Duration, TimeZone, Utc};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("caseflow-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("embed-example.db");

    // A service would use the defaults (system clock, random UUIDv7). The example uses a
    // manual clock and seeded ids so that every run prints the same thing.
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .ok_or("bad start time")?;
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::open(
        EngineConfig::sqlite(&db, District::sample()?)
            .clock(clock.clone())
            .ids(Arc::new(SeededIds::new(1))),
    )
    .await?;

    // Three residents report through the mini-program; the village officers register them.
    let places = [
        (
            "loc-chaoyang",
            "vil-dongyuan",
            "花园小区路灯损坏 (broken street lamp)",
        ),
        (
            "loc-zhongshan",
            "vil-wenhuagong",
            "社区活动室长期关闭 (community room always closed)",
        ),
        (
            "loc-chaoyang",
            "vil-dongyuan",
            "垃圾清运不及时 (rubbish not collected)",
        ),
    ];
    let mut cases = Vec::new();
    for (i, (locality, village, summary)) in places.iter().enumerate() {
        let at = start + Duration::hours(i as i64);
        clock.set(at);
        let case_id = CaseId::new(engine.new_id());
        let report = ReportCase {
            case_id,
            channel: Channel::PettyPowerMiniProgram,
            kind: CaseKind::Complaint,
            summary: (*summary).to_owned(),
            locality: UnitId::new(*locality),
            village: Some(UnitId::new(*village)),
            subject: "居委会 (residents' committee)".to_owned(),
            focus_area: FocusArea::LivingEnvironment,
            reporter: Reporter::Anonymous,
            reporter_handle: ReporterHandle(engine.new_id()),
            source_department: None,
        };
        let outcome = engine
            .execute(CommandEnvelope::new(
                engine.new_id(),
                Actor::new(*village, Role::InformationOfficer),
                at,
                report,
            ))
            .await?;
        println!("reported case {case_id} (version {})", outcome.last_version);
        cases.push((case_id, *locality));
    }

    // Room 1 accepts the first two; the locality classifies and routes the first to itself.
    for (case_id, _) in cases.iter().take(2) {
        let at = engine.now() + Duration::hours(2);
        clock.set(at);
        engine
            .execute(CommandEnvelope::new(
                engine.new_id(),
                Actor::new("room-1", Role::CaseOfficer),
                at,
                AcceptCase { case_id: *case_id },
            ))
            .await?;
    }
    let (first, locality) = cases[0];
    let at = engine.now() + Duration::hours(1);
    clock.set(at);
    let classify = CommandEnvelope::new(
        engine.new_id(),
        Actor::new(locality, Role::Leader),
        at,
        ClassifyCase {
            case_id: first,
            category: Category::MassDemand,
            focus_area: FocusArea::LivingEnvironment,
            severity: Severity::Ordinary,
            involves_locality: false,
            involved_department: None,
        },
    );
    engine.execute(classify.clone()).await?;
    // A client that did not hear the answer simply resends: same command id, same result.
    let resent = engine.execute(classify).await?;
    println!("resent the classification: replayed = {}", resent.replayed);
    engine
        .execute(CommandEnvelope::new(
            engine.new_id(),
            Actor::new(locality, Role::Leader),
            at + Duration::minutes(30),
            RouteCase {
                case_id: first,
                lead_unit: UnitId::new(locality),
                responsible: vec![ResponsibleParty::Unit(UnitId::new(locality))],
                time_limit_days: None,
            },
        ))
        .await?;

    // A refused command is a typed caller error, and nothing is written.
    let refused = engine
        .execute(CommandEnvelope::new(
            engine.new_id(),
            Actor::new("vil-dongyuan", Role::InformationOfficer),
            at + Duration::hours(1),
            AcceptCase {
                case_id: cases[2].0,
            },
        ))
        .await;
    if let Err(EngineError::Rejected { source, .. }) = &refused {
        println!("a village officer may not accept a case: {source}");
    }

    // A week later the watcher urges the intake decision nobody took.
    let later = start + Duration::days(7);
    clock.set(later);
    let watch = engine.check_deadlines(later).await?;
    for urged in &watch.issued {
        println!(
            "urged {:?} of case {} (by {})",
            urged.deadline, urged.case_id, urged.by
        );
    }

    for unit in ["room-1", "loc-chaoyang", "loc-zhongshan", "vil-dongyuan"] {
        let items = engine.todo(&UnitId::new(unit), later).await?;
        println!("\nto-do list of {unit}: {} item(s)", items.len());
        for item in items {
            println!("  {item}");
        }
    }
    drop(engine);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
