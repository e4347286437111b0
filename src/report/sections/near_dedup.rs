//! Near dedup: the parameters, the S-curve of the chosen bands x rows with
//! the threshold marked, the cluster-size histogram, the largest clusters,
//! and sampled clusters with the kept file beside a removed one, their
//! differences highlighted.

use super::{kv_table, num_cell, Section};
use crate::report::diff;
use crate::report::fmt;
use crate::report::html::Html;
use crate::report::svg::{self, Marker};
use crate::report::view::{arr_at, f64_at, str_at, u64_at, Run};
use serde_json::Value;

/// Points of the drawn S-curve.
const CURVE_POINTS: usize = 200;

fn doc_name(v: &Value) -> String {
    match (str_at(v, "repo"), str_at(v, "path")) {
        (Some(r), Some(p)) if !r.is_empty() => format!("{r}/{p}"),
        (_, Some(p)) => p.to_string(),
        _ => "?".to_string(),
    }
}

/// `1 - (1 - s^r)^b`: the probability that a pair of similarity `s` shares
/// at least one of `b` bands of `r` rows (Mining of Massive Datasets,
/// section 3.4.2).
pub fn candidate_probability(s: f64, bands: u32, rows: u32) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

pub fn render(run: &Run<'_>) -> Option<Section> {
    let nd = run.raw.get("near_dedup").filter(|v| v.is_object())?;
    let mut out = Html::new();
    let p = |k: &str| nd.get("params").and_then(|p| p.get(k));
    let jaccard = p("jaccard").and_then(Value::as_f64).unwrap_or(0.0);
    let bands = p("bands").and_then(Value::as_u64).unwrap_or(0) as u32;
    let rows = p("rows").and_then(Value::as_u64).unwrap_or(0) as u32;
    let num = |k: &str| u64_at(nd, k).unwrap_or(0);

    out.raw("<div class=\"cards\">");
    for (k, v) in [
        ("documents", fmt::count(num("docs"))),
        ("clusters", fmt::count(num("clusters"))),
        ("files removed", fmt::count(num("files_removed"))),
        ("bytes removed", fmt::bytes(num("bytes_removed"))),
        ("candidate edges", fmt::count(num("candidate_edges"))),
        ("verified edges", fmt::count(num("verified_edges"))),
    ] {
        out.raw("<div class=\"card\"><div class=\"k\">")
            .text(k)
            .raw("</div><div class=\"v\">")
            .text(&v)
            .raw("</div></div>");
    }
    out.raw("</div>");
    kv_table(
        &mut out,
        &[
            ("Jaccard threshold", format!("{jaccard}")),
            (
                "shingles",
                format!(
                    "{}-word shingles",
                    p("ngram").and_then(Value::as_u64).unwrap_or(0)
                ),
            ),
            (
                "MinHash",
                format!(
                    "{} permutations, seed {}",
                    p("num_perm").and_then(Value::as_u64).unwrap_or(0),
                    p("minhash_seed")
                        .map(crate::report::view::scalar_text)
                        .unwrap_or_default()
                ),
            ),
            ("LSH", format!("{bands} bands x {rows} rows")),
            (
                "verification",
                p("verify")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            ),
            (
                "components",
                format!(
                    "{} (largest {})",
                    fmt::count(num("components")),
                    fmt::count(num("largest_component"))
                ),
            ),
            (
                "short documents",
                format!(
                    "{} shorter than one shingle, {} without words",
                    fmt::count(num("docs_short")),
                    fmt::count(num("docs_without_shingles"))
                ),
            ),
        ],
    );

    if bands > 0 && rows > 0 {
        let points: Vec<(f64, f64)> = (0..=CURVE_POINTS)
            .map(|i| {
                let s = i as f64 / CURVE_POINTS as f64;
                (s, candidate_probability(s, bands, rows))
            })
            .collect();
        let at = candidate_probability(jaccard, bands, rows);
        let mut markers = vec![Marker {
            x: jaccard,
            label: format!("threshold {jaccard}: P(candidate) = {at:.3}"),
            class: "threshold".into(),
        }];
        if let Some(edge) = p("edge_jaccard").and_then(Value::as_f64) {
            if (edge - jaccard).abs() > 1e-9 {
                markers.push(Marker {
                    x: edge,
                    label: format!("edges verified from {edge:.3}"),
                    class: "edge".into(),
                });
            }
        }
        out.raw("<h3>S-curve</h3><p class=\"note\">")
            .text(&format!(
                "Probability that two files of a given Jaccard similarity become a candidate pair with {bands} bands of {rows} rows: 1 - (1 - s^{rows})^{bands}. Pairs left of the threshold that become candidates are checked and rejected; pairs right of it that do not are missed."
            ))
            .raw("</p>");
        out.append(svg::line(
            "s-curve",
            &format!("S-curve of {bands} bands x {rows} rows with the threshold {jaccard}"),
            "Jaccard similarity",
            "P(candidate)",
            &points,
            &markers,
        ));
    }

    let bins: Vec<(String, u64)> = arr_at(nd, "size_histogram")
        .iter()
        .map(|b| {
            (
                str_at(b, "size").unwrap_or("?").to_string(),
                u64_at(b, "clusters").unwrap_or(0),
            )
        })
        .collect();
    if !bins.is_empty() {
        out.raw("<h3>Cluster sizes</h3>");
        out.append(svg::histogram(
            "cluster-sizes",
            "Clusters by size (files per cluster, kept file included), log scale",
            "files per cluster (log-scaled count of clusters)",
            &bins,
        ));
    }

    let largest = arr_at(nd, "largest");
    if !largest.is_empty() {
        out.raw("<h3>Largest clusters</h3><table class=\"largest\"><thead><tr><th class=\"n\">files</th><th>kept</th><th class=\"n\">least similarity</th><th>some removed files</th></tr></thead><tbody>");
        for c in largest {
            let size = u64_at(c, "size").unwrap_or(0);
            out.raw("<tr>");
            num_cell(&mut out, size, &fmt::count(size));
            out.elem("td", "", &c.get("kept").map(doc_name).unwrap_or_default());
            out.elem(
                "td",
                "class=\"n\"",
                &f64_at(c, "min_similarity")
                    .map(fmt::similarity)
                    .unwrap_or_default(),
            );
            out.raw("<td>");
            for (i, r) in arr_at(c, "removed_samples").iter().enumerate() {
                if i > 0 {
                    out.raw("<br>");
                }
                out.text(&doc_name(r));
            }
            out.raw("</td></tr>");
        }
        out.raw("</tbody></table>");
    }

    let samples = arr_at(nd, "samples");
    if !samples.is_empty() {
        out.raw("<h3>Sampled clusters</h3><p class=\"note\">The kept file (left) beside the removed file least similar to it (right); changed words are highlighted. Texts are cut to the first few KB.</p>");
        for s in samples {
            let kept = s.get("kept").cloned().unwrap_or(Value::Null);
            let removed = s.get("removed").cloned().unwrap_or(Value::Null);
            let (table, counts) = diff::side_by_side(
                str_at(&kept, "text").unwrap_or(""),
                str_at(&removed, "text").unwrap_or(""),
                &format!("kept: {}", doc_name(&kept)),
                &format!("removed: {}", doc_name(&removed)),
            );
            let sim = f64_at(s, "similarity").unwrap_or(0.0);
            let exact = f64_at(s, "exact_jaccard").unwrap_or(0.0);
            out.raw(&format!(
                "<div class=\"sample cluster-sample\" data-similarity=\"{sim}\" data-exact-jaccard=\"{exact}\">"
            ));
            out.raw("<p>")
                .text(&format!(
                    "Cluster of {} files. Similarity {} ({}), exact Jaccard {}. {} lines identical, {} removed, {} added",
                    fmt::count(u64_at(s, "cluster_size").unwrap_or(0)),
                    fmt::similarity(sim),
                    p("verify").and_then(Value::as_str).unwrap_or("?"),
                    fmt::similarity(exact),
                    counts.equal,
                    counts.removed,
                    counts.added
                ))
                .text(
                    if kept.get("truncated").and_then(Value::as_bool) == Some(true)
                        || removed.get("truncated").and_then(Value::as_bool) == Some(true)
                    {
                        " (in the part shown)."
                    } else {
                        "."
                    },
                )
                .raw("</p>");
            out.append(table);
            out.raw("</div>");
        }
    }
    Some(Section {
        id: "near-dedup",
        title: "Near dedup",
        body: out,
    })
}
