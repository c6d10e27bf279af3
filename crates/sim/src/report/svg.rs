//! Small SVG charts for the HTML reports: line charts, labelled horizontal bars (one or two
//! series), and paired differences with confidence intervals. Written by hand rather than by
//! a plotting crate so that every bar carries its category and value as text (readable, and
//! checkable by a test), charts scale to a phone's width (a `viewBox`, no fixed width), labels
//! may be Chinese, and an empty chart is replaced by a sentence.

use std::fmt::Write as _;

/// XML-escapes text for an SVG or HTML text node or attribute.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colours of the series (A, B, then more).
pub const PALETTE: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

const WIDTH: f64 = 720.0;
const FONT: &str =
    "font-family=\"'Noto Sans CJK SC','Noto Sans SC','PingFang SC','Microsoft YaHei',sans-serif\"";

fn open(height: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" \
         role=\"img\" aria-label=\"{t}\" {FONT} font-size=\"14\">\
         <title>{t}</title><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <text x=\"8\" y=\"20\" font-size=\"16\" font-weight=\"bold\">{t}</text>",
        t = esc(title),
    );
    s
}

/// A number as a short label (no "0.0 0.0 0.0" axes: integers stay integers).
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x.abs() >= 100.0 || (x.fract() == 0.0 && x.abs() < 1e15) {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// "Nice" axis ticks from 0 (or `lo`) to at least `hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(mag * 10.0);
    let start = (lo / step).floor() * step;
    let mut t = Vec::new();
    let mut v = start;
    while v <= hi + step * 0.999 && t.len() < 12 {
        t.push(v);
        v += step;
    }
    t
}

/// One line of a line chart.
pub struct Line<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Colour.
    pub color: &'a str,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Dashed (for a second group of series).
    pub dashed: bool,
}

