//! The HTML reports: one self-contained file (inline SVG, no scripts, no external files)
//! that reads on a phone as well as on a desk. [`html`] reports one run; [`comparison_html`]
//! compares two scenarios over paired replications: both backlogs on one chart, the paired
//! differences with their 95% confidence intervals, which differences are significant, and
//! the per-stage, per-limit and per-level figures side by side.

use std::fmt::Write as _;

use crate::kpi::{Summary, UnitKpi};
use crate::replicate::{Comparison, Delta};

use super::svg::{Bars, Diff, Line, PALETTE, bars, differences, esc, lines, num};

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Noto Sans SC','PingFang SC','Microsoft YaHei',sans-serif;\
max-width:960px;margin:1em auto;padding:0 12px;line-height:1.45}\
svg.chart{display:block;width:100%;height:auto;margin:1em 0}\
figure.empty{margin:1em 0;padding:.6em 1em;border:1px solid #ddd;border-radius:4px}\
figure.empty p{margin:.3em 0 0;color:#555}\
.table{overflow-x:auto}table{border-collapse:collapse;font-size:13px}\
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}td:first-child,th:first-child{text-align:left}\
tr.sig td{color:#b00}pre{font-size:11px;overflow-x:auto}\
.chart-scroll{overflow-x:auto}\
@media (max-width:600px){svg.chart{width:560px;max-width:none}}";

/// The page around `body`. On a phone each chart keeps a width at which its labels stay
/// readable (560 px) and scrolls sideways in its own box instead of shrinking.
fn page(title: &str, body: &str) -> String {
    let body = body
        .replace(
            "<svg class=\"chart\"",
            "<div class=\"chart-scroll\"><svg class=\"chart\"",
        )
        .replace("</svg>", "</svg></div>");
    format!(
        "<!DOCTYPE html><html lang=\"zh-Hans\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The busiest units first (by utilisation, then requests), with their names.
fn busiest(units: &[UnitKpi], n: usize) -> Vec<&UnitKpi> {
    let mut v: Vec<&UnitKpi> = units.iter().filter(|u| u.requests > 0).collect();
    v.sort_by(|a, b| {
        b.utilisation
            .total_cmp(&a.utilisation)
            .then(b.requests.cmp(&a.requests))
            .then(a.name.cmp(&b.name))
    });
    v.truncate(n);
    v
}

fn unit_label(u: &UnitKpi) -> String {
    if u.label.is_empty() || u.label == u.name {
        u.name.clone()
    } else {
        format!("{} ({})", u.label, u.name)
    }
}

fn backlog_lines(s: &Summary) -> Vec<Line<'static>> {
    type Get = fn(&crate::kpi::BacklogPoint) -> u64;
    let series: [(&str, Get); 5] = [
        ("全部 all open cases", |b| b.open),
        ("室 room", |b| b.room),
        ("组 team", |b| b.team),
        ("地 locality", |b| b.locality),
        ("村 village", |b| b.village),
    ];
    series
        .iter()
        .enumerate()
        .map(|(i, (name, get))| Line {
            name,
            color: if i == 0 { "#000" } else { PALETTE[i - 1] },
            points: s
                .backlog
                .iter()
                .map(|b| (b.hours / 24.0, get(b) as f64))
                .collect(),
            dashed: false,
        })
        .collect()
}

/// The report of one run.
pub fn html(s: &Summary) -> String {
    let c = &s.cases;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>模拟 Simulation: {}</h1><p>{} — seed {}, {} days from {}. {} cases arrived, {} closed, \
         {} still open at the end; {} people disciplined; satisfaction {}; time limits met {}.</p>",
        esc(&s.scenario),
        esc(&s.district),
        s.seed,
        s.horizon_days,
        esc(&s.start),
        c.arrived,
        c.closed,
        c.open_at_end,
        c.disciplined_people,
        pct(s.satisfaction_rate),
        pct(s.on_time_rate)
    );
    body.push_str(&lines(
        "在办案件 Open cases by the level they wait on",
        "day",
        "open cases",
        &backlog_lines(s),
    ));
    let stages: Vec<String> = s.stages.iter().map(|st| st.label.clone()).collect();
    body.push_str(&bars(
        "等待人员 Mean wait for staff per stage",
        "hours",
        &stages,
        &[Bars {
            name: "mean",
            color: PALETTE[0],
            values: s.stages.iter().map(|st| st.wait_mean_hours).collect(),
        }],
        "No stage's work waited for staff.",
    ));
    body.push_str(&bars(
        "环节用时 Time in stage",
        "days",
        &stages,
        &[
            Bars {
                name: "mean",
                color: PALETTE[4],
                values: s.stages.iter().map(|st| st.time_mean_days).collect(),
            },
            Bars {
                name: "90th percentile",
                color: "#c5b0d5",
                values: s.stages.iter().map(|st| st.time_p90_days).collect(),
            },
        ],
        "No case spent time in any stage.",
    ));
    deadline_charts(&mut body, s);
    let top = busiest(&s.units, 15);
    let names: Vec<String> = top.iter().map(|u| unit_label(u)).collect();
    body.push_str(&bars(
        "最忙单位 Utilisation of the busiest units",
        "% of working hours",
        &names,
        &[Bars {
            name: "utilisation",
            color: PALETTE[2],
            values: top.iter().map(|u| u.utilisation * 100.0).collect(),
        }],
        "No unit did any work.",
    ));
    let _ = write!(
        body,
        "<h2>Figures</h2><pre>{}</pre>",
        esc(&super::text(s, false))
    );
    page(&format!("Caseflow simulation: {}", s.scenario), &body)
}

