//! The page's charts, as inline SVG written by hand: horizontal bars made of
//! segments, retention against expected ranges, a line chart and a
//! histogram. No script, no external resource: a chart is a few rectangles,
//! lines and texts whose classes the page's CSS colours. Each chart carries a
//! `<title>` (its accessible name) and each mark a `<title>` tooltip with its
//! exact value. All text from data is escaped ([`super::html::escape`]).
//!
//! Coordinates are in a fixed `viewBox` (width [`WIDTH`]); the CSS scales
//! the chart to the page width.

use super::html::{escape, Html};
use std::fmt::Write as _;

/// Width of every chart's coordinate system.
pub const WIDTH: f64 = 760.0;
const LABEL_W: f64 = 170.0;
const VALUE_W: f64 = 190.0;
const ROW_H: f64 = 24.0;
const BAR_H: f64 = 16.0;

fn open(out: &mut Html, class: &str, height: f64, title: &str) {
    out.raw(&format!(
        "<svg class=\"chart {class}\" viewBox=\"0 0 {WIDTH} {height:.0}\" width=\"{WIDTH}\" height=\"{height:.0}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>"
    ))
    .text(title)
    .raw("</title>");
}

fn text(out: &mut Html, x: f64, y: f64, class: &str, anchor: &str, s: &str) {
    out.raw(&format!(
        "<text x=\"{x:.1}\" y=\"{y:.1}\" class=\"{class}\" text-anchor=\"{anchor}\">"
    ))
    .text(s)
    .raw("</text>");
}

/// One coloured part of a bar.
#[derive(Clone, Debug)]
pub struct Segment {
    pub value: f64,
    /// CSS class (colour) of the part.
    pub class: String,
    /// Tooltip.
    pub tip: String,
}

/// One row of a horizontal bar chart.
#[derive(Clone, Debug)]
pub struct BarRow {
    pub label: String,
    pub segments: Vec<Segment>,
    /// Text right of the bar.
    pub note: String,
    /// Extra CSS class of the row (e.g. `outside` to flag it).
    pub class: String,
}

/// Horizontal bars, one per row, each made of its segments laid end to end;
/// the longest row spans the bar area (linear scale).
pub fn hbars(class: &str, title: &str, rows: &[BarRow]) -> Html {
    let mut out = Html::new();
    let height = rows.len() as f64 * ROW_H + 8.0;
    open(&mut out, class, height, title);
    let max = rows
        .iter()
        .map(|r| r.segments.iter().map(|s| s.value.max(0.0)).sum::<f64>())
        .fold(0.0, f64::max);
    let area = WIDTH - LABEL_W - VALUE_W;
    for (i, r) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW_H;
        out.raw(&format!("<g class=\"row {}\">", escape(&r.class)));
        text(
            &mut out,
            LABEL_W - 6.0,
            y + BAR_H - 3.0,
            "label",
            "end",
            &r.label,
        );
        let mut x = LABEL_W;
        for s in &r.segments {
            let w = if max > 0.0 {
                s.value.max(0.0) / max * area
            } else {
                0.0
            };
            out.raw(&format!(
                "<rect class=\"{}\" x=\"{x:.2}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{BAR_H}\"><title>",
                escape(&s.class)
            ))
            .text(&s.tip)
            .raw("</title></rect>");
            x += w;
        }
        text(
            &mut out,
            LABEL_W + area + 6.0,
            y + BAR_H - 3.0,
            "value",
            "start",
            &r.note,
        );
        out.raw("</g>");
    }
    out.raw("</svg>");
    out
}

/// One row of a range chart: a measured percentage against a band.
#[derive(Clone, Debug)]
pub struct RangeRow {
    pub label: String,
    pub low: f64,
    pub high: f64,
    /// `None`: not measured (no dot).
    pub value: Option<f64>,
    pub outside: bool,
}

