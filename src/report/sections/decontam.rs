//! Decontamination: the benchmarks loaded, hits per benchmark and tier, and
//! sampled hits with the matched benchmark item beside the matching span of
//! the training file (the words they share marked).

use super::{num_cell, Section};
use crate::report::diff;
use crate::report::fmt;
use crate::report::html::{attr, Html};
use crate::report::svg::{self, BarRow, Segment};
use crate::report::view::{arr_at, str_at, u64_at, Run};
use serde_json::Value;
use std::collections::BTreeMap;

/// Contaminated files listed by name (all are counted).
const FILES_LISTED: usize = 100;

/// Files, bytes, exact-tier and n-gram-tier hits of one benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    pub files: u64,
    pub bytes: u64,
    pub exact: u64,
    pub ngram: u64,
}

/// Hits per benchmark: the stats' `totals` when present, else counted from
/// the drop reasons (`decontam_<benchmark>_<tier>`) and flagged files.
pub fn hits(run: &Run<'_>) -> BTreeMap<String, Hits> {
    let mut out: BTreeMap<String, Hits> = BTreeMap::new();
    if let Some(t) = run
        .raw
        .get("decontam")
        .and_then(|d| d.get("totals"))
        .and_then(|t| t.get("benchmarks"))
        .and_then(Value::as_object)
    {
        for (name, v) in t {
            out.insert(
                name.clone(),
                Hits {
                    files: u64_at(v, "files").unwrap_or(0),
                    bytes: u64_at(v, "bytes").unwrap_or(0),
                    exact: u64_at(v, "exact").unwrap_or(0),
                    ngram: u64_at(v, "ngram").unwrap_or(0),
                },
            );
        }
        return out;
    }
    if let Some(stage) = run.stage("decontam") {
        for r in &stage.dropped {
            let Some(rest) = r.name.strip_prefix("decontam_") else {
                continue;
            };
            let (bench, tier) = match rest.rsplit_once('_') {
                Some((b, t)) if t == "exact" || t == "ngram" => (b, t),
                _ => continue,
            };
            let h = out.entry(bench.to_string()).or_default();
            h.files += r.files;
            h.bytes += r.bytes;
            if tier == "exact" {
                h.exact += r.files;
            } else {
                h.ngram += r.files;
            }
        }
    }
    out
}

fn evidence(s: &Value) -> String {
    if let Some(m) = str_at(s, "matched") {
        let len = u64_at(s, "matched_len").unwrap_or(m.len() as u64);
        format!("normalised string of {len} bytes matched: {m}")
    } else if let Some(n) = u64_at(s, "ngrams") {
        format!("{n} distinct n-grams shared with the item")
    } else {
        String::new()
    }
}