fn deadline_charts(body: &mut String, s: &Summary) {
    let limits: Vec<String> = s.deadlines.iter().map(|d| d.label.clone()).collect();
    body.push_str(&bars(
        "超时 Time limits missed",
        "cases",
        &limits,
        &[Bars {
            name: "breached",
            color: PALETTE[3],
            values: s.deadlines.iter().map(|d| d.breached as f64).collect(),
        }],
        "No breaches: every time limit was met.",
    ));
    let who = if s.engine_urgings.is_some() {
        "by the engine's deadline watcher"
    } else {
        "by the model's deadline watcher"
    };
    body.push_str(&bars(
        &format!("督办 Urgings {who}"),
        "urgings",
        &limits,
        &[
            Bars {
                name: "urged",
                color: PALETTE[1],
                values: s.deadlines.iter().map(|d| d.urged as f64).collect(),
            },
            Bars {
                name: "escalated",
                color: PALETTE[3],
                values: s.deadlines.iter().map(|d| d.escalated as f64).collect(),
            },
        ],
        "No urgings: no time limit was missed long enough to be urged.",
    ));
}

/// Metric names of [`Summary::scalars`] in the district's language.
pub fn metric_label(name: &str) -> String {
    let fixed = [
        ("cases.arrived", "收案 cases arrived"),
        ("cases.closed", "办结 cases closed"),
        ("cases.open_at_end", "在办 open at the end"),
        ("cases.reopened", "重新办理 reopenings"),
        ("cases.cross_inspections", "交叉互查 cross-inspections"),
        ("cases.disciplined_people", "处理处分 people disciplined"),
        ("cases.follow_ups_failed", "回头看未通过 failed visits"),
        ("satisfaction_rate", "满意率 satisfaction rate"),
        ("on_time_rate", "按期率 time limits met"),
        ("backlog.peak_open", "在办峰值 backlog peak"),
    ];
    if let Some((_, l)) = fixed.iter().find(|(n, _)| *n == name) {
        return (*l).to_owned();
    }
    let parts: Vec<&str> = name.split('.').collect();
    let stage = |s: &str| {
        crate::scenario::WORKING_STAGES
            .iter()
            .find(|x| x.as_str() == s)
            .map(|x| crate::labels::stage(*x))
            .unwrap_or_else(|| s.to_owned())
    };
    match parts.as_slice() {
        ["stage", s, m] => format!("{} — {}", stage(s), m.replace('_', " ")),
        ["limit", l, m] => format!("{l} limit — {m}").replace('_', " "),
        ["kind", k, m] => format!("{k} — {}", m.replace('_', " ")),
        _ => name.replace('_', " "),
    }
}

