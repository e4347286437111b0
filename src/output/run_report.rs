//! The run's stats file, `{language}_curated.stats.json`: per-stage counts and
//! retention, drop reasons, notes, dedup totals, failed inputs, timing, and
//! what the run's HTML page needs to say exactly what it describes: the
//! command line, the start date, the inputs, the filter settings, the
//! backend and the process's peak memory.

use crate::pipeline::steps::report::GlobalReport as FinalizeReport;
use crate::stats::{StageStats, Stats};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// An input shard that could not be read (with `--keep-going`).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct FailedInput {
    pub input: String,
    pub error: String,
}

/// Input names listed in the stats (all are counted in `inputs`).
pub const INPUTS_LISTED: usize = 1000;

#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    pub tool: String,
    /// `curate` or `merge`; absent when the report step ran on its own
    /// (`run-step`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'static str>,
    /// The command line, as given (of the invocation that ran the report).
    pub argv: Vec<String>,
    /// When the run started, RFC 3339 in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub language: &'a str,
    /// `--source` values (or the default source).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// The first [`INPUTS_LISTED`] finished inputs, in input order.
    pub input_names: Vec<String>,
    /// The filters' settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<crate::filters::FilterConfig>,
    /// The backend of phase 1 (near-dedup keys, decontamination), as it
    /// describes itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    pub inputs: usize,
    pub finished_inputs: usize,
    pub failed_inputs: Vec<FailedInput>,
    pub stages: Vec<StageStats>,
    pub notes: BTreeMap<String, u64>,
    pub exact_dedup: ExactSummary,
    /// Clusters, removals, size histogram, largest clusters, parameters and seeds.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub near_dedup: serde_json::Value,
    /// Benchmarks loaded and every contaminated file with its matches.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub decontam: serde_json::Value,
    pub output: OutputSummary,
    /// Download volume, rates and failures by reason (Hub shards, content).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub transfers: serde_json::Value,
    pub elapsed_seconds: f64,
    /// Wall time of phase 1 (per-shard stages) and phase 2 (global stages and
    /// output) in this invocation.
    pub phase_seconds: BTreeMap<String, f64>,
    /// Wall and CPU seconds and task count of every global step.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub step_seconds: serde_json::Value,
    /// The process's CPU time and peak resident memory at the end, when one
    /// process ran the whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::usage::Usage>,
}

/// Now, as the stats file writes dates.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// When `started` was, as the stats file writes dates.
pub fn rfc3339_since(started: std::time::Instant) -> String {
    (chrono::Utc::now() - chrono::Duration::from_std(started.elapsed()).unwrap_or_default())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The process's command line.
pub fn argv() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[derive(Debug, Serialize)]
pub struct ExactSummary {
    pub unique: u64,
    pub duplicates: u64,
}

#[derive(Debug, Serialize)]
pub struct OutputSummary {
    pub path: Option<String>,
    /// The files of `--output-shards N`, in order (then `path` is null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<String>>,
    pub files: u64,
    pub bytes: u64,
}

impl<'a> RunReport<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        language: &'a str,
        stats: &Stats,
        fin: &FinalizeReport,
        inputs: usize,
        finished: usize,
        failed: Vec<FailedInput>,
        output: Option<&Path>,
        elapsed: std::time::Duration,
    ) -> RunReport<'a> {
        RunReport {
            tool: format!("tritter-gpu {}", env!("CARGO_PKG_VERSION")),
            command: None,
            argv: argv(),
            started_at: None,
            language,
            sources: Vec::new(),
            input_names: Vec::new(),
            filters: None,
            backend: None,
            inputs,
            finished_inputs: finished,
            failed_inputs: failed,
            stages: stats.ordered(),
            notes: stats.notes.clone(),
            near_dedup: fin.near_dedup.clone(),
            decontam: fin.decontam.clone(),
            exact_dedup: ExactSummary {
                unique: fin.exact_unique,
                duplicates: fin.exact_duplicates,
            },
            output: OutputSummary {
                path: output.map(|p| p.display().to_string()),
                shards: None,
                files: fin.output_files,
                bytes: fin.output_bytes,
            },
            transfers: serde_json::Value::Null,
            phase_seconds: BTreeMap::new(),
            step_seconds: serde_json::Value::Null,
            resources: None,
            elapsed_seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}
