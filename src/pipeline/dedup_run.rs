//! `dedup` as a plan of steps: the input's byte ranges through phase 1
//! ([`super::dedup_shard`]), then the near-dedup steps of `curate`
//! (`lsh`, `verify`, `components`, `clusters`) and `dedup`'s own `output` and
//! `report` ([`super::steps::dedup_output`], [`super::steps::dedup_report`]).
//!
//! The work directory is `--work-dir`, kept and resumable (a killed run,
//! rerun with the same command, skips the finished shards and tasks and
//! writes the same bytes), or else a scratch directory under
//! `--scratch-dir` that is removed when the run succeeds. It looks like
//! `curate`'s ([`super::work_dir`]) with `WORK/dedup.json` ([`DedupShards`])
//! in place of `WORK/config.json`, so `run-step`, `--plan-only` and the Slurm
//! executor work on it unchanged. There is no exact step: `dedup` removes
//! near-duplicates only (identical files are near-duplicates with similarity
//! 1; files without words never are), as it always did.

use super::dedup_shard::{self, InputRange};
use super::run_config::{self, DedupOutput, GlobalConfig};
use super::steps;
use super::work_dir::{NearKeyFingerprint, RunFingerprint, WorkDir};
use super::work_lock;
use crate::backends::BackendKind;
use crate::dedup::near::shard_keys::KeySettings;
use crate::dedup::near::NearDedupConfig;
use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything `dedup` needs.
#[derive(Clone, Debug)]
pub struct DedupRunConfig {
    pub input: PathBuf,
    /// `None` with `--dry-run`.
    pub output: Option<PathBuf>,
    pub dry_run: bool,
    pub stats: Option<PathBuf>,
    /// Where the scratch work directory goes without `--work-dir`.
    pub scratch_dir: PathBuf,
    pub work_dir: Option<PathBuf>,
    pub near: NearDedupConfig,
    pub clusters: Option<PathBuf>,
    pub partitions: u32,
    /// Bytes of plain input per phase-1 shard.
    pub shard_bytes: u64,
    pub backend: BackendKind,
    pub report_html: crate::report::PageTarget,
    pub tokens: Option<crate::tokens::count::TokensConfig>,
    pub fresh: bool,
    pub plan_only: bool,
    pub quiet: bool,
}

/// `WORK/dedup.json`: what a `shards` task of `dedup` needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DedupShards {
    pub cwd: PathBuf,
    pub input: PathBuf,
    pub ranges: Vec<InputRange>,
    pub near: NearDedupConfig,
    pub backend: BackendKind,
    /// Token counting in phase 1 (each record's count goes into its facts,
    /// for the output step); `None` with `--tokens off`.
    #[serde(default)]
    pub tokens: Option<crate::tokens::count::TokensConfig>,
}

/// Where [`DedupShards`] is stored.
pub fn config_path(work: &WorkDir) -> PathBuf {
    work.root.join("dedup.json")
}

/// Whether `work` holds a `dedup` run.
pub fn is_dedup_work_dir(work: &WorkDir) -> bool {
    config_path(work).exists()
}

/// xxh3 of what decides the shards: the input's path, size and modification
/// time, and the ranges.
fn input_hash(input: &Path, ranges: &[InputRange]) -> Result<String> {
    let meta =
        std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let canonical = input.canonicalize().unwrap_or_else(|_| input.to_path_buf());
    h.update(canonical.as_os_str().as_encoded_bytes());
    h.update(&meta.len().to_le_bytes());
    if let Ok(t) = meta.modified() {
        if let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) {
            h.update(&d.as_nanos().to_le_bytes());
        }
    }
    h.update(&serde_json::to_vec(ranges)?);
    Ok(format!("{:016x}", h.digest()))
}

/// A planned run: its work directory (locked), the global configuration and
/// the backend.
struct Planned {
    work: WorkDir,
    global: GlobalConfig,
    ranges: Vec<InputRange>,
    backend: std::sync::Arc<dyn crate::backends::Backend>,
    scratch: Option<ScratchWork>,
}

/// What `--plan-only` does, without printing: plans the run in
/// `--work-dir` and returns it with the plan (for cluster executors).
pub fn store_plan(cfg: &DedupRunConfig) -> Result<(PathBuf, serde_json::Value)> {
    ensure!(
        cfg.work_dir.is_some(),
        "a run on a cluster needs --work-dir on a filesystem every node mounts"
    );
    let p = plan(cfg)?;
    steps::prepare(&p.work, &p.global)?;
    let plan = super::stored_plan(&p.work.root)?;
    // The tasks that run the plan take the work directory's lock themselves.
    work_lock::release_all(&p.work.root);
    Ok((p.work.root.clone(), plan))
}

