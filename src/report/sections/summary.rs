//! The cards at the top of the page: the run's headline numbers.

use crate::report::fmt;
use crate::report::html::Html;
use crate::report::plan;
use crate::report::view::{f64_at, u64_at, Run};

pub fn cards(run: &Run<'_>) -> Html {
    let mut cards: Vec<(String, String, &str)> = Vec::new();
    if let Some((fi, fo, bi, bo)) = run.overall() {
        cards.push((
            "files in → out".into(),
            format!(
                "{} → {} ({})",
                fmt::count(fi),
                fmt::count(fo),
                fmt::pct(fo, fi)
            ),
            "",
        ));
        cards.push((
            "bytes in → out".into(),
            format!("{} → {}", fmt::bytes(bi), fmt::bytes(bo)),
            "",
        ));
    }
    let checks = plan::checks(run);
    let outside = checks.iter().filter(|c| c.verdict.outside()).count();
    let measured = checks
        .iter()
        .filter(|c| c.verdict != plan::Verdict::NotRun)
        .count();
    if measured > 0 {
        cards.push((
            "data plan ranges".into(),
            if outside == 0 {
                format!("all {measured} within")
            } else {
                format!("{outside} of {measured} outside")
            },
            if outside == 0 { "within" } else { "outside" },
        ));
    }
    if let Some(n) = u64_at(run.raw, "near_dedup.files_removed") {
        cards.push(("near-duplicates removed".into(), fmt::count(n), ""));
    }
    if run.raw.get("decontam").is_some() {
        let n: u64 = super::decontam::hits(run).values().map(|h| h.files).sum();
        cards.push(("contaminated files".into(), fmt::count(n), ""));
    }
    if let Some(e) = f64_at(run.raw, "elapsed_seconds") {
        cards.push(("wall time".into(), fmt::seconds(e), ""));
    }
    if let Some(r) = u64_at(run.raw, "resources.peak_rss_bytes") {
        cards.push(("peak memory".into(), fmt::bytes(r), ""));
    }
    let mut out = Html::new();
    out.raw("<div class=\"cards\">");
    for (k, v, class) in cards {
        out.raw("<div class=\"card\"><div class=\"k\">")
            .text(&k)
            .raw("</div><div class=\"v\">");
        if class.is_empty() {
            out.text(&v);
        } else {
            out.raw(&format!("<span class=\"badge {class}\">"))
                .text(&v)
                .raw("</span>");
        }
        out.raw("</div></div>");
    }
    out.raw("</div>");
    out
}
