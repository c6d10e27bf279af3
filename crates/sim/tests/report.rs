//! The HTML reports' charts say what they show: every bar carries its category's label in
//! the district's language, an empty chart is a sentence ("No breaches"), the busiest units
//! come first with their names, and the comparison report puts both scenarios on one chart
//! with the paired differences labelled.

use std::path::PathBuf;

use caseflow::domain::Stage;
use caseflow_sim::scenario::WORKING_STAGES;
use caseflow_sim::{Scenario, compare, labels, report, run_once};

fn scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name);
    Scenario::from_path(&path).unwrap()
}

/// The texts of the `<text class="category">` elements of the chart titled `title`.
fn categories(html: &str, title: &str) -> Vec<String> {
    let Some(start) = html.find(&format!(">{title}</text>")) else {
        return Vec::new();
    };
    let chart = &html[start
        ..html[start..]
            .find("</svg>")
            .map_or(html.len(), |e| start + e)];
    chart
        .split("<text class=\"category\"")
        .skip(1)
        .filter_map(|t| {
            let t = &t[t.find('>')? + 1..];
            Some(t[..t.find("</text>")?].to_owned())
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
}

#[test]
fn every_bar_is_labelled_with_its_category_in_the_district_s_language() {
    let s = scenario("demo.toml");
    let summary = run_once(&s, 42).unwrap();
    let html = report::html(&summary);
    let stage_labels: Vec<String> = WORKING_STAGES.iter().map(|s| labels::stage(*s)).collect();
    let time = categories(&html, "环节用时 Time in stage");
    assert_eq!(
        time.iter().map(|t| unescape(t)).collect::<Vec<_>>(),
        stage_labels
    );
    assert!(stage_labels[0].starts_with("受理"), "{}", stage_labels[0]);
    assert_eq!(labels::stage(Stage::Intake), stage_labels[0]);

    // The busiest units first, by name (the district's name with the unit id).
    let busiest = categories(&html, "最忙单位 Utilisation of the busiest units");
    assert!(!busiest.is_empty());
    let mut units: Vec<_> = summary.units.iter().filter(|u| u.requests > 0).collect();
    units.sort_by(|a, b| b.utilisation.total_cmp(&a.utilisation));
    let top = units[0];
    assert_eq!(
        unescape(&busiest[0]),
        format!("{} ({})", top.label, top.name)
    );
    assert!(
        !top.label.is_empty() && top.label != top.name,
        "units carry the district's names"
    );
}

#[test]
fn a_run_without_breaches_says_so_instead_of_drawing_an_empty_chart() {
    let s = scenario("mmc.toml");
    let summary = run_once(&s, 7).unwrap();
    let html = report::html(&summary);
    let breached: u64 = summary.deadlines.iter().map(|d| d.breached).sum();
    if breached == 0 {
        assert!(html.contains("No breaches: every time limit was met."));
        assert!(categories(&html, "超时 Time limits missed").is_empty());
    } else {
        let limits = categories(&html, "超时 Time limits missed");
        assert_eq!(limits.len(), summary.deadlines.len());
    }
}

#[test]
fn the_comparison_report_shows_both_scenarios_and_labelled_differences() {
    let mut a = scenario("demo.toml");
    let mut b = scenario("demo.toml");
    a.simulation.horizon_days = 30;
    b.simulation.horizon_days = 30;
    b.simulation.name = "demo-more-staff".into();
    b.staffing.per_level.insert("locality".into(), 6);
    let c = compare(&a, &b, 1, 4).unwrap();
    let html = report::comparison_html(&c);
    assert!(html.contains("A: demo") && html.contains("B: demo-more-staff"));
    let rows = categories(&html, "差异 Paired differences B − A (95% CI)");
    assert!(
        rows.iter().any(|r| r.contains("按期率")),
        "the differences are labelled in the district's language: {rows:?}"
    );
}