/// Percentages 0-100% on one axis: per row the expected band and the
/// measured value as a dot (class `outside` when out of the band).
pub fn ranges(class: &str, title: &str, rows: &[RangeRow]) -> Html {
    let mut out = Html::new();
    let axis_h = 22.0;
    let height = rows.len() as f64 * ROW_H + axis_h + 8.0;
    open(&mut out, class, height, title);
    let x0 = LABEL_W + 100.0;
    let area = WIDTH - x0 - 30.0;
    let x_of = |p: f64| x0 + p.clamp(0.0, 100.0) / 100.0 * area;
    for t in (0..=100).step_by(10) {
        let x = x_of(t as f64);
        out.raw(&format!(
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"4\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
            height - axis_h
        ));
        text(
            &mut out,
            x,
            height - 8.0,
            "tick",
            "middle",
            &format!("{t}%"),
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW_H;
        out.raw("<g class=\"row\">");
        text(
            &mut out,
            x0 - 8.0,
            y + BAR_H - 3.0,
            "label",
            "end",
            &r.label,
        );
        let (a, b) = (x_of(r.low), x_of(r.high));
        out.raw(&format!(
            "<rect class=\"band\" x=\"{a:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{BAR_H}\"><title>",
            b - a
        ))
        .text(&format!("expected {:.0}-{:.0}%", r.low, r.high))
        .raw("</title></rect>");
        if let Some(v) = r.value {
            let cls = if r.outside {
                "dot outside"
            } else {
                "dot within"
            };
            out.raw(&format!(
                "<circle class=\"{cls}\" cx=\"{:.2}\" cy=\"{:.1}\" r=\"6\"><title>",
                x_of(v),
                y + BAR_H / 2.0
            ))
            .text(&format!("measured {v:.1}%"))
            .raw("</title></circle>");
        }
        out.raw("</g>");
    }
    out.raw("</svg>");
    out
}

/// A vertical marker of a line chart.
#[derive(Clone, Debug)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    pub class: String,
}

/// A line through `points` (x and y both in 0..1) with axes, grid, and
/// vertical markers.
pub fn line(
    class: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    markers: &[Marker],
) -> Html {
    let mut out = Html::new();
    let height = 300.0;
    open(&mut out, class, height, title);
    let (left, right, top, bottom) = (60.0, WIDTH - 20.0, 16.0, height - 44.0);
    let x_of = |x: f64| left + x.clamp(0.0, 1.0) * (right - left);
    let y_of = |y: f64| bottom - y.clamp(0.0, 1.0) * (bottom - top);
    for t in 0..=10 {
        let v = t as f64 / 10.0;
        let (x, y) = (x_of(v), y_of(v));
        out.raw(&format!(
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\"/><line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>"
        ));
        text(
            &mut out,
            x,
            bottom + 16.0,
            "tick",
            "middle",
            &format!("{v:.1}"),
        );
        text(
            &mut out,
            left - 6.0,
            y + 4.0,
            "tick",
            "end",
            &format!("{v:.1}"),
        );
    }
    out.raw(&format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/><line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\"/>"
    ));
    text(
        &mut out,
        (left + right) / 2.0,
        height - 8.0,
        "axis-label",
        "middle",
        x_label,
    );
    out.raw(&format!(
        "<text class=\"axis-label\" text-anchor=\"middle\" transform=\"translate(16 {:.1}) rotate(-90)\">",
        (top + bottom) / 2.0
    ))
    .text(y_label)
    .raw("</text>");
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.2},{:.2}",
            if i == 0 { "M" } else { " L" },
            x_of(*x),
            y_of(*y)
        );
    }
    out.raw(&format!("<path class=\"curve\" d=\"{d}\"/>"));
    for (i, m) in markers.iter().enumerate() {
        let x = x_of(m.x);
        out.raw(&format!(
            "<g class=\"marker {}\"><line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\"/>",
            escape(&m.class)
        ));
        // Labels right of the middle go left of their line, where an
        // S-curve leaves the top of the plot empty.
        let (lx, anchor) = if m.x > 0.5 {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        text(
            &mut out,
            lx,
            top + 12.0 + 14.0 * i as f64,
            "marker-label",
            anchor,
            &m.label,
        );
        out.raw("</g>");
    }
    out.raw("</svg>");
    out
}

