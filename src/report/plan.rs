//! The data plan's expected retention, and a run measured against it.
//!
//! The plan (data/README.md, "Expected Data Retention Rates", from the
//! StarCoder2 and DeepSeek-Coder pipelines) expects, per filter stage:
//! license filtering 30-50%, basic filters (lines, size) 80-90%, exact
//! deduplication 90-95%, quality filters (alpha ratio, long lines) 70-85%,
//! overall 15-30%. Each row is measured from the run's stage counters:
//!
//! - license: within the `metadata` stage, files that reached the license
//!   check (files in, less `language_mismatch`, which is checked first) and
//!   those that passed it (less every `license_*` reason);
//! - basic, exact dedup, quality: the stage's files out of files in;
//! - overall: files out of the run's last stage over files into its first.
//!
//! A stage the run did not perform is "not run", never "outside".

use super::view::Run;

/// One row of the plan's table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    pub row: &'static str,
    /// The stage it is measured on (`None`: the whole run).
    pub stage: Option<&'static str>,
    pub low_pct: f64,
    pub high_pct: f64,
}

/// The plan's table, in its order.
pub const EXPECTED: &[Expected] = &[
    Expected {
        row: "License filtering",
        stage: Some("metadata"),
        low_pct: 30.0,
        high_pct: 50.0,
    },
    Expected {
        row: "Basic filters (lines, size)",
        stage: Some("basic"),
        low_pct: 80.0,
        high_pct: 90.0,
    },
    Expected {
        row: "Exact deduplication",
        stage: Some("exact_dedup"),
        low_pct: 90.0,
        high_pct: 95.0,
    },
    Expected {
        row: "Quality filters (alpha ratio, long lines)",
        stage: Some("quality"),
        low_pct: 70.0,
        high_pct: 85.0,
    },
    Expected {
        row: "Overall",
        stage: None,
        low_pct: 15.0,
        high_pct: 30.0,
    },
];

/// Where a measured retention falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Within,
    Below,
    Above,
    NotRun,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Within => "within",
            Verdict::Below => "below",
            Verdict::Above => "above",
            Verdict::NotRun => "not run",
        }
    }

    pub fn outside(self) -> bool {
        matches!(self, Verdict::Below | Verdict::Above)
    }
}

/// A plan row measured on a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub expected: Expected,
    /// Files that reached the check and files that passed it.
    pub files_in: u64,
    pub files_out: u64,
    pub verdict: Verdict,
    /// How the row was measured, for the page.
    pub measured_as: String,
}

impl Check {
    pub fn retention_pct(&self) -> f64 {
        super::fmt::ratio_pct(self.files_out, self.files_in)
    }
}

fn verdict(e: &Expected, files_in: u64, files_out: u64) -> Verdict {
    let r = super::fmt::ratio_pct(files_out, files_in);
    if r < e.low_pct {
        Verdict::Below
    } else if r > e.high_pct {
        Verdict::Above
    } else {
        Verdict::Within
    }
}

/// Every plan row measured on `run`.
pub fn checks(run: &Run<'_>) -> Vec<Check> {
    EXPECTED
        .iter()
        .map(|e| {
            let measured = match e.stage {
                Some("metadata") => run.stage("metadata").map(|s| {
                    let before: u64 = s
                        .dropped
                        .iter()
                        .filter(|r| r.name == "language_mismatch")
                        .map(|r| r.files)
                        .sum();
                    let license: u64 = s
                        .dropped
                        .iter()
                        .filter(|r| r.name.starts_with("license_"))
                        .map(|r| r.files)
                        .sum();
                    let reached = s.files_in.saturating_sub(before);
                    (
                        reached,
                        reached.saturating_sub(license),
                        "metadata stage: files past the language check, less license_* drops"
                            .to_string(),
                    )
                }),
                Some(stage) => run.stage(stage).map(|s| {
                    (
                        s.files_in,
                        s.files_out,
                        format!("{stage} stage: files out of files in"),
                    )
                }),
                None => run.overall().map(|(i, o, _, _)| {
                    (
                        i,
                        o,
                        "files out of the last stage over files into the first".to_string(),
                    )
                }),
            };
            match measured {
                Some((files_in, files_out, how)) => Check {
                    expected: *e,
                    files_in,
                    files_out,
                    verdict: verdict(e, files_in, files_out),
                    measured_as: how,
                },
                None => Check {
                    expected: *e,
                    files_in: 0,
                    files_out: 0,
                    verdict: Verdict::NotRun,
                    measured_as: "the run has no such stage".to_string(),
                },
            }
        })
        .collect()
}

/// The check measured on `stage`, if the plan has one.
pub fn check_for_stage<'c>(checks: &'c [Check], stage: &str) -> Option<&'c Check> {
    checks.iter().find(|c| c.expected.stage == Some(stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn license_row_counts_only_files_that_reached_the_license_check() {
        let v = json!({"stages": [
            {"stage": "read", "files_in": 1000, "files_out": 1000, "dropped": {}},
            {"stage": "metadata", "files_in": 1000, "files_out": 300, "dropped": {
                "language_mismatch": {"files": 200, "bytes": 0},
                "license_not_permissive": {"files": 350, "bytes": 0},
                "license_none": {"files": 50, "bytes": 0},
                "stars_too_few": {"files": 100, "bytes": 0}}},
            {"stage": "basic", "files_in": 300, "files_out": 240, "dropped": {}},
            {"stage": "quality", "files_in": 240, "files_out": 235, "dropped": {}},
        ]});
        let run = Run::new(&v, None);
        let c = checks(&run);
        assert_eq!(c.len(), 5);
        // 800 reached the license check, 400 passed: 50%, the top of 30-50%.
        assert_eq!((c[0].files_in, c[0].files_out), (800, 400));
        assert_eq!(c[0].verdict, Verdict::Within);
        assert_eq!(c[1].verdict, Verdict::Within); // 80%
        assert_eq!(c[2].verdict, Verdict::NotRun);
        assert_eq!(c[3].verdict, Verdict::Above); // 97.9%
        assert_eq!(c[4].verdict, Verdict::Within); // 23.5%
        assert_eq!((c[4].files_in, c[4].files_out), (1000, 235));
    }
}
