//! Tables (comfy-table) and JSON for the CLI's outputs.

use caseflow::Engine;
use caseflow::audit::{AuditReport, CaseSnapshot, human_duration};
use caseflow::domain::UnitId;
use caseflow::projections::{StatsReport, TodoItem};
use chrono::{DateTime, FixedOffset, Utc};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use serde_json::json;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

fn local(t: &DateTime<Utc>, offset: FixedOffset) -> String {
    t.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A to-do list as a table (at most `limit` rows).
pub fn todo_table(
    engine: &Engine,
    unit: &UnitId,
    now: DateTime<Utc>,
    items: &[TodoItem],
    limit: usize,
) -> String {
    let offset = engine.district().calendar.utc_offset();
    let overdue = items.iter().filter(|i| i.overdue).count();
    let name = engine
        .district()
        .org
        .unit(unit)
        .map(|u| u.name.clone())
        .unwrap_or_default();
    let mut t = table(&[
        "due", "", "action", "case", "stage", "title", "place", "priority",
    ]);
    for item in items.iter().take(limit) {
        let place = match &item.case.place.village {
            Some(v) => format!("{}/{}", item.case.place.locality, v),
            None => item.case.place.locality.to_string(),
        };
        let case = item.case.case_id.to_string();
        t.add_row(vec![
            item.due_at
                .as_ref()
                .map_or_else(|| "-".to_owned(), |d| local(d, offset)),
            if item.overdue {
                "OVERDUE".to_owned()
            } else {
                String::new()
            },
            item.action.to_string(),
            case,
            item.case.stage.to_string(),
            item.case.title.clone(),
            place,
            name_of(&item.priority),
        ]);
    }
    let more = if items.len() > limit {
        format!(
            "\n… and {} more (use `caseflow todo --unit {unit}` for the full list)",
            items.len() - limit
        )
    } else {
        String::new()
    };
    format!(
        "To-do list of {unit} {name} at {}: {} item(s), {overdue} overdue\n{t}{more}",
        local(&now, offset),
        items.len()
    )
}

/// A to-do list as JSON.
pub fn todo_json(unit: &UnitId, now: DateTime<Utc>, items: &[TodoItem]) -> String {
    let rows: Vec<_> = items
        .iter()
        .map(|i| {
            json!({
                "case_id": i.case.case_id,
                "title": i.case.title,
                "stage": i.case.stage,
                "kind": i.case.kind,
                "category": i.case.category,
                "locality": i.case.place.locality,
                "village": i.case.place.village,
                "zone": i.case.place.zone,
                "reporter_handle": i.case.reporter,
                "assignee": i.assignee,
                "action": i.action,
                "due_at": i.due_at,
                "overdue": i.overdue,
                "priority": i.priority,
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "unit": unit,
        "now": now,
        "total": items.len(),
        "overdue": items.iter().filter(|i| i.overdue).count(),
        "items": rows,
    }))
    .unwrap_or_default()
}

/// The headline statistics as tables.
pub fn stats_tables(r: &StatsReport) -> String {
    let mut out = String::new();
    let mut head = table(&["headline", "value"]);
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    head.add_row(vec!["cases".to_owned(), r.cases.to_string()]);
    head.add_row(vec!["open cases".to_owned(), r.open_cases.to_string()]);
    head.add_row(vec![
        "people disciplined".to_owned(),
        r.people_disciplined.to_string(),
    ]);
    head.add_row(vec![
        "rectifications ordered / completed / late / overdue".to_owned(),
        format!(
            "{} / {} / {} / {}",
            r.rectifications.ordered,
            r.rectifications.completed,
            r.rectifications.completed_late,
            r.rectifications.overdue
        ),
    ]);
    head.add_row(vec![
        "follow-up visits held / failed".to_owned(),
        format!(
            "{} / {}",
            r.follow_up_visits.held, r.follow_up_visits.failed
        ),
    ]);
    head.add_row(vec![
        "satisfaction (satisfied / basically / unsatisfied)".to_owned(),
        format!(
            "{} ({} / {} / {})",
            pct(r.satisfaction.rate),
            r.satisfaction.satisfied,
            r.satisfaction.basically_satisfied,
            r.satisfaction.unsatisfied
        ),
    ]);
    out.push_str(&format!(
        "Statistics at {}\n{head}\n",
        r.now.format("%Y-%m-%d %H:%M UTC")
    ));
    let mut by = table(&["by", "counts"]);
    let join = |pairs: Vec<(String, u64)>| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    by.add_row(vec![
        "demand list (category)".to_owned(),
        join(
            r.by_category
                .iter()
                .map(|(k, v)| (name_of(k), *v))
                .collect(),
        ),
    ]);
    by.add_row(vec![
        "stage".to_owned(),
        join(
            r.by_stage
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        ),
    ]);
    by.add_row(vec![
        "kind".to_owned(),
        join(r.by_kind.iter().map(|(k, v)| (name_of(k), *v)).collect()),
    ]);
    by.add_row(vec![
        "channel".to_owned(),
        join(r.by_channel.iter().map(|(k, v)| (name_of(k), *v)).collect()),
    ]);
    by.add_row(vec![
        "focus area".to_owned(),
        join(
            r.by_focus_area
                .iter()
                .map(|(k, v)| (name_of(k), *v))
                .collect(),
        ),
    ]);
    by.add_row(vec![
        "locality".to_owned(),
        join(
            r.by_locality
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        ),
    ]);
    by.add_row(vec![
        "clues by disposition".to_owned(),
        join(
            r.clues_by_disposition
                .iter()
                .map(|(k, v)| (name_of(k), *v))
                .collect(),
        ),
    ]);
    out.push_str(&format!("{by}\n"));
    let mut close = table(&["time to close", "closed", "median", "p90"]);
    for (k, c) in &r.time_to_close_by_kind {
        close.add_row(vec![
            format!("kind {}", name_of(k)),
            c.count.to_string(),
            human_duration(c.median.num_seconds()),
            human_duration(c.p90.num_seconds()),
        ]);
    }
    for (k, c) in &r.time_to_close_by_level {
        close.add_row(vec![
            format!("level {k}"),
            c.count.to_string(),
            human_duration(c.median.num_seconds()),
            human_duration(c.p90.num_seconds()),
        ]);
    }
    out.push_str(&format!("{close}\n"));
    let mut on_time: Vec<_> = r.on_time.iter().filter(|o| o.rate.is_some()).collect();
    on_time.sort_by(|a, b| {
        a.rate
            .partial_cmp(&b.rate)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut ot = table(&[
        "on-time rate (lowest 10)",
        "met",
        "missed",
        "open overdue",
        "rate",
    ]);
    for o in on_time.iter().take(10) {
        ot.add_row(vec![
            o.assignee.to_string(),
            o.met.to_string(),
            o.missed.to_string(),
            o.open_overdue.to_string(),
            pct(o.rate),
        ]);
    }
    out.push_str(&format!("{ot}"));
    out
}

/// A case's state and timeline as JSON.
pub fn case_json(snapshot: &CaseSnapshot, report: &AuditReport) -> String {
    let events: Vec<_> = report
        .cases
        .first()
        .map(|c| {
            c.events
                .iter()
                .filter(|e| e.version <= snapshot.version)
                .collect()
        })
        .unwrap_or_default();
    serde_json::to_string_pretty(&json!({
        "case_id": snapshot.case_id,
        "version": snapshot.version,
        "latest_version": snapshot.latest_version,
        "stage": snapshot.state.stage(),
        "state": public_state(snapshot),
        "timeline": events,
    }))
    .unwrap_or_default()
}

/// The case state without the reporter's protected contact (only its opaque handle).
fn public_state(snapshot: &CaseSnapshot) -> serde_json::Value {
    let mut value = serde_json::to_value(&snapshot.state).unwrap_or_default();
    if let Some(case) = value.get_mut("case").and_then(|c| c.as_object_mut()) {
        case.remove("reporter");
    }
    value
}

/// A case's state and timeline as tables.
pub fn case_tables(snapshot: &CaseSnapshot, report: &AuditReport, offset: FixedOffset) -> String {
    let mut out = String::new();
    let state = &snapshot.state;
    let mut head = table(&["case", &snapshot.case_id.to_string()]);
    head.add_row(vec![
        "version".to_owned(),
        format!("{} of {}", snapshot.version, snapshot.latest_version),
    ]);
    head.add_row(vec!["stage".to_owned(), state.stage().to_string()]);
    if let Some(c) = state.case() {
        head.add_row(vec!["title".to_owned(), c.summary.clone()]);
        head.add_row(vec![
            "kind / channel".to_owned(),
            format!("{} / {}", name_of(&c.kind), name_of(&c.channel)),
        ]);
        head.add_row(vec!["focus area".to_owned(), name_of(&c.focus_area)]);
        head.add_row(vec![
            "place".to_owned(),
            format!(
                "{}{} ({})",
                c.locality,
                c.village
                    .as_ref()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default(),
                c.zone
            ),
        ]);
        head.add_row(vec![
            "reporter".to_owned(),
            format!("handle {}", c.reporter_handle),
        ]);
        if let Some(lead) = c.lead_unit() {
            head.add_row(vec!["lead unit".to_owned(), lead.to_string()]);
        }
        for d in c.deadlines.values() {
            head.add_row(vec![
                format!("deadline {}", name_of(&d.kind)),
                format!(
                    "due {}{}",
                    local(&d.due_at, offset),
                    if d.urged.is_some() { " (urged)" } else { "" }
                ),
            ]);
        }
        if let Some(o) = &c.outcome {
            head.add_row(vec!["outcome".to_owned(), name_of(o)]);
        }
    }
    out.push_str(&format!("{head}\n"));
    let mut events = table(&["v", "when", "who", "what", "stage"]);
    if let Some(case) = report.cases.first() {
        for e in case.events.iter().filter(|e| e.version <= snapshot.version) {
            let stage = if e.stage_before == e.stage_after {
                e.stage_after.to_string()
            } else {
                format!("{} → {}", e.stage_before, e.stage_after)
            };
            events.add_row(vec![
                e.version.to_string(),
                local(&e.at, offset),
                e.actor.clone(),
                e.event_type.clone(),
                stage,
            ]);
        }
    }
    out.push_str(&format!("{events}"));
    out
}
