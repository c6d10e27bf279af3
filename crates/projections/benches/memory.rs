//! Memory of the in-memory to-do model with 100,000 open cases in the store (target
//! ≤ 100 MiB, ≤ 1 KiB a case): `cargo bench -p caseflow-projections --bench memory`.
//!
//! Heap bytes are counted by a counting global allocator (`stats_alloc`, which holds the
//! unsafe allocator code, so this crate stays within `unsafe_code = "forbid"`). The model's
//! size is what dropping it gives back; the runner's shared case fold is measured the same
//! way and reported beside it.

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::System;

use caseflow_projections::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::org;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const OPEN_CASES: usize = 100_000;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` and test harness probes: nothing to list.
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let (cases, model, fold) = rt.block_on(async {
        let (store, _) = support::store_with_open_cases(OPEN_CASES).await;
        let mut runner = ProjectionRunner::in_memory(store.clone(), org());
        let todo = runner.register(TodoProjection::new()).await.unwrap();
        runner.catch_up().await.unwrap();
        let cases = todo.read().unwrap().case_count();
        let held = |c: stats_alloc::Stats| c.bytes_deallocated.saturating_sub(c.bytes_allocated);
        let region = Region::new(GLOBAL);
        drop(runner);
        let fold = held(region.change());
        let region = Region::new(GLOBAL);
        drop(todo);
        let model = held(region.change());
        (cases, model, fold)
    });
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "memory/todo_model_100k_open_cases: {:.1} MiB for {cases} open cases ({} bytes a case; target <= 100 MiB, <= 1 KiB a case)",
        mib(model),
        model / cases.max(1)
    );
    println!(
        "memory/shared_case_fold: {:.1} MiB ({} bytes a case; full CaseState per open case, held by the runner)",
        mib(fold),
        fold / cases.max(1)
    );
}