/// Runs `dedup`; returns the exit code (1 when the input has bad lines).
pub fn run(cfg: &DedupRunConfig) -> Result<i32> {
    let started = Instant::now();
    let Planned {
        work,
        global,
        ranges,
        backend,
        scratch,
    } = plan(cfg)?;
    if cfg.plan_only {
        steps::prepare(&work, &global)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&super::stored_plan(&work.root)?)?
        );
        return Ok(0);
    }

    // PERF: a scratch work directory is removed after the run and cannot be
    // resumed, so its tasks skip the `syncfs` before each marker.
    let durable = scratch.is_none();
    // Phase 1: the shards not done yet, on the pool.
    let settings = KeySettings::new(&cfg.near)?;
    let todo: Vec<u32> = (0..ranges.len() as u32)
        .filter(|&o| !matches!(work.done(o), Ok(Some(_))))
        .collect();
    let tokens = phase1_tokens(cfg.tokens.as_ref())?;
    let bar = super::progress::StepBar::for_step(cfg.quiet, todo.len() as u64, "dedup shards");
    todo.par_iter().with_max_len(1).try_for_each(|&o| {
        dedup_shard::process(
            &work,
            &cfg.input,
            o,
            ranges[o as usize],
            dedup_shard::RecordWork {
                settings: &settings,
                backend: backend.as_ref(),
                tokens: tokens.as_ref(),
            },
            durable,
        )
        .with_context(|| format!("shard {o} of {}", cfg.input.display()))?;
        bar.inc(1);
        Ok::<(), anyhow::Error>(())
    })?;
    bar.finish();
    work.write_manifest(&work.all_done()?)?;
    let phase1 = started.elapsed().as_secs_f64();

    super::run_global(
        &work,
        &global,
        Some(started),
        Some(phase1),
        serde_json::Value::Null,
        "dedup",
        cfg.quiet,
        durable,
    )?;
    let code = exit_code(&work.global_dir(), &cfg.input)?;
    drop(work);
    if let Some(s) = scratch {
        work_lock::release_all(&s.0);
        s.remove();
    }
    Ok(code)
}

/// Plans the run: shards, fingerprint, work directory, stored configuration.
fn plan(cfg: &DedupRunConfig) -> Result<Planned> {
    ensure!(cfg.partitions >= 1, "--partitions must be at least 1");
    ensure!(
        cfg.input.is_file(),
        "--input {} is not a readable file",
        cfg.input.display()
    );
    ensure!(
        !cfg.plan_only || cfg.work_dir.is_some(),
        "--plan-only needs --work-dir (the plan lives there)"
    );
    let cwd = run_config::current_dir()?;
    let ranges = dedup_shard::plan_shards(&cfg.input, cfg.shard_bytes)?;
    let params = cfg.near.layout()?;
    let fingerprint = RunFingerprint {
        format_version: super::work_dir::FORMAT_VERSION,
        filters: crate::filters::FilterConfig::default(),
        max_samples: None,
        inputs_hash: input_hash(&cfg.input, &ranges)?,
        input_count: ranges.len() as u32,
        record_rejects: false,
        near_keys: Some(NearKeyFingerprint {
            ngram: cfg.near.ngram,
            num_perm: cfg.near.num_perm,
            bands: params.bands,
            rows: params.rows,
            minhash_seed: cfg.near.seed,
        }),
        decontam: None,
        redact: crate::redact::RedactMode::Off,
        // Phase 1 stores each record's token count: other token settings
        // need other facts.
        tokens: cfg.tokens.clone(),
    };
    let (backend, notes) = crate::backends::select(cfg.backend)?;
    if !cfg.quiet {
        eprintln!(
            "tritter-gpu: {}",
            crate::backends::describe_choice(backend.as_ref(), &notes)
        );
    }
    // Without --work-dir: a scratch directory, removed on success (and on
    // Ctrl-C); a killed run's is swept by the next run in that directory.
    let scratch = match &cfg.work_dir {
        Some(_) => None,
        None => {
            std::fs::create_dir_all(&cfg.scratch_dir).with_context(|| {
                format!(
                    "cannot create scratch directory {}",
                    cfg.scratch_dir.display()
                )
            })?;
            let dir = super::cleanup::create_scratch_dir(&cfg.scratch_dir).with_context(|| {
                format!(
                    "cannot create a scratch directory in {}",
                    cfg.scratch_dir.display()
                )
            })?;
            Some(ScratchWork(dir))
        }
    };
    let root = match (&cfg.work_dir, &scratch) {
        (Some(w), _) => w.clone(),
        (None, Some(s)) => s.0.clone(),
        (None, None) => unreachable!("a scratch directory without --work-dir"),
    };
    work_lock::lock_whole(&root, "dedup")?;
    let work = WorkDir::open(&root, &fingerprint, cfg.fresh)?;
    let shards_cfg = DedupShards {
        cwd: cwd.clone(),
        input: cfg.input.clone(),
        ranges: ranges.clone(),
        near: cfg.near.clone(),
        backend: cfg.backend,
        tokens: cfg.tokens.clone(),
    };
    run_config::store(&config_path(&work), &shards_cfg)?;
    let global = GlobalConfig {
        cwd,
        language: String::new(),
        work_dirs: vec![root.clone()],
        input_count: ranges.len() as u32,
        output_dir: PathBuf::new(),
        dry_run: cfg.dry_run,
        rejects: None,
        max_samples: None,
        near: Some(NearDedupConfig {
            cluster_paths: cfg.clusters.is_some(),
            ..cfg.near.clone()
        }),
        clusters: cfg.clusters.clone(),
        decontam: None,
        decontam_skipped: false,
        partitions: cfg.partitions,
        output_shards: None,
        format: Default::default(),
        backend: cfg.backend,
        report_html: cfg.report_html.clone(),
        tokens: cfg.tokens.clone(),
        dedup: Some(DedupOutput {
            input: cfg.input.clone(),
            ranges: ranges.clone(),
            output: cfg.output.clone(),
            stats: cfg.stats.clone(),
            backend: backend.describe(),
        }),
    };
    Ok(Planned {
        work,
        global,
        ranges,
        backend,
        scratch,
    })
}

