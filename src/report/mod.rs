//! The run report: one self-contained HTML page per run, rendered from the
//! run's stats file.
//!
//! `curate`, `merge`, `dedup` and `decontaminate` write `{name}.report.html`
//! next to their stats (`--report-html off|PATH`), and `tritter-gpu report
//! STATS.json` renders the page of any stats file, old ones included. The
//! page depends only on the stats (and the stats file's name), so the page a
//! run writes and the page `report` renders from its stats are the same
//! bytes.
//!
//! ## The page
//! One file: inline CSS ([`style`]) and inline SVG charts ([`svg`]), no
//! script at all, and a Content-Security-Policy of `default-src 'none'` so a
//! browser fetches nothing even if asked to. Its size does not grow with the
//! run: lists are cut (inputs, contaminated files), and the stats hold only
//! samples of texts (eight near-duplicate clusters and eight contaminated
//! files, a few KB each). Everything taken from data is escaped
//! ([`html::escape`]).
//!
//! ## Assembly
//! A page is a header (title, identity line, headline cards) and the
//! sections of [`sections::SECTIONS`]: each reads one part of the stats
//! through [`view::Run`] and is skipped when that part is absent, so a
//! command that adds a part to its stats adds a section file here.

pub mod diff;
pub mod fmt;
pub mod html;
pub mod plan;
pub mod sections;
pub mod style;
pub mod svg;
pub mod view;

use anyhow::{Context, Result};
use html::Html;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where a run writes its page (`--report-html`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageTarget {
    /// `{name}.report.html` next to the stats file (the default, `on`).
    #[default]
    Beside,
    /// No page (`off`).
    Off,
    /// This file.
    Path(PathBuf),
}

impl PageTarget {
    /// Parses `on`, `off` or a path.
    pub fn parse(s: &str) -> Result<PageTarget, String> {
        match s {
            "on" => Ok(PageTarget::Beside),
            "off" => Ok(PageTarget::Off),
            "" => Err("--report-html needs `on`, `off` or a file path".to_string()),
            p => Ok(PageTarget::Path(PathBuf::from(p))),
        }
    }
}

/// The page next to a stats (or output) file: `X.stats.json`, `X.json`,
/// `X.jsonl` (also `.gz`, `.zst`) give `X.report.html`.
pub fn page_path_for(stats: &Path) -> PathBuf {
    let name = stats
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".stats.json", ".jsonl.gz", ".jsonl.zst", ".jsonl", ".json"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    stats.with_file_name(format!("{stem}.report.html"))
}

/// The page of a stats file's JSON; `stats_name` is the file's name, shown
/// on the page.
pub fn render(stats: &Value, stats_name: Option<&str>) -> String {
    let run = view::Run::new(stats, stats_name.map(str::to_string));
    let rendered: Vec<sections::Section> = sections::SECTIONS
        .iter()
        .filter_map(|section| section(&run))
        .collect();
    let title = format!("{} · tritter-gpu {} report", run.title(), run.command);
    let mut out = Html::new();
    out.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">")
        .raw("<meta name=\"generator\" content=\"")
        .text(&format!("tritter-gpu {}", env!("CARGO_PKG_VERSION")))
        .raw("\"><title>")
        .text(&title)
        .raw("</title><style>")
        .raw(style::CSS)
        .raw("</style></head><body><header><h1>")
        .text(&title)
        .raw("</h1><div class=\"sub\">");
    let mut sub: Vec<String> = vec![run.command.clone()];
    if let Some(l) = view::str_at(stats, "language") {
        sub.push(l.to_string());
    }
    if let Some(d) = view::str_at(stats, "started_at") {
        sub.push(format!("started {d}"));
    }
    if let Some(t) = view::str_at(stats, "tool") {
        sub.push(t.to_string());
    }
    out.text(&sub.join(" · ")).raw("</div>");
    out.append(sections::summary::cards(&run));
    out.raw("<nav>");
    for s in &rendered {
        out.raw(&format!("<a href=\"#{}\">", s.id))
            .text(s.title)
            .raw("</a>");
    }
    out.raw("</nav></header><main>");
    for s in rendered {
        out.raw(&format!("<section id=\"{}\"><h2>", s.id))
            .text(s.title)
            .raw("</h2>")
            .append(s.body)
            .raw("</section>");
    }
    out.raw("</main><footer>")
        .text(&format!(
            "Rendered by tritter-gpu {} from {}. Self-contained: no script, nothing fetched.",
            env!("CARGO_PKG_VERSION"),
            stats_name.unwrap_or("the run's stats")
        ))
        .raw("</footer></body></html>\n");
    out.into_string()
}

