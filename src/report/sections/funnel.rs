//! The retention funnel: per stage, files, bytes and (when counted) tokens
//! in and out, every drop reason with its share, the plan's expected range
//! where it has one; then the notes (counts that are not drops).

use super::{num_cell, Section};
use crate::report::fmt;
use crate::report::html::{attr, Html};
use crate::report::plan::{self, Verdict};
use crate::report::svg::{self, BarRow, Segment};
use crate::report::view::{self, Run, Stage};

/// Most reasons listed per stage (a stage has a dozen at most; this bounds
/// the page for a stats file that has more).
const MAX_REASONS: usize = 200;
const MAX_NOTES: usize = 200;

/// What a chart measures.
#[derive(Clone, Copy)]
enum Measure {
    Files,
    Bytes,
    Tokens,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::Files => "files",
            Measure::Bytes => "bytes",
            Measure::Tokens => "tokens",
        }
    }

    fn of(self, s: &Stage) -> Option<(u64, u64)> {
        match self {
            Measure::Files => Some((s.files_in, s.files_out)),
            Measure::Bytes => Some((s.bytes_in, s.bytes_out)),
            Measure::Tokens => Some((s.tokens_in?, s.tokens_out?)),
        }
    }

    fn show(self, n: u64) -> String {
        match self {
            Measure::Bytes => fmt::bytes(n),
            _ => fmt::count(n),
        }
    }
}

