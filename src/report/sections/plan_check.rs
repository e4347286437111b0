//! The run against the data plan's expected retention, in the plan's order
//! (license, basic, exact dedup, quality, overall): each range as a band,
//! the measured retention as a dot, red when outside.

use super::{num_cell, Section};
use crate::report::fmt;
use crate::report::html::{attr, Html};
use crate::report::plan::{self, Verdict};
use crate::report::svg::{self, RangeRow};
use crate::report::view::Run;

pub fn render(run: &Run<'_>) -> Option<Section> {
    let checks = plan::checks(run);
    if checks.iter().all(|c| c.verdict == Verdict::NotRun) {
        return None;
    }
    let outside = checks.iter().filter(|c| c.verdict.outside()).count();
    let mut out = Html::new();
    out.raw("<p class=\"note\">The data plan's expected retention per filter stage (from the StarCoder2 and DeepSeek-Coder pipelines). ")
        .text(&match outside {
            0 => "Every stage the run performed is within its range.".to_string(),
            1 => "1 stage is outside its range.".to_string(),
            n => format!("{n} stages are outside their ranges."),
        })
        .raw("</p>");
    let rows: Vec<RangeRow> = checks
        .iter()
        .map(|c| RangeRow {
            label: c.expected.row.to_string(),
            low: c.expected.low_pct,
            high: c.expected.high_pct,
            value: (c.verdict != Verdict::NotRun).then(|| c.retention_pct()),
            outside: c.verdict.outside(),
        })
        .collect();
    out.append(svg::ranges(
        "plan",
        "Measured retention (dots) against the data plan's expected ranges (bands)",
        &rows,
    ));
    out.raw("<table class=\"plan\"><thead><tr><th>plan stage</th><th>expected</th><th class=\"n\">reached</th><th class=\"n\">passed</th><th class=\"n\">retention</th><th>verdict</th><th>measured as</th></tr></thead><tbody>");
    for c in &checks {
        let badge = match c.verdict {
            Verdict::Within => "within",
            Verdict::NotRun => "notrun",
            _ => "outside",
        };
        out.raw(&format!(
            "<tr class=\"{}\" {} data-verdict=\"{}\">",
            if c.verdict.outside() { "outside" } else { "" },
            attr("data-plan-row", c.expected.row),
            c.verdict.label()
        ));
        out.elem("td", "", c.expected.row);
        out.elem(
            "td",
            "",
            &format!("{:.0}-{:.0}%", c.expected.low_pct, c.expected.high_pct),
        );
        if c.verdict == Verdict::NotRun {
            out.raw("<td class=\"n\">-</td><td class=\"n\">-</td><td class=\"n\">-</td>");
        } else {
            num_cell(&mut out, c.files_in, &fmt::count(c.files_in));
            num_cell(&mut out, c.files_out, &fmt::count(c.files_out));
            out.elem("td", "class=\"n\"", &fmt::pct(c.files_out, c.files_in));
        }
        out.raw(&format!("<td><span class=\"badge {badge}\">"))
            .text(c.verdict.label())
            .raw("</span></td>");
        out.elem("td", "class=\"muted\"", &c.measured_as);
        out.raw("</tr>");
    }
    out.raw("</tbody></table>");
    Some(Section {
        id: "plan",
        title: "Against the data plan",
        body: out,
    })
}
