//! What decontamination tells the user: the per-file report (`--report`),
//! the marking of kept files under `--flag-only`, and totals per benchmark.
//!
//! The report is JSONL, one line per contaminated file, in input order:
//! `{"line": 12, "path": "...", "repo": "...", "bytes": 4096, "action":
//! "dropped", "reason": "decontam_humaneval_exact", "contamination": {...}}`,
//! where `contamination` is a serialised [`Contamination`] (benchmark, tier,
//! items with their id and the matched string or shared n-gram count).
//!
//! Under `--flag-only` a contaminated record is written with one more field,
//! `"contamination": {...}` (the same object), appended after the record's
//! own fields: the original bytes are kept up to the closing brace, so every
//! other field, and every clean line, stays byte-identical.

use super::{Contamination, Tier};
use crate::output::atomic::AtomicFile;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// One line of the report.
#[derive(Serialize)]
pub struct ReportEntry<'a> {
    /// Input line (1-based), when the input is a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub path: &'a str,
    pub repo: &'a str,
    pub bytes: u64,
    /// `dropped` or `flagged`.
    pub action: &'a str,
    pub reason: String,
    pub contamination: &'a Contamination,
}

/// The report file, written atomically on [`ReportWriter::commit`].
pub struct ReportWriter {
    file: AtomicFile,
    pub entries: u64,
}

impl ReportWriter {
    pub fn create(path: &Path) -> Result<ReportWriter> {
        Ok(ReportWriter {
            file: AtomicFile::create(path)
                .with_context(|| format!("cannot create report {}", path.display()))?,
            entries: 0,
        })
    }

    pub fn write(&mut self, entry: &ReportEntry<'_>) -> Result<()> {
        let target = self.file.target().display().to_string();
        serde_json::to_writer(&mut self.file, entry)
            .with_context(|| format!("cannot write report {target}"))?;
        self.file
            .write_all(b"\n")
            .with_context(|| format!("cannot write report {target}"))?;
        self.entries += 1;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.file.commit()
    }
}

/// `raw` (one JSON object on one line) with `"contamination": c` appended as
/// its last field; all other bytes unchanged.
pub fn flag_line(raw: &str, c: &Contamination) -> Result<String> {
    let body = raw.trim_end();
    let Some(close) = body.strip_suffix('}') else {
        bail!("record is not a JSON object ending in '}}'");
    };
    let inner_empty = close.trim_start().strip_prefix('{').map(str::trim) == Some("");
    let json = serde_json::to_string(c)?;
    let sep = if inner_empty { "" } else { "," };
    Ok(format!("{close}{sep}\"contamination\":{json}}}"))
}

/// What a run records of its contaminated files for the stats file: each
/// file with its matches (`files`), totals per benchmark and tier, and a few
/// sampled hits with their texts (see [`super::samples`]).
#[derive(Debug, Default)]
pub struct HitLog {
    pub files: Vec<serde_json::Value>,
    pub totals: Totals,
    pub sampler: super::samples::HitSampler,
}

impl HitLog {
    /// Records one contaminated file (kept and marked when `flagged`).
    pub fn record(
        &mut self,
        dec: &super::Decontaminator,
        text: &str,
        repo: &str,
        path: &str,
        hit: &Contamination,
        flagged: bool,
    ) {
        self.totals.add(hit, text.len() as u64);
        let action = if flagged { "flagged" } else { "dropped" };
        self.sampler.offer(dec, text, repo, path, hit, action);
        self.files.push(if flagged {
            serde_json::json!({ "repo": repo, "path": path, "flagged": true, "hit": hit })
        } else {
            serde_json::json!({ "repo": repo, "path": path, "hit": hit })
        });
    }
}

/// Contaminated files and bytes of one benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BenchmarkTotal {
    pub files: u64,
    pub bytes: u64,
    pub exact: u64,
    pub ngram: u64,
}

/// Totals per benchmark (the benchmark of each file's strongest match).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Totals {
    pub benchmarks: BTreeMap<String, BenchmarkTotal>,
}

impl Totals {
    pub fn add(&mut self, c: &Contamination, bytes: u64) {
        let t = self.benchmarks.entry(c.benchmark.clone()).or_default();
        t.files += 1;
        t.bytes += bytes;
        match c.tier {
            Tier::Exact => t.exact += 1,
            Tier::Ngram => t.ngram += 1,
        }
    }

    pub fn merge(&mut self, other: &Totals) {
        for (k, o) in &other.benchmarks {
            let t = self.benchmarks.entry(k.clone()).or_default();
            t.files += o.files;
            t.bytes += o.bytes;
            t.exact += o.exact;
            t.ngram += o.ngram;
        }
    }

    /// A table for stderr: one line per benchmark with files found.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<16} {:>10} {:>14} {:>8} {:>8}",
            "benchmark", "files", "bytes", "exact", "ngram"
        );
        for (name, b) in &self.benchmarks {
            let _ = writeln!(
                t,
                "{:<16} {:>10} {:>14} {:>8} {:>8}",
                name, b.files, b.bytes, b.exact, b.ngram
            );
        }
        if self.benchmarks.is_empty() {
            let _ = writeln!(t, "(no contaminated files)");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Contamination {
        Contamination {
            benchmark: "mbpp".into(),
            tier: Tier::Ngram,
            items: vec![],
            items_total: 0,
        }
    }

    #[test]
    fn flagging_appends_one_field_and_keeps_the_rest() {
        let raw = r#"{"text":"x","language":"python","license":"mit","stars":1,"path":"a.py","repo":"o/r"}"#;
        let f = flag_line(raw, &c()).unwrap();
        assert!(f.starts_with(&raw[..raw.len() - 1]));
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["contamination"]["benchmark"], "mbpp");
        assert_eq!(v["text"], "x");
        assert_eq!(
            flag_line("{ }", &c()).unwrap(),
            format!(
                "{{ \"contamination\":{}}}",
                serde_json::to_string(&c()).unwrap()
            )
        );
        assert!(flag_line("[1]", &c()).is_err());
    }

    #[test]
    fn totals_count_by_benchmark_and_tier() {
        let mut t = Totals::default();
        t.add(&c(), 10);
        t.add(
            &Contamination {
                tier: Tier::Exact,
                ..c()
            },
            5,
        );
        assert_eq!(
            t.benchmarks["mbpp"],
            BenchmarkTotal {
                files: 2,
                bytes: 15,
                exact: 1,
                ngram: 1
            }
        );
        assert!(t.table().contains("mbpp"));
    }
}