fn chart(run: &Run<'_>, m: Measure, checks: &[plan::Check]) -> Option<Html> {
    // Stages without the measure (tokens of stages where the content is not
    // known yet) are left out of its chart.
    let rows: Vec<BarRow> = run
        .stages
        .iter()
        .filter_map(|s| {
            let (i, o) = m.of(s)?;
            let outside =
                plan::check_for_stage(checks, &s.name).is_some_and(|c| c.verdict.outside());
            Some(BarRow {
                label: s.name.clone(),
                segments: vec![
                    Segment {
                        value: o as f64,
                        class: "kept".into(),
                        tip: format!("{}: {} {} kept", s.name, m.show(o), m.name()),
                    },
                    Segment {
                        value: i.saturating_sub(o) as f64,
                        class: "dropped".into(),
                        tip: format!(
                            "{}: {} {} dropped",
                            s.name,
                            m.show(i.saturating_sub(o)),
                            m.name()
                        ),
                    },
                ],
                note: format!("{} → {} ({})", m.show(i), m.show(o), fmt::pct(o, i)),
                class: if outside {
                    "outside".into()
                } else {
                    String::new()
                },
            })
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(svg::hbars(
        &format!("funnel funnel-{}", m.name()),
        &format!(
            "Retention funnel in {}: kept (blue) and dropped (orange) per stage",
            m.name()
        ),
        &rows,
    ))
}

pub fn render(run: &Run<'_>) -> Option<Section> {
    if run.stages.is_empty() {
        return None;
    }
    let checks = plan::checks(run);
    let tokens = run
        .stages
        .iter()
        .any(|s| s.tokens_in.is_some() && s.tokens_out.is_some());
    let mut out = Html::new();
    out.raw("<p class=\"note\">Files, bytes")
        .raw(if tokens { " and (where counted) tokens" } else { "" })
        .raw(" into and out of each stage, in pipeline order, with every drop reason and its share of the stage's input. ")
        .raw(if tokens {
            ""
        } else {
            "Tokens were not counted in this run. "
        })
        .raw("Stages the data plan gives a retention range for are flagged when outside it.</p>");
    for m in [Measure::Files, Measure::Bytes, Measure::Tokens] {
        if matches!(m, Measure::Tokens) && !tokens {
            continue;
        }
        if let Some(c) = chart(run, m, &checks) {
            out.raw(&format!("<h3>In {}</h3>", m.name())).append(c);
        }
    }

    out.raw("<h3>Stages and drop reasons</h3><table class=\"funnel\"><thead><tr><th>stage / reason</th><th class=\"n\">files in</th><th class=\"n\">files out</th><th class=\"n\">retained</th><th class=\"n\">bytes in</th><th class=\"n\">bytes out</th><th class=\"n\">bytes retained</th>");
    if tokens {
        out.raw("<th class=\"n\">tokens in</th><th class=\"n\">tokens out</th><th class=\"n\">tokens retained</th>");
    }
    out.raw("<th>data plan</th></tr></thead><tbody>");
    for s in &run.stages {
        let check = plan::check_for_stage(&checks, &s.name);
        let outside = check.is_some_and(|c| c.verdict.outside());
        out.raw(&format!(
            "<tr class=\"stage{}\" {} data-files-in=\"{}\" data-files-out=\"{}\" data-bytes-in=\"{}\" data-bytes-out=\"{}\">",
            if outside { " outside" } else { "" },
            attr("data-stage", &s.name),
            s.files_in,
            s.files_out,
            s.bytes_in,
            s.bytes_out
        ));
        out.elem("td", "", &s.name);
        num_cell(&mut out, s.files_in, &fmt::count(s.files_in));
        num_cell(&mut out, s.files_out, &fmt::count(s.files_out));
        out.elem("td", "class=\"n\"", &fmt::pct(s.files_out, s.files_in));
        num_cell(&mut out, s.bytes_in, &fmt::bytes(s.bytes_in));
        num_cell(&mut out, s.bytes_out, &fmt::bytes(s.bytes_out));
        out.elem("td", "class=\"n\"", &fmt::pct(s.bytes_out, s.bytes_in));
        if tokens {
            match (s.tokens_in, s.tokens_out) {
                (Some(ti), Some(to)) => {
                    num_cell(&mut out, ti, &fmt::count(ti));
                    num_cell(&mut out, to, &fmt::count(to));
                    out.elem("td", "class=\"n\"", &fmt::pct(to, ti));
                }
                _ => {
                    out.raw("<td class=\"n\" colspan=\"3\">not counted</td>");
                }
            }
        }
        out.raw("<td>");
        if let Some(c) = check {
            let badge = match c.verdict {
                Verdict::Within => "within",
                Verdict::NotRun => "notrun",
                _ => "outside",
            };
            out.text(&format!(
                "{} {:.0}-{:.0}% ",
                c.expected.row, c.expected.low_pct, c.expected.high_pct
            ))
            .raw(&format!("<span class=\"badge {badge}\">"))
            .text(&format!(
                "{} ({:.1}%)",
                c.verdict.label(),
                c.retention_pct()
            ))
            .raw("</span>");
        }
        out.raw("</td></tr>");
        let dropped = s.dropped_files();
        for r in s.dropped.iter().take(MAX_REASONS) {
            out.raw(&format!(
                "<tr class=\"reason\" {} {} data-files=\"{}\" data-bytes=\"{}\">",
                attr("data-stage", &s.name),
                attr("data-reason", &r.name),
                r.files,
                r.bytes
            ));
            out.elem("td", "", &r.name);
            num_cell(&mut out, r.files, &fmt::count(r.files));
            out.elem(
                "td",
                "class=\"n\" colspan=\"2\"",
                &format!(
                    "{} of in, {} of drops",
                    fmt::pct(r.files, s.files_in),
                    fmt::pct(r.files, dropped)
                ),
            );
            num_cell(&mut out, r.bytes, &fmt::bytes(r.bytes));
            out.elem(
                "td",
                "class=\"n\" colspan=\"2\"",
                &format!("{} of bytes in", fmt::pct(r.bytes, s.bytes_in)),
            );
            if tokens {
                match r.tokens {
                    Some(t) => num_cell(&mut out, t, &fmt::count(t)),
                    None => {
                        out.raw("<td class=\"n\">-</td>");
                    }
                }
                out.raw("<td colspan=\"2\"></td>");
            }
            out.raw("<td></td></tr>");
        }
        if s.dropped.len() > MAX_REASONS {
            out.raw("<tr class=\"reason\"><td colspan=\"8\">")
                .text(&format!(
                    "... and {} more reasons",
                    s.dropped.len() - MAX_REASONS
                ))
                .raw("</td></tr>");
        }
    }
    if let Some((fi, fo, bi, bo)) = run.overall() {
        out.raw(&format!(
            "<tr class=\"total\" data-stage=\"overall\" data-files-in=\"{fi}\" data-files-out=\"{fo}\">"
        ));
        out.elem("td", "", "overall");
        num_cell(&mut out, fi, &fmt::count(fi));
        num_cell(&mut out, fo, &fmt::count(fo));
        out.elem("td", "class=\"n\"", &fmt::pct(fo, fi));
        num_cell(&mut out, bi, &fmt::bytes(bi));
        num_cell(&mut out, bo, &fmt::bytes(bo));
        out.elem("td", "class=\"n\"", &fmt::pct(bo, bi));
        if tokens {
            // From the first stage that counted tokens to the last.
            let first = run.stages.iter().find_map(|s| s.tokens_in).unwrap_or(0);
            let last = run
                .stages
                .iter()
                .rev()
                .find_map(|s| s.tokens_out)
                .unwrap_or(0);
            num_cell(&mut out, first, &fmt::count(first));
            num_cell(&mut out, last, &fmt::count(last));
            out.elem("td", "class=\"n\"", &fmt::pct(last, first));
        }
        out.raw("<td>");
        if let Some(c) = checks.iter().find(|c| c.expected.stage.is_none()) {
            let badge = if c.verdict.outside() {
                "outside"
            } else {
                "within"
            };
            out.text(&format!(
                "Overall {:.0}-{:.0}% ",
                c.expected.low_pct, c.expected.high_pct
            ))
            .raw(&format!("<span class=\"badge {badge}\">"))
            .text(c.verdict.label())
            .raw("</span>");
        }
        out.raw("</td></tr>");
    }
    out.raw("</tbody></table>");

    let notes = view::notes(run.raw);
    if !notes.is_empty() {
        out.raw("<h3>Notes</h3><p class=\"note\">Counts that are not drops (files kept but worth knowing about, or a stage that was skipped).</p><table class=\"notes\"><tbody>");
        for (k, v) in notes.iter().take(MAX_NOTES) {
            out.raw(&format!("<tr {}>", attr("data-note", k)));
            out.elem("td", "", k);
            num_cell(&mut out, *v, &fmt::count(*v));
            out.raw("</tr>");
        }
        out.raw("</tbody></table>");
    }
    let bad = view::arr_at(run.raw, "bad_lines");
    if !bad.is_empty() {
        out.raw("<h3>Input lines that were not records</h3><table><thead><tr><th class=\"n\">line</th><th>reason</th><th>error</th></tr></thead><tbody>");
        for b in bad.iter().take(50) {
            let line = view::u64_at(b, "line").unwrap_or(0);
            out.raw("<tr>");
            num_cell(&mut out, line, &fmt::count(line));
            out.elem("td", "", view::str_at(b, "reason").unwrap_or(""));
            out.elem("td", "", view::str_at(b, "error").unwrap_or(""));
            out.raw("</tr>");
        }
        out.raw("</tbody></table>");
        if let Some(total) = view::u64_at(run.raw, "bad_lines_total") {
            out.raw("<p class=\"note\">")
                .text(&format!("{} such lines in all.", fmt::count(total)))
                .raw("</p>");
        }
    }
    Some(Section {
        id: "funnel",
        title: "Retention funnel",
        body: out,
    })
}