/// The command's exit code from the report task's summary: 1, with a
/// message, when the input had bad lines.
pub fn exit_code(global_dir: &Path, input: &Path) -> Result<i32> {
    let Some(done) = steps::marker(global_dir, steps::REPORT, 0)? else {
        bail!("the report step is not done");
    };
    let s: steps::dedup_report::DedupReportSummary =
        serde_json::from_value(done.summary).context("the report's marker is corrupt")?;
    match s.first_bad {
        Some(first) if s.bad_lines > 0 => {
            eprintln!(
                "tritter-gpu: {}: {} lines are not valid records (first: line {}: {}); they are left out and listed in the stats",
                input.display(),
                s.bad_lines,
                first.line,
                first.error
            );
            Ok(1)
        }
        _ => Ok(0),
    }
}

/// Step `shards`, task `ordinal`, of a `dedup` work directory (`run-step`).
pub fn run_shard_task(work: &WorkDir, ordinal: u32, quiet: bool) -> Result<i32> {
    if work.done(ordinal)?.is_some() {
        if !quiet {
            eprintln!("tritter-gpu: shard {ordinal} is already done");
        }
        return Ok(0);
    }
    let s: DedupShards = run_config::load(&config_path(work))?;
    std::env::set_current_dir(&s.cwd)
        .with_context(|| format!("cannot enter {}", s.cwd.display()))?;
    let Some(&range) = s.ranges.get(ordinal as usize) else {
        bail!(
            "the run has {} input shard(s); there is no shard {ordinal}",
            s.ranges.len()
        );
    };
    let (backend, _) = crate::backends::select(s.backend)?;
    let settings = KeySettings::new(&s.near)?;
    let tokens = phase1_tokens(s.tokens.as_ref())?;
    dedup_shard::process(
        work,
        &s.input,
        ordinal,
        range,
        dedup_shard::RecordWork {
            settings: &settings,
            backend: backend.as_ref(),
            tokens: tokens.as_ref(),
        },
        true,
    )?;
    Ok(0)
}

/// Phase 1's token counter (`None` with `--tokens off`).
fn phase1_tokens(
    cfg: Option<&crate::tokens::count::TokensConfig>,
) -> Result<Option<crate::tokens::TokenCounter>> {
    Ok(cfg.map(|t| t.counter()).transpose()?.flatten())
}

/// Whether phase 1 of the `dedup` run in `work` counted each record's
/// tokens with `tokens`, so that its facts hold what counting the texts
/// again would give.
pub fn phase1_counted(work: &WorkDir, tokens: Option<&crate::tokens::count::TokensConfig>) -> bool {
    tokens.is_some()
        && run_config::load::<DedupShards>(&config_path(work))
            .is_ok_and(|s| s.tokens.as_ref() == tokens)
}

/// The scratch work directory of a run without `--work-dir`.
struct ScratchWork(PathBuf);

impl ScratchWork {
    fn remove(self) {
        std::fs::remove_dir_all(&self.0).ok();
        super::cleanup::unregister(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::count::{TokensConfig, TokensMode};

    #[test]
    fn phase1_counted_needs_the_same_token_settings() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir {
            root: dir.path().to_path_buf(),
        };
        let exact = TokensConfig::default();
        let estimate = TokensConfig {
            mode: TokensMode::Estimate,
            ..TokensConfig::default()
        };
        // No stored phase-1 config: nothing was counted.
        assert!(!phase1_counted(&work, Some(&exact)));
        let stored = |tokens: Option<TokensConfig>| {
            let s = DedupShards {
                cwd: PathBuf::from("/"),
                input: PathBuf::from("in.jsonl"),
                ranges: vec![InputRange {
                    start: 0,
                    end: None,
                }],
                near: NearDedupConfig::default(),
                backend: BackendKind::Cpu,
                tokens,
            };
            run_config::store(&config_path(&work), &s).unwrap();
        };
        stored(Some(exact.clone()));
        assert!(phase1_counted(&work, Some(&exact)));
        assert!(!phase1_counted(&work, Some(&estimate)));
        assert!(!phase1_counted(&work, None));
        // A phase 1 with `--tokens off` (or from before it counted) did not.
        stored(None);
        assert!(!phase1_counted(&work, Some(&exact)));
    }
}