/// A line chart with labelled axes and a legend.
pub fn lines(title: &str, x_label: &str, y_label: &str, series: &[Line<'_>]) -> String {
    let all = series.iter().flat_map(|l| l.points.iter());
    let (mut x_hi, mut y_hi) = (1.0f64, 1.0f64);
    for (x, y) in all {
        x_hi = x_hi.max(*x);
        y_hi = y_hi.max(*y);
    }
    let (left, right, top, bottom) = (60.0, 20.0, 40.0, 70.0);
    let legend_rows = series.len().div_ceil(3) as f64;
    let height = 320.0 + legend_rows * 18.0;
    let plot_h = height - top - bottom - legend_rows * 18.0;
    let plot_w = WIDTH - left - right;
    let yt = ticks(0.0, y_hi);
    let y_top = *yt.last().unwrap_or(&y_hi);
    let xt = ticks(0.0, x_hi);
    let x_top = *xt.last().unwrap_or(&x_hi);
    let px = |x: f64| left + x / x_top * plot_w;
    let py = |y: f64| top + plot_h - y / y_top * plot_h;
    let mut s = open(height, title);
    for y in &yt {
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            py(*y) + 4.0,
            num(*y),
            y0 = py(*y)
        );
    }
    for x in &xt {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            px(*x),
            top + plot_h + 16.0,
            num(*x)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{b}\" stroke=\"#333\"/>\
         <line x1=\"{left}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\" stroke=\"#333\"/>\
         <text x=\"{cx}\" y=\"{xl}\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate(14 {cy}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        esc(x_label),
        esc(y_label),
        b = top + plot_h,
        r = left + plot_w,
        cx = left + plot_w / 2.0,
        xl = top + plot_h + 34.0,
        cy = top + plot_h / 2.0
    );
    for l in series {
        let path: Vec<String> = l
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let dash = if l.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            l.color,
            path.join(" ")
        );
    }
    for (i, l) in series.iter().enumerate() {
        let (col, row) = ((i % 3) as f64, (i / 3) as f64);
        let x = left + col * (plot_w / 3.0);
        let y = height - legend_rows * 18.0 - 8.0 + row * 18.0;
        let dash = if l.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<line x1=\"{x}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"3\"{dash}/>\
             <text class=\"legend\" x=\"{}\" y=\"{y:.1}\">{}</text>",
            x + 22.0,
            y - 4.0,
            y - 4.0,
            l.color,
            x + 28.0,
            esc(l.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// One group of bars (a scenario).
pub struct Bars<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Colour.
    pub color: &'a str,
    /// One value per category.
    pub values: Vec<f64>,
}

/// Horizontal bars: each category's label on its row, each bar's value at its end. When
/// every value is zero the chart is a sentence (`empty`) instead of an empty axis.
pub fn bars(
    title: &str,
    unit: &str,
    categories: &[String],
    groups: &[Bars<'_>],
    empty: &str,
) -> String {
    let max = groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .fold(0.0f64, f64::max);
    if max.is_nan() || max <= 0.0 || categories.is_empty() {
        return format!(
            "<figure class=\"empty\"><figcaption><b>{}</b></figcaption><p class=\"empty-note\">{}</p></figure>",
            esc(title),
            esc(empty)
        );
    }
    let label_w = 250.0;
    let (right, top) = (70.0, 34.0);
    let bar_h = 16.0;
    let row_h = bar_h * groups.len() as f64 + 10.0;
    let legend = if groups.len() > 1 { 22.0 } else { 0.0 };
    let height = top + row_h * categories.len() as f64 + 26.0 + legend;
    let plot_w = WIDTH - label_w - right;
    let mut s = open(height, title);
    for (i, cat) in categories.iter().enumerate() {
        let y0 = top + row_h * i as f64;
        let _ = write!(
            s,
            "<text class=\"category\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y0 + row_h / 2.0 + 4.0,
            esc(cat)
        );
        for (g, group) in groups.iter().enumerate() {
            let v = group.values.get(i).copied().unwrap_or(0.0);
            let w = (v / max * plot_w).max(0.0);
            let y = y0 + 5.0 + bar_h * g as f64;
            let _ = write!(
                s,
                "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
                 <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                bar_h - 2.0,
                group.color,
                label_w + w + 4.0,
                y + bar_h - 5.0,
                num(v)
            );
        }
    }
    let axis_y = top + row_h * categories.len() as f64;
    let _ = write!(
        s,
        "<line x1=\"{label_w}\" x2=\"{label_w}\" y1=\"{top}\" y2=\"{axis_y}\" stroke=\"#333\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        label_w + plot_w / 2.0,
        axis_y + 18.0,
        esc(unit)
    );
    if groups.len() > 1 {
        for (g, group) in groups.iter().enumerate() {
            let x = label_w + g as f64 * 200.0;
            let y = height - 8.0;
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{:.1}\" width=\"14\" height=\"12\" fill=\"{}\"/>\
                 <text class=\"legend\" x=\"{}\" y=\"{y:.1}\">{}</text>",
                y - 11.0,
                group.color,
                x + 20.0,
                esc(group.name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One paired difference: the metric's label, the mean difference and its CI half-width.
pub struct Diff {
    /// What is compared.
    pub label: String,
    /// Mean of B − A.
    pub mean: f64,
    /// Half-width of its 95% CI (infinite with one replication).
    pub half_width: f64,
    /// Whether the CI excludes zero.
    pub significant: bool,
    /// The difference in words, printed at the row's end (e.g. "−3.2 days ± 1.1").
    pub text: String,
}

/// Paired differences B − A as points with 95% whiskers around a zero line, each row scaled
/// to its own metric (shown as a percentage of A's mean where A is not zero).
pub fn differences(title: &str, rows: &[Diff], note: &str) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let label_w = 300.0;
    let (right, top, row_h) = (150.0, 34.0, 24.0);
    let height = top + row_h * rows.len() as f64 + 40.0;
    let plot_w = WIDTH - label_w - right;
    let reach = rows
        .iter()
        .map(|r| {
            let hw = if r.half_width.is_finite() {
                r.half_width
            } else {
                0.0
            };
            r.mean.abs() + hw
        })
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let px = |v: f64| label_w + plot_w / 2.0 + v / reach * (plot_w / 2.0);
    let mut s = open(height, title);
    let zero = px(0.0);
    let bottom = top + row_h * rows.len() as f64;
    let _ = write!(
        s,
        "<line x1=\"{zero:.1}\" x2=\"{zero:.1}\" y1=\"{top}\" y2=\"{bottom}\" stroke=\"#333\"/>"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let color = if r.significant { "#d62728" } else { "#777" };
        let _ = write!(
            s,
            "<text class=\"category\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y + 4.0,
            esc(&r.label)
        );
        if r.half_width.is_finite() {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>",
                px(r.mean - r.half_width),
                px(r.mean + r.half_width)
            );
        }
        let star = if r.significant { " *" } else { "" };
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{color}\"/>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}{star}</text>",
            px(r.mean),
            label_w + plot_w + 6.0,
            y + 4.0,
            esc(&r.text)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        label_w + plot_w / 2.0,
        bottom + 22.0,
        esc(note)
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        assert_eq!(ticks(0.0, 9.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(12.34), "12.3");
    }

    #[test]
    fn an_all_zero_bar_chart_is_a_sentence() {
        let cats = vec!["a".to_owned()];
        let svg = bars(
            "Breaches",
            "cases",
            &cats,
            &[Bars {
                name: "x",
                color: "#000",
                values: vec![0.0],
            }],
            "no breaches",
        );
        assert!(svg.contains("no breaches") && !svg.contains("<svg"));
    }
}
