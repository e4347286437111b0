//! The run's stats file, `{language}_curated.stats.json`: per-stage counts and
//! retention, drop reasons, notes, dedup totals, failed inputs, timing.

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

#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    pub tool: String,
    pub language: &'a str,
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
            language,
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
            elapsed_seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}
