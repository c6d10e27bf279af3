//! Prepares the store the browser end-to-end test serves: one complaint in 人民社区 walked
//! by the domain's own drafts up to the follow-up visit scheduled for the village's
//! information officer, and two people who can sign in.
//!
//! `cargo run -p caseflow-server --example e2e_fixture -- DIR` writes `DIR/e2e.db` (and its
//! users database) and prints the case id.

use std::sync::Arc;

use caseflow::domain::{
    Actor, CaseId, NextContext, ProtectedContact, ReportCase, Reporter, ReporterHandle, Role,
    next_commands,
};
use caseflow::{CommandEnvelope, District, Engine, EngineConfig, ManualClock};
use caseflow_server::config::users_path_for;
use caseflow_server::users::{Access, NewUser, UserStore};
use chrono::{Duration, Utc};
use uuid::Uuid;

/// The password of both fixture users.
const PASSWORD: &str = "correct horse battery";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: e2e_fixture DIR")?;
    let store = std::path::Path::new(&dir).join("e2e.db");
    for stale in [
        store.clone(),
        users_path_for(&store),
        caseflow::read_model_path(&store),
        caseflow::contacts::key_store_path(&store),
        master_key_path(&store),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    // Events are recorded over the last two days, so the server (on the system clock) comes
    // after every one of them.
    let clock = Arc::new(ManualClock::new(Utc::now() - Duration::days(2)));
    let district = District::sample()?;
    // The named reporter's contact is sealed, so the store gets a master key; the browser
    // test hands the same file to `caseflow serve` (CASEFLOW_MASTER_KEY_FILE).
    let master = caseflow::MasterKey::create_file(&master_key_path(&store))?;
    let config = EngineConfig::sqlite(&store, district)
        .clock(clock.clone())
        .master_key(master);
    let engine = Engine::open(config).await?;
    let case_id = CaseId::new(Uuid::new_v4());
    let report = ReportCase {
        case_id,
        channel: caseflow::domain::Channel::PettyPowerMiniProgram,
        kind: caseflow::domain::CaseKind::Complaint,
        summary: "人民路路灯损坏一个多月无人维修，夜间出行不便".to_owned(),
        locality: "loc-zhongshan".into(),
        village: Some("vil-renmin".into()),
        subject: "街道城管科".to_owned(),
        focus_area: caseflow::domain::FocusArea::LivingEnvironment,
        reporter: Reporter::Named(ProtectedContact::new("张三", "13800000000")),
        reporter_handle: ReporterHandle(Uuid::new_v4()),
        source_department: None,
    };
    let now = caseflow::Clock::now(clock.as_ref());
    let actor = Actor::new("loc-zhongshan", Role::CaseOfficer);
    engine
        .execute(CommandEnvelope::new(Uuid::new_v4(), actor, now, report))
        .await?;
    walk_to_the_visit(&engine, &clock, case_id).await?;
    let users = UserStore::open(&users_path_for(&store))?;
    let org = &engine.district().org;
    for (name, display, unit, role) in [
        (
            "wang.renmin",
            "王信息员",
            "vil-renmin",
            Role::InformationOfficer,
        ),
        ("li.room1", "李主任", "room-1", Role::Leader),
    ] {
        let access = Access::Staff {
            actor: Actor::new(unit, role),
        };
        let user = NewUser {
            username: name.to_owned(),
            display_name: display.to_owned(),
            access,
            password: Some(PASSWORD.to_owned()),
        };
        users.add(&user, org, Utc::now())?;
    }
    println!("{case_id}");
    Ok(())
}

/// Issues the domain's forward drafts, each by its first issuer, until a follow-up visit is
/// scheduled.
async fn walk_to_the_visit(
    engine: &Engine,
    clock: &ManualClock,
    case_id: CaseId,
) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..40 {
        let state = engine.case_state(case_id).await?;
        if state.case().is_some_and(|c| c.scheduled_visit.is_some()) {
            return Ok(());
        }
        clock.advance(Duration::hours(1));
        let now = caseflow::Clock::now(clock);
        let d = engine.district();
        let ctx = NextContext::new(&d.org, &d.calendar, &d.policies, now);
        let next = next_commands(&state, &ctx)
            .into_iter()
            .filter(|n| !n.discharges.is_empty())
            .find(|n| {
                !matches!(
                    n.kind.name(),
                    "UrgeOverdue" | "DeclineCase" | "TransferCase" | "MergeCase" | "ReopenCase"
                )
            })
            .ok_or("the case has no forward step")?;
        let command = next.draft.ok_or("no draft")?;
        let envelope = CommandEnvelope::new(Uuid::new_v4(), next.issuers[0].clone(), now, command);
        engine.execute(envelope).await?;
    }
    Err("the case never reached its follow-up visit".into())
}

/// The fixture's master key file, beside its store (`e2e.master.key`).
fn master_key_path(store: &std::path::Path) -> std::path::PathBuf {
    store.with_extension("master.key")
}