pub fn render(run: &Run<'_>) -> Option<Section> {
    let dec = run.raw.get("decontam").filter(|v| v.is_object());
    let skipped = crate::report::view::notes(run.raw)
        .iter()
        .any(|(k, v)| k == "decontam_skipped_no_benchmarks" && *v > 0);
    if dec.is_none() && !skipped {
        return None;
    }
    let mut out = Html::new();
    if skipped {
        out.raw("<p><span class=\"badge bad\">skipped</span> ")
            .text("Decontamination was skipped: no benchmarks were available (pass --benchmark-dir DIR or --benchmark-source hub).")
            .raw("</p>");
    }
    let Some(dec) = dec else {
        return Some(Section {
            id: "decontam",
            title: "Decontamination",
            body: out,
        });
    };
    if let Some(status) = str_at(dec, "status") {
        if !skipped {
            out.raw("<p>")
                .text(&format!("Decontamination: {status}."))
                .raw("</p>");
        }
        return Some(Section {
            id: "decontam",
            title: "Decontamination",
            body: out,
        });
    }
    let flag_only = dec.get("flag_only").and_then(Value::as_bool) == Some(true);
    if let Some(b) = str_at(dec, "benchmarks") {
        out.raw("<h3>Benchmarks</h3><pre>").text(b).raw("</pre>");
    }
    let per = hits(run);
    let total: u64 = per.values().map(|h| h.files).sum();
    out.raw("<p>")
        .text(&format!(
            "{} contaminated files {}.",
            fmt::count(total),
            if flag_only {
                "flagged and kept (--flag-only)"
            } else {
                "removed"
            }
        ))
        .raw("</p>");
    if !per.is_empty() {
        let rows: Vec<BarRow> = per
            .iter()
            .map(|(name, h)| BarRow {
                label: name.clone(),
                segments: vec![
                    Segment {
                        value: h.exact as f64,
                        class: "exact".into(),
                        tip: format!("{name}: {} files by the exact tier", fmt::count(h.exact)),
                    },
                    Segment {
                        value: h.ngram as f64,
                        class: "ngram".into(),
                        tip: format!("{name}: {} files by the n-gram tier", fmt::count(h.ngram)),
                    },
                ],
                note: format!(
                    "{} exact + {} n-gram",
                    fmt::count(h.exact),
                    fmt::count(h.ngram)
                ),
                class: String::new(),
            })
            .collect();
        out.append(svg::hbars(
            "decontam-hits",
            "Contaminated files per benchmark: exact tier (purple) and n-gram tier (orange)",
            &rows,
        ));
        out.raw("<table class=\"hits\"><thead><tr><th>benchmark</th><th class=\"n\">files</th><th class=\"n\">bytes</th><th class=\"n\">exact tier</th><th class=\"n\">n-gram tier</th></tr></thead><tbody>");
        for (name, h) in &per {
            out.raw(&format!("<tr {}>", attr("data-benchmark", name)));
            out.elem("td", "", name);
            num_cell(&mut out, h.files, &fmt::count(h.files));
            num_cell(&mut out, h.bytes, &fmt::bytes(h.bytes));
            num_cell(&mut out, h.exact, &fmt::count(h.exact));
            num_cell(&mut out, h.ngram, &fmt::count(h.ngram));
            out.raw("</tr>");
        }
        out.raw("</tbody></table>");
    }

    let samples = arr_at(dec, "samples");
    if !samples.is_empty() {
        out.raw("<h3>Sampled hits</h3><p class=\"note\">The benchmark item (left) beside the matching lines of the training file (right, highlighted lines), the words they share marked. At most one file per benchmark and tier before any is shown twice.</p>");
        for s in samples {
            let span = s.get("span").filter(|v| v.is_object());
            let file_name = format!(
                "{}/{}",
                str_at(s, "repo").unwrap_or(""),
                str_at(s, "path").unwrap_or("")
            );
            out.raw(&format!(
                "<div class=\"sample decontam-sample\" {}>",
                attr("data-reason", str_at(s, "reason").unwrap_or(""))
            ));
            out.raw("<p><strong>").text(&file_name).raw("</strong> ");
            out.text(&format!(
                "({}, {} lines) {} for {}: item {}{}",
                fmt::bytes(u64_at(s, "file_bytes").unwrap_or(0)),
                fmt::count(u64_at(s, "file_lines").unwrap_or(0)),
                str_at(s, "action").unwrap_or(""),
                str_at(s, "reason").unwrap_or(""),
                str_at(s, "item_id").unwrap_or(""),
                str_at(s, "item_field")
                    .map(|f| format!(", field {f}"))
                    .unwrap_or_default()
            ))
            .raw("<br><span class=\"muted evidence\">")
            .text(&evidence(s))
            .raw("</span></p>");
            let item_text = str_at(s, "item_text").unwrap_or("");
            match span {
                Some(sp) => {
                    let first = u64_at(sp, "text_first_line").unwrap_or(1);
                    let hit = (
                        u64_at(sp, "first_line").unwrap_or(0),
                        u64_at(sp, "last_line").unwrap_or(0),
                    );
                    let (left, right, _) =
                        diff::shared_words(item_text, str_at(sp, "text").unwrap_or(""), first, hit);
                    out.raw("<div class=\"pair\"><div><div class=\"muted\">")
                        .text(&format!(
                            "benchmark item {}",
                            str_at(s, "item_id").unwrap_or("")
                        ))
                        .raw("</div>")
                        .append(left)
                        .raw("</div><div><div class=\"muted\">")
                        .text(&format!(
                            "{file_name}, lines {}-{} (found by {})",
                            hit.0,
                            hit.1,
                            str_at(sp, "located_by").unwrap_or("?")
                        ))
                        .raw("</div>")
                        .append(right)
                        .raw("</div></div>");
                }
                None => {
                    out.raw("<p class=\"note\">The matching span could not be located again in the file.</p><pre class=\"code\">")
                        .text(item_text)
                        .raw("</pre>");
                }
            }
            out.raw("</div>");
        }
    }

    let files = arr_at(dec, "files");
    if !files.is_empty() {
        out.raw("<details><summary>")
            .text(&format!(
                "Contaminated files ({}{})",
                fmt::count(files.len() as u64),
                if files.len() > FILES_LISTED {
                    format!(", first {FILES_LISTED} listed")
                } else {
                    String::new()
                }
            ))
            .raw("</summary><table><thead><tr><th>file</th><th>benchmark</th><th>tier</th><th>items</th></tr></thead><tbody>");
        for f in files.iter().take(FILES_LISTED) {
            let hit = f.get("hit").cloned().unwrap_or(Value::Null);
            let items: Vec<&str> = arr_at(&hit, "items")
                .iter()
                .filter_map(|i| str_at(i, "id"))
                .take(5)
                .collect();
            out.raw("<tr>");
            out.elem(
                "td",
                "",
                &format!(
                    "{}/{}",
                    str_at(f, "repo").unwrap_or(""),
                    str_at(f, "path").unwrap_or("")
                ),
            );
            out.elem("td", "", str_at(&hit, "benchmark").unwrap_or(""));
            out.elem("td", "", str_at(&hit, "tier").unwrap_or(""));
            out.elem("td", "", &items.join(", "));
            out.raw("</tr>");
        }
        out.raw("</tbody></table></details>");
    }
    Some(Section {
        id: "decontam",
        title: "Decontamination",
        body: out,
    })
}
