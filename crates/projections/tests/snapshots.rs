//! Snapshots of the to-do lists, one per level (plus the zone and department views), for a
//! small fixed history in the sample district (`examples/district.toml`). The history is
//! made by the decide-driven generator from a fixed seed, so it is the same on every run.
//! Review changes with `cargo insta review` (or `INSTA_UPDATE=always cargo test`).

mod support;

use std::sync::Arc;

use caseflow_domain::{Level, ZoneId};
use caseflow_projections::*;
use caseflow_store::MemoryStore;
use support::{HistoryGen, org, seeded};

struct Fixture {
    todo: ProjectionHandle<TodoProjection>,
    now: chrono::DateTime<chrono::Utc>,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let mut g = HistoryGen::new(2026);
        g.new_case_percent = 12;
        g.pace = 8;
        g.append(store.as_ref(), 260, seeded(2026)).await;
        let mut runner = ProjectionRunner::in_memory(store, org());
        let p = StandardProjections::register(&mut runner).await.unwrap();
        runner.catch_up().await.unwrap();
        // Five days after the last event: some items are overdue, some not.
        Fixture {
            todo: p.todo,
            now: g.now + chrono::Duration::days(5),
        }
    })
}

fn render(items: &[TodoItem]) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&item.to_string());
        out.push('\n');
    }
    if items.is_empty() {
        out.push_str("(nothing to do)\n");
    }
    out
}

fn level(level: Level) -> String {
    let f = fixture();
    let todo = f.todo.read().unwrap();
    format!(
        "now = {}\n{}",
        f.now,
        render(&todo.for_level(&org(), level, f.now))
    )
}

#[test]
fn room_to_do_lists() {
    insta::assert_snapshot!(level(Level::Room));
}

#[test]
fn team_to_do_lists() {
    insta::assert_snapshot!(level(Level::Team));
}

#[test]
fn locality_to_do_lists() {
    insta::assert_snapshot!(level(Level::Locality));
}

#[test]
fn village_officer_to_do_lists() {
    insta::assert_snapshot!(level(Level::Village));
}

#[test]
fn zone_view() {
    let f = fixture();
    let todo = f.todo.read().unwrap();
    let items = todo.for_zone(&org(), &ZoneId::new("zone-1"), f.now);
    insta::assert_snapshot!(format!("now = {}\n{}", f.now, render(&items)));
}

#[test]
fn partner_department_view() {
    let f = fixture();
    let todo = f.todo.read().unwrap();
    insta::assert_snapshot!(format!(
        "now = {}\n{}",
        f.now,
        render(&todo.for_departments(f.now))
    ));
}

#[test]
fn counts_per_unit() {
    let f = fixture();
    let todo = f.todo.read().unwrap();
    let mut out = String::new();
    for (assignee, c) in todo.counts(f.now) {
        out.push_str(&format!(
            "{assignee}: {} items, {} overdue\n",
            c.total, c.overdue
        ));
    }
    insta::assert_snapshot!(out);
}