/// Writes the page of `stats` where `target` says (`beside`: next to
/// `stats_path`); returns its path, or `None` for `off`.
pub fn write_page(
    target: &PageTarget,
    stats: &Value,
    stats_path: Option<&Path>,
) -> Result<Option<PathBuf>> {
    write_page_or(target, stats, stats_path, None)
}

/// [`write_page`] for runs whose stats file is optional: without one, a
/// `beside` page goes next to `fallback` (the output file).
pub fn write_page_or(
    target: &PageTarget,
    stats: &Value,
    stats_path: Option<&Path>,
    fallback: Option<&Path>,
) -> Result<Option<PathBuf>> {
    let path = match target {
        PageTarget::Off => return Ok(None),
        PageTarget::Path(p) => p.clone(),
        PageTarget::Beside => match (stats_path, fallback) {
            (Some(s), _) => page_path_for(s),
            (None, Some(f)) => page_path_for(f),
            (None, None) => return Ok(None),
        },
    };
    let name = stats_path
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let page = render(stats, name.as_deref());
    crate::output::atomic::write_atomic(&path, page.as_bytes())
        .with_context(|| format!("cannot write the report page {}", path.display()))?;
    Ok(Some(path))
}

/// `tritter-gpu report STATS.json [--output PAGE.html]`: the page of an
/// existing stats file.
pub fn render_file(stats_path: &Path, output: Option<&Path>) -> Result<PathBuf> {
    let bytes = std::fs::read(stats_path)
        .with_context(|| format!("cannot read the stats file {}", stats_path.display()))?;
    let stats: Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not JSON; pass a stats file a tritter-gpu command wrote (e.g. data/curated/python_curated.stats.json)",
            stats_path.display()
        )
    })?;
    anyhow::ensure!(
        stats.is_object(),
        "{} is JSON but not a stats object; pass a stats file a tritter-gpu command wrote",
        stats_path.display()
    );
    let target = match output {
        Some(p) => PageTarget::Path(p.to_path_buf()),
        None => PageTarget::Beside,
    };
    let page = write_page(&target, &stats, Some(stats_path))?;
    Ok(page.unwrap_or_else(|| page_path_for(stats_path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn page_names_follow_the_stats() {
        assert_eq!(
            page_path_for(Path::new("out/python_curated.stats.json")),
            Path::new("out/python_curated.report.html")
        );
        assert_eq!(
            page_path_for(Path::new("d.json")),
            Path::new("d.report.html")
        );
        assert_eq!(
            page_path_for(Path::new("o/x.jsonl.zst")),
            Path::new("o/x.report.html")
        );
        assert_eq!(
            page_path_for(Path::new("stats")),
            Path::new("stats.report.html")
        );
        assert_eq!(PageTarget::parse("off"), Ok(PageTarget::Off));
        assert_eq!(PageTarget::parse("on"), Ok(PageTarget::Beside));
        assert_eq!(
            PageTarget::parse("a/b.html"),
            Ok(PageTarget::Path("a/b.html".into()))
        );
    }

    #[test]
    fn tokens_show_where_they_were_counted() {
        let stats = json!({"stages": [
            {"stage": "metadata", "files_in": 10, "files_out": 5, "bytes_in": 0, "bytes_out": 0, "dropped": {}},
            {"stage": "quality", "files_in": 5, "files_out": 4, "bytes_in": 500, "bytes_out": 400,
             "tokens_in": 1200, "tokens_out": 1000,
             "dropped": {"alpha_too_low": {"files": 1, "bytes": 100, "tokens": 200}}},
        ]});
        let page = render(&stats, None);
        assert!(page.contains("svg class=\"chart funnel funnel-tokens\""));
        let tokens_chart = &page[page.find("funnel-tokens").unwrap()..];
        let tokens_chart = &tokens_chart[..tokens_chart.find("</svg>").unwrap()];
        assert_eq!(tokens_chart.matches("<g class=\"row").count(), 1);
        assert!(page.contains(">not counted<"));
        assert!(page.contains("data-value=\"1200\">1,200<"));
        assert!(page.contains("data-value=\"200\">200<"));
        // Without tokens anywhere, no tokens columns.
        let none = render(&json!({"stages": [stats["stages"][0].clone()]}), None);
        assert!(!none.contains("tokens in"));
        assert!(none.contains("Tokens were not counted"));
    }

    #[test]
    fn absent_parts_skip_their_sections() {
        let page = render(&json!({"command": "dedup"}), None);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<section id=\"funnel\""));
        assert!(!page.contains("<section id=\"near-dedup\""));
        assert!(page.contains("<section id=\"identity\""));
        assert!(!page.contains("<script"));
    }
}
