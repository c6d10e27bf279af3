//! Outputs: text tables, JSON, CSV time series, and self-contained HTML reports with SVG
//! charts (`html` for one run, `comparison_html` for two scenarios; the charts in `svg`).

mod html;
pub mod svg;

pub use html::{comparison_html, html, metric_label};

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

use crate::kpi::{Summary, UnitKpi};
use crate::replicate::{Comparison, Replications};
use crate::stats::Estimate;

fn f1(x: f64) -> String {
    format!("{x:.1}")
}
fn f2(x: f64) -> String {
    format!("{x:.2}")
}
fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    for i in 1..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

fn group_table(title: &str, rows: &[UnitKpi]) -> String {
    let mut t = table(&[
        title,
        "staff",
        "requests",
        "done",
        "wait mean h",
        "wait p90 h",
        "queue mean",
        "queue max",
        "utilisation",
    ]);
    for r in rows {
        t.add_row(vec![
            r.name.clone(),
            r.staff.to_string(),
            r.requests.to_string(),
            r.completed.to_string(),
            f1(r.wait_mean_hours),
            f1(r.wait_p90_hours),
            f2(r.queue_mean),
            r.queue_max.to_string(),
            pct(r.utilisation),
        ]);
    }
    t.to_string()
}

/// The KPIs of one run as text tables. `units` adds the per-unit table (long for 100+ units).
pub fn text(summary: &Summary, units: bool) -> String {
    let s = summary;
    let c = &s.cases;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Scenario `{}`, seed {}, {} days from {} ({} virtual hours simulated)",
        s.scenario,
        s.seed,
        s.horizon_days,
        s.start,
        s.simulated_hours.round()
    );
    let _ = writeln!(
        out,
        "Cases: {} arrived, {} accepted, {} declined, {} transferred, {} merged, {} closed, {} open at end, {} reopened",
        c.arrived,
        c.accepted,
        c.declined,
        c.transferred,
        c.merged,
        c.closed,
        c.open_at_end,
        c.reopened
    );
    let _ = writeln!(
        out,
        "Findings: {} substantiated, {} partly, {} not; {} people disciplined; {} cross-inspections; \
         follow-ups {} ({} failed); satisfaction {}/{} = {}",
        c.substantiated,
        c.partly_substantiated,
        c.not_substantiated,
        c.disciplined_people,
        c.cross_inspections,
        c.follow_ups,
        c.follow_ups_failed,
        c.satisfied,
        c.satisfaction_asked,
        pct(s.satisfaction_rate)
    );
    let channels: Vec<String> = s.channels.iter().map(|(n, k)| format!("{n} {k}")).collect();
    let _ = writeln!(out, "Arrivals by channel: {}", channels.join(", "));
    let mut t = table(&[
        "stage",
        "entered",
        "left",
        "wait mean h",
        "wait p90 h",
        "time mean d",
        "time p90 d",
    ]);
    for st in &s.stages {
        t.add_row(vec![
            st.label.clone(),
            st.entered.to_string(),
            st.completed.to_string(),
            f1(st.wait_mean_hours),
            f1(st.wait_p90_hours),
            f1(st.time_mean_days),
            f1(st.time_p90_days),
        ]);
    }
    let _ = writeln!(out, "{t}");
    let mut t = table(&[
        "time limit",
        "opened",
        "closed",
        "breached",
        "urged",
        "escalated",
        "overdue at end",
    ]);
    for d in &s.deadlines {
        t.add_row(vec![
            d.label.clone(),
            d.opened.to_string(),
            d.closed.to_string(),
            d.breached.to_string(),
            d.urged.to_string(),
            d.escalated.to_string(),
            d.overdue_at_end.to_string(),
        ]);
    }
    let _ = writeln!(out, "{t}");
    let who = if s.engine_urgings.is_some() {
        "the engine's deadline watcher (checked against the model's)"
    } else {
        "the model's deadline watcher"
    };
    let _ = writeln!(
        out,
        "Time limits met: {}; urgings by {who}.",
        pct(s.on_time_rate)
    );
    let _ = writeln!(out, "{}", group_table("level", &s.levels));
    let _ = writeln!(out, "{}", group_table("zone", &s.zones));
    if units {
        let _ = writeln!(out, "{}", group_table("unit", &s.units));
    }
    let mut t = table(&[
        "kind",
        "arrived",
        "closed",
        "open at end",
        "close mean d",
        "close p90 d",
    ]);
    for k in &s.kinds {
        t.add_row(vec![
            k.label.clone(),
            k.arrived.to_string(),
            k.closed.to_string(),
            k.open_at_end.to_string(),
            f1(k.close_mean_days),
            f1(k.close_p90_days),
        ]);
    }
    let _ = writeln!(out, "{t}");
    let peak = s.backlog.iter().max_by_key(|b| b.open);
    if let Some(p) = peak {
        let _ = writeln!(out, "Backlog peak: {} open cases on {}", p.open, p.date);
    }
    if let Some(d) = &s.digest {
        let what = if s.engine_events.is_some() {
            "event log"
        } else {
            "step log"
        };
        let _ = writeln!(out, "{} steps; {what} SHA-256 {d}", s.steps);
    }
    out
}

fn est(e: &Estimate) -> String {
    if e.half_width.is_finite() {
        format!("{:.3} ± {:.3}", e.mean, e.half_width)
    } else {
        format!("{:.3}", e.mean)
    }
}

/// Replication estimates as a table.
pub fn replications_text(r: &Replications) -> String {
    let mut t = table(&["metric", "mean ± 95% CI"]);
    for (name, e) in &r.metrics {
        t.add_row(vec![name.clone(), est(e)]);
    }
    format!(
        "Scenario `{}`, {} replications (seeds {:?})\n{t}\n",
        r.scenario,
        r.seeds.len(),
        r.seeds
    )
}

/// A comparison as a table.
pub fn comparison_text(c: &Comparison) -> String {
    let mut t = table(&[
        "metric",
        &format!("A: {}", c.a),
        &format!("B: {}", c.b),
        "B − A (95% CI)",
        "",
    ]);
    for d in &c.deltas {
        t.add_row(vec![
            d.metric.clone(),
            est(&d.a),
            est(&d.b),
            est(&d.delta),
            if d.significant() {
                "*".into()
            } else {
                String::new()
            },
        ]);
    }
    format!(
        "Comparison with common random numbers, {} paired replications (seeds {:?}); * = CI excludes 0\n{t}\n",
        c.seeds.len(),
        c.seeds
    )
}

/// The backlog time series as CSV.
pub fn backlog_csv(s: &Summary) -> String {
    let mut out = String::from("hours,date,open,room,team,locality,village,queued\n");
    for b in &s.backlog {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            b.hours, b.date, b.open, b.room, b.team, b.locality, b.village, b.queued
        );
    }
    out
}