/// Vertical bars, one per bin, on a log10 scale (counts of cluster sizes span
/// orders of magnitude); each bar is labelled with its exact count.
pub fn histogram(class: &str, title: &str, x_label: &str, bins: &[(String, u64)]) -> Html {
    let mut out = Html::new();
    let height = 240.0;
    open(&mut out, class, height, title);
    let (left, right, top, bottom) = (50.0, WIDTH - 10.0, 20.0, height - 44.0);
    let max = bins.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let decades = ((max as f64).log10().ceil()).max(1.0);
    let y_of = |c: u64| {
        if c == 0 {
            bottom
        } else {
            // log10(1) = 0 sits a little above the axis so a count of 1 shows.
            let h = ((c as f64).log10() + 0.3) / (decades + 0.3);
            bottom - h * (bottom - top)
        }
    };
    for d in 0..=decades as u32 {
        let c = 10u64.saturating_pow(d);
        let y = y_of(c);
        out.raw(&format!(
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>"
        ));
        text(
            &mut out,
            left - 6.0,
            y + 4.0,
            "tick",
            "end",
            &super::fmt::count(c),
        );
    }
    let n = bins.len().max(1) as f64;
    let slot = (right - left) / n;
    let w = (slot * 0.7).min(60.0);
    for (i, (label, c)) in bins.iter().enumerate() {
        let cx = left + slot * (i as f64 + 0.5);
        let y = y_of(*c);
        out.raw(&format!(
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>",
            cx - w / 2.0,
            bottom - y
        ))
        .text(&format!("size {label}: {} clusters", super::fmt::count(*c)))
        .raw("</title></rect>");
        text(
            &mut out,
            cx,
            y - 4.0,
            "value",
            "middle",
            &super::fmt::count(*c),
        );
        text(&mut out, cx, bottom + 16.0, "tick", "middle", label);
    }
    out.raw(&format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>"
    ));
    text(
        &mut out,
        (left + right) / 2.0,
        height - 8.0,
        "axis-label",
        "middle",
        x_label,
    );
    out.raw("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_longest_row_and_escape_labels() {
        let rows = vec![
            BarRow {
                label: "<a>".into(),
                segments: vec![
                    Segment {
                        value: 75.0,
                        class: "kept".into(),
                        tip: "75".into(),
                    },
                    Segment {
                        value: 25.0,
                        class: "dropped".into(),
                        tip: "25".into(),
                    },
                ],
                note: "75%".into(),
                class: String::new(),
            },
            BarRow {
                label: "b".into(),
                segments: vec![Segment {
                    value: 50.0,
                    class: "kept".into(),
                    tip: "50".into(),
                }],
                note: String::new(),
                class: "outside".into(),
            },
        ];
        let svg = hbars("funnel", "t", &rows).into_string();
        let area = WIDTH - LABEL_W - VALUE_W;
        assert!(
            svg.contains(&format!("width=\"{:.2}\"", area * 0.75)),
            "{svg}"
        );
        assert!(
            svg.contains(&format!("width=\"{:.2}\"", area * 0.5)),
            "{svg}"
        );
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
        assert_eq!(svg.matches("<rect").count(), 3);
    }

    #[test]
    fn histogram_is_log_scaled_and_line_has_markers() {
        let h = histogram("h", "t", "size", &[("2".into(), 1000), ("3".into(), 1)]).into_string();
        assert_eq!(h.matches("class=\"bar\"").count(), 2);
        assert!(h.contains(">1,000<"));
        let l = line(
            "s",
            "t",
            "x",
            "y",
            &[(0.0, 0.0), (1.0, 1.0)],
            &[Marker {
                x: 0.75,
                label: "threshold 0.75".into(),
                class: "threshold".into(),
            }],
        )
        .into_string();
        assert!(
            l.contains("class=\"curve\" d=\"M60.00,256.00 L740.00,16.00\""),
            "{l}"
        );
        assert!(l.contains("marker threshold"));
    }
}