/// The differences shown in the comparison's chart: the headline figures.
const HEADLINE: [&str; 10] = [
    "cases.closed",
    "cases.open_at_end",
    "on_time_rate",
    "satisfaction_rate",
    "backlog.peak_open",
    "stage.intake.time_mean_days",
    "stage.classification.time_mean_days",
    "stage.handling.time_mean_days",
    "stage.rectification.time_mean_days",
    "stage.review.time_mean_days",
];

fn diff_of(d: &Delta) -> Diff {
    let base = d.a.mean.abs();
    let scale = if base > 1e-12 { 100.0 / base } else { 0.0 };
    let hw = d.delta.half_width;
    let text = if hw.is_finite() {
        format!("{} ± {}", num(d.delta.mean), num(hw))
    } else {
        num(d.delta.mean)
    };
    Diff {
        label: metric_label(&d.metric),
        mean: d.delta.mean * scale,
        half_width: hw * scale,
        significant: d.significant(),
        text,
    }
}

/// Mean backlog over the replications, per sample time.
fn mean_backlog(runs: &[Summary]) -> Vec<(f64, f64)> {
    let n = runs.iter().map(|r| r.backlog.len()).min().unwrap_or(0);
    (0..n)
        .map(|i| {
            let open: f64 = runs.iter().map(|r| r.backlog[i].open as f64).sum();
            (runs[0].backlog[i].hours / 24.0, open / runs.len() as f64)
        })
        .collect()
}

/// The comparison report of B against A.
pub fn comparison_html(c: &Comparison) -> String {
    let (a_runs, b_runs) = match (&c.runs_a, &c.runs_b) {
        (Some(a), Some(b)) => (a.runs.as_slice(), b.runs.as_slice()),
        _ => (&[][..], &[][..]),
    };
    let a_name = format!("A: {}", c.a);
    let b_name = format!("B: {}", c.b);
    let mut body = String::new();
    let significant = c.deltas.iter().filter(|d| d.significant()).count();
    let _ = write!(
        body,
        "<h1>比较 Comparison: {} vs {}</h1><p>{} paired replications with common random numbers \
         (seeds {}–{}): replication <i>r</i> of both scenarios draws the same arrivals, service \
         times and decisions where the scenarios agree, so each difference B − A is paired. \
         {significant} of {} differences are significant (their 95% interval excludes 0, marked *).</p>",
        esc(&c.a),
        esc(&c.b),
        c.seeds.len(),
        c.seeds.first().copied().unwrap_or(0),
        c.seeds.last().copied().unwrap_or(0),
        c.deltas.len()
    );
    body.push_str(&lines(
        "在办案件 Open cases, mean of the replications",
        "day",
        "open cases",
        &[
            Line {
                name: &a_name,
                color: PALETTE[0],
                points: mean_backlog(a_runs),
                dashed: false,
            },
            Line {
                name: &b_name,
                color: PALETTE[1],
                points: mean_backlog(b_runs),
                dashed: true,
            },
        ],
    ));
    let rows: Vec<Diff> = HEADLINE
        .iter()
        .filter_map(|m| c.deltas.iter().find(|d| d.metric == *m))
        .map(diff_of)
        .collect();
    body.push_str(&differences(
        "差异 Paired differences B − A (95% CI)",
        &rows,
        "plotted as % of A's mean; red * = significant",
    ));
    side_by_side(&mut body, c, &a_name, &b_name);
    delta_table(&mut body, c);
    page(&format!("Caseflow comparison: {} vs {}", c.a, c.b), &body)
}

