//! An auditor's session: replay a case to a past time and a past version, print its audit
//! report, and verify that nothing in the store was altered.
//!
//! Run with `cargo run --example audit_replay`. It first writes a small history with a
//! walked workload (cases moved along the domain's `next_commands`) into an in-memory store
//! (use `caseflow case|audit|verify --db` on a real store, e.g. the demo's).

use std::sync::Arc;

#[path = "../tests/common/workload.rs"]
mod workload;

use caseflow::{District, Engine, EngineConfig, ManualClock, SeededIds};
use chrono::{Duration, FixedOffset};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Monday 2026-03-02, 09:00 CST.
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00")?.to_utc();
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::open(
        EngineConfig::memory(District::sample()?)
            .clock(clock.clone())
            .ids(Arc::new(SeededIds::new(5))),
    )
    .await?;
    let summary = workload::walked_workload(&engine, &clock, start, 20, 5).await;
    println!(
        "history: {} cases, {} commands\n",
        summary.cases, summary.commands
    );

    // Pick the case with the longest history.
    let mut longest = None;
    for case_id in engine.case_ids().await? {
        let state = engine.case_state(case_id).await?;
        if longest.is_none_or(|(_, v)| state.version() > v) {
            longest = Some((case_id, state.version()));
        }
    }
    let (case_id, version) = longest.ok_or("no cases")?;

    // The case as it stood three days after it was reported, and after its third event.
    let first = engine.state_as_of_version(case_id, 1).await?;
    let reported_at = first.state.case().map(|c| c.reported_at).ok_or("no case")?;
    let past = engine
        .state_as_of_time(case_id, reported_at + Duration::days(3))
        .await?;
    println!(
        "case {case_id}: now at version {version} ({}); three days after the report it was at version {} ({})",
        engine.case_state(case_id).await?.stage(),
        past.version,
        past.state.stage()
    );
    let third = engine.state_as_of_version(case_id, 3.min(version)).await?;
    println!("after event 3 it was in stage {}\n", third.state.stage());

    // Who did what and when, stage by stage, with the hash of every event.
    let offset = FixedOffset::east_opt(engine.district().calendar.utc_offset_minutes * 60)
        .ok_or("offset")?;
    let report = engine.audit_case(case_id, summary.end).await?;
    println!("{}", report.to_markdown(offset));

    // Hash chains of every case, and every read model against a rebuild from the log.
    let verify = engine.verify().await?;
    println!("{}", verify.to_markdown());
    if !verify.is_ok() {
        return Err("the store does not verify".into());
    }
    Ok(())
}
