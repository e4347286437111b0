//! The resolved configuration of a run, stored in the work directory so that
//! every task can run from the work directory alone (`tritter-gpu run-step`,
//! on this machine or on a cluster node sharing the disk).
//!
//! Two files:
//! * `WORK/config.json` ([`ShardsConfig`]): what phase 1 needs: inputs,
//!   filters, content store, remote settings, and the near-dedup and
//!   decontamination settings that shape the sidecars.
//! * `WORK/global/config.json` ([`GlobalConfig`]): what the global steps
//!   need: the work directories holding the parts (one, or the slices of a
//!   `merge`), the phase-2 settings (partitions, verification, output
//!   shards) and the output paths.
//!
//! Paths are kept as the user gave them, with the directory they are relative
//! to (`cwd`): the stats file names the output as it was typed, and a task run
//! elsewhere resolves them the same way.

use super::shard_spec::ShardSpec;
use crate::backends::BackendKind;
use crate::decontam::DecontamConfig;
use crate::dedup::near::NearDedupConfig;
use crate::filters::FilterConfig;
use crate::output::atomic::write_atomic;
use crate::remote::RemoteConfig;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Phase 1 of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardsConfig {
    /// The directory relative paths are relative to.
    pub cwd: PathBuf,
    /// Input specs as given (local paths, `hf://` URIs).
    pub sources: Vec<String>,
    pub filters: FilterConfig,
    pub max_samples: Option<u64>,
    pub content_store: Option<String>,
    pub remote: RemoteConfig,
    pub batch_size: usize,
    pub record_rejects: bool,
    pub keep_going: bool,
    pub shard: ShardSpec,
    pub backend: BackendKind,
    /// Near-dedup settings (the key-shaping ones are in the fingerprint).
    pub near: Option<NearDedupConfig>,
    /// Decontamination settings; `None` when off or skipped for lack of
    /// benchmarks.
    pub decontam: Option<DecontamConfig>,
    /// Decontamination was on but found no benchmarks.
    pub decontam_skipped: bool,
    /// The loaded benchmark index, as described when it was built.
    pub decontam_description: Option<String>,
    /// The backend of phase 1, as it described itself (for the stats).
    #[serde(default)]
    pub backend_description: Option<String>,
    /// `--repos`: the curated repository list and its cache.
    #[serde(default)]
    pub repos: Option<crate::sources::repos::ReposConfig>,
    /// `--redact`.
    #[serde(default)]
    pub redact: crate::redact::RedactMode,
    /// Token counting of the per-record stages (`--tokenizer`, `--tokens`);
    /// `None` with `--tokens off`.
    #[serde(default)]
    pub tokens: Option<crate::tokens::count::TokensConfig>,
}

/// Decontamination in the global steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalDecontam {
    pub flag_only: bool,
    /// `--report FILE`.
    pub report: Option<PathBuf>,
    /// The loaded index, as described when phase 1 built it.
    pub description: String,
}

/// The global steps of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalConfig {
    pub cwd: PathBuf,
    pub language: String,
    /// Work directories whose finished shards feed the global steps; a shard
    /// finished in several is taken from the first.
    pub work_dirs: Vec<PathBuf>,
    pub input_count: u32,
    pub output_dir: PathBuf,
    pub dry_run: bool,
    pub rejects: Option<PathBuf>,
    pub max_samples: Option<u64>,
    pub near: Option<NearDedupConfig>,
    /// `--clusters FILE`.
    pub clusters: Option<PathBuf>,
    pub decontam: Option<GlobalDecontam>,
    /// Decontamination was on but found no benchmarks (counted in the notes).
    pub decontam_skipped: bool,
    /// Partitions of the exact, LSH, verification and cluster steps.
    pub partitions: u32,
    /// Output files (`None`: the single `{language}_curated.jsonl`).
    pub output_shards: Option<u32>,
    /// `--format`: JSONL (the default) or Parquet.
    #[serde(default)]
    pub format: crate::output::curated_writer::CuratedFormat,
    pub backend: BackendKind,
    /// Where the run's HTML page goes (`--report-html`).
    #[serde(default)]
    pub report_html: crate::report::PageTarget,
    /// Token counting of the output step's stages (`--tokens`).
    #[serde(default)]
    pub tokens: Option<crate::tokens::count::TokensConfig>,
    /// Set for `dedup`: no exact step, and the output and report steps copy
    /// the input's lines and write `dedup`'s stats file.
    #[serde(default)]
    pub dedup: Option<DedupOutput>,
}

/// What the global steps of `dedup` write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DedupOutput {
    /// The input as given; phase-1 shard `i` is `ranges[i]` of it.
    pub input: PathBuf,
    pub ranges: Vec<super::dedup_shard::InputRange>,
    /// `--output` (`None` with `--dry-run`).
    pub output: Option<PathBuf>,
    /// `--stats`.
    pub stats: Option<PathBuf>,
    /// The backend of phase 1, as it described itself (for the stats).
    pub backend: String,
}

impl GlobalConfig {
    /// `path` resolved against the directory the run was planned in.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        }
    }
}

impl ShardsConfig {
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        }
    }
}

/// Writes `value` as pretty JSON, atomically.
pub fn store<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)
}

/// Reads a stored configuration.
pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read {} (plan the run first: curate or merge with --plan-only)",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a run configuration of this version of tritter-gpu",
            path.display()
        )
    })
}

/// The current directory, for [`ShardsConfig::cwd`] and [`GlobalConfig::cwd`].
pub fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().context("cannot read the current directory")
}
