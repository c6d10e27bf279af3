//! Outputs: text tables, JSON, CSV time series, and a self-contained HTML report with SVG
//! charts drawn by `plotters`.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use plotters::prelude::*;

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
        "breaches",
        "urgings",
    ]);
    for st in &s.stages {
        t.add_row(vec![
            st.stage.clone(),
            st.entered.to_string(),
            st.completed.to_string(),
            f1(st.wait_mean_hours),
            f1(st.wait_p90_hours),
            f1(st.time_mean_days),
            f1(st.time_p90_days),
            st.breaches.to_string(),
            st.urgings.to_string(),
        ]);
    }
    let _ = writeln!(out, "{t}");
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
            k.kind.clone(),
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

type Series = (&'static str, RGBColor, fn(&crate::kpi::BacklogPoint) -> u64);

fn svg_backlog(s: &Summary) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 360)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let days = s
            .backlog
            .last()
            .map(|b| b.hours / 24.0)
            .unwrap_or(1.0)
            .max(1.0);
        let ymax = s.backlog.iter().map(|b| b.open).max().unwrap_or(1).max(1) as f64 * 1.1;
        let chart = ChartBuilder::on(&root)
            .caption("Open cases by the level they wait on", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..days, 0f64..ymax);
        if let Ok(mut chart) = chart {
            let _ = chart
                .configure_mesh()
                .x_desc("day")
                .y_desc("open cases")
                .draw();
            let series: [Series; 5] = [
                ("all", BLACK, |b| b.open),
                ("room", RGBColor(31, 119, 180), |b| b.room),
                ("team", RGBColor(255, 127, 14), |b| b.team),
                ("locality", RGBColor(44, 160, 44), |b| b.locality),
                ("village", RGBColor(214, 39, 40), |b| b.village),
            ];
            for (name, color, get) in series {
                let pts: Vec<(f64, f64)> = s
                    .backlog
                    .iter()
                    .map(|b| (b.hours / 24.0, get(b) as f64))
                    .collect();
                if let Ok(a) = chart.draw_series(LineSeries::new(pts, color.stroke_width(2))) {
                    a.label(name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                }
            }
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw();
        }
        let _ = root.present();
    }
    svg
}

fn svg_bars(title: &str, unit: &str, bars: &[(String, f64)], color: RGBColor) -> String {
    let mut svg = String::new();
    {
        let height = 60 + 22 * bars.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let xmax = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.15;
        let n = bars.len().max(1);
        let chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(120)
            .build_cartesian_2d(0f64..xmax, (0..n).into_segmented());
        if let Ok(mut chart) = chart {
            let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
            let _ = chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc(unit)
                .y_labels(n)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .draw();
            let _ = chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*v, SegmentValue::Exact(i + 1)),
                    ],
                    color.mix(0.8).filled(),
                )
            }));
        }
        let _ = root.present();
    }
    svg
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A self-contained HTML report (inline SVG, no scripts, no external files).
pub fn html(s: &Summary) -> String {
    let waits: Vec<(String, f64)> = s
        .stages
        .iter()
        .map(|st| (st.stage.clone(), st.wait_mean_hours))
        .collect();
    let p90: Vec<(String, f64)> = s
        .stages
        .iter()
        .map(|st| (st.stage.clone(), st.time_mean_days))
        .collect();
    // Units sorted by utilisation; villages are many and mostly idle, so show the busiest 40.
    let mut units: Vec<&UnitKpi> = s.units.iter().collect();
    units.sort_by(|a, b| {
        b.utilisation
            .total_cmp(&a.utilisation)
            .then(a.name.cmp(&b.name))
    });
    let util: Vec<(String, f64)> = units
        .iter()
        .take(40)
        .map(|u| (u.name.clone(), u.utilisation * 100.0))
        .collect();
    let breaches: Vec<(String, f64)> = s
        .stages
        .iter()
        .map(|st| (st.stage.clone(), st.breaches as f64))
        .collect();
    let mut body = String::new();
    let c = &s.cases;
    let _ = write!(
        body,
        "<h1>Simulation: {}</h1><p>Seed {}, {} days from {}. {} cases arrived, {} closed, {} still open at the end; \
         {} people disciplined; satisfaction {}.</p>",
        esc(&s.scenario),
        s.seed,
        s.horizon_days,
        esc(&s.start),
        c.arrived,
        c.closed,
        c.open_at_end,
        c.disciplined_people,
        pct(s.satisfaction_rate)
    );
    body.push_str(&svg_backlog(s));
    body.push_str(&svg_bars(
        "Mean wait for staff per stage",
        "hours",
        &waits,
        RGBColor(31, 119, 180),
    ));
    body.push_str(&svg_bars(
        "Mean time in stage",
        "days",
        &p90,
        RGBColor(148, 103, 189),
    ));
    body.push_str(&svg_bars(
        "Time-limit breaches per stage",
        "cases",
        &breaches,
        RGBColor(214, 39, 40),
    ));
    body.push_str(&svg_bars(
        "Utilisation per unit (busiest 40)",
        "% of working hours",
        &util,
        RGBColor(44, 160, 44),
    ));
    let _ = write!(body, "<h2>Figures</h2><pre>{}</pre>", esc(&text(s, false)));
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Caseflow simulation: {}</title>\
         <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}svg{{display:block;margin:1em 0}}\
         pre{{font-size:12px}}</style></head><body>{body}</body></html>\n",
        esc(&s.scenario)
    )
}