/// Estimates of the metrics `names` under A and B, as two bar groups.
fn pair<'a>(c: &Comparison, names: &[String], a: &'a str, b: &'a str) -> [Bars<'a>; 2] {
    let get = |m: &String, pick: fn(&Delta) -> f64| {
        c.deltas.iter().find(|d| &d.metric == m).map_or(0.0, pick)
    };
    [
        Bars {
            name: a,
            color: PALETTE[0],
            values: names.iter().map(|m| get(m, |d| d.a.mean)).collect(),
        },
        Bars {
            name: b,
            color: PALETTE[1],
            values: names.iter().map(|m| get(m, |d| d.b.mean)).collect(),
        },
    ]
}

fn side_by_side(body: &mut String, c: &Comparison, a: &str, b: &str) {
    let stages = crate::scenario::WORKING_STAGES;
    let stage_labels: Vec<String> = stages.iter().map(|s| crate::labels::stage(*s)).collect();
    let names: Vec<String> = stages
        .iter()
        .map(|s| format!("stage.{}.time_mean_days", s.as_str()))
        .collect();
    body.push_str(&bars(
        "环节用时 Mean time in stage",
        "days",
        &stage_labels,
        &pair(c, &names, a, b),
        "No case spent time in any stage.",
    ));
    let kinds = caseflow::domain::DeadlineKind::ALL;
    let limit_labels: Vec<String> = kinds.iter().map(|k| crate::labels::deadline(*k)).collect();
    let names: Vec<String> = kinds
        .iter()
        .map(|k| format!("limit.{}.breached", crate::scenario::snake_name(k)))
        .collect();
    body.push_str(&bars(
        "超时 Time limits missed (mean per replication)",
        "cases",
        &limit_labels,
        &pair(c, &names, a, b),
        "No breaches in either scenario: every time limit was met.",
    ));
    let names: Vec<String> = kinds
        .iter()
        .map(|k| format!("limit.{}.urged", crate::scenario::snake_name(k)))
        .collect();
    body.push_str(&bars(
        "督办 Urgings (mean per replication)",
        "urgings",
        &limit_labels,
        &pair(c, &names, a, b),
        "No urgings in either scenario.",
    ));
    let levels = crate::layout::LEVELS;
    let level_labels: Vec<String> = levels.iter().map(|l| crate::labels::level(*l)).collect();
    let names: Vec<String> = levels
        .iter()
        .map(|l| format!("{}.utilisation", crate::scenario::snake_name(l)))
        .collect();
    let mut groups = pair(c, &names, a, b);
    for g in &mut groups {
        for v in &mut g.values {
            *v *= 100.0;
        }
    }
    body.push_str(&bars(
        "人员利用率 Utilisation by level",
        "% of working hours",
        &level_labels,
        &groups,
        "No unit did any work in either scenario.",
    ));
}

fn delta_table(body: &mut String, c: &Comparison) {
    let _ = write!(
        body,
        "<h2>All figures</h2><div class=\"table\"><table><tr><th>metric</th><th>A: {}</th>\
         <th>B: {}</th><th>B − A (95% CI)</th><th>significant</th></tr>",
        esc(&c.a),
        esc(&c.b)
    );
    let est = |e: &crate::stats::Estimate| {
        if e.half_width.is_finite() {
            format!("{} ± {}", num(e.mean), num(e.half_width))
        } else {
            num(e.mean)
        }
    };
    for d in &c.deltas {
        let sig = d.significant();
        let _ = write!(
            body,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if sig { " class=\"sig\"" } else { "" },
            esc(&metric_label(&d.metric)),
            est(&d.a),
            est(&d.b),
            est(&d.delta),
            if sig { "*" } else { "" }
        );
    }
    body.push_str("</table></div>");
}
